"""Claims of soft_targets.py (docs/method.md M1-M4, M7-M9 and the single-modality fallback).

Every expected value is recomputed here independently in float64 numpy, mostly with explicit loops, never by
calling the function under test.
"""
import math

import numpy as np
import torch

from soft_targets import (
    cross_prompt_agreement,
    inter_modal_targets,
    intra_modal_targets,
    masked_row_softmax,
    prompt_self_similarity,
    self_distillation_targets,
    soft_cross_entropy,
    student_logits,
    teacher_predictions,
    teacher_predictions_from_prompts,
    teacher_self_similarity,
)

N, D = 6, 8
TAU = 0.05
T_HAT = 14.0
ATOL = 1e-5


def unit_rows(seed, n=N, d=D):
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (x / x.norm(dim=1, keepdim=True)).float()


def np64(x):
    return x.detach().double().numpy()


def loop_softmax(logits, columns=None):
    """Row softmax with explicit loops over the allowed columns."""
    n, k = logits.shape
    out = np.zeros((n, k))
    for i in range(n):
        allowed = [j for j in range(k) if columns is None or columns[j]]
        top = max(logits[i, j] for j in allowed)
        total = sum(math.exp(logits[i, j] - top) for j in allowed)
        for j in allowed:
            out[i, j] = math.exp(logits[i, j] - top) / total
    return out


def loop_matmul(A, B):
    n, k = A.shape
    out = np.zeros((n, B.shape[1]))
    for i in range(n):
        for j in range(B.shape[1]):
            out[i, j] = sum(A[i, q] * B[q, j] for q in range(k))
    return out


def dots(A, B):
    """(A B^T)_ij = sum_d A_id B_jd with explicit loops."""
    return loop_matmul(A, B.T)


def test_student_logits_are_scaled_cosines_M1():
    Z, P, t = unit_rows(0), unit_rows(1), torch.tensor(12.5)
    S_sm, S_ms = student_logits(Z, P, t)
    z, p = np64(Z), np64(P)
    expected = np.array([[12.5 * sum(z[i, d] * p[j, d] for d in range(D)) for j in range(N)] for i in range(N)])
    np.testing.assert_allclose(np64(S_sm), expected, atol=1e-4)
    np.testing.assert_allclose(np64(S_ms), expected.T, atol=1e-4)


def test_soft_cross_entropy_matches_its_definition():
    Y = torch.tensor(loop_softmax(np64(unit_rows(2) @ unit_rows(3).T) * 5)).float()
    A = 10 * unit_rows(4) @ unit_rows(5).T
    y, a = np64(Y), np64(A)
    expected = 0.0
    for i in range(N):
        log_norm = math.log(sum(math.exp(a[i, k]) for k in range(N)))
        expected -= sum(y[i, j] * (a[i, j] - log_norm) for j in range(N)) / N
    assert abs(float(soft_cross_entropy(Y, A)) - expected) < ATOL


def test_soft_cross_entropy_with_identity_is_cross_entropy():
    A = 30 * unit_rows(6) @ unit_rows(7).T
    expected = torch.nn.functional.cross_entropy(A, torch.arange(N))
    torch.testing.assert_close(soft_cross_entropy(torch.eye(N), A), expected, rtol=1e-6, atol=1e-7)


def test_prompt_self_similarity_M2():
    P = unit_rows(8)
    p = np64(P)
    np.testing.assert_allclose(np64(prompt_self_similarity(P, TAU)), loop_softmax(dots(p, p) / TAU), atol=ATOL)


def test_teacher_self_similarity_M3():
    Zt, P = unit_rows(9), unit_rows(10)
    A_m = prompt_self_similarity(P, TAU)
    z = np64(Zt)
    np.testing.assert_allclose(np64(teacher_self_similarity(Zt, TAU, A_m)), loop_softmax(dots(z, z) / TAU), atol=ATOL)


