"""A health check of prompt features: are a modality's features nearly identical?

When every sample's prompt feature points the same way (a random or wrong CLIP, crops that all show the same
background), the similarity targets of that modality (M2, M7) are uniform rows and its branch learns nothing; with
random CLIP weights the demo's vision features have a mean pairwise cosine of 0.996 (the pretrained demo CLIP's:
0.66). prompts.py checks each cache it writes, train.py the caches it trains on. Not a paper concept.
"""
import numpy as np

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
