"""The Transformer encoder (docs/method.md §8): attention as an explicit loop over heads, the whole feature by an
independent computation, MAMP's key names, widths, frames."""
import math

import numpy as np
import pytest
import torch

from encoders import build_encoder
from skeleton_transformer import SkeletonTransformer
from utils.checkpoints import CheckpointMismatchError


def np64(t):
    return t.detach().double().numpy()


def attention_by_heads(u, qkv_w, qkv_b, proj_w, proj_b, heads):
    """Attn(u) = [softmax(Q_h K_h^T / sqrt(d)) V_h]_h W_o + b_o, one head at a time, softmax written out. u (n, D)."""
    n, D = u.shape
    d = D // heads
    Q, K, V = np.split(u @ qkv_w.T + qkv_b, 3, axis=1)  # (n, D) each; head h is columns h*d .. (h+1)*d
    out = []
    for h in range(heads):
        q, k, v = (M[:, h * d:(h + 1) * d] for M in (Q, K, V))
        scores = q @ k.T / math.sqrt(d)  # (n, n)
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
        out.append((weights / weights.sum(axis=1, keepdims=True)) @ v)  # (n, d)
    return np.concatenate(out, axis=1) @ proj_w.T + proj_b


def layer_norm(u, w, b, eps=1e-5):
    mean, var = u.mean(axis=-1, keepdims=True), u.var(axis=-1, keepdims=True)
    return (u - mean) / np.sqrt(var + eps) * w + b


def gelu(a):
    return 0.5 * a * (1 + np.vectorize(math.erf)(a / math.sqrt(2)))


def test_attention_equals_softmax_qk_over_sqrt_d_times_v_looped_over_heads():
    torch.manual_seed(0)
    model = SkeletonTransformer(size="quarter", frames=8).double()
    attn = model.blocks[0].attn
    u = torch.randn(1, 50, 64, dtype=torch.float64)
    expected = attention_by_heads(np64(u[0]), np64(attn.qkv.weight), np64(attn.qkv.bias), np64(attn.proj.weight),
                                  np64(attn.proj.bias), heads=4)
    np.testing.assert_allclose(np64(attn(u)[0]), expected, rtol=1e-9, atol=1e-10)


def test_the_feature_equals_tokens_pre_norm_blocks_and_the_mean_over_persons_patches_joints():
    torch.manual_seed(0)
    model = SkeletonTransformer(size="quarter", frames=8).double().eval()
    x = torch.randn(1, 3, 8, 25, 2, dtype=torch.float64)  # 8 frames: 2 patches of 4
    p = {k: np64(v) for k, v in model.state_dict().items()}
    persons = []
    for m in range(2):
        xm = np64(x[0, :, :, :, m])  # (C, T, V)
        # e[patch, v] = W_e x[:, 4 patch:4 patch + 4, v] + b_e + E_t[patch] + E_v[v]
        W = p["joints_embed.proj.weight"][:, :, :, 0]  # (D, C, 4)
        tokens = np.stack([np.einsum("dck,ck->d", W, xm[:, 4 * patch:4 * patch + 4, v]) + p["joints_embed.proj.bias"]
                           + p["temp_embed"][0, patch, 0] + p["pos_embed"][0, 0, v]
                           for patch in range(2) for v in range(25)])  # (50, D), patch-major
        h = tokens
        for i in range(8):
            b = f"blocks.{i}."
            h = h + attention_by_heads(layer_norm(h, p[b + "norm1.weight"], p[b + "norm1.bias"]),
                                       p[b + "attn.qkv.weight"], p[b + "attn.qkv.bias"], p[b + "attn.proj.weight"],
                                       p[b + "attn.proj.bias"], heads=4)
            a = layer_norm(h, p[b + "norm2.weight"], p[b + "norm2.bias"])
            h = h + gelu(a @ p[b + "mlp.fc1.weight"].T + p[b + "mlp.fc1.bias"]) @ p[b + "mlp.fc2.weight"].T \
                + p[b + "mlp.fc2.bias"]
        persons.append(layer_norm(h, p["norm.weight"], p["norm.bias"]))
    expected = np.concatenate(persons).mean(axis=0)  # the mean over persons, patches and joints
    with torch.no_grad():
        np.testing.assert_allclose(np64(model(x)[0]), expected, rtol=1e-8, atol=1e-9)


