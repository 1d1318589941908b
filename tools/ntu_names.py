"""NTU RGB+D sample names and the benchmarks they decide (docs/conventions.md §1).

A name SsssCcccPpppRrrrAaaa holds setup, camera, performer (subject), replication and action, all 1-based. The
benchmark rules read a sample's split part off its name: training subjects (xsub), cameras 2 and 3 (xview), even
setups (xset). The demo dataset is named like NTU-60 and follows its rules.

Not a paper concept: used where split folders are made (tools/raw_skeletons.py, tools/foreign_formats.py) and by
the demo (demo/world.py, demo/frames.py); data.py reads the finished splits.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from data import DATASETS, check_choice

NTU60_XSUB_TRAIN_SUBJECTS = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU120_XSUB_TRAIN_SUBJECTS = NTU60_XSUB_TRAIN_SUBJECTS + (
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94,
    95, 97, 98, 100, 103)
NTU_XVIEW_TRAIN_CAMERAS = (2, 3)
NTU_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


@dataclass(frozen=True)
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
    """The benchmarks of docs/conventions.md §1: training subjects (xsub), cameras 2 and 3 (xview), even setups (xset).

    The demo dataset follows NTU-60's rules, so the same split code is exercised on it.
    """
    check_choice(f"split of {dataset}", split, DATASETS[dataset])
    n = parse_ntu_name(name)
    if split == "xsub":
        return n.subject in (NTU120_XSUB_TRAIN_SUBJECTS if dataset == "ntu120" else NTU60_XSUB_TRAIN_SUBJECTS)
    if split == "xview":
        return n.camera in NTU_XVIEW_TRAIN_CAMERAS
    return n.setup % 2 == 0  # xset


def read_missing_list(path) -> set[str]:
    """Sample names in an NTU missing-skeleton list; header lines and blank lines are ignored."""
    return {m.group(0) for m in NTU_NAME.finditer(Path(path).read_text(errors="replace"))}
