"""ST-GCN facts (docs/conventions.md §4): the graph partitions, the network's sizes, names and loading behaviour."""
import numpy as np
import pytest
import torch

from bench.bench_stgcn import as_graph_first, graph_first_conv
from encoders import build_encoder
from skeleton_gcn import NTU_EDGES_1BASED, STGCN, Graph, SpatialGraphConv, orthogonal_init, reference_init
from utils.checkpoints import CheckpointMismatchError, load_checkpoint

SPINE_BASE, SPINE_MID, SHOULDER_LEFT, ELBOW_LEFT, WRIST_LEFT, HAND_LEFT = 0, 1, 4, 5, 6, 7
SPINE_SHOULDER, HAND_TIP_LEFT, THUMB_LEFT, HIP_LEFT, KNEE_LEFT = 20, 21, 22, 12, 13


def sources(A_k, joint):
    """Joints j whose entry (j, joint) is non-zero: the joints aggregated into `joint` by partition A_k."""
    return set(np.nonzero(A_k[:, joint])[0].tolist())


def test_spine_mid_partitions_are_itself_spine_base_spine_shoulder():
    A = Graph().A
    assert A.shape == (3, 25, 25)
    assert [sources(A[k], SPINE_MID) for k in range(3)] == [{SPINE_MID}, {SPINE_BASE}, {SPINE_SHOULDER}]


def test_columns_of_summed_partitions_sum_to_one():
    np.testing.assert_allclose(Graph().A.sum(axis=0).sum(axis=0), np.ones(25), atol=1e-12)


def test_spatial_partition_uses_capped_distance_so_far_neighbours_tie_into_A1():
    """Joints more than max_hop = 1 from SpineShoulder all have d = inf; both directions of their links go to A_1."""
    A = Graph().A
    for far_a, far_b in [(ELBOW_LEFT, WRIST_LEFT), (WRIST_LEFT, HAND_LEFT), (HIP_LEFT, KNEE_LEFT),
                         (HAND_LEFT, THUMB_LEFT), (HAND_TIP_LEFT, THUMB_LEFT), (SPINE_BASE, HIP_LEFT)]:
        assert A[1][far_a, far_b] > 0 and A[1][far_b, far_a] > 0
        assert A[2][far_a, far_b] == 0 and A[2][far_b, far_a] == 0
    # A link between the center's neighbour (d = 1) and a far joint (d = inf): the far joint feeds the neighbour
    # through A_1 (d(source) > d(target)), the neighbour feeds the far joint through A_2.
    assert A[1][ELBOW_LEFT, SHOULDER_LEFT] > 0 and A[2][SHOULDER_LEFT, ELBOW_LEFT] > 0
    # The center's own neighbours are closer: SpineShoulder feeds Head and ShoulderLeft through A_2.
    assert A[2][SPINE_SHOULDER, SHOULDER_LEFT] > 0 and A[2][SPINE_SHOULDER, SPINE_MID] > 0


def test_spatial_partition_matches_an_independent_transcription_of_the_rule():
    edges = [(i - 1, j - 1) for i, j in NTU_EDGES_1BASED]
    neighbours = {v: set() for v in range(25)}
    for i, j in edges:
        neighbours[i].add(j)
        neighbours[j].add(i)
    degree = {v: len(neighbours[v]) + 1 for v in range(25)}  # plus the self-link
    d = {v: np.inf for v in range(25)}  # distance to the center, capped at max_hop = 1
    d[20] = 0
    for v in neighbours[20]:
        d[v] = 1
    expected = np.zeros((3, 25, 25))
    for i in range(25):
        expected[0][i, i] = 1 / degree[i]
        for j in neighbours[i]:  # entry (j, i): j feeds i, weighted by 1 / degree of the column i
            expected[1 if d[j] >= d[i] else 2][j, i] = 1 / degree[i]
    np.testing.assert_allclose(Graph().A, expected, atol=1e-12)


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_the_reference_networks():
    assert parameter_count(STGCN(num_class=60)) == 3_098_832
    assert parameter_count(STGCN(size="quarter")) == 821_380


@pytest.mark.parametrize("frames", [1, 50, 64, 300])
@pytest.mark.parametrize("persons", [1, 2])
def test_output_shapes(frames, persons):
    x = torch.randn(2, 3, frames, 25, persons)
    with torch.no_grad():
        assert STGCN(size="quarter").eval()(x).shape == (2, 256)
        if frames in (1, 64):
            assert STGCN(num_class=60).eval()(x).shape == (2, 60)
            assert STGCN().eval()(x).shape == (2, 256)


