"""Progressive cross-modal self-distillation of C2VL (Chen et al., IEEE TMM 2025): docs/method.md §1, §5 and §7.

The skeleton encoder f is trained through two projection heads g_v, g_l into CLIP's space. For one batch
(rows are samples) the loss compares the student's logits with soft targets (soft_targets.py, M1-M4, M7-M9):

    (M5)  teacher bank: Zt_m[i] = the detached embedding of sample i written in epoch e - 1       (TeacherBank)
    (M6)  alpha_e = alpha_T * e / E    (linear; "constant": alpha_e = alpha_T)                  (alpha_schedule)
    (M10) T^{a->b} = (1 - alpha_e) Y_intra^m + alpha_e Y_inter^{a->b}                           (progressive_target)
    (M11) L_m = 1/2 [ H(T^{s->m}, S_sm) + H(T^{m->s}, S_ms) ]                                    (modality_loss)
    (M12) L = lambda_v L_v + lambda_l L_l                                                        (c2vl_loss)

C2VLLoss wraps these with their state: the learnable logit scale t = exp(s) (s starts at log(1/0.07); 1 <= t <= 100,
the floor keeping training alive, docs/method.md §1) and the teacher bank, which it reads (the training step writes
it, train.train_step); under torch.distributed it computes targets and logits over the *global* batch. With beta = 0
and alpha_T = 0 every target is I and the loss is exactly CLIP's symmetric InfoNCE. ProjectionHead is g_m; the
options (DistillConfig) come last.
Not here: the encoder (skeleton_*.py), the prompt features and P1 pooling (prompts.py), the training loop
(train.py), what a run logs per step (utils/diagnostics.py), pictures of the targets (utils/plots.py).
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from soft_targets import (
    intra_modal_targets,
    inter_modal_targets,
    self_distillation_targets,
    soft_cross_entropy,
    student_logits,
)
from prompts import MODALITIES
from utils.checkpoints import upgrade_teacher_bank
from utils.config import check_choices, setting
from utils.distributed import gather_global_batch

def alpha_schedule(epoch, epochs, alpha_T, kind="linear"):
    """(M6) alpha_e = alpha_T * e / E for kind "linear", alpha_T for kind "constant".

    epoch e is 1-based (1 ... E = epochs), so alpha_1 = alpha_T / E and alpha_E = alpha_T.
    """
    if not 1 <= epoch <= epochs:
        raise ValueError(f"epoch must be in 1..{epochs} (1-based), got {epoch}")
    if kind == "linear":
        return alpha_T * epoch / epochs
    if kind == "constant":
        return alpha_T
    raise ValueError(f"alpha schedule must be 'linear' or 'constant', got {kind!r}")


def progressive_target(Y_intra, Y_inter, alpha_e):
    """(M10) T = (1 - alpha_e) Y_intra^m + alpha_e Y_inter^{a->b}.   (N, N), (N, N), float -> (N, N)."""
    return (1.0 - alpha_e) * Y_intra + alpha_e * Y_inter


def modality_loss(S_sm, S_ms, T_sm, T_ms):
    """(M11) L_m = 1/2 [ H(T^{s->m}, S_sm) + H(T^{m->s}, S_ms) ].   All (N, N); returns a scalar."""
    return 0.5 * (soft_cross_entropy(T_sm, S_sm) + soft_cross_entropy(T_ms, S_ms))


def c2vl_loss(logits, targets, lambdas):
    """(M11-M12) L = sum_m lambda_m L_m over the modalities present.

    logits: {m: (S_sm, S_ms)}; targets: {m: (T_sm, T_ms)}; lambdas: {m: lambda_m}; all matrices (N, N).
    Returns (L, {m: L_m}).
    """
    per_modality = {m: modality_loss(*logits[m], *targets[m]) for m in logits}
    return sum(lambdas[m] * per_modality[m] for m in per_modality), per_modality


@dataclass
class BatchTargets:
    """Everything M1-M12 produce for one batch; each matrix (N, N), pairs are (s->m, m->s)."""

    alpha_e: float
    has_teacher: torch.Tensor  # (N,) bool
    inter: str  # the inter-modal target actually used ("cycle" falls back to "self" with one modality)
    Y_intra: dict  # {m: Y_intra^m}
    Y_inter: dict  # {m: (Y_inter^{s->m}, Y_inter^{m->s})}
    T: dict  # {m: (T^{s->m}, T^{m->s})}
    S: dict  # {m: (S_sm, S_ms)} student logits
    Z: dict  # {m: (N, D)} the student's embeddings Z_m (unit rows): the teacher of the next epoch
    P: dict  # {m: (N, D)} the prompt features P_m (unit rows)
    index: torch.Tensor  # (N,) the samples' dataset indices (rows of the teacher bank)
    t: torch.Tensor  # the logit scale of this step
    L: dict = None  # {m: L_m} (M11), once the loss is computed


def batch_targets(P, Zt, has_teacher, t_hat, alpha_e, config):
    """(M2-M4, M7-M10) the targets of one batch.

    P: {m: (N, D)} unit prompt features P_m; Zt: {m: (N, D)} teacher embeddings Zt_m or None (epoch 1);
    has_teacher: (N,) bool; t_hat: detached logit scale; alpha_e from M6; config: DistillConfig.
    Returns (inter, Y_intra, Y_inter, T) with the dict layouts of BatchTargets.
    """
    modalities = tuple(P)
    teacher = {m: (Zt[m] if Zt is not None else None) for m in modalities}
    # With one prompt modality there is no other modality to cycle through: fall back to self-distillation (§6).
    inter = "self" if config.inter == "cycle" and len(modalities) == 1 else config.inter
    Y_intra = {m: intra_modal_targets(P[m], teacher[m], config.beta, config.tau_t, has_teacher) for m in modalities}
    if inter == "cycle":
        Y_inter = inter_modal_targets(
            P["vision"], P["language"], teacher["vision"], teacher["language"], t_hat, config.tau_t, has_teacher
        )
    elif inter == "self":
        Y_inter = {m: self_distillation_targets(P[m], teacher[m], t_hat, has_teacher) for m in modalities}
    else:
        # Reconstruction: "off" drops the inter-modal term, Y_inter := Y_intra so T = Y_intra for every alpha_e;
        # alternative: Y_inter := I (targets harden over the epochs).
        Y_inter = {m: (Y_intra[m], Y_intra[m]) for m in modalities}
    T = {m: tuple(progressive_target(Y_intra[m], Y, alpha_e) for Y in Y_inter[m]) for m in modalities}
    return inter, Y_intra, Y_inter, T


class ProjectionHead(nn.Module):
    """g_m: 256-d skeleton feature -> CLIP space (docs/method.md §1). Output (N, out_dim), not normalised."""

    def __init__(self, in_dim=256, hidden=512, out_dim=768):
        super().__init__()
        # Reconstruction: a 2-layer MLP head Linear-BN-ReLU-Linear (SimCLR-style); alternative: one Linear.
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim)
        )

    def forward(self, x):  # (N, in_dim) -> (N, out_dim)
        return self.net(x)


class TeacherBank(nn.Module):
    """(M5) Per-sample teacher embeddings Zt_m[i]: what the model produced for sample i in the previous epoch.

    Buffers (in the state dict, so checkpoints restore them): `Zt_vision`, `Zt_language` (num_samples, dim) float16
    and `written_in` (num_samples,) int64, the epoch of each row's last write (0: never). A training step reads its
    rows *before* writing them, and a row is sample i's teacher in epoch e only if epoch e - 1 wrote it: a sample
    the previous epoch did not visit (the sampler drops the last partial batch) has no teacher, as in epoch 1. So
    epoch e sees epoch e - 1 (PS-KD's teacher = the previous epoch's model, at no extra forward pass).

    Distributed training: every rank writes the rows of the whole *global* batch (BatchTargets.index, .Z), so the
    ranks' banks never diverge and need no synchronisation.
    """

    def __init__(self, num_samples, dim, modalities="both"):
        super().__init__()
        # Reconstruction: the teacher is the previous epoch's stored embeddings (PS-KD); alternative: a frozen copy
        # of the model, which would cost a second forward pass per step.
        self.modalities = resolve_modalities(modalities)
        self.num_samples, self.dim = num_samples, dim
        for m in self.modalities:
            self.register_buffer(f"Zt_{m}", torch.zeros(num_samples, dim, dtype=torch.float16))
        self.register_buffer("written_in", torch.zeros(num_samples, dtype=torch.long))

    def embeddings(self, m):
        """(num_samples, dim) float16: Zt_m of every sample."""
        return getattr(self, f"Zt_{m}")

    def check_index(self, index):
        """IndexError naming the indices (B,) that are not rows of the bank. Reading a tensor's values waits for
        its device: train.py checks every index it will use once, on the CPU, before training."""
        bad = (index < 0) | (index >= self.num_samples)  # (B,) bool
        if bool(bad.any()):
            raise IndexError(
                f"TeacherBank has {self.num_samples} rows (dataset size); got dataset indices "
                f"{index[bad][:5].tolist()} at batch positions {bad.nonzero().flatten()[:5].tolist()}"
            )

    def _rows(self, index):
        """(B,) dataset indices -> (B,) int64 on the bank's device; checked here only while on the CPU (free)."""
        if index.device.type == "cpu":
            self.check_index(index)
        return index.to(self.written_in.device).long()

    @torch.no_grad()
    def read(self, index, epoch):
        """The teachers of epoch e (1-based) for the dataset indices (B,): ({m: (B, dim) float32 Zt_m}, (B,) bool
        has_teacher = the row was written in epoch e - 1; never in epoch 1)."""
        index = self._rows(index)
        written_in = self.written_in[index]  # (B,)
        return ({m: self.embeddings(m)[index].float() for m in self.modalities},
                (written_in == epoch - 1) & (written_in > 0))

    @torch.no_grad()
    def write(self, index, Z, epoch):
        """Store the detached embeddings Z = {m: (B, dim)} of epoch e as rows `index` (B,) (float16)."""
        index = self._rows(index)
        for m in self.modalities:
            self.embeddings(m)[index] = Z[m].detach().to(torch.float16)
        self.written_in[index] = epoch

    def _load_from_state_dict(self, state, prefix, *args, **kwargs):
        upgrade_teacher_bank(state, prefix)  # a bank saved as `Z_m`, `stamp`, `step` loads
        super()._load_from_state_dict(state, prefix, *args, **kwargs)


