"""Raw NTU RGB+D `.skeleton` files and PKU-MMD files -> the split folders of data.py (ST-GCN layout).

- NTU (docs/conventions.md §1): the frame/body structure of a file is walked line by line, the 25 joint lines of
  every body are parsed in one vectorised np.loadtxt call, and the 2 most energetic of the first 4 body slots are
  kept (2s-AGCN's rule, `read_skeleton`). Files are parsed in parallel by processes that a fork server starts;
  a corrupt file is named with its line, skipped and listed in the report; any other failure of a worker stops
  the conversion with an error naming the file (WorkerError), and nothing is written.
- PKU-MMD (§3): skeleton + label + split files -> instance-level splits. Instances are cut with 1-based inclusive
  frame ranges and named as the AimCLR conversion names them (Phase II `A0aaN0nnVvvvCcccLlll`, Phase I
  `FfffVvvvCcccLlll`) so C2VL's released prompts match by name. Labels keep the 51-id space.
- Output: `{train,val}_data.npy` float32 (N, 3, 300, 25, 2), zero-padded and written row by row (atomic, memory
  flat), `{train,val}_label.pkl`, and datasets/<dataset>/conversion_report.json.

    python tools/gendata.py ntu --raw nturgb+d_skeletons nturgb+d_skeletons_s018_to_s032 --dataset ntu60 ntu120
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import multiprocessing
import os
import re
import signal
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from data import DATASETS, MAX_BODIES, MAX_FRAMES, NUM_JOINTS, PARTS, RESOURCES, check_choice, split_dir
from tools.ntu_names import NTU_NAME, ntu_in_dataset, ntu_is_train, parse_ntu_name, read_missing_list
from utils.files import sample_name, write_labels
from utils.files import (DataFormatError, DataNotFoundError, NpyRowWriter, refuse_to_overwrite, remove_part_arrays,
                         write_text)


class SkeletonFormatError(ValueError):
    """A raw skeleton/label/split file breaks the format; names the file and the 1-based line."""

    def __init__(self, path, line: int, what: str):
        self.path, self.line, self.what = str(path), line, what
        super().__init__(f"{path}:{line}: {what}")

    def __reduce__(self):  # unpickled with the same three arguments (it may cross a process boundary)
        return type(self), (self.path, self.line, self.what)


class WorkerError(RuntimeError):
    """A worker failed on one item in a way no format check foresaw (or died); the message names the item."""


# ----------------------------------------------------------------------------------------------------------------
# 1. Raw NTU .skeleton reader
# ----------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class SkeletonFile:
    """One parsed NTU `.skeleton` file; bodies are the (at most 2) most energetic body slots, frames as recorded."""
    path: Path
    xyz: np.ndarray        # (T, M, 25, 3) float32, metres in camera space; zeros where a body is absent
    color_xy: np.ndarray   # (T, M, 25, 2) float32, colorX/colorY pixels in the 1920x1080 RGB frame; zeros where a
    #                        body is absent, NaN where Kinect did not map a tracked joint into the colour image
    bodies_per_frame: np.ndarray  # (T,) int, bodies listed in each frame (before keeping at most M)

    @property
    def num_frames(self) -> int:
        return self.xyz.shape[0]

    @property
    def name(self) -> str:
        return sample_name(self.path.name)


_JOINT_COLUMNS = (0, 1, 2, 5, 6, 11)  # x y z colorX colorY trackingState (column 11 proves 12 values per line)
MAX_BODY_SLOTS = 4  # 2s-AGCN's max_body_kinect: body slots beyond the 4th of a frame are not read


def read_skeleton(path, max_bodies: int = MAX_BODIES) -> SkeletonFile:
    """Parse an NTU `.skeleton` file; raises SkeletonFormatError(path, line, what) where the format breaks.

    The frame/body structure is walked line by line (a few hundred lines per file); the 25 joint lines of every
    body are then parsed in one vectorised np.loadtxt call. x, y, z must be finite (else the file is rejected
    with the line). Real files hold NaN in depthX/depthY/colorX/colorY where Kinect could not map a joint into
    the images: that only means "2-D position unknown", so such colorX/colorY are stored as NaN (the person crop
    of the vision prompts ignores them) and the sample is kept.

    Bodies follow 2s-AGCN's `read_xyz` (ntu_gendata.py; ST-GCN's reader, copied by CrosSCLR, keeps slots 0, 1),
    with s = body slot (the m-th body listed in a frame is slot m; only slots 0..3 are read) and x_s in
    R^{T x 25 x 3} (zeros in frames that do not list s):
        F_s = {t : sum_{v,c} x_s[t, v, c] != 0}        frames where the slot's joints are non-zero
        E_s = sum_{c in x,y,z} std_{(t, v) in F_s x V} x_s[t, v, c]     (population std; E_s = 0 if F_s is empty)
    so a slot listed in one frame has the std over its 25 joints there, and frames that list a slot with all-zero
    joints do not count. The `max_bodies` slots of largest E_s are kept, most energetic first; E_s is computed
    in float64 with 2s-AGCN's own operations, so near-ties resolve the same way.
    # 2s-AGCN orders by energy.argsort()[::-1], leaving exact ties to numpy's sort; here ties keep the lower slot
    # first. Real files tie only between slots without non-zero joints, whose rows are zeros either way.
    """
    path = Path(path)
    lines = path.read_bytes().decode("latin-1").splitlines()
    num_frames, entries = _walk_skeleton_layout(lines, path)
    frame_of, slot_of, first_line = (np.array(column, dtype=np.int64) for column in zip(*entries))
    line_index = (first_line[:, None] + np.arange(NUM_JOINTS)).ravel()  # (B*25,) 0-based line numbers
    values = _parse_joint_lines(lines, line_index, path)  # (B*25, 6) float64
    finite = np.isfinite(values[:, :3]).all(axis=1)
    if not finite.all():
        bad = int(line_index[np.argmin(finite)])
        raise SkeletonFormatError(path, bad + 1, f"non-finite joint value (x, y or z) in "
                                                     f"{lines[bad].strip()[:60]!r}")
    values = values.reshape(len(entries), NUM_JOINTS, len(_JOINT_COLUMNS))
    bodies = np.bincount(frame_of, minlength=num_frames)
    read = slot_of < MAX_BODY_SLOTS
    frame_of, slot_of, values = frame_of[read], slot_of[read], values[read]
    num_slots = int(slot_of.max()) + 1
    xyz = np.zeros((num_slots, num_frames, NUM_JOINTS, 3))  # (S, T, 25, 3) float64, as 2s-AGCN's `data`
    xyz[slot_of, frame_of] = values[:, :, :3]
    color_xy = np.zeros((num_slots, num_frames, NUM_JOINTS, 2), dtype=np.float32)  # (S, T, 25, 2)
    color_xy[slot_of, frame_of] = np.where(np.isfinite(values[:, :, 3:5]), values[:, :, 3:5], np.nan)
    energy = np.array([_motion_energy(x_s) for x_s in xyz])  # (S,)
    keep = np.argsort(-energy, kind="stable")[:max_bodies]
    return SkeletonFile(path, np.ascontiguousarray(xyz[keep].transpose(1, 0, 2, 3), dtype=np.float32),
                        np.ascontiguousarray(color_xy[keep].transpose(1, 0, 2, 3)), bodies)


def _motion_energy(x_s: np.ndarray) -> float:
    """E_s of one body slot (T, 25, 3) float64: 2s-AGCN's get_nonzero_std, operation for operation."""
    present = x_s[x_s.sum(-1).sum(-1) != 0]  # (|F_s|, 25, 3)
    if len(present) == 0:
        return 0.0
    return float(present[:, :, 0].std() + present[:, :, 1].std() + present[:, :, 2].std())


