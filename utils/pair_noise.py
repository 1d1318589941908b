"""The pair-noise knob (train.py --pair_noise): break a fraction of the training split's skeleton-prompt pairs.

The paper's argument is that LMM-made prompts are noisy pairs and that soft targets learn better from them than
CLIP's hard InfoNCE; this makes the noise a controlled quantity (docs/training.md, "Broken pairs"). Not a paper
concept: an experiment's knob, on plain arrays.
"""
import numpy as np

from utils.batches import TrainSetupError


def break_pairs(features, indices, p, seed, modalities, kind="swap"):
    """--pair_noise: the prompts of k = round(p n) of the n training samples `indices`, drawn with `seed`, permuted
    among themselves so that none keeps its own (one k-cycle over them in a random order), in `modalities`; kind
    "similar": each of them takes the language prompt of the other training sample whose vision prompt is nearest.
    -> ({m: features with those rows replaced}, (N,) bool mask of the broken samples). The same in every process
    and on resume (a function of the seed alone); p = 0 returns the features untouched."""
    broken = np.zeros(len(next(iter(features.values()))), dtype=bool)
    k = round(p * len(indices))
    if k == 0:
        return features, broken
    if k == 1 or not 0 <= p <= 1:
        raise TrainSetupError(f"--pair_noise {p}: round(p n) = {k} of n = {len(indices)} samples; a permutation "
                              f"needs at least 2 (and p in [0, 1])")
    rng = np.random.default_rng([seed, 1])  # a stream of its own: the training's random state is untouched
    chosen = rng.permutation(np.asarray(indices))[:k]  # (k,) samples whose pairs break, in a random order
    broken[chosen] = True
    noisy = dict(features)
    if kind == "similar":
        if "vision" not in features or "language" not in features:
            raise TrainSetupError("--pair_noise_kind similar needs both prompt modalities (it looks for the nearest "
                                  "vision prompt)")
        vision = normalized_rows(features["vision"])[np.asarray(indices)]  # (n, D)
        similarity = vision[np.searchsorted(indices, chosen)] @ vision.T  # (k, n)
        similarity[np.arange(k), np.searchsorted(indices, chosen)] = -np.inf  # not itself
        noisy["language"] = np.array(features["language"])
        noisy["language"][chosen] = features["language"][np.asarray(indices)[similarity.argmax(axis=1)]]
        return noisy, broken
    for m in modalities:
        noisy[m] = np.array(features[m])  # a copy in memory (the cache stays as it is)
        noisy[m][chosen] = features[m][np.roll(chosen, -1)]  # sample chosen[i] gets the prompts of chosen[i + 1]
    return noisy, broken


def normalized_rows(features):
    """(N, D) or (N, K, D) prompt features (K pooled by the mean) as float32 unit rows (N, D)."""
    rows = np.asarray(features, dtype=np.float32)
    rows = rows.mean(axis=1) if rows.ndim == 3 else rows
    return rows / (np.linalg.norm(rows, axis=1, keepdims=True) + 1e-12)
