"""A skeleton Transformer encoder: the attention encoder of the paper's encoder comparison (docs/method.md §8).

The skeleton Transformer the field reuses most is MAMP's (Mao et al., ICCV 2023; also the encoder of later masked
and predictive skeleton pretraining): each person's skeleton becomes one token per joint and 4-frame patch, with a
learned temporal and a learned joint embedding, and pre-norm Transformer blocks attend over all tokens of the person
at once. This file builds it with MAMP's parameter names (`joints_embed.proj`, `temp_embed`, `pos_embed`,
`blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`, `norm`, the classifier `head.fc`), so its released
weights load strictly:

    tokens     e[p, v] = W_e x[:, 4 p : 4 p + 4, v] + b_e + E_t[p] + E_v[v]  patch p, joint v, per person: (T/4 * 25, D)
    block      h <- h + Attn(LN_1(h));   h <- h + MLP(LN_2(h))                                  pre-norm, L blocks
    attention  Attn(u) = [softmax(Q_1 K_1^T / sqrt(d)) V_1, ..., softmax(Q_H K_H^T / sqrt(d)) V_H] W_o + b_o
               [Q, K, V] = u W_qkv + b_qkv: queries, keys and values, split into H heads of d = D / H dimensions
               (V_h are head h's values; V alone is the joint count of (N, C, T, V, M), as everywhere)
    MLP        MLP(u) = W_2 GELU(W_1 u + b_1) + b_2,  hidden 4 D
    f(X)       = the mean of LN(h) over the persons, the patches and the joints                  (D,)

D is the token width here (not CLIP's D of docs/method.md §2). Two widths, like ST-GCN's: "standard" (D = 256, 8
blocks, 8 heads: MAMP's; 6.3 M parameters) and "quarter" (D = 64, 8 blocks, 4 heads; 0.4 M parameters). The temporal
embedding has one row per 4-frame patch of the T frames the encoder is built for, and a shorter input uses its first
rows. T must be a multiple of 4, as in MAMP (T = 120): frames past the last whole patch would fall outside every
token, so check_patches refuses them, naming --frames (train.py's real preset gives the Transformer MAMP's 120; the
demo's 24 are 6 patches).
Not here: ST-GCN (skeleton_gcn.py), the GRU (skeleton_gru.py), checkpoint files (utils/checkpoints.py).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.checkpoints import feature_extractor, size_by_width

NUM_JOINTS, PATCH_FRAMES = 25, 4
SIZES = {"standard": (256, 8, 8), "quarter": (64, 8, 4)}  # D, blocks L, heads H


class Attention(nn.Module):
    """Multi-head self-attention over the tokens: (B, n, D) -> (B, n, D)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, u):
        B, n, D = u.shape
        q, k, v = self.qkv(u).view(B, n, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # (B, H, n, d) each
        attended = F.scaled_dot_product_attention(q, k, v)  # softmax(Q K^T / sqrt(d)) V per head, (B, H, n, d)
        return self.proj(attended.transpose(1, 2).reshape(B, n, D))  # heads side by side, then W_o


class MLP(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, u):
        return self.fc2(F.gelu(self.fc1(u)))


class Block(nn.Module):
    """h <- h + Attn(LN_1(h)); h <- h + MLP(LN_2(h))."""

    def __init__(self, dim, heads, mlp_ratio=4):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), MLP(dim, mlp_ratio * dim)

    def forward(self, h):
        h = h + self.attn(self.norm1(h))
        return h + self.mlp(self.norm2(h))


class JointsEmbed(nn.Module):
    """MAMP's SkeleEmbed: one token per joint and 4-frame patch, W_e x + b_e as a Conv2d with kernel = stride = (4, 1)."""

    def __init__(self, dim):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=(PATCH_FRAMES, 1), stride=(PATCH_FRAMES, 1))

    def forward(self, x):  # (B, C, T, V) -> (B, T/4, V, D)
        return self.proj(x).permute(0, 2, 3, 1)