def _int_at(lines, index, path, what) -> int:
    if index >= len(lines):
        raise SkeletonFormatError(path, index + 1, f"file ends early (truncated): expected {what}")
    try:
        return int(lines[index])
    except ValueError:
        raise SkeletonFormatError(path, index + 1, f"expected {what}, found {lines[index].strip()[:60]!r}") from None


def _walk_skeleton_layout(lines, path) -> tuple[int, list[tuple[int, int, int]]]:
    """-> (frame count, [(frame, body slot, 0-based line of its first joint)]) with every count line checked."""
    num_frames = _int_at(lines, 0, path, "the frame count")
    if num_frames <= 0:
        raise SkeletonFormatError(path, 1, f"zero frames (frame count {num_frames})")
    entries, p = [], 1
    for t in range(num_frames):
        num_bodies = _int_at(lines, p, path, f"the body count of frame {t + 1}")
        if num_bodies < 0:
            raise SkeletonFormatError(path, p + 1, f"negative body count {num_bodies}")
        p += 1
        for m in range(num_bodies):
            if p < len(lines) and len(lines[p].split()) != 10:
                raise SkeletonFormatError(path, p + 1, f"expected 10 body-info values, found "
                                                       f"{len(lines[p].split())}: {lines[p].strip()[:60]!r}")
            num_joints = _int_at(lines, p + 1, path, f"the joint count of body {m + 1} in frame {t + 1}")
            if num_joints != NUM_JOINTS:
                raise SkeletonFormatError(path, p + 2, f"expected {NUM_JOINTS} joints, found {num_joints}")
            if p + 2 + NUM_JOINTS > len(lines):
                raise SkeletonFormatError(path, len(lines) + 1,
                                          f"file ends early (truncated) inside frame {t + 1} of {num_frames}")
            entries.append((t, m, p + 2))
            p += 2 + NUM_JOINTS
    if not entries:
        raise SkeletonFormatError(path, 1, f"no body in any of the {num_frames} frames")
    return num_frames, entries


