"""Processes and devices: torchrun's process group, the global batch over processes, BatchNorm over it.

Not a paper concept, but it keeps the paper's semantics under torchrun: the soft targets and logits of M1-M12 are
computed over the *global* batch (`gather_global_batch`), and BatchNorm normalises with the global batch's
statistics (`nn.SyncBatchNorm` on GPU, `GlobalBatchNorm` on CPU), so K processes with batch B train like one
process with batch K * B.
"""
import gc
import os
import re

import torch
import torch.distributed as dist
import torch.nn as nn

DEVICES = "auto | cpu | cuda | cuda:N"


def resolve_device(name: str) -> torch.device:
    """"auto" -> cuda when available, else cpu; an unknown name or cuda without CUDA is a clear ValueError."""
    if name != "auto" and not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise ValueError(f"--device must be {DEVICES}, got {name!r}")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: this torch build or machine has no CUDA device (use --device cpu)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def setup_distributed(device_name):
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK: one process per device, nccl on GPU, gloo on CPU."""
    cuda = resolve_device(device_name).type == "cuda"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    if cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    return device, rank, world


def shutdown_distributed():
    """Destroy the process group, if any, after collecting garbage. With torch 2.13's gloo, 5-6 of 12 two-process
    runs of tests/test_distributed_loss.py aborted at interpreter exit (SIGABRT, "terminate called without an active
    exception") when garbage in reference cycles was left for the exit to free; with gc.collect() first, 0 of 12
    (which object holds the group's state was not found)."""
    if dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def barrier():
    if dist.is_initialized():
        dist.barrier()


def world_size():
    """Number of processes of the default torch.distributed group (1 without torch.distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _all_gather_rows(x, sizes):
    """all_gather of (sizes[rank], ...) tensors whose first dimension may differ between ranks -> list per rank."""
    padded = x.new_zeros((max(sizes),) + tuple(x.shape[1:]))
    padded[: x.shape[0]] = x
    out = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(out, padded)
    return [o[:n] for o, n in zip(out, sizes)]


def gather_global_batch(Z, P, index):
    """Concatenate every rank's batch in rank order: Z, P {m: (B_r, D)}, index (B_r,) -> global (N = sum B_r).

    The local rows of Z are the local tensors themselves, so they keep their gradient; the other ranks' rows are
    constants. DDP averages gradients over ranks while each rank back-propagates only through its own rows, so
    those rows' gradient is multiplied by the world size: after averaging, every parameter gets exactly the
    gradient of one process on the global batch (the logit scale sees the whole global batch on every rank, so
    its gradient is already the global one, and averaging identical values keeps it). Prompt features carry no
    gradient. Without torch.distributed (or with one process) the inputs are returned unchanged.
    """
    W = world_size()
    if W == 1:
        return Z, P, index
    rank, modalities = dist.get_rank(), list(Z)
    device = next(iter(Z.values())).device
    size = torch.tensor([index.shape[0]], device=device)
    sizes = [torch.zeros_like(size) for _ in range(W)]
    dist.all_gather(sizes, size)
    sizes = [int(s) for s in sizes]
    local = torch.cat([Z[m].detach() for m in modalities] + [P[m] for m in modalities], dim=1)  # (B, 2 |m| D)
    rows = _all_gather_rows(local, sizes)  # [(B_r, 2 |m| D)] per rank
    index = torch.cat(_all_gather_rows(index.to(device).long(), sizes))  # (N,)
    D = Z[modalities[0]].shape[1]
    Z_global, P_global = {}, {}
    for k, m in enumerate(modalities):
        parts = [r[:, k * D : (k + 1) * D] for r in rows]
        parts[rank] = _ScaleGradient.apply(Z[m], float(W))  # local rows keep their gradient
        Z_global[m] = torch.cat(parts)  # (N, D)
        j = len(modalities) + k
        P_global[m] = torch.cat([r[:, j * D : (j + 1) * D] for r in rows])  # (N, D)
    return Z_global, P_global, index


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the gradient by `factor`."""

    @staticmethod
    def forward(ctx, x, factor):
        ctx.factor = factor
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.factor, None


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose batch statistics are summed over all processes (differentiable all_reduce), so K processes
    with batch B train exactly like one process with batch K*B. Same parameters and buffers as nn.BatchNorm*d.

    Its collectives run in a process group of their own: in the backward pass they would otherwise interleave
    with DDP's gradient buckets, which are issued in an order that differs between processes.
    """

    group = None  # set by convert_global_batchnorm

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"GlobalBatchNorm expects (N, C, ...) input, got {tuple(x.shape)}")

    def forward(self, x):
        if not (self.training and dist.is_initialized()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce  # differentiable: its backward sums gradients
        dims = [0] + list(range(2, x.dim()))
        C, shape = x.shape[1], [1, x.shape[1]] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() / C], dtype=x.dtype, device=x.device)
        total = all_reduce(torch.cat([x.sum(dims), count]), group=self.group)  # (C + 1,) sums over processes
        n = total[C]
        mean = total[:C] / n  # (C,)
        # Two passes (mean first, then squared deviations) like BatchNorm itself, not E[x^2] - E[x]^2.
        var = all_reduce(((x - mean.view(shape)) ** 2).sum(dims), group=self.group) / n  # (C,) biased, like BN
        with torch.no_grad():
            self.num_batches_tracked += 1
            momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
            self.running_var.mul_(1 - momentum).add_(momentum * var.detach() * n / (n - 1))
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def convert_global_batchnorm(module, device):
    """Replace every BatchNorm1d/2d by nn.SyncBatchNorm (GPU) or GlobalBatchNorm (CPU), keeping the weights."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if GlobalBatchNorm.group is None:
        GlobalBatchNorm.group = dist.new_group(backend="gloo")
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            replacement = GlobalBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                          child.track_running_stats)
            replacement.load_state_dict(child.state_dict())
            setattr(module, name, replacement)
        else:
            convert_global_batchnorm(child, device)
    return module


def parallel_model(model, device, world, compile=False):
    """The model as a training step calls it: under torch.compile (`compile`), in DistributedDataParallel when
    there are several processes (its gradients averaged over them)."""
    net = torch.compile(model) if compile else model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    return net
