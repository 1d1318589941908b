"""Visible checks of exercise 11 (skeleton_gru.SkeletonGRU.features): the bidirectional GRU's feature f(X), for both
settings of stepping ("sequence" and "frame"). A student runs them with `python tools/exercises.py check 11`."""
from functools import lru_cache

import pytest
import torch

from skeleton_gru import SkeletonGRU


@lru_cache(maxsize=None)
def gru(stepping):
    """The quarter GRU (hidden 256), built once per setting: the checks only read it."""
    torch.manual_seed(0)
    return SkeletonGRU(size="quarter", stepping=stepping).double().eval().requires_grad_(False)


def skeletons(T, persons=2, seed=1):
    return torch.randn(2, 3, T, 25, persons, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("stepping", ["sequence", "frame"])
def test_f_X_is_N_by_2_hidden(stepping):
    f = gru(stepping).features(skeletons(T=4))
    assert tuple(f.shape) == (2, 512), f"f(X) is both directions' state side by side: (N, 2 * hidden) = (2, 512) " \
                                       f"for the quarter GRU (stepping={stepping!r}); got {tuple(f.shape)}"


def test_the_frame_vector_u_t_is_ordered_joint_coordinate_person():
    model, seen = SkeletonGRU(size="quarter").double(), {}
    model.encoder.gru.register_forward_hook(lambda module, inputs, output: seen.update(u=inputs[0]))
    x = torch.zeros(1, 3, 2, 25, 2, dtype=torch.float64)
    x[0, 2, 1, 7, 0] = 1.0  # coordinate z (c = 2) of joint 7, person 0, frame 1
    model.features(x)
    assert "u" in seen, "features must run self.encoder.gru on the frame vectors u_t"
    u = seen["u"]
    assert tuple(u.shape[-1:]) == (150,), f"u_t is one vector of 25 joints x 3 coordinates x 2 persons = 150 " \
                                          f"numbers; the GRU got {tuple(u.shape)}"
    hot = u.reshape(-1, 150).nonzero().tolist()
    assert hot == [[1, 7 * 6 + 2 * 2 + 0]], \
        f"u_t is ordered (joint v, coordinate c, person m), m fastest: x[c=2, t=1, v=7, m=0] must be entry " \
        f"v * 6 + c * 2 + m = 46 of frame 1's vector (batch_first: (N, T, 150)); it is at (frame, entry) {hot}"


def test_a_one_person_input_is_the_two_person_layout_with_an_empty_second_person():
    x = skeletons(T=3, persons=1)
    padded = torch.cat([x, torch.zeros_like(x)], dim=4)
    model = gru("sequence")
    assert torch.allclose(model.features(x), model.features(padded)), \
        "a one-person input (M = 1) takes the 2-person layout with zeros for the second person"


@pytest.mark.parametrize("stepping", ["sequence", "frame"])
def test_f_X_is_the_last_layers_state(stepping):
    model = SkeletonGRU(size="quarter", stepping=stepping).double().eval().requires_grad_(False)
    for name, weight in model.encoder.gru.named_parameters():
        if "_l2" in name:  # the third, last layer: all its weights and biases 0
            weight.zero_()
    f = model.features(skeletons(T=3))
    assert float(f.abs().max()) == 0, \
        f"f(X) is the last (third) layer's state: with that layer's weights all 0 its gates are 1/2 and n_t = 0, so " \
        f"h_t = h_(t-1) / 2 = 0 from h_0 = 0 and f(X) must be 0 (stepping={stepping!r}); got max |f| = " \
        f"{float(f.abs().max()):.3f}"


def test_one_frame_gives_the_same_feature_in_both_settings():
    x = skeletons(T=1)
    whole, stepped = gru("sequence").features(x), gru("frame").features(x)
    assert torch.allclose(whole, stepped, atol=1e-12), \
        "with one frame both settings run each layer and direction once from h_0 = 0: stepping 'frame' and " \
        "'sequence' must give the same f(X)"


def test_frame_stepping_is_iscs_stepping_not_the_whole_sequence_pass():
    x = skeletons(T=4)
    whole, stepped = gru("sequence").features(x), gru("frame").features(x)
    assert not torch.allclose(whole, stepped, atol=1e-6), \
        "stepping 'frame' is ISC's stepping: the GRU reads one frame at a time carrying its state (every layer " \
        "and direction), so the 'backward' direction also reads forward in time, and f(X) is the GRU's output at " \
        "the last frame; it must differ from the whole-sequence pass (stepping 'sequence') on 4 frames"