def _parse_joint_lines(lines, line_index, path) -> np.ndarray:
    """Vectorised parse of the joint lines; on failure find the first offending line for the message."""
    selected = [lines[i] for i in line_index]
    try:
        return np.loadtxt(selected, usecols=_JOINT_COLUMNS, dtype=np.float64, ndmin=2, comments=None)
    except ValueError as error:
        for i in line_index:
            fields = lines[i].split()
            if len(fields) != 12:
                raise SkeletonFormatError(path, i + 1, f"expected 12 values per joint, found {len(fields)}") from None
            for field in fields:
                try:
                    float(field)
                except ValueError:
                    raise SkeletonFormatError(path, i + 1, f"non-numeric value {field!r}") from None
        raise SkeletonFormatError(path, int(line_index[0]) + 1, f"unreadable joint lines: {error}") from None


# ----------------------------------------------------------------------------------------------------------------
# 2. Raw PKU-MMD reader
# ----------------------------------------------------------------------------------------------------------------

PKU_VIEWS = {"L": 1, "M": 2, "R": 3}
PKU_VIDEO = {1: re.compile(r"(\d+)-([LMR])"), 2: re.compile(r"A(\d+)N(\d+)-([LMR])")}


def read_pku_skeleton(path) -> np.ndarray:
    """A PKU-MMD skeleton file (one line per frame: 2 bodies x 25 joints x xyz) -> (T, 2, 25, 3) float32."""
    path = Path(path)
    lines = path.read_bytes().decode("latin-1").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise SkeletonFormatError(path, 1, "zero frames (empty skeleton file)")
    try:
        values = np.loadtxt(lines, dtype=np.float64, ndmin=2, comments=None)
    except ValueError:
        values = None
    if values is None or values.shape[1] != 150:
        for i, line in enumerate(lines):
            fields = line.split()
            if len(fields) != 150:
                raise SkeletonFormatError(path, i + 1, f"expected 150 values (2 bodies x 25 joints x xyz), "
                                                       f"found {len(fields)}") from None
            for field in fields:
                try:
                    float(field)
                except ValueError:
                    raise SkeletonFormatError(path, i + 1, f"non-numeric value {field!r}") from None
        raise SkeletonFormatError(path, 1, "unreadable skeleton values")
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        raise SkeletonFormatError(path, int(np.argmin(finite)) + 1, "non-finite joint value")
    return values.reshape(-1, 2, NUM_JOINTS, 3).astype(np.float32)