def test_intra_modal_targets_M4():
    P, Zt, beta = unit_rows(11), unit_rows(12), 0.3
    p, z = np64(P), np64(Zt)
    A_m, A_s = loop_softmax(dots(p, p) / TAU), loop_softmax(dots(z, z) / TAU)
    expected = np.array([[(1 - beta) * (i == j) + beta * 0.5 * (A_m[i, j] + A_s[i, j]) for j in range(N)]
                         for i in range(N)])
    np.testing.assert_allclose(np64(intra_modal_targets(P, Zt, beta, TAU)), expected, atol=ATOL)


def test_intra_targets_in_epoch_one_use_the_prompt_similarity_twice():
    P, beta = unit_rows(13), 0.5
    p = np64(P)
    expected = (1 - beta) * np.eye(N) + beta * loop_softmax(dots(p, p) / TAU)  # A_s := A_m
    np.testing.assert_allclose(np64(intra_modal_targets(P, None, beta, TAU)), expected, atol=ATOL)


def test_beta_zero_intra_target_is_identity():
    assert torch.equal(intra_modal_targets(unit_rows(14), unit_rows(15), 0.0, TAU), torch.eye(N))


def test_cross_prompt_agreement_M7():
    V, L = unit_rows(16), unit_rows(17)
    v, l = np64(V), np64(L)
    np.testing.assert_allclose(np64(cross_prompt_agreement(V, L, TAU)), loop_softmax(dots(v, l) / TAU), atol=ATOL)
    np.testing.assert_allclose(np64(cross_prompt_agreement(L, V, TAU)), loop_softmax(dots(l, v) / TAU), atol=ATOL)


def test_teacher_predictions_M8():
    """Q_sm = softmax(t^ Zt_m P_m^T) and Q_ms = softmax(t^ P_m Zt_m^T)."""
    Zt, P = unit_rows(18), unit_rows(19)
    expected = loop_softmax(T_HAT * dots(np64(Zt), np64(P)))
    np.testing.assert_allclose(np64(teacher_predictions(Zt, P, T_HAT)), expected, atol=ATOL)
    expected = loop_softmax(T_HAT * dots(np64(P), np64(Zt)))
    np.testing.assert_allclose(np64(teacher_predictions_from_prompts(P, Zt, T_HAT)), expected, atol=ATOL)


def cycle_reference(V, L, Zt_v, Zt_l):
    """M9 by explicit sums over the intermediate sample k of the cycle."""
    v, l, zv, zl = np64(V), np64(L), np64(Zt_v), np64(Zt_l)
    C_vl, C_lv = loop_softmax(dots(v, l) / TAU), loop_softmax(dots(l, v) / TAU)
    Q_sv, Q_sl = loop_softmax(T_HAT * dots(zv, v)), loop_softmax(T_HAT * dots(zl, l))
    Q_ls, Q_vs = loop_softmax(T_HAT * dots(l, zl)), loop_softmax(T_HAT * dots(v, zv))
    cycle = lambda first, second: np.array(  # noqa: E731
        [[sum(first[i, k] * second[k, j] for k in range(N)) for j in range(N)] for i in range(N)]
    )
    return {"vision": (cycle(Q_sl, C_lv), cycle(C_vl, Q_ls)), "language": (cycle(Q_sv, C_vl), cycle(C_lv, Q_vs))}


def test_inter_modal_targets_follow_the_cycle_M9():
    V, L, Zt_v, Zt_l = unit_rows(20), unit_rows(21), unit_rows(22), unit_rows(23)
    got = inter_modal_targets(V, L, Zt_v, Zt_l, T_HAT, TAU)
    expected = cycle_reference(V, L, Zt_v, Zt_l)
    for m in ("vision", "language"):
        for direction in (0, 1):
            np.testing.assert_allclose(np64(got[m][direction]), expected[m][direction], atol=ATOL)


