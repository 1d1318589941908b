"""evaluate.py: every protocol on a tiny set whose right answer is known, the encoder loader, the command line."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import data
from utils.files import write_labels
import evaluate
from utils.plots import plot_confusion, plot_embedding
from distill import ProjectionHead
from prompts import DEMO_CLIP_MODEL
from skeleton_gcn import STGCN

ROOT = Path(__file__).resolve().parent.parent


def clustered_features(num_class=5, per_class=20, dim=256, noise=0.05, seed=0):
    """Features on num_class orthogonal directions plus small noise: perfectly separable, cosine and linearly."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_class).repeat_interleave(per_class)  # (N,)
    feats = 2.0 * F.one_hot(labels, dim).float() + noise * torch.randn(len(labels), dim, generator=g)  # (N, dim)
    return feats, labels


def shuffled(labels, seed=1):
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


class TensorSkeletons(torch.utils.data.Dataset):
    """A split in memory: items (x (3, T, 25, 2), label, index), `labels` like SkeletonDataset."""

    def __init__(self, x, labels):
        self.x, self.labels = x, np.asarray(labels)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.labels[i]), i


def skeletons(n, num_class, frames=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return TensorSkeletons(torch.randn(n, 3, frames, 25, 2, generator=g), np.arange(n) % num_class)


# ----------------------------------------------------------------------------------------------------------------
# Linear evaluation (E1)
# ----------------------------------------------------------------------------------------------------------------

def test_linear_evaluation_of_separable_features_is_100_percent_with_last_and_best_of_every_5_epochs():
    train, train_y = clustered_features(seed=0)
    test, test_y = clustered_features(seed=1)
    result = evaluate.linear_evaluation(train, train_y, test, test_y, num_class=5)
    assert result["top1"] == result["top1_best"] == result["top5"] == 100.0
    assert [e for e, _ in result["history"]] == list(range(5, 101, 5))
    assert result["top1"] == result["history"][-1][1]  # last epoch
    assert result["top1_best"] == max(acc for _, acc in result["history"])
    assert torch.equal(result["predictions"], test_y)


def test_linear_evaluation_on_shuffled_labels_is_near_chance():
    train, train_y = clustered_features(num_class=10, per_class=30, seed=0)
    test, test_y = clustered_features(num_class=10, per_class=30, seed=1)
    result = evaluate.linear_evaluation(train, shuffled(train_y), test, test_y, num_class=10, epochs=20,
                                        milestones=(16,))
    assert result["top1"] < 25.0  # chance is 10 %


def test_linear_evaluation_is_seeded_and_leaves_the_global_random_state_alone():
    train, train_y = clustered_features(noise=1.0, seed=0)
    test, test_y = clustered_features(noise=1.0, seed=1)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    runs = [evaluate.linear_evaluation(train, train_y, test, test_y, 5, epochs=10, milestones=(8,), seed=3)
            for _ in range(2)]
    assert torch.rand(1) == before
    assert runs[0]["history"] == runs[1]["history"] and torch.equal(runs[0]["predictions"], runs[1]["predictions"])
    other = evaluate.linear_evaluation(train, train_y, test, test_y, 5, epochs=10, milestones=(8,), seed=4)
    assert other["history"] != runs[0]["history"]


# ----------------------------------------------------------------------------------------------------------------
# kNN (E2)
# ----------------------------------------------------------------------------------------------------------------

def test_knn_of_separable_features_is_100_percent_for_k_1_10_20():
    train, train_y = clustered_features(seed=0)
    test, test_y = clustered_features(seed=1)
    assert evaluate.knn_evaluation(train, train_y, test, test_y) == {
        "knn_top1_k1": 100.0, "knn_top1_k10": 100.0, "knn_top1_k20": 100.0}


def test_knn_on_shuffled_labels_is_near_chance():
    train, train_y = clustered_features(num_class=10, per_class=30, seed=0)
    test, test_y = clustered_features(num_class=10, per_class=30, seed=1)
    result = evaluate.knn_evaluation(train, shuffled(train_y), test, test_y)
    assert all(acc < 25.0 for acc in result.values())  # chance is 10 %


def test_knn_votes_are_weighted_by_exp_similarity_over_tau():
    # One very close neighbour of class 0 outvotes two distant ones of class 1 (a majority vote would not).
    train = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, -0.8]])
    train_y = torch.tensor([0, 1, 1])
    test, test_y = torch.tensor([[1.0, 0.01]]), torch.tensor([0])
    assert evaluate.knn_evaluation(train, train_y, test, test_y, ks=(1, 3)) == {"knn_top1_k1": 100.0,
                                                                                "knn_top1_k3": 100.0}
    # With equal similarities the vote is a plain count: two of class 1 beat one of class 0.
    train = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert evaluate.knn_evaluation(train, train_y, test, torch.tensor([1]), ks=(3,))["knn_top1_k3"] == 100.0


