"""C2VL pretraining, then skeleton-only linear evaluation: the whole paper in one command (docs/method.md §1, §9).

    python train.py                                 # the demo: data, prompts, pretraining, evaluation (CPU, minutes)
    python train.py --dataset ntu60 --split xsub    # the real benchmark (prepare it with tools/gendata.py and prompts.py)
    torchrun --nproc_per_node=4 train.py --dataset ntu120 --split xset

Pretraining (M1-M12): the skeleton encoder f (ST-GCN, skeleton_gcn.py) and the heads g_v, g_l (distill.py) are
trained so that Z_m = normalize(g_m(f(X))) matches the frozen CLIP features of the vision / language knowledge
prompts of the same clips (prompts.py), with the progressive soft targets of soft_targets.py / distill.py.
Then f is frozen and evaluated on skeletons alone (evaluate.py): linear evaluation, kNN, and, because the
skeletons now live in CLIP's space, zero-shot classification against CLIP text features of the class names.

Not here: the maths of the targets and loss (soft_targets.py, distill.py), the data (data.py), the prompt features
(prompts.py), the evaluation protocols (evaluate.py).
"""
import argparse
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm import tqdm

import data
import distill
import evaluate
import prompts
from distill import C2VLLoss, DistillConfig, ProjectionHead
from skeleton_gcn import STGCN, CheckpointMismatchError, read_checkpoint
from utils.config import add_arguments, check_choices, from_args, setting
from utils.batches import GlobalBatchSampler, TrainSetupError, make_batches
from utils.diagnostics import prompt_health
from utils.distributed import DEVICES, barrier, convert_global_batchnorm, resolve_device, setup_distributed
from utils.files import save_torch, write_json, write_text
from utils.plots import plot_alpha_schedule, plot_curves, plot_soft_targets


# Reconstruction: the paper's optimiser settings were not available to us; real datasets use the recipe of the
# skeleton self-supervised methods C2VL compares with (AimCLR/CrosSCLR: SGD 0.1, momentum 0.9, wd 1e-4, batch 128,
# lr x0.1 at epoch 250 of 300); the demo uses a short AdamW run that converges in minutes on a CPU.
PRESETS = {
    "demo": dict(size="quarter", epochs=10, batch_size=64, optimizer="adamw", lr=2e-3, weight_decay=1e-4,
                 lr_schedule="cosine", lr_steps="", monitor_every=0, clip_model=prompts.DEMO_CLIP_MODEL,
                 pretrained="{data_root}/demo/clip/c2vl-demo-tiny.pt"),  # demo/clip.py makes it
    "real": dict(size="standard", epochs=300, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=1e-4,
                 lr_schedule="step", lr_steps="250", monitor_every=10, clip_model=prompts.DEFAULT_CLIP_MODEL,
                 pretrained=prompts.DEFAULT_CLIP_PRETRAINED),
}


