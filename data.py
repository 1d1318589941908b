"""Skeleton data for C2VL: NTU RGB+D 60/120 and PKU-MMD I/II, every format users already have, and a demo dataset.

Paper part: the training input of METHOD.md section 1, a skeleton sequence x_i in R^{C x T x V x M}
(C = 3 coordinates, T frames, V = 25 Kinect v2 joints, M = 2 persons), its benchmark splits (NTU-60 xsub/xview,
NTU-120 xsub/xset, PKU-MMD I/II xsub/xview) and the sample names that the cached prompt features of prompts.py and
the teacher bank of distill.py are aligned to (a Dataset item is (x_i, y_i, i)).

What this file does, top to bottom:
  1. raw NTU `.skeleton` files -> ST-GCN layout: `{train,val}_data.npy` float32 (N, 3, 300, 25, 2), zero-padded,
     + `{train,val}_label.pkl` = (names, 0-based labels). Parsing is vectorised per file (np.loadtxt over the joint
     lines) and parallel across files; a corrupt file is named with its line, skipped and listed at the end.
  2. raw PKU-MMD skeleton + label + split files -> instance-level splits of the same layout. Instances are cut with
     1-based inclusive frame ranges and named as the AimCLR conversion names them (Phase II `A0aaN0nnVvvvCcccLlll`,
     Phase I `FfffVvvvCcccLlll`) so C2VL's released prompts match by name. Labels keep the 51-id space.
  3. readers for ST-GCN/AimCLR, 2s-AGCN/CMD, AimCLR 50-frame, CTR-GCN `.npz` and pyskl `_3danno.pkl` files.
     Arrays are memory-mapped or read row by row; pickles go through a restricted unpickler.
  4. preprocessing for training, cached next to the source as `{part}_data.{normalization}_T{frames}.npy`:
       valid frames          F = the frames in which any body has a non-zero joint (empty frames are dropped)
       resize (all)          x'[t] = (1 - w) x[F[i0]] + w x[F[i0 + 1]],  p = (t + 1/2) |F| / T - 1/2 clipped to
                             [0, |F| - 1], i0 = floor(p), w = p - i0   (cv2.resize INTER_LINEAR, as CrosSCLR uses)
       "aimclr" (default)    x_v[t, m] <- x_v[t, m] - x_21[t, m]                     per body m and frame t
                             x_21[t, m] <- x_21[t, m] - x_21[t0(m), m]               (the centre keeps its trajectory)
                             x[t, m] <- R_y(theta_t,m) x[t, m],  R_y turns the shoulder vector x_9 - x_5 (xz-part)
                             onto +x                                                 (1-based joint numbers)
       "ctrgcn"              x <- x - x_2[t0, body 0]  (SpineMid of the first valid frame, CTR-GCN's translation)
       "none"                coordinates as recorded
  5. `SkeletonDataset` / `load_split`: items (float32 (3, T, 25, 2), label, index), index = position in the split.
  6. the demo dataset: deterministic synthetic actions written as real `.skeleton` files, read back by (1), with
     rendered RGB frames (`demo_frame_source`) and 16 noisy LLaVA-style answers per sample (C2VL's JSON format).
  7. `python data.py {ntu,pku,convert,demo,info} --help`.

What it does not do: augmentation (train.py), prompt generation/encoding (prompts.py), bone/motion streams,
and the NTU "denoising" heuristics of CTR-GCN/pyskl (their denoised arrays can be imported instead).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import pickle
import re
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from utils.files import (ArrayFile, DataFormatError, DataNotFoundError, NpyRowWriter, UnsafePickleError,
                         atomic_path, safe_load_pickle)

# ----------------------------------------------------------------------------------------------------------------
# 1. Datasets, benchmarks, joints
# ----------------------------------------------------------------------------------------------------------------

NUM_JOINTS = 25
MAX_FRAMES = 300  # fixed T of the ST-GCN layout (NTU clips are at most 300 frames)
MAX_BODIES = 2
DATASETS = {"ntu60": ("xsub", "xview"), "ntu120": ("xsub", "xset"), "pku1": ("xsub", "xview"),
            "pku2": ("xsub", "xview"), "demo": ("xsub", "xview")}
PARTS = ("train", "val")
NORMALIZATIONS = ("aimclr", "none", "ctrgcn")
RESOURCES = Path(__file__).resolve().parent / "resources"

# Kinect v2 joints (0-based) used by the normalisations.
SPINE_MID, SHOULDER_LEFT, SHOULDER_RIGHT, SPINE_SHOULDER = 1, 4, 8, 20

NTU60_XSUB_TRAIN_SUBJECTS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN_SUBJECTS = NTU60_XSUB_TRAIN_SUBJECTS + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94,
    95, 97, 98, 100, 103)
NTU_XVIEW_TRAIN_CAMERAS = (2, 3)
NTU_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


class SkeletonFormatError(ValueError):
    """A raw skeleton/label/split file breaks the format; names the file and the 1-based line."""

    def __init__(self, path, line: int, what: str):
        self.path, self.line, self.what = str(path), line, what
        super().__init__(f"{path}:{line}: {what}")


def num_classes(dataset: str) -> int:
    """Number of classes of a dataset; PKU-MMD I and II keep the 51-id label space."""
    _check_choice("dataset", dataset, DATASETS)
    return {"ntu60": 60, "ntu120": 120, "pku1": 51, "pku2": 51, "demo": len(DEMO_CLASSES)}[dataset]


def class_names(dataset: str) -> list[str]:
    """Class names in label order (NTU and PKU-MMD from the files shipped in resources/)."""
    _check_choice("dataset", dataset, DATASETS)
    if dataset == "demo":
        return list(DEMO_CLASSES)
    if dataset.startswith("pku"):
        return (RESOURCES / "pku_mmd_class_names.txt").read_text().splitlines()
    return (RESOURCES / "ntu120_class_names.txt").read_text().splitlines()[:num_classes(dataset)]


def split_dir(data_root="datasets", dataset: str = "demo", split: str = "xsub") -> Path:
    """Folder of one benchmark split, e.g. datasets/ntu60/xsub/ (ST-GCN layout + training caches)."""
    _check_choice("dataset", dataset, DATASETS)
    _check_choice(f"split of {dataset}", split, DATASETS[dataset])
    return Path(data_root) / dataset / split


def _check_choice(what, value, choices):
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


@dataclasses.dataclass(frozen=True)
class NtuName:
    setup: int
    camera: int
    subject: int
    replication: int
    action: int


def parse_ntu_name(name: str) -> NtuName:
    """'S001C002P003R002A013(.skeleton)' -> NtuName(1, 2, 3, 2, 13)."""
    match = NTU_NAME.fullmatch(Path(name).name.removesuffix(".skeleton"))
    if match is None:
        raise ValueError(f"{name!r} is not an NTU sample name SsssCcccPpppRrrrAaaa")
    return NtuName(*map(int, match.groups()))


def ntu_in_dataset(name: str, dataset: str) -> bool:
    """NTU-60 = setups 1-17 and actions 1-60; NTU-120 adds setups 18-32 and actions 61-120; demo uses all."""
    n = parse_ntu_name(name)
    if dataset == "ntu60":
        return n.setup <= 17 and n.action <= 60
    return dataset in ("ntu120", "demo")


def ntu_is_train(name: str, dataset: str, split: str) -> bool:
    """The benchmark rule of CONVENTIONS.md: training subjects (xsub), cameras 2 and 3 (xview), even setups (xset).

    The demo dataset follows NTU-60's rules, so the same split code is exercised on it.
    """
    _check_choice(f"split of {dataset}", split, DATASETS[dataset])
    n = parse_ntu_name(name)
    if split == "xsub":
        return n.subject in (NTU120_XSUB_TRAIN_SUBJECTS if dataset == "ntu120" else NTU60_XSUB_TRAIN_SUBJECTS)
    if split == "xview":
        return n.camera in NTU_XVIEW_TRAIN_CAMERAS
    return n.setup % 2 == 0  # xset


def read_missing_list(path) -> set[str]:
    """Sample names in an NTU missing-skeleton list; header lines and blank lines are ignored."""
    return {m.group(0) for m in NTU_NAME.finditer(Path(path).read_text(errors="replace"))}


def sample_name(name: str) -> str:
    """Canonical sample name: the key of the prompt JSON files (NTU names lose their `.skeleton` extension)."""
    return name.removesuffix(".skeleton")


# ----------------------------------------------------------------------------------------------------------------
# 2. Raw NTU .skeleton reader
# ----------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class SkeletonFile:
    """One parsed NTU `.skeleton` file; bodies are the (at most 2) most active body slots, frames as recorded."""
    path: Path
    xyz: np.ndarray        # (T, M, 25, 3) float32, metres in camera space; zeros where a body is absent
    color_xy: np.ndarray   # (T, M, 25, 2) float32, colorX/colorY pixels in the 1920x1080 RGB frame
    bodies_per_frame: np.ndarray  # (T,) int, bodies listed in each frame (before keeping at most M)

    @property
    def num_frames(self) -> int:
        return self.xyz.shape[0]

    @property
    def name(self) -> str:
        return sample_name(self.path.name)


_JOINT_COLUMNS = (0, 1, 2, 5, 6, 11)  # x y z colorX colorY trackingState (column 11 proves 12 values per line)


def read_skeleton(path, max_bodies: int = MAX_BODIES) -> SkeletonFile:
    """Parse an NTU `.skeleton` file; raises SkeletonFormatError(path, line, what) where the format breaks.

    The frame/body structure is walked line by line (a few hundred lines per file); the 25 joint lines of every
    body are then parsed in one vectorised np.loadtxt call.
    # Reconstruction: bodies are the per-frame body slots (2s-AGCN/CrosSCLR); the `max_bodies` slots with the
    # largest motion energy (sum over x, y, z of the std over present frames and joints) are kept, most active
    # first. ST-GCN keeps the first two slots; tracking by bodyID splits one person when Kinect re-assigns its ID.
    """
    path = Path(path)
    lines = path.read_bytes().decode("latin-1").splitlines()
    num_frames, entries = _walk_skeleton_layout(lines, path)
    frame_of, slot_of, first_line = (np.array(column, dtype=np.int64) for column in zip(*entries))
    line_index = (first_line[:, None] + np.arange(NUM_JOINTS)).ravel()  # (B*25,) 0-based line numbers
    values = _parse_joint_lines(lines, line_index, path)  # (B*25, 6)
    finite = np.isfinite(values[:, :5]).all(axis=1)
    if not finite.all():
        bad = int(line_index[np.argmin(finite)])
        raise SkeletonFormatError(path, bad + 1, f"non-finite joint value in {lines[bad].strip()[:60]!r}")
    values = values.reshape(len(entries), NUM_JOINTS, len(_JOINT_COLUMNS))
    num_slots = int(slot_of.max()) + 1
    table = np.zeros((num_frames, num_slots, NUM_JOINTS, 5), dtype=np.float32)  # (T, S, 25, xyz+colorXY)
    table[frame_of, slot_of] = values[:, :, :5]
    keep = _most_active_slots(table[..., :3], frame_of, slot_of, max_bodies)
    bodies = np.bincount(frame_of, minlength=num_frames)
    return SkeletonFile(path, np.ascontiguousarray(table[:, keep, :, :3]),
                        np.ascontiguousarray(table[:, keep, :, 3:5]), bodies)


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


def _most_active_slots(xyz, frame_of, slot_of, max_bodies) -> np.ndarray:
    """Indices of the body slots with the largest motion energy, most active first (ties: lower slot first)."""
    energy = []
    for s in range(xyz.shape[1]):
        present = xyz[frame_of[slot_of == s], s]  # (F_s, 25, 3)
        energy.append(float(present.reshape(-1, 3).std(axis=0).sum()) if len(present) > 1 else 0.0)
    return np.argsort(-np.array(energy), kind="stable")[:max_bodies]


def plain_read_skeleton(path) -> np.ndarray:
    """Reference line-by-line reader (the ST-GCN way: one readline and dict per value); used by the benchmark.

    Returns (3, T, 25, 2) float32 with the first two bodies of each frame.
    """
    with open(path) as f:
        num_frames = int(f.readline())
        frames = []
        for _ in range(num_frames):
            bodies = []
            for _ in range(int(f.readline())):
                info_keys = ("bodyID", "clipedEdges", "handLeftConfidence", "handLeftState", "handRightConfidence",
                             "handRightState", "isRestricted", "leanX", "leanY", "trackingState")
                body = dict(zip(info_keys, f.readline().split()))
                joints = []
                for _ in range(int(f.readline())):
                    joint_keys = ("x", "y", "z", "depthX", "depthY", "colorX", "colorY", "orientationW",
                                  "orientationX", "orientationY", "orientationZ", "trackingState")
                    joints.append({k: float(v) for k, v in zip(joint_keys, f.readline().split())})
                body["joints"] = joints
                bodies.append(body)
            frames.append(bodies)
    data = np.zeros((3, num_frames, NUM_JOINTS, MAX_BODIES), dtype=np.float32)
    for t, bodies in enumerate(frames):
        for m, body in enumerate(bodies[:MAX_BODIES]):
            for v, joint in enumerate(body["joints"]):
                data[:, t, v, m] = [joint["x"], joint["y"], joint["z"]]
    return data


# ----------------------------------------------------------------------------------------------------------------
# 3. Raw PKU-MMD reader
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
# 4. Writing the ST-GCN layout: atomic, row by row, memory-flat
# ----------------------------------------------------------------------------------------------------------------

def write_labels(path, names: list[str], labels) -> None:
    """`*_label.pkl` as every codebase of the field reads it: pickled (list of names, list of int labels)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump((list(names), [int(y) for y in labels]), f, protocol=4)


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
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(dataclasses.asdict(self), indent=1))


