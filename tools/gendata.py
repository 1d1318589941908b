"""The data command line: raw NTU RGB+D / PKU-MMD -> benchmark splits, and arrays of other codebases.

Each command writes split folders datasets/<dataset>/<split>/ (data.py) and then builds their training caches
(--frames, --normalization; --no-cache skips them); a split that exists is replaced only with --force. Mistakes
end in one `error: ...` line that names the flag or command that fixes them. The work is done by
tools/raw_skeletons.py (ntu, pku) and tools/foreign_formats.py (convert); `info` lists what is prepared. The demo
dataset is made by `python demo/world.py` (demo/ uses these tools, not the other way round: docs/data.md).

    python tools/gendata.py <ntu|pku|convert|info> --help
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Iterable

# Run as a script (python tools/gendata.py): the project's modules live in the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from data import DATASETS, NORMALIZATIONS, PARTS, load_split, make_command, read_label_pkl, split_dir  # noqa: E402
from tools.foreign_formats import FORMATS, convert_existing  # noqa: E402
from tools.raw_skeletons import SkeletonFormatError, WorkerError, convert_ntu, convert_pku  # noqa: E402
from utils.config import add_arguments, from_args, setting  # noqa: E402
from utils.files import DataFormatError, UnsafePickleError  # noqa: E402

# What a command reports as one `error: ...` line (no traceback): missing or existing files, bad contents, a
# worker that failed (OSError covers DataNotFoundError and SplitExistsError).
USER_ERRORS = (OSError, DataFormatError, SkeletonFormatError, UnsafePickleError, WorkerError)


@dataclass
class DataRootConfig:
    """Where every command reads and writes the split folders."""
    data_root: str = setting("datasets", "where <dataset>/<split>/ folders are written")


@dataclass
class CacheConfig(DataRootConfig):
    """Commands that write splits, then build their training caches."""
    frames: int = setting(50, "T of the training cache built afterwards")
    normalization: str = setting("aimclr", "normalisation of the training cache built afterwards", NORMALIZATIONS)
    cache: bool = setting(True, "build the training caches (--no-cache: write only the ST-GCN layout)")
    force: bool = setting(False, "replace splits that exist already (their old training caches are deleted)")


@dataclass
class NtuConfig(CacheConfig):
    """raw NTU .skeleton folders -> NTU-60 xsub/xview, NTU-120 xsub/xset"""
    raw: tuple = setting(None, "folder(s) holding the .skeleton files", kind=str, nargs="+", required=True)
    dataset: tuple = setting(("ntu60", "ntu120"), "datasets to write", ("ntu60", "ntu120"), nargs="+")
    missing: str | None = setting(None, "missing-skeleton list (default: the NTU-120 list shipped in resources/)",
                                  kind=str)
    workers: int | None = setting(None, "parser processes (default: all cores)", kind=int)


@dataclass
class PkuConfig(CacheConfig):
    """raw PKU-MMD skeleton + label + split files -> instance-level splits"""
    phase: int = setting(None, "PKU-MMD phase", (1, 2), int, required=True)
    skeletons: str = setting(None, "folder of <video>.txt skeleton files", kind=str, required=True)
    labels: str = setting(None, "folder of <video>.txt label files", kind=str, required=True)
    xsub: str | None = setting(None, "cross-subject split file", kind=str)
    xview: str | None = setting(None, "cross-view split file", kind=str)
    workers: int | None = setting(None, "parser processes (default: all cores)", kind=int)


@dataclass
class ConvertConfig(CacheConfig):
    """import arrays made by ST-GCN/AimCLR, 2s-AGCN/CMD, AimCLR (50-frame), CTR-GCN or pyskl"""
    path: str = setting(None, "file or folder to import", kind=str, positional=True)
    dataset: str = setting(None, "dataset of the arrays", tuple(DATASETS), str, required=True)
    split: str | None = setting(None, "benchmark split (inferred for CTR-GCN and pyskl files)", kind=str)
    format: str | None = setting(None, "default: guessed from the file names", FORMATS, str)
    labels: str | None = setting(None, "folder of {train,val}_label.pkl for 50-frame arrays", kind=str)
    names: str | None = setting(None, "sample-name list for CTR-GCN .npz files", kind=str)
    copy: bool = setting(False, "copy 300-frame arrays instead of symlinking them")


@dataclass
class DemoConfig:
    """the demo dataset is made by `python demo/world.py` (and by `python train.py`)"""


@dataclass
class InfoConfig(DataRootConfig):
    """list the prepared splits"""
    dataset: tuple = setting(tuple(DATASETS), "datasets to list", tuple(DATASETS), nargs="+")


COMMANDS = {"ntu": NtuConfig, "pku": PkuConfig, "convert": ConvertConfig, "demo": DemoConfig, "info": InfoConfig}


def _build_caches(data_root, written: Iterable[str], frames: int, normalization: str) -> None:
    """The training cache of every "<dataset>/<split>/<part>" a command wrote."""
    for key in written:
        dataset, split, part = key.split("/")
        load_split(data_root, dataset, split, part, frames, normalization)


def _info(data_root, datasets) -> None:
    """One line per split part: its samples, classes and arrays, or what is wrong and the command that makes it."""
    for dataset in datasets:
        for split in DATASETS[dataset]:
            folder = split_dir(data_root, dataset, split)
            remake = make_command(data_root, dataset, split).splitlines()[0]
            replace = (f"{remake} --force" if dataset != "demo" else
                       f"delete {os.path.join(data_root, 'demo')} and run {remake}")
            for part in PARTS:
                label_path = folder / f"{part}_label.pkl"
                head = f"{dataset:7s} {split:5s} {part:5s}"
                if not label_path.is_file():
                    print(f"{head}  missing: {remake}")
                    continue
                try:
                    names, labels = read_label_pkl(label_path)
                except (DataFormatError, UnsafePickleError) as error:
                    print(f"{head}  unreadable ({error}); remake it: {replace}")
                    continue
                arrays = sorted(p.name for p in folder.glob(f"{part}_data*.npy"))
                if not len(names):
                    print(f"{head}       0 samples: empty, remake it: {replace}  [{', '.join(arrays)}]")
                    continue
                print(f"{head}  {len(names):6d} samples, {len(np.unique(labels)):3d} classes, labels "
                      f"{labels.min()}..{labels.max()}  [{', '.join(arrays)}]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python tools/gendata.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Skeleton data for C2VL: raw NTU RGB+D / PKU-MMD -> benchmark splits, and import of arrays from "
                    "other codebases.",
        epilog="examples:\n"
                  "  python tools/gendata.py ntu --raw nturgb+d_skeletons nturgbd_skeletons_s018_to_s032 "
               "--dataset ntu60 ntu120\n"
               "  python tools/gendata.py pku --phase 2 --skeletons PKUMMDv2/skeleton --labels PKUMMDv2/label "
               "--xsub cross-subject-v2.txt --xview cross-view-v2.txt\n"
               "  python tools/gendata.py convert data/NTU-RGB-D/xsub --dataset ntu60 --split xsub\n"
               "  python tools/gendata.py convert NTU60_CS.npz --dataset ntu60 --names skes_available_name.txt\n"
               "  python tools/gendata.py convert ntu60_3danno.pkl --dataset ntu60\n"
               "  python tools/gendata.py info")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, cls in COMMANDS.items():
        add_arguments(commands.add_parser(name, help=cls.__doc__), cls)
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    config = from_args(COMMANDS[args.command], args)
    try:
        if args.command == "demo":
            sys.exit(f"error: {DemoConfig.__doc__}")
        if args.command == "info":
            _info(config.data_root, config.dataset)
            return
        if args.command == "ntu":
            report = convert_ntu(config.raw, config.data_root, tuple(config.dataset), config.missing, config.workers,
                                 config.force)
            written = report.written
            print(report.summary())
        elif args.command == "pku":
            splits = {k: v for k, v in (("xsub", config.xsub), ("xview", config.xview)) if v}
            if not splits:
                parser.error("pku: give --xsub and/or --xview split files")
            report = convert_pku(config.phase, config.skeletons, config.labels, splits, config.data_root,
                                 config.workers, config.force)
            written = report.written
            print(report.summary())
        else:
            targets = convert_existing(config.path, config.dataset, config.split, config.format, config.data_root,
                                       config.labels, config.names, config.copy, force=config.force)
            written = [f"{config.dataset}/{t.parent.name}/{t.name.split('_')[0]}" for t in targets]
            print("\n".join(f"  {t}" for t in targets))
        if config.cache:
            _build_caches(config.data_root, written, config.frames, config.normalization)
    except USER_ERRORS as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
