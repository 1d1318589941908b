"""ST-GCN, the skeleton encoder f that C2VL trains (docs/method.md §8; Yan et al., AAAI 2018).

C2VL distils vision-language knowledge into a plain ST-GCN and evaluates the 256-d feature it pools.
This file builds that network exactly as the field's reference code does, so that published NTU checkpoints
load with strict=True and numbers stay comparable (docs/conventions.md §4):

    Graph                   the NTU 'ntu-rgb+d' skeleton graph and its partitions A_k (uniform / distance / spatial)
    graph_conv_reference    the spatial graph convolution as the reference code writes it (conv, then einsum)
    SpatialGraphConv        that operator with the reference parameters (graph_first_conv: same value, faster)
    STGCNBlock              graph conv -> temporal conv, with a residual
    STGCN                   the standard network (64/128/256) or the quarter-width one of self-supervised papers
    load_checkpoint         strict loading of the common checkpoint wrappers, with a readable key report
    build_encoder           f from any ST-GCN checkpoint: train.py's, a published classifier, AimCLR's encoder_q

The spatial graph convolution of a block (x: C_in channels per joint, A_k: K partitions of the adjacency):

    y[:, w] = sum_k sum_v  W_k x[:, v] A_k[v, w]  (+ bias terms)

It does not implement GRU/Transformer encoders, which the paper compares only in an ablation.
"""
import re
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Kinect v2 body, 1-based joint pairs of the reference 'ntu-rgb+d' layout (docs/conventions.md §1).
NTU_EDGES_1BASED = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
                    (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
                    (20, 19), (22, 23), (23, 8), (24, 25), (25, 12)]
NTU_CENTER = 21 - 1  # SpineShoulder
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
# The graph
# ----------------------------------------------------------------------------------------------------------------

def hop_distance(num_node, edges, max_hop=1):
    """Hop distance between joints, np.inf beyond max_hop (the reference code never measures further)."""
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
    """The NTU RGB+D skeleton graph and its partition matrices A (K, V, V); A[k][j, i] links joint j into joint i."""

    def __init__(self, layout="ntu-rgb+d", strategy="spatial", max_hop=1, dilation=1):
        if layout != "ntu-rgb+d":
            raise ValueError(f"unknown graph layout {layout!r}: only 'ntu-rgb+d' (Kinect v2, 25 joints) is provided")
        self.num_node, self.center = NUM_JOINTS, NTU_CENTER
        self.edges = [(i, i) for i in range(self.num_node)] + [(i - 1, j - 1) for i, j in NTU_EDGES_1BASED]
        self.max_hop, self.dilation, self.strategy = max_hop, dilation, strategy
        self.hop_dis = hop_distance(self.num_node, self.edges, max_hop)
        self.A = self._partition(strategy)

    def _partition(self, strategy):
        V, hop_dis = self.num_node, self.hop_dis
        valid_hop = range(0, self.max_hop + 1, self.dilation)
        adjacency = np.zeros((V, V))
        for hop in valid_hop:
            adjacency[hop_dis == hop] = 1
        normalized = normalize_digraph(adjacency)

        if strategy == "uniform":
            return normalized[None]  # (1, V, V)
        if strategy == "distance":
            return np.stack([np.where(hop_dis == hop, normalized, 0.0) for hop in valid_hop])  # (hops, V, V)
        if strategy != "spatial":
            raise ValueError(f"unknown partition strategy {strategy!r}: use 'uniform', 'distance' or 'spatial'")

        # Spatial partition: root / centripetal-or-equal / centrifugal, by each joint's distance d to the center.
        # d is read from the hop matrix capped at max_hop, so all joints further away have d = inf and tie
        # (inf == inf): their link goes with the root set into A_1, exactly as in the published checkpoints.
        d = hop_dis[:, self.center]  # (V,)
        A = []
        for hop in valid_hop:
            link = hop_dis == hop  # link[j, i]
            same = link & (d[:, None] == d[None, :])
            closer_source = link & (d[:, None] > d[None, :])
            further_source = link & (d[:, None] < d[None, :])
            if hop == 0:
                A.append(np.where(same, normalized, 0.0))
            else:
                A.append(np.where(same | closer_source, normalized, 0.0))
                A.append(np.where(further_source, normalized, 0.0))
        return np.stack(A)  # (K, V, V)