# ----------------------------------------------------------------------------------------------------------------
# Semi-supervised
# ----------------------------------------------------------------------------------------------------------------

def test_semi_supervised_subsets_are_class_balanced_at_least_one_per_class_and_seeded():
    labels = np.repeat(np.arange(6), [300, 200, 100, 40, 7, 1])
    for fraction in (0.01, 0.1):
        subset = evaluate.class_balanced_subset(labels, fraction, seed=0)
        counts = np.bincount(labels[subset], minlength=6)
        expected = [max(1, round(fraction * n)) for n in (300, 200, 100, 40, 7, 1)]
        assert counts.tolist() == expected
        assert len(np.unique(subset)) == len(subset) and np.all(np.diff(subset) > 0)
        assert np.array_equal(subset, evaluate.class_balanced_subset(labels, fraction, seed=0))
        assert not np.array_equal(subset, evaluate.class_balanced_subset(labels, fraction, seed=1))
    # PKU-MMD II uses 41 of its 51 ids: absent classes get no labels and cause no error.
    assert set(labels[evaluate.class_balanced_subset(labels, 0.1, 0)]) == set(range(6))


def test_semi_supervised_fine_tunes_encoder_end_to_end_and_reports_mean_and_spread_over_seeds():
    torch.manual_seed(0)
    encoder = STGCN(size="quarter")
    train, test = skeletons(12, 3, seed=0), skeletons(6, 3, seed=1)
    indices = evaluate.class_balanced_subset(train.labels, 0.5, seed=0)
    top1, model = evaluate.fine_tune(encoder.state_dict(), "quarter", train, test, 3, indices, epochs=1)
    assert 0.0 <= top1 <= 100.0
    moved = [name for name, p in model.encoder.named_parameters()
             if not torch.equal(p.detach(), encoder.state_dict()[name])]
    assert "st_gcn_networks.0.gcn.conv.weight" in moved and "st_gcn_networks.9.tcn.2.weight" in moved

    result = evaluate.semi_supervised(encoder.state_dict(), "quarter", train, test, 3, fractions=(0.5,),
                                      seeds=(0, 1), epochs=1)
    runs = result["semi_50%"]["runs"]
    assert [r["seed"] for r in runs] == [0, 1] and all(r["num_labels"] == 6 for r in runs)
    accuracies = [r["top1"] for r in runs]
    assert result["semi_50%"]["mean"] == pytest.approx(np.mean(accuracies))
    assert result["semi_50%"]["std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert evaluate._fraction_key(0.01) == "semi_1%" and evaluate._fraction_key(0.1) == "semi_10%"


def test_semi_supervised_says_when_two_fractions_draw_the_same_labels():
    """4 samples per class: 1 % and 10 % both round to the minimum of one label per class, the same subsets."""
    torch.manual_seed(0)
    train, test = skeletons(12, 3, seed=0), skeletons(6, 3, seed=1)
    result = evaluate.semi_supervised(STGCN(size="quarter").state_dict(), "quarter", train, test, 3,
                                      fractions=(0.01, 0.1, 0.5), seeds=(0,), epochs=1)
    assert "same_labels_as" not in result["semi_1%"] and result["semi_10%"]["same_labels_as"] == "semi_1%"
    assert "same_labels_as" not in result["semi_50%"]  # two per class


def test_coverage_gives_chance_the_classes_and_the_reachable_ceiling():
    """Training covers classes 0-2; the test part holds 0, 1, 3, 3, 4: chance 1/4, two classes never trained on,
    3 of 5 test samples a linear probe or kNN cannot name: at most 40 % reachable."""
    got = evaluate.coverage(np.array([0, 0, 1, 2]), np.array([0, 1, 3, 3, 4]))
    assert got == {"chance_top1": 25.0, "classes_trained": 3, "classes_tested": 4, "classes_tested_not_trained": 2,
                   "samples_of_untrained_classes": 3, "reachable_top1": 40.0}


# ----------------------------------------------------------------------------------------------------------------
# Zero-shot (E3)
# ----------------------------------------------------------------------------------------------------------------

def test_zero_shot_with_text_features_equal_to_class_prototypes_is_100_percent():
    g = torch.Generator().manual_seed(0)
    text = F.normalize(torch.randn(8, 64, generator=g), dim=1)  # (C, D) class prototypes
    labels = torch.arange(8).repeat(5)
    Z_l = F.normalize(text[labels] + 0.05 * torch.randn(len(labels), 64, generator=g), dim=1)  # (N, D)
    result = evaluate.zero_shot(Z_l, text, labels)
    assert result["zero_shot_top1"] == result["zero_shot_top5"] == result["retrieval_t2s_mAP"] == 100.0
    assert result["retrieval_R@1"] == result["zero_shot_top1"] and result["retrieval_R@5"] == 100.0
    assert torch.equal(result["predictions"], labels)

    chance = evaluate.zero_shot(Z_l, text, shuffled(labels))
    assert chance["zero_shot_top1"] < 40.0 and chance["retrieval_t2s_mAP"] < 50.0


def test_average_precision_matches_the_definition():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6]])
    relevant = torch.tensor([[True, False, True, False]])
    assert evaluate.average_precision(scores, relevant).item() == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_clip_embeddings_apply_the_language_head_and_normalise():
    torch.manual_seed(0)
    head = ProjectionHead(256, 32, 16).eval()
    heads = {"language": head.state_dict(), "hidden": 32, "dim": 16}
    feats = torch.randn(4, 256)
    Z_l = evaluate.clip_embeddings(feats, heads, "language")
    assert torch.allclose(Z_l, F.normalize(head(feats), dim=1), atol=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# Per-class accuracy and pictures
# ----------------------------------------------------------------------------------------------------------------

def test_per_class_accuracy_counts_each_class_and_marks_absent_classes_nan():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 3])
    predictions = torch.tensor([0, 0, 0, 1, 1, 0, 3])
    accuracy = evaluate.per_class_accuracy(predictions, labels, 4)
    assert accuracy[0] == 75.0 and accuracy[1] == 50.0 and math.isnan(accuracy[2]) and accuracy[3] == 100.0
    assert evaluate.confusion_matrix(predictions, labels, 4)[0].tolist() == [3, 1, 0, 0]


