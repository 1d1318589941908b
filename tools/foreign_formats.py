"""Arrays made by other codebases -> the split folders of data.py, all checked before anything is installed.

Formats (docs/conventions.md §2), and what `convert_existing` does with each:
  stgcn      ST-GCN/AimCLR `{part}_data.npy` (N, 3, 300, 25, M) + `{part}_label.pkl`    symlinked (or copied)
  agcn       2s-AGCN/CMD `{part}_data_joint.npy`, same layout                           symlinked (or copied)
  position   AimCLR's 50-frame `{part}_position.npy` + the 300-frame label files      the `aimclr_T50` training cache
  ctrgcn     CTR-GCN's `NTU60_CS.npz`-style x (N, T, 150), one-hot y                    rows rewritten (transposed)
  pyskl      pyskl's `ntu60_3danno.pkl` (split lists + keypoint annotations)            rows rewritten
Arrays are memory-mapped or read row by row; pickles go through the restricted unpickler of utils/files.py.

    python tools/gendata.py convert path/to/aimclr/NTU60/xsub --dataset ntu60 --split xsub
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data import (DATASETS, MAX_BODIES, MAX_FRAMES, NUM_JOINTS, PARTS, check_choice, check_split, num_classes,
                  split_dir)
from tools.ntu_names import NTU_NAME, ntu_in_dataset, ntu_is_train
from utils.files import as_int_labels, read_label_pkl, sample_name, write_labels
from utils.files import (ArrayFile, DataFormatError, DataNotFoundError, NpyRowWriter, atomic_path, refuse_to_overwrite,
                         remove_part_arrays, safe_load_pickle)


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
    (`NTU60_CS/train/000000`, with a warning) and prompts cannot be matched to samples by name. A file named
    as CTR-GCN names them must be given its own dataset and split, and one-hot labels must have its class count.
    A part whose array is empty (files circulate with x_train or x_test emptied) is left out, saying so; the other
    part is converted.
    """
    path = Path(path)
    known = CTRGCN_SPLITS.get(path.stem)
    if known and (dataset not in (None, known[0]) or split not in (None, known[1])):
        raise DataFormatError(f"{path.name} is CTR-GCN's {known[0]} {known[1]} file (by its name), but --dataset "
                              f"{dataset}{f' --split {split}' if split else ''} was given: pass --dataset {known[0]}"
                              f"{' and leave out --split' if split else ''}")
    dataset, split = known or (dataset, split)
    if not dataset or not split:
        raise DataFormatError(f"{path}: pass --dataset and --split (the name is not one of {list(CTRGCN_SPLITS)})")
    listed = None
    if names_file:
        if not Path(names_file).is_file():
            raise DataNotFoundError(f"--names {names_file} not found: pass CTR-GCN's statistics/"
                                    f"skes_available_name.txt (the list its arrays were made from)")
        text = Path(names_file).read_text(errors="replace")
        listed = [m.group(0) for m in NTU_NAME.finditer(text) if ntu_in_dataset(m.group(0), dataset)]
    else:
        print(f"warning: {path.name} holds no sample names and --names was not given: samples are named by "
              f"position ({path.stem}/train/000000, ...), so prompts keyed by NTU sample names cannot be matched "
              f"to them; pass --names statistics/skes_available_name.txt (CTR-GCN's list) to keep the names",
              file=sys.stderr)
    parts = {}
    with np.load(path) as npz:
        y = {key: np.asarray(npz[key]) for key in ("y_train", "y_test")}
    for part, key in (("train", "train"), ("val", "test")):
        array = ArrayFile.npz_member(path, f"x_{key}")
        if array.shape[0] == 0:
            print(f"{path.name}: x_{key} is empty: its {part} part is left out, the other part is converted",
                  file=sys.stderr)
            continue
        if len(array.shape) != 3 or array.shape[2] != 2 * NUM_JOINTS * 3:
            raise DataFormatError(f"{path}: x_{key} has shape {array.shape}, expected (N, T, 150)")
        if y[f"y_{key}"].ndim == 2 and y[f"y_{key}"].shape[1] != num_classes(dataset):
            raise DataFormatError(f"{path}: y_{key} is one-hot over {y[f'y_{key}'].shape[1]} classes but "
                                  f"--dataset {dataset} has {num_classes(dataset)}: pass the dataset it was made for")
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

        parts[part] = ExistingPart(names, as_int_labels(labels, path), (len(array), 3, array.shape[1],
                                                                          NUM_JOINTS, MAX_BODIES), read, path)
    if not parts:
        raise DataFormatError(f"{path}: x_train and x_test are both empty: there are no samples to convert")
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
    check_choice("format", fmt, FORMATS)
    if fmt == "ctrgcn":
        return read_ctrgcn_npz(path, dataset, split, names_file)
    if fmt == "pyskl":
        return read_pyskl(path, dataset)
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    return {split: read_stgcn_folder(folder, fmt, labels)}