@dataclass
class TrainConfig:
    """Every setting of a run (config.json holds the effective values). None = the dataset's PRESETS value."""

    dataset: str = setting("demo", "ntu60 | ntu120 | pku1 | pku2 | demo", choices=tuple(data.DATASETS))
    split: str = setting("xsub", "xsub | xview (ntu60, pku) | xset (ntu120)")
    data_root: str = setting("datasets", "where tools/gendata.py put the prepared splits (and prompts.py the caches)")
    out: str = setting("", "output folder; default runs/<dataset>-<split>-<time>")
    resume: str = setting("", "a run folder to continue from its last checkpoint, with the run's own settings")
    size: str | None = setting(None, "ST-GCN width: standard (64/128/256) | quarter (16/32/64 -> 256)",
                               ("standard", "quarter"), str)
    frames: int = setting(50, "T after resizing the valid frames (data.py preprocessing)")
    normalization: str = setting("aimclr", "skeleton preprocessing", data.NORMALIZATIONS)
    modalities: str = setting("auto", "prompt modalities (auto: every modality whose training cache exists)",
                              ("auto", "vision", "language", "both"))
    clip_model: str | None = setting(None, "the open_clip model the prompt caches were encoded with", kind=str)
    pretrained: str | None = setting(None, "its pretrained tag or checkpoint ('none': random weights)", kind=str)
    pooling: str = setting("mean", "prompt pooling over the K frames: mean (P1) | sample (one per step)",
                           ("mean", "sample"))
    allow_partial: bool = setting(False, "train on the samples that have prompts when a cache covers part of the split")
    epochs: int | None = setting(None, "pretraining epochs E (M6)", kind=int)
    batch_size: int | None = setting(None, "N, the global batch over all processes: M1-M12 are computed over it", kind=int)
    optimizer: str | None = setting(None, "optimiser of the encoder and heads", ("sgd", "adamw"), str)
    lr: float | None = setting(None, "learning rate", kind=float)
    weight_decay: float | None = setting(None, "weight decay (not on biases, BatchNorm, the logit scale)", kind=float)
    lr_schedule: str | None = setting(None, "per-epoch schedule", ("step", "cosine"), str)
    lr_steps: str | None = setting(None, "epochs after which lr is x0.1 (schedule 'step'), comma separated", kind=str)
    warmup_epochs: int = setting(0, "linear lr warm-up")
    grad_clip: float = setting(1.0, "largest L2 norm of the encoder and heads' gradient, rescaled above it (0: off)")
    logit_scale_lr: float = setting(1e-4, "Adam learning rate of the logit scale s = log t, 1 <= t <= 100 (0: t fixed)")
    collapse_patience: int = setting(3, "stop when the loss sits at chance (ln N) or t at 1 for this many epochs "
                                     "after the first (0: never)")
    monitor_every: int | None = setting(None, "kNN monitor on the test split every n epochs (0: off)", kind=int)
    linear_epochs: int = setting(100, "linear evaluation epochs (docs/method.md §9: 100, lr x0.1 after 80)")
    seed: int = setting(0, "seed of the initialisation, the batch order and the linear evaluation")
    device: str = setting("auto", f"{DEVICES} (auto: cuda when available)")
    workers: int = setting(-1, "DataLoader workers per process (-1: 0 on CPU, 4 on GPU)")
    input: str = setting("auto", "batches from the split kept on the device, one index per batch (resident), or "
                         "from a DataLoader (loader); auto: resident on a GPU when it fits in a quarter of its memory",
                         ("auto", "resident", "loader"))
    amp: str = setting("auto", "bf16 autocast (auto: on for CUDA)", ("auto", "on", "off"))
    compile: bool = setting(False, "torch.compile the encoder and heads (off: not yet shown to pay, docs/speed.md)")
    sync_bn: bool = setting(True, "under torchrun, BatchNorm statistics over the global batch (as in one process)")
    baseline: bool | None = setting(None, "also evaluate the same encoder at random initialisation (preset: on for the "
                                          "demo)", kind=bool)
    max_steps: int = setting(0, "stop each epoch after this many steps (smoke tests); 0 = all")


def preset_table():
    """PRESETS as the text `--help` ends with."""
    names = list(PRESETS["real"])
    w = max(16, *(len(str(v)) for preset in PRESETS.values() for v in preset.values()))
    rows = [f"  {'setting':14s} {'demo':>{w}s} {'real datasets':>16s}"]
    rows += [f"  {n:14s} {str(PRESETS['demo'][n]):>{w}s} {str(PRESETS['real'][n]):>16s}" for n in names]
    return "settings left unset take the dataset's preset:\n" + "\n".join(rows)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, epilog=preset_table(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, TrainConfig, none_means="the preset")
    add_arguments(parser.add_argument_group("C2VL loss (distill.py; docs/method.md §11)"), DistillConfig)
    args = parser.parse_args(argv)
    try:
        return fill_presets(from_args(TrainConfig, args)), from_args(DistillConfig, args)
    except ValueError as error:
        parser.error(str(error))


def fill_presets(config):
    """Check the choices, then fill the dataset's preset values into the settings left empty."""
    check_choices(config)  # --dataset among them; preset values are valid by construction
    if config.split not in data.DATASETS[config.dataset]:
        raise ValueError(f"--split for {config.dataset} must be one of {data.DATASETS[config.dataset]}, "
                         f"got {config.split!r}")
    preset = PRESETS["demo" if config.dataset == "demo" else "real"]
    for name, value in preset.items():
        if getattr(config, name) is None:  # left unset
            setattr(config, name, value.format(data_root=config.data_root) if isinstance(value, str) else value)
    resolve_device(config.device)
    if config.grad_clip < 0:
        raise ValueError(f"--grad-clip must be >= 0 (0: off), got {config.grad_clip}")
    for name in ("epochs", "batch_size", "frames", "linear_epochs"):
        if getattr(config, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(config, name)}")
    if config.baseline is None:
        config.baseline = config.dataset == "demo"
    return config


