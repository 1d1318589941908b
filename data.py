"""Skeleton data for C2VL: the training input, its preprocessing and its benchmark splits (docs/data.md).

A training sample is a skeleton sequence x_i in R^{C x T x V x M} (C = 3 coordinates, T frames, V = 25 Kinect v2
joints, M = 2 persons); a Dataset item is (x_i, y_i, i), and the sample names are the keys that the prompt caches
of prompts.py and the teacher bank of distill.py are aligned to. T counts the frames an array holds: as recorded
(300 in the split files) before resizing, T = `frames` (50 by default) after it. Benchmarks (docs/conventions.md
§1, §3): NTU-60 xsub/xview, NTU-120 xsub/xset, PKU-MMD I/II xsub/xview, and the demo (xsub/xview by NTU-60's rules).

A split folder datasets/<dataset>/<split>/ holds the ST-GCN layout: `{train,val}_data.npy` float32
(N, 3, 300, 25, 2), zero-padded, and `{train,val}_label.pkl` = (names, 0-based labels); `val` is the benchmark's
test part. For training it is preprocessed once, cached next to the source as `{part}_data.{normalization}_T{T}.npy`
(joints 0-based as in docs/conventions.md §1: 1 SpineMid, 4 ShoulderLeft, 8 ShoulderRight, 20 SpineShoulder, the
"joint 21" of the 1-based papers; t0(m) = first frame of body m):
   valid frames          F = the frames in which any body has a non-zero joint (empty frames are dropped)
   resize (all)          x'[t] = (1 - w) x[F[i0]] + w x[F[i0 + 1]],  p = (t + 1/2) |F| / T - 1/2 clipped to
                         [0, |F| - 1], i0 = floor(p), w = p - i0   (cv2.resize INTER_LINEAR, as CrosSCLR uses)
   "aimclr" (default)    x_v[t, m] <- x_v[t, m] - x_20[t, m]                     per body m and frame t
                         x_20[t, m] <- x_20[t, m] - x_20[t0(m), m]               (the centre keeps its trajectory)
                         x[t, m] <- R_y(theta_tm) x[t, m],  v = x_8[t, m] - x_4[t, m] (shoulders, xz-part)
                         theta_tm = -s_m arccos(v_x / |v|),  s_m = sign(sum_t v_z) (+1 for a zero sum): v ends
                         along +x in the frames where v_z has the sign s_m; in the other frames its angle from
                         +x doubles, (1, -0.5) -> (0.67, -0.89)   (CrosSCLR's parallel_skeleton)
   "ctrgcn"              x <- x - x_1[t0, body 0]  (SpineMid of the first valid frame, CTR-GCN's translation)
   "none"                coordinates as recorded

Elsewhere: making split folders from raw NTU/PKU-MMD files (tools/raw_skeletons.py) or from the arrays of other
codebases (tools/foreign_formats.py), with `python tools/gendata.py {ntu,pku,convert,info}`; the synthetic demo
dataset (demo/world.py); NTU sample names and the benchmark rules they decide (tools/ntu_names.py); label files
(utils/files.py); prompts (prompts.py).
Nowhere: augmentation (C2VL trains without it), bone/motion streams, and the NTU "denoising" heuristics of
CTR-GCN/pyskl (import their denoised arrays).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

# Callers catch this module's errors as data.DataNotFoundError, data.DataFormatError and data.UnsafePickleError.
from utils.files import (ArrayFile, DataFormatError, DataNotFoundError, NpyRowWriter,  # noqa: F401
                         UnsafePickleError, read_label_pkl, sample_name)

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


# ----------------------------------------------------------------------------------------------------------------
# 1. Preprocessing for training (equations in the module docstring) and its cache
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
    """x_v[t,m] - x_20[t,m] per body and frame; joint 20 keeps its trajectory x_20[t,m] - x_20[t0(m),m] (CrosSCLR)."""
    present = body_present(x)  # (N, T, M)
    center = x[:, :, :, SPINE_SHOULDER:SPINE_SHOULDER + 1, :]  # (N, C, T, 1, M)
    first = present.argmax(axis=1)  # (N, M) first frame with the body
    initial = np.take_along_axis(center[:, :, :, 0, :], first[:, None, None, :], axis=2)  # (N, C, 1, M)
    out = x - center
    out[:, :, :, SPINE_SHOULDER, :] = center[:, :, :, 0, :] - initial
    return out * present[:, None, :, None, :]


def align_shoulders(x: np.ndarray) -> np.ndarray:
    """Rotate every body and frame about the vertical (y) axis by theta_tm, from the shoulder vector v = x_8 - x_4.

    theta_tm = -s_m arccos(v_x / (|v_xz| + 1e-4)), the sign s_m = sign(sum_t v_z) set once per body and sequence;
    R_y(theta) maps (x, z) -> (x cos theta - z sin theta, x sin theta + z cos theta), i.e. adds theta to the angle
    phi_t = atan2(v_z, v_x). So v ends along +x (phi_t + theta_tm = 0) in the frames where v_z has the sign s_m, and
    at twice its angle (2 phi_t) in the others. CrosSCLR's parallel_skeleton does exactly this; reproduced so our
    caches match AimCLR's `*_position.npy`.
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
    """x - x_1[t0, body 0] for every present body (CTR-GCN: origin = SpineMid of the first valid frame)."""
    present = body_present(x)  # (N, T, M)
    first = present[:, :, 0].argmax(axis=1)  # (N,)
    origin = x[np.arange(len(x)), :, first, SPINE_MID, 0]  # (N, C)
    return x - origin[:, :, None, None, None] * present[:, None, :, None, :]