def test_confusion_and_embedding_pngs_are_written(tmp_path):
    feats, labels = clustered_features(num_class=4, per_class=10)
    names = ["a", "b", "c", "d"]
    for path in (plot_confusion(evaluate.confusion_matrix(labels, labels, 4), names, tmp_path / "confusion.png"),
                 plot_embedding(feats, labels, names, tmp_path / "embedding.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion.png", "embedding.png"]  # no temp files left


# ----------------------------------------------------------------------------------------------------------------
# Features of the encoder
# ----------------------------------------------------------------------------------------------------------------

def test_recalibrated_batchnorm_holds_the_statistics_of_the_training_data_and_the_weights_stay():
    torch.manual_seed(0)
    encoder = STGCN(size="quarter")
    weights = {k: v.clone() for k, v in encoder.state_dict().items() if "running" not in k and "num_batches" not in k}
    dataset = skeletons(6, 3)
    evaluate.recalibrate_batchnorm(encoder, dataset, batch_size=6)  # one batch: the cumulative average is exact
    x = dataset.x.numpy()  # (N, C, T, V, M) -> data_bn's channels are (joint, coordinate) pairs over N*M and T
    per_channel = x.transpose(0, 4, 3, 1, 2).reshape(6 * 2, 25 * 3, -1).transpose(1, 0, 2).reshape(75, -1)
    np.testing.assert_allclose(encoder.data_bn.running_mean.numpy(), per_channel.mean(axis=1), atol=1e-5)
    np.testing.assert_allclose(encoder.data_bn.running_var.numpy(), per_channel.var(axis=1, ddof=1), rtol=1e-4)
    assert all(torch.equal(encoder.state_dict()[k], v) for k, v in weights.items()) and not encoder.training
    feats, _ = evaluate.extract_features(encoder, dataset)
    assert feats.std(dim=0).mean() > 1e-3  # no longer the near-constant features of the initial statistics


def test_features_are_computed_in_eval_mode_so_the_batch_size_does_not_change_them():
    torch.manual_seed(0)
    encoder = STGCN(size="quarter").train()
    dataset = skeletons(7, 3)
    feats_3, labels = evaluate.extract_features(encoder, dataset, batch_size=3)
    feats_7, _ = evaluate.extract_features(encoder, dataset, batch_size=7)
    assert feats_3.shape == (7, 256) and torch.allclose(feats_3, feats_7, atol=1e-5)
    assert labels.tolist() == dataset.labels.tolist() and encoder.training  # mode restored


# ----------------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------------

def write_tiny_split(data_root, dataset="demo", split="xsub", per_class=2, frames=20):
    """A demo-like split in the ST-GCN layout (written with data.py's writers): per_class samples per class."""
    C = data.num_classes(dataset)
    folder = data.split_dir(data_root, dataset, split)
    rng = np.random.default_rng(0)
    for part in data.PARTS:
        labels = np.repeat(np.arange(C), per_class)
        names = [f"S001C001P{1 + i:03d}R001A{1 + y:03d}" for i, y in enumerate(labels)]
        x = rng.normal(size=(len(labels), 3, frames, 25, 2)).astype(np.float32)  # (N, 3, T, 25, M)
        x[:, :, :, :, 0] += labels[:, None, None, None] * 0.3
        with data.NpyRowWriter(folder / f"{part}_data.npy", x.shape) as writer:
            writer.write_rows(x)
        write_labels(folder / f"{part}_label.pkl", names, labels)
    return data_root


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    """A fake train.py run on NTU-60 xsub: quarter encoder.pt and heads.pt with a demo-CLIP language head."""
    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    torch.save(STGCN(size="quarter").state_dict(), run / "encoder.pt")
    torch.save({"vision": None, "language": ProjectionHead(256, 32, 64).state_dict(), "dim": 64, "hidden": 32,
                "clip_model": DEMO_CLIP_MODEL, "pretrained": None, "logit_scale": 14.3, "dataset": "ntu60",
                "split": "xsub", "frames": 8, "normalization": "aimclr", "size": "quarter"}, run / "heads.pt")
    return run


def test_cli_on_a_tiny_split_writes_metrics_per_class_accuracy_confusion_and_embedding(tmp_path, pretrained_run):
    root = write_tiny_split(tmp_path / "datasets")
    out = tmp_path / "eval"
    result = subprocess.run(
        [sys.executable, "evaluate.py", "--encoder", str(pretrained_run / "encoder.pt"), "--dataset", "demo",
         "--data-root", str(root), "--out", str(out), "--protocols", "linear,knn,semi,zeroshot", "--device", "cpu",
         "--linear-epochs", "5", "--semi-fractions", "0.5", "--semi-seeds", "0", "--semi-epochs", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"outputs in {out}" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    C = data.num_classes("demo")
    assert metrics["source"] == "ntu60/xsub" and metrics["target"] == "demo/xsub" and metrics["transfer"] is True
    assert metrics["frames"] == 8 and metrics["size"] == "quarter"  # from heads.pt and the checkpoint
    for key in ("linear_top1", "linear_top1_best", "linear_top5", "knn_top1_k1", "knn_top1_k10", "knn_top1_k20",
                "zero_shot_top1", "zero_shot_top5", "retrieval_R@1", "retrieval_R@5", "retrieval_t2s_mAP"):
        assert 0.0 <= metrics[key] <= 100.0, key
    assert [e for e, _ in metrics["linear_history"]] == [5]
    assert list(metrics["linear_per_class"]) == data.class_names("demo") == list(metrics["zero_shot_per_class"])
    assert [r["num_labels"] for r in metrics["semi_50%"]["runs"]] == [C]
    assert metrics["zero_shot_head"] == "language"
    for png in ("confusion_linear.png", "confusion_zero_shot.png", "embedding.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert metrics["chance_top1"] == pytest.approx(100 / C) and metrics["classes_trained"] == C
    assert f"chance {100 / C:.1f} %; training part covers {C} classes, test part {C}" in result.stdout
    predicted = np.load(out / "predictions.npz")  # per test sample: what tools/ablation.py splits a spread with
    right = {k: 100 * (predicted[k] == predicted["labels"]).mean() for k in ("knn_k20", "zero_shot", "linear")}
    assert right["knn_k20"] == pytest.approx(metrics["knn_top1_k20"])
    assert right["zero_shot"] == pytest.approx(metrics["zero_shot_top1"])
    assert right["linear"] == pytest.approx(metrics["linear_top1_seeds"][0])  # the first probe's


def test_zero_shot_with_a_clip_checkpoint_that_is_not_there_names_pretrained_which_evaluate_takes(tmp_path,
                                                                                                 pretrained_run):
    """A run's heads.pt names its CLIP checkpoint; started elsewhere (or with the file moved), zero-shot stops at
    once, naming --pretrained, and evaluate.py --pretrained gives the checkpoint (here: none, random weights)."""
    root, run = write_tiny_split(tmp_path / "datasets"), tmp_path / "run"
    run.mkdir()
    (run / "encoder.pt").write_bytes((pretrained_run / "encoder.pt").read_bytes())
    heads = torch.load(pretrained_run / "heads.pt", weights_only=True)
    torch.save(dict(heads, pretrained="elsewhere/clip/c2vl-demo-tiny.pt"), run / "heads.pt")
    flags = ["--encoder", str(run / "encoder.pt"), "--dataset", "demo", "--data-root", str(root), "--protocols",
             "zeroshot", "--device", "cpu", "--out", str(tmp_path / "eval")]
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(flags)
    message = str(exit_info.value.code)
    assert "elsewhere/clip/c2vl-demo-tiny.pt" in message and "--pretrained" in message
    assert not (tmp_path / "eval").exists()  # it stopped before computing any feature
    metrics = evaluate.main(flags + ["--pretrained", "none"])
    assert 0 <= metrics["zero_shot_top1"] <= 100 and metrics["zero_shot_clip"] == [DEMO_CLIP_MODEL, None]


@pytest.mark.parametrize("flags, message", [
    (["--protocols", "linear,transfer"], "unknown 'transfer'"),
    (["--dataset", "ntu60", "--split", "xset"], "ntu60 has splits xsub, xview"),
    (["--knn-k", "0,10"], "values must be >= 1"),
    (["--semi-fractions", "0.01,x"], "comma-separated list"),
    (["--linear-epochs", "0"], "must be > 0"),
])
def test_cli_bad_flags_are_argparse_errors(capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--encoder", "encoder.pt"] + flags)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_cli_missing_inputs_name_the_commands_that_make_them(tmp_path, pretrained_run):
    with pytest.raises(SystemExit, match="python train.py"):
        evaluate.main(["--encoder", str(tmp_path / "encoder.pt"), "--data-root", str(tmp_path)])
    with pytest.raises(SystemExit, match=f"python demo/world.py --data-root {tmp_path}"):
        evaluate.main(["--encoder", str(pretrained_run / "encoder.pt"), "--data-root", str(tmp_path),
                       "--out", str(tmp_path / "eval")])


def test_cli_device_cuda_without_cuda_is_an_argparse_error_naming_device_cpu(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only machine, also on a GPU one
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--encoder", "encoder.pt", "--device", "cuda"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == ("python evaluate.py: error: --device cuda: this torch build "
                                                        "or machine has no CUDA device (use --device cpu)")


class NotATensor:
    pass


def test_cli_encoder_or_heads_that_are_not_checkpoints_are_refused_naming_the_file(tmp_path, pretrained_run):
    (tmp_path / "notes.txt").write_text("these are not weights\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"weights": NotATensor()}, tmp_path / "object.pt")
    for name, reason in (("notes.txt", "is not a PyTorch checkpoint, or it is damaged"),
                         ("empty.pt", "is empty (0 bytes)"),
                         ("object.pt", "holds test_evaluate.NotATensor beyond what torch.load(weights_only=True) reads")):
        with pytest.raises(SystemExit) as exit_info:
            evaluate.main(["--encoder", str(tmp_path / name), "--data-root", str(tmp_path), "--device", "cpu"])
        message = str(exit_info.value.code)
        assert message.startswith("error: ") and str(tmp_path / name) in message and reason in message, message
        assert "weights_only" not in message.replace("torch.load(weights_only=True)", "")
    # a run folder someone shared: its heads.pt is read as carefully as the encoder
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "encoder.pt").write_bytes((pretrained_run / "encoder.pt").read_bytes())
    torch.save({"language": NotATensor()}, shared / "heads.pt")
    with pytest.raises(SystemExit, match=f"refused to load {shared / 'heads.pt'}"):
        evaluate.main(["--encoder", str(shared / "encoder.pt"), "--data-root", str(tmp_path), "--device", "cpu"])


def test_zero_shot_heads_of_a_training_checkpoint_are_its_own_with_the_runs_clip(tmp_path):
    from test_skeleton_gcn import training_checkpoint
    checkpoint, _ = training_checkpoint(dim=64)
    torch.save(checkpoint, tmp_path / "checkpoint_best.pt")
    settings = {"dataset": "demo", "split": "xsub", "frames": 16, "normalization": "aimclr", "size": "quarter",
                "clip_model": DEMO_CLIP_MODEL, "pretrained": "none", "epochs": 3}
    (tmp_path / "config.json").write_text(json.dumps({"train": settings, "prompt_dim": 64}))
    heads = evaluate.load_heads(tmp_path / "checkpoint_best.pt")
    for m in ("vision", "language"):
        mine = {k[len(f"heads.{m}."):]: v for k, v in checkpoint["model"].items() if k.startswith(f"heads.{m}.")}
        assert heads[m].keys() == mine.keys() and all(torch.equal(heads[m][k], v) for k, v in mine.items())
    assert (heads["dim"], heads["hidden"], heads["clip_model"], heads["pretrained"]) == (64, 512, DEMO_CLIP_MODEL, None)
    assert evaluate.pretraining_info(tmp_path / "checkpoint_best.pt") == {
        k: settings[k] for k in ("dataset", "split", "frames", "normalization", "size", "clip_model", "pretrained")}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real tiny train.py run, with tests/test_train.py's split and settings: (run folder, data root)."""
    from test_train import TINY, run_train, write_tiny_demo_split
    root = write_tiny_demo_split(tmp_path_factory.mktemp("tiny"))
    run = tmp_path_factory.mktemp("runs") / "run"
    result = run_train(["--data-root", str(root), "--out", str(run), *TINY])
    assert result.returncode == 0, result.stderr[-3000:]
    return run, root


def test_train_py_checkpoints_evaluate_exactly_like_its_encoder_pt_and_heads_pt(trained_run, tmp_path):
    run, root = trained_run

    def metrics(encoder, protocols, out):
        evaluate.main(["--encoder", str(encoder), "--protocols", protocols, "--out", str(tmp_path / out),
                       "--data-root", str(root), "--dataset", "demo", "--split", "xsub", "--linear-epochs", "5",
                       "--device", "cpu"])
        saved = json.loads((tmp_path / out / "metrics.json").read_text())
        return {k: v for k, v in saved.items() if k not in ("encoder", "config", "seconds")}

    final = metrics(run / "encoder.pt", "linear,knn,zeroshot", "final")
    assert metrics(run / "checkpoint_last.pt", "linear,knn,zeroshot", "last") == final  # the same epoch
    assert final["frames"] == 16 and final["source"] == "demo/xsub" and final["size"] == "quarter"
    best = metrics(run / "checkpoint_best.pt", "linear,knn", "best")  # the kNN monitor's best epoch
    assert 0 <= best["linear_top1"] <= 100 and 0 <= best["knn_top1_k20"] <= 100 and best["frames"] == 16
    # an interrupted run has no encoder.pt or heads.pt: the settings come from its config.json
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    for name in ("checkpoint_last.pt", "config.json"):
        (interrupted / name).write_bytes((run / name).read_bytes())
    assert metrics(interrupted / "checkpoint_last.pt", "linear,knn,zeroshot", "alone") == final


def test_standardize_uses_the_training_features_statistics_per_dimension():
    train = torch.randn(50, 4, dtype=torch.float64) * torch.tensor([1.0, 2.0, 3.0, 4.0]) + 5
    test = torch.randn(7, 4, dtype=torch.float64)
    a, b = evaluate.standardize(train, test, eps=0.0)
    mu, sigma = train.mean(0), train.std(0)
    assert torch.allclose(a, (train - mu) / sigma) and torch.allclose(b, (test - mu) / sigma)
    assert torch.allclose(a.mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-12)


def test_features_with_a_large_offset_need_standardizing_and_auto_does_it_for_the_transformer(tmp_path):
    """Transformer-like features (a common offset ~100x their spread): the raw probe at lr 3.0 stays near chance,
    the standardised one separates them; evaluate.py picks standard for a Transformer checkpoint by itself."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3
    feats = 0.8 + 0.005 * (torch.nn.functional.one_hot(labels, 16).float() + 0.3 * torch.randn(60, 16, generator=g))
    raw = evaluate.linear_evaluation(feats, labels, feats, labels, 3, epochs=20, seed=0)
    std = evaluate.linear_evaluation(*evaluate.standardize(feats, feats)[:1], labels, evaluate.standardize(feats, feats)[1],
                                     labels, 3, epochs=20, seed=0)
    assert std["top1"] == 100.0 and raw["top1"] < std["top1"]
    config = evaluate.EvalConfig(encoder="x.pt")
    assert config.linear_norm == "auto"


def test_iscs_released_gru_weights_evaluate_with_iscs_frame_stepping_unless_the_flag_says_otherwise(tmp_path):
    """A GRU checkpoint with no run beside it (ISC's, CMD's) is evaluated with ISC's frame-by-frame stepping, the
    function its weights were trained as (tests/test_skeleton_gru.py compares the features); --gru_stepping chooses."""
    from test_skeleton_gru import isc_weights
    root = write_tiny_split(tmp_path / "datasets")
    (tmp_path / "isc").mkdir()
    torch.save({"state_dict": isc_weights()}, tmp_path / "isc" / "bigru.pt")
    flags = ["--encoder", str(tmp_path / "isc" / "bigru.pt"), "--data-root", str(root), "--protocols", "knn",
             "--frames", "8", "--device", "cpu"]
    default = evaluate.main(flags + ["--out", str(tmp_path / "default")])
    frame = evaluate.main(flags + ["--out", str(tmp_path / "frame"), "--gru_stepping", "frame"])
    whole = evaluate.main(flags + ["--out", str(tmp_path / "whole"), "--gru-stepping", "sequence"])
    assert (default["architecture"], default["gru_stepping"], whole["gru_stepping"]) == ("gru", "frame", "sequence")
    assert {k: v for k, v in default.items() if k.startswith("knn_")} == {k: v for k, v in frame.items()
                                                                         if k.startswith("knn_")}


def test_a_gru_runs_stepping_goes_from_train_py_through_heads_pt_to_evaluate_py(tmp_path):
    import train
    from test_train import TINY, run_train, write_tiny_demo_split
    assert train.C2VLModel("quarter", 16, ["vision"], encoder="gru", gru_stepping="frame").encoder.stepping == "frame"
    root, run = write_tiny_demo_split(tmp_path / "tiny"), tmp_path / "run"
    result = run_train(["--data-root", str(root), "--out", str(run), *TINY, "--encoder", "gru", "--gru_stepping",
                        "frame", "--epochs", "1", "--linear-epochs", "1", "--no-baseline"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert torch.load(run / "heads.pt", weights_only=True)["gru_stepping"] == "frame"
    assert json.loads((run / "metrics.json").read_text())["gru_stepping"] == "frame"  # train.py's own evaluation
    flags = ["--encoder", str(run / "encoder.pt"), "--data-root", str(root), "--protocols", "knn", "--device", "cpu"]
    assert evaluate.main(flags + ["--out", str(tmp_path / "recorded")])["gru_stepping"] == "frame"
    assert evaluate.main(flags + ["--out", str(tmp_path / "flag"), "--gru_stepping", "sequence"])["gru_stepping"] == \
        "sequence"


def test_a_transformer_checkpoint_without_a_run_is_evaluated_at_its_own_frames_and_odd_frames_are_refused(tmp_path):
    """MAMP's checkpoints come without heads.pt: T is the frames its temporal embedding was built for (MAMP's: 120);
    a --frames that is not whole 4-frame patches stops before any feature, naming --frames."""
    from skeleton_transformer import SkeletonTransformer
    root = write_tiny_split(tmp_path / "datasets")
    (tmp_path / "mamp").mkdir()
    torch.save({"model": SkeletonTransformer(size="quarter", frames=8).state_dict()}, tmp_path / "mamp" / "mamp.pt")
    flags = ["--encoder", str(tmp_path / "mamp" / "mamp.pt"), "--data-root", str(root), "--protocols", "knn",
             "--device", "cpu"]
    assert evaluate.main(flags + ["--out", str(tmp_path / "own")])["frames"] == 8
    with pytest.raises(ValueError, match="--frames 6: the Transformer reads 4-frame patches"):
        evaluate.main(flags + ["--out", str(tmp_path / "odd"), "--frames", "6"])
    assert not (tmp_path / "odd").exists()
