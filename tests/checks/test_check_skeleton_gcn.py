"""Visible checks of exercises 7 and 8 (skeleton_gcn.py): G1, the spatial graph convolution, and G2, the spatial
partition of the skeleton graph. Exercise 7's checks use hand-made graphs, so they do not need exercise 8's Graph.
A student runs them with `python tools/exercises.py check 7` (or 8)."""
import numpy as np
import torch
from paper_assertions import assert_close

from skeleton_gcn import NTU_EDGES_1BASED, Graph, SpatialGraphConv

K, C_IN, C_OUT, T, V = 3, 2, 4, 3, 5


def graph_conv(seed=0):
    torch.manual_seed(seed)
    return SpatialGraphConv(C_IN, C_OUT, K).double().requires_grad_(False)


def skeletons(seed=1, n=2):
    return torch.randn(n, C_IN, T, V, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def partitions(*matrices):
    """A (K, V, V) from K matrices (V, V); None is a partition of zeros."""
    return torch.stack([torch.zeros(V, V, dtype=torch.float64) if m is None else m for m in matrices])


# ---------------------------------------------------------------------------------------------------------------
# Exercise 7: G1
# ---------------------------------------------------------------------------------------------------------------

def test_G1_maps_N_C_in_T_V_to_N_C_out_T_V():
    y = graph_conv()(skeletons(), torch.rand(K, V, V, dtype=torch.float64))
    assert tuple(y.shape) == (2, C_OUT, T, V), f"G1 maps x (N, C_in, T, V) = (2, {C_IN}, {T}, {V}) to (N, C_out, T, " \
                                               f"V) = (2, {C_OUT}, {T}, {V}); got {tuple(y.shape)}"


def test_G1_with_an_empty_graph_is_zero_because_the_bias_is_inside_the_graph_sum():
    y = graph_conv()(skeletons(), torch.zeros(K, V, V, dtype=torch.float64))
    assert float(y.abs().max()) == 0, f"y[:, w] = sum_k sum_v (W_k x[:, v] + b_k) A_k[v, w]: with A = 0 every " \
                                      f"output is 0, the bias b_k included; got max |y| = {float(y.abs().max()):.3f}"


def test_partition_k_uses_channels_k_C_out_to_k_plus_1_C_out_of_the_1x1_conv():
    gcn, x = graph_conv(), skeletons()
    identity = torch.eye(V, dtype=torch.float64)
    Wx_plus_b = gcn.conv(x).detach()  # (N, K * C_out, T, V): W_k x + b_k for every k at once
    for k in range(K):
        A = partitions(*(identity if j == k else None for j in range(K)))
        assert_close(gcn(x, A), Wx_plus_b[:, k * C_OUT:(k + 1) * C_OUT],
                     f"with A_{k} = I and the other partitions empty, y = W_{k} x + b_{k}: channels {k * C_OUT}.."
                     f"{(k + 1) * C_OUT - 1} of self.conv(x) (the conv's K * C_out channels are W_0 x + b_0, then "
                     f"W_1 x + b_1, ..., C_out each)")


def test_A_k_v_w_carries_joint_v_into_joint_w():
    gcn, x = graph_conv(), skeletons()
    A_0 = torch.zeros(V, V, dtype=torch.float64)
    A_0[1, 3] = 1.0  # joint 1 feeds joint 3, nothing else
    y = gcn(x, partitions(A_0, None, None))
    expected = torch.zeros_like(y)
    expected[..., 3] = gcn.conv(x).detach()[:, :C_OUT, :, 1]
    assert_close(y, expected, "A_0[1, 3] = 1 and nothing else: joint 3's output must be W_0 x[:, 1] + b_0 (joint 1's "
                              "input), every other joint's 0; y[:, w] sums over the rows v of column w of A_k")


def test_G1_is_linear_in_the_graph():
    gcn, x = graph_conv(), skeletons()
    A, B = torch.rand(K, V, V, dtype=torch.float64), torch.rand(K, V, V, dtype=torch.float64)
    assert_close(gcn(x, A + B), gcn(x, A) + gcn(x, B), "G1 is a sum over A_k[v, w]: y(A + B) must be y(A) + y(B)",
                 atol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# Exercise 8: G2
# ---------------------------------------------------------------------------------------------------------------

EDGES = {(i - 1, j - 1) for i, j in NTU_EDGES_1BASED}  # 0-based, undirected
NEIGHBOURS = EDGES | {(j, i) for i, j in EDGES}


def graph_A():
    A = getattr(Graph(), "A", None)
    assert A is not None, "Graph() must set self.A, the partitions (3, V, V)"
    return np.asarray(A, dtype=float)


def test_A_holds_three_partitions_of_the_25_joints():
    A = graph_A()
    assert A.shape == (3, 25, 25), f"A is (K, V, V) = (3, 25, 25): the joint itself, the farther and the closer " \
                                   f"neighbours; got {A.shape}"
    assert A.min() >= 0, "A D^-1 holds no negative entry"


def test_A_0_is_the_joint_itself_divided_by_its_degree():
    A = graph_A()
    off_diagonal = A[0] - np.diag(np.diag(A[0]))
    assert np.abs(off_diagonal).max() == 0, "A_0 is the joint itself: only its diagonal is non-zero"
    degree = {v: 1 + sum(1 for a, b in NEIGHBOURS if a == v) for v in range(25)}  # the self-link counts
    for v in (20, 3, 7):
        assert abs(A[0][v, v] - 1 / degree[v]) < 1e-9, \
            f"A D^-1 divides column v by its degree (neighbours + the self-link): joint {v} has degree {degree[v]}, " \
            f"so A_0[{v}, {v}] = {1 / degree[v]:.4f}; got {A[0][v, v]:.4f}"


def test_every_link_of_the_skeleton_is_in_exactly_one_of_A_1_and_A_2():
    A = graph_A()
    for j in range(25):
        for i in range(25):
            if i == j:
                assert A[1][j, i] == A[2][j, i] == 0, f"A_1 and A_2 hold neighbours only: entry ({j}, {i}) is the " \
                                                      f"joint itself, which is A_0's"
                continue
            where = [k for k in (1, 2) if A[k][j, i] > 0]
            if (j, i) in NEIGHBOURS:
                assert len(where) == 1, f"joints {j} and {i} are linked: entry ({j}, {i}) (joint {j} feeds joint " \
                                        f"{i}) must be in exactly one of A_1 and A_2; it is in {where or 'neither'}"
            else:
                assert not where, f"joints {j} and {i} are not linked in the skeleton (NTU_EDGES_1BASED), but A_" \
                                  f"{where[0]}[{j}, {i}] = {A[where[0]][j, i]:.3f}"


def test_the_centre_spine_shoulder_is_closer_than_its_neighbours():
    A = graph_A()
    for i in (1, 2, 4, 8):  # SpineMid, Neck, ShoulderLeft, ShoulderRight: SpineShoulder's neighbours
        assert A[2][20, i] > 0, f"joint 20 (SpineShoulder) is the centre, closer than its neighbour {i}: it feeds " \
                                f"joint {i} through A_2 (the closer neighbours); A_2[20, {i}] is 0"
        assert A[1][i, 20] > 0, f"joint {i} is farther from the centre than joint 20 (the centre itself): it feeds " \
                                f"joint 20 through A_1; A_1[{i}, 20] is 0"