def expected_state_dict_shapes(num_class=60):
    """The reference ST-GCN state dict, written out from docs/conventions.md §4."""
    shapes = {"A": (3, 25, 25)}
    shapes.update({f"data_bn.{n}": (75,) for n in ("weight", "bias", "running_mean", "running_var")})
    shapes["data_bn.num_batches_tracked"] = ()
    plan = [(3, 64), (64, 64), (64, 64), (64, 64), (64, 128), (128, 128), (128, 128), (128, 256), (256, 256),
            (256, 256)]
    for i, (c_in, c_out) in enumerate(plan):
        p = f"st_gcn_networks.{i}"
        shapes[f"{p}.gcn.conv.weight"] = (3 * c_out, c_in, 1, 1)
        shapes[f"{p}.gcn.conv.bias"] = (3 * c_out,)
        for bn in ("tcn.0", "tcn.3") + (("residual.1",) if i in (4, 7) else ()):
            shapes.update({f"{p}.{bn}.{n}": (c_out,) for n in ("weight", "bias", "running_mean", "running_var")})
            shapes[f"{p}.{bn}.num_batches_tracked"] = ()
        shapes[f"{p}.tcn.2.weight"] = (c_out, c_out, 9, 1)
        shapes[f"{p}.tcn.2.bias"] = (c_out,)
        if i in (4, 7):
            shapes[f"{p}.residual.0.weight"] = (c_out, c_in, 1, 1)
            shapes[f"{p}.residual.0.bias"] = (c_out,)
        shapes[f"edge_importance.{i}"] = (3, 25, 25)
    shapes["fcn.weight"] = (num_class, 256, 1, 1)
    shapes["fcn.bias"] = (num_class,)
    return shapes


def test_state_dict_keys_and_shapes_equal_the_reference_implementation():
    state = STGCN(num_class=60).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == expected_state_dict_shapes()


def test_reference_checkpoint_with_module_prefix_and_wrapper_loads(tmp_path):
    source = STGCN(num_class=60)
    path = tmp_path / "dataparallel.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}, "epoch": 80}, path)
    target = load_checkpoint(STGCN(num_class=60), path)
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v), k
    plain = tmp_path / "plain.pt"
    torch.save({"model": source.state_dict()}, plain)
    load_checkpoint(STGCN(num_class=60), plain)


def test_checkpoint_with_missing_key_fails_naming_it(tmp_path):
    state = STGCN(num_class=60).state_dict()
    del state["st_gcn_networks.3.tcn.2.weight"]
    state["projector.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError) as error:
        load_checkpoint(STGCN(num_class=60), path)
    message = str(error.value)
    assert "missing keys: st_gcn_networks.3.tcn.2.weight" in message
    assert "unexpected keys: projector.weight" in message and str(path) in message


def test_checkpoint_with_wrong_class_count_names_the_shape():
    with pytest.raises(CheckpointMismatchError, match=r"fcn.weight \(120, 256, 1, 1\) != \(60, 256, 1, 1\)"):
        load_checkpoint(STGCN(num_class=60), STGCN(num_class=120).state_dict())


def test_missing_checkpoint_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        load_checkpoint(STGCN(), tmp_path / "nowhere.pt")


def test_spatial_graph_conv_equals_direct_loop():
    """y[o, t, w] = sum_k sum_v sum_c W_k[o, c] x[c, t, v] A_k[v, w] + sum_k b_k[o] sum_v A_k[v, w]."""
    torch.manual_seed(0)
    K, C_in, C_out, T, V = 3, 2, 3, 2, 25
    A = torch.rand(K, V, V, dtype=torch.float64)
    for c_in, c_out in ((C_in, C_out), (C_out, C_in)):  # both computation orders
        gcn = SpatialGraphConv(c_in, c_out, K).double()
        x = torch.randn(1, c_in, T, V, dtype=torch.float64)
        W = gcn.conv.weight.detach()[:, :, 0, 0].view(K, c_out, c_in).numpy()
        b = gcn.conv.bias.detach().view(K, c_out).numpy()
        xs, As = x[0].numpy(), A.numpy()
        expected = np.zeros((c_out, T, V))
        for o in range(c_out):
            for t in range(T):
                for w in range(V):
                    total = 0.0
                    for k in range(K):
                        for v in range(V):
                            total += (sum(W[k, o, c] * xs[c, t, v] for c in range(c_in)) + b[k, o]) * As[k, v, w]
                    expected[o, t, w] = total
        np.testing.assert_allclose(gcn(x, A)[0].detach().numpy(), expected, rtol=1e-10, atol=1e-10)


def test_graph_first_alternative_of_bench_equals_the_graph_conv_within_1e5():
    torch.manual_seed(0)
    A = torch.tensor(Graph().A, dtype=torch.float32) * torch.rand(3, 25, 25)  # edge importance applied
    for c_in, c_out in ((3, 64), (64, 128), (64, 64), (64, 16)):
        gcn = SpatialGraphConv(c_in, c_out, 3)
        x = torch.randn(4, c_in, 16, 25, requires_grad=True)
        ours = graph_first_conv(x, gcn.conv.weight, gcn.conv.bias, A)
        reference = gcn(x, A)
        torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
        grad_ours = torch.autograd.grad(ours.square().sum(), [x, gcn.conv.weight])
        grad_ref = torch.autograd.grad(reference.square().sum(), [x, gcn.conv.weight])
        for g_o, g_r in zip(grad_ours, grad_ref):
            torch.testing.assert_close(g_o, g_r, rtol=1e-4, atol=1e-4)


def test_network_output_equals_the_graph_first_alternative_of_bench():
    torch.manual_seed(0)
    reference = STGCN(num_class=60).eval()
    ours = as_graph_first(STGCN(num_class=60)).eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 3, 20, 25, 2)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", ["quarter", "standard"])
