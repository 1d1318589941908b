"""Visible checks of exercises 1, 2 and 4 (soft_targets.py): shapes, simple cases and invariants of M1-M4 and M7-M9.

A student runs them with `python tools/exercises.py check N`. They say what is wrong in docs/method.md's terms; the
instructor's graded tests compare every equation with an independent computation on random inputs.
"""
import math

import torch
from paper_assertions import assert_close, assert_rows_sum_to_one, mass_on

from soft_targets import (
    cross_prompt_agreement,
    inter_modal_targets,
    intra_modal_targets,
    prompt_self_similarity,
    self_distillation_targets,
    soft_cross_entropy,
    student_logits,
    teacher_predictions,
    teacher_predictions_from_prompts,
    teacher_self_similarity,
)

N, D = 5, 8
TAU = 0.5  # soft enough that every row spreads its mass (a sharp softmax is nearly I, whatever its axis)


def unit_rows(seed, n=N, d=D):
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True)


def one_hot_rows(columns, d=D):
    """Unit rows e_c for each c in `columns`: prompts that agree exactly where their columns match."""
    return torch.eye(d, dtype=torch.float64)[list(columns)]


def assert_shape(matrix, name, shape=(N, N)):
    assert tuple(matrix.shape) == shape, f"{name} must be {shape} (N x N for a batch of N = {N}); got " \
                                         f"{tuple(matrix.shape)}"


# ---------------------------------------------------------------------------------------------------------------
# Exercise 1: H and the student's logits (M1)
# ---------------------------------------------------------------------------------------------------------------

def test_S_sm_is_N_by_N_and_S_ms_is_its_transpose():
    S_sm, S_ms = student_logits(unit_rows(0), unit_rows(1), torch.tensor(10.0, dtype=torch.float64))
    assert_shape(S_sm, "S_sm")
    assert_close(S_ms, S_sm.T, "S_ms must be S_sm^T (row i of S_ms scores prompt i against every skeleton)")


def test_the_diagonal_of_S_sm_is_t_when_each_skeleton_equals_its_prompt():
    Z = unit_rows(2)
    S_sm, _ = student_logits(Z, Z, torch.tensor(10.0, dtype=torch.float64))
    assert_close(S_sm.diagonal(), torch.full((N,), 10.0, dtype=torch.float64),
                 "with Z_m = P_m every cosine on the diagonal is 1, so S_sm = t Z_m P_m^T has t = 10 there")
    S_20, _ = student_logits(Z, Z, torch.tensor(20.0, dtype=torch.float64))
    assert_close(S_20, 2 * S_sm, "S_sm scales with the logit scale t: doubling t must double every logit")


def test_the_logit_scale_t_receives_a_gradient():
    t = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
    S_sm, S_ms = student_logits(unit_rows(3), unit_rows(4), t)
    (S_sm.sum() + S_ms.sum()).backward()
    assert t.grad is not None and t.grad != 0, "t is learnable (docs/method.md §1): compute S_sm from the tensor " \
                                               "logit_scale itself so that it receives a gradient"


def test_H_of_equal_logits_is_log_N_for_any_target():
    Y = torch.softmax(torch.randn(N, N, generator=torch.Generator().manual_seed(5), dtype=torch.float64), dim=1)
    H = soft_cross_entropy(Y, torch.zeros(N, N, dtype=torch.float64))
    assert H.dim() == 0, f"H(Y, A) is one number (a 0-d tensor), the mean over the N rows; got shape {tuple(H.shape)}"
    assert_close(H, torch.tensor(math.log(N), dtype=torch.float64),
                 f"with equal logits softmax(A) is 1/N everywhere, so H(Y, A) = -(1/N) sum_i sum_j Y_ij log(1/N) = "
                 f"log N = {math.log(N):.4f} for any Y whose rows sum to 1")


