"""Visible checks of exercise 6 (prompts.pool_prompts): P1, pooling the K prompt features of a sample into one unit
row. A student runs them with `python tools/exercises.py check 6`."""
import torch
import torch.nn.functional as F
from paper_assertions import assert_close

from prompts import pool_prompts

B, K, D = 3, 5, 8


def features(seed):
    """(B, K, D) prompt features of different lengths, as a CLIP encoder returns them before P1."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, K, D, generator=g) * torch.rand(B, K, 1, generator=g).mul(5).add(0.5)


def test_a_mean_cache_B_by_D_comes_back_as_unit_rows():
    pooled = pool_prompts(3 * torch.randn(B, D), "mean")
    assert tuple(pooled.shape) == (B, D), f"(B, D) features are already pooled: P1 returns them (B, D); got " \
                                          f"{tuple(pooled.shape)}"
    assert_close(pooled.norm(dim=1), torch.ones(B), "P_m has unit rows: every pooled row must have norm 1")


def test_mean_pooling_normalises_each_feature_before_the_mean():
    f = torch.zeros(1, 2, D)
    f[0, 0, 0], f[0, 1, 1] = 10.0, 1.0  # two prompt frames: 10 e_0 and e_1
    expected = torch.zeros(1, D)
    expected[0, :2] = 2 ** -0.5
    assert_close(pool_prompts(f, "mean"), expected,
                 "P1 'mean' is normalize(mean_k normalize(f_k)): the features 10 e_0 and e_1 count alike and pool to "
                 "(0.71, 0.71, 0, ...)")


def test_mean_pooling_gives_B_unit_rows_in_float32():
    pooled = pool_prompts(features(0).half(), "mean")
    assert tuple(pooled.shape) == (B, D), f"(B, K, D) -> (B, D); got {tuple(pooled.shape)}"
    assert pooled.dtype == torch.float32, f"caches are float16: P1 returns float32 rows; got {pooled.dtype}"
    assert_close(pooled.norm(dim=1), torch.ones(B), "every pooled row must have norm 1", atol=1e-5)


def test_sample_pooling_returns_one_of_each_samples_K_unit_features():
    f = features(1)
    drawn = pool_prompts(f, "sample", generator=torch.Generator().manual_seed(0))
    assert tuple(drawn.shape) == (B, D), f"'sample' draws one of the K frames per sample: (B, D); got " \
                                         f"{tuple(drawn.shape)}"
    units = F.normalize(f, dim=-1)
    for i in range(B):
        distance = min(float((drawn[i] - units[i, k]).abs().max()) for k in range(K))
        assert distance < 1e-6, f"row {i} of a 'sample' pooling must be one of sample {i}'s own K features, " \
                                f"normalised; it is {distance:.3f} away from each"


def test_sample_pooling_under_torchrun_draws_what_one_process_would():
    f = features(2).repeat(2, 1, 1)  # a global batch of 2 B rows, as two processes of B rows each see it
    whole = pool_prompts(f, "sample", generator=torch.Generator().manual_seed(3))
    for rank in range(2):
        rows = slice(rank * B, (rank + 1) * B)
        part = pool_prompts(f[rows], "sample", generator=torch.Generator().manual_seed(3), global_batch=2 * B,
                            offset=rank * B)
        assert_close(part, whole[rows], f"process {rank} of 2 (offset {rank * B}) draws for the whole global batch "
                                        f"of {2 * B} and keeps its rows: they must equal rows {rank * B}.."
                                        f"{(rank + 1) * B - 1} of one process's draw with the same generator")


def test_an_unknown_pooling_or_shape_is_refused():
    for args in ((features(4), "median"), (torch.randn(B, K, D, 2), "mean")):
        try:
            pool_prompts(*args)
        except ValueError:
            continue
        raise AssertionError(f"pool_prompts must raise ValueError for pooling {args[1]!r} of shape "
                             f"{tuple(args[0].shape)}: only 'mean' and 'sample' of (B, D) or (B, K, D)")