def test_build_encoder_detects_the_size_and_loads_the_weights_exactly(tmp_path, size):
    torch.manual_seed(0)
    reference = STGCN(size=size)
    torch.save(reference.state_dict(), tmp_path / "encoder.pt")
    encoder = build_encoder(tmp_path / "encoder.pt")
    assert encoder.size == size and encoder.fcn is None
    state = encoder.state_dict()
    assert all(torch.equal(state[k], v) for k, v in reference.state_dict().items())


def test_build_encoder_accepts_a_published_stgcn_classifier_and_uses_its_features():
    torch.manual_seed(0)
    classifier = STGCN(num_class=60).eval()
    encoder = build_encoder({"state_dict": {f"module.{k}": v for k, v in classifier.state_dict().items()}})
    x = torch.randn(2, 3, 8, 25, 2)
    with torch.no_grad():
        assert torch.allclose(encoder.eval()(x), classifier.features(x), atol=1e-6)


def test_build_encoder_accepts_an_aimclr_checkpoint_with_encoder_q_and_its_projection():
    torch.manual_seed(0)
    reference = STGCN(size="quarter")
    state = {f"encoder_q.{k}": v for k, v in reference.state_dict().items()}
    state.update({"encoder_q.fc.0.weight": torch.zeros(256, 256), "queue": torch.zeros(128, 10),
                  "encoder_k.data_bn.weight": torch.zeros(75)})
    encoder = build_encoder(state)
    assert encoder.size == "quarter"
    assert torch.equal(encoder.state_dict()["data_bn.weight"], reference.state_dict()["data_bn.weight"])


def test_build_encoder_rejects_mismatching_checkpoints_naming_the_keys():
    state = STGCN(size="quarter").state_dict()
    with pytest.raises(CheckpointMismatchError, match=r"st_gcn_networks.0.gcn.conv.weight \(48, 3, 1, 1\)"):
        build_encoder(state, size="standard")
    broken = dict(state)
    del broken["edge_importance.3"]
    broken["head.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match=r"missing keys: edge_importance.3(.|\n)*unexpected keys: "
                                                      r"head.weight"):
        build_encoder(broken)
    odd = dict(state, **{"st_gcn_networks.0.gcn.conv.weight": torch.zeros(99, 3, 1, 1)})
    with pytest.raises(CheckpointMismatchError, match="st_gcn_networks.0.gcn.conv.weight has width 99 .expected 192 .standard. or 48 .quarter.."):
        build_encoder(odd)


def test_a_missing_encoder_names_the_train_py_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python train.py"):
        build_encoder(tmp_path / "run" / "encoder.pt")