# ----------------------------------------------------------------------------------------------------------------
# Processes, devices, files
# ----------------------------------------------------------------------------------------------------------------

def environment():
    """What produced the run: library versions and the machine."""
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "open_clip_torch": version("open_clip_torch"), "platform": platform.platform(), "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


# ----------------------------------------------------------------------------------------------------------------
# The model and the batches
# ----------------------------------------------------------------------------------------------------------------

class C2VLModel(nn.Module):
    """Skeleton encoder f and one projection head g_m per prompt modality: X -> {m: g_m(f(X))} (B, D)."""

    def __init__(self, size, dim, modalities):
        super().__init__()
        self.encoder = STGCN(size=size)
        self.heads = nn.ModuleDict({m: ProjectionHead(STGCN.feature_dim, 512, dim) for m in modalities})

    def forward(self, x):  # x (B, 3, T, 25, 2)
        feature = self.encoder(x)  # (B, 256) = f(X)
        return {m: head(feature) for m, head in self.heads.items()}  # {m: (B, D)}


class TrainingCollapsedError(TrainSetupError):
    """The run stopped learning (collapse_message); the message gives the numbers and what to try."""


def prompt_cache_path(config, modality):
    """Where prompts.py writes the training split's cache of `modality` for the configured CLIP and pooling."""
    return prompts.cache_path(config.data_root, config.dataset, config.split, "train", modality, config.clip_model,
                              clip_pretrained(config), config.pooling)


def load_prompt_caches(config, names, modalities):
    """{m: float16 (N, D) or (N, K, D) array} aligned to the training split, and the mask of samples that have all."""
    features, present = {}, np.ones(len(names), dtype=bool)
    for m in modalities:
        path = prompt_cache_path(config, m)
        if not path.is_file():
            raise FileNotFoundError(missing_prompts_message(config, [m], path))
        features[m], has = prompts.load_prompt_features(path, names, config.clip_model, clip_pretrained(config),
                                                        allow_partial=config.allow_partial)
        present &= has
    return features, present


def clip_pretrained(config):
    """The pretrained tag as prompts.py takes it: None for random weights (--pretrained none)."""
    return None if config.pretrained.lower() == "none" else config.pretrained


def missing_prompts_message(config, modalities, path=None):
    where = f" (looked for {path})" if path else ""
    pooling = " --pooling sample" if config.pooling == "sample" else ""
    return (f"no {' or '.join(modalities)} prompt features for {config.dataset} {config.split} train with CLIP "
            f"{config.clip_model} / {config.pretrained}{where}. Make them with:\n"
            f"  python prompts.py encode --dataset {config.dataset} --split {config.split} --parts train "
            f"--modalities {' '.join(modalities)} --model {config.clip_model} --pretrained {config.pretrained}"
            f"{pooling}\n(released language prompts first go through `python prompts.py import ...`; see docs/prompts.md)")


def prompt_modalities(config):
    """--modalities auto: every modality whose training prompt cache exists (both when both do)."""
    if config.modalities in distill.MODALITIES:
        return (config.modalities,)
    if config.modalities == "both":
        return distill.MODALITIES
    found = tuple(m for m in distill.MODALITIES if prompt_cache_path(config, m).is_file())
    if not found:  # propose encoding the modalities whose prompt files exist (released prompts: language only)
        have = [m for m in distill.MODALITIES
                if prompts.prompts_path(config.data_root, config.dataset, config.split, "train", m).is_file()]
        raise FileNotFoundError(missing_prompts_message(config, have or list(distill.MODALITIES)))
    return found