def test_inter_targets_in_epoch_one_are_identity():
    got = inter_modal_targets(unit_rows(24), unit_rows(25), None, None, T_HAT, TAU)
    no_teacher = inter_modal_targets(unit_rows(24), unit_rows(25), unit_rows(26), unit_rows(27), T_HAT, TAU,
                                     has_teacher=torch.zeros(N, dtype=torch.bool))
    for targets in (got, no_teacher):
        for m in ("vision", "language"):
            for Y in targets[m]:
                assert torch.equal(Y, torch.eye(N))


def test_rows_without_teacher_fall_back_as_in_epoch_one():
    V, L, Zt_v, Zt_l = unit_rows(28), unit_rows(29), unit_rows(30), unit_rows(31)
    has = torch.tensor([True, False, True, True, False, True])
    cols = has.numpy()
    # M3 with missing teachers: rows without a teacher are A_m, the others ignore the missing columns
    A_m = prompt_self_similarity(V, TAU)
    z = np64(Zt_v)
    expected = loop_softmax(dots(z, z) / TAU, columns=cols)
    expected[~cols] = np64(A_m)[~cols]
    np.testing.assert_allclose(np64(teacher_self_similarity(Zt_v, TAU, A_m, has)), expected, atol=ATOL)
    # M9 with missing teachers: rows without a teacher are I; no target mass on a skeleton without a teacher
    got = inter_modal_targets(V, L, Zt_v, Zt_l, T_HAT, TAU, has_teacher=has)
    v, l, zl = np64(V), np64(L), np64(Zt_l)
    C_vl = loop_softmax(dots(v, l) / TAU)
    Q_ls = loop_softmax(T_HAT * dots(l, zl), columns=cols)
    expected_vs = loop_matmul(C_vl, Q_ls)
    expected_vs[~cols] = np.eye(N)[~cols]
    np.testing.assert_allclose(np64(got["vision"][1]), expected_vs, atol=ATOL)
    for m in ("vision", "language"):
        for Y in got[m]:
            np.testing.assert_array_equal(np64(Y)[~cols], np.eye(N)[~cols])
    assert np.all(np64(got["vision"][1])[np.ix_(cols, ~cols)] == 0.0)


def test_self_distillation_targets_are_the_teachers_predictions():
    L, Zt_l = unit_rows(32), unit_rows(33)
    Y_sm, Y_ms = self_distillation_targets(L, Zt_l, T_HAT)
    l, z = np64(L), np64(Zt_l)
    np.testing.assert_allclose(np64(Y_sm), loop_softmax(T_HAT * dots(z, l)), atol=ATOL)
    np.testing.assert_allclose(np64(Y_ms), loop_softmax(T_HAT * dots(l, z)), atol=ATOL)
    assert all(torch.equal(Y, torch.eye(N)) for Y in self_distillation_targets(L, None, T_HAT))


def test_masked_row_softmax_gives_no_mass_to_masked_columns():
    columns = torch.tensor([True, False, True, False, True, True])
    probabilities = masked_row_softmax(unit_rows(34) @ unit_rows(35).T, columns)
    assert torch.all(probabilities[:, ~columns] == 0)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(N))


def test_targets_rows_sum_to_one():
    V, L, Zt_v, Zt_l = unit_rows(36), unit_rows(37), unit_rows(38), unit_rows(39)
    has = torch.tensor([True, True, False, True, True, False])
    targets = [intra_modal_targets(V, Zt_v, 0.7, TAU, has), intra_modal_targets(L, None, 0.7, TAU)]
    for teacher in (None, has):
        for pair in inter_modal_targets(V, L, Zt_v, Zt_l, 100.0, TAU, teacher).values():
            targets.extend(pair)
        targets.extend(self_distillation_targets(L, Zt_l, 100.0, teacher))
    for Y in targets:
        assert torch.all(Y >= 0)
        torch.testing.assert_close(Y.sum(dim=1), torch.ones(N), atol=1e-5, rtol=0)