def test_H_of_a_two_sample_batch_by_hand():
    # softmax([log 3, 0]) = (3/4, 1/4): each row's term is -log(3/4), and the mean over both rows is the same.
    A = torch.tensor([[math.log(3), 0.0], [0.0, math.log(3)]], dtype=torch.float64)
    assert_close(soft_cross_entropy(torch.eye(2, dtype=torch.float64), A),
                 torch.tensor(-math.log(0.75), dtype=torch.float64),
                 "H(I, A) with A = [[log 3, 0], [0, log 3]]: softmax rows (3/4, 1/4), so H = -log(3/4) = 0.2877 "
                 "(averaged over the rows, summed over the columns)")
    A = torch.tensor([[math.log(3), 0.0], [math.log(3), 0.0]], dtype=torch.float64)
    assert_close(soft_cross_entropy(torch.eye(2, dtype=torch.float64), A),
                 torch.tensor(-0.5 * (math.log(0.75) + math.log(0.25)), dtype=torch.float64),
                 "H(I, A) with A = [[log 3, 0], [log 3, 0]]: the softmax runs along each row of A, both rows are "
                 "(3/4, 1/4), so H = -(1/2)(log 3/4 + log 1/4) = 0.8370")


def test_H_stays_finite_at_large_logit_scales():
    A = 100.0 * 30 * unit_rows(6) @ unit_rows(7).T  # logits of several thousand
    H = soft_cross_entropy(torch.eye(N, dtype=torch.float64), A)
    assert torch.isfinite(H), "H(I, A) must stay finite for logits in the thousands (t reaches 100): take " \
                              "log softmax(A) in one step, never the log of a softmax that has underflowed to 0"


# ---------------------------------------------------------------------------------------------------------------
# Exercise 2: soft targets within one modality (M2-M4)
# ---------------------------------------------------------------------------------------------------------------

def test_A_m_is_row_stochastic_and_each_prompt_is_most_similar_to_itself():
    A_m = prompt_self_similarity(unit_rows(8), TAU)
    assert_rows_sum_to_one(A_m, "A_m = softmax(P_m P_m^T / tau_t)")
    for i in range(N):
        column, mass = mass_on(A_m, i)
        assert column == i, f"row {i} of A_m must put most mass on prompt {i} itself (cosine 1, the largest); it " \
                            f"puts {mass:.2f} on prompt {column}"


def test_a_smaller_tau_t_gives_sharper_rows_of_A_m():
    P = unit_rows(9)
    sharp, smooth = prompt_self_similarity(P, 0.01), prompt_self_similarity(P, 1.0)
    assert bool((sharp.diagonal() > smooth.diagonal()).all()), \
        "tau_t divides the similarities before the softmax: tau_t = 0.01 must give larger diagonal entries of A_m " \
        "than tau_t = 1"


def test_A_s_in_epoch_one_is_A_m():
    A_m = prompt_self_similarity(unit_rows(10), TAU)
    A_s = teacher_self_similarity(None, TAU, A_m)
    assert_close(A_s, A_m, "in epoch 1 there is no teacher (Zt = None): A_s^m := A_m")


def test_A_s_rows_without_a_teacher_are_A_m_rows_and_no_mass_goes_to_them():
    P, Zt = unit_rows(11), unit_rows(12)
    A_m = prompt_self_similarity(P, TAU)
    has_teacher = torch.tensor([True, False, True, True, False])
    A_s = teacher_self_similarity(Zt, TAU, A_m, has_teacher)
    assert_rows_sum_to_one(A_s, "A_s^m")
    for i in (1, 4):
        assert_close(A_s[i], A_m[i], f"sample {i} has no teacher (has_teacher[{i}] is False): row {i} of A_s^m "
                                     f"must be row {i} of A_m, its epoch-1 value")
    for i in (0, 2, 3):
        for j in (1, 4):
            assert float(A_s[i, j]) == 0, f"sample {j} has no teacher embedding: row {i} of A_s^m = softmax(Zt_m " \
                                          f"Zt_m^T / tau_t) must put no mass on column {j}; it puts " \
                                          f"{float(A_s[i, j]):.4f}"


def test_Y_intra_is_row_stochastic_I_at_beta_0_and_A_m_at_beta_1_in_epoch_one():
    P, Zt = unit_rows(13), unit_rows(14)
    assert_rows_sum_to_one(intra_modal_targets(P, Zt, 0.5, TAU), "Y_intra^m (beta = 0.5)")
    assert_close(intra_modal_targets(P, Zt, 0.0, TAU), torch.eye(N, dtype=torch.float64),
                 "with beta = 0 Y_intra^m = (1 - beta) I + ... must be I, the hard label")
    assert_close(intra_modal_targets(P, None, 1.0, TAU), prompt_self_similarity(P, TAU),
                 "with beta = 1 in epoch 1 (A_s^m := A_m) Y_intra^m = (A_m + A_m) / 2 must be A_m")


