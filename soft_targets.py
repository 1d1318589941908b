"""Soft targets of C2VL (Chen et al., IEEE TMM 2025, arXiv:2405.20606): docs/method.md §2, §3, §4 and §6.

C2VL aligns skeleton embeddings with frozen CLIP features of two knowledge prompts (vision: person crops; language:
LLaVA answers). Instead of CLIP's one-hot targets I it trains against *soft* targets built from similarities that
need no labels. This file holds the maths that turns one batch into those targets, as small pure functions on
plain tensors (rows are samples, N = batch size, D = CLIP embedding size):

    (M1)  S_sm = t Z_m P_m^T,  S_ms = S_sm^T                                    student logits
    (M2)  A_m   = softmax(P_m P_m^T / tau_t)                                   prompt self-similarity
    (M3)  A_s^m = softmax(Zt_m Zt_m^T / tau_t)                                 teacher skeleton self-similarity
    (M4)  Y_intra^m = (1 - beta) I + beta * 1/2 (A_m + A_s^m)                  intra-modal soft target
    (M7)  C_vl = softmax(P_v P_l^T / tau_t),  C_lv = softmax(P_l P_v^T / tau_t)   frozen cross-prompt agreement
    (M8)  Q_sm = softmax(t^ Zt_m P_m^T),  Q_ms = softmax(t^ P_m Zt_m^T)          the teacher's predictions
    (M9)  Y_inter^{s->v} = Q_sl C_lv          Y_inter^{v->s} = C_vl Q_ls         cycle through the other prompt
          Y_inter^{s->l} = Q_sv C_vl          Y_inter^{l->s} = C_lv Q_vs
    single prompt modality (Andonian-style self-distillation):
          Y_inter^{s->m} = Q_sm,  Y_inter^{m->s} = Q_ms
    H(Y, A) = -(1/N) sum_i sum_j Y_ij log softmax(A)_ij                        soft cross-entropy

P_m is the prompt matrix of modality m in {v, l} (P_v vision, P_l language), Z_m the student's and Zt_m the
teacher's (previous epoch's, detached) skeleton embeddings, all N x D with unit rows; t the learnable logit scale, t^
its detached value; softmax is row-wise. Every target is a product or convex mix of row-stochastic matrices, so every
row sums to 1.

Teacher rows may be missing: in epoch 1, and in epoch e for a sample that epoch e - 1 did not visit (the sampler
drops each epoch's last partial batch; distill.TeacherBank). `has_teacher` (N,) bool marks the rows that have one.
Rows without a teacher take their epoch-1 value (A_s^m := A_m, Y_inter := I), and teacher columns without a teacher
are left out of the teacher softmaxes, so no target mass is put on an unknown embedding.

Not here: the alpha schedule, the teacher bank, the progressive mix (M10) and the loss (M11-M12) -> distill.py.
Targets are meant to be computed under torch.no_grad(); the functions themselves do not detach.
"""
import torch
import torch.nn.functional as F


