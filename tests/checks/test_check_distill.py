"""Visible checks of exercises 3 and 5 (distill.py): the teacher bank and alpha_e (M5-M6), the progressive target and
the loss (M10-M12). Exercise 5's loss checks call exercise 1's H (soft_targets.soft_cross_entropy).

A student runs them with `python tools/exercises.py check N`; the instructor's graded tests compare every equation
with an independent computation.
"""
import math

import pytest
import torch
from paper_assertions import assert_close, assert_rows_sum_to_one

from distill import TeacherBank, alpha_schedule, c2vl_loss, modality_loss, progressive_target

N = 4


def row_stochastic(seed, n=N):
    return torch.softmax(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=1)


# ---------------------------------------------------------------------------------------------------------------
# Exercise 3: the teacher bank (M5) and the alpha schedule (M6)
# ---------------------------------------------------------------------------------------------------------------

def test_alpha_e_rises_in_equal_steps_to_alpha_T_at_the_last_epoch():
    E, alpha_T = 5, 0.6
    alpha = [alpha_schedule(e, E, alpha_T) for e in range(1, E + 1)]
    assert alpha[-1] == pytest.approx(alpha_T), f"alpha_E must be alpha_T = {alpha_T} at the last epoch e = E = " \
                                                f"{E}; got {alpha[-1]}"
    steps = [b - a for a, b in zip(alpha, alpha[1:])]
    assert all(s == pytest.approx(alpha_T / E) for s in steps), \
        f"alpha_e = alpha_T e / E rises by alpha_T / E = {alpha_T / E:.3f} each epoch; over e = 1..{E} got {alpha}"
    assert alpha[0] > 0, "epochs are 1-based: the first epoch is e = 1, so alpha_1 = alpha_T / E > 0"


def test_the_constant_schedule_is_alpha_T_from_the_first_epoch():
    got = [alpha_schedule(e, 4, 0.3, "constant") for e in range(1, 5)]
    assert got == pytest.approx([0.3] * 4), f"kind 'constant' gives alpha_e = alpha_T = 0.3 in every epoch; got {got}"


def test_an_epoch_outside_1_to_E_is_refused():
    for epoch in (0, 6):
        try:
            alpha_schedule(epoch, 5, 0.5)
        except ValueError:
            continue
        raise AssertionError(f"alpha_schedule({epoch}, 5, 0.5) must raise ValueError: epochs are 1-based, e = 1 .. E")


def test_the_bank_reads_back_what_was_written_as_float32():
    bank = TeacherBank(10, 6, "both")
    Z = {m: torch.nn.functional.normalize(torch.randn(3, 6), dim=1) for m in ("vision", "language")}
    bank.write(torch.tensor([7, 2, 9]), Z, epoch=1)
    rows, has_teacher = bank.read(torch.tensor([2, 9, 7]), epoch=2)
    assert set(rows) == {"vision", "language"}, f"read returns ({{m: (B, dim)}}, has_teacher); got keys {sorted(rows)}"
    for m in rows:
        assert rows[m].dtype == torch.float32, f"the bank stores float16 and read returns float32 rows; " \
                                               f"got {rows[m].dtype}"
        assert_close(rows[m], Z[m][[1, 2, 0]], f"Zt_{m[0]}[i] must be the embedding written for dataset index i "
                                               f"(rows 2, 9, 7 were written at batch positions 1, 2, 0); within "
                                               f"float16 precision", atol=2e-3)
    assert has_teacher.tolist() == [True, True, True], f"rows 2, 9 and 7 were written in epoch 1: in epoch 2 each " \
                                                       f"has a teacher; got has_teacher {has_teacher.tolist()}"


def test_rows_never_written_are_not_filled_and_read_as_zero():
    bank = TeacherBank(10, 6, "both")
    rows, has_teacher = bank.read(torch.tensor([0, 5]), epoch=2)
    assert has_teacher.tolist() == [False, False], f"a new bank holds no teacher: has_teacher must be all False; " \
                                                   f"got {has_teacher.tolist()}"
    bank.write(torch.tensor([5]), {m: torch.ones(1, 6) for m in ("vision", "language")}, epoch=1)
    rows, has_teacher = bank.read(torch.tensor([0, 5]), epoch=2)
    assert has_teacher.tolist() == [False, True], f"only row 5 was written in epoch 1: in epoch 2 has_teacher " \
                                                  f"must be [False, True]; got {has_teacher.tolist()}"
    assert float(rows["vision"][0].abs().max()) == 0, "a row never written reads as zeros"