def make_optimizers(config, model, loss_fn):
    """The encoder and heads' optimiser (SGD with momentum 0.9 or AdamW, no weight decay on biases and BatchNorm)
    with its per-epoch schedule, and the logit scale's own Adam."""
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = {"fused": True} if next(model.parameters()).is_cuda else {}  # one kernel for all parameters
    optimizer = (torch.optim.SGD(groups, lr=config.lr, momentum=0.9, **fused) if config.optimizer == "sgd"
                 else torch.optim.AdamW(groups, lr=config.lr, **fused))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, make_lr_lambda(config))
    # Reconstruction: the logit scale s = log t has its own Adam at a small rate, as CLIP trains it (in the SGD
    # group at lr 0.1 it ran to t ~ 0 within two epochs and training died); alternative: --logit_scale_lr 0, fixed t.
    loss_fn.log_logit_scale.requires_grad_(config.logit_scale_lr > 0)
    scale_optimizer = torch.optim.Adam(loss_fn.parameters(), lr=config.logit_scale_lr, betas=(0.9, 0.98), eps=1e-6)
    return optimizer, scale_optimizer, scheduler


def collapse_message(history, config, modalities):
    """Why the run is dead, or None: for collapse_patience epochs after the first, every modality's loss sat within
    0.1 % of chance, ln N: the loss of uniform predictions over the global batch whatever the soft targets (a
    learning run with soft targets can sit above ln N, so only "at" counts), or the logit scale sat at its floor 1."""
    chance, patience = math.log(config.batch_size), config.collapse_patience
    recent = [r for r in history if r["epoch"] > 1][-patience:] if patience else []
    dead = [r for r in recent if r["logit_scale"] <= 1.001
            or all(abs(r[f"loss_{m}"] - chance) <= 1e-3 * chance for m in modalities)]
    if not patience or len(dead) < patience:  # dead is a subset of the last `patience` epochs
        return None
    rows = "\n".join(f"  epoch {r['epoch']}: t = {r['logit_scale']:.4g}, "
                     + ", ".join(f"loss_{m} = {r[f'loss_{m}']:.4f}" for m in modalities) for r in recent)
    return (f"training has collapsed: for {patience} epochs the loss per modality stayed at chance "
            f"(ln N = {chance:.4f}, N = {config.batch_size}) or the logit scale t sat at its floor 1:\n{rows}\n"
            f"Nothing more will be learned. Try a smaller --lr (now {config.lr}), --optimizer adamw, --grad_clip 1 "
            f"(now {config.grad_clip}), a smaller --logit_scale_lr (now {config.logit_scale_lr}; 0 fixes t), and "
            f"check that the prompt features are not all alike; --collapse_patience 0 turns this guard off.")


def make_lr_lambda(config):
    steps = [int(s) for s in config.lr_steps.split(",") if s.strip()] if config.lr_steps else []

    def factor(epoch):  # epoch: 0-based number of finished epochs
        warm = (epoch + 1) / config.warmup_epochs if epoch < config.warmup_epochs else 1.0
        if config.lr_schedule == "cosine":
            return warm * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
        return warm * 0.1 ** sum(epoch >= s for s in steps)
    return factor


# ----------------------------------------------------------------------------------------------------------------
# Pretraining
# ----------------------------------------------------------------------------------------------------------------

def prepare_demo_inputs(config, rank):
    """The demo makes its own data, demo CLIP and prompt features when they are missing or were made by an earlier
    demo CLIP (later runs reuse them)."""
    from demo.clip import demo_prompts_ready, prepare_demo_prompts  # plumbing: the reading path never needs it
    from demo.world import prepare_demo
    caches = [prompt_cache_path(config, m) for m in distill.MODALITIES]
    if rank == 0 and not demo_prompts_ready(caches, config.clip_model, clip_pretrained(config), config.data_root):
        prepare_demo(config.data_root)
        prepare_demo_prompts(config.data_root, splits=(config.split,), parts=("train",),  # what training reads
                             random_clip=clip_pretrained(config) is None)
    barrier()


def run_folder(config):
    if config.resume:
        return Path(config.resume)
    if config.out:
        return Path(config.out)
    return Path("runs") / f"{config.dataset}-{config.split}-{time.strftime('%Y%m%d-%H%M%S')}"


