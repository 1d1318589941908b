"""Visible checks of exercise 10 (skeleton_transformer.Attention.forward): multi-head self-attention over the tokens.
A student runs them with `python tools/exercises.py check 10`."""
import math

import torch
from paper_assertions import assert_close

from skeleton_transformer import Attention

D, HEADS = 16, 4


def attention(seed=0):
    torch.manual_seed(seed)
    return Attention(D, HEADS).double().requires_grad_(False)


def tokens(seed=1, batch=2, n=6):
    return torch.randn(batch, n, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_attention_maps_B_n_D_to_B_n_D():
    y = attention()(tokens())
    assert tuple(y.shape) == (2, 6, D), f"Attn maps the tokens (B, n, D) = (2, 6, {D}) to (B, n, D); got " \
                                        f"{tuple(y.shape)}"


def test_one_token_attends_only_to_itself_so_attn_is_W_o_V():
    attn, u = attention(), tokens(n=1)
    V = attn.qkv(u)[..., 2 * D:]  # qkv(u) holds Q, K and V side by side, D columns each
    assert_close(attn(u), attn.proj(V), "with one token each head's softmax(Q K^T / sqrt(d)) is 1, so Attn(u) = "
                                        "W_o V + b_o, V being the last D outputs of qkv(u) (Q, K, V side by side)")


def test_two_tokens_by_hand_with_q_k_v_equal_to_the_tokens():
    attn = Attention(4, 1).double().requires_grad_(False)
    attn.qkv.weight.copy_(torch.eye(4, dtype=torch.float64).repeat(3, 1))  # Q = K = V = u
    attn.qkv.bias.zero_()
    attn.proj.weight.copy_(torch.eye(4, dtype=torch.float64))  # W_o = I, b_o = 0
    attn.proj.bias.zero_()
    u = torch.tensor([[[2.0, 0, 0, 0], [0, 2.0, 0, 0]]], dtype=torch.float64)
    w = math.exp(2) / (math.exp(2) + 1)  # softmax([u_0 . u_0, u_0 . u_1] / sqrt(4)) = softmax([2, 0])
    expected = torch.tensor([[[2 * w, 2 * (1 - w), 0, 0], [2 * (1 - w), 2 * w, 0, 0]]], dtype=torch.float64)
    assert_close(attn(u), expected, "one head, Q = K = V = u = (2 e_0, 2 e_1), W_o = I: token 0 attends with "
                                    "softmax(Q K^T / sqrt(d)) = softmax([4, 0] / sqrt(4)) = (0.881, 0.119), so its "
                                    "output is (1.762, 0.238, 0, 0)")


def test_attention_is_equivariant_to_the_order_of_the_tokens():
    attn, u = attention(), tokens()
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    assert_close(attn(u[:, order]), attn(u)[:, order], "self-attention has no notion of position: permuting the "
                                                       "tokens must permute the outputs the same way", atol=1e-9)


def test_the_samples_of_a_batch_do_not_attend_to_each_other():
    attn, u = attention(), tokens()
    assert_close(attn(u)[1], attn(u[1:])[0], "attention runs within each sample: sample 1's output must not depend "
                                             "on sample 0's tokens", atol=1e-9)


def test_the_heads_each_attend_with_their_own_weights():
    attn, u = attention(), tokens(n=4)
    one_head = Attention(D, 1).double().requires_grad_(False)
    one_head.load_state_dict(attn.state_dict())
    assert float((attn(u) - one_head(u)).abs().max()) > 1e-6, \
        f"Attn splits D = {D} into H = {HEADS} heads of d = D / H = {D // HEADS}, each with its own " \
        f"softmax(Q_h K_h^T / sqrt(d)): with the same weights, 4 heads must give another result than 1 head"
