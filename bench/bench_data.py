"""Benchmark of the data path: raw NTU reader speed, and memory while iterating a memory-mapped NTU-120-sized split.

1. files/s of tools/raw_skeletons.read_skeleton (vectorised per file, parallel across files) against
   plain_read_skeleton below (the line-by-line, dict-per-value reader of ST-GCN's tools) on the same NTU-format
   files, in the same run.
2. peak resident memory (RSS) of a training loop's DataLoader (batch 128, 2 workers, shuffled) over an
   (N, 3, 50, 25, 2) float32 split on disk, for two N (the larger is NTU-120 xsub train: 63,026 samples,
   1.9 GB), each in a fresh process: SkeletonDataset (rows read with preadv) against the usual feeder that
   indexes an np.load(mmap_mode="r") array (pages it touches stay mapped and count as resident).

    python bench/bench_data.py                 # ~2-3 minutes on 2 cores, ~2.5 GB of temporary disk
    python bench/bench_data.py --files 100 --sizes 4000 16000   # quicker
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import data  # noqa: E402
from utils.files import write_labels  # noqa: E402
from data import MAX_BODIES, NUM_JOINTS  # noqa: E402
from demo.world import demo_names, generate_demo_sample  # noqa: E402
from tools.raw_skeletons import _read_ntu_task, parallel_map, read_skeleton  # noqa: E402


def make_skeleton_files(folder: Path, count: int) -> list[Path]:
    """NTU-format files from the demo generator (1-2 bodies, ~75 frames, CRLF, 12 values per joint line)."""
    names = demo_names()
    paths = []
    for k in range(count):
        name = names[(k * 7) % len(names)]
        text, _ = generate_demo_sample(name, seed=1000 + k // len(names))
        paths.append(folder / f"{name}_{k}.skeleton")
        paths[-1].write_text(text, newline="")
    return paths


def plain_read_skeleton(path) -> np.ndarray:
    """Reference line-by-line reader (the ST-GCN way: one readline and dict per value), the baseline of bench_reader.

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


def bench_reader(paths: list[Path], workers: int) -> dict:
    started = time.perf_counter()
    for path in paths:
        plain_read_skeleton(path)
    plain = len(paths) / (time.perf_counter() - started)
    started = time.perf_counter()
    for path in paths:
        read_skeleton(path)
    vectorised = len(paths) / (time.perf_counter() - started)
    started = time.perf_counter()
    results = list(parallel_map(_read_ntu_task, paths, workers, "bench reader"))
    parallel = len(paths) / (time.perf_counter() - started)
    assert all(error is None for _, error in results)
    frames = np.mean([len(xyz) for xyz, _ in results])
    return {"files": len(paths), "mean_frames": round(float(frames), 1), "workers": workers,
            "plain_files_per_s": round(plain, 1), "vectorised_1_process_files_per_s": round(vectorised, 1),
            "parallel_files_per_s": round(parallel, 1), "speedup_vectorised": round(vectorised / plain, 2),
            "speedup_parallel": round(parallel / plain, 2)}


def make_split(folder: Path, n: int, frames: int = 50) -> Path:
    """A split folder whose training cache (N, 3, frames, 25, 2) is written row block by row block."""
    folder.mkdir(parents=True, exist_ok=True)
    block = np.random.default_rng(0).standard_normal((512, 3, frames, 25, 2)).astype(np.float32)
    with data.NpyRowWriter(folder / f"train_data.aimclr_T{frames}.npy", (n, 3, frames, 25, 2)) as writer:
        for start in range(0, n, len(block)):
            writer.write_rows(block[:min(len(block), n - start)])
    names = [f"S{1 + i // 10000:03d}C001P001R001A{1 + i % 120:03d}_{i}" for i in range(n)]
    write_labels(folder / "train_label.pkl", names, [i % 120 for i in range(n)])
    return folder


class MemmapFeeder:
    """The usual feeder of the field: np.load(mmap_mode='r') and index it in __getitem__."""

    def __init__(self, path):
        self.data = np.load(path, mmap_mode="r")

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        import torch
        return torch.from_numpy(np.array(self.data[i])), 0, i


def measure_rss(folder: str, method: str) -> dict:
    """Runs in a fresh process: one shuffled epoch through a DataLoader; peak RSS of this process and workers."""
    import torch
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if method == "skeleton_dataset":
        dataset = data.SkeletonDataset(Path(folder) / "train_data.npy", Path(folder) / "train_label.pkl", 120)
    else:
        dataset = MemmapFeeder(Path(folder) / "train_data.aimclr_T50.npy")
    loader = torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True, num_workers=2,
                                         generator=torch.Generator().manual_seed(0))
    started, seen = time.perf_counter(), 0
    for x, _, _ in loader:
        seen += len(x)
    assert seen == len(dataset)
    return {"samples": seen, "seconds": round(time.perf_counter() - started, 1),
            "main_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "main_rss_before_mb": round(before / 1024, 1),
            "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300, help="NTU-format files for the reader benchmark")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--sizes", type=int, nargs="+", default=[16000, 63026], help="N of the arrays on disk")
    parser.add_argument("--tmp", default=None, help="folder for temporary files (default: system temp)")
    parser.add_argument("--out", default="runs/bench_data.json")
    parser.add_argument("--measure-rss", nargs=2, metavar=("FOLDER", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_rss:
        print(json.dumps(measure_rss(*args.measure_rss)))
        return
    scratch = Path(tempfile.mkdtemp(prefix="bench_data_", dir=args.tmp))
    results = {"cpu_count": os.cpu_count()}
    try:
        (scratch / "raw").mkdir()
        paths = make_skeleton_files(scratch / "raw", args.files)
        results["reader"] = reader = bench_reader(paths, args.workers)
        print(f"raw NTU reader on {reader['files']} files (mean {reader['mean_frames']} frames): plain "
              f"{reader['plain_files_per_s']} files/s, vectorised {reader['vectorised_1_process_files_per_s']} "
              f"files/s (x{reader['speedup_vectorised']}), vectorised + {reader['workers']} processes "
              f"{reader['parallel_files_per_s']} files/s -> ratio x{reader['speedup_parallel']}")
        shutil.rmtree(scratch / "raw")
        results["rss"] = []
        for n in args.sizes:
            folder = make_split(scratch / f"split_{n}", n)
            size_gb = (folder / "train_data.aimclr_T50.npy").stat().st_size / 1e9
            for method in ("skeleton_dataset", "np_load_mmap_indexing"):
                out = subprocess.run([sys.executable, __file__, "--measure-rss", str(folder), method],
                                     capture_output=True, text=True, check=True)
                row = {"n": n, "array_gb": round(size_gb, 2), "method": method, **json.loads(out.stdout)}
                results["rss"].append(row)
                print(f"N={n:6d} ({size_gb:.2f} GB) {method:22s}: main peak RSS {row['main_peak_rss_mb']:7.1f} MB, "
                      f"worker peak RSS {row['worker_peak_rss_mb']:7.1f} MB, epoch {row['seconds']} s")
            shutil.rmtree(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
