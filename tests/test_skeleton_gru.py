"""The GRU encoder (docs/method.md §8): the cell equations computed by hand, ISC's input order and key names, widths."""
import numpy as np
import pytest
import torch

from encoders import build_encoder
from skeleton_gru import SkeletonGRU
from utils.checkpoints import CheckpointMismatchError


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def gru_direction(u, W_ih, W_hh, b_ih, b_hh, reverse=False):
    """One layer, one direction of a GRU by its cell equations (gates r, z, n in PyTorch's row order):
    u (T, in) -> every state h_t (T, hidden), in time order."""
    hidden = W_hh.shape[1]
    h, states = np.zeros(hidden), {}
    for t in (range(len(u) - 1, -1, -1) if reverse else range(len(u))):
        gi, gh = W_ih @ u[t] + b_ih, W_hh @ h + b_hh  # (3 * hidden,) each
        r = sigmoid(gi[:hidden] + gh[:hidden])
        z = sigmoid(gi[hidden:2 * hidden] + gh[hidden:2 * hidden])
        n = np.tanh(gi[2 * hidden:] + r * gh[2 * hidden:])
        h = (1 - z) * n + z * h
        states[t] = h
    return np.stack([states[t] for t in range(len(u))])


def reference_feature(model, x, backward_reads_backward=True):
    """f(X) of one sample x (C, T, V, M) by hand: u_t in ISC's order (v, c, m), 3 layers, both directions; the last
    layer's forward state at T and backward state at 1 (or, ISC's stepping, both directions forward, at T)."""
    p = {k: v.detach().numpy() for k, v in model.encoder.gru.named_parameters()}
    C, T, V, M = x.shape
    u = np.stack([np.array([x[c, t, v, m] for v in range(V) for c in range(C) for m in range(M)]) for t in range(T)])
    for layer in range(3):
        forward = gru_direction(u, *(p[f"{w}_l{layer}"] for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        backward = gru_direction(u, *(p[f"{w}_l{layer}_reverse"] for w in ("weight_ih", "weight_hh", "bias_ih",
                                                                             "bias_hh")),
                                 reverse=backward_reads_backward)
        u = np.concatenate([forward, backward], axis=1)  # (T, 2 * hidden): the next layer's input
    hidden = forward.shape[1]
    if backward_reads_backward:
        return np.concatenate([u[-1, :hidden], u[0, hidden:]])  # [h_T^fwd ; h_1^bwd]
    return u[-1]


@pytest.mark.parametrize("stepping", ["sequence", "frame"])
def test_gru_feature_is_both_directions_final_state_by_the_cell_equations(stepping):
    torch.manual_seed(0)
    model = SkeletonGRU(size="quarter", stepping=stepping).double().eval()
    x = torch.randn(2, 3, 4, 25, 2, dtype=torch.float64)
    with torch.no_grad():
        got = model(x).numpy()  # (2, 512)
    for i in range(2):
        expected = reference_feature(model, x[i].numpy(), backward_reads_backward=stepping == "sequence")
        np.testing.assert_allclose(got[i], expected, rtol=1e-9, atol=1e-10)


def test_the_frame_vector_is_ordered_joint_coordinate_person_as_in_isc():
    """ISC reshapes (T, V, C, M) to (T, 150): one changed coordinate moves exactly input column v * 6 + c * 2 + m."""
    model = SkeletonGRU(size="quarter")
    seen = {}
    model.encoder.gru.register_forward_hook(lambda module, inputs, output: seen.update(u=inputs[0]))
    x = torch.zeros(1, 3, 2, 25, 2)
    x[0, 1, 0, 2, 1] = 1.0  # coordinate y of joint 2 of person 1, frame 0
    model(x)
    assert seen["u"].shape == (1, 2, 150) and seen["u"][0, 0].nonzero().flatten().tolist() == [2 * 6 + 1 * 2 + 1]


def isc_bigru_shapes(num_class=60, hidden=1024, layers=3):
    """ISC's BIGRU state dict (moco/GRU.py: EncoderRNN `encoder.gru`, bidirectional nn.GRU, and `fc`), written out."""
    shapes = {}
    for layer in range(layers):
        for suffix in ("", "_reverse"):
            inputs = 150 if layer == 0 else 2 * hidden
            shapes[f"encoder.gru.weight_ih_l{layer}{suffix}"] = (3 * hidden, inputs)
            shapes[f"encoder.gru.weight_hh_l{layer}{suffix}"] = (3 * hidden, hidden)
            shapes[f"encoder.gru.bias_ih_l{layer}{suffix}"] = (3 * hidden,)
            shapes[f"encoder.gru.bias_hh_l{layer}{suffix}"] = (3 * hidden,)
    shapes.update({"fc.weight": (num_class, 2 * hidden), "fc.bias": (num_class,)})
    return shapes


def test_state_dict_keys_and_shapes_are_iscs_and_its_weights_load_strictly():
    assert {k: tuple(v.shape) for k, v in SkeletonGRU(num_class=60).state_dict().items()} == isc_bigru_shapes()
    g = torch.Generator().manual_seed(0)
    released = {k: torch.randn(shape, generator=g) * 0.01 for k, shape in isc_bigru_shapes().items()}
    encoder = SkeletonGRU.from_state(released)
    assert encoder.size == "standard" and encoder.fc is None and encoder.feature_dim == 2048
    assert torch.equal(encoder.state_dict()["encoder.gru.weight_hh_l2_reverse"],
                       released["encoder.gru.weight_hh_l2_reverse"])
    # ISC's MoCo checkpoint: encoder_q.* (its fc the projection head, dropped), encoder_k.* and the queue ignored
    moco = {f"encoder_q.{k}": v for k, v in released.items() if not k.startswith("fc.")}
    moco.update({"encoder_q.fc.weight": torch.zeros(128, 2048), "encoder_k.fc.bias": torch.zeros(128),
                 "queue": torch.zeros(128, 16)})
    assert build_encoder({"state_dict": moco}).feature_dim == 2048


def test_a_gru_checkpoint_that_does_not_match_names_the_keys():
    state = SkeletonGRU(size="quarter").state_dict()
    del state["encoder.gru.bias_hh_l1"]
    with pytest.raises(CheckpointMismatchError, match=r"missing keys: encoder.gru.bias_hh_l1"):
        SkeletonGRU.from_state(state)
    odd = {k: v for k, v in state.items()}
    odd["encoder.gru.weight_hh_l0"] = torch.zeros(3 * 100, 100)
    with pytest.raises(CheckpointMismatchError, match="encoder.gru.weight_hh_l0 has width 100 .expected 1024 .standard. or 256 .quarter.."):
        SkeletonGRU.from_state(odd)


@pytest.mark.parametrize("size, dim", [("standard", 2048), ("quarter", 512)])
@pytest.mark.parametrize("persons", [1, 2])
def test_output_shapes_of_both_widths(size, dim, persons):
    model = SkeletonGRU(size=size).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 5, 25, persons)).shape == (2, dim)
        assert SkeletonGRU(num_class=15, size=size).eval()(torch.randn(2, 3, 5, 25, persons)).shape == (2, 15)