def soft_cross_entropy(Y, logits):
    """H(Y, A) = -(1/N) sum_i sum_j Y_ij log softmax(A)_ij   (docs/method.md §2).

    Y: (N, N) row-stochastic targets; logits A: (N, N). Returns a scalar. log_softmax keeps it finite for any
    logit scale; with Y = I it equals F.cross_entropy(A, arange(N)).
    """
    return -(Y * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def student_logits(Z, P, logit_scale):
    """(M1) S_sm = t Z_m P_m^T and S_ms = S_sm^T.

    Z: (N, D) student skeleton embeddings Z_m of modality m's head, unit rows; P: (N, D) prompt features P_m, unit rows;
    logit_scale: scalar t (a tensor, so that it receives a gradient). Returns (S_sm, S_ms), both (N, N):
    row i of S_sm scores skeleton i against every prompt, row i of S_ms scores prompt i against every skeleton.
    """
    S_sm = logit_scale * Z @ P.T  # (N, N)
    return S_sm, S_sm.T


def masked_row_softmax(logits, columns=None):
    """softmax over each row, using only the columns where `columns` (N,) bool is True (all when None)."""
    if columns is None:
        return logits.softmax(dim=1)
    return logits.masked_fill(~columns[None, :], float("-inf")).softmax(dim=1)


def _epoch_one_rows(teacher_rows, fallback, has_teacher):
    """Row i = teacher_rows[i] where sample i has a teacher, else fallback[i] (the epoch-1 value)."""
    # Reconstruction: a sample that epoch e - 1 did not visit falls back row by row, as in epoch 1; alternatives:
    # its embedding from an older epoch, or the student's current (detached) embedding as its teacher.
    if has_teacher is None:
        return teacher_rows
    # A batch with no teacher at all takes this path too (asking has_teacher.any() would wait for the device): its
    # teacher rows, softmaxes over no column, are NaN, and every row is the fallback.
    return torch.where(has_teacher[:, None], teacher_rows, fallback)


def prompt_self_similarity(P, tau_t):
    """(M2) A_m = softmax(P_m P_m^T / tau_t).   P: (N, D) unit rows -> (N, N), rows sum to 1."""
    return (P @ P.T / tau_t).softmax(dim=1)


def teacher_self_similarity(Zt, tau_t, A_m, has_teacher=None):
    """(M3) A_s^m = softmax(Zt_m Zt_m^T / tau_t), with the epoch-1 fallback A_s^m := A_m.

    Zt: (N, D) teacher embeddings (None: no teacher at all); A_m: (N, N) from M2; has_teacher: (N,) bool or None
    (None: every row has one). Rows without a teacher are A_m's rows; columns without one are excluded.
    """
    if Zt is None:
        # Reconstruction: in epoch 1 the teacher similarity is replaced by the prompt's; alternative: beta := 0.
        return A_m
    A_s = masked_row_softmax(Zt @ Zt.T / tau_t, has_teacher)  # (N, N)
    return _epoch_one_rows(A_s, A_m, has_teacher)


def intra_modal_targets(P, Zt, beta, tau_t, has_teacher=None):
    """(M2-M4) Y_intra^m = (1 - beta) I + beta * 1/2 (A_m + A_s^m).

    P: (N, D) prompt features P_m of modality m, unit rows; Zt: (N, D) teacher skeleton embeddings Zt_m or None;
    beta in [0, 1] trades the hard label I against the self-similarities; tau_t > 0 the target temperature.
    Returns (N, N) with rows summing to 1; the caller uses it for both directions s->m and m->s.
    """
    # Reconstruction: the same Y_intra^m serves both directions s->m and m->s; alternative: its transpose for m->s.
    A_m = prompt_self_similarity(P, tau_t)  # (N, N)
    A_s = teacher_self_similarity(Zt, tau_t, A_m, has_teacher)  # (N, N)
    I = torch.eye(P.shape[0], dtype=P.dtype, device=P.device)
    return (1.0 - beta) * I + beta * 0.5 * (A_m + A_s)


def cross_prompt_agreement(P_a, P_b, tau_t):
    """(M7) C_ab = softmax(P_a P_b^T / tau_t): how much prompt i of modality a agrees with prompt j of modality b.

    P_a, P_b: (N, D) unit rows (both in CLIP's joint space) -> (N, N) row-stochastic.
    """
    return (P_a @ P_b.T / tau_t).softmax(dim=1)


def teacher_predictions(Zt, P, t_hat):
    """(M8) Q_sm = softmax(t^ Zt_m P_m^T): the teacher's skeleton -> prompt prediction.

    Zt, P: (N, D); t_hat: detached logit scale. Returns (N, N); rows of samples without a teacher are meaningless
    and are replaced by the callers (inter_modal_targets, self_distillation_targets) with their epoch-1 rows.
    """
    return (t_hat * Zt @ P.T).softmax(dim=1)


def teacher_predictions_from_prompts(P, Zt, t_hat, has_teacher=None):
    """(M8) Q_ms = softmax(t^ P_m Zt_m^T): the teacher's prompt -> skeleton prediction.

    P, Zt: (N, D) -> (N, N); skeleton columns without a teacher are left out of the softmax.
    """
    return masked_row_softmax(t_hat * P @ Zt.T, has_teacher)


def inter_modal_targets(P_v, P_l, Zt_v, Zt_l, t_hat, tau_t, has_teacher=None):
    """(M7-M9) cycle-consistent targets through the other prompt modality.

    P_v, P_l: (N, D) vision and language prompt features; Zt_v, Zt_l: (N, D) teacher embeddings of the vision and
    language heads (None: no teacher, epoch 1); t_hat: detached logit scale; tau_t: target temperature.
    Returns {"vision": (Y^{s->v}, Y^{v->s}), "language": (Y^{s->l}, Y^{l->s})}, each (N, N) row-stochastic:
        Y^{s->v} = Q_sl C_lv      skeleton i -> language k (teacher) -> vision j (CLIP)
        Y^{v->s} = C_vl Q_ls      vision i -> language k (CLIP) -> skeleton j (teacher)
        Y^{s->l} = Q_sv C_vl      Y^{l->s} = C_lv Q_vs
    In epoch 1 (and for rows without a teacher) Y_inter := I.
    """
    # Reconstruction: the cycle passes through the other *prompt* modality because V and L share CLIP's space;
    # alternative: CyCLIP-style consistency of the skeleton-prompt similarities themselves.
    N = P_v.shape[0]
    I = torch.eye(N, dtype=P_v.dtype, device=P_v.device)
    if Zt_v is None or Zt_l is None:
        return {"vision": (I, I), "language": (I, I)}
    C_vl = cross_prompt_agreement(P_v, P_l, tau_t)  # (N, N)
    C_lv = cross_prompt_agreement(P_l, P_v, tau_t)  # (N, N)
    Q_sv = teacher_predictions(Zt_v, P_v, t_hat)  # (N, N) skeleton -> vision
    Q_sl = teacher_predictions(Zt_l, P_l, t_hat)  # (N, N) skeleton -> language
    Q_ls = teacher_predictions_from_prompts(P_l, Zt_l, t_hat, has_teacher)  # (N, N) language -> skeleton
    Q_vs = teacher_predictions_from_prompts(P_v, Zt_v, t_hat, has_teacher)  # (N, N) vision -> skeleton
    Y_sv = _epoch_one_rows(Q_sl @ C_lv, I, has_teacher)
    Y_vs = _epoch_one_rows(C_vl @ Q_ls, I, has_teacher)
    Y_sl = _epoch_one_rows(Q_sv @ C_vl, I, has_teacher)
    Y_ls = _epoch_one_rows(C_lv @ Q_vs, I, has_teacher)
    return {"vision": (Y_sv, Y_vs), "language": (Y_sl, Y_ls)}


def self_distillation_targets(P, Zt, t_hat, has_teacher=None):
    """Single-modality fallback of M9 (Andonian et al. CVPR 2022): the teacher's own predictions.

    P: (N, D) prompt features P_m; Zt: (N, D) teacher embeddings Zt_m or None; t_hat: detached logit scale.
    Returns (Y^{s->m}, Y^{m->s}) = (Q_sm, Q_ms) of M8, each (N, N); I in epoch 1.
    """
    # Reconstruction: the m->s target is the teacher's m->s prediction; alternative: the transpose of the s->m one.
    I = torch.eye(P.shape[0], dtype=P.dtype, device=P.device)
    if Zt is None:
        return I, I
    Y_sm = _epoch_one_rows(teacher_predictions(Zt, P, t_hat), I, has_teacher)
    Y_ms = _epoch_one_rows(teacher_predictions_from_prompts(P, Zt, t_hat, has_teacher), I, has_teacher)
    return Y_sm, Y_ms
