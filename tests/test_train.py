"""train.py end to end on a tiny split: outputs, exact resume after SIGKILL, 2 processes = 1 process, messages."""
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

import data
from utils.files import write_labels
import prompts
import train
from utils.diagnostics import add_step, batch_diagnostics, epoch_means
from utils.pair_noise import break_pairs
from utils.runs import collapse_message
from utils.training_prompts import load_prompt_caches, training_modalities
from demo.world import demo_names
from tools import ntu_names, prompt_commands

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--size", "quarter", "--frames", "16", "--batch-size", "8", "--epochs", "3", "--linear-epochs", "5",
        "--monitor-every", "1", "--lr", "0.01", "--workers", "0", "--pretrained", "none"]  # the caches below


class RandomProjectionClip(prompts.Clip):
    """The tiny CLIP's interface with features that differ between inputs: a fixed random projection of the pixels,
    a random unit vector per text. (A randomly initialised CLIP maps all of these inputs to nearly one feature, which
    makes every target uniform and a step's gradient mostly float rounding.)"""

    def encode_pixels(self, pixels, batch_size=256):
        W = torch.randn(pixels[0].numel(), 64, generator=torch.Generator().manual_seed(0))
        return torch.nn.functional.normalize(pixels.flatten(1) @ W, dim=1)  # (n, 64)

    def encode_texts(self, texts, batch_size=256):
        rows = [torch.randn(64, generator=torch.Generator().manual_seed(zlib.crc32(t.encode()))) for t in texts]
        return torch.nn.functional.normalize(torch.stack(rows), dim=1)  # (n, 64)


def write_tiny_demo_split(root, n_train=24, n_val=12, seed=0):
    """A tiny 'demo' split in the ST-GCN layout with language and vision prompt caches of the demo CLIP."""
    rng = np.random.default_rng(seed)
    names = demo_names()
    folder = data.split_dir(root, "demo", "xsub")
    folder.mkdir(parents=True)
    for part, n, offset in (("train", n_train, 0), ("val", n_val, n_train)):
        part_names = sorted(names[offset:offset + n])
        labels = [ntu_names.parse_ntu_name(name).action - 1 for name in part_names]
        x = np.zeros((n, 3, 300, 25, 2), dtype=np.float32)
        for i, label in enumerate(labels):  # a class-dependent motion, so that there is something to learn
            t = np.linspace(0, 2 * np.pi, 40)
            for person in range(2):
                x[i, :, :40, :, person] = (rng.normal(0, 0.3, (3, 1, 25)) + rng.normal(0, 0.05, (3, 40, 25))
                                           + np.sin((label + 1) * t + person)[None, :, None] * 0.3)
        np.save(folder / f"{part}_data.npy", x)
        write_labels(folder / f"{part}_label.pkl", [f"{name}.skeleton" for name in part_names], labels)
    tiny = prompts.load_clip(prompts.DEMO_CLIP_MODEL, None)
    clip = RandomProjectionClip(tiny.model, tiny.preprocess, tiny.tokenizer)
    train_names = [data.sample_name(n) for n in prompt_commands.split_names(root, "demo", "xsub", "train")]
    answers = {name: [f"the person is doing action {ntu_names.parse_ntu_name(name).action}"] * 16 for name in train_names}
    for k, name in enumerate(train_names):  # two answers per sample, so that drawing one of the K matters
        answers[name][k % 2] = f"a person moves, sample {k}"
    pixels = {name: torch.rand(16, 3, clip.image_size, clip.image_size, generator=torch.Generator().manual_seed(i))
              for i, name in enumerate(train_names)}
    for pooling in ("mean", "sample"):  # P1 caches, and the all-K caches of --pooling sample
        prompts.encode_language(answers, prompts.cache_path(root, "demo", "xsub", "train", "language",
                                                            prompts.DEMO_CLIP_MODEL, None, pooling),
                                clip, prompts.DEMO_CLIP_MODEL, None, pooling=pooling)
        prompts.encode_prompts({name: name for name in train_names},
                               prompts.cache_path(root, "demo", "xsub", "train", "vision", prompts.DEMO_CLIP_MODEL,
                                                  None, pooling), "vision", lambda key: list(pixels[key]),
                               clip, prompts.DEMO_CLIP_MODEL, None, pooling=pooling)
    return root


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_demo_split(tmp_path_factory.mktemp("tiny"))


def run_train(args, cwd=ROOT):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], capture_output=True, text=True,
                          env=env, cwd=cwd)


