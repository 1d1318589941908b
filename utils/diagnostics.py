"""What a run watches: the diagnostics of each training step and their epoch means, and a health check of prompt
features. Not a paper concept.

Per step (batch_diagnostics): the loss, t, the teacher fraction and per modality the in-batch retrieval, the target
entropy and the prompt cosine; train.py adds them up on the device and reads their epoch means once per epoch
(add_step, epoch_means) into metrics.jsonl.

Prompt health: when every sample's prompt feature points the same way (a random or wrong CLIP, crops that all show
the same background), the similarity targets of that modality (M2, M7) are uniform rows and its branch learns
nothing; with random CLIP weights the demo's vision features have a mean pairwise cosine of 0.996 (the pretrained
demo CLIP's: 0.66). prompts.py checks each cache it writes, train.py the caches it trains on.
"""
import numpy as np
import torch

@torch.no_grad()
def batch_diagnostics(loss, batch, broken=None):
    """One step's diagnostics over the global batch (`batch`: distill.BatchTargets of the loss `loss`).

    The loss L and each L_m, t, the fraction of samples with a teacher, and per modality the in-batch retrieval
    top-1 of S_sm (chance 1/N), the entropy of T^{s->m} (nats: I -> 0, uniform -> ln N) and the mean cosine between
    distinct prompts P_m (near 1: the prompts carry nothing), and alpha_e. `broken` (num_samples,) bool, the pairs
    --pair_noise broke: the retrieval and the entropy of the broken and of the intact rows apart, each a (sum, count)
    pair over the group's rows. Values are 0-d float64 tensors on the loss's device (reading them would wait for
    the device: epoch_means does so once per epoch), alpha_e a float.
    """
    own, values, groups = torch.arange(batch.has_teacher.shape[0], device=loss.device), {}, {}
    rows = {} if broken is None else {"broken": broken[batch.index], "intact": ~broken[batch.index]}  # (N,) bool
    for m in batch.L:
        T, p = batch.T[m][0], batch.P[m]  # (N, N), (N, D)
        hit = (batch.S[m][0].argmax(dim=1) == own).float()  # (N,): row i retrieves its own prompt
        entropy = -torch.special.xlogy(T, T).sum(dim=1)  # (N,) nats
        values[f"loss_{m}"] = batch.L[m].detach()
        values[f"retrieval_{m}"] = hit.mean()
        values[f"target_entropy_{m}"] = entropy.mean()
        values[f"prompt_cosine_{m}"] = (p.sum(0) @ p.sum(0) - len(p)) / max(len(p) * (len(p) - 1), 1)  # i != j
        for g, r in rows.items():
            groups[f"retrieval_{m}_{g}"] = (hit[r].sum().double(), r.double().sum())
            groups[f"target_entropy_{m}_{g}"] = (entropy[r].sum().double(), r.double().sum())
    # float64, so that the per-epoch sums add up as Python floats would; .tolist() here would wait every step
    stacked = torch.stack([loss.detach(), batch.t.detach(), batch.has_teacher.float().mean(),
                           *values.values()]).double()  # (3 + 4 |m|,)
    return {**dict(zip(["loss", "logit_scale", "teacher_fraction", *values], stacked.unbind())), **groups,
            "alpha_e": batch.alpha_e}


def add_step(totals, diagnostics):
    """Add one step's diagnostics to the epoch's totals, on the device (nothing waits): values add up, and so do
    both parts of a (sum, count) pair."""
    for k, v in diagnostics.items():
        if isinstance(v, tuple):
            total, count = totals.get(k, (0, 0))
            totals[k] = (total + v[0], count + v[1])
        else:
            totals[k] = totals.get(k, 0) + v


def epoch_means(totals, steps):
    """The epoch's value of each diagnostic (reading the totals waits for the device, once): a value's mean over the
    `steps` steps, a (sum, count) pair's sum over its count (the mean over the group's rows of every step)."""
    return {k: float(v[0]) / max(float(v[1]), 1e-12) if isinstance(v, tuple) else float(v) / steps
            for k, v in totals.items()}

NEARLY_IDENTICAL = 0.98  # mean pairwise cosine above which a modality's features carry almost nothing


def mean_pairwise_cosine(features, sample=2048):
    """Mean cosine between distinct rows of (N, D) or (N, K, D) features (K pooled by the mean), on <= `sample`
    evenly spaced rows."""
    rows = np.asarray(features[np.linspace(0, len(features) - 1, min(sample, len(features))).astype(int)],
                      dtype=np.float64)
    rows = rows.mean(axis=1) if rows.ndim == 3 else rows  # (n, D)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True) + 1e-12
    n = len(rows)
    if n < 2:
        return float("nan")
    total = rows.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))  # sum_{i != j} cos_ij / (n (n - 1)), rows are unit


def prompt_health(features):
    """{modality: features} -> one warning per modality whose features are nearly identical ([] when healthy)."""
    warnings = []
    for m, f in features.items():
        cosine = mean_pairwise_cosine(f)
        if cosine >= NEARLY_IDENTICAL:
            warnings.append(f"the {m} prompt features are nearly identical (mean pairwise cosine {cosine:.4f} >= "
                            f"{NEARLY_IDENTICAL}): their similarity targets will be uniform and the {m} branch will "
                            f"learn next to nothing. Check the CLIP weights (a random CLIP?) and the person crops.")
    return warnings