# ----------------------------------------------------------------------------------------------------------------
# The spatial graph convolution
# ----------------------------------------------------------------------------------------------------------------

def graph_conv_reference(x, weight, bias, A):
    """The reference formulation: a 1x1 conv to K*C_out channels, then einsum('nkctv,kvw->nctw').

    x (N, C_in, T, V), weight (K*C_out, C_in, 1, 1), bias (K*C_out,), A (K, V, V) -> (N, C_out, T, V).
    Kept as the plain transcription that tests and bench/ compare SpatialGraphConv against.
    """
    K = A.shape[0]
    x = F.conv2d(x, weight, bias)  # (N, K*C_out, T, V)
    n, kc, t, v = x.shape
    x = x.view(n, K, kc // K, t, v)  # (N, K, C_out, T, V)
    return torch.einsum("nkctv,kvw->nctw", x, A).contiguous()  # (N, C_out, T, V)


class SpatialGraphConv(nn.Module):
    """(G1) y[:, w] = sum_k sum_v W_k x[:, v] A_k[v, w] + sum_k b_k sum_v A_k[v, w].

    Parameters are the reference ones (`conv.weight` (K*C_out, C_in, 1, 1), `conv.bias`), so checkpoints load
    unchanged. Widening blocks compute the same value graph-first (`graph_first_conv`, x1.05-1.08 on an H100).
    """

    def __init__(self, in_channels, out_channels, num_partitions):
        super().__init__()
        self.K, self.out_channels = num_partitions, out_channels
        self.conv = nn.Conv2d(in_channels, out_channels * num_partitions, kernel_size=1)

    def forward(self, x, A):  # x (N, C_in, T, V), A (K, V, V) -> (N, C_out, T, V)
        if x.shape[1] < self.out_channels:
            return graph_first_conv(x, self.conv.weight, self.conv.bias, A)
        return graph_conv_reference(x, self.conv.weight, self.conv.bias, A)


def graph_first_conv(x, weight, bias, A):
    """graph_conv_reference's value, graph sum first: cheaper when C_in < C_out (tested equal within 1e-5).

    The graph sum is linear, so it can run before the channel mixing, with no 5-D einsum and no permuted copy:
      1. one matmul against all partitions at once:  x_A[n, c, t, w, k] = sum_v x[n, c, t, v] A_k[v, w]
      2. one conv with kernel and stride (1, K) over the interleaved (w, k) axis: sum_k W_k x_A[..., w, k].
    """
    N, C, T, V = x.shape
    K = A.shape[0]
    C_out = weight.shape[0] // K
    A_wk = A.permute(1, 2, 0).reshape(V, V * K)  # (V, W*K), k fastest
    x_A = (x.reshape(N * C * T, V) @ A_wk).view(N, C, T, V * K)  # (N, C_in, T, W*K)
    weight = weight.view(K, C_out, C).permute(1, 2, 0).unsqueeze(2)  # (C_out, C_in, 1, K): W'[o, c, 0, k]
    y = F.conv2d(x_A, weight, stride=(1, K))  # (N, C_out, T, W)
    # The reference adds the bias before the graph sum, so each b_k is weighted by the column sums of A_k.
    return y + (bias.view(K, C_out).t() @ A.sum(dim=1))[:, None, :]  # + (C_out, W)


class STGCNBlock(nn.Module):
    """One ST-GCN unit: spatial graph conv, then BN-ReLU-Conv(9x1)-BN-Dropout, plus a residual, then ReLU."""

    def __init__(self, in_channels, out_channels, num_partitions, stride=1, residual=True, dropout=0.0,
                 temporal_kernel=9):
        super().__init__()
        self.gcn = SpatialGraphConv(in_channels, out_channels, num_partitions)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1), ((temporal_kernel - 1) // 2, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout, inplace=True),
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

    def __init__(self, num_class=None, size="standard", in_channels=3, graph_layout="ntu-rgb+d",
                 strategy="spatial", max_hop=1, dilation=1, edge_importance_weighting=True, dropout=0.0):
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"unknown ST-GCN size {size!r}: use one of {sorted(SIZES)}")
        self.num_class, self.size = num_class, size
        graph = Graph(graph_layout, strategy, max_hop, dilation)
        self.register_buffer("A", torch.tensor(graph.A, dtype=torch.float32))  # (K, V, V), saved like the reference
        K, V = self.A.shape[0], self.A.shape[1]

        self.data_bn = nn.BatchNorm1d(in_channels * V)
        plan = SIZES[size]
        blocks = [(in_channels,) + plan[0][1:]] + plan[1:]
        self.st_gcn_networks = nn.ModuleList(
            # The reference builds the first block without dropout.
            STGCNBlock(c_in, c_out, K, stride, residual, dropout=dropout if i > 0 else 0.0)
            for i, (c_in, c_out, stride, residual) in enumerate(blocks))
        if edge_importance_weighting:
            self.edge_importance = nn.ParameterList(nn.Parameter(torch.ones(K, V, V)) for _ in blocks)
        else:
            self.edge_importance = None
        self.fcn = nn.Conv2d(self.feature_dim, num_class, kernel_size=1) if num_class else None

    def features(self, x):
        """x (N, C, T, V, M) -> f(x) (N, 256): global average over time and joints, then mean over persons."""
        N, C, T, V, M = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(N * M, V * C, T)  # data_bn normalises each (joint, coordinate)
        x = self.data_bn(x)
        x = x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).reshape(N * M, C, T, V)  # (N*M, C, T, V)
        for i, block in enumerate(self.st_gcn_networks):
            A = self.A if self.edge_importance is None else self.A * self.edge_importance[i]
            x = block(x, A)  # (N*M, C_i, T_i, V)
        x = x.mean(dim=(2, 3))  # (N*M, 256)
        return x.view(N, M, -1).mean(dim=1)  # (N, 256)

    def forward(self, x):
        feature = self.features(x)  # (N, 256)
        if self.fcn is None:
            return feature
        return self.fcn(feature[:, :, None, None]).flatten(1)  # (N, num_class)


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------------