class LinearHead(nn.Module):
    """MAMP's linear-probe head (kept for its key names `head.fc`): the classifier on f(X)."""

    def __init__(self, dim, num_class):
        super().__init__()
        self.fc = nn.Linear(dim, num_class)

    def forward(self, feature):
        return self.fc(feature)


def check_patches(T, built=None):
    """T frames as whole 4-frame patches, no more than the `built` frames E_t has rows for; else a ValueError."""
    if T % PATCH_FRAMES:
        raise ValueError(f"--frames {T}: the Transformer reads {PATCH_FRAMES}-frame patches, so T must be a multiple "
                         f"of {PATCH_FRAMES} (MAMP's: 120); the last {T % PATCH_FRAMES} would fall outside every token")
    if built is not None and T > built:
        raise ValueError(f"this Transformer was built for {built} frames, the input has {T}: evaluate with the "
                         f"frames it was trained on (--frames)")


class SkeletonTransformer(nn.Module):
    """Transformer on (N, C, T, V, M) skeletons: logits (N, num_class), or f(X) (N, D) if num_class is None."""

    def __init__(self, num_class=None, size="standard", frames=120):
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"unknown Transformer size {size!r}: use one of {sorted(SIZES)}")
        check_patches(frames)
        dim, depth, heads = SIZES[size]
        self.num_class, self.size, self.feature_dim, self.frames = num_class, size, dim, frames
        self.joints_embed = JointsEmbed(dim)
        self.temp_embed = nn.Parameter(torch.zeros(1, frames // PATCH_FRAMES, 1, dim))  # E_t, one row per patch
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, NUM_JOINTS, dim))  # E_v, one row per joint
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = LinearHead(dim, num_class) if num_class else None
        # MAMP's initialisation: Xavier-uniform linear layers with zero biases, truncated-normal embeddings (0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.temp_embed, std=0.02, a=-2.0, b=2.0)
        nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-2.0, b=2.0)

    def features(self, x):
        """x (N, C, T, V, M) -> f(X) (N, D)."""
        N, C, T, V, M = x.shape
        check_patches(T, self.frames)
        x = x.permute(0, 4, 1, 2, 3).reshape(N * M, C, T, V)  # each person on its own: (N*M, C, T, V)
        e = self.joints_embed(x)  # (N*M, T/4, V, D)
        patches = e.shape[1]
        h = (e + self.temp_embed[:, :patches] + self.pos_embed).reshape(N * M, patches * V, -1)  # (N*M, n, D)
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)  # (N*M, n, D)
        return h.view(N, M * patches * V, -1).mean(dim=1)  # mean over persons, patches and joints: (N, D)

    def forward(self, x):
        feature = self.features(x)  # (N, D)
        return feature if self.head is None else self.head(feature)

    @classmethod
    def from_state(cls, state, source="the checkpoint", size="auto"):
        """f from a MAMP-style state dict (already unwrapped: utils.checkpoints.encoder_part), loaded strictly: the
        width is read from the token embedding, the frames from the temporal embedding; a classifier `head.fc` is
        dropped after its strict load, and so is the decoder of a MAMP pretraining checkpoint."""
        # MAMP's pretraining checkpoints also hold its decoder (decoder_*, mask_token), which no encoder uses
        state = {k: v for k, v in state.items() if not k.startswith(("decoder_", "mask_token"))}
        if size == "auto":  # D: the token embedding is (D, 3, 4, 1)
            widths = {name: dim for name, (dim, _, _) in SIZES.items()}
            size = size_by_width(state, "joints_embed.proj.weight", 0, widths, "Transformer", source)
        temporal = state.get("temp_embed")  # (1, T / 4, 1, D)
        frames = PATCH_FRAMES * int(temporal.shape[1]) if temporal is not None else 120
        return feature_extractor(lambda num_class: cls(num_class, size, frames), state, source, "head.fc.weight",
                                 "head")
