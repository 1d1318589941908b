"""Claim: under torch.distributed the C2VL loss is the loss of the global batch.

Two real gloo processes on CPU (127.0.0.1, a free port) each train on their half of every step, in float64; after
DDP-style gradient averaging their losses, gradients, logged diagnostics and teacher banks equal those of one
process that trains on the concatenated batch, and every rank's teacher bank holds the same rows (each rank writes
the global batch).
"""
import os
import socket
import time
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

from distill import C2VLLoss, DistillConfig
from utils.diagnostics import batch_diagnostics
from utils.distributed import shutdown_distributed

WORLD, NUM, IN, D, EPOCHS = 2, 24, 10, 8, 2
MODALITIES = ("vision", "language")
# Dataset indices of every step, one list per rank in rank order; epoch 2 has unequal per-rank batches.
SCHEDULE = {
    1: [[[0, 5, 9, 13, 21], [2, 7, 11, 20, 16]], [[1, 3, 6, 8, 17], [4, 10, 12, 23, 19]]],
    2: [[[13, 0, 5], [20, 2, 7, 11, 9, 16, 21]], [[8, 1, 6, 3, 23, 17], [12, 4, 10, 19]]],
}


def train(rank, world):
    """Run the SCHEDULE; rank 0 of world 1 trains on the concatenation of all ranks' indices."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(NUM, IN, generator=g, dtype=torch.float64)
    P = {m: F.normalize(torch.randn(NUM, D, generator=g, dtype=torch.float64), dim=1) for m in MODALITIES}
    torch.manual_seed(1)
    model = nn.ModuleDict({"encoder": nn.Linear(IN, 12), "vision": nn.Linear(12, D),
                           "language": nn.Linear(12, D)}).double()
    loss_fn = C2VLLoss(DistillConfig(beta=0.5, alpha_T=0.8), NUM, D)
    params = list(model.parameters()) + list(loss_fn.parameters())
    optimizer = torch.optim.SGD(params, lr=0.5)
    records = []
    for epoch in range(1, EPOCHS + 1):
        for step in SCHEDULE[epoch]:
            index = torch.tensor(sum(step, []) if world == 1 else step[rank])
            h = model["encoder"](X[index]).relu()
            loss, batch = loss_fn({m: model[m](h) for m in MODALITIES}, {m: P[m][index] for m in MODALITIES},
                                  index, epoch, EPOCHS)
            info = batch_diagnostics(loss, batch)
            optimizer.zero_grad()
            loss.backward()
            for p in params if world > 1 else []:  # what DistributedDataParallel does: average over ranks
                dist.all_reduce(p.grad)
                p.grad /= world
            records.append({"loss": loss.detach(), "global_batch": len(batch.index),
                            "grads": [p.grad.clone() for p in params],
                            "info": {k: float(v) for k, v in info.items()}})
            optimizer.step()
            loss_fn.bank.write(batch.index, batch.Z, epoch)  # as train.train_step: every rank, the global batch
    return records, loss_fn


def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD,
                            timeout=timedelta(seconds=60))
    try:
        records, loss_fn = train(rank, WORLD)
        torch.save({"records": records, "bank": loss_fn.bank.state_dict()}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        shutdown_distributed()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("gloo")
    context = mp.spawn(_worker, args=(free_port(), str(out)), nprocs=WORLD, join=False)
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the 2-process gloo run did not finish within 120 s")
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


def test_two_gloo_processes_match_one_process_on_concatenated_batch(ranks):
    reference, reference_loss_fn = train(0, 1)
    for result in ranks:
        assert len(result["records"]) == len(reference)
        for step, (got, expected) in enumerate(zip(result["records"], reference)):
            assert got["global_batch"] == expected["global_batch"] == 10
            torch.testing.assert_close(got["loss"], expected["loss"], atol=1e-5, rtol=0, msg=f"loss, step {step}")
            for k, (g, e) in enumerate(zip(got["grads"], expected["grads"])):
                torch.testing.assert_close(g, e, atol=1e-5, rtol=0, msg=f"gradient of parameter {k}, step {step}")
    for name, buffer in reference_loss_fn.bank.state_dict().items():
        torch.testing.assert_close(ranks[0]["bank"][name], buffer, atol=1e-3, rtol=0, msg=name)


def test_two_gloo_processes_log_the_diagnostics_of_one_process_on_the_global_batch(ranks):
    """Every number train.py logs per step (loss and L_m, t, teacher fraction, in-batch retrieval, target entropy,
    prompt cosine) is a global-batch number: each rank logs what one process logs, within 1e-6 relative."""
    reference, _ = train(0, 1)
    for result in ranks:
        for step, (got, expected) in enumerate(zip(result["records"], reference)):
            assert got["info"].keys() == expected["info"].keys()
            assert {"prompt_cosine_vision", "retrieval_language", "target_entropy_vision"} <= got["info"].keys()
            for key, value in expected["info"].items():
                assert got["info"][key] == pytest.approx(value, rel=1e-6, abs=1e-12), (key, step)


def test_every_rank_holds_the_same_teacher_bank(ranks):
    for name, buffer in ranks[0]["bank"].items():
        assert torch.equal(buffer, ranks[1]["bank"][name]), name