class CheckpointMismatchError(RuntimeError):
    """A checkpoint that cannot be read, or whose keys or shapes do not match the model; the message says which."""


def unwrap_state_dict(checkpoint, source="the checkpoint"):
    """Accept a bare state dict, {'state_dict': ...}, {'model': ...}, and strip DataParallel's 'module.' prefix."""
    for wrapper in ("state_dict", "model", "encoder"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(f"{source}: expected a state dict, found {type(checkpoint).__name__}")
    return OrderedDict((k[len("module."):] if k.startswith("module.") else k, v) for k, v in checkpoint.items())


def _key_list(keys, limit=20):
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown


def read_checkpoint(path):
    """torch.load(weights_only=True) of a checkpoint file: tensors and plain containers only, because unpickling
    anything else can run code (checkpoints are files people share). Every other file is refused, naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found. Make an encoder by pretraining, e.g.:\n"
                                f"  python train.py --dataset demo --out {path.parent}\n"
                                f"or pass any ST-GCN checkpoint (a published classifier, an AimCLR encoder_q).")
    if path.stat().st_size == 0:
        raise CheckpointMismatchError(f"checkpoint {path} is empty (0 bytes): copy or download it again")
    try:
        with warnings.catch_warnings(action="ignore"):  # torch warns about pickle protocols before it refuses
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        with open(path, "rb") as f:  # torch.save writes a zip archive (b"PK"); older versions a pickle (b"\x80")
            pickled = f.read(2)[:1] in (b"P", b"\x80")
        if pickled and "Weights only load failed" in str(error):
            found = re.search(r"GLOBAL ([\w.]+)", str(error))
            raise CheckpointMismatchError(
                f"refused to load {path}: it holds {found[1] if found else 'pickle data'} beyond what torch.load("
                "weights_only=True) reads (tensors and plain containers written by torch.save); unpickling anything "
                "else can run code. Save only state dicts: torch.save(model.state_dict(), path)") from None
        reason = re.split(r"\.\s+(?=[A-Z])|\n", str(error).strip())[0][:160] or "no details"  # its first sentence
        raise CheckpointMismatchError(f"{path} is not a PyTorch checkpoint, or it is damaged ({type(error).__name__}: "
                                      f"{reason}); pass a file torch.save wrote, e.g. train.py's encoder.pt") from None


def load_checkpoint(model, path_or_state, source=None):
    """Load a checkpoint into model strictly; any missing, unexpected or mis-shaped key raises with the key names.

    A silent partial load leaves a random encoder that still trains a linear classifier, at a fraction of the
    expected accuracy; users of the field lose weeks to that, so nothing here is lenient.
    """
    is_state = isinstance(path_or_state, dict)
    source = source or ("state dict" if is_state else str(path_or_state))
    state = unwrap_state_dict(path_or_state if is_state else read_checkpoint(path_or_state), source)
    expected = model.state_dict()
    missing = expected.keys() - state.keys()
    unexpected = state.keys() - expected.keys()
    misshaped = [f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
                 for k in expected.keys() & state.keys()
                 if hasattr(state[k], "shape") and state[k].shape != expected[k].shape]
    if missing or unexpected or misshaped:
        lines = [f"checkpoint {source} does not match {type(model).__name__}:"]
        if missing:
            lines.append(f"  missing keys: {_key_list(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys: {_key_list(unexpected)}")
        if misshaped:
            lines.append(f"  shape mismatches: {_key_list(misshaped)}")
        raise CheckpointMismatchError("\n".join(lines))
    model.load_state_dict(state, strict=True)
    return model


def detect_size(state) -> str:
    """'standard' or 'quarter' from the rows of the first graph conv (K * C_out: 192 = 3 x 64, 48 = 3 x 16)."""
    weight = state.get("st_gcn_networks.0.gcn.conv.weight")
    if weight is None:
        return "standard"  # load_checkpoint then lists every missing key
    sizes = {3 * SIZES[s][0][1]: s for s in SIZES}
    if int(weight.shape[0]) not in sizes:
        raise CheckpointMismatchError(f"cannot tell the ST-GCN size: st_gcn_networks.0.gcn.conv.weight has "
                                      f"{int(weight.shape[0])} rows (expected 192 (standard) or 48 (quarter))")
    return sizes[int(weight.shape[0])]


def build_encoder(path_or_state, size="auto") -> STGCN:
    """The feature extractor f from any ST-GCN checkpoint, loaded strictly: train.py's encoder.pt or checkpoint_*.pt
    (the `encoder.` part of its model), a published classifier (its `fcn` is dropped after a strict load) or an
    AimCLR/CrosSCLR checkpoint (`encoder_q.`, without the projection `encoder_q.fc`). forward and .features() both
    give f(x) (N, 256)."""
    is_state = isinstance(path_or_state, dict)
    source = "state dict" if is_state else str(path_or_state)
    state = unwrap_state_dict(path_or_state if is_state else read_checkpoint(path_or_state), source)
    if any(k.startswith("encoder.") for k in state):  # train.py's checkpoint_*.pt: its C2VLModel's `encoder.`
        state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    if any(k.startswith("encoder_q.") for k in state):
        state = {k[len("encoder_q."):]: v for k, v in state.items()
                 if k.startswith("encoder_q.") and not k.startswith("encoder_q.fc.")}
    classifier = state.get("fcn.weight")
    encoder = STGCN(num_class=int(classifier.shape[0]) if classifier is not None else None,
                    size=detect_size(state) if size == "auto" else size)
    load_checkpoint(encoder, state, source)
    encoder.fcn, encoder.num_class = None, None
    return encoder