# ----------------------------------------------------------------------------------------------------------------
# 5. Raw data -> benchmark splits
# ----------------------------------------------------------------------------------------------------------------

def find_ntu_files(raw_dirs) -> dict[str, Path]:
    """All `*.skeleton` files under the given folders (recursively), by sample name, sorted; duplicates are errors."""
    found: dict[str, Path] = {}
    for raw_dir in [raw_dirs] if isinstance(raw_dirs, (str, Path)) else raw_dirs:
        if not Path(raw_dir).is_dir():
            raise DataNotFoundError(f"raw skeleton folder {raw_dir} does not exist")
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


def parallel_map(function, items: list, workers: int | None, desc: str, unit: str = "file") -> Iterator:
    """Ordered map over a process pool (or in-process for workers <= 1) with a tqdm progress bar."""
    workers = os.cpu_count() if workers is None else workers
    bar = tqdm(total=len(items), desc=desc, unit=unit, dynamic_ncols=True, file=sys.stderr)
    if workers <= 1 or len(items) < 2:
        for item in items:
            yield function(item)
            bar.update()
    else:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(workers) as pool:
            for result in pool.imap(function, items, chunksize=max(1, min(16, len(items) // (8 * workers)))):
                yield result
                bar.update()
    bar.close()


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
        for (dataset, split, part), (writer, names, labels) in self.entries.items():
            writer.close()
            write_labels(writer.path.with_name(f"{part}_label.pkl"), names, labels)
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


def convert_ntu(raw_dirs, data_root="datasets", datasets=("ntu60", "ntu120"), missing_file=None,
                workers: int | None = None) -> ConversionReport:
    """Raw NTU `.skeleton` folders -> ST-GCN layout for every benchmark split of the requested datasets.

    Each file is parsed once (in parallel) and written to all splits it belongs to. Missing-skeleton samples are
    skipped and counted (default list: resources/ntu120_samples_with_missing_skeletons.txt, which contains the
    NTU-60 one); corrupt files are skipped and listed in the report, which is printed by the CLI and saved as
    datasets/<dataset>/conversion_report.json.
    """
    datasets = tuple(datasets)
    for dataset in datasets:
        _check_choice("dataset", dataset, ("ntu60", "ntu120", "demo"))
    files = find_ntu_files(raw_dirs)
    default_missing = [] if datasets == ("demo",) else [RESOURCES / "ntu120_samples_with_missing_skeletons.txt"]
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
        raise DataNotFoundError(f"no NTU samples of {', '.join(datasets)} found under {raw_dirs}")

    def destinations(name):
        return [(d, s, "train" if ntu_is_train(name, d, s) else "val")
                for d in datasets if ntu_in_dataset(name, d) for s in DATASETS[d]]

    every = [(d, s, p) for d in datasets for s in DATASETS[d] for p in PARTS]
    writers = _SplitWriters(data_root, _count(every, ((destinations(name), 1) for name in names)))
    try:
        results = parallel_map(_read_ntu_task, [files[n] for n in names], workers, "parse NTU skeletons")
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
                workers: int | None = None) -> ConversionReport:
    """Raw PKU-MMD Phase I/II -> instance-level ST-GCN layout splits, e.g. datasets/pku2/xsub/.

    split_files: {"xsub": path, "xview": path} (the official cross-subject / cross-view lists; either may be
    left out). Skeleton and label files are `<video id>.txt` in their folders. Labels are action id - 1 in the
    51-id space; names sort by video then action then instance. Unreadable videos and instances are reported.
    """
    dataset = f"pku{phase}"
    _check_choice("dataset", dataset, ("pku1", "pku2"))
    video_part = {}
    for split, path in split_files.items():
        _check_choice(f"split of {dataset}", split, DATASETS[dataset])
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
    writers = _SplitWriters(data_root, _count(every, ((destinations(t[0]), n) for t, n in zip(tasks, sizes))))
    try:
        results = parallel_map(_read_pku_task, tasks, workers, f"parse PKU-MMD phase {phase}", unit="video")
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


# ----------------------------------------------------------------------------------------------------------------
# 6. Reading the formats users already have
# ----------------------------------------------------------------------------------------------------------------

def read_label_pkl(path) -> tuple[list[str], np.ndarray]:
    """`*_label.pkl` -> (names, labels int64 (N,)); checks the pair structure and integer labels."""
    if not Path(path).is_file():
        raise DataNotFoundError(f"label file {path} not found")
    content = safe_load_pickle(path)
    if not (isinstance(content, (tuple, list)) and len(content) == 2):
        raise DataFormatError(f"{path}: expected a pickled (sample names, labels) pair, found {type(content).__name__}"
                              + (f" of length {len(content)}" if isinstance(content, (tuple, list)) else ""))
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in content[0]]
    labels = np.asarray(content[1])
    if len(names) != len(labels):
        raise DataFormatError(f"{path}: {len(names)} names but {len(labels)} labels")
    return names, _as_int_labels(labels, path)


def _as_int_labels(labels, where) -> np.ndarray:
    labels = np.asarray(labels).reshape(-1)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        as_int = labels.astype(np.int64) if np.issubdtype(labels.dtype, np.number) else None
        if as_int is None or not np.array_equal(as_int, labels):
            raise DataFormatError(f"{where}: labels must be integers, found dtype {labels.dtype}")
        labels = as_int
    return labels.astype(np.int64)


def check_split(names, labels, shape, num_class: int, where: str) -> None:
    """Labels in 0..num_class-1, one label per name, unique names, rows matching names, (N, 3, T, 25, M<=2)."""
    if len(names) != len(labels):
        raise DataFormatError(f"{where}: {len(names)} names but {len(labels)} labels")
    if len(shape) != 5 or shape[1] != 3 or shape[3] != NUM_JOINTS or not 1 <= shape[4] <= MAX_BODIES:
        raise DataFormatError(f"{where}: array shape {tuple(shape)} is not (N, 3, T, 25, M) with M <= 2")
    if shape[0] != len(names):
        raise DataFormatError(f"{where}: the array has {shape[0]} samples but the label file lists {len(names)} "
                              f"names (names and arrays must come from the same conversion)")
    seen, duplicates = {}, []
    for i, name in enumerate(map(sample_name, names)):
        if name in seen:
            duplicates.append(f"{name} (indices {seen[name]} and {i})")
        seen.setdefault(name, i)
    if duplicates:
        raise DataFormatError(f"{where}: {len(duplicates)} duplicate sample names, e.g. {', '.join(duplicates[:3])}")
    labels = np.asarray(labels)
    bad = np.flatnonzero((labels < 0) | (labels >= num_class))
    if len(bad):
        i = int(bad[0])
        hint = (f"; they look 1-based (1..{num_class}), this project expects 0-based labels"
                if labels.min() == 1 and labels.max() == num_class else "")
        raise DataFormatError(f"{where}: {len(bad)} labels outside 0..{num_class - 1}, first: label {labels[i]} of "
                              f"sample {names[i]} (index {i}){hint}")


@dataclasses.dataclass
class ExistingPart:
    """One part (train or val) of a split in a format users already have, before it is installed."""
    names: list[str]
    labels: np.ndarray   # (N,) int64
    shape: tuple         # (N, 3, T, 25, M) of the rows `read` returns
    read: object         # read(start, stop) -> (B, 3, T, 25, M) float32
    source: Path         # the file the rows come from
    preprocessed: str | None = None  # "aimclr_T50" for AimCLR's 50-frame arrays, None for raw 300-frame layouts
    linkable: bool = False           # rows are the file's own float32 (N, 3, T, 25, 2) rows (symlink instead of copy)


FORMATS = ("stgcn", "agcn", "position", "ctrgcn", "pyskl")
_FORMAT_FILES = {"stgcn": "{part}_data.npy", "agcn": "{part}_data_joint.npy", "position": "{part}_position.npy"}


def detect_format(path) -> str:
    """Guess the format of a file or folder from its file names."""
    path = Path(path)
    if path.is_dir():
        for fmt in ("position", "agcn", "stgcn"):
            if (path / _FORMAT_FILES[fmt].format(part="train")).is_file():
                return fmt
        raise DataFormatError(f"{path}: no train_data.npy, train_data_joint.npy or train_position.npy inside")
    name = path.name
    for fmt, suffix in (("ctrgcn", ".npz"), ("pyskl", ".pkl"), ("position", "_position.npy"),
                        ("agcn", "_data_joint.npy"), ("stgcn", "_data.npy")):
        if name.endswith(suffix):
            return fmt
    raise DataFormatError(f"{path}: cannot tell the format from the name; pass --format ({', '.join(FORMATS)})")


def _npy_part(data_path, label_path, preprocessed=None) -> ExistingPart:
    array = ArrayFile.open(data_path)
    names, labels = read_label_pkl(label_path)
    linkable = array.dtype == np.float32 and len(array.shape) == 5 and array.shape[-1] == MAX_BODIES
    return ExistingPart(names, labels, array.shape,
                        lambda start, stop: array.read(start, stop).astype(np.float32, copy=False),
                        Path(data_path), preprocessed, linkable)


def read_stgcn_folder(folder, fmt="stgcn", labels=None) -> dict[str, ExistingPart]:
    """ST-GCN/AimCLR (`{part}_data.npy`), 2s-AGCN/CMD (`{part}_data_joint.npy`) or AimCLR 50-frame
    (`{part}_position.npy`) arrays + `{part}_label.pkl` (for `position`, the 300-frame label files: pass their
    folder as `labels` when they are not next to the arrays)."""
    folder, parts = Path(folder), {}
    for part in PARTS:
        data_path = folder / _FORMAT_FILES[fmt].format(part=part)
        label_path = Path(labels or folder) / f"{part}_label.pkl"
        if not data_path.is_file():
            raise DataNotFoundError(f"{data_path} not found")
        if not label_path.is_file():
            hint = (" AimCLR's 50-frame preprocessing does not copy the labels: pass --labels with the folder of "
                    "the 300-frame train_label.pkl/val_label.pkl it was made from." if fmt == "position" else "")
            raise DataNotFoundError(f"{label_path} not found next to {data_path.name}.{hint}")
        frames = ArrayFile.open(data_path).shape[2] if fmt == "position" else None
        parts[part] = _npy_part(data_path, label_path, f"aimclr_T{frames}" if fmt == "position" else None)
    return parts


CTRGCN_SPLITS = {"NTU60_CS": ("ntu60", "xsub"), "NTU60_CV": ("ntu60", "xview"),
                 "NTU120_CSub": ("ntu120", "xsub"), "NTU120_CSet": ("ntu120", "xset")}


def read_ctrgcn_npz(path, dataset=None, split=None, names_file=None) -> dict[str, ExistingPart]:
    """CTR-GCN's `NTU60_CS.npz`-style file: x_train/x_test (N, 300, 150), y one-hot -> parts train/val.

    The file holds no sample names. With `names_file` (e.g. CTR-GCN's statistics/skes_available_name.txt, the
    list its arrays were made from) the names are recovered in that order; without it they are positional
    (`NTU60_CS/train/000000`) and prompts cannot be matched to samples by name.
    """
    path = Path(path)
    dataset, split = (dataset, split) if dataset and split else CTRGCN_SPLITS.get(path.stem, (dataset, split))
    if not dataset or not split:
        raise DataFormatError(f"{path}: pass --dataset and --split (the name is not one of {list(CTRGCN_SPLITS)})")
    listed = None
    if names_file:
        text = Path(names_file).read_text(errors="replace")
        listed = [m.group(0) for m in NTU_NAME.finditer(text) if ntu_in_dataset(m.group(0), dataset)]
    parts = {}
    with np.load(path) as npz:
        y = {key: np.asarray(npz[key]) for key in ("y_train", "y_test")}
    for part, key in (("train", "train"), ("val", "test")):
        array = ArrayFile.npz_member(path, f"x_{key}")
        if len(array.shape) != 3 or array.shape[2] != 2 * NUM_JOINTS * 3:
            raise DataFormatError(f"{path}: x_{key} has shape {array.shape}, expected (N, T, 150)")
        labels = y[f"y_{key}"].argmax(axis=1) if y[f"y_{key}"].ndim == 2 else y[f"y_{key}"]
        if listed is not None:
            names = [n for n in listed if ntu_is_train(n, dataset, split) == (part == "train")]
            if len(names) != len(array):
                raise DataFormatError(f"{path}: x_{key} has {len(array)} samples but {names_file} lists "
                                      f"{len(names)} {dataset} {split} {part} names")
        else:
            names = [f"{path.stem}/{part}/{i:06d}" for i in range(len(array))]

        def read(start, stop, array=array):
            rows = array.read(start, stop).astype(np.float32, copy=False)  # (B, T, 150)
            return rows.reshape(len(rows), rows.shape[1], MAX_BODIES, NUM_JOINTS, 3).transpose(0, 4, 1, 3, 2)

        parts[part] = ExistingPart(names, _as_int_labels(labels, path), (len(array), 3, array.shape[1],
                                                                          NUM_JOINTS, MAX_BODIES), read, path)
    return {split: parts}


def read_pyskl(path, dataset=None) -> dict[str, dict[str, ExistingPart]]:
    """pyskl's `ntu60_3danno.pkl` / `ntu120_3danno.pkl` -> {split: {part: ExistingPart}} for every split inside.

    The pickle is loaded whole (it cannot be memory-mapped); `convert` writes it once into the ST-GCN layout.
    """
    path = Path(path)
    content = safe_load_pickle(path)
    if not isinstance(content, dict) or "split" not in content or "annotations" not in content:
        raise DataFormatError(f"{path}: expected a dict with 'split' and 'annotations' (pyskl format)")
    by_name = {}
    for k, annotation in enumerate(content["annotations"]):
        try:
            keypoint = np.asarray(annotation["keypoint"], dtype=np.float32)
            by_name[str(annotation["frame_dir"])] = (keypoint, int(annotation["label"]))
        except (KeyError, TypeError, ValueError) as error:
            raise DataFormatError(f"{path}: annotation {k} lacks frame_dir/label/keypoint ({error})") from None
        if keypoint.ndim != 4 or keypoint.shape[2:] != (NUM_JOINTS, 3):
            raise DataFormatError(f"{path}: annotation {annotation['frame_dir']} has keypoint shape "
                                  f"{keypoint.shape}, expected (M, T, 25, 3)")
    splits = {}
    for key, names in content["split"].items():
        split, _, part = key.rpartition("_")
        if part not in PARTS or (dataset and split not in DATASETS[dataset]):
            continue
        missing = [n for n in names if n not in by_name]
        if missing:
            raise DataFormatError(f"{path}: split {key} lists {len(missing)} samples without annotation, "
                                  f"e.g. {missing[:3]}")
        names = [str(n) for n in names]

        def read(start, stop, names=names):
            rows = np.zeros((min(stop, len(names)) - start, 3, MAX_FRAMES, NUM_JOINTS, MAX_BODIES), np.float32)
            for row, name in zip(rows, names[start:stop]):
                keypoint = by_name[name][0][:MAX_BODIES, :MAX_FRAMES]  # (M, T, 25, 3)
                row[:, :keypoint.shape[1], :, :keypoint.shape[0]] = keypoint.transpose(3, 1, 2, 0)
            return rows

        labels = np.array([by_name[n][1] for n in names], dtype=np.int64)
        splits.setdefault(split, {})[part] = ExistingPart(
            names, labels, (len(names), 3, MAX_FRAMES, NUM_JOINTS, MAX_BODIES), read, path)
    if not splits:
        raise DataFormatError(f"{path}: no '<split>_train' / '<split>_val' lists of {dataset or 'any dataset'} "
                              f"in its 'split' dict ({list(content['split'])})")
    return splits


def open_existing(path, fmt=None, dataset=None, split=None, labels=None, names_file=None):
    """Point at a file or folder in any supported format -> {split: {"train": ExistingPart, "val": ...}}."""
    fmt = fmt or detect_format(path)
    _check_choice("format", fmt, FORMATS)
    if fmt == "ctrgcn":
        return read_ctrgcn_npz(path, dataset, split, names_file)
    if fmt == "pyskl":
        return read_pyskl(path, dataset)
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    return {split: read_stgcn_folder(folder, fmt, labels)}


def convert_existing(path, dataset: str, split=None, fmt=None, data_root="datasets", labels=None,
                     names_file=None, copy=False, chunk=256) -> list[Path]:
    """Install arrays users already have as datasets/<dataset>/<split>/ (checked first; nothing half-written).

    300-frame float32 arrays are symlinked (or copied with copy=True) as `{part}_data.npy`; AimCLR's 50-frame
    arrays become the `aimclr_T50` training cache directly; CTR-GCN and pyskl rows are rewritten (transposed)
    into the ST-GCN layout. Label files are rewritten after the checks.
    """
    _check_choice("dataset", dataset, DATASETS)
    written = []
    for found_split, parts in open_existing(path, fmt, dataset, split, labels, names_file).items():
        found_split = found_split or split
        if found_split is None:
            raise DataFormatError(f"{path}: pass --split ({', '.join(DATASETS[dataset])})")
        folder = split_dir(data_root, dataset, found_split)
        for part, existing in parts.items():
            check_split(existing.names, existing.labels, existing.shape, num_classes(dataset),
                        f"{existing.source} ({part})")
        for part, existing in parts.items():
            target = folder / (f"{part}_data.{existing.preprocessed}.npy" if existing.preprocessed
                               else f"{part}_data.npy")
            _install_rows(existing, target, copy, chunk)
            write_labels(folder / f"{part}_label.pkl", existing.names, existing.labels)
            written.append(target)
    return written


def _install_rows(existing: ExistingPart, target: Path, copy: bool, chunk: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and existing.source.resolve() == target.resolve():
        return  # already in place (convert run on a split folder of this project)
    if existing.linkable and not copy and existing.source.resolve() != target.resolve():
        with atomic_path(target) as tmp:
            os.symlink(existing.source.resolve(), tmp)
        return
    shape = existing.shape[:4] + (MAX_BODIES,)
    with NpyRowWriter(target, shape) as writer:
        for start in tqdm(range(0, shape[0], chunk), desc=f"write {target.name}", unit="chunk", file=sys.stderr):
            rows = existing.read(start, start + chunk)
            writer.write_rows(np.pad(rows, [(0, 0)] * 4 + [(0, MAX_BODIES - rows.shape[4])]))


# ----------------------------------------------------------------------------------------------------------------
# 7. Preprocessing for training (equations in the module docstring) and its cache
# ----------------------------------------------------------------------------------------------------------------

def body_present(x: np.ndarray) -> np.ndarray:
    """(N, C, T, V, M) -> (N, T, M) bool: the body has a non-zero joint in the frame."""
    return (x != 0).any(axis=(1, 3))


def valid_frames(x: np.ndarray) -> np.ndarray:
    """(N, C, T, V, M) -> (N, T) bool: frames in which any body has a non-zero joint."""
    return body_present(x).any(axis=2)


def resize_valid_frames(x: np.ndarray, frames: int) -> np.ndarray:
    """Linear interpolation of each sample's valid frames to `frames` (cv2 INTER_LINEAR's pixel-centre rule).

    (N, C, T, V, M) -> (N, C, frames, V, M). Empty frames are dropped first; a sample without any valid frame
    is an error (the caller names it).
    """
    valid = valid_frames(x)  # (N, T)
    lengths = valid.sum(axis=1)
    if (lengths == 0).any():
        raise ValueError(f"samples at positions {np.flatnonzero(lengths == 0)[:5].tolist()} have no non-zero frame")
    order = np.argsort(~valid, axis=1, kind="stable")  # valid frame indices first, in time order
    p = (np.arange(frames) + 0.5)[None, :] * lengths[:, None] / frames - 0.5  # (N, frames)
    p = np.clip(p, 0, (lengths - 1)[:, None])
    i0 = np.floor(p).astype(np.int64)
    i1 = np.minimum(i0 + 1, (lengths - 1)[:, None])
    w = (p - i0).astype(x.dtype)[:, None, :, None, None]  # (N, 1, frames, 1, 1)
    rows = np.arange(len(x))[:, None]
    xt = x.transpose(0, 2, 1, 3, 4)  # (N, T, C, V, M)
    x0 = xt[rows, np.take_along_axis(order, i0, axis=1)].transpose(0, 2, 1, 3, 4)  # (N, C, frames, V, M)
    x1 = xt[rows, np.take_along_axis(order, i1, axis=1)].transpose(0, 2, 1, 3, 4)
    return (1 - w) * x0 + w * x1


def center_on_spine_shoulder(x: np.ndarray) -> np.ndarray:
    """x_v[t,m] - x_21[t,m] per body and frame; joint 21 keeps its trajectory x_21[t,m] - x_21[t0(m),m] (CrosSCLR)."""
    present = body_present(x)  # (N, T, M)
    center = x[:, :, :, SPINE_SHOULDER:SPINE_SHOULDER + 1, :]  # (N, C, T, 1, M)
    first = present.argmax(axis=1)  # (N, M) first frame with the body
    initial = np.take_along_axis(center[:, :, :, 0, :], first[:, None, None, :], axis=2)  # (N, C, 1, M)
    out = x - center
    out[:, :, :, SPINE_SHOULDER, :] = center[:, :, :, 0, :] - initial
    return out * present[:, None, :, None, :]


def align_shoulders(x: np.ndarray) -> np.ndarray:
    """Rotate every body and frame about the vertical (y) axis so the shoulder vector x_9 - x_5 lies along +x.

    theta_t = arccos(v_x / (|v_xz| + 1e-4)), its sign set once per sequence by sum_t v_z (CrosSCLR's
    parallel_skeleton, reproduced so our caches match AimCLR's `*_position.npy`); R_y(theta) maps
    (x, z) -> (x cos theta - z sin theta, x sin theta + z cos theta).
    """
    v = x[:, :, :, SHOULDER_RIGHT, :] - x[:, :, :, SHOULDER_LEFT, :]  # (N, C, T, M)
    v_x, v_z = v[:, 0], v[:, 2]  # (N, T, M)
    theta = np.arccos(np.clip(v_x / (np.sqrt(v_x ** 2 + v_z ** 2) + 1e-4), -1.0, 1.0))
    theta = np.where(v_z.sum(axis=1, keepdims=True) >= 0, -theta, theta)[:, :, None, :]  # (N, T, 1, M)
    cos, sin = np.cos(theta), np.sin(theta)
    out = x.copy()
    out[:, 0] = cos * x[:, 0] - sin * x[:, 2]
    out[:, 2] = sin * x[:, 0] + cos * x[:, 2]
    return out


def translate_to_first_spine_mid(x: np.ndarray) -> np.ndarray:
    """x - x_2[t0, body 0] for every present body (CTR-GCN: origin = SpineMid of the first valid frame)."""
    present = body_present(x)  # (N, T, M)
    first = present[:, :, 0].argmax(axis=1)  # (N,)
    origin = x[np.arange(len(x)), :, first, SPINE_MID, 0]  # (N, C)
    return x - origin[:, :, None, None, None] * present[:, None, :, None, :]


def preprocess(x: np.ndarray, frames: int = 50, normalization: str = "aimclr") -> np.ndarray:
    """(N, 3, T, 25, M) raw -> (N, 3, frames, 25, 2) float32 training input (module docstring, section 4).

    Coordinate steps that commute with resizing run on the recorded frames (as CrosSCLR and CTR-GCN do); the
    per-frame rotation runs on the resized frames (as CrosSCLR does).
    # Reconstruction: CrosSCLR pads clips shorter than T with 99.9 after resizing; we keep the resized frames.
    """
    _check_choice("normalization", normalization, NORMALIZATIONS)
    x = np.asarray(x, dtype=np.float32)
    if x.shape[4] < MAX_BODIES:
        x = np.pad(x, [(0, 0)] * 4 + [(0, MAX_BODIES - x.shape[4])])
    if normalization == "aimclr":
        x = center_on_spine_shoulder(x)
    elif normalization == "ctrgcn":
        x = translate_to_first_spine_mid(x)
    x = resize_valid_frames(x, frames)
    if normalization == "aimclr":
        x = align_shoulders(x)
    return np.ascontiguousarray(x, dtype=np.float32)


def preprocessed_path(data_path, frames: int, normalization: str) -> Path:
    """Cache next to the source, options in the name: train_data.npy -> train_data.aimclr_T50.npy."""
    data_path = Path(data_path)
    return data_path.with_name(f"{data_path.stem}.{normalization}_T{frames}.npy")


def build_preprocessed(data_path, names, frames=50, normalization="aimclr", chunk=256) -> Path:
    """Preprocess a 300-frame `.npy` chunk by chunk into its cache (atomic; memory stays flat)."""
    source, target = ArrayFile.open(data_path), preprocessed_path(data_path, frames, normalization)
    check_split(names, np.zeros(len(names), np.int64), source.shape, 1, str(data_path))
    with NpyRowWriter(target, (len(source), 3, frames, NUM_JOINTS, MAX_BODIES)) as writer:
        for start in tqdm(range(0, len(source), chunk), desc=f"preprocess {target.name}", unit="chunk",
                          file=sys.stderr, disable=len(source) <= 4 * chunk):
            x = source.read(start, start + chunk).astype(np.float32, copy=False)  # (B, 3, T, 25, M)
            finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
            empty = ~valid_frames(x).any(axis=1)
            for problem, bad in (("contains NaN or inf values", ~finite), ("has no non-zero frame", empty)):
                if bad.any():
                    i = start + int(np.argmax(bad))
                    raise DataFormatError(f"{data_path}: sample {names[i]} (index {i}) {problem}")
            writer.write_rows(preprocess(x, frames, normalization))
    return target


# ----------------------------------------------------------------------------------------------------------------
# 8. Dataset
# ----------------------------------------------------------------------------------------------------------------

class SkeletonDataset(Dataset):
    """Preprocessed skeletons of one split part: item i = (float32 (3, T, 25, 2), label, i).

    `names` are canonical sample names (no `.skeleton`; the keys of the prompt files), `labels` int64 (N,),
    `data` the memory-mapped (N, 3, T, 25, 2) float32 cache. Items are read with preadv, so iterating the
    whole split keeps the resident memory flat.
    """

    def __init__(self, data_path, label_path, num_class: int, frames: int = 50, normalization: str = "aimclr"):
        _check_choice("normalization", normalization, NORMALIZATIONS)
        names, labels = read_label_pkl(label_path)
        self.names, self.labels, self.num_class = [sample_name(n) for n in names], labels, num_class
        data_path = Path(data_path)
        cache = preprocessed_path(data_path, frames, normalization)
        fresh = cache.is_file() and (not data_path.is_file() or cache.stat().st_mtime >= data_path.stat().st_mtime)
        if not fresh:
            if not data_path.is_file():
                raise DataNotFoundError(f"neither {data_path} nor its cache {cache.name} exists")
            build_preprocessed(data_path, names, frames, normalization)
        self.path = cache
        self._rows = ArrayFile.open(cache)
        check_split(names, labels, self._rows.shape, num_class, f"{cache} with {label_path}")
        if self._rows.shape[2] != frames or self._rows.dtype != np.float32:
            raise DataFormatError(f"{cache}: expected float32 (N, 3, {frames}, 25, 2), found {self._rows.dtype} "
                                  f"{self._rows.shape}")
        self.data = self._rows.memmap()

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int):
        return torch.from_numpy(self._rows.read(i, i + 1)[0]), int(self.labels[i]), int(i)


def _make_command(data_root, dataset, split) -> str:
    root = f" --data-root {data_root}" if str(data_root) != "datasets" else ""
    if dataset == "demo":
        return f"python data.py demo{root}"
    if dataset.startswith("pku"):
        return (f"python data.py pku --phase {dataset[-1]} --skeletons <PKU skeleton dir> --labels <label dir> "
                f"--{split} <{'cross-subject' if split == 'xsub' else 'cross-view'} split file>{root}")
    return (f"python data.py ntu --raw <folder(s) of .skeleton files> --dataset {dataset}{root}\n"
            f"or, with arrays from another codebase: python data.py convert <file or folder> --dataset {dataset} "
            f"--split {split}{root}")


def load_split(data_root="datasets", dataset: str = "demo", split: str = "xsub", part: str = "train",
               frames: int = 50, normalization: str = "aimclr") -> SkeletonDataset:
    """The preprocessed Dataset of datasets/<dataset>/<split>/<part> (cache built on first use)."""
    folder = split_dir(data_root, dataset, split)
    _check_choice("part", part, PARTS)
    data_path, label_path = folder / f"{part}_data.npy", folder / f"{part}_label.pkl"
    cache = preprocessed_path(data_path, frames, normalization)
    if not label_path.is_file() or not (data_path.is_file() or cache.is_file()):
        only = sorted(p.name for p in folder.glob(f"{part}_data.*.npy")) if folder.is_dir() else []
        have = f" (only {', '.join(only)} exist: pick matching --frames/--normalization)" if only else ""
        raise DataNotFoundError(f"{dataset} {split} {part} not found in {folder}{have}. Make it with:\n  "
                                f"{_make_command(data_root, dataset, split)}")
    return SkeletonDataset(data_path, label_path, num_classes(dataset), frames, normalization)


# ----------------------------------------------------------------------------------------------------------------
# 9. The demo dataset: synthetic actions in the NTU format, rendered frames, noisy LLaVA-style answers
# ----------------------------------------------------------------------------------------------------------------

DEMO_CLASSES = ("wave right hand", "wave left hand", "raise both arms", "clap hands", "sit down", "stand up",
                "kick with right leg", "kick with left leg", "jump up", "bow", "punch with right hand",
                "walk in place", "lean side to side", "put on a hat", "take off a hat")
DEMO_SUBJECTS, DEMO_CAMERAS, DEMO_REPLICATIONS = 10, 3, 2
DEMO_VERSION = 3  # bump whenever the generator changes: prepare_demo then regenerates
DEMO_FRAME_SIZE = (480, 270)  # rendered RGB frames; colorX/colorY stay in 1920x1080 units
DEMO_FPS = 30
KINECT_COLOR = (1081.37, 959.5, 539.5)  # focal length and principal point of the 1920x1080 colour camera
KINECT_DEPTH = (365.5, 255.5, 211.5)    # ... and of the 512x424 depth camera
_DEMO_SETUPS = {1: (1.00, 3.0, -2.0), 2: (1.25, 3.4, -5.0), 3: (0.85, 2.7, -1.0)}  # camera height, distance, pitch
_DEMO_CAMERA_YAW = {1: 0.0, 2: 45.0, 3: -45.0}  # NTU's three cameras at 0 and +-45 degrees
_DEMO_FACING = {1: 15.0, 2: -15.0}  # the performer turns towards one side in each replication
_DEMO_SECONDS = (2.6, 2.6, 3.2, 2.4, 2.6, 2.6, 2.4, 2.4, 3.0, 2.8, 2.4, 3.0, 3.4, 2.4, 2.4)  # at speed 1
_SEGMENTS = dict(spine1=0.22, spine2=0.25, neck=0.07, head=0.13, shoulder=0.17, upper_arm=0.28, forearm=0.25,
                 hand=0.08, tip=0.07, thumb=0.045, hip=0.09, thigh=0.42, shin=0.41, ankle=0.08, foot=0.13)


def demo_names() -> list[str]:
    """All demo sample names, sorted: 10 subjects x 3 cameras x 2 replications x 12 actions = 720."""
    return sorted(f"S{_demo_setup(p):03d}C{c:03d}P{p:03d}R{r:03d}A{a:03d}"
                  for p in range(1, DEMO_SUBJECTS + 1) for c in range(1, DEMO_CAMERAS + 1)
                  for r in range(1, DEMO_REPLICATIONS + 1) for a in range(1, len(DEMO_CLASSES) + 1))


def _demo_setup(subject: int) -> int:
    return (subject - 1) % len(_DEMO_SETUPS) + 1


@dataclasses.dataclass(frozen=True)
class DemoSubject:
    """A synthetic performer: body proportions, motion style and appearance (all drawn from the seed)."""
    lengths: dict
    tempo: float
    vigour: float
    pronoun: str
    shirt: tuple
    pants: tuple
    skin: tuple
    long_sleeves: bool
    style: tuple   # personal offsets (degrees) of abduction, flexion, elbow bend whenever an action moves an arm
    slouch: float  # constant forward lean of the torso (degrees)


def demo_subject(seed: int, subject: int) -> DemoSubject:
    rng = np.random.default_rng([seed, 1, subject])
    scale, arm, leg, width = rng.uniform(0.88, 1.08), *rng.uniform(0.93, 1.07, 3)
    group = {"upper_arm": arm, "forearm": arm, "hand": arm, "thigh": leg, "shin": leg, "shoulder": width,
             "hip": width}
    lengths = {k: v * scale * group.get(k, 1.0) for k, v in _SEGMENTS.items()}
    skin = tuple(int(c) for c in np.array([224, 172, 140]) * rng.uniform(0.55, 1.05))
    return DemoSubject(lengths, rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.1), ("he", "she")[rng.integers(2)],
                       tuple(int(c) for c in rng.integers(30, 230, 3)), tuple(int(c) for c in rng.integers(20, 140, 3)),
                       skin, bool(rng.random() < 0.5), tuple(rng.normal(0, [12.0, 12.0, 15.0])),
                       rng.uniform(0, 12))