def check_ntu_dataset(parts: dict, dataset: str, where) -> None:
    """Refuse NTU arrays given as the other NTU dataset: a sample outside NTU-60 for ntu60; for ntu120, arrays
    whose every name is an NTU-60 one or whose labels stay in NTU-60's 0..59."""
    names = [sample_name(n) for existing in parts.values() for n in existing.names]
    if dataset == "ntu60":
        outside = next((n for n in names if NTU_NAME.fullmatch(n) and not ntu_in_dataset(n, "ntu60")), None)
        if outside:
            raise DataFormatError(f"{where}: sample {outside} is not part of NTU-60 (setups S001-S017, actions "
                                  f"A001-A060): these are NTU-120 arrays, pass --dataset ntu120")
    if dataset == "ntu120" and names:
        labels = np.concatenate([existing.labels for existing in parts.values()])
        if all(NTU_NAME.fullmatch(n) and ntu_in_dataset(n, "ntu60") for n in names):
            reason = "every sample name is an NTU-60 one (setups S001-S017, actions A001-A060)"
        elif labels.max() < num_classes("ntu60"):
            reason = f"their labels stay in {labels.min()}..{labels.max()} (NTU-60 has 60 classes, NTU-120 120)"
        else:
            return
        raise DataFormatError(f"{where}: --dataset ntu120 given for NTU-60 arrays: {reason}; pass --dataset ntu60")


def convert_existing(path, dataset: str, split=None, fmt=None, data_root="datasets", labels=None,
                     names_file=None, copy=False, chunk=256, force=False) -> list[Path]:
    """Install arrays users already have as datasets/<dataset>/<split>/ (checked first; nothing half-written).

    300-frame float32 arrays are symlinked (or copied with copy=True) as `{part}_data.npy`; AimCLR's 50-frame
    arrays become the `aimclr_T50` training cache directly; CTR-GCN and pyskl rows are rewritten (transposed)
    into the ST-GCN layout. Label files are rewritten after the checks. Refused before anything is written: an
    existing split (unless `force`; its old arrays and caches are then deleted), an empty part, arrays of the
    other NTU dataset.
    """
    check_choice("dataset", dataset, DATASETS)
    if split is not None and split not in DATASETS[dataset]:
        raise DataFormatError(f"--split {split} is not a split of {dataset}: choose {', '.join(DATASETS[dataset])}")
    found = open_existing(path, fmt, dataset, split, labels, names_file)
    for found_split, parts in found.items():
        if (found_split or split) is None:
            raise DataFormatError(f"{path}: pass --split ({', '.join(DATASETS[dataset])})")
        check_ntu_dataset(parts, dataset, path)
        for part, existing in parts.items():
            check_split(existing.names, existing.labels, existing.shape, num_classes(dataset),
                        f"{existing.source} ({part})")
        folder = split_dir(data_root, dataset, found_split or split)
        refuse_to_overwrite([folder / f"{part}_{kind}" for part in parts for kind in ("label.pkl", "data.npy")],
                            force)
    written = []
    for found_split, parts in found.items():
        folder = split_dir(data_root, dataset, found_split or split)
        for part, existing in parts.items():
            target = folder / (f"{part}_data.{existing.preprocessed}.npy" if existing.preprocessed
                               else f"{part}_data.npy")
            _install_rows(existing, target, copy, chunk)
            write_labels(folder / f"{part}_label.pkl", existing.names, existing.labels)
            remove_part_arrays(folder, part, keep=[target, existing.source])
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