def mamp_shapes(num_class=60, dim=256, depth=8, frames=120):
    """MAMP's Transformer state dict (model/transformer.py, protocol linprobe), written out."""
    shapes = {"joints_embed.proj.weight": (dim, 3, 4, 1), "joints_embed.proj.bias": (dim,),
              "temp_embed": (1, frames // 4, 1, dim), "pos_embed": (1, 1, 25, dim),
              "norm.weight": (dim,), "norm.bias": (dim,), "head.fc.weight": (num_class, dim), "head.fc.bias": (num_class,)}
    for i in range(depth):
        for name, shape in (("norm1.weight", (dim,)), ("norm1.bias", (dim,)), ("attn.qkv.weight", (3 * dim, dim)),
                            ("attn.qkv.bias", (3 * dim,)), ("attn.proj.weight", (dim, dim)), ("attn.proj.bias", (dim,)),
                            ("norm2.weight", (dim,)), ("norm2.bias", (dim,)), ("mlp.fc1.weight", (4 * dim, dim)),
                            ("mlp.fc1.bias", (4 * dim,)), ("mlp.fc2.weight", (dim, 4 * dim)), ("mlp.fc2.bias", (dim,))):
            shapes[f"blocks.{i}.{name}"] = shape
    return shapes


def test_state_dict_keys_and_shapes_are_mamps_and_its_weights_load_strictly():
    model = SkeletonTransformer(num_class=60, size="standard", frames=120)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == mamp_shapes()
    g = torch.Generator().manual_seed(0)
    released = {k: torch.randn(shape, generator=g) * 0.02 for k, shape in mamp_shapes().items()}
    released.update({"mask_token": torch.zeros(1, 1, 256), "decoder_embed.weight": torch.zeros(256, 256)})  # MAMP's
    encoder = build_encoder({"model": released})  # pretraining checkpoint: its decoder is not part of the encoder
    assert (encoder.size, encoder.feature_dim, encoder.head, encoder.temp_embed.shape[1]) == ("standard", 256, None, 30)
    assert torch.equal(encoder.state_dict()["blocks.7.mlp.fc2.weight"], released["blocks.7.mlp.fc2.weight"])


def test_a_transformer_checkpoint_that_does_not_match_names_the_keys_and_the_frames_are_checked():
    state = SkeletonTransformer(size="quarter", frames=24).state_dict()
    del state["blocks.3.attn.qkv.bias"]
    with pytest.raises(CheckpointMismatchError, match=r"missing keys: blocks.3.attn.qkv.bias"):
        SkeletonTransformer.from_state(state)
    model = SkeletonTransformer(size="quarter", frames=24)
    with pytest.raises(ValueError, match="built for 24 frames, the input has 32"):
        model(torch.randn(1, 3, 32, 25, 2))


def test_frames_that_are_not_whole_4_frame_patches_are_refused_naming_frames_where_they_are_set():
    """No frame is dropped silently: T mod 4 != 0 is a ValueError naming --frames, in the encoder, in
    encoders.make_encoder and in train.py's settings; the real preset gives the Transformer MAMP's 120 frames."""
    import train
    from encoders import make_encoder
    for build in (lambda: SkeletonTransformer(size="quarter", frames=50),
                  lambda: make_encoder("transformer", "quarter", 50)):
        with pytest.raises(ValueError, match="--frames 50: the Transformer reads 4-frame patches"):
            build()
    with pytest.raises(ValueError, match="--frames 22: .* the last 2 would fall outside every token"):
        SkeletonTransformer(size="quarter", frames=24)(torch.randn(1, 3, 22, 25, 2))
    with pytest.raises(SystemExit):
        train.parse_args(["--dataset", "ntu60", "--encoder", "transformer", "--frames", "50"])
    assert train.parse_args(["--dataset", "ntu60", "--encoder", "transformer"])[0].frames == 120
    assert train.parse_args(["--dataset", "ntu60"])[0].frames == 50  # ST-GCN and the GRU read any T
    assert train.parse_args(["--encoder", "transformer"])[0].frames == 24  # the demo's: 6 patches


@pytest.mark.parametrize("size, dim", [("standard", 256), ("quarter", 64)])
@pytest.mark.parametrize("persons", [1, 2])
def test_output_shapes_of_both_widths(size, dim, persons):
    model = SkeletonTransformer(size=size, frames=16).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 16, 25, persons)).shape == (2, dim)
        assert model(torch.randn(2, 3, 12, 25, persons)).shape == (2, dim)  # shorter: the first patches' rows
        classifier = SkeletonTransformer(num_class=15, size=size, frames=16).eval()
        assert classifier(torch.randn(2, 3, 16, 25, persons)).shape == (2, 15)