def test_Y_intra_keeps_at_least_1_minus_beta_on_the_diagonal():
    Y = intra_modal_targets(unit_rows(15), unit_rows(16), 0.3, TAU)
    assert bool((Y.diagonal() >= 0.7 - 1e-9).all()), \
        f"Y_intra^m = (1 - beta) I + beta (A_m + A_s^m) / 2 has at least 1 - beta = 0.7 on its diagonal; its " \
        f"smallest diagonal entry is {float(Y.diagonal().min()):.4f}"


# ---------------------------------------------------------------------------------------------------------------
# Exercise 4: the cycle across modalities (M7-M9)
# ---------------------------------------------------------------------------------------------------------------

PI = [1, 2, 3, 0]  # language prompt i agrees with vision prompt pi(i)
SIGMA = [1, 0, 2, 3]  # the teacher sends skeleton i to language prompt sigma(i)
RHO = [0, 1, 3, 2]  # and to vision prompt rho(i)


def inverse(permutation):
    return [permutation.index(i) for i in range(len(permutation))]


def test_C_ab_is_row_stochastic_and_exact_for_orthogonal_prompts():
    C = cross_prompt_agreement(unit_rows(17), unit_rows(18), TAU)
    assert_rows_sum_to_one(C, "C_vl = softmax(P_v P_l^T / tau_t)")
    n, tau = 4, 0.5
    C = cross_prompt_agreement(one_hot_rows(range(n)), one_hot_rows(range(n)), tau)  # cosines: 1 on the diagonal, 0 off
    expected = math.exp(1 / tau) / (math.exp(1 / tau) + n - 1)
    assert_close(C.diagonal(), torch.full((n,), expected, dtype=torch.float64),
                 f"for orthonormal prompts P_a = P_b the logits are I / tau_t, so each diagonal entry of C_ab is "
                 f"e^(1/tau_t) / (e^(1/tau_t) + N - 1) = {expected:.4f} (tau_t = {tau})")


def test_Q_sm_and_Q_ms_are_row_stochastic_and_sharpen_with_t_hat():
    Zt, P = unit_rows(19), unit_rows(20)
    assert_rows_sum_to_one(teacher_predictions(Zt, P, 14.0), "Q_sm = softmax(t^ Zt_m P_m^T)")
    assert_rows_sum_to_one(teacher_predictions_from_prompts(P, Zt, 14.0), "Q_ms = softmax(t^ P_m Zt_m^T)")
    n, t_hat = 4, 2.0
    Q = teacher_predictions(one_hot_rows(range(n)), one_hot_rows(range(n)), t_hat)
    expected = math.exp(t_hat) / (math.exp(t_hat) + n - 1)
    assert_close(Q.diagonal(), torch.full((n,), expected, dtype=torch.float64),
                 f"Q_sm = softmax(t^ Zt_m P_m^T) for orthonormal Zt_m = P_m: each diagonal entry is "
                 f"e^t^ / (e^t^ + N - 1) = {expected:.4f} (t^ = {t_hat}; no tau_t in M8)")


def test_Q_ms_puts_no_mass_on_skeletons_without_a_teacher():
    has_teacher = torch.tensor([True, True, False, True, False])
    Q_ms = teacher_predictions_from_prompts(unit_rows(21), unit_rows(22), 14.0, has_teacher)
    for j in (2, 4):
        assert float(Q_ms[:, j].abs().max()) == 0, \
            f"skeleton {j} has no teacher embedding: Q_ms (prompt -> skeleton) must put no mass on column {j}"
    assert_rows_sum_to_one(Q_ms, "Q_ms with some skeletons masked")


def cycle_world():
    """Four samples with one-hot prompts: language prompt i is vision prompt pi(i), and the teacher's skeleton i
    matches language prompt sigma(i) and vision prompt rho(i). Every step of a cycle is a sharp permutation, so each
    Y_inter is the permutation its path composes."""
    P_v = one_hot_rows(range(4))
    P_l = one_hot_rows(PI)
    Zt_l = P_l[SIGMA]  # Q_sl: skeleton i -> language sigma(i)
    Zt_v = P_v[RHO]  # Q_sv: skeleton i -> vision rho(i)
    return inter_modal_targets(P_v, P_l, Zt_v, Zt_l, t_hat=100.0, tau_t=0.01)


