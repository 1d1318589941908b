"""Forward+backward throughput of ST-GCN (samples/s): this project's graph conv against the reference formulation.

The baseline is the same network with every block's graph convolution replaced by `graph_conv_reference`
(1x1 conv to K*C_out channels, then einsum('nkctv,kvw->nctw')), i.e. the field's reference code, measured in the
same run on the same weights. Prints one row per (size, device, precision) with the speed-up ratio.

    python bench/bench_stgcn.py                   # CPU: batch 32, T = 64, M = 2, both sizes
    python bench/bench_stgcn.py --batch 128       # e.g. on a GPU (adds bf16 autocast rows there)
"""
import argparse
import os
import sys
import time
import types

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from skeleton_gcn import STGCN, graph_conv_reference  # noqa: E402


def reference_forward(self, x, A):
    return graph_conv_reference(x, self.conv.weight, self.conv.bias, A)


def as_reference(model):
    """The same model (shared weights) computing every graph conv with the reference einsum."""
    for block in model.st_gcn_networks:
        block.gcn.forward = types.MethodType(reference_forward, block.gcn)
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
    print(f"{'size':9s} {'precision':9s} {'reference':>12s} {'ours':>12s} {'ratio':>7s}   (samples/s, fwd+bwd)")
    for size in ("standard", "quarter"):
        for name, dtype in precisions:
            ours = STGCN(size=size).to(device)
            reference = as_reference(STGCN(size=size).to(device))
            reference.load_state_dict(ours.state_dict())
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