_DEMO_ARM_BASE = np.array([7.0, 4.0, 12.0])  # arm hanging: abduction, flexion, elbow bend (degrees)
_DEMO_REST_POSES = ((7.0, 4.0, 12.0), (-12.0, 20.0, 60.0), (-15.0, 15.0, 125.0), (-5.0, -25.0, 40.0))


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _plateau(w, ramp=0.2):
    """0 -> 1 -> 0 over the action's progress w in [0, 1], flat in the middle."""
    return _smoothstep(w / ramp) * _smoothstep((1 - w) / ramp)


def _bumps(w, reps, lo=0.1, hi=0.9):
    """`reps` smooth bumps over w in [0, 1] (one per repetition of a discrete action)."""
    s = (w * reps) % 1.0
    inside = (s > lo) & (s < hi) & (w > 0) & (w < 1)
    return np.where(inside, np.sin(np.pi * (s - lo) / (hi - lo)) ** 2, 0.0)


def _drift(rng, t, amplitude):
    """Slow idle motion: two random low-frequency sinusoids."""
    f, phase, a = rng.uniform(0.1, 0.6, 2), rng.uniform(0, 2 * np.pi, 2), rng.uniform(0.3, 1.0, 2) * amplitude
    return (a[:, None] * np.sin(2 * np.pi * f[:, None] * t + phase[:, None])).sum(axis=0)