def test_a_row_teaches_only_in_the_epoch_after_its_write():
    bank = TeacherBank(4, 3, "language")
    bank.write(torch.tensor([1]), {"language": torch.ones(1, 3)}, epoch=2)
    got = [bank.read(torch.tensor([1]), epoch=e)[1].item() for e in (1, 2, 3, 4)]
    assert got == [False, False, True, False], f"row 1 was written in epoch 2: it is a teacher in epoch 3 only " \
                                               f"(M5: the previous epoch's embedding); has_teacher in epochs 1-4 " \
                                               f"was {got}"


def test_a_second_write_replaces_the_first():
    bank = TeacherBank(4, 3, "language")
    bank.write(torch.tensor([1]), {"language": torch.full((1, 3), 0.25)}, epoch=1)
    bank.write(torch.tensor([1]), {"language": torch.full((1, 3), 0.5)}, epoch=2)
    rows, _ = bank.read(torch.tensor([1]), epoch=3)
    assert_close(rows["language"][0], torch.full((3,), 0.5), "epoch e overwrites row i with its new embedding: the "
                                                             "later write must be what is read")


# ---------------------------------------------------------------------------------------------------------------
# Exercise 5: the progressive target (M10) and the loss (M11-M12)
# ---------------------------------------------------------------------------------------------------------------

def test_T_is_Y_intra_at_alpha_0_Y_inter_at_alpha_1_and_row_stochastic_between():
    Y_intra, Y_inter = row_stochastic(0), row_stochastic(1)
    assert_close(progressive_target(Y_intra, Y_inter, 0.0), Y_intra, "T = (1 - alpha_e) Y_intra + alpha_e Y_inter "
                                                                     "must be Y_intra at alpha_e = 0")
    assert_close(progressive_target(Y_intra, Y_inter, 1.0), Y_inter, "T must be Y_inter at alpha_e = 1")
    assert_rows_sum_to_one(progressive_target(Y_intra, Y_inter, 0.3), "T (alpha_e = 0.3), a convex mix of two "
                                                                      "row-stochastic targets,")


def test_L_m_of_equal_logits_is_log_N():
    S = torch.zeros(N, N, dtype=torch.float64)
    L = modality_loss(S, S, row_stochastic(2), row_stochastic(3))
    assert_close(L, torch.tensor(math.log(N), dtype=torch.float64),
                 f"with equal logits both H terms are log N, so L_m = 1/2 [H(T^s->m, S_sm) + H(T^m->s, S_ms)] = "
                 f"log N = {math.log(N):.4f}")


def test_L_m_averages_the_two_directions():
    S_sm = 5 * torch.randn(N, N, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    T_sm, T_ms = row_stochastic(5), row_stochastic(6)
    forward = modality_loss(S_sm, S_sm.T, T_sm, T_ms)
    swapped = modality_loss(S_sm.T, S_sm, T_ms, T_sm)
    assert_close(swapped, forward, "L_m = 1/2 [H(T^s->m, S_sm) + H(T^m->s, S_ms)] is symmetric: swapping the two "
                                   "directions (each with its own target) must give the same L_m")
    sharp = 50 * torch.eye(N, dtype=torch.float64)
    assert float(modality_loss(sharp, sharp, torch.eye(N, dtype=torch.float64),
                               torch.eye(N, dtype=torch.float64))) < 1e-6, \
        "with T = I and logits that pick each sample's own prompt (50 on the diagonal) L_m must be about 0"


def test_L_weights_each_modality_by_its_lambda():
    S = {m: 3 * torch.randn(N, N, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
         for s, m in enumerate(("vision", "language"))}
    logits = {m: (S[m], S[m].T) for m in S}
    targets = {m: (row_stochastic(7 + s), row_stochastic(9 + s)) for s, m in enumerate(S)}
    result = c2vl_loss(logits, targets, {"vision": 1.0, "language": 1.0})
    assert isinstance(result, tuple) and len(result) == 2, "c2vl_loss returns (L, {m: L_m})"
    total, per_modality = result
    assert set(per_modality) == {"vision", "language"}, f"the second value is {{m: L_m}} for every modality of " \
                                                        f"`logits`; got keys {sorted(per_modality)}"
    assert_close(total, per_modality["vision"] + per_modality["language"], "L = lambda_v L_v + lambda_l L_l with "
                                                                           "both lambdas 1 must be L_v + L_l")
    only_language, _ = c2vl_loss(logits, targets, {"vision": 0.0, "language": 2.0})
    assert_close(only_language, 2 * per_modality["language"], "with lambda_v = 0 and lambda_l = 2, L = 2 L_l")
    one, per_one = c2vl_loss({"language": logits["language"]}, {"language": targets["language"]}, {"language": 1.0})
    assert set(per_one) == {"language"}, "with one prompt modality L = L_m alone: sum over the modalities present"