LOG_LOGIT_SCALE_RANGE = (0.0, math.log(100.0))  # s = log t in [0, log 100]: 1 <= t <= 100 (CLIP clamps t at 100)


class C2VLLoss(nn.Module):
    """The C2VL training loss (M1-M12) with its state: the learnable logit scale and the teacher bank (M5).

    forward(G, P, index, epoch, epochs) -> (L, BatchTargets):
      G {m: (B, D)} the heads' outputs G_m = g_m(f(X)) (normalised here: Z_m = normalize(G_m)), P {m: (B, D)} the
      prompt features of the same samples (normalised here, never given a gradient), index (B,) their dataset
      indices (rows of the bank), epoch 1-based out of epochs. It reads the teacher rows of the global batch and
      never writes the bank: the training step writes the batch's embeddings after its optimiser step
      (bank.write). Keep this module out of DistributedDataParallel (its bank is a large buffer DDP would broadcast
      every step; its one parameter already gets the same global gradient on every rank).
    """

    def __init__(self, config, num_samples, dim=768, modalities="both"):
        super().__init__()
        self.config = config if config is not None else DistillConfig()  # None: the defaults
        self.modalities = resolve_modalities(modalities)
        self.dim = dim
        # Reconstruction: one learnable temperature shared by both branches, CLIP's init log(1/0.07), kept in
        # [1, 100] and trained by its own Adam (train.py); alternative: a fixed t (train.py --logit_scale_lr 0).
        self.log_logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / 0.07)))
        self.bank = TeacherBank(num_samples, dim, self.modalities)
        self.lambdas = {"vision": self.config.lambda_v, "language": self.config.lambda_l}

    @property
    def logit_scale(self):
        """t = exp(s), s clamped to [0, log 100], so 1 <= t <= 100: at t -> 0 every logit is 0, the predictions are
        uniform and no gradient reaches the encoder (SGD at lr 0.1 drove t to 0.0004 by epoch 3: docs/method.md §1)."""
        return self.log_logit_scale.clamp(*LOG_LOGIT_SCALE_RANGE).exp()

    @torch.no_grad()
    def clamp_logit_scale_(self):
        """Keep the parameter s itself in range after an optimiser step (as CLIP does), so it never drifts into the
        clamp's flat region where its gradient is zero."""
        self.log_logit_scale.clamp_(*LOG_LOGIT_SCALE_RANGE)

    def _check(self, G, P, index, epoch, epochs):
        if index.dim() != 1 or index.dtype.is_floating_point:
            raise TypeError(f"C2VLLoss: index must be (B,) integer dataset indices, got {index.dtype} "
                            f"{tuple(index.shape)}")
        B = index.shape[0]
        for name, d in (("G", G), ("P", P)):
            if set(d) != set(self.modalities):
                raise KeyError(f"C2VLLoss({self.modalities}): {name} has keys {sorted(d)}, expected {self.modalities}")
            for m, x in d.items():
                if tuple(x.shape) != (B, self.dim):
                    raise ValueError(f"C2VLLoss: {name}[{m!r}] has shape {tuple(x.shape)}, expected (B, D) = "
                                     f"({B}, {self.dim}) with B = len(index) = {tuple(index.shape)}")
        if not 1 <= epoch <= epochs:
            raise ValueError(f"C2VLLoss: epoch must be 1-based in 1..{epochs}, got {epoch}")

    def _batch(self, G, P, index, epoch, epochs, global_batch):
        """M1-M10 for one batch -> BatchTargets (S with gradient, targets without), Z and P unit rows, gathered over
        the processes with `global_batch`."""
        self._check(G, P, index, epoch, epochs)
        dtype = torch.float64 if G[self.modalities[0]].dtype == torch.float64 else torch.float32  # float32 or better
        Z = {m: F.normalize(G[m].to(dtype), dim=1) for m in self.modalities}  # (B, D) Z_m = normalize(G_m)
        P = {m: F.normalize(P[m].detach().to(dtype), dim=1) for m in self.modalities}  # (B, D) unit rows, no grad
        if global_batch:
            Z, P, index = gather_global_batch(Z, P, index)  # (N, D), (N, D), (N,)
        t = self.logit_scale
        alpha_e = alpha_schedule(epoch, epochs, self.config.alpha_T, self.config.alpha_schedule)
        with torch.no_grad():
            Zt, has_teacher = self.bank.read(index, epoch)  # {m: (N, D)}, (N,) -- read before this step writes
            # Epoch 1 has no teacher yet: Zt = None, the fallback targets without computing the teacher's.
            Zt = {m: z.to(Z[m].device, Z[m].dtype) for m, z in Zt.items()} if epoch > 1 else None
            has_teacher = has_teacher.to(Z[self.modalities[0]].device)
            inter, Y_intra, Y_inter, T = batch_targets(P, Zt, has_teacher, t.detach(), alpha_e, self.config)
        S = {m: student_logits(Z[m], P[m], t) for m in self.modalities}
        return BatchTargets(alpha_e, has_teacher, inter, Y_intra, Y_inter, T, S, Z, P, index, t)

    def forward(self, G, P, index, epoch, epochs):
        """(M1-M12) the loss L of the global batch, reading the teacher (M5) -> (L, BatchTargets with L_m).

        Writing this batch's embeddings as the next epoch's teacher is the training step's, after the optimiser
        step: bank.write(batch.index, batch.Z, epoch) (train.train_step)."""
        device_type = next(iter(G.values())).device.type
        with torch.autocast(device_type=device_type, enabled=False):  # the loss in float32 (float64 inputs: float64)
            batch = self._batch(G, P, index, epoch, epochs, global_batch=True)
            loss, batch.L = c2vl_loss(batch.S, batch.T, self.lambdas)  # (M11-M12)
        return loss, batch

    @torch.no_grad()
    def inspect_batch(self, G, P, index, epoch, epochs):
        """The BatchTargets of this (local) batch: for utils.plots.plot_soft_targets."""
        return self._batch(G, P, index, epoch, epochs, global_batch=False)


