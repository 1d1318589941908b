"""The data command line: raw NTU RGB+D / PKU-MMD -> benchmark splits, arrays of other codebases, the demo.

Each command writes split folders datasets/<dataset>/<split>/ (data.py) and then builds their training caches
(--frames, --normalization; --no-cache skips them). The work is done by tools/raw_skeletons.py (ntu, pku),
tools/foreign_formats.py (convert) and demo/world.py (demo); `info` lists what is prepared.

    python tools/gendata.py demo
    python tools/gendata.py <ntu|pku|convert|demo|info> --help
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Iterable

# Run as a script (python tools/gendata.py): the project's modules live in the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from data import DATASETS, NORMALIZATIONS, PARTS, load_split, make_command, read_label_pkl, split_dir  # noqa: E402
from demo.world import prepare_demo  # noqa: E402
from tools.foreign_formats import FORMATS, convert_existing  # noqa: E402
from tools.raw_skeletons import SkeletonFormatError, convert_ntu, convert_pku  # noqa: E402
from utils.files import DataFormatError, DataNotFoundError, UnsafePickleError  # noqa: E402


def _build_caches(data_root, written: Iterable[str], frames: int, normalization: str) -> None:
    """The training cache of every "<dataset>/<split>/<part>" a command wrote."""
    for key in written:
        dataset, split, part = key.split("/")
        load_split(data_root, dataset, split, part, frames, normalization)


def _info(data_root, datasets) -> None:
    """One line per split part: its samples, classes and arrays, or the command that makes it."""
    for dataset in datasets:
        for split in DATASETS[dataset]:
            folder = split_dir(data_root, dataset, split)
            for part in PARTS:
                label_path = folder / f"{part}_label.pkl"
                if not label_path.is_file():
                    print(f"{dataset:7s} {split:5s} {part:5s}  missing: "
                          f"{make_command(data_root, dataset, split).splitlines()[0]}")
                    continue
                names, labels = read_label_pkl(label_path)
                arrays = sorted(p.name for p in folder.glob(f"{part}_data*.npy"))
                print(f"{dataset:7s} {split:5s} {part:5s}  {len(names):6d} samples, {len(np.unique(labels)):3d} "
                      f"classes, labels {labels.min()}..{labels.max()}  [{', '.join(arrays)}]")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python tools/gendata.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Skeleton data for C2VL: raw NTU RGB+D / PKU-MMD -> benchmark splits, import of arrays from "
                    "other codebases, and the built-in demo dataset.",
        epilog="examples:\n"
               "  python tools/gendata.py demo\n"
               "  python tools/gendata.py ntu --raw nturgb+d_skeletons nturgbd_skeletons_s018_to_s032 "
               "--dataset ntu60 ntu120\n"
               "  python tools/gendata.py pku --phase 2 --skeletons PKUMMDv2/skeleton --labels PKUMMDv2/label "
               "--xsub cross-subject-v2.txt --xview cross-view-v2.txt\n"
               "  python tools/gendata.py convert data/NTU-RGB-D/xsub --dataset ntu60 --split xsub\n"
               "  python tools/gendata.py convert NTU60_CS.npz --dataset ntu60 --names skes_available_name.txt\n"
               "  python tools/gendata.py convert ntu60_3danno.pkl --dataset ntu60\n"
               "  python tools/gendata.py info")
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
