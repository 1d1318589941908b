"""Forward+backward throughput of ST-GCN (samples/s): the graph convolution as written (G1, the reference code's
1x1 conv then einsum) against a graph-sum-first alternative on the widening blocks, in the same run, same weights.

`graph_first_conv` computes G1's value with the graph sum before the channel mixing (no 5-D einsum, no permuted
copy), which is cheaper when C_in < C_out. It was skeleton_gcn.py's forward on widening blocks until the reading
pass kept one form of G1 there; it measured x1.05-1.08 on an H100 (docs/speed.md). Prints one row per (size,
device, precision) with the ratio alternative / as written.

    python bench/bench_stgcn.py                   # CPU: batch 32, T = 64, M = 2, both sizes
    python bench/bench_stgcn.py --batch 128       # e.g. on a GPU (adds bf16 autocast rows there)
"""
import argparse
import os
import sys
import time
import types

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from skeleton_gcn import STGCN  # noqa: E402


def graph_first_conv(x, weight, bias, A):
    """G1's value, graph sum first (tested equal to SpatialGraphConv within 1e-5).

    The graph sum is linear, so it can run before the channel mixing:
      1. one matmul against all partitions at once:  x_A[n, c, t, w, k] = sum_v x[n, c, t, v] A_k[v, w]
      2. one conv with kernel and stride (1, K) over the interleaved (w, k) axis: sum_k W_k x_A[..., w, k].
    x (N, C_in, T, V), weight (K*C_out, C_in, 1, 1), bias (K*C_out,), A (K, V, V) -> (N, C_out, T, V).
    """
    N, C, T, V = x.shape
    K = A.shape[0]
    C_out = weight.shape[0] // K
    A_wk = A.permute(1, 2, 0).reshape(V, V * K)  # (V, W*K), k fastest
    x_A = (x.reshape(N * C * T, V) @ A_wk).view(N, C, T, V * K)  # (N, C_in, T, W*K)
    weight = weight.view(K, C_out, C).permute(1, 2, 0).unsqueeze(2)  # (C_out, C_in, 1, K): W'[o, c, 0, k]
    y = F.conv2d(x_A, weight, stride=(1, K))  # (N, C_out, T, W)
    # The reference adds the bias before the graph sum, so each b_k is weighted by the column sums of A_k.
    return y + (bias.view(K, C_out).t() @ A.sum(dim=1))[:, None, :]  # + (C_out, W)


def graph_first_forward(self, x, A):
    if x.shape[1] < self.out_channels:  # widening blocks only: elsewhere the two forms cost the same
        return graph_first_conv(x, self.conv.weight, self.conv.bias, A)
    return type(self).forward(self, x, A)


def as_graph_first(model):
    """The same model (shared weights) computing the widening blocks' graph convs graph-first."""
    for block in model.st_gcn_networks:
        block.gcn.forward = types.MethodType(graph_first_forward, block.gcn)
    return model


def throughput(model, x, steps, autocast_dtype=None):
    """Samples per second of forward + backward + zero_grad, after two warm-up steps."""
    device_type = x.device.type

    def step():
        with torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = model(x).float().square().mean()
        loss.backward()
        model.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    if device_type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device_type == "cuda":
        torch.cuda.synchronize()
    return steps * x.shape[0] / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per model; the best is kept")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.frames, 25, 2, device=device)
    precisions = [("fp32", None)] + ([("bf16", torch.bfloat16)] if device.type == "cuda" else [])
    print(f"device {device}, batch {args.batch}, T {args.frames}, M 2, threads {torch.get_num_threads()}")
    print(f"{'size':9s} {'precision':9s} {'as written':>12s} {'graph first':>12s} {'ratio':>7s}   (samples/s, fwd+bwd)")
    for size in ("standard", "quarter"):
        for name, dtype in precisions:
            reference = STGCN(size=size).to(device)
            ours = as_graph_first(STGCN(size=size).to(device))
            ours.load_state_dict(reference.state_dict())
            # Alternate the two models over several rounds and keep each one's best round, so that a passing
            # load on the machine does not favour whichever model ran first.
            speeds = {"reference": 0.0, "ours": 0.0}
            for _ in range(args.rounds):
                for label, model in (("reference", reference), ("ours", ours)):
                    speeds[label] = max(speeds[label], throughput(model, x, args.steps, dtype))
            print(f"{size:9s} {name:9s} {speeds['reference']:12.1f} {speeds['ours']:12.1f} "
                  f"{speeds['ours'] / speeds['reference']:6.2f}x")


if __name__ == "__main__":
    main()