def _squat_legs(depth, lengths):
    """Hip flexion = half the knee bend that lowers the pelvis by `depth` with the feet under the hips."""
    kappa = np.degrees(np.arccos(np.clip(1 - depth / (lengths["thigh"] + lengths["shin"]), -1, 1)))
    return kappa, 2 * kappa


def _demo_motion(action: int, T: int, rng, subject: DemoSubject, speed: float) -> dict:
    """Joint angles (degrees) and pelvis offsets (metres) per frame for one performance of `action`.

    arm_*: (abduction, flexion, elbow bend); leg_*: (hip flexion, abduction, knee bend); torso: (bow, lean,
    twist); pelvis: (dx, dy, dz). `activity` in [0, 1] says how visible the action is in each frame.
    "stand up" and "take off a hat" are "sit down" and "put on a hat" played backwards: they share every
    per-joint statistic with their partner and differ only in temporal order (as NTU's such pairs do).
    """
    t = np.arange(T) / DEMO_FPS
    u = np.arange(T) / max(T - 1, 1)
    a0, a1 = rng.uniform(0.02, 0.3), rng.uniform(0.7, 0.98)
    w = np.clip((u - a0) / (a1 - a0), 0, 1)  # progress of the action
    env = _plateau(w)
    amp = rng.uniform(0.6, 1.25) * subject.vigour
    phase = rng.uniform(0, 2 * np.pi)
    L = subject.lengths

    def cycle(hz):
        return np.sin(2 * np.pi * hz * speed * subject.tempo * t + phase)

    m = {"arm_l": np.tile(_DEMO_ARM_BASE, (T, 1)), "arm_r": np.tile(_DEMO_ARM_BASE, (T, 1)),
         "leg_l": np.tile([0.0, 3.0, 0.0], (T, 1)), "leg_r": np.tile([0.0, 3.0, 0.0], (T, 1)),
         "torso": np.zeros((T, 3)), "pelvis": np.zeros((T, 3))}
    kind = DEMO_CLASSES[action] if action >= 0 else "stand still"
    reverse = kind in ("stand up", "take off a hat")
    kind = {"stand up": "sit down", "take off a hat": "put on a hat"}.get(kind, kind)
    act_arm, free_arm = ("arm_r", "arm_l") if "right" in kind else ("arm_l", "arm_r")
    act_leg = "leg_r" if "right" in kind else "leg_l"
    activity, zero = env, np.zeros(T)
    use = {"arm_l": zero, "arm_r": zero}  # how much the action (rather than the resting pose) drives each arm
    if kind.startswith("wave"):  # arm up and out, forearm swinging
        A = m[act_arm]
        A[:, 0] = 7 + (70 + 20 * amp) * env
        A[:, 1] = 4 + 20 * env
        A[:, 2] = 12 + env * (60 + 30 * amp * cycle(1.8))
        use = {act_arm: env, free_arm: zero}
    elif kind == "raise both arms":  # above the head and down again, once or twice
        b = _bumps(w, rng.integers(1, 3))
        for side in ("arm_l", "arm_r"):
            m[side][:, 0] = 7 + 12 * b
            m[side][:, 1] = 4 + 150 * min(amp, 1.15) * b
        activity = use["arm_l"] = use["arm_r"] = b
    elif kind == "clap hands":  # arms forward, hands meeting and parting
        opening = 0.5 + 0.5 * cycle(2.2)
        for side in ("arm_l", "arm_r"):
            m[side][:, 0] = 7 + env * (-24 + 34 * opening * amp)
            m[side][:, 1] = 4 + 66 * env
            m[side][:, 2] = 12 + 38 * env
        use = {"arm_l": env, "arm_r": env}
    elif kind == "sit down":  # lower into a deep squat and stay there, arms forward for balance
        s = _smoothstep(w)
        depth = 0.45 * min(amp, 1.1) * s
        kappa, bend = _squat_legs(depth, L)
        for side in ("leg_l", "leg_r"):
            m[side][:, 0], m[side][:, 2] = kappa, bend
        m["pelvis"][:, 1], m["pelvis"][:, 2] = -depth, -0.2 * depth
        m["torso"][:, 0] = 20 * s
        for side in ("arm_l", "arm_r"):
            m[side][:, 1] = 4 + 50 * s
        activity = use["arm_l"] = use["arm_r"] = s
    elif kind.startswith("kick"):  # knee up, leg extends at the top, lean back
        k = _bumps(w, rng.integers(1, 3), 0.15, 0.85)
        m[act_leg][:, 0] = 85 * amp * k
        m[act_leg][:, 2] = 70 * 4 * k * (1 - k)
        m["torso"][:, 0] = -12 * k
        for side in ("arm_l", "arm_r"):
            m[side][:, 0] += 20 * k
        activity = np.clip(2 * k, 0, 1)
    elif kind == "jump up":  # two or three times: crouch, take off, land
        s = (w * rng.integers(2, 4)) % 1.0
        moving = (w > 0) & (w < 1)
        crouch = np.where(moving & (s < 0.3), 0.15 * np.sin(np.pi * s / 0.3), 0)
        air = np.where(moving & (s >= 0.3) & (s < 0.7), 0.25 * amp * np.sin(np.pi * (s - 0.3) / 0.4), 0)
        land = np.where(moving & (s >= 0.7), 0.1 * np.sin(np.pi * (s - 0.7) / 0.3), 0)
        kappa, bend = _squat_legs(crouch + land, L)
        for side in ("leg_l", "leg_r"):
            m[side][:, 0], m[side][:, 2] = kappa, bend
        m["pelvis"][:, 1] = air - crouch - land
        for side in ("arm_l", "arm_r"):
            m[side][:, 1] = 4 + 110 * np.clip(air / 0.25, 0, 1)
        activity = use["arm_l"] = use["arm_r"] = np.clip((air + crouch + land) * 8, 0, 1)
    elif kind == "bow":  # from the waist
        b = _bumps(w, 1, 0.05, 0.95)
        m["torso"][:, 0] = 55 * amp * b
        for side in ("arm_l", "arm_r"):
            m[side][:, 1] = 4 + 10 * b
        activity = b
    elif kind == "punch with right hand":  # guard with both fists, punch with the right
        for side in ("arm_l", "arm_r"):
            m[side][:, 0] = 7 + 5 * env
            m[side][:, 1] = 4 + 56 * env
            m[side][:, 2] = 12 + 103 * env
        punch = np.clip(cycle(1.4), 0, 1) ** 3 * env
        m["arm_r"][:, 1] += 26 * punch
        m["arm_r"][:, 2] -= 110 * punch
        m["torso"][:, 2] = -12 * punch
        use = {"arm_l": env, "arm_r": env}
    elif kind == "walk in place":  # alternate knees up, arms swinging opposite
        s = cycle(0.9) * env
        m["leg_l"][:, 0] = 38 * amp * np.clip(s, 0, None)
        m["leg_r"][:, 0] = 38 * amp * np.clip(-s, 0, None)
        m["leg_l"][:, 2], m["leg_r"][:, 2] = 2 * m["leg_l"][:, 0], 2 * m["leg_r"][:, 0]
        m["arm_r"][:, 1] = 4 + 22 * s
        m["arm_l"][:, 1] = 4 - 22 * s
        m["pelvis"][:, 1] = 0.02 * np.abs(s)
        use = {"arm_l": env, "arm_r": env}
    elif kind == "lean side to side":  # arms stretched out to the sides
        m["torso"][:, 1] = 22 * amp * cycle(0.55) * env
        for side in ("arm_l", "arm_r"):
            m[side][:, 0] = 7 + 75 * env
            m[side][:, 2] = 12 + 10 * env
        use = {"arm_l": env, "arm_r": env}
    elif kind == "put on a hat":  # both hands travel up to the head and stay there
        s = _smoothstep(w)
        for side in ("arm_l", "arm_r"):
            m[side][:, 0] = 7 + 25 * s
            m[side][:, 1] = 4 + 146 * s
            m[side][:, 2] = 12 + 100 * s
        activity = use["arm_l"] = use["arm_r"] = s
    if reverse:
        m = {k: v[::-1].copy() for k, v in m.items()}
        activity, use = activity[::-1].copy(), {k: v[::-1].copy() for k, v in use.items()}
    # Arms not driven by the action rest in a per-sample pose (hanging, hands clasped in front, arms folded,
    # hands behind the back): the static pose alone must not give the class away.
    rest = _DEMO_REST_POSES[rng.choice(len(_DEMO_REST_POSES), p=(0.45, 0.2, 0.15, 0.2))]
    for side in ("arm_l", "arm_r"):
        m[side] += (np.array(rest) + rng.normal(0, 6, 3) - _DEMO_ARM_BASE) * (1 - use[side])[:, None]
        m[side] += np.array(subject.style) * use[side][:, None]  # everyone waves, claps, punches a bit differently
    m["torso"][:, 0] += subject.slouch
    # Nuisance that every real recording has: idle drift of every angle, swaying, and sometimes a stray
    # gesture of a free hand (touching the face) that has nothing to do with the action.
    for side in ("arm_l", "arm_r"):
        for k in range(3):
            m[side][:, k] += _drift(rng, t, 6.0)
    for side in ("leg_l", "leg_r"):
        m[side][:, 1] += _drift(rng, t, 1.5)
    for k, amplitude in enumerate((2.0, 2.0, 3.0)):
        m["torso"][:, k] += _drift(rng, t, amplitude)
    m["pelvis"][:, 0] += _drift(rng, t, 0.02)
    m["pelvis"][:, 2] += _drift(rng, t, 0.02)
    if rng.random() < 0.45:
        arm = free_arm if kind.startswith("wave") else ("arm_l", "arm_r")[rng.integers(2)]
        start = rng.uniform(0.0, 0.6)
        g = _bumps(np.clip((u - start) / rng.uniform(0.25, 0.4), 0, 1), 1)
        m[arm] += g[:, None] * np.array([12.0, 100.0, 115.0])
    m["activity"] = activity
    return m