def test_every_Y_inter_is_row_stochastic():
    P_v, P_l, Zt_v, Zt_l = (unit_rows(s) for s in (23, 24, 25, 26))
    Y = inter_modal_targets(P_v, P_l, Zt_v, Zt_l, 14.0, TAU)
    assert set(Y) == {"vision", "language"}, f"inter_modal_targets returns {{'vision': (Y^(s->v), Y^(v->s)), " \
                                             f"'language': (Y^(s->l), Y^(l->s))}}; got keys {sorted(Y)}"
    for m, names in (("vision", ("Y_inter^{s->v}", "Y_inter^{v->s}")), ("language", ("Y_inter^{s->l}",
                                                                                       "Y_inter^{l->s}"))):
        for matrix, name in zip(Y[m], names):
            assert_rows_sum_to_one(matrix, name)


def test_each_cycle_follows_its_path_through_the_other_prompt_modality():
    Y = cycle_world()
    pi_inv, sigma_inv, rho_inv = inverse(PI), inverse(SIGMA), inverse(RHO)
    paths = {  # name: (matrix, the path of row i as (what, index) steps)
        "Y_inter^{s->v} = Q_sl C_lv": (Y["vision"][0], lambda i: [("skeleton", i), ("language", SIGMA[i]),
                                                                    ("vision", PI[SIGMA[i]])]),
        "Y_inter^{v->s} = C_vl Q_ls": (Y["vision"][1], lambda i: [("vision", i), ("language", pi_inv[i]),
                                                                    ("skeleton", sigma_inv[pi_inv[i]])]),
        "Y_inter^{s->l} = Q_sv C_vl": (Y["language"][0], lambda i: [("skeleton", i), ("vision", RHO[i]),
                                                                      ("language", pi_inv[RHO[i]])]),
        "Y_inter^{l->s} = C_lv Q_vs": (Y["language"][1], lambda i: [("language", i), ("vision", PI[i]),
                                                                      ("skeleton", rho_inv[PI[i]])]),
    }
    for name, (matrix, path) in paths.items():
        for i in range(4):
            steps = path(i)
            column, mass = mass_on(matrix, i)
            assert column == steps[-1][1] and mass > 0.9, \
                f"{name}: here language prompt i agrees with vision prompt pi(i), and the teacher sends skeleton i " \
                f"to language prompt sigma(i) and vision prompt rho(i) (pi = {PI}, sigma = {SIGMA}, rho = {RHO}), " \
                f"so row {i} follows " + " -> ".join(f"{what} {k}" for what, k in steps) + \
                f" and must put its mass on column {steps[-1][1]}; it puts {mass:.2f} on column {column}"


def test_Y_inter_is_I_in_epoch_one_and_on_rows_without_a_teacher():
    P_v, P_l, Zt_v, Zt_l = (unit_rows(s) for s in (27, 28, 29, 30))
    identity = torch.eye(N, dtype=torch.float64)
    Y = inter_modal_targets(P_v, P_l, None, None, 14.0, TAU)
    for m in ("vision", "language"):
        for matrix in Y[m]:
            assert_close(matrix, identity, f"in epoch 1 (no teacher: Zt = None) every Y_inter is I; {m} is not")
    has_teacher = torch.tensor([True, False, True, True, True])
    Y = inter_modal_targets(P_v, P_l, Zt_v, Zt_l, 14.0, TAU, has_teacher)
    for m in ("vision", "language"):
        for matrix in Y[m]:
            assert_close(matrix[1], identity[1], f"sample 1 has no teacher: row 1 of every Y_inter ({m}) must be "
                                                 f"row 1 of I, its epoch-1 value")


def test_self_distillation_targets_are_I_in_epoch_one_and_row_stochastic():
    P, Zt = unit_rows(31), unit_rows(32)
    Y_sm, Y_ms = self_distillation_targets(P, None, 14.0)
    identity = torch.eye(N, dtype=torch.float64)
    assert_close(Y_sm, identity, "with one prompt modality in epoch 1 (Zt = None) Y_inter^{s->m} is I")
    assert_close(Y_ms, identity, "with one prompt modality in epoch 1 (Zt = None) Y_inter^{m->s} is I")
    Y_sm, Y_ms = self_distillation_targets(P, Zt, 14.0)
    assert_rows_sum_to_one(Y_sm, "Y_inter^{s->m} = Q_sm")
    assert_rows_sum_to_one(Y_ms, "Y_inter^{m->s} = Q_ms")
