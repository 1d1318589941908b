"""Cost of the C2VL loss and its soft targets (M1-M12) relative to one ST-GCN training step.

For each global batch N (default 128, 512, 2048) with CLIP dimension D = 768 and both prompt modalities, times one
C2VLLoss forward + backward in epoch 2 (teacher bank filled, so every target path runs: M2-M4 self-similarities,
the four M9 cycles of N x N products, the bank read and write) and one standard ST-GCN forward + backward on
(N, 3, T = 50, 25, M = 2). Prints the ratio loss / ST-GCN step.

The ST-GCN step at large N does not fit the budget (CPU: many minutes at N = 2048; GPU: an fp32 step at N = 2048
needs more than 80 GB), so it is measured at a smaller batch (default 8 on CPU, 512 on GPU) and scaled linearly to
N; the table says where. --stgcn_batch 0 measures it at N itself.

    python bench/bench_loss.py                      # CPU, under a minute on 2 cores
    python bench/bench_loss.py --device cuda        # GPU
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from distill import MODALITIES, C2VLLoss, DistillConfig  # noqa: E402
from skeleton_gcn import STGCN  # noqa: E402


def best_time(step, repeats, device):
    """Best wall time (s) of `repeats` calls of step() after one warm-up call."""
    step()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def loss_step_time(N, dim, repeats, device):
    """Seconds of one C2VLLoss forward + backward (targets included) over a batch of N in epoch 2."""
    torch.manual_seed(0)
    loss_fn = C2VLLoss(DistillConfig(), num_samples=N, dim=dim).to(device)
    index = torch.randperm(N, device=device)  # (N,)
    P = {m: torch.randn(N, dim, device=device) for m in MODALITIES}  # (N, D)
    Z = {m: torch.randn(N, dim, device=device, requires_grad=True) for m in MODALITIES}  # (N, D)
    _, batch = loss_fn(Z, P, index, 1, 10)
    loss_fn.bank.write(batch.index, batch.Z, 1)  # epoch 1 fills the teacher bank

    def step():
        loss, _ = loss_fn(Z, P, index, 2, 10)
        loss.backward()

    return best_time(step, repeats, device)


def stgcn_step_time(batch, frames, repeats, device):
    """Seconds of one ST-GCN (standard, 256-d feature) forward + backward on (batch, 3, frames, 25, 2)."""
    torch.manual_seed(0)
    model = STGCN().to(device)
    x = torch.randn(batch, 3, frames, 25, 2, device=device)  # (N, C, T, V, M)

    def step():
        model(x).square().mean().backward()
        model.zero_grad(set_to_none=True)

    return best_time(step, repeats, device)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 2048], help="global batch sizes N")
    parser.add_argument("--dim", type=int, default=768, help="CLIP embedding size D (768 for ViT-L/14)")
    parser.add_argument("--frames", type=int, default=50, help="T of the ST-GCN input")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--stgcn_batch", type=int, default=None,
                        help="largest batch at which the ST-GCN step is measured, then scaled linearly to N; "
                             "0: at N itself (default: 8 on CPU, 512 on GPU)")
    parser.add_argument("--repeats", type=int, default=2, help="timed repeats, best kept (after one warm-up)")
    args = parser.parse_args()
    device = torch.device(args.device)
    stgcn_batch = args.stgcn_batch if args.stgcn_batch is not None else (8 if device.type == "cpu" else 512)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device {name}; D = {args.dim}; ST-GCN standard, T = {args.frames}, M = 2; fp32; best of {args.repeats}")

    measured = {}  # ST-GCN batch -> seconds
    rows = []
    for N in args.sizes:
        loss_s = loss_step_time(N, args.dim, args.repeats, device)
        b = N if stgcn_batch == 0 else min(stgcn_batch, N)
        if b not in measured:
            measured[b] = stgcn_step_time(b, args.frames, args.repeats, device)
        stgcn_s = measured[b] * N / b
        rows.append((N, loss_s, stgcn_s, b))
        print(f"  N = {N}: loss+targets {loss_s * 1e3:.1f} ms, ST-GCN {stgcn_s * 1e3:.0f} ms", flush=True)

    print()
    print(f"{'N':>6s} {'loss+targets (ms)':>18s} {'ST-GCN fwd+bwd (ms)':>20s} {'ratio':>8s}   ST-GCN measured at")
    for N, loss_s, stgcn_s, b in rows:
        how = f"batch {b}" if b == N else f"batch {b}, scaled x{N / b:g} (linear)"
        print(f"{N:6d} {loss_s * 1e3:18.1f} {stgcn_s * 1e3:20.0f} {loss_s / stgcn_s:7.2%}   {how}")


if __name__ == "__main__":
    main()
