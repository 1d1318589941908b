"""The prompt health check: nearly identical prompt features are named, healthy ones pass quietly."""
import numpy as np

from utils.diagnostics import NEARLY_IDENTICAL, mean_pairwise_cosine, prompt_health


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_mean_pairwise_cosine_is_the_mean_over_distinct_pairs():
    f = unit(np.random.default_rng(0).normal(size=(7, 5)))
    cosines = [f[i] @ f[j] for i in range(7) for j in range(7) if i != j]
    assert np.isclose(mean_pairwise_cosine(f), np.mean(cosines))
    K = unit(np.random.default_rng(1).normal(size=(7, 3, 5)))  # (N, K, D): the K prompt frames are averaged first
    assert np.isclose(mean_pairwise_cosine(K), mean_pairwise_cosine(K.mean(axis=1)))


def test_health_check_fires_on_nearly_identical_features_and_stays_quiet_on_spread_ones():
    rng = np.random.default_rng(0)
    # Like the demo's random CLIP on person crops: one direction plus a little noise (mean cosine 0.996 there).
    collapsed = unit(np.ones((500, 64)) + 0.05 * rng.normal(size=(500, 64))).astype(np.float16)
    spread = unit(rng.normal(size=(500, 64))).astype(np.float16)
    assert mean_pairwise_cosine(collapsed) > NEARLY_IDENTICAL > mean_pairwise_cosine(spread)
    warnings = prompt_health({"vision": collapsed, "language": spread})
    assert len(warnings) == 1 and "vision prompt features are nearly identical" in warnings[0]
    assert prompt_health({"language": spread}) == []