@dataclass
class DistillConfig:
    """Options of the C2VL loss (docs/method.md §11); each is a flag of train.py with the same name."""

    # Reconstruction: beta = 0.5 weighs the hard label and the soft similarities equally (the paper's value unknown).
    beta: float = setting(0.5, "M4: weight of the soft self-similarity targets against the hard label I")
    alpha_T: float = setting(0.5, "M6: final weight alpha_T of the inter-modal targets (PS-KD uses 0.8)")
    alpha_schedule: str = setting("linear", "M6: linear (alpha_e = alpha_T e / E) or constant (alpha_T from epoch 1)",
                                  choices=("linear", "constant"))
    inter: str = setting("cycle", "M9: inter-modal targets: cycle through the other prompt modality, self "
                         "(teacher's own prediction), off", choices=("cycle", "self", "off"))
    tau_t: float = setting(0.05, "M2, M3, M7: temperature of the soft targets (small: only close neighbours)")
    lambda_v: float = setting(1.0, "M12: weight of the vision branch")
    lambda_l: float = setting(1.0, "M12: weight of the language branch")

    def __post_init__(self):
        for name in ("beta", "alpha_T"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"DistillConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.tau_t > 0.0:
            raise ValueError(f"DistillConfig.tau_t must be > 0, got {self.tau_t}")
        for name in ("lambda_v", "lambda_l"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"DistillConfig.{name} must be >= 0, got {getattr(self, name)}")
        check_choices(self)


def resolve_modalities(modalities):
    """"both" | "vision" | "language" | a sequence of those names -> tuple in the order (vision, language)."""
    names = MODALITIES if modalities == "both" else (modalities,) if isinstance(modalities, str) else modalities
    unknown = [m for m in names if m not in MODALITIES]
    if unknown or not names:
        raise ValueError(f"prompt modalities must be 'both' or a non-empty subset of {MODALITIES}, got {modalities!r}")
    return tuple(m for m in MODALITIES if m in names)