def read_pku_labels(path) -> list[tuple[int, int, int]]:
    """A PKU-MMD label file (`label,start,end,confidence` per line) -> [(action 1..51, start, end)], 1-based."""
    path, rows = Path(path), []
    for i, line in enumerate(Path(path).read_text(errors="replace").splitlines()):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        try:
            action, start, end = int(fields[0]), int(fields[1]), int(fields[2])
        except (ValueError, IndexError):
            raise SkeletonFormatError(path, i + 1, f"expected 'label,start,end,confidence', found {line!r}") from None
        if not 1 <= action <= 51:
            raise SkeletonFormatError(path, i + 1, f"action id {action} outside PKU-MMD's 1..51")
        if start < 1 or end < start:
            raise SkeletonFormatError(path, i + 1, f"bad frame range {start}..{end} (1-based, inclusive)")
        rows.append((action, start, end))
    return rows


def read_pku_split(path) -> tuple[list[str], list[str]]:
    """A PKU-MMD split file ('Training videos:' / 'Validataion videos:' lists) -> (train ids, val ids)."""
    parts, current = {"train": [], "val": []}, None
    for line in Path(path).read_text(errors="replace").splitlines():
        lowered = line.lower()
        if "train" in lowered and ":" in line:
            current, line = "train", line.split(":", 1)[1]
        elif ("valid" in lowered or "test" in lowered) and ":" in line:
            current, line = "val", line.split(":", 1)[1]
        if current is not None:
            parts[current] += [v.strip() for v in line.split(",") if v.strip()]
    if not parts["train"] or not parts["val"]:
        raise SkeletonFormatError(path, 1, "expected 'Training videos:' and 'Validataion videos:' lists")
    return parts["train"], parts["val"]


def pku_video_prefix(video_id: str, phase: int) -> str:
    """'A01N03-M' (Phase II) -> 'A001N003V002';  '0002-L' (Phase I) -> 'F002V001' (AimCLR's naming)."""
    match = PKU_VIDEO[phase].fullmatch(video_id)
    if match is None:
        raise ValueError(f"{video_id!r} is not a PKU-MMD Phase {phase} video id "
                         f"({'A01N01-L' if phase == 2 else '0002-L'} style)")
    *numbers, view = match.groups()
    if phase == 2:
        return f"A{int(numbers[0]):03d}N{int(numbers[1]):03d}V{PKU_VIEWS[view]:03d}"
    return f"F{int(numbers[0]):03d}V{PKU_VIEWS[view]:03d}"


def cut_instance(xyz: np.ndarray, start: int, end: int) -> np.ndarray:
    """Frames start..end of a video, 1-based and inclusive (PKU-MMD's label convention): xyz[start-1:end]."""
    return xyz[start - 1:end]


def pku_instances(video_id: str, phase: int, xyz: np.ndarray, labels) -> tuple[list, list[str]]:
    """-> ([(name, 0-based label, (t, 2, 25, 3) frames)], problems); L = 1-based index in the label file.

    A range that ends past the last frame is clipped to it; one that starts past it is a problem (skipped).
    """
    prefix, instances, problems = pku_video_prefix(video_id, phase), [], []
    for k, (action, start, end) in enumerate(labels, start=1):
        name = f"{prefix}C{action:03d}L{k:03d}"
        if start > len(xyz):
            problems.append(f"{name}: starts at frame {start} but {video_id} has {len(xyz)} frames")
            continue
        instances.append((name, action - 1, cut_instance(xyz, start, min(end, len(xyz)))))
    return instances, problems