def _rotation(axis: str, degrees) -> np.ndarray:
    """(T,) angles -> (T, 3, 3) rotations about x, y or z."""
    a = np.radians(np.asarray(degrees, dtype=np.float64))
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    rows = {"x": [[i, o, o], [o, c, -s], [o, s, c]], "y": [[c, o, s], [o, i, o], [-s, o, c]],
            "z": [[c, s, o], [-s, c, o], [o, o, i]]}[axis]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def _limb(alpha, phi, side):
    """Unit direction of a limb from abduction alpha and flexion phi (degrees); hanging down at (0, 0)."""
    a, f = np.radians(alpha), np.radians(phi)
    return np.stack([side * np.sin(a), -np.cos(a) * np.cos(f), np.cos(a) * np.sin(f)], axis=-1)


def _bend(u, beta):
    """Rotate unit vectors u (T, 3) by beta degrees towards 'up' (or 'forward' when u is vertical)."""
    up, forward = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    n = up - (u @ up)[:, None] * u
    n_forward = forward - (u @ forward)[:, None] * u
    n = np.where((np.linalg.norm(n, axis=1) < 0.3)[:, None], n_forward, n)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    b = np.radians(beta)[:, None]
    return np.cos(b) * u + np.sin(b) * n


def _demo_joints(m: dict, L: dict) -> np.ndarray:
    """Forward kinematics -> (T, 25, 3) joints in the body frame (x: the person's left, y: up, z: forward),
    origin on the floor under the standing pelvis."""
    T = len(m["torso"])
    J = np.zeros((T, NUM_JOINTS, 3))
    hip_height = L["ankle"] + L["thigh"] + L["shin"]
    pelvis = m["pelvis"] + np.array([0.0, hip_height, 0.0])
    R = _rotation("y", m["torso"][:, 2]) @ _rotation("z", -m["torso"][:, 1]) @ _rotation("x", -m["torso"][:, 0])

    def torso_point(p):  # a point given in the torso frame -> body frame
        return pelvis + R @ np.asarray(p, dtype=np.float64)

    spine = L["spine1"] + L["spine2"]
    J[:, 0] = pelvis
    J[:, 1] = torso_point([0, L["spine1"], 0])
    J[:, 20] = torso_point([0, spine, 0])
    J[:, 2] = torso_point([0, spine + L["neck"], 0.01])
    J[:, 3] = torso_point([0, spine + L["neck"] + L["head"], 0.02])
    for side, (shoulder, elbow, wrist, hand, tip, thumb) in ((1, (4, 5, 6, 7, 21, 22)),
                                                             (-1, (8, 9, 10, 11, 23, 24))):
        alpha, phi, beta = m["arm_l" if side == 1 else "arm_r"].T
        upper = _limb(alpha, phi, side)
        lower = _bend(upper, beta)
        J[:, shoulder] = torso_point([side * L["shoulder"], spine - 0.03, 0])
        J[:, elbow] = J[:, shoulder] + L["upper_arm"] * (R @ upper[..., None])[..., 0]
        lower_world = (R @ lower[..., None])[..., 0]
        J[:, wrist] = J[:, elbow] + L["forearm"] * lower_world
        J[:, hand] = J[:, wrist] + L["hand"] * lower_world
        J[:, tip] = J[:, hand] + L["tip"] * lower_world
        inward = (R @ np.array([-side, 0.0, 0.6]))  # thumb points to the body's midline
        J[:, thumb] = J[:, hand] + L["thumb"] * inward / np.linalg.norm(inward, axis=-1, keepdims=True)
    for side, (hip, knee, ankle, foot) in ((1, (12, 13, 14, 15)), (-1, (16, 17, 18, 19))):
        kappa, abduction, bend = m["leg_l" if side == 1 else "leg_r"].T
        gamma = kappa - bend  # shin angle from vertical, forward positive
        J[:, hip] = pelvis + (_rotation("y", m["torso"][:, 2] * 0.3) @ np.array([side * L["hip"], -0.04, 0.0]))
        J[:, knee] = J[:, hip] + L["thigh"] * _limb(abduction, kappa, side)
        J[:, ankle] = J[:, knee] + L["shin"] * _limb(abduction, gamma, side)
        g = np.radians(gamma)
        toe = np.stack([np.zeros(T), -np.sin(g) - 0.15 * np.cos(g), np.cos(g)], axis=-1)
        J[:, foot] = J[:, ankle] + L["foot"] * toe / np.linalg.norm(toe, axis=-1, keepdims=True)
    return J