def resumed_settings(config):
    """--resume: the run's own saved settings (train and loss); only --device and --workers come from the command."""
    out = Path(config.resume)
    missing = [name for name in ("config.json", "checkpoint_last.pt") if not (out / name).is_file()]
    if missing:
        why = ("no run folder there" if not out.is_dir() else f"it has no {' and no '.join(missing)}"
               + (" (the run stopped before its first epoch ended: start it again)" if missing == ["checkpoint_last.pt"]
                  else ""))
        raise FileNotFoundError(f"--resume {out}: nothing to continue from, {why}")
    saved = json.loads((out / "config.json").read_text())
    saved["train"].setdefault("grad_clip", 0.0)  # runs begun before gradient clipping continue without it
    resumed = TrainConfig(**{**saved["train"], "resume": str(out), "out": str(out), "device": config.device,
                             "workers": config.workers})
    return resumed, DistillConfig(**saved["distill"])


def pretrain(config, distill_config):
    if config.resume:
        config, distill_config = resumed_settings(config)
    device, rank, world = setup_distributed(config.device)
    if config.dataset == "demo":
        prepare_demo_inputs(config, rank)
    out = run_folder(config)
    checkpoint_path = out / "checkpoint_last.pt"
    config.out = str(out)

    train_set = data.load_split(config.data_root, config.dataset, config.split, "train", config.frames,
                                config.normalization)
    modalities = prompt_modalities(config)
    features, present = load_prompt_caches(config, train_set.names, modalities)
    for warning in prompt_health(features) if rank == 0 else []:
        print(f"warning: {warning}", file=sys.stderr)
    indices = np.flatnonzero(present).tolist()
    if len(indices) < len(train_set):
        print(f"training on the {len(indices)} of {len(train_set)} samples that have prompts (--allow-partial)",
              file=sys.stderr)
    dim = next(iter(features.values())).shape[-1]

    torch.manual_seed(config.seed)  # the encoder's initialisation (the random-init baseline repeats it)
    model = C2VLModel(config.size, dim, modalities).to(device)
    loss_fn = C2VLLoss(distill_config, len(train_set), dim, modalities).to(device)
    if world > 1 and config.sync_bn:
        model = convert_global_batchnorm(model, device)
    optimizer, scale_optimizer, scheduler = make_optimizers(config, model, loss_fn)

    history, start_epoch, best = [], 1, -1.0
    if config.resume:
        state = read_checkpoint(checkpoint_path)  # weights_only; a damaged file is named
        model.load_state_dict(state["model"])
        loss_fn.load_state_dict(state["loss_fn"])
        optimizer.load_state_dict(state["optimizer"])
        scale_optimizer.load_state_dict(state["scale_optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        history, start_epoch, best = state["history"], state["epoch"] + 1, state["best"]
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", {"train": asdict(config), "distill": asdict(distill_config),
                                      "modalities": list(modalities), "prompt_dim": dim, "world_size": world,
                                      "environment": environment()})
        write_text(out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))

    net = model
    if config.compile:
        net = torch.compile(net)
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    sampler = GlobalBatchSampler(indices, config.batch_size, rank, world, config.seed)
    loss_fn.bank.check_index(torch.tensor(indices))  # once, on the CPU: per step it would wait for the device
    batches = make_batches(config, train_set, features, modalities, sampler, device)
    amp = config.amp == "on" or (config.amp == "auto" and device.type == "cuda")

    for epoch in tqdm(range(start_epoch, config.epochs + 1), desc="pretrain", unit="epoch", disable=rank != 0,
                      initial=start_epoch - 1, total=config.epochs):
        sampler.epoch = epoch
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)  # prompt sampling (pooling sample)
        model.train()
        loss_fn.train()
        sums, steps, seen, started = {}, 0, 0, time.perf_counter()
        for x, prompt_rows, index in tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=rank != 0):
            P = {m: distill.pool_prompts(prompt_rows[m], config.pooling, generator, config.batch_size,
                                         rank * len(index)).to(device, non_blocking=True)
                 for m in modalities}  # {m: (B, D)}, "sample" drawn for the global batch
            info = train_step(net, loss_fn, (optimizer, scale_optimizer), x, P, index.to(device, non_blocking=True),
                              epoch, config.epochs, amp, config.grad_clip)
            for k, v in info.items():  # the diagnostics are 0-d tensors: summed on the device, no wait per step
                sums[k] = sums.get(k, 0) + v
            steps += 1
            seen += info["global_batch"]
            if config.max_steps and steps >= config.max_steps:
                break
        # Reading the sums waits for the device, once per epoch and before the clock: samples_per_s counts every step.
        record = {k: float(v) / steps for k, v in sums.items() if k != "global_batch"}
        record.update(epoch=epoch, lr=optimizer.param_groups[0]["lr"],
                      samples_per_s=seen / (time.perf_counter() - started))
        scheduler.step()

        if config.monitor_every and (epoch % config.monitor_every == 0 or epoch == config.epochs):
            if rank == 0:
                record["knn_top1"] = knn_monitor(config, model.encoder, device)
            barrier()
        history.append(record)
        if rank == 0:
            improved = record.get("knn_top1", -1.0) > best
            best = max(best, record.get("knn_top1", -1.0))
            state = {"epoch": epoch, "model": model.state_dict(), "loss_fn": loss_fn.state_dict(),
                     "optimizer": optimizer.state_dict(), "scale_optimizer": scale_optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(),
                     "rng": torch.get_rng_state(), "history": history, "best": best}
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            save_torch(state, checkpoint_path)
            if improved:
                save_torch(state, out / "checkpoint_best.pt")
        barrier()
        if message := collapse_message(history, config, modalities):
            raise TrainingCollapsedError(f"{message}\nThe last checkpoint is in {out}.")

    if rank == 0:
        save_model(config, model, loss_fn, modalities, dim, out)
        plot_targets(config, model, loss_fn, train_set, features, modalities, device, out)
    barrier()
    return config, model, modalities, out, device, rank


