"""ST-GCN, the skeleton encoder f that C2VL trains (docs/method.md §8; Yan et al., AAAI 2018).

C2VL distils vision-language knowledge into a plain ST-GCN and evaluates the 256-d feature f(x) it pools. This file
builds that network exactly as the field's reference code does, so that published NTU checkpoints load with
strict=True and numbers stay comparable (docs/conventions.md §4):

    (G2)  A_k = the spatial partition k of the column-normalised adjacency A D^-1 of the Kinect skeleton   (Graph)
              (A: the joint links with self-links; D: the diagonal of A's column sums, the degrees)
              k = 0: the joint itself; k = 1: neighbours at least as far from the centre (SpineShoulder) as the
              joint; k = 2: neighbours closer to the centre. Distances are capped at one hop, as in the reference.
    (G1)  y[:, w] = sum_k sum_v (W_k x[:, v] + b_k) A_k[v, w]      spatial graph convolution (SpatialGraphConv)
              the bias inside the graph sum, as the reference computes it: joint w gets sum_k b_k sum_v A_k[v, w]
    STGCNBlock   G1 -> BN-ReLU-Conv(9x1)-BN, plus a residual, then ReLU
    STGCN        data BN -> 10 blocks -> mean over frames and joints -> mean over persons = f(x), (N, 256)

Two widths: "standard" (64/128/256, the reference) and "quarter" (16/32/64 -> 256, the self-supervised papers').
Not here: reading checkpoint files (utils/checkpoints.py), the other encoders of the paper's comparison
(skeleton_gru.py, skeleton_transformer.py).
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from utils.checkpoints import feature_extractor, size_by_width

# Kinect v2 body, 1-based joint pairs of the reference 'ntu-rgb+d' layout (docs/conventions.md §1).
NTU_EDGES_1BASED = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
                    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
                    (20, 19), (22, 23), (23, 8), (24, 25), (25, 12)]
NTU_CENTER = 21 - 1  # SpineShoulder, 0-based
NUM_JOINTS = 25

# Channel plans (in, out, stride, residual) of the ten blocks. residual: False = none, True = identity or 1x1 conv.
STANDARD_BLOCKS = [(3, 64, 1, False), (64, 64, 1, True), (64, 64, 1, True), (64, 64, 1, True),
                   (64, 128, 2, True), (128, 128, 1, True), (128, 128, 1, True),
                   (128, 256, 2, True), (256, 256, 1, True), (256, 256, 1, True)]
QUARTER_BLOCKS = [(3, 16, 1, False), (16, 16, 1, True), (16, 16, 1, True), (16, 16, 1, True),
                  (16, 32, 2, True), (32, 32, 1, True), (32, 32, 1, True),
                  (32, 64, 2, True), (64, 64, 1, True), (64, 256, 1, True)]
SIZES = {"standard": STANDARD_BLOCKS, "quarter": QUARTER_BLOCKS}


# ----------------------------------------------------------------------------------------------------------------
# (G2) The graph and its spatial partitions
# ----------------------------------------------------------------------------------------------------------------

def hop_distance(num_node, edges, max_hop=1):
    """Hop distance between joints (V, V), np.inf beyond max_hop (the reference code never measures further)."""
    adjacency = np.zeros((num_node, num_node))
    for i, j in edges:
        adjacency[i, j] = adjacency[j, i] = 1
    hop = np.full((num_node, num_node), np.inf)
    reach = [np.linalg.matrix_power(adjacency, d) > 0 for d in range(max_hop + 1)]
    for d in range(max_hop, -1, -1):
        hop[reach[d]] = d
    return hop


def normalize_digraph(adjacency):
    """Column-degree normalisation A D^-1, so every non-empty column sums to 1."""
    degree = adjacency.sum(axis=0)
    inverse = np.where(degree > 0, 1.0 / np.where(degree > 0, degree, 1.0), 0.0)
    return adjacency * inverse[None, :]


class Graph:
    """(G2) The NTU RGB+D skeleton graph: A (3, V, V), A[k][j, i] > 0 when joint j feeds joint i in partition k."""

    def __init__(self):
        self.num_node, self.center = NUM_JOINTS, NTU_CENTER
        self.edges = [(i, i) for i in range(self.num_node)] + [(i - 1, j - 1) for i, j in NTU_EDGES_1BASED]
        self.hop_dis = hop_distance(self.num_node, self.edges, max_hop=1)  # (V, V): 0, 1 or inf
        normalized = normalize_digraph((self.hop_dis <= 1).astype(float))  # A D^-1, self-links included

        # d[j]: distance of joint j to the centre, read from the hop matrix capped at one hop, so every joint further
        # away has d = inf and they all tie (inf == inf): their links go with the root set into A_1, exactly as in
        # the published checkpoints (docs/conventions.md §4).
        d = self.hop_dis[:, self.center]  # (V,)
        link = self.hop_dis == 1  # link[j, i]: j and i are neighbours
        source_not_closer = link & (d[:, None] >= d[None, :])  # the source j is at least as far as the target i
        source_closer = link & (d[:, None] < d[None, :])  # the source j is closer to the centre than i
        self.A = np.stack([np.where(self.hop_dis == 0, normalized, 0.0),  # A_0: the joint itself
                           np.where(source_not_closer, normalized, 0.0),  # A_1
                           np.where(source_closer, normalized, 0.0)])  # A_2    (3, V, V)


# ----------------------------------------------------------------------------------------------------------------
# (G1) The spatial graph convolution, and the block around it
# ----------------------------------------------------------------------------------------------------------------

class SpatialGraphConv(nn.Module):
    """(G1) y[:, w] = sum_k sum_v (W_k x[:, v] + b_k) A_k[v, w], written as the reference code computes it: one 1x1
    conv to K*C_out channels (every W_k at once), then the graph sum einsum('nkctv,kvw->nctw'). The parameters are the
    reference ones (`conv.weight` (K*C_out, C_in, 1, 1), `conv.bias`), so checkpoints load unchanged."""

    def __init__(self, in_channels, out_channels, num_partitions):
        super().__init__()
        self.K, self.out_channels = num_partitions, out_channels
        self.conv = nn.Conv2d(in_channels, out_channels * num_partitions, kernel_size=1)

    def forward(self, x, A):  # x (N, C_in, T, V), A (K, V, V) -> (N, C_out, T, V)
        x = self.conv(x)  # (N, K*C_out, T, V): W_k x + b_k for every partition k
        n, kc, t, v = x.shape
        x = x.view(n, self.K, kc // self.K, t, v)  # (N, K, C_out, T, V)
        return torch.einsum("nkctv,kvw->nctw", x, A).contiguous()  # sum over k and v


class STGCNBlock(nn.Module):
    """One ST-GCN unit: spatial graph conv (G1), then BN-ReLU-Conv(9x1)-BN, plus a residual, then ReLU."""

    def __init__(self, in_channels, out_channels, num_partitions, stride=1, residual=True, temporal_kernel=9):
        super().__init__()
        self.gcn = SpatialGraphConv(in_channels, out_channels, num_partitions)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1), ((temporal_kernel - 1) // 2, 0)),
            nn.BatchNorm2d(out_channels),  # (the reference's Dropout follows here; 0 in every recipe, so left out)
        )
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, (stride, 1)),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x, A):  # x (N*M, C_in, T, V) -> (N*M, C_out, T / stride, V)
        y = self.tcn(self.gcn(x, A))
        if self.residual is not None:
            y = y + self.residual(x)
        return F.relu(y)


# ----------------------------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------------------------

class STGCN(nn.Module):
    """ST-GCN on (N, C, T, V, M) skeletons: logits (N, num_class), or the pooled 256-d feature if num_class is None.

    size="standard": channels 64/128/256 (3,098,832 parameters with 60 classes);
    size="quarter": 16/32/64 -> 256, the width of the self-supervised skeleton papers (821,380 parameters).
    """

    feature_dim = 256

    def __init__(self, num_class=None, size="standard"):
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"unknown ST-GCN size {size!r}: use one of {sorted(SIZES)}")
        self.num_class, self.size = num_class, size
        self.register_buffer("A", torch.tensor(Graph().A, dtype=torch.float32))  # (K, V, V), saved like the reference
        K, V = self.A.shape[0], self.A.shape[1]

        self.data_bn = nn.BatchNorm1d(3 * V)
        blocks = SIZES[size]
        self.st_gcn_networks = nn.ModuleList(STGCNBlock(c_in, c_out, K, stride, residual)
                                             for c_in, c_out, stride, residual in blocks)
        # A learned edge-importance mask on each block's A (the reference's edge_importance): block i convolves
        # with A * importance_i.
        self.edge_importance = nn.ParameterList(nn.Parameter(torch.ones(K, V, V)) for _ in blocks)
        self.fcn = nn.Conv2d(self.feature_dim, num_class, kernel_size=1) if num_class else None

    def features(self, x):
        """x (N, C, T, V, M) -> f(x) (N, 256): global average over time and joints, then mean over persons."""
        N, C, T, V, M = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(N * M, V * C, T)  # data_bn normalises each (joint, coordinate)
        x = self.data_bn(x)
        x = x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).reshape(N * M, C, T, V)  # (N*M, C, T, V)
        for block, importance in zip(self.st_gcn_networks, self.edge_importance):
            x = block(x, self.A * importance)  # (N*M, C_i, T_i, V)
        x = x.mean(dim=(2, 3))  # (N*M, 256)
        return x.view(N, M, -1).mean(dim=1)  # (N, 256)

    def forward(self, x):
        feature = self.features(x)  # (N, 256)
        if self.fcn is None:
            return feature
        return self.fcn(feature[:, :, None, None]).flatten(1)  # (N, num_class)

    @classmethod
    def from_state(cls, state, source="the checkpoint", size="auto"):
        """f from an ST-GCN state dict (already unwrapped: utils.checkpoints.encoder_part), loaded strictly: the
        width is read from the first graph conv; a published classifier's `fcn` is dropped after its strict load."""
        if size == "auto":  # K * C_out rows of the first graph conv: 192 = 3 x 64 (standard), 48 = 3 x 16 (quarter)
            widths = {name: 3 * plan[0][1] for name, plan in SIZES.items()}
            size = size_by_width(state, "st_gcn_networks.0.gcn.conv.weight", 0, widths, "ST-GCN", source)
        return feature_extractor(lambda num_class: cls(num_class, size), state, source, "fcn.weight", "fcn")


def reference_init(module):
    """ST-GCN's and AimCLR's weights_init: conv and linear weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def orthogonal_init(module):
    """Every convolution's weight, flattened to (C_out, C_in * kernel), an orthogonal matrix; biases 0 (Saxe et al.)."""
    if isinstance(module, nn.Conv2d):
        nn.init.orthogonal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