def _to_camera(joints, yaw, position, camera_height, pitch) -> np.ndarray:
    """Body frame -> Kinect camera space (x, y up, z away from the sensor, metres). The body faces the sensor
    at yaw 0 (its forward axis is -z); `position` = (x, z) of the floor point under the pelvis."""
    face = np.diag([-1.0, 1.0, -1.0])
    R = _rotation("x", np.full(1, pitch))[0] @ _rotation("y", np.full(1, yaw))[0] @ face
    world = joints @ R.T + _rotation("x", np.full(1, pitch))[0] @ np.array([position[0], -camera_height, position[1]])
    return world


def _project(xyz, camera) -> np.ndarray:
    """Pinhole projection (x, y, z) -> pixel (u, v) with v pointing down."""
    f, cx, cy = camera
    return np.stack([cx + f * xyz[..., 0] / xyz[..., 2], cy - f * xyz[..., 1] / xyz[..., 2]], axis=-1)


_JOINT_LINE = "%.5f %.5f %.5f %.4f %.4f %.3f %.3f 0 0 0 0 %d"
_JOINT_BLOCK = "\r\n".join([_JOINT_LINE] * NUM_JOINTS)


def _skeleton_text(bodies: list[dict], T: int) -> str:
    """NTU `.skeleton` text for bodies {id, xyz (T,25,3), present (T,), state (T,25)} (CRLF like the originals)."""
    for body in bodies:
        body["depth"], body["color"] = _project(body["xyz"], KINECT_DEPTH), _project(body["xyz"], KINECT_COLOR)
        body["values"] = np.concatenate([body["xyz"], body["depth"], body["color"], body["state"][..., None]],
                                        axis=-1).reshape(T, -1)  # (T, 25 * 8)
    out = [str(T)]
    for t in range(T):
        present = [b for b in bodies if b["present"][t]]
        out.append(str(len(present)))
        for b in present:
            lean = b["xyz"][t, 20, :2] - b["xyz"][t, 0, :2]
            out.append(f"{b['id']} 0 1 1 1 1 0 {lean[0]:.6f} {lean[1]:.6f} 2")
            out.append(str(NUM_JOINTS))
            out.append(_JOINT_BLOCK % tuple(b["values"][t].tolist()))
    return "\r\n".join(out) + "\r\n"