def kill_at_first_checkpoint(args, out):
    """Start `train.py args --out out`, SIGKILL it as soon as checkpoint_last.pt exists (mid-way through epoch 2)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *args, "--out", str(out)], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "checkpoint_last.pt").is_file() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (out / "checkpoint_last.pt").is_file()
    assert not (out / "encoder.pt").exists(), "the run finished before it could be killed"


def epoch_records(run):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in records]


@pytest.fixture(scope="module")
def full_run(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    result = run_train(["--data-root", str(tiny_root), "--out", str(out), *TINY])
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_end_to_end_writes_every_output(full_run):
    out, result = full_run
    for name in ("config.json", "metrics.jsonl", "metrics.json", "encoder.pt", "heads.pt", "checkpoint_last.pt",
                 "checkpoint_best.pt", "curves.png", "alpha_schedule.png", "soft_targets.png", "embedding.png",
                 "confusion_linear.png", "confusion_zero_shot.png", "random_init_encoder.pt"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["seed"] == 0 and config["distill"]["beta"] == 0.5
    assert config["environment"]["torch"] == torch.__version__
    assert set(config["modalities"]) == {"vision", "language"}
    records = epoch_records(out)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [round(r["alpha_e"], 6) for r in records] == [round(0.5 * e / 3, 6) for e in (1, 2, 3)]  # M6
    for r in records:
        assert {"loss", "loss_vision", "loss_language", "logit_scale", "lr", "knn_top1"} <= set(r)
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("linear_top1", "linear_top1_best", "random_init_linear_top1", "knn_top1_k1", "knn_top1_k20",
                "random_init_knn_top1_k20", "zero_shot_top1", "linear_per_class", "zero_shot_per_class"):
        assert key in metrics, key
    assert 0.0 <= metrics["linear_top1"] <= metrics["linear_top1_best"] <= 100.0
    assert "linear evaluation on demo xsub" in result.stdout and str(out) in result.stdout


def test_encoder_checkpoint_loads_strictly_in_skeleton_gcn(full_run):
    from skeleton_gcn import STGCN
    from utils.checkpoints import load_checkpoint
    out, _ = full_run
    load_checkpoint(STGCN(size="quarter"), out / "encoder.pt")
    heads = torch.load(out / "heads.pt", weights_only=True)
    assert heads["size"] == "quarter" and heads["clip_model"] == prompts.DEMO_CLIP_MODEL


def test_evaluate_cli_runs_on_the_trained_encoder(full_run, tiny_root):
    out, _ = full_run
    result = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "--encoder", str(out / "encoder.pt"),
                             "--dataset", "demo", "--split", "xsub", "--data-root", str(tiny_root),
                             "--frames", "16", "--protocols", "linear,knn,zeroshot", "--linear-epochs", "5",
                             "--out", str(out / "eval")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert "linear_top1" in json.dumps(metrics)


@pytest.mark.parametrize("batches", ["loader", "resident"])
def test_resume_after_sigkill_ends_with_the_same_weights_and_metrics(full_run, tiny_root, tmp_path, batches):
    """Also: the resident input (the split on the device, --input resident) trains exactly like the DataLoader
    (the reference run, --input auto = loader on a CPU)."""
    reference, _ = full_run
    out = tmp_path / "killed"
    kill_at_first_checkpoint(["--data-root", str(tiny_root), *TINY, "--input", batches], out)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_train(["--resume", str(out)], cwd=elsewhere)  # everything comes from the run's config.json
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(elsewhere.iterdir()) == []
    for name in ("encoder.pt", "heads.pt"):
        a, b = torch.load(reference / name, weights_only=True), torch.load(out / name, weights_only=True)
        state_a = a if name == "encoder.pt" else a["language"]
        state_b = b if name == "encoder.pt" else b["language"]
        for key in state_a:
            assert torch.equal(state_a[key], state_b[key]), f"{name}: {key}"
    assert epoch_records(out) == epoch_records(reference)
    metrics_a = json.loads((reference / "metrics.json").read_text())
    metrics_b = json.loads((out / "metrics.json").read_text())
    assert metrics_a["linear_top1"] == metrics_b["linear_top1"]
    assert json.loads((out / "config.json").read_text())["train"]["input"] == batches


def test_resume_with_broken_pairs_breaks_the_same_pairs(tiny_root, tmp_path):
    """--pair_noise comes back from config.json on --resume and breaks the same pairs: a run killed after its first
    epoch and resumed ends with the weights of the same run left alone."""
    flags = ["--data-root", str(tiny_root), *TINY, "--pair_noise", "0.5", "--no-baseline", "--linear-epochs", "1"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_train([*flags, "--out", str(whole)]).returncode == 0
    kill_at_first_checkpoint(flags, killed)
    assert run_train(["--resume", str(killed)]).returncode == 0
    a, b = torch.load(whole / "encoder.pt", weights_only=True), torch.load(killed / "encoder.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert epoch_records(killed) == epoch_records(whole)
    assert json.loads((killed / "config.json").read_text())["train"]["pair_noise"] == 0.5


def test_break_pairs_permutes_exactly_round_p_n_prompts_among_themselves_and_nothing_else():
    n, D = 20, 4
    rows = {m: np.arange(n, dtype=np.float32)[:, None] * np.ones(D, np.float32) + (100 if m == "vision" else 0)
            for m in ("vision", "language")}  # row i of each modality holds the number i (+ 100 for vision)
    indices = list(range(2, n))  # samples 0 and 1 have no prompts here (--allow-partial): never chosen
    noisy, broken = break_pairs(rows, indices, 0.3, seed=5, modalities=["vision", "language"])
    chosen = np.flatnonzero(broken)
    assert len(chosen) == round(0.3 * len(indices)) == 5 and set(chosen) <= set(indices)
    for m in rows:
        got = noisy[m][:, 0] - (100 if m == "vision" else 0)
        assert all(got[i] != i for i in chosen)  # every broken sample holds another sample's prompt ...
        assert sorted(got[chosen]) == sorted(chosen)  # ... one of the broken ones: a permutation among them
        assert all(got[i] == i for i in range(n) if not broken[i])  # the other pairs are untouched
        assert np.array_equal(rows[m][:, 0] - (100 if m == "vision" else 0), np.arange(n))  # the cache is not written
    # both modalities move together: a broken sample's vision and language prompts come from the same sample
    assert np.array_equal(noisy["vision"][chosen, 0] - 100, noisy["language"][chosen, 0])
    again, same = break_pairs(rows, indices, 0.3, seed=5, modalities=["vision", "language"])
    assert np.array_equal(same, broken) and np.array_equal(again["vision"], noisy["vision"])  # a function of the seed
    assert not np.array_equal(break_pairs(rows, indices, 0.3, seed=6, modalities=["vision"])[1], broken)
    language_only, _ = break_pairs(rows, indices, 0.3, seed=5, modalities=["language"])
    assert language_only["vision"] is rows["vision"]  # --pair_noise_modality language: the vision prompts stay
    untouched, none = break_pairs(rows, indices, 0.0, seed=5, modalities=["vision", "language"])
    assert untouched is rows and not none.any()  # p = 0: the run of before the knob, exactly


def test_similar_pair_noise_gives_a_broken_sample_the_answers_of_its_nearest_look_alike():
    """kind "similar": a broken sample's language prompt becomes that of the other sample with the nearest vision
    prompt (an LMM mistaking a look-alike action); its vision prompt and the intact pairs stay."""
    g = np.random.default_rng(0)
    vision = g.normal(size=(12, 5)).astype(np.float32)
    language = np.arange(12, dtype=np.float32)[:, None] * np.ones(3, np.float32)  # row i holds i
    noisy, broken = break_pairs({"vision": vision, "language": language}, list(range(12)), 0.5, seed=3,
                                      modalities=["vision", "language"], kind="similar")
    unit = vision / np.linalg.norm(vision, axis=1, keepdims=True)
    for i in range(12):
        if broken[i]:
            cosine = [unit[i] @ unit[j] if j != i else -np.inf for j in range(12)]
            assert noisy["language"][i, 0] == int(np.argmax(cosine)) != i
        else:
            assert noisy["language"][i, 0] == i
    assert broken.sum() == 6 and noisy["vision"] is vision


def test_the_loss_logs_broken_and_intact_pairs_apart():
    """With a mask of broken pairs the retrieval and target entropy of each group are logged as (sum, count) pairs;
    the epoch's value of each is its sum over its count."""
    X, P = learnable_problem()
    torch.manual_seed(0)
    loss_fn = train.C2VLLoss(None, len(X), 8, "language")
    broken = torch.zeros(len(X), dtype=torch.bool)
    broken[:6] = True
    loss, batch = loss_fn({"language": torch.nn.Linear(12, 8)(X)}, {"language": P["language"]}, torch.arange(len(X)),
                          1, 2)
    info = batch_diagnostics(loss, batch, broken)
    assert float(info["retrieval_language_broken"][1]) == 6 and float(info["retrieval_language_intact"][1]) == 10
    total = float(info["retrieval_language_broken"][0]) + float(info["retrieval_language_intact"][0])
    assert total == pytest.approx(16 * float(info["retrieval_language"]))
    totals = {}
    for _ in range(2):
        add_step(totals, info)
    record = epoch_means(totals, 2)
    assert record["retrieval_language_broken"] == float(info["retrieval_language_broken"][0]) / 6
    assert record["retrieval_language"] == float(info["retrieval_language"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pretrain_process(rank, world, port, root, out, pooling, pair_noise="0", encoder="stgcn"):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    config, distill_config = train.parse_args(["--data-root", root, "--out", out, "--size", "quarter",
                                               "--frames", "16", "--batch-size", "8", "--epochs", "1",
                                               "--max-steps", "1", "--optimizer", "sgd", "--monitor-every", "0",
                                               "--lr", "0.1", "--device", "cpu", "--pooling", pooling,
                                               "--pretrained", "none", "--pair_noise", pair_noise,
                                               "--encoder", encoder])  # tiny caches
    try:
        device, rank, world = train.setup_distributed(config.device)
        train.pretrain(config, distill_config, device, rank, world)
    finally:
        train.shutdown_distributed()


@pytest.mark.parametrize("pooling, pair_noise, encoder", [("mean", "0", "stgcn"), ("sample", "0", "stgcn"),
                                                           ("mean", "0.5", "stgcn"), ("mean", "0", "gru"),
                                                           ("mean", "0", "transformer")])
def test_two_gloo_processes_train_like_one_process_on_the_global_batch(tiny_root, tmp_path, pooling, pair_noise,
                                                                       encoder):
    """One optimiser step on a global batch of 8: 2 processes x 4 samples (DDP, the loss over the global batch,
    BatchNorm over the global batch) give the weights of 1 process x 8 samples. One step, because ST-GCN's small
    BatchNorm variances amplify float rounding over further steps (and SGD, because Adam would turn the rounding
    of the zero gradients of biases before BatchNorm into steps of +-lr)."""
    one, two = tmp_path / "one", tmp_path / "two"
    # with pair noise, every process breaks the same pairs (a function of the seed): the weights agree only then
    for out, world in ((one, 1), (two, 2)):
        torch.multiprocessing.spawn(_pretrain_process, nprocs=world,
                                    args=(world, free_port(), str(tiny_root), str(out), pooling, pair_noise, encoder))
    state_one = torch.load(one / "checkpoint_last.pt", weights_only=True)
    state_two = torch.load(two / "checkpoint_last.pt", weights_only=True)
    torch.manual_seed(0)
    initial = train.C2VLModel("quarter", state_one["model"]["heads.language.net.3.weight"].shape[0],
                              ("vision", "language"), encoder, frames=16).state_dict()
    moved = 0
    for key, value in state_one["model"].items():
        if value.is_floating_point() and "running" not in key:
            step_one, step_two = value - initial[key], state_two["model"][key] - initial[key]
            # Equal updates up to float rounding, which BatchNorm of low-variance joints amplifies (up to ~1e-3 of a
            # step: 2 processes add the gradient in another order); the losses below agree to 1e-6.
            assert (step_two - step_one).norm() <= 2e-3 * step_one.norm() + 1e-5, key
            moved += int(step_one.norm() > 0)
    assert moved > (100 if encoder == "stgcn" else 10)  # the step did change the weights
    torch.testing.assert_close(state_two["loss_fn"]["log_logit_scale"], state_one["loss_fn"]["log_logit_scale"])
    assert state_two["history"][0]["loss"] == pytest.approx(state_one["history"][0]["loss"], rel=1e-6)


def test_missing_dataset_names_the_command_that_makes_it(tmp_path):
    result = run_train(["--dataset", "ntu60", "--split", "xsub", "--data-root", str(tmp_path)])
    assert result.returncode == 2
    assert "python tools/gendata.py ntu" in result.stderr and "Traceback" not in result.stderr


def test_missing_prompt_cache_names_the_command_that_makes_it(tiny_root, tmp_path):
    folder = data.split_dir(tmp_path, "demo", "xview")
    folder.mkdir(parents=True)
    source = data.split_dir(tiny_root, "demo", "xsub")
    for name in ("train_data.npy", "train_label.pkl", "val_data.npy", "val_label.pkl"):
        (folder / name).symlink_to(source / name)
    config, distill_config = train.parse_args(["--data-root", str(tmp_path), "--split", "xview",
                                               "--modalities", "language", "--out", str(tmp_path / "run")])
    with pytest.raises(FileNotFoundError, match="python prompts.py encode --dataset demo --split xview") as error:
        caches = {"language": train.prompt_paths(config)[0]["language"]}
        load_prompt_caches(config, ["S001C001P001R001A001"], caches)
    command = str(error.value).splitlines()[1].split()[2:]  # the command it names parses as prompts.py's
    args = prompt_commands.build_parser().parse_args(command)
    assert (args.parts, args.modalities, args.model) == (["train"], ["language"], prompts.DEMO_CLIP_MODEL)
    assert args.data_root == str(tmp_path)  # every non-default flag of the run: it runs as printed
    with pytest.raises(SystemExit, match="no language prompts"):  # it reaches the step after the split: the prompts
        prompts.main(command)


def test_with_only_language_prompts_the_message_encodes_language_only(tiny_root, tmp_path):
    folder = data.split_dir(tmp_path, "demo", "xview")
    folder.mkdir(parents=True)
    for name in ("train_data.npy", "train_label.pkl"):
        (folder / name).symlink_to(data.split_dir(tiny_root, "demo", "xsub") / name)
    language = prompts.prompts_path(tmp_path, "demo", "xview", "train", "language")
    language.parent.mkdir(parents=True)
    language.write_text("{}")  # released prompts imported: language only, not encoded yet
    config, _ = train.parse_args(["--data-root", str(tmp_path), "--split", "xview"])
    with pytest.raises(FileNotFoundError) as error:
        training_modalities(config, *train.prompt_paths(config))
    assert "--modalities language --model" in str(error.value) and "vision" not in str(error.value)


def test_resume_of_a_folder_without_checkpoint_says_what_is_missing(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    for folder, message in ((tmp_path / "run", "it has no checkpoint_last.pt (the run stopped before its first "
                                               "epoch ended: start it again)"),
                            (tmp_path / "nowhere", "no run folder there")):
        result = run_train(["--resume", str(folder)])
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("saved", [False, True])
def test_ctrl_c_names_a_resume_command_only_when_there_is_a_checkpoint(tmp_path, monkeypatch, capsys, saved):
    def interrupted(config, distill_config, device, rank, world):
        config.out = str(tmp_path)
        raise KeyboardInterrupt

    if saved:
        (tmp_path / "checkpoint_last.pt").write_bytes(b"")
    monkeypatch.setattr(train, "pretrain", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--dataset", "ntu60"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 130
    assert (f"python train.py --resume {tmp_path}" in err) == saved
    assert ("no checkpoint to continue from" in err) == (not saved)


def learnable_problem(n=16, d=8, seed=0, common=0.0):
    """n samples whose prompt features P are a fixed linear image of their inputs: there is something to learn.
    common > 0 adds a direction shared by every prompt (CLIP features are alike: mean cosine 0.8-0.9 on the demo)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 12, generator=g)
    u = torch.nn.functional.normalize(torch.randn(d, generator=g), dim=0)
    P = {m: torch.nn.functional.normalize(common * u + torch.nn.functional.normalize(
        X @ torch.randn(12, d, generator=g), dim=1), dim=1) for m in ("vision", "language")}
    return X, P


class Heads(torch.nn.Module):
    """The projection heads g_m on a 12-d input, in place of ST-GCN: X (n, 12) -> {m: (n, 8)}."""

    def __init__(self):
        super().__init__()
        self.heads = torch.nn.ModuleDict({m: train.ProjectionHead(12, 64, 8) for m in ("vision", "language")})

    def forward(self, x):
        return {m: head(x) for m, head in self.heads.items()}


def run_real_preset(grad_clip, steps=40):
    """`steps` steps of the real preset's optimisers (SGD 0.1, momentum 0.9) with prompts of mean cosine 0.91."""
    config, distill_config = train.parse_args(["--dataset", "ntu60", "--batch-size", "32",
                                               "--grad-clip", str(grad_clip)])
    assert (config.optimizer, config.lr, config.lr_schedule) == ("sgd", 0.1, "step")  # the real preset
    X, P = learnable_problem(n=32, common=3.0)
    torch.manual_seed(0)
    net = Heads()
    loss_fn = train.C2VLLoss(distill_config, len(X), 8)
    optimizers = train.make_optimizers(config, net, loss_fn)[:2]
    infos = [batch_diagnostics(*train.train_step(net, loss_fn, optimizers, X, P, torch.arange(len(X)), 1, 3,
                                                 grad_clip=config.grad_clip))
             for _ in range(steps)]  # within epoch 1, so that the targets stay the same and losses compare
    with torch.no_grad():
        Z = net(X)["language"]
    S = torch.nn.functional.normalize(Z, dim=1) @ P["language"].T  # (N, N)
    return ([i["loss"].item() for i in infos], [i["logit_scale"].item() for i in infos], Z.norm(dim=1).mean().item(),
            (S.argmax(dim=1) == torch.arange(len(X))).float().mean().item())


def test_real_preset_optimiser_keeps_t_in_range_and_lowers_the_loss():
    losses, scales, norm, retrieval = run_real_preset(grad_clip=train.TrainConfig.grad_clip)  # the default, 1
    chance = 2 * math.log(32)  # ln N per modality, two modalities
    assert 10.0 < min(scales) and max(scales) <= 100.0, scales  # t in the SGD group: 0.0004 by epoch 3
    assert losses[-1] < 0.7 * chance < losses[0], (losses[0], losses[-1], chance)
    assert retrieval >= 0.8 and norm < 10  # in-batch retrieval; chance 1/32


def test_without_gradient_clipping_sgd_inflates_the_embeddings_and_learns_less():
    """The mechanism behind --grad-clip: the loss depends on Z only through Z/|Z|, so its gradient is orthogonal to
    Z and every SGD step lengthens Z; the first steps' large gradients (prompts alike: a skeleton that leads for
    one prompt leads for all) make |Z| grow ~8x, which divides every later step by |Z|^2."""
    _, _, norm, retrieval = run_real_preset(grad_clip=0)
    _, _, clipped_norm, clipped_retrieval = run_real_preset(grad_clip=1)
    assert norm > 4 * clipped_norm and retrieval < clipped_retrieval - 0.3, (norm, clipped_norm, retrieval,
                                                                             clipped_retrieval)


def test_a_training_step_reads_the_teacher_then_writes_the_embeddings_it_trained_on():
    """(M5) train_step: the loss reads the rows epoch e - 1 wrote; after the optimiser step the bank holds the
    embeddings Z of this step (computed before the step), marked as written in epoch e."""
    config, distill_config = train.parse_args(["--dataset", "demo", "--batch-size", "16"])
    X, P = learnable_problem()
    torch.manual_seed(0)
    net, loss_fn = Heads(), train.C2VLLoss(distill_config, len(X), 8)
    optimizers = train.make_optimizers(config, net, loss_fn)[:2]
    index = torch.arange(len(X))
    train.train_step(net, loss_fn, optimizers, X, P, index, 1, 3)
    before = {m: loss_fn.bank.embeddings(m).clone() for m in P}
    _, batch = train.train_step(net, loss_fn, optimizers, X, P, index, 2, 3)
    assert bool(batch.has_teacher.all())  # epoch 1 wrote every row
    assert loss_fn.bank.written_in.tolist() == [2] * len(X)
    for m in P:
        torch.testing.assert_close(loss_fn.bank.embeddings(m).float(), batch.Z[m].detach(), atol=1e-3, rtol=0)
        assert not torch.equal(loss_fn.bank.embeddings(m), before[m])


def test_train_step_clips_the_gradient_to_norm_grad_clip():
    """One SGD step (first step: momentum buffer = gradient) moves every weight by -lr g min(1, c / |g|), |g| the L2
    norm of the whole gradient of the encoder and heads; the logit scale is not clipped (its own Adam)."""
    config, distill_config = train.parse_args(["--dataset", "ntu60", "--batch-size", "32", "--weight-decay", "0"])
    X, P = learnable_problem(n=32, common=3.0)
    for c in (0.5, 1e6):
        torch.manual_seed(0)
        net, loss_fn = Heads(), train.C2VLLoss(distill_config, len(X), 8)
        before = [p.detach().clone() for p in net.parameters()]
        loss, _ = loss_fn(net(X), P, torch.arange(len(X)), 1, 3)
        grads = torch.autograd.grad(loss, list(net.parameters()))
        norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
        assert norm > 0.5  # so that c = 0.5 clips
        torch.manual_seed(0)
        net, loss_fn = Heads(), train.C2VLLoss(distill_config, len(X), 8)
        train.train_step(net, loss_fn, train.make_optimizers(config, net, loss_fn)[:2], X, P, torch.arange(len(X)),
                         1, 3, grad_clip=c)
        for p, p0, g in zip(net.parameters(), before, grads):
            torch.testing.assert_close(p - p0, -config.lr * g * min(1.0, c / norm.item()), rtol=1e-3, atol=1e-6)


def test_metrics_jsonl_keeps_its_keys(full_run):
    out, _ = full_run
    diagnostics = {f"{k}_{m}" for k in ("loss", "retrieval", "target_entropy", "prompt_cosine")
                   for m in ("vision", "language")}
    for line in (out / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert set(record) == diagnostics | {"loss", "logit_scale", "teacher_fraction", "alpha_e", "epoch", "lr",
                                             "samples_per_s", "knn_top1"}
        assert all(type(v) in (int, float) for v in record.values()), record


def test_epoch_averages_summed_on_the_device_equal_the_per_step_means():
    """train.py adds the diagnostics' float64 tensors over the epoch and reads them once: exactly the mean of the
    per-step values, as when each step was read on its own."""
    X, P = learnable_problem()
    torch.manual_seed(0)
    model = torch.nn.Linear(12, 8)
    loss_fn = train.C2VLLoss(None, len(X), 8, "language")
    totals, read_each_step, seen = {}, [], 0
    for step, epoch in enumerate((1, 2, 2, 2)):
        index = torch.arange(len(X)).roll(-5 * step)[:8]  # 0-7, 5-12, 10-15 0 1, 15 0-6
        loss, batch = loss_fn({"language": model(X[index])}, {"language": P["language"][index]}, index, epoch, 2)
        loss_fn.bank.write(batch.index, batch.Z, epoch)  # as train.train_step
        info = batch_diagnostics(loss, batch)
        add_step(totals, info)  # as in train.py
        seen += len(batch.index)
        read_each_step.append({k: float(v) for k, v in info.items()})
    record = epoch_means(totals, 4)
    for k in totals:
        assert record[k] == sum(r[k] for r in read_each_step) / 4, k  # the same float64 additions
    # the rows epoch 1 wrote and epoch 2 has not rewritten teach: epoch 1 none; then 5-7, 0 1, 2-4
    assert float(totals["teacher_fraction"]) == 0 + 3 / 8 + 2 / 8 + 3 / 8
    assert seen == 32


def test_a_training_step_reads_no_value_back_from_the_device(monkeypatch):
    """No host synchronisation per step: on the meta device, which holds no values, .item(), .tolist() and
    bool(tensor) raise, as each would wait for a GPU. train.py's step in epochs 1 and 2 (no teacher, teacher)."""
    monkeypatch.setattr(torch, "autocast", lambda *args, **kwargs: contextlib.nullcontext())  # no meta autocast
    meta, modalities = torch.device("meta"), ("vision", "language")
    config = train.fill_presets(train.TrainConfig(dataset="demo"))
    model = train.C2VLModel("quarter", 16, modalities).to(meta)
    loss_fn = train.C2VLLoss(None, 20, 16, modalities).to(meta)
    optimizer, scale_optimizer, _ = train.make_optimizers(config, model, loss_fn)
    x, index = torch.empty(8, 3, 16, 25, 2, device=meta), torch.arange(8).to(meta)
    P = {m: torch.empty(8, 16, device=meta) for m in modalities}
    totals, seen = {}, 0
    for epoch in (1, 2):
        loss, batch = train.train_step(model, loss_fn, (optimizer, scale_optimizer), x, P, index, epoch, 2,
                                       grad_clip=config.grad_clip)  # the clip as well
        add_step(totals, batch_diagnostics(loss, batch))  # as train.train_epoch
        seen += len(batch.index)
    assert totals["loss"].device == meta and seen == 16


@pytest.mark.skipif(not any(shutil.which(c) for c in ("c++", "g++", "clang++")),
                    reason="torch.compile on the CPU needs a C++ compiler")
def test_compiled_model_trains_like_the_eager_one():
    """train.py --compile: the same loss and the same optimiser step as the eager model, up to the kernels' rounding.
    One step, as the 2-process test: ST-GCN's BatchNorm of low-variance joints amplifies rounding over further
    steps, by 0.3-2 % of the loss within two more steps on one machine and not another (so later losses are not
    compared). About 25 s with inductor's on-disk cache, 1-2 minutes on a machine's first compile (2 CPU cores)."""
    # SGD: AdamW would turn the rounding of near-zero gradients into steps of +-lr that differ between the kernels
    config = train.fill_presets(train.TrainConfig(dataset="demo", optimizer="sgd", lr=0.01))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, 16, 25, 2, generator=g)
    P = {m: torch.randn(8, 16, generator=g) for m in ("vision", "language")}
    losses, steps = {}, {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = train.C2VLModel("quarter", 16, tuple(P))
        before = {k: v.clone() for k, v in model.state_dict().items() if v.is_floating_point() and "running" not in k}
        net = torch.compile(model) if compiled else model
        loss_fn = train.C2VLLoss(None, 8, 16)
        optimizer, scale_optimizer, _ = train.make_optimizers(config, model, loss_fn)
        loss, _ = train.train_step(net, loss_fn, (optimizer, scale_optimizer), x, P, torch.arange(8), 1, 2)
        losses[compiled] = loss.item()
        steps[compiled] = {k: model.state_dict()[k] - v for k, v in before.items()}
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)  # the same weights: only rounding differs
    moved = 0
    # data_bn of near-still joints amplifies rounding most (0.4 % measured); biases before a BatchNorm have a zero
    # gradient up to rounding, so their steps are ~1e-6 of noise (the absolute term)
    for key, step in steps[False].items():
        assert (steps[True][key] - step).norm() <= 1e-2 * step.norm() + 1e-5, key
        moved += int(step.norm() > 0)
    assert moved > 50  # the step did change the weights


def collapse(history, config):
    """utils.runs.collapse_message as train.py calls it, for both modalities."""
    return collapse_message(history, config.batch_size, config.collapse_patience, ("vision", "language"), config.lr,
                            config.grad_clip, config.logit_scale_lr)


def test_collapse_guard_fires_on_a_collapsed_history_and_stays_quiet_on_a_learning_one():
    config, _ = train.parse_args(["--dataset", "demo", "--batch-size", "64"])
    chance = math.log(64)
    # The real preset's optimiser on the demo before the fix: t -> 0, every loss exactly at chance.
    dead = [dict(epoch=1, logit_scale=4.14, loss_vision=4.78, loss_language=4.77)] + [
        dict(epoch=e, logit_scale=t, loss_vision=chance, loss_language=chance + 1e-5)
        for e, t in ((2, 0.0068), (3, 0.0004), (4, 0.0004))]
    message = collapse(dead, config)
    assert "training has collapsed" in message and "t = 0.0004" in message and "--lr" in message
    pinned = [dict(r, logit_scale=1.0, loss_vision=4.0, loss_language=4.0) for r in dead]  # t at its floor
    assert "training has collapsed" in collapse(pinned, config)
    # The demo as it learns: vision at chance (random CLIP), language below it -> quiet.
    learning = [dict(epoch=e, logit_scale=14.2, loss_vision=4.167, loss_language=4.077 - 0.01 * e) for e in range(1, 11)]
    assert collapse(learning, config) is None
    above = [dict(r, loss_vision=4.3, loss_language=4.25) for r in learning]  # soft targets: above ln N, learning
    assert collapse(above, config) is None
    assert collapse(dead[:3], config) is None  # too few epochs yet
    config.collapse_patience = 0
    assert collapse(dead, config) is None


def test_a_run_forced_to_collapse_stops_with_the_numbers(tiny_root, tmp_path):
    # Frozen encoder (lr 0) and a logit scale free to run to its floor: nothing can be learned.
    result = run_train(["--data-root", str(tiny_root), "--out", str(tmp_path / "dead"), *TINY, "--epochs", "6",
                        "--lr", "0", "--logit_scale_lr", "1", "--monitor-every", "0"])
    assert result.returncode == 2, result.stderr[-2000:]
    assert "training has collapsed" in result.stderr and ": t = 1," in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert len((tmp_path / "dead" / "metrics.jsonl").read_text().splitlines()) < 6  # stopped before the last epoch


def test_normal_runs_do_not_trip_the_collapse_guard(full_run):
    assert "collapsed" not in full_run[1].stderr


def test_bad_flags_are_explained():
    for args, message in ((["--dataset", "ntu61"], "argument --dataset: invalid choice: 'ntu61'"),
                          (["--dataset", "ntu60", "--split", "xset"], "--split for ntu60 must be one of"),
                          (["--size", "huge"], "argument --size: invalid choice: 'huge'"),
                          (["--device", "tpu"], "--device must be auto | cpu | cuda | cuda:N, got 'tpu'"),
                          (["--inter", "sideways"], "invalid choice"),
                          (["--epochs", "0"], "--epochs must be >= 1"),
                          (["--grad-clip", "-1"], "--grad-clip must be >= 0")):
        result = run_train(args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr[-500:])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_device_cuda_without_cuda_is_explained():
    result = run_train(["--device", "cuda"])
    assert result.returncode == 2 and "no CUDA device (use --device cpu)" in result.stderr, result.stderr[-500:]


def test_presets_fill_only_what_the_user_left_empty():
    config, _ = train.parse_args(["--dataset", "ntu60", "--lr", "0.05"])
    assert (config.size, config.epochs, config.batch_size, config.lr) == ("standard", 300, 128, 0.05)
    assert config.clip_model == "ViT-L-14-336" and config.pretrained == "openai"
    demo, _ = train.parse_args([])
    assert demo.size == "quarter" and demo.baseline and demo.clip_model == prompts.DEMO_CLIP_MODEL
    # demo/clip.py makes it: a local checkpoint, stored absolute so that evaluate.py finds it from any directory
    assert demo.pretrained == os.path.abspath("datasets/demo/clip/c2vl-demo-tiny.pt")
    elsewhere, _ = train.parse_args(["--data-root", "/data", "--no-baseline"])
    assert elsewhere.pretrained == "/data/demo/clip/c2vl-demo-tiny.pt" and not elsewhere.baseline


def test_the_real_preset_takes_the_reference_init_the_demo_pytorch_defaults():
    real, _ = train.parse_args(["--dataset", "ntu60"])
    demo, _ = train.parse_args([])
    assert (real.init, demo.init) == ("reference", "pytorch")
    torch.manual_seed(0)
    model = train.C2VLModel("quarter", 16, ["vision"], init="reference")
    bn = model.encoder.data_bn.weight
    assert abs(bn.mean() - 1) < 0.01 and bn.std() > 0.005  # N(1, 0.02), not PyTorch's ones
    orthogonal = train.C2VLModel("quarter", 16, ["vision"], init="orthogonal")
    W = orthogonal.encoder.st_gcn_networks[1].tcn[2].weight.detach().flatten(1).double()  # (16, 16 * 9)
    assert torch.allclose(W @ W.T, torch.eye(16, dtype=torch.float64), atol=1e-5)  # the encoder's convs orthogonal
    assert orthogonal.heads["vision"].net[0].bias.any()  # the heads keep PyTorch's defaults
    gru = train.C2VLModel("quarter", 16, ["vision"], encoder="gru", init="reference")
    head = gru.heads["vision"].net[0].weight
    assert abs(head.std() - 0.02) < 2e-3 and not gru.heads["vision"].net[0].bias.any()  # the heads: N(0, 0.02)


def test_init_seed_fixes_the_initialisation_and_leaves_the_rest_to_seed():
    def initial(*flags):
        config, _ = train.parse_args(["--no-baseline", *flags])
        return config, train.initial_model(config, 16, ["vision"]).state_dict()
    seed0, seed1, fixed = initial("--seed", "0"), initial("--seed", "1"), initial("--seed", "1", "--init-seed", "0")
    assert fixed[0].seed == 1  # the batch order and the probes still follow --seed
    assert all(torch.equal(fixed[1][k], seed0[1][k]) for k in seed0[1])  # the initialisation of seed 0
    assert any(not torch.equal(seed1[1][k], seed0[1][k]) for k in seed0[1])


@pytest.mark.parametrize("encoder", ["gru", "transformer"])
def test_each_encoder_trains_resumes_exactly_and_evaluates_every_protocol_without_being_named(tiny_root, tmp_path,
                                                                                              encoder):
    flags = ["--data-root", str(tiny_root), *TINY, "--encoder", encoder, "--epochs", "2", "--linear-epochs", "2"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    result = run_train([*flags, "--out", str(whole)])
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((whole / "metrics.json").read_text())
    assert metrics["architecture"] == encoder and "random_init_knn_top1_k20" in metrics  # its own random init
    assert metrics["linear_norm"] == ("standard" if encoder == "transformer" else "none")
    assert torch.load(whole / "heads.pt", weights_only=True)["encoder"] == encoder
    evaluated = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "--encoder", str(whole / "encoder.pt"),
                                "--dataset", "demo", "--split", "xsub", "--data-root", str(tiny_root),
                                "--protocols", "linear,knn,semi,zeroshot", "--linear-epochs", "2", "--semi-epochs", "1",
                                "--semi-seeds", "0", "--semi-fractions", "0.5", "--out", str(tmp_path / "eval")],
                               capture_output=True, text=True, cwd=ROOT)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["architecture"] == encoder and report["frames"] == 16
    assert {"linear_top1", "knn_top1_k20", "zero_shot_top1"} <= set(report) and "semi" in json.dumps(report)
    kill_at_first_checkpoint([*flags, "--no-baseline"], killed)
    assert run_train(["--resume", str(killed)]).returncode == 0
    a, b = torch.load(whole / "encoder.pt", weights_only=True), torch.load(killed / "encoder.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert epoch_records(killed) == epoch_records(whole)