def isc_weights(hidden=256, seed=0):
    """A BIGRU state dict with ISC's names and random weights, as its released checkpoints hold them."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=g) * 0.05 for k, shape in isc_bigru_shapes(hidden=hidden).items()}


def feature_of(encoder, x):
    with torch.no_grad():
        return encoder.eval()(x)


def test_iscs_weights_load_with_iscs_frame_stepping_and_the_whole_sequence_pass_is_another_function(tmp_path):
    released, x = isc_weights(), torch.randn(2, 3, 6, 25, 2, generator=torch.Generator().manual_seed(1))
    isc = SkeletonGRU(num_class=60, size="quarter", stepping="frame")
    isc.load_state_dict(released)
    isc.fc = None  # ISC's feature: the state after frame T, stepped as ISC steps it
    torch.save({"state_dict": released}, tmp_path / "isc_bigru.pt")  # a released file: no run beside it
    for loaded in (build_encoder(released), build_encoder(tmp_path / "isc_bigru.pt"), SkeletonGRU.from_state(released)):
        assert loaded.stepping == "frame"
        torch.testing.assert_close(feature_of(loaded, x), feature_of(isc, x), rtol=0, atol=0)
    whole = build_encoder(released, gru_stepping="sequence")  # the flag overrides
    assert whole.stepping == "sequence" and not torch.allclose(feature_of(whole, x), feature_of(isc, x), atol=1e-3)


@pytest.mark.parametrize("recorded, flag, expected", [("sequence", None, "sequence"), ("frame", None, "frame"),
                                                      (None, None, "sequence"), ("sequence", "frame", "frame")])
def test_a_runs_stepping_travels_in_heads_pt_and_the_flag_overrides_it(tmp_path, recorded, flag, expected):
    """heads.pt of train.py records --gru_stepping; one without it (a run from before the setting) trained the
    whole-sequence pass; build_encoder's gru_stepping (evaluate.py --gru_stepping) overrides either."""
    torch.save(SkeletonGRU(size="quarter").state_dict(), tmp_path / "encoder.pt")
    heads = {"encoder": "gru", "size": "quarter", "frames": 16}
    torch.save(heads if recorded is None else dict(heads, gru_stepping=recorded), tmp_path / "heads.pt")
    assert build_encoder(tmp_path / "encoder.pt", gru_stepping=flag).stepping == expected