def generate_demo_sample(name: str, seed: int = 0) -> tuple[str, list[str]]:
    """One demo sample -> (its `.skeleton` text, its 16 LLaVA-style answers); a pure function of (name, seed).

    The three cameras of one performance see the same motion (as in NTU); camera yaw, joint noise, missing
    frames, tracking glitches and the answers differ per camera.
    """
    n = parse_ntu_name(name)
    action = n.action - 1
    subject = demo_subject(seed, n.subject)
    perform = np.random.default_rng([seed, 2, n.setup, n.subject, n.replication, n.action])
    record = np.random.default_rng([seed, 3, n.setup, n.camera, n.subject, n.replication, n.action])
    speed = perform.uniform(0.75, 1.3)
    T = int(np.clip(round(_DEMO_SECONDS[action] * DEMO_FPS / (speed * subject.tempo)), 36, 160))
    motion = _demo_motion(action, T, perform, subject, speed)
    camera_height, distance, pitch = _DEMO_SETUPS[n.setup]
    yaw = _DEMO_CAMERA_YAW[n.camera] + _DEMO_FACING[n.replication] + perform.normal(0, 6)
    position = (perform.uniform(-0.4, 0.4), distance + perform.uniform(-0.3, 0.3))
    actor = {"id": str(72057594037927936 + 1000 * n.subject + 17 * n.replication + n.action),
             "xyz": _to_camera(_demo_joints(motion, subject.lengths), yaw, position, camera_height, pitch),
             "present": np.ones(T, bool), "state": np.full((T, NUM_JOINTS), 2.0)}
    bodies = [actor]
    if perform.random() < 0.08:  # a bystander standing at the back
        other = demo_subject(seed, n.subject % DEMO_SUBJECTS + 1)
        still = _demo_motion(-1, T, perform, other, 1.0)
        side = perform.choice([-1.0, 1.0])
        bystander = {"id": str(72057594037927936 + 999), "present": np.ones(T, bool),
                     "xyz": _to_camera(_demo_joints(still, other.lengths), yaw + perform.normal(0, 20),
                                       (position[0] + side * 1.1, position[1] + 1.2), camera_height, pitch),
                     "state": np.full((T, NUM_JOINTS), 2.0)}
        bodies.insert(int(perform.integers(2)), bystander)
    for body in bodies:  # sensor noise: jitter everywhere, more on hand tips, thumbs and feet
        body["xyz"] = body["xyz"] + record.normal(0, 0.01, body["xyz"].shape)
        body["xyz"][:, [15, 19, 21, 22, 23, 24]] += record.normal(0, 0.02, (T, 6, 3))
    if record.random() < 0.1:  # a tracking glitch: one extremity jumps for a few frames, marked "inferred"
        joints = [(6, 7, 21, 22), (10, 11, 23, 24), (14, 15), (18, 19)][record.integers(4)]
        start, length = int(record.integers(0, T - 6)), int(record.integers(2, 6))
        actor["xyz"][start:start + length, list(joints)] += record.normal(0, 0.15, 3)
        actor["state"][start:start + length, list(joints)] = 1
    if record.random() < 0.35:  # dropped frames: the sensor lists no body
        for body in bodies:
            body["present"][record.integers(1, T - 1, record.integers(1, 4))] = False
    if record.random() < 0.15:
        for body in bodies:
            body["present"][:record.integers(1, 6)] = False
    frames = np.linspace(0, T - 1, 16).round().astype(int)
    answers = _demo_answers(action, motion["activity"][frames], subject.pronoun, record)
    return _skeleton_text(bodies, T), answers


# Answer templates for the LLaVA question of C2VL (what the person holds, their posture, what they try to do).
_POSTURES = (
    ("standing with {his} right arm raised", "raising {his} right hand", "standing and waving {his} right hand"),
    ("standing with {his} left arm raised", "raising {his} left hand", "standing and waving {his} left hand"),
    ("standing with both arms raised above {his} head", "raising both hands", "stretching {his} arms upwards"),
    ("standing with {his} hands together in front of {his} chest", "clapping", "standing with {his} hands joined"),
    ("squatting", "crouching down", "sitting down on the floor"),
    ("squatting", "getting up from a squat", "standing up"),
    ("standing on {his} left leg with {his} right leg raised", "lifting {his} right leg", "kicking"),
    ("standing on {his} right leg with {his} left leg raised", "lifting {his} left leg", "kicking"),
    ("jumping in the air", "in mid-air", "jumping"),
    ("bending forward at the waist", "bowing", "leaning forward"),
    ("standing with {his} fists raised", "throwing a punch with {his} right hand", "in a fighting stance"),
    ("walking", "marching in place", "standing with one knee lifted"),
    ("standing with {his} arms stretched out to the sides", "leaning to one side", "bending sideways"),
    ("standing with both hands on {his} head", "raising {his} hands to {his} head", "touching {his} head"),
    ("standing with both hands on {his} head", "lowering {his} hands from {his} head", "touching {his} head"),
)
_INTENTS = (
    ("waving to someone", "trying to get someone's attention", "greeting someone", "saying hello"),
    ("waving to someone", "saying goodbye", "greeting someone", "trying to get someone's attention"),
    ("stretching {his} arms", "cheering", "reaching for something above {him}"),
    ("clapping {his} hands", "applauding someone", "celebrating something"),
    ("sitting down", "trying to sit on the floor", "lowering {him}self to the ground"),
    ("standing up", "getting up from the floor", "trying to stand up"),
    ("kicking something", "practicing a kick", "exercising {his} legs"),
    ("kicking something", "practicing a kick", "exercising {his} legs"),
    ("jumping up and down", "exercising", "trying to reach something high"),
    ("bowing to greet someone", "showing respect", "looking at something on the floor"),
    ("boxing", "practicing martial arts", "punching the air"),
    ("walking across the room", "exercising", "marching"),
    ("stretching {his} body", "doing a warm-up exercise", "exercising"),
    ("putting on a hat", "adjusting {his} hat", "fixing {his} hair"),
    ("taking off {his} hat", "adjusting {his} hat", "scratching {his} head"),
)
_NEUTRAL_POSTURES = ("standing", "standing still", "standing with {his} arms at {his} sides",
                     "standing in the middle of a room")
_WRONG_POSTURES = ("sitting on a chair", "kneeling on the floor", "leaning against a wall", "lying on the floor")
_VAGUE_INTENTS = ("trying to do something", "engaged in some kind of activity", "possibly waiting for someone",
                  "trying to perform an action", "maybe trying to communicate something", "posing for the camera")
_OBJECTS = ("a cell phone", "a remote control", "a cup", "a water bottle", "a book", "a piece of paper", "a towel",
            "a pen", "a bag")


def _demo_answers(action: int, activity: np.ndarray, pronoun: str, rng) -> list[str]:
    """16 answers in temporal order, one per sampled frame, with LLaVA's kinds of mistakes: objects that are not
    there, wrong postures, vague or wrong intentions, left/right swaps, and repeating itself."""
    words = {"he": "he", "his": "his", "him": "him"} if pronoun == "he" else {"he": "she", "his": "her", "him": "her"}
    He = words["he"].capitalize()
    answers = []
    for k, level in enumerate(activity):
        if answers and rng.random() < 0.2:
            answers.append(answers[-1])
            continue
        active = level > 0.35
        posture = rng.choice(_POSTURES[action] if active else _NEUTRAL_POSTURES)
        if rng.random() < 0.12:
            posture = rng.choice(_WRONG_POSTURES)
        draw = rng.random()
        if draw < 0.3 or (not active and draw < 0.6):
            intent = rng.choice(_VAGUE_INTENTS)
        elif draw < 0.4:
            intent = rng.choice(_INTENTS[rng.integers(len(_INTENTS))])
        else:
            intent = rng.choice(_INTENTS[action])
        held = rng.choice(_OBJECTS) if rng.random() < 0.4 else None
        form = rng.integers(4)
        if held and form == 0:
            text = f"{He} is holding {held} in {{his}} hand. {He} is {posture}. {He} is {intent}."
        elif held:
            text = f"{He} is {posture} and holding {held} in {{his}} hand. {He} is {intent}."
        elif form < 2:
            text = f"{He} is {posture}. {He} is {intent}."
        elif form == 2:
            text = f"The person is {posture}. It looks like {{he}} is {intent}."
        else:
            text = f"{He} is not holding anything. {He} is {posture}."
        if rng.random() < 0.2:
            text = text.replace("left", "\0").replace("right", "left").replace("\0", "right")
        answers.append(text.format(**words))
    return answers


def _write_demo_task(task) -> tuple[str, list[str]]:
    raw_dir, seed, name = task
    text, answers = generate_demo_sample(name, seed)
    with atomic_path(Path(raw_dir) / f"{name}.skeleton") as tmp:
        tmp.write_bytes(text.encode("ascii"))
    return name, answers


def _demo_meta(seed: int) -> dict:
    return {"version": DEMO_VERSION, "seed": seed, "samples": len(demo_names()), "classes": list(DEMO_CLASSES),
            "frame_size": list(DEMO_FRAME_SIZE)}