def training_checkpoint(size="quarter", dim=64, seed=0):
    """A checkpoint_*.pt of train.py's shape: {"epoch", "model": C2VLModel state ("encoder.<ST-GCN key>",
    "heads.<m>.<ProjectionHead key>"), "loss_fn", "optimizer", "scale_optimizer", "scheduler", "rng", "history",
    "best"}; returns (checkpoint, the encoder it holds)."""
    from distill import ProjectionHead
    torch.manual_seed(seed)
    encoder, heads = STGCN(size=size), {m: ProjectionHead(256, 512, dim) for m in ("vision", "language")}
    optimizer = torch.optim.SGD(encoder.parameters(), lr=0.1, momentum=0.9)
    encoder(torch.randn(2, 3, 8, 25, 2)).sum().backward()
    optimizer.step()  # momentum buffers: tensors nested in the optimizer state
    model = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    model.update({f"heads.{m}.{k}": v for m, head in heads.items() for k, v in head.state_dict().items()})
    return {"epoch": 3, "model": model, "loss_fn": {"logit_scale": torch.tensor(2.6)},
            "optimizer": optimizer.state_dict(), "scale_optimizer": {}, "scheduler": {"last_epoch": 3},
            "rng": torch.get_rng_state(), "history": [{"epoch": 3, "loss": 1.5, "knn_top1": 40.0}],
            "best": 40.0}, encoder


def test_build_encoder_accepts_train_py_checkpoints_taking_the_encoder_part_of_their_model(tmp_path):
    checkpoint, reference = training_checkpoint()
    torch.save(checkpoint, tmp_path / "checkpoint_best.pt")
    encoder = build_encoder(tmp_path / "checkpoint_best.pt")
    assert encoder.size == "quarter" and encoder.fcn is None
    assert all(torch.equal(encoder.state_dict()[k], v) for k, v in reference.state_dict().items())


class NotATensor:
    pass


def test_a_file_that_is_not_a_checkpoint_is_refused_naming_the_file(tmp_path):
    import pickle
    (tmp_path / "notes.txt").write_text("these are not weights\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"encoder": NotATensor()}, tmp_path / "object.pt")
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"weights": NotATensor()}))
    torch.save([1, 2, 3], tmp_path / "list.pt")
    expected = {"notes.txt": "is not a PyTorch checkpoint, or it is damaged", "empty.pt": "is empty (0 bytes)",
                "object.pt": "holds test_skeleton_gcn.NotATensor beyond what torch.load(weights_only=True) reads",
                "plain.pkl": "holds pickle data beyond what", "list.pt": "expected a state dict"}
    for name, reason in expected.items():
        with pytest.raises(CheckpointMismatchError) as error:
            build_encoder(tmp_path / name)
        assert str(tmp_path / name) in str(error.value) and reason in str(error.value), str(error.value)
        # no advice to load it unsafely, which torch's own message gives
        assert "weights_only" not in str(error.value).replace("torch.load(weights_only=True)", "")


def test_reference_init_draws_the_field_weights_init():
    torch.manual_seed(0)
    model = STGCN(num_class=7, size="quarter")
    model.apply(reference_init)
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Conv1d))]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.mean()) < 2e-3 and abs(weights.std() - 0.02) < 1e-3  # N(0, 0.02)
    assert all(m.bias is None or not m.bias.any() for m in convs)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    gammas = torch.cat([m.weight for m in bns])
    assert abs(gammas.mean() - 1) < 5e-3 and abs(gammas.std() - 0.02) < 5e-3  # N(1, 0.02)
    assert not torch.cat([m.bias for m in bns]).any()


def test_orthogonal_init_makes_every_convolution_an_orthogonal_matrix():
    torch.manual_seed(0)
    model = STGCN(size="quarter")
    model.apply(orthogonal_init)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 10 * 2 + 3  # a graph and a temporal conv per block, three 1x1 residual convs
    for conv in convs:
        W = conv.weight.detach().flatten(1).double()  # (C_out, C_in * kernel)
        gram = W @ W.T if W.shape[0] <= W.shape[1] else W.T @ W  # the smaller Gram matrix is the identity
        assert torch.allclose(gram, torch.eye(len(gram), dtype=torch.float64), atol=1e-5), conv
        assert not conv.bias.any()
    bn = model.data_bn.weight
    assert torch.equal(bn, torch.ones_like(bn))  # BatchNorm keeps PyTorch's defaults
