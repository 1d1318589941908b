"""Claims of distill.py (docs/method.md M5, M6, M10-M12, the logit scale and C2VLLoss as a whole).

Expected values are recomputed independently: float64 numpy with explicit loops, or CLIP's InfoNCE written with
F.cross_entropy; never by calling the function under test.
"""
import argparse
import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from distill import (
    C2VLLoss,
    DistillConfig,
    ProjectionHead,
    TeacherBank,
    alpha_schedule,
    c2vl_loss,
    modality_loss,
    progressive_target,
)
from utils.config import add_arguments, from_args
from utils.diagnostics import batch_diagnostics
from utils.plots import plot_alpha_schedule, plot_soft_targets

B, D, NUM = 6, 16, 20
BOTH = ("vision", "language")


# ---------------------------------------------------------------- independent float64 reference of M1-M12

def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def normalize(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def H(Y, A):
    """-(1/N) sum_i sum_j Y_ij log softmax(A)_ij with explicit loops."""
    n = Y.shape[0]
    total = 0.0
    for i in range(n):
        log_norm = math.log(sum(math.exp(A[i, k] - A[i].max()) for k in range(n))) + A[i].max()
        total -= sum(Y[i, j] * (A[i, j] - log_norm) for j in range(n))
    return total / n


def reference_loss(Z, P, Zt, t, config, alpha, modalities):
    """M1-M12 from docs/method.md in numpy, written per modality m with its *other* modality o (the code lists the four
    cycles explicitly). Z, P, Zt: {m: (N, D)} float64 (Zt None in epoch 1). Returns {m: L_m} and L."""
    n = next(iter(Z.values())).shape[0]
    I = np.eye(n)
    tau, beta = config.tau_t, config.beta
    inter = "self" if config.inter == "cycle" and len(modalities) == 1 else config.inter
    losses = {}
    for m in modalities:
        M = normalize(P[m])
        A_m = softmax(M @ M.T / tau)
        A_s = A_m if Zt is None else softmax(Zt[m] @ Zt[m].T / tau)
        Y_intra = (1 - beta) * I + beta * 0.5 * (A_m + A_s)
        if inter == "off":
            Y_sm = Y_ms = Y_intra
        elif Zt is None:
            Y_sm = Y_ms = I
        elif inter == "self":
            Y_sm, Y_ms = softmax(t * Zt[m] @ M.T), softmax(t * M @ Zt[m].T)
        else:
            o = "language" if m == "vision" else "vision"
            O = normalize(P[o])
            Y_sm = softmax(t * Zt[o] @ O.T) @ softmax(O @ M.T / tau)  # skeleton -> o (teacher) -> m (CLIP)
            Y_ms = softmax(M @ O.T / tau) @ softmax(t * O @ Zt[o].T)  # m -> o (CLIP) -> skeleton (teacher)
        T_sm = (1 - alpha) * Y_intra + alpha * Y_sm
        T_ms = (1 - alpha) * Y_intra + alpha * Y_ms
        S_sm = t * normalize(Z[m]) @ M.T
        losses[m] = 0.5 * (H(T_sm, S_sm) + H(T_ms, S_sm.T))
    lam = {"vision": config.lambda_v, "language": config.lambda_l}
    return losses, sum(lam[m] * losses[m] for m in modalities)


def batch(seed, n=B, modalities=BOTH, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    Z = {m: torch.randn(n, D, generator=g).requires_grad_(requires_grad) for m in modalities}
    P = {m: F.normalize(torch.randn(n, D, generator=g), dim=1) for m in modalities}
    return Z, P


def np_dict(d):
    return {m: x.detach().double().numpy() for m, x in d.items()}


def step(loss_fn, Z, P, index, epoch, epochs):
    """The loss as train.train_step uses it: L, then the teacher bank's write (M5). -> (L, diagnostics)."""
    loss, seen = loss_fn(Z, P, index, epoch, epochs)
    loss_fn.bank.write(seen.index, seen.Z, epoch)
    return loss, batch_diagnostics(loss, seen)


def bank_rows(loss_fn, index):
    return {m: loss_fn.bank.embeddings(m)[index].double().numpy() for m in loss_fn.modalities}


# ---------------------------------------------------------------- M6, M10, M11, M12 as pure functions

def test_alpha_is_alpha_T_over_E_at_first_epoch_and_alpha_T_at_last():
    assert alpha_schedule(1, 40, 0.5) == pytest.approx(0.5 / 40)
    assert alpha_schedule(40, 40, 0.5) == pytest.approx(0.5)
    assert alpha_schedule(10, 40, 0.8) == pytest.approx(0.8 * 10 / 40)
    assert alpha_schedule(1, 40, 0.5, "constant") == alpha_schedule(40, 40, 0.5, "constant") == 0.5
    for bad in (0, 41):
        with pytest.raises(ValueError, match="1-based"):
            alpha_schedule(bad, 40, 0.5)


def test_progressive_target_mixes_intra_and_inter_M10():
    Y_intra, Y_inter = np.random.default_rng(0).dirichlet(np.ones(B), size=(2, B))
    got = progressive_target(torch.tensor(Y_intra), torch.tensor(Y_inter), 0.25).numpy()
    for i in range(B):
        for j in range(B):
            assert got[i, j] == pytest.approx(0.75 * Y_intra[i, j] + 0.25 * Y_inter[i, j])


def test_modality_loss_averages_both_directions_M11():
    rng = np.random.default_rng(1)
    S = rng.normal(size=(B, B)) * 5
    T_sm, T_ms = rng.dirichlet(np.ones(B), size=(2, B))
    got = modality_loss(torch.tensor(S), torch.tensor(S.T), torch.tensor(T_sm), torch.tensor(T_ms))
    assert float(got) == pytest.approx(0.5 * (H(T_sm, S) + H(T_ms, S.T)), abs=1e-9)


def test_total_loss_weights_the_modalities_M12():
    rng = np.random.default_rng(2)
    S = {m: rng.normal(size=(B, B)) for m in BOTH}
    T = {m: rng.dirichlet(np.ones(B), size=(2, B)) for m in BOTH}
    logits = {m: (torch.tensor(S[m]), torch.tensor(S[m].T)) for m in BOTH}
    targets = {m: (torch.tensor(T[m][0]), torch.tensor(T[m][1])) for m in BOTH}
    total, per = c2vl_loss(logits, targets, {"vision": 0.3, "language": 2.0})
    L = {m: 0.5 * (H(T[m][0], S[m]) + H(T[m][1], S[m].T)) for m in BOTH}
    assert float(per["vision"]) == pytest.approx(L["vision"], abs=1e-9)
    assert float(total) == pytest.approx(0.3 * L["vision"] + 2.0 * L["language"], abs=1e-9)


# ---------------------------------------------------------------- C2VLLoss end to end

def test_beta_zero_alpha_zero_is_infonce():
    config = DistillConfig(beta=0.0, alpha_T=0.0, lambda_v=1.0, lambda_l=1.0)
    loss_fn = C2VLLoss(config, NUM, D)
    index = torch.arange(B)
    for epoch in (1, 2, 3):  # with and without a teacher in the bank
        Z, P = batch(epoch)
        loss, _ = step(loss_fn, Z, P, index, epoch, 3)
        t = math.exp(math.log(1 / 0.07))
        labels = torch.arange(B)
        infonce = 0.0
        for m in BOTH:
            S = t * F.normalize(Z[m], dim=1) @ P[m].T
            infonce += 0.5 * (F.cross_entropy(S, labels) + F.cross_entropy(S.T, labels))
        torch.testing.assert_close(loss, infonce, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("inter", ["cycle", "self", "off"])
def test_loss_matches_equations_M1_to_M12(inter):
    config = DistillConfig(beta=0.4, alpha_T=0.6, inter=inter, tau_t=0.1, lambda_v=0.7, lambda_l=1.3)
    loss_fn = C2VLLoss(config, NUM, D)
    index = torch.tensor([3, 7, 0, 19, 11, 5])
    t = 1 / 0.07
    Z1, P1 = batch(10)
    loss1, info1 = step(loss_fn, Z1, P1, index, 1, 4)  # epoch 1: no teacher
    per1, total1 = reference_loss(np_dict(Z1), np_dict(P1), None, t, config, 0.6 * 1 / 4, BOTH)
    assert loss1.item() == pytest.approx(total1, abs=1e-5)
    assert info1["loss_vision"] == pytest.approx(per1["vision"], abs=1e-5)
    Zt = bank_rows(loss_fn, index)  # epoch 1 wrote the teacher rows (float16)
    Z2, P2 = batch(11)
    loss2, info2 = step(loss_fn, Z2, P2, index, 2, 4)
    _, total2 = reference_loss(np_dict(Z2), np_dict(P2), Zt, t, config, 0.6 * 2 / 4, BOTH)
    assert loss2.item() == pytest.approx(total2, abs=1e-5)
    assert info2["teacher_fraction"] == 1.0 and info2["alpha_e"] == pytest.approx(0.3)


def test_teacher_bank_stores_previous_epoch_embeddings_M5():
    loss_fn = C2VLLoss(DistillConfig(), NUM, D)
    index = torch.tensor([4, 9, 2, 17, 8, 1])
    Z1, P1 = batch(20)
    step(loss_fn, Z1, P1, index, 1, 3)
    for m in BOTH:  # float16 copies of the normalised epoch-1 embeddings, read back by dataset index
        expected = normalize(Z1[m].detach().double().numpy())
        np.testing.assert_allclose(bank_rows(loss_fn, index)[m], expected, atol=1e-3)
        assert loss_fn.bank.embeddings(m).dtype == torch.float16
    written = loss_fn.bank.written_in > 0
    assert written.sum() == B and bool(written[index].all())
    # epoch 2 reads the epoch-1 rows *before* overwriting them with its own embeddings
    Z2, P2 = batch(21)
    seen = loss_fn.inspect_batch(Z2, P2, index, 2, 3)
    _, total = reference_loss(np_dict(Z2), np_dict(P2), bank_rows(loss_fn, index), 1 / 0.07,
                              DistillConfig(), 0.5 * 2 / 3, BOTH)
    loss2, _ = step(loss_fn, Z2, P2, index, 2, 3)
    assert loss2.item() == pytest.approx(total, abs=1e-5)
    assert bool(seen.has_teacher.all())
    np.testing.assert_allclose(bank_rows(loss_fn, index)["vision"],
                               normalize(Z2["vision"].detach().double().numpy()), atol=1e-3)


def test_epoch_one_uses_documented_fallbacks():
    config = DistillConfig(beta=0.5, alpha_T=0.5)
    loss_fn = C2VLLoss(config, NUM, D)
    index = torch.arange(B)
    Z, P = batch(30)
    step(loss_fn, Z, P, index, 1, 5)  # the bank now holds rows, but epoch 1 still has no teacher
    seen = loss_fn.inspect_batch(Z, P, index, 1, 5)
    assert not bool(seen.has_teacher.any())
    for m in BOTH:
        M = P[m].double().numpy()
        expected_intra = 0.5 * np.eye(B) + 0.5 * softmax(M @ M.T / config.tau_t)  # A_s := A_m
        np.testing.assert_allclose(seen.Y_intra[m].numpy(), expected_intra, atol=1e-5)
        for Y in seen.Y_inter[m]:
            assert torch.equal(Y, torch.eye(B))  # Y_inter := I


def test_never_visited_rows_fall_back_as_in_epoch_one():
    loss_fn = C2VLLoss(DistillConfig(), NUM, D)
    Z, P = batch(31)
    step(loss_fn, Z, P, torch.arange(B), 1, 3)  # visits samples 0..5 only
    index = torch.tensor([0, 1, 2, 12, 13, 14])  # the last three were never visited
    seen = loss_fn.inspect_batch(*batch(32), index, 2, 3)
    assert seen.has_teacher.tolist() == [True] * 3 + [False] * 3
    for m in BOTH:
        for Y in seen.Y_inter[m]:
            assert torch.equal(Y[3:], torch.eye(B)[3:])
    _, info = step(loss_fn, *batch(32), index, 2, 3)
    assert info["teacher_fraction"] == 0.5


def test_rows_the_previous_epoch_did_not_visit_fall_back_as_in_epoch_one():
    """(M5) the teacher of epoch e is epoch e - 1's embedding: a sample that epoch e - 1 skipped (the sampler drops
    the last partial batch) but an earlier epoch visited has no teacher in epoch e, not its older embedding."""
    loss_fn = C2VLLoss(DistillConfig(), NUM, D)
    step(loss_fn, *batch(33), torch.arange(0, 6), 1, 3)  # epoch 1 visits 0..5
    step(loss_fn, *batch(34), torch.arange(6, 12), 2, 3)  # epoch 2 visits 6..11 only
    index = torch.tensor([0, 1, 2, 6, 7, 8])  # 0..2 last written in epoch 1, 6..8 in epoch 2
    seen = loss_fn.inspect_batch(*batch(35), index, 3, 3)
    assert seen.has_teacher.tolist() == [False] * 3 + [True] * 3
    for m in BOTH:
        for Y in seen.Y_inter[m]:
            assert torch.equal(Y[:3], torch.eye(B)[:3])  # Y_inter := I
        prompts = batch(35)[1][m].double().numpy()
        A_m = softmax(prompts @ prompts.T / DistillConfig().tau_t)
        np.testing.assert_allclose(seen.Y_intra[m][:3].numpy(), 0.5 * np.eye(B)[:3] + 0.5 * A_m[:3], atol=1e-5)
    _, info = step(loss_fn, *batch(35), index, 3, 3)
    assert info["teacher_fraction"] == 0.5


def test_no_gradient_reaches_teacher_bank_or_prompts():
    loss_fn = C2VLLoss(DistillConfig(), NUM, D)
    index = torch.arange(B)
    step(loss_fn, *batch(40), index, 1, 3)
    Z, P = batch(41, requires_grad=True)
    P = {m: p.clone().requires_grad_(True) for m, p in P.items()}
    loss, _ = step(loss_fn, Z, P, index, 2, 3)
    loss.backward()
    assert all(P[m].grad is None for m in BOTH)
    assert all(Z[m].grad is not None for m in BOTH)
    assert not any(buffer.requires_grad for buffer in loss_fn.bank.buffers())
    seen = loss_fn.inspect_batch(Z, P, index, 2, 3)
    for m in BOTH:
        assert not seen.Y_intra[m].requires_grad and not any(T.requires_grad for T in seen.T[m])


def test_targets_carry_no_gradient():
    """Gradients equal those of the soft cross-entropy with the targets as constants (t^ is detached in M8)."""
    loss_fn = C2VLLoss(DistillConfig(alpha_T=1.0, alpha_schedule="constant"), NUM, D)
    index = torch.arange(B)
    step(loss_fn, *batch(42), index, 1, 3)
    Z, P = batch(43, requires_grad=True)
    seen = loss_fn.inspect_batch(Z, P, index, 2, 3)
    T = {m: [torch.tensor(Y.numpy(), dtype=torch.float64) for Y in seen.T[m]] for m in BOTH}
    loss, _ = step(loss_fn, Z, P, index, 2, 3)
    loss.backward()
    s = torch.tensor(math.log(1 / 0.07), dtype=torch.float64, requires_grad=True)
    Zd = {m: Z[m].detach().double().requires_grad_(True) for m in BOTH}
    constant_target_loss = 0.0
    for m in BOTH:
        S = s.exp() * F.normalize(Zd[m], dim=1) @ P[m].double().T
        for Y, A in ((T[m][0], S), (T[m][1], S.T)):
            constant_target_loss = constant_target_loss - 0.5 * (Y * A.log_softmax(dim=1)).sum(dim=1).mean()
    constant_target_loss.backward()
    assert float(loss_fn.log_logit_scale.grad) == pytest.approx(float(s.grad), abs=1e-5)
    for m in BOTH:
        np.testing.assert_allclose(Z[m].grad.numpy(), Zd[m].grad.numpy(), atol=1e-6)


def test_teacher_bank_round_trips_through_checkpoint(tmp_path):
    loss_fn = C2VLLoss(DistillConfig(), NUM, D)
    step(loss_fn, *batch(50), torch.tensor([1, 3, 5, 7, 9, 11]), 1, 3)
    with torch.no_grad():
        loss_fn.log_logit_scale.fill_(3.0)
    path = tmp_path / "loss.pt"
    torch.save({"loss": loss_fn.state_dict()}, path)
    restored = C2VLLoss(DistillConfig(), NUM, D)
    restored.load_state_dict(torch.load(path)["loss"])
    for name, buffer in loss_fn.bank.state_dict().items():
        assert torch.equal(buffer, restored.bank.state_dict()[name]), name
    index = torch.tensor([1, 3, 5, 0, 2, 4])
    Z, P = batch(51)
    assert step(loss_fn, Z, P, index, 2, 3)[0].item() == step(restored, Z, P, index, 2, 3)[0].item()
    with pytest.raises(RuntimeError, match="bank.Zt_vision"):  # a bank of another dataset size is refused
        C2VLLoss(DistillConfig(), NUM + 1, D).load_state_dict(loss_fn.state_dict())


def test_teacher_bank_read_write_by_dataset_index():
    bank = TeacherBank(NUM, D, "both")
    Z = {m: F.normalize(torch.randn(3, D), dim=1) for m in BOTH}
    bank.write(torch.tensor([5, 0, 19]), Z, 1)
    rows, has_teacher = bank.read(torch.tensor([19, 4, 5]), 2)
    assert has_teacher.tolist() == [True, False, True]
    assert not bool(bank.read(torch.tensor([19, 4, 5]), 1)[1].any())  # epoch 1: no teacher
    assert not bool(bank.read(torch.tensor([19, 4, 5]), 3)[1].any())  # epoch 3: epoch 2 did not write them
    torch.testing.assert_close(rows["language"][0], Z["language"][2], atol=1e-3, rtol=0)
    assert torch.equal(rows["vision"][1], torch.zeros(D))
    buffer = io.BytesIO()
    torch.save(bank.state_dict(), buffer)
    buffer.seek(0)
    copy = TeacherBank(NUM, D, "both")
    copy.load_state_dict(torch.load(buffer))
    assert torch.equal(copy.written_in, bank.written_in) and torch.equal(copy.Zt_language, bank.Zt_language)
    with pytest.raises(IndexError, match=r"dataset indices \[20\]"):
        bank.read(torch.tensor([1, 20]), 2)


def test_a_bank_saved_with_its_former_buffers_loads_with_the_epoch_of_each_write():
    """A bank saved as `Z_m` and `stamp` (the write step of each row), `step` loads as `Zt_m` and `written_in` (the
    epoch of each row's write): 3 epochs of 3 steps of 4 rows over 14 samples, 2 of which epoch 3 skipped, and 1 row
    never written."""
    stamp = torch.tensor([7, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9, 5, 0])  # epoch 3: steps 7-9; row 12 from epoch 2
    Z = {f"bank.Z_{m}": torch.randn(14, D).half() for m in BOTH}
    old = {"log_logit_scale": torch.tensor(2.0), **Z, "bank.stamp": stamp, "bank.step": torch.tensor(9)}
    loss_fn = C2VLLoss(DistillConfig(), 14, D)
    loss_fn.load_state_dict(old)
    assert loss_fn.bank.written_in.tolist() == [3] * 12 + [2, 0]
    assert torch.equal(loss_fn.bank.Zt_vision, Z["bank.Z_vision"])
    assert torch.equal(loss_fn.bank.Zt_language, Z["bank.Z_language"])
    assert loss_fn.bank.read(torch.tensor([0, 11, 12, 13]), 4)[1].tolist() == [True, True, False, False]


def test_bad_dataset_indices_are_named_with_their_batch_positions():
    bank = TeacherBank(NUM, D, "both")
    bank.check_index(torch.tensor([0, NUM - 1]))  # in range: silent
    with pytest.raises(IndexError, match=r"20 rows .* dataset indices \[-1, 25\] at batch positions \[1, 3\]"):
        bank.check_index(torch.tensor([3, -1, 7, 25]))
    with pytest.raises(IndexError, match=r"dataset indices \[20\] at batch positions \[1\]"):
        bank.write(torch.tensor([0, NUM]), {m: torch.zeros(2, D) for m in BOTH}, 1)  # a CPU index: checked, free


def test_per_step_diagnostics_stay_tensors_on_the_device():
    """The diagnostics are 0-d float64 tensors on Z's device: reading them would wait for a GPU every step."""
    Z, P = batch(53)
    loss, seen = C2VLLoss(DistillConfig(), NUM, D)(Z, P, torch.arange(B), 1, 3)
    info = batch_diagnostics(loss, seen)
    diagnostics = {"loss", "logit_scale", "teacher_fraction"} | {
        f"{k}_{m}" for k in ("loss", "retrieval", "target_entropy", "prompt_cosine") for m in BOTH}
    assert set(info) == diagnostics | {"alpha_e"}
    for k in diagnostics:
        assert torch.is_tensor(info[k]) and info[k].shape == () and info[k].dtype == torch.float64, k
    assert type(info["alpha_e"]) is float and seen.index.shape == (B,)  # the global batch, N = B
    assert float(info["loss"]) == loss.item()


def test_the_loss_reads_the_bank_and_never_writes_it():
    """Writing the teacher is the training step's, after its optimiser step (train.train_step)."""
    loss_fn = C2VLLoss(DistillConfig(), NUM, D)
    loss_fn(*batch(52), torch.arange(B), 1, 3)
    assert not bool(loss_fn.bank.written_in.any())


def test_loss_is_finite_for_batch_of_one_and_logit_scale_100():
    loss_fn = C2VLLoss(DistillConfig(), NUM, D)
    with torch.no_grad():
        loss_fn.log_logit_scale.fill_(math.log(100.0) + 2.0)  # beyond the clamp
    assert loss_fn.logit_scale.item() == pytest.approx(100.0)
    for n, index in ((1, torch.tensor([3])), (B, torch.arange(B))):
        for epoch in (1, 2):
            Z, P = batch(60 + epoch, n=n, requires_grad=True)
            P["vision"] = F.normalize(-Z["vision"].detach(), dim=1)  # the worst case: anti-aligned pairs
            loss, info = step(loss_fn, Z, P, index, epoch, 2)
            loss.backward()
            assert math.isfinite(loss.item()) and math.isfinite(info["loss_vision"])
            assert all(torch.isfinite(Z[m].grad).all() for m in BOTH)


def test_logit_scale_starts_at_clip_value_and_is_clamped_at_100():
    loss_fn = C2VLLoss(DistillConfig(), NUM, D)
    assert loss_fn.log_logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert loss_fn.logit_scale.item() == pytest.approx(1 / 0.07)
    with torch.no_grad():
        loss_fn.log_logit_scale.fill_(10.0)
    assert loss_fn.logit_scale.item() == pytest.approx(100.0)
    loss, _ = step(loss_fn, *batch(64, requires_grad=True), torch.arange(B), 1, 2)
    loss.backward()
    assert float(loss_fn.log_logit_scale.grad) == 0.0  # clamped: no push further up


def test_in_batch_retrieval_counts_skeletons_whose_nearest_prompt_is_their_own():
    _, P = batch(70)
    shifted = {m: P[m].roll(1, dims=0) for m in BOTH}  # sample i gets the prompt of sample i - 1
    shifted["language"][:2] = P["language"][:2]  # ... except the first two language rows
    _, info = step(C2VLLoss(DistillConfig(), NUM, D), shifted, P, torch.arange(B), 1, 2)
    assert info["retrieval_vision"] == 0.0 and info["retrieval_language"] == pytest.approx(2 / B)
    _, info = step(C2VLLoss(DistillConfig(), NUM, D), P, P, torch.arange(B), 1, 2)
    assert info["retrieval_vision"] == info["retrieval_language"] == 1.0


def test_logged_target_entropy_and_prompt_cosine():
    Z, P = batch(71)
    _, info = step(C2VLLoss(DistillConfig(beta=0.0, alpha_T=0.0), NUM, D), Z, P, torch.arange(B), 1, 2)
    assert info["target_entropy_vision"] == pytest.approx(0.0, abs=1e-6)  # targets I: no entropy
    same = {m: P[m][:1].expand(B, D) for m in BOTH}
    _, info = step(C2VLLoss(DistillConfig(beta=1.0, alpha_T=0.0), NUM, D), Z, same, torch.arange(B), 1, 2)
    assert info["prompt_cosine_vision"] == pytest.approx(1.0, abs=1e-5)
    assert info["target_entropy_language"] == pytest.approx(math.log(B), abs=1e-5)  # identical prompts: uniform
    orthogonal = {m: torch.eye(B, D) for m in BOTH}
    _, info = step(C2VLLoss(DistillConfig(), NUM, D), Z, orthogonal, torch.arange(B), 1, 2)
    assert info["prompt_cosine_language"] == pytest.approx(0.0, abs=1e-6)


def test_logit_scale_has_a_floor_of_1_so_training_cannot_die_at_t_0():
    loss_fn = C2VLLoss(DistillConfig(), NUM, D)
    with torch.no_grad():
        loss_fn.log_logit_scale.fill_(-8.0)  # t = 0.0003: where SGD at lr 0.1 drove it (0.0004 by epoch 3)
    assert loss_fn.logit_scale.item() == pytest.approx(1.0)
    loss_fn.clamp_logit_scale_()
    assert loss_fn.log_logit_scale.item() == 0.0  # the parameter itself back in range: its gradient lives again
    with torch.no_grad():
        loss_fn.log_logit_scale.fill_(7.0)
    loss_fn.clamp_logit_scale_()
    assert loss_fn.log_logit_scale.item() == pytest.approx(math.log(100.0))


@pytest.mark.parametrize("modality", ["language", "vision"])
def test_single_modality_run_works(modality):
    config = DistillConfig(alpha_T=0.5)
    loss_fn = C2VLLoss(config, NUM, D, modalities=modality)
    index = torch.tensor([2, 4, 6, 8, 10, 12])
    Z1, P1 = batch(70, modalities=(modality,), requires_grad=True)
    loss1, info1 = step(loss_fn, Z1, P1, index, 1, 2)
    loss1.backward()
    assert set(info1) >= {f"loss_{modality}"} and not any(f"loss_{m}" in info1 for m in BOTH if m != modality)
    Zt = bank_rows(loss_fn, index)
    Z2, P2 = batch(71, modalities=(modality,))
    loss2, _ = step(loss_fn, Z2, P2, index, 2, 2)
    assert loss_fn.inspect_batch(Z2, P2, index, 2, 2).inter == "self"  # no other prompt to cycle through
    _, total = reference_loss(np_dict(Z2), np_dict(P2), Zt, 1 / 0.07, config, 0.5, (modality,))
    assert loss2.item() == pytest.approx(total, abs=1e-5)


def test_inputs_are_checked_with_clear_messages():
    loss_fn = C2VLLoss(DistillConfig(), NUM, D)
    Z, P = batch(80)
    with pytest.raises(KeyError, match="expected"):
        loss_fn({"vision": Z["vision"]}, P, torch.arange(B), 1, 2)
    with pytest.raises(ValueError, match=r"P\['language'\] has shape"):
        loss_fn(Z, {**P, "language": P["language"][:, :4]}, torch.arange(B), 1, 2)
    with pytest.raises(ValueError, match="epoch must be 1-based"):
        loss_fn(Z, P, torch.arange(B), 0, 2)
    with pytest.raises(ValueError, match="beta"):
        DistillConfig(beta=1.5)
    with pytest.raises(ValueError, match="inter"):
        DistillConfig(inter="cyclic")
    with pytest.raises(ValueError, match="modalities"):
        C2VLLoss(DistillConfig(), NUM, D, modalities="audio")


def test_every_option_has_a_command_line_flag():
    parser = add_arguments(argparse.ArgumentParser(), DistillConfig)
    args = parser.parse_args(
        "--beta 0.2 --alpha_T 0.8 --alpha_schedule constant --inter self --tau_t 0.1 --lambda_v 0 --lambda_l 2".split()
    )
    assert from_args(DistillConfig, args) == DistillConfig(0.2, 0.8, "constant", "self", 0.1, 0.0, 2.0)
    dashed = parser.parse_args("--alpha-T 0.3 --alpha-schedule constant --tau-t 0.2 --lambda-v 0.5".split())
    assert from_args(DistillConfig, dashed) == DistillConfig(alpha_T=0.3, alpha_schedule="constant", tau_t=0.2,
                                                             lambda_v=0.5)


def test_projection_head_maps_256_to_clip_space():
    head = ProjectionHead(256, 512, 768)
    assert head(torch.randn(3, 256)).shape == (3, 768)
    assert [type(layer).__name__ for layer in head.net] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]


def test_plots_are_written_as_png(tmp_path):
    loss_fn = C2VLLoss(DistillConfig(), NUM, D)
    step(loss_fn, *batch(90), torch.arange(B), 1, 4)
    seen = loss_fn.inspect_batch(*batch(91), torch.arange(B), 2, 4)
    for path in (plot_soft_targets(seen, tmp_path / "targets.png"),
                 plot_alpha_schedule(tmp_path / "alpha.png", [alpha_schedule(e, 10, 0.5) for e in range(1, 11)],
                                     alpha_T=0.5)):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alpha.png", "targets.png"]  # no temporary files left