def train_step(net, loss_fn, optimizers, x, P, index, epoch, epochs, amp=False, grad_clip=0.0):
    """One optimisation step on a batch x (B, 3, T, 25, 2) with prompt features P {m: (B, D)}: forward (bf16 under
    amp), the C2VL loss over the global batch, backward, the gradient clipped to norm grad_clip, every optimiser,
    the logit-scale clamp. -> the loss's info (0-d device tensors: nothing here waits for the device)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        Z = net(x)  # {m: (B, D)}
    loss, info = loss_fn(Z, P, index, epoch, epochs)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    # Reconstruction: the gradient of the encoder and heads is clipped to L2 norm 1 (SGD at lr 0.1 otherwise takes
    # first steps larger than the weights, and then stalls: docs/training.md); alternative: --grad_clip 0.
    if grad_clip:
        nn.utils.clip_grad_norm_(net.parameters(), grad_clip)  # on the device: no wait
    for optimizer in optimizers:
        optimizer.step()
    loss_fn.clamp_logit_scale_()
    return info


def knn_monitor(config, encoder, device):
    """kNN (k = 20) top-1 on the test split with the current encoder: a cheap progress signal during pretraining."""
    train_set = data.load_split(config.data_root, config.dataset, config.split, "train", config.frames,
                                config.normalization)
    test_set = data.load_split(config.data_root, config.dataset, config.split, "val", config.frames,
                               config.normalization)
    was_training = encoder.training
    train_f, train_y = evaluate.extract_features(encoder, train_set, device=device, desc="monitor train")
    test_f, test_y = evaluate.extract_features(encoder, test_set, device=device, desc="monitor test")
    encoder.train(was_training)
    return evaluate.knn_evaluation(train_f, train_y, test_f, test_y, ks=(20,))["knn_top1_k20"]


def save_model(config, model, loss_fn, modalities, dim, out):
    """encoder.pt: the bare ST-GCN state dict (skeleton_gcn.load_checkpoint reads it); heads.pt: g_v, g_l."""
    encoder = STGCN(size=config.size)
    encoder.load_state_dict(model.encoder.state_dict())  # GlobalBatchNorm keeps BatchNorm's keys
    save_torch(encoder.state_dict(), out / "encoder.pt")
    heads = {m: model.heads[m].state_dict() if m in modalities else None
             for m in distill.MODALITIES}
    heads.update(dim=dim, hidden=512, clip_model=config.clip_model, pretrained=clip_pretrained(config),
                 logit_scale=float(loss_fn.logit_scale.detach()), dataset=config.dataset, split=config.split,
                 frames=config.frames, normalization=config.normalization, size=config.size)
    save_torch(heads, out / "heads.pt")


def plot_targets(config, model, loss_fn, train_set, features, modalities, device, out):
    """Heat maps of one batch's soft targets (the last epoch's teacher) and the alpha schedule."""
    n = min(32, len(train_set))
    x = torch.stack([train_set[i][0] for i in range(n)]).to(device)
    index = torch.arange(n, device=device)
    model.eval()
    with torch.no_grad():
        Z = model(x)
    P = {m: distill.pool_prompts(torch.from_numpy(np.array(features[m][:n]))).to(device) for m in modalities}
    batch = loss_fn.inspect_batch(Z, P, index, config.epochs, config.epochs)
    plot_soft_targets(batch, out / "soft_targets.png")
    plot_alpha_schedule(out / "alpha_schedule.png", config.epochs, loss_fn.config.alpha_T,
                                loss_fn.config.alpha_schedule)


# ----------------------------------------------------------------------------------------------------------------
# Evaluation after pretraining (rank 0)
# ----------------------------------------------------------------------------------------------------------------

def evaluate_run(config, model, modalities, out, device):
    """evaluate.py's protocols on the saved encoder: linear evaluation (docs/method.md §9), kNN and, with a language head,
    zero-shot; for the demo (or --baseline) also the same encoder at its random initialisation. -> metrics.json"""
    protocols = "linear,knn,zeroshot"
    eval_config = evaluate.EvalConfig(encoder=str(out / "encoder.pt"), dataset=config.dataset, split=config.split,
                                      protocols=protocols, data_root=config.data_root, out=str(out),
                                      frames=config.frames, normalization=config.normalization,
                                      device=str(device), seed=config.seed, linear_epochs=config.linear_epochs)
    metrics = evaluate.run_evaluation(eval_config)
    if config.baseline:
        torch.manual_seed(config.seed)  # the initialisation the pretraining started from
        save_torch(STGCN(size=config.size).state_dict(), out / "random_init_encoder.pt")
        eval_config.encoder, eval_config.out, eval_config.protocols = (str(out / "random_init_encoder.pt"),
                                                                      str(out / "random_init"), "linear,knn")
        eval_config.heads, eval_config.recalibrate_bn = str(out / "heads.pt"), True  # its settings; fair BatchNorm
        baseline = evaluate.run_evaluation(eval_config)
        metrics.update({f"random_init_{k}": baseline[k] for k in ("linear_top1", "linear_top1_best", "knn_top1_k1",
                                                                    "knn_top1_k20")})
    write_json(out / "metrics.json", metrics)
    plot_curves(out)
    return metrics


def summary_table(metrics):
    rows = [("C2VL (this run)", metrics["linear_top1"], metrics["linear_top1_best"])]
    if "random_init_linear_top1" in metrics:
        rows.append(("random init, BN re-estimated", metrics["random_init_linear_top1"],
                     metrics["random_init_linear_top1_best"]))
    lines = [f"linear evaluation on {metrics['dataset']} {metrics['split']} (top-1 %)",
             f"  {'encoder':28s} {'last epoch':>10s} {'best of evals':>14s}"]
    lines += [f"  {name:28s} {last:10.1f} {best:14.1f}" for name, last, best in rows]
    for key in ("knn_top1_k1", "knn_top1_k20", "random_init_knn_top1_k20", "zero_shot_top1"):
        if key in metrics:
            lines.append(f"  {key}: {metrics[key]:.1f}")
    return "\n".join(lines)


def main(argv=None):
    config, distill_config = parse_args(argv)
    try:
        config, model, modalities, out, device, rank = pretrain(config, distill_config)
        if rank == 0:
            metrics = evaluate_run(config, model, modalities, out, device)
            print(summary_table(metrics))
            print(f"outputs in {out}: metrics.json, metrics.jsonl, encoder.pt, heads.pt, checkpoints, *.png")
    except KeyboardInterrupt:
        out = Path(config.out) if config.out else None
        saved = out is not None and (out / "checkpoint_last.pt").is_file()
        print(f"\ninterrupted: continue with  python train.py --resume {out}" if saved else
              "\ninterrupted before the first epoch ended: no checkpoint to continue from", file=sys.stderr)
        sys.exit(130)
    except (FileNotFoundError, TrainSetupError, data.DataFormatError, prompts.PromptError,
            prompts.WeightsUnavailableError, CheckpointMismatchError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