def prepare_demo(data_root="datasets", seed: int = 0, workers: int | None = None) -> Path:
    """Generate (if missing) the demo: raw `.skeleton` files in datasets/demo/raw/, the answers
    datasets/demo/demo_language.json ({name: [16 answers]}, C2VL's released format), and the xsub/xview splits
    with their default training caches. Idempotent; byte-identical for the same seed."""
    root = Path(data_root) / "demo"
    meta_path = root / "demo_meta.json"
    meta = _demo_meta(seed)
    ready = all((split_dir(data_root, "demo", s) / f"{p}_data.aimclr_T50.npy").is_file()
                for s in DATASETS["demo"] for p in PARTS) and (root / "demo_language.json").is_file()
    if ready and meta_path.is_file() and json.loads(meta_path.read_text()) == meta:
        return root
    started = time.perf_counter()
    meta_path.unlink(missing_ok=True)
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    names = demo_names()
    for stale in set(p.stem for p in raw.glob("*.skeleton")) - set(names):  # from an older demo version
        (raw / f"{stale}.skeleton").unlink()
    answers = dict(parallel_map(_write_demo_task, [(raw, seed, n) for n in names], workers,
                                "generate demo", unit="sample"))
    with atomic_path(root / "demo_language.json") as tmp:
        tmp.write_text(json.dumps({n: answers[n] for n in names}, indent=1))
    convert_ntu(raw, data_root, datasets=("demo",), workers=workers)
    for split in DATASETS["demo"]:
        for part in PARTS:
            load_split(data_root, "demo", split, part)  # builds the default (aimclr, T = 50) caches
    with atomic_path(meta_path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1))
    print(f"demo dataset: {len(names)} samples, {len(DEMO_CLASSES)} classes in {root} "
          f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return root


# Rendering: limbs as capsules in the subject's colours, drawn far to near (ST-GCN's 'ntu-rgb+d' bones).
_LIMBS = (((4, 5), "shirt", 0.095), ((8, 9), "shirt", 0.095), ((5, 6), "sleeve", 0.075), ((9, 10), "sleeve", 0.075),
          ((6, 7), "skin", 0.06), ((10, 11), "skin", 0.06), ((7, 21), "skin", 0.035), ((11, 23), "skin", 0.035),
          ((7, 22), "skin", 0.03), ((11, 24), "skin", 0.03), ((0, 12), "pants", 0.16), ((0, 16), "pants", 0.16),
          ((12, 13), "pants", 0.14), ((16, 17), "pants", 0.14), ((13, 14), "pants", 0.11), ((17, 18), "pants", 0.11),
          ((14, 15), "shoes", 0.08), ((18, 19), "shoes", 0.08), ((20, 2), "skin", 0.08))
_WALLS = {1: (196, 186, 164), 2: (168, 178, 190), 3: (182, 192, 170)}


class DemoFrameSource:
    """FrameSource of a demo sample: RGB frames of the person rendered (lazily) from the colorX/colorY of its
    `.skeleton` file. `size` = (W, H); pixel = colorXY * (W / 1920, H / 1080). Frames whose skeleton is
    missing show the person of the nearest frame that has one (the video still shows the person)."""

    def __init__(self, skeleton_path, subject: DemoSubject, setup: int, camera: int, size=DEMO_FRAME_SIZE):
        self.path, self.subject, self.size = Path(skeleton_path), subject, tuple(size)
        self.setup, self.camera = setup, camera
        with open(self.path, "rb") as f:
            self.num_frames = int(f.readline())
        self._skeleton = None

    def read(self, indices: list[int]) -> list:
        from PIL import Image, ImageDraw
        if self._skeleton is None:
            self._skeleton = read_skeleton(self.path)
        sk = self._skeleton
        has_body = np.flatnonzero((sk.xyz != 0).any(axis=(1, 2, 3)))
        images = []
        for index in indices:
            if not 0 <= index < self.num_frames:
                raise IndexError(f"frame {index} outside 0..{self.num_frames - 1} of {self.path.name}")
            t = int(has_body[np.argmin(np.abs(has_body - index))])
            image = self._background(Image)
            self._draw_people(ImageDraw.Draw(image), sk.color_xy[t], sk.xyz[t, :, :, 2])
            images.append(image)
        return images

    def _background(self, Image):
        W, H = self.size
        wall, horizon = np.array(_WALLS[self.setup]), int(H * 0.62)
        canvas = np.empty((H, W, 3), np.uint8)
        shade = np.linspace(1.0, 0.85, horizon)[:, None, None]
        canvas[:horizon] = (wall * shade).astype(np.uint8)
        canvas[horizon:] = (wall * 0.55).astype(np.uint8)
        x0 = int(W * (0.15 + 0.25 * self.camera))  % W  # a poster on the wall, different per camera
        canvas[int(H * 0.15):int(H * 0.35), x0:x0 + W // 10] = (90, 60, 50)
        return Image.fromarray(canvas)

    def _draw_people(self, draw, color_xy, depth) -> None:
        scale = np.array([self.size[0] / 1920.0, self.size[1] / 1080.0])
        colours = {"shirt": self.subject.shirt, "pants": self.subject.pants, "skin": self.subject.skin,
                   "sleeve": self.subject.shirt if self.subject.long_sleeves else self.subject.skin,
                   "shoes": (40, 40, 45)}
        for m in np.argsort(-depth.mean(axis=1)):  # far body first
            if not depth[m].any():
                continue
            px, z = color_xy[m] * scale, np.maximum(depth[m], 0.5)

            def width(metres, joint):
                return max(1, int(metres * KINECT_COLOR[0] * scale[0] / z[joint]))

            draw.polygon([tuple(px[j]) for j in (4, 8, 16, 12)], fill=colours["shirt"])
            for (a, b), part, metres in sorted(_LIMBS, key=lambda limb: -(z[limb[0][0]] + z[limb[0][1]])):
                w = width(metres, a)
                draw.line([tuple(px[a]), tuple(px[b])], fill=colours[part], width=w)
                for j in (a, b):
                    r = w / 2
                    draw.ellipse([px[j][0] - r, px[j][1] - r, px[j][0] + r, px[j][1] + r], fill=colours[part])
            r = width(0.11, 3)
            head = px[3]
            draw.ellipse([head[0] - r, head[1] - r * 1.15, head[0] + r, head[1] + r * 1.15], fill=colours["skin"])
            draw.chord([head[0] - r, head[1] - r * 1.2, head[0] + r, head[1] + r * 0.6], 180, 360, fill=(45, 35, 30))


def demo_frame_source(data_root, name: str) -> DemoFrameSource:
    """The FrameSource of demo sample `name` (made by prepare_demo)."""
    root = Path(data_root) / "demo"
    meta_path, path = root / "demo_meta.json", root / "raw" / f"{sample_name(name)}.skeleton"
    if not meta_path.is_file() or not path.is_file():
        raise DataNotFoundError(f"demo sample {name} not found in {root}. Make the demo with:\n  "
                                f"{_make_command(data_root, 'demo', 'xsub')}")
    n = parse_ntu_name(name)
    seed = json.loads(meta_path.read_text())["seed"]
    return DemoFrameSource(path, demo_subject(seed, n.subject), n.setup, n.camera)


# ----------------------------------------------------------------------------------------------------------------
# 10. Command line
# ----------------------------------------------------------------------------------------------------------------

def _build_caches(data_root, written: Iterable[str], frames: int, normalization: str) -> None:
    for key in written:
        dataset, split, part = key.split("/")
        load_split(data_root, dataset, split, part, frames, normalization)


def _info(data_root, datasets) -> None:
    for dataset in datasets:
        for split in DATASETS[dataset]:
            folder = split_dir(data_root, dataset, split)
            for part in PARTS:
                label_path = folder / f"{part}_label.pkl"
                if not label_path.is_file():
                    print(f"{dataset:7s} {split:5s} {part:5s}  missing: "
                          f"{_make_command(data_root, dataset, split).splitlines()[0]}")
                    continue
                names, labels = read_label_pkl(label_path)
                arrays = sorted(p.name for p in folder.glob(f"{part}_data*.npy"))
                print(f"{dataset:7s} {split:5s} {part:5s}  {len(names):6d} samples, {len(np.unique(labels)):3d} "
                      f"classes, labels {labels.min()}..{labels.max()}  [{', '.join(arrays)}]")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python data.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Skeleton data for C2VL: raw NTU RGB+D / PKU-MMD -> benchmark splits, import of arrays from "
                    "other codebases, and the built-in demo dataset.",
        epilog="examples:\n"
               "  python data.py demo\n"
               "  python data.py ntu --raw nturgb+d_skeletons nturgbd_skeletons_s018_to_s032 --dataset ntu60 ntu120\n"
               "  python data.py pku --phase 2 --skeletons PKUMMDv2/skeleton --labels PKUMMDv2/label "
               "--xsub cross-subject-v2.txt --xview cross-view-v2.txt\n"
               "  python data.py convert data/NTU-RGB-D/xsub --dataset ntu60 --split xsub\n"
               "  python data.py convert NTU60_CS.npz --dataset ntu60 --names skes_available_name.txt\n"
               "  python data.py convert ntu60_3danno.pkl --dataset ntu60\n"
               "  python data.py info")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_common(sub, cache=True, workers=True):
        sub.add_argument("--data-root", default="datasets", help="where <dataset>/<split>/ folders are written")
        if workers:
            sub.add_argument("--workers", type=int, default=None, help="parser processes (default: all cores)")
        if cache:
            sub.add_argument("--frames", type=int, default=50, help="T of the training cache built afterwards")
            sub.add_argument("--normalization", choices=NORMALIZATIONS, default="aimclr",
                             help="normalisation of the training cache built afterwards")
            sub.add_argument("--no-cache", action="store_true", help="write only the ST-GCN layout")

    ntu = commands.add_parser("ntu", help="raw NTU .skeleton folders -> NTU-60 xsub/xview, NTU-120 xsub/xset")
    ntu.add_argument("--raw", nargs="+", required=True, help="folder(s) holding the .skeleton files")
    ntu.add_argument("--dataset", nargs="+", choices=("ntu60", "ntu120"), default=["ntu60", "ntu120"])
    ntu.add_argument("--missing", default=None,
                     help="missing-skeleton list (default: the NTU-120 list shipped in resources/)")
    add_common(ntu)

    pku = commands.add_parser("pku", help="raw PKU-MMD skeleton + label + split files -> instance-level splits")
    pku.add_argument("--phase", type=int, choices=(1, 2), required=True)
    pku.add_argument("--skeletons", required=True, help="folder of <video>.txt skeleton files")
    pku.add_argument("--labels", required=True, help="folder of <video>.txt label files")
    pku.add_argument("--xsub", default=None, help="cross-subject split file")
    pku.add_argument("--xview", default=None, help="cross-view split file")
    add_common(pku)

    convert = commands.add_parser("convert", help="import arrays made by ST-GCN/AimCLR, 2s-AGCN/CMD, AimCLR "
                                                  "(50-frame), CTR-GCN or pyskl")
    convert.add_argument("path", help="file or folder to import")
    convert.add_argument("--dataset", required=True, choices=tuple(DATASETS))
    convert.add_argument("--split", default=None, help="benchmark split (inferred for CTR-GCN and pyskl files)")
    convert.add_argument("--format", default=None, choices=FORMATS, help="default: guessed from the file names")
    convert.add_argument("--labels", default=None, help="folder of {train,val}_label.pkl for 50-frame arrays")
    convert.add_argument("--names", default=None, help="sample-name list for CTR-GCN .npz files")
    convert.add_argument("--copy", action="store_true", help="copy 300-frame arrays instead of symlinking them")
    add_common(convert, workers=False)

    demo = commands.add_parser("demo", help="generate the built-in demo dataset (deterministic)")
    demo.add_argument("--seed", type=int, default=0)
    add_common(demo, cache=False)

    info = commands.add_parser("info", help="list the prepared splits")
    info.add_argument("--dataset", nargs="+", choices=tuple(DATASETS), default=list(DATASETS))
    add_common(info, cache=False, workers=False)

    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            print(prepare_demo(args.data_root, args.seed, args.workers))
            return
        if args.command == "info":
            _info(args.data_root, args.dataset)
            return
        if args.command == "ntu":
            report = convert_ntu(args.raw, args.data_root, tuple(args.dataset), args.missing, args.workers)
            written = report.written
            print(report.summary())
        elif args.command == "pku":
            splits = {k: v for k, v in (("xsub", args.xsub), ("xview", args.xview)) if v}
            if not splits:
                parser.error("pku: give --xsub and/or --xview split files")
            report = convert_pku(args.phase, args.skeletons, args.labels, splits, args.data_root, args.workers)
            written = report.written
            print(report.summary())
        else:
            targets = convert_existing(args.path, args.dataset, args.split, args.format, args.data_root,
                                       args.labels, args.names, args.copy)
            written = [f"{args.dataset}/{t.parent.name}/{t.name.split('_')[0]}" for t in targets]
            print("\n".join(f"  {t}" for t in targets))
        if not args.no_cache:
            _build_caches(args.data_root, written, args.frames, args.normalization)
    except (DataNotFoundError, DataFormatError, SkeletonFormatError, UnsafePickleError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