# ----------------------------------------------------------------------------------------------------------------
# 3. Samples in the ST-GCN layout, and what a conversion did
# ----------------------------------------------------------------------------------------------------------------

def to_stgcn_sample(xyz: np.ndarray) -> np.ndarray:
    """(T, M, 25, 3) frames -> (3, min(T, 300), 25, 2) in the ST-GCN channel order, bodies zero-padded to 2."""
    t, m = min(len(xyz), MAX_FRAMES), min(xyz.shape[1], MAX_BODIES)
    sample = np.zeros((3, t, NUM_JOINTS, MAX_BODIES), dtype=np.float32)
    sample[..., :m] = xyz[:t, :m].transpose(3, 0, 2, 1)
    return sample


@dataclasses.dataclass
class ConversionReport:
    """What a conversion wrote and what it skipped (printed at the end and saved as JSON next to the splits)."""
    written: dict = dataclasses.field(default_factory=dict)      # "ntu60/xsub/train" -> number of samples
    skipped_missing: int = 0                                     # listed in the missing-skeleton file
    ignored: int = 0                                             # not part of the requested datasets
    corrupt: list = dataclasses.field(default_factory=list)      # [(file, "line N: what")]
    truncated_to_300: int = 0                                    # samples longer than 300 frames

    def summary(self) -> str:
        lines = [f"  {key}: {n} samples" for key, n in sorted(self.written.items())]
        lines.append(f"  skipped (missing-skeleton list): {self.skipped_missing}")
        if self.ignored:
            lines.append(f"  ignored (not in the requested datasets): {self.ignored}")
        if self.truncated_to_300:
            lines.append(f"  longer than {MAX_FRAMES} frames, truncated: {self.truncated_to_300}")
        lines.append(f"  corrupt, skipped: {len(self.corrupt)}")
        lines += [f"    {file}: {why}" for file, why in self.corrupt]
        return "\n".join(lines)

    def save(self, path) -> None:
        write_text(path, json.dumps(dataclasses.asdict(self), indent=1))


# ----------------------------------------------------------------------------------------------------------------
# 4. Raw data -> benchmark splits: parallel parsing, rows written atomically, memory flat
# ----------------------------------------------------------------------------------------------------------------

def find_ntu_files(raw_dirs) -> dict[str, Path]:
    """All `*.skeleton` files under the given folders (recursively), by sample name, sorted; duplicates are errors."""
    found: dict[str, Path] = {}
    for raw_dir in [raw_dirs] if isinstance(raw_dirs, (str, Path)) else raw_dirs:
        if not Path(raw_dir).is_dir():
            raise DataNotFoundError(f"--raw folder {raw_dir} does not exist (a folder of NTU .skeleton files)")
        for path in Path(raw_dir).rglob("*.skeleton"):
            name = sample_name(path.name)
            if name in found:
                raise DataFormatError(f"sample {name} appears twice: {found[name]} and {path}")
            found[name] = path
    return dict(sorted(found.items()))


def _read_ntu_task(path) -> tuple[np.ndarray | None, str | None]:
    """Worker: parse one file; a format error becomes a reason string instead of stopping the run."""
    try:
        return read_skeleton(path).xyz, None
    except SkeletonFormatError as error:
        return None, f"line {error.line}: {error.what}"
    except OSError as error:
        return None, f"cannot read: {error}"


