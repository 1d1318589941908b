"""The three skeleton encoders' training steps side by side: samples/s and peak memory, ratios against ST-GCN.

One step is train.train_step on the same synthetic batch (B, 3, T, 25, 2) with unit prompt features of both
modalities, in epoch 2 (the teacher bank filled): C2VLModel forward with the encoder (ST-GCN, GRU or Transformer)
and the heads, the C2VL loss, backward, the clipped gradient, the optimiser steps. Each encoder runs in a process of
its own, so that its peak memory is its own: the process's peak resident set on the CPU, torch's peak allocated
memory on CUDA. Prints one row per encoder and its ratios to ST-GCN's row of the same run.

    python bench/bench_encoders.py                                   # CPU: quarter width, batch 64, T = 32
    python bench/bench_encoders.py --device cuda --size standard --batch 128 --frames 64
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import evaluate  # noqa: E402
import train  # noqa: E402
from distill import C2VLLoss  # noqa: E402

DIM = 64  # the demo CLIP's D; the prompt side of the step is the same for every encoder


def one_encoder(kind, size, batch, frames, steps, device, amp):
    """Samples/s of `steps` timed train_steps (after 2 warm-up steps), and the peak memory in MB."""
    torch.manual_seed(0)
    device = torch.device(device)
    modalities = ("vision", "language")
    model = train.C2VLModel(size, DIM, modalities, kind, frames).to(device)
    loss_fn = C2VLLoss(None, batch, DIM, modalities).to(device)
    config = train.fill_presets(train.TrainConfig(dataset="demo"))
    optimizers = train.make_optimizers(config, model, loss_fn)[:2]
    x = torch.randn(batch, 3, frames, 25, 2, device=device)
    P = {m: torch.nn.functional.normalize(torch.randn(batch, DIM, device=device), dim=1) for m in modalities}
    index = torch.arange(batch, device=device)
    train.train_step(model, loss_fn, optimizers, x, P, index, 1, 2, amp, config.grad_clip)  # fills the bank
    for _ in range(2):
        train.train_step(model, loss_fn, optimizers, x, P, index, 2, 2, amp, config.grad_clip)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for _ in range(steps):
        loss, _ = train.train_step(model, loss_fn, optimizers, x, P, index, 2, 2, amp, config.grad_clip)
    float(loss)  # waits for the device
    seconds = time.perf_counter() - started
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    parameters = sum(p.numel() for p in model.encoder.parameters())
    return {"encoder": kind, "samples_s": steps * batch / seconds, "peak_mb": peak, "parameters": parameters,
            "feature_dim": model.encoder.feature_dim}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--size", default="quarter", choices=("standard", "quarter"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per encoder")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--encoders", default="stgcn,gru,transformer")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # the child process of one encoder
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_encoder(args.one, args.size, args.batch, args.frames, args.steps, args.device, args.amp)))
        return
    rows = []
    for kind in args.encoders.split(","):
        argv = [sys.executable, __file__, "--one", kind] + [a for a in sys.argv[1:] if not a.startswith("--one")]
        result = subprocess.run(argv, capture_output=True, text=True, check=True)
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    base = next(r for r in rows if r["encoder"] == "stgcn") if any(r["encoder"] == "stgcn" for r in rows) else rows[0]
    print(f"device {args.device}, {torch.get_num_threads()} threads, size {args.size}, batch {args.batch}, "
          f"T {args.frames}, {args.steps} timed train.train_step calls per encoder (epoch 2), amp {args.amp}")
    print(f"{'encoder':12s} {'parameters':>11s} {'f dim':>6s} {'samples/s':>10s} {'vs ST-GCN':>9s} "
          f"{'peak MB':>8s} {'vs ST-GCN':>9s}")
    for r in rows:
        print(f"{r['encoder']:12s} {r['parameters']:11,d} {r['feature_dim']:6d} {r['samples_s']:10.1f} "
              f"{r['samples_s'] / base['samples_s']:8.2f}x {r['peak_mb']:8.0f} {r['peak_mb'] / base['peak_mb']:8.2f}x")


if __name__ == "__main__":
    main()