def preprocess(x: np.ndarray, frames: int = 50, normalization: str = "aimclr") -> np.ndarray:
    """(N, 3, T, 25, M) raw -> (N, 3, frames, 25, 2) float32 training input (equations in the module docstring).

    Coordinate steps that commute with resizing run on the recorded frames (as CrosSCLR and CTR-GCN do); the
    per-frame rotation runs on the resized frames (as CrosSCLR does).
    # Reconstruction: CrosSCLR pads clips shorter than T with 99.9 after resizing; we keep the resized frames.
    """
    check_choice("normalization", normalization, NORMALIZATIONS)
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
# 2. The Dataset of one split part
# ----------------------------------------------------------------------------------------------------------------

class SkeletonDataset(Dataset):
    """Preprocessed skeletons of one split part: item i = (float32 (3, T, 25, 2), label, i).

    `names` are canonical sample names (no `.skeleton`; the keys of the prompt files), `labels` int64 (N,),
    `data` the memory-mapped (N, 3, T, 25, 2) float32 cache. Items are read with preadv, so iterating the
    whole split keeps the resident memory flat.
    """

    def __init__(self, data_path, label_path, num_class: int, frames: int = 50, normalization: str = "aimclr"):
        check_choice("normalization", normalization, NORMALIZATIONS)
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


def make_command(data_root, dataset, split) -> str:
    """The command that makes a missing split (named in the errors of load_split and `gendata.py info`)."""
    root = f" --data-root {data_root}" if str(data_root) != "datasets" else ""
    if dataset == "demo":
        return f"python demo/world.py{root}"
    if dataset.startswith("pku"):
        return (f"python tools/gendata.py pku --phase {dataset[-1]} --skeletons <PKU skeleton dir> "
                f"--labels <label dir> --{split} <{'cross-subject' if split == 'xsub' else 'cross-view'} split file>"
                f"{root}")
    return (f"python tools/gendata.py ntu --raw <folder(s) of .skeleton files> --dataset {dataset}{root}\n"
            f"or, with arrays from another codebase: python tools/gendata.py convert <file or folder> "
            f"--dataset {dataset} --split {split}{root}")


def load_split(data_root="datasets", dataset: str = "demo", split: str = "xsub", part: str = "train",
               frames: int = 50, normalization: str = "aimclr") -> SkeletonDataset:
    """The preprocessed Dataset of datasets/<dataset>/<split>/<part> (cache built on first use)."""
    folder = split_dir(data_root, dataset, split)
    check_choice("part", part, PARTS)
    data_path, label_path = folder / f"{part}_data.npy", folder / f"{part}_label.pkl"
    cache = preprocessed_path(data_path, frames, normalization)
    if not label_path.is_file() or not (data_path.is_file() or cache.is_file()):
        only = sorted(p.name for p in folder.glob(f"{part}_data.*.npy")) if folder.is_dir() else []
        have = f" (only {', '.join(only)} exist: pick matching --frames/--normalization)" if only else ""
        raise DataNotFoundError(f"{dataset} {split} {part} not found in {folder}{have}. Make it with:\n  "
                                f"{make_command(data_root, dataset, split)}")
    return SkeletonDataset(data_path, label_path, num_classes(dataset), frames, normalization)


# ----------------------------------------------------------------------------------------------------------------
# 3. Datasets, their splits and class names (NTU sample names and benchmark rules: tools/ntu_names.py)
# ----------------------------------------------------------------------------------------------------------------

DEMO_CLASSES = ("wave right hand", "wave left hand", "raise both arms", "clap hands", "sit down", "stand up",
                "kick with right leg", "kick with left leg", "jump up", "bow", "punch with right hand",
                "walk in place", "lean side to side", "put on a hat", "take off a hat")  # acted in demo/world.py


def num_classes(dataset: str) -> int:
    """Number of classes of a dataset; PKU-MMD I and II keep the 51-id label space."""
    check_choice("dataset", dataset, DATASETS)
    return {"ntu60": 60, "ntu120": 120, "pku1": 51, "pku2": 51, "demo": len(DEMO_CLASSES)}[dataset]


def class_names(dataset: str) -> list[str]:
    """Class names in label order (NTU and PKU-MMD from the files shipped in resources/)."""
    check_choice("dataset", dataset, DATASETS)
    if dataset == "demo":
        return list(DEMO_CLASSES)
    if dataset.startswith("pku"):
        return (RESOURCES / "pku_mmd_class_names.txt").read_text().splitlines()
    return (RESOURCES / "ntu120_class_names.txt").read_text().splitlines()[:num_classes(dataset)]


def split_dir(data_root="datasets", dataset: str = "demo", split: str = "xsub") -> Path:
    """Folder of one benchmark split, e.g. datasets/ntu60/xsub/ (ST-GCN layout + training caches)."""
    check_choice("dataset", dataset, DATASETS)
    check_choice(f"split of {dataset}", split, DATASETS[dataset])
    return Path(data_root) / dataset / split


def check_choice(what, value, choices):
    """ValueError naming the choices unless `value` is one of them."""
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


# ----------------------------------------------------------------------------------------------------------------
# 4. The checks every split part passes
# ----------------------------------------------------------------------------------------------------------------

def check_split(names, labels, shape, num_class: int, where: str) -> None:
    """At least one sample, labels in 0..num_class-1, one label per name, unique names, rows matching names,
    (N, 3, T, 25, M<=2)."""
    if len(names) != len(labels):
        raise DataFormatError(f"{where}: {len(names)} names but {len(labels)} labels")
    if len(names) == 0:
        raise DataFormatError(f"{where}: no samples (an empty split part can be neither trained nor evaluated)")
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