def parallel_map(function: Callable, items: list, workers: int | None, desc: str, unit: str = "file",
                 describe: Callable = str) -> Iterator:
    """Ordered map of `function` over `items` with a tqdm bar: in worker processes, or in-process for workers <= 1.

    Workers are started by multiprocessing's fork server (a single-threaded process that imported this module
    once), so no worker is forked from the caller, whose threads (tqdm's monitor, torch's pools) would be copied
    mid-flight. Whatever goes wrong on an item -- an exception that no format check foresaw, a result that
    cannot be sent back, a worker that dies -- raises WorkerError naming `describe(item)`; the items not yet
    started are cancelled (also when the caller stops early: close the generator), so a failure ends the map
    within seconds instead of hanging it. Workers ignore Ctrl-C; the caller gets it and stops them.
    """
    workers = os.cpu_count() if workers is None else workers
    task, pool = functools.partial(_guarded, function), None
    if workers <= 1 or len(items) < 2:
        results = map(task, items)
    else:
        pool = ProcessPoolExecutor(min(workers, len(items)), mp_context=_worker_context(),
                                   initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN))
        results = pool.map(task, items, chunksize=max(1, min(16, len(items) // (8 * workers))))
    bar = tqdm(total=len(items), desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)
    try:
        for item in items:
            try:
                ok, result = next(results)
            except Exception as error:  # BrokenProcessPool (a worker died), or a result that could not be sent
                raise WorkerError(f"a worker process failed on {describe(item)} or an item next to it "
                                  f"({type(error).__name__}: {error}); the run stopped") from None
            if not ok:
                raise WorkerError(f"{describe(item)}: {result}; not a format problem the reader checks for, so "
                                  f"the run stopped")
            yield result
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _guarded(function: Callable, item) -> tuple[bool, object]:
    """Worker side: (True, function(item)) or (False, "<type>: <message> (at <file>:<line>)"), so no exception
    object has to cross the process boundary."""
    try:
        return True, function(item)
    except Exception as error:
        where = traceback.extract_tb(error.__traceback__)[-1]
        return False, f"{type(error).__name__}: {error} (at {Path(where.filename).name}:{where.lineno})"


def _worker_context():
    """The fork server where the platform has one (workers fork from a clean process that preloaded this module,
    so they start in milliseconds), else spawn; never a fork of the calling process."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])  # takes effect when the server starts (once per process)
    return context


class _SplitWriters:
    """One (array, labels) writer per destination (dataset, split, part); rows are routed by the caller."""

    def __init__(self, data_root, counts: dict[tuple[str, str, str], int]):
        self.entries = {}  # (dataset, split, part) -> (writer, names, labels)
        for (dataset, split, part), n in counts.items():
            path = split_dir(data_root, dataset, split) / f"{part}_data.npy"
            self.entries[dataset, split, part] = (NpyRowWriter(path, (n, 3, MAX_FRAMES, NUM_JOINTS, MAX_BODIES)),
                                                  [], [])

    def write(self, destinations, name: str, label: int, sample: np.ndarray) -> None:
        for destination in destinations:
            writer, names, labels = self.entries[destination]
            writer.write_padded(sample)
            names.append(name)
            labels.append(label)

    def close(self, report: ConversionReport) -> None:
        """Install every split part (the old training caches of a replaced one are deleted); none if one is empty."""
        _check_no_empty_part({key: len(names) for key, (_, names, _) in self.entries.items()},
                             "after skipping the corrupt files listed above, the readable ones", "")
        for (dataset, split, part), (writer, names, labels) in self.entries.items():
            writer.close()
            write_labels(writer.path.with_name(f"{part}_label.pkl"), names, labels)
            remove_part_arrays(writer.path.parent, part, keep=[writer.path])
            report.written[f"{dataset}/{split}/{part}"] = len(names)

    def abort(self) -> None:
        for writer, _, _ in self.entries.values():
            writer.abort()


def _count(all_destinations, destination_lists) -> dict:
    """Rows per destination; every destination gets its files, even an empty one."""
    counts = dict.fromkeys(all_destinations, 0)
    for destinations, n in destination_lists:
        for destination in destinations:
            counts[destination] = counts.get(destination, 0) + n
    return counts


def _check_no_empty_part(counts: dict, found: str, fix: str) -> None:
    """DataFormatError naming every (dataset, split, part) without rows: an empty part is refused where it is made."""
    empty = [" ".join(key) for key, n in counts.items() if n == 0]
    if empty:
        raise DataFormatError(f"{found} give no sample to {', '.join(empty)}; a split needs training and validation "
                              f"samples, so nothing was written{fix}")


def _refuse_to_replace(data_root, destinations, force: bool) -> None:
    """SplitExistsError (naming --force) if any destination split part exists already."""
    refuse_to_overwrite([split_dir(data_root, d, s) / f"{p}_{kind}" for d, s, p in destinations
                         for kind in ("label.pkl", "data.npy")], force)


def convert_ntu(raw_dirs, data_root="datasets", datasets=("ntu60", "ntu120"), missing_file=None,
                workers: int | None = None, force: bool = False) -> ConversionReport:
    """Raw NTU `.skeleton` folders -> ST-GCN layout for every benchmark split of the requested datasets.

    Each file is parsed once (in parallel) and written to all splits it belongs to. Missing-skeleton samples are
    skipped and counted (default list: resources/ntu120_samples_with_missing_skeletons.txt, which contains the
    NTU-60 one); corrupt files are skipped and listed in the report, which is printed by the CLI and saved as
    datasets/<dataset>/conversion_report.json. Refused before anything is written: a split that exists (unless
    `force`), a split part that would get no sample.
    """
    datasets = tuple(datasets)
    for dataset in datasets:
        check_choice("dataset", dataset, ("ntu60", "ntu120", "demo"))
    files = find_ntu_files(raw_dirs)
    default_missing = [] if datasets == ("demo",) else [RESOURCES / "ntu120_samples_with_missing_skeletons.txt"]
    if missing_file and not Path(missing_file).is_file():
        raise DataNotFoundError(f"--missing {missing_file} not found (the missing-skeleton list; leave --missing "
                                f"out to use the one in resources/)")
    missing = set().union(*(read_missing_list(p) for p in ([missing_file] if missing_file else default_missing)))
    report, names = ConversionReport(), []
    for name in files:
        if not NTU_NAME.fullmatch(name) or not any(ntu_in_dataset(name, d) for d in datasets):
            report.ignored += 1
        elif name in missing:
            report.skipped_missing += 1
        else:
            names.append(name)
    if not names:
        folders = [raw_dirs] if isinstance(raw_dirs, (str, Path)) else raw_dirs
        raise DataNotFoundError(f"no NTU samples of {', '.join(datasets)} (SsssCcccPpppRrrrAaaa.skeleton files) "
                                f"found under {', '.join(map(str, folders))}: check --raw and --dataset")

    def destinations(name):
        return [(d, s, "train" if ntu_is_train(name, d, s) else "val")
                for d in datasets if ntu_in_dataset(name, d) for s in DATASETS[d]]

    every = [(d, s, p) for d in datasets for s in DATASETS[d] for p in PARTS]
    _refuse_to_replace(data_root, every, force)
    counts = _count(every, ((destinations(name), 1) for name in names))
    _check_no_empty_part(counts, f"the {len(names)} sample files found", "; convert a folder that holds samples of "
                         "both parts of every split, or leave that dataset out of --dataset")
    writers = _SplitWriters(data_root, counts)
    try:
        with contextlib.closing(parallel_map(_read_ntu_task, [files[n] for n in names], workers,
                                             "parse NTU skeletons")) as results:
            for name, (xyz, error) in zip(names, results):
                if error is not None:
                    report.corrupt.append((str(files[name]), error))
                    tqdm.write(f"skipping corrupt {files[name]}: {error}", file=sys.stderr)
                    continue
                report.truncated_to_300 += len(xyz) > MAX_FRAMES
                writers.write(destinations(name), name + ".skeleton", parse_ntu_name(name).action - 1,
                              to_stgcn_sample(xyz))
        writers.close(report)
    except BaseException:
        writers.abort()
        raise
    for dataset in datasets:
        report.save(Path(data_root) / dataset / "conversion_report.json")
    return report


def _read_pku_task(task) -> tuple[list, list[str]]:
    """Worker: one PKU-MMD video -> (its instances, problems); a broken file becomes a problem, not a crash."""
    video_id, phase, skeleton_path, label_path = task
    try:
        return pku_instances(video_id, phase, read_pku_skeleton(skeleton_path), read_pku_labels(label_path))
    except SkeletonFormatError as error:
        return [], [f"line {error.line} of {error.path}: {error.what}"]
    except OSError as error:
        return [], [f"cannot read: {error}"]


def convert_pku(phase: int, skeleton_dir, label_dir, split_files: dict, data_root="datasets",
                workers: int | None = None, force: bool = False) -> ConversionReport:
    """Raw PKU-MMD Phase I/II -> instance-level ST-GCN layout splits, e.g. datasets/pku2/xsub/.

    split_files: {"xsub": path, "xview": path} (the official cross-subject / cross-view lists; either may be
    left out). Skeleton and label files are `<video id>.txt` in their folders. Labels are action id - 1 in the
    51-id space; names sort by video then action then instance. Unreadable videos and instances are reported.
    Refused before anything is written: a split that exists (unless `force`), a split part without videos.
    """
    dataset = f"pku{phase}"
    check_choice("dataset", dataset, ("pku1", "pku2"))
    for flag, folder in (("--skeletons", skeleton_dir), ("--labels", label_dir)):
        if not Path(folder).is_dir():
            raise DataNotFoundError(f"{flag} folder {folder} not found (PKU-MMD's folder of <video>.txt files)")
    video_part = {}
    for split, path in split_files.items():
        check_choice(f"split of {dataset}", split, DATASETS[dataset])
        if not Path(path).is_file():
            raise DataNotFoundError(f"--{split} split file {path} not found (PKU-MMD's official "
                                    f"{'cross-subject' if split == 'xsub' else 'cross-view'} list of videos)")
        train, val = read_pku_split(path)
        video_part[split] = {**{v: "train" for v in train}, **{v: "val" for v in val}}
    videos = sorted(set().union(*video_part.values()), key=lambda v: pku_video_prefix(v, phase))
    report, tasks, sizes = ConversionReport(), [], []
    for video in videos:
        skeleton, label = Path(skeleton_dir) / f"{video}.txt", Path(label_dir) / f"{video}.txt"
        absent = [p for p in (skeleton, label) if not p.is_file()]
        if absent:
            report.corrupt.append((video, f"missing file {absent[0]}"))
            continue
        try:  # label files are tiny: read them here to size the arrays (failed rows are trimmed at the end)
            sizes.append(len(read_pku_labels(label)))
        except SkeletonFormatError:
            sizes.append(0)
        tasks.append((video, phase, skeleton, label))
    if not tasks:
        raise DataNotFoundError(f"none of the {len(videos)} listed videos found in {skeleton_dir} and {label_dir}")

    def destinations(video):
        return [(dataset, split, parts[video]) for split, parts in video_part.items() if video in parts]

    every = [(dataset, s, p) for s in video_part for p in PARTS]
    _refuse_to_replace(data_root, every, force)
    counts = _count(every, ((destinations(t[0]), n) for t, n in zip(tasks, sizes)))
    _check_no_empty_part(counts, f"the {len(tasks)} videos found", f"; check that the split files' videos are in "
                         f"--skeletons {skeleton_dir} and --labels {label_dir}")
    writers = _SplitWriters(data_root, counts)
    try:
        with contextlib.closing(parallel_map(_read_pku_task, tasks, workers, f"parse PKU-MMD phase {phase}",
                                             unit="video", describe=lambda task: f"video {task[0]} ({task[2]})")
                                ) as results:
            for (video, *_), (instances, problems) in zip(tasks, results):
                for problem in problems:
                    report.corrupt.append((video, problem))
                    tqdm.write(f"skipping in {video}: {problem}", file=sys.stderr)
                for name, label, xyz in sorted(instances, key=lambda item: item[0]):
                    report.truncated_to_300 += len(xyz) > MAX_FRAMES
                    writers.write(destinations(video), name, label, to_stgcn_sample(xyz))
        writers.close(report)
    except BaseException:
        writers.abort()
        raise
    report.save(Path(data_root) / dataset / "conversion_report.json")
    return report
