"""C2VL pretraining, then skeleton-only evaluation: the whole paper in one command (docs/method.md §1, §9).

    python train.py                                 # the demo: data, prompts, pretraining, evaluation (CPU, minutes)
    python train.py --dataset ntu60 --split xsub    # the real benchmark (prepare it with tools/gendata.py and prompts.py)
    torchrun --nproc_per_node=4 train.py --dataset ntu120 --split xset

Pretraining (M1-M12): the skeleton encoder f (skeleton_gcn.py) and the heads g_v, g_l (distill.py) are trained so
that Z_m = normalize(g_m(f(X))) matches the frozen CLIP features P_m of the vision / language knowledge prompts of
the same clips (prompts.py), with the progressive soft targets of soft_targets.py and distill.py:

    for epoch e = 1 .. E:                          alpha_e = alpha_T e / E                         (M6)
        for each global batch X of N samples:      L = sum_m lambda_m L_m                         (M1-M12)
            one optimiser step on f, g_v, g_l (the gradient clipped to norm 1), one on the logit scale t
            the teacher bank keeps Z of this epoch for the next one                              (M5)

Then f is frozen and evaluated on skeletons alone (evaluate.py): linear evaluation, kNN, and, because the skeletons
now live in CLIP's space, zero-shot classification against CLIP text features of the class names.
Not here: the maths (soft_targets.py, distill.py), the data (data.py), the prompt features (prompts.py), the
protocols (evaluate.py), the run folder, resume and the collapse guard (utils/runs.py).
"""
import argparse
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

import data
import evaluate
import prompts
from distill import C2VLLoss, DistillConfig, ProjectionHead, alpha_schedule
from encoders import ENCODERS, check_frames, make_encoder
from skeleton_gcn import orthogonal_init, reference_init
from skeleton_gru import STEPPINGS
from utils.batches import GlobalBatchSampler, TrainSetupError, epoch_seed, make_batches
from utils.checkpoints import CheckpointMismatchError, read_checkpoint
from utils.config import add_arguments, check_choices, fill_unset, from_args, preset_table, setting
from utils.diagnostics import add_step, batch_diagnostics, epoch_means, prompt_health
from utils.distributed import (DEVICES, barrier, convert_global_batchnorm, resolve_device, setup_distributed,
                               shutdown_distributed)
from utils.files import save_torch, write_json
from utils.pair_noise import break_pairs
from utils.plots import plot_alpha_schedule, plot_curves, plot_soft_targets
from utils.scores import summary_table
from utils.runs import (TrainingCollapsedError, collapse_message, end_epoch, restore, run_folder, saved_settings,
                        start_run)

# Reconstruction: the paper's optimiser settings were not available to us; real datasets use the recipe of the
# skeleton self-supervised methods C2VL compares with (AimCLR/CrosSCLR: SGD 0.1, momentum 0.9, wd 1e-4, batch 128,
# lr x0.1 at epoch 250 of 300); the demo uses a short AdamW run that converges in minutes on a CPU.
PRESETS = {
    "demo": dict(size="quarter", frames=24, epochs=15, batch_size=32, optimizer="adamw", lr=2e-3, weight_decay=1e-4,
                 lr_schedule="cosine", lr_steps="", monitor_every=0, linear_seeds=5, init="pytorch",
                 clip_model=prompts.DEMO_CLIP_MODEL,
                 pretrained="{data_root}/demo/clip/c2vl-demo-tiny.pt"),  # demo/clip.py unpacks the shipped weights
    "real": dict(size="standard", frames=50, epochs=300, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=1e-4,
                 lr_schedule="step", lr_steps="250", monitor_every=10, linear_seeds=1, init="reference",
                 clip_model=prompts.DEFAULT_CLIP_MODEL, pretrained=prompts.DEFAULT_CLIP_PRETRAINED),
}


@dataclass
class TrainConfig:
    """Every setting of a run (config.json holds the effective values). None = the dataset's PRESETS value."""

    dataset: str = setting("demo", "ntu60 | ntu120 | pku1 | pku2 | demo", choices=tuple(data.DATASETS))
    split: str = setting("xsub", "xsub | xview (ntu60, pku) | xset (ntu120)")
    data_root: str = setting("datasets", "where tools/gendata.py put the prepared splits (and prompts.py the caches)")
    out: str = setting("", "output folder; default runs/<dataset>-<split>-<time>")
    resume: str = setting("", "a run folder to continue from its last checkpoint, with the run's own settings")
    encoder: str = setting("stgcn", "skeleton encoder f: stgcn (ST-GCN, the paper's main one) | gru (ISC's "
                           "bidirectional GRU) | transformer (MAMP's); docs/method.md §8", tuple(ENCODERS))
    size: str | None = setting(None, "encoder width: standard (the reference's) | quarter (the demo's; ST-GCN "
                               "16/32/64 -> 256, GRU hidden 256, Transformer width 64)", ("standard", "quarter"), str)
    frames: int | None = setting(None, "T after resizing the valid frames (data.py preprocessing)", kind=int)
    normalization: str = setting("aimclr", "skeleton preprocessing", data.NORMALIZATIONS)
    modalities: str = setting("auto", "prompt modalities (auto: every modality whose training cache exists)",
                              ("auto", "vision", "language", "both"))
    clip_model: str | None = setting(None, "the open_clip model the prompt caches were encoded with", kind=str)
    pretrained: str | None = setting(None, "its pretrained tag or checkpoint ('none': random weights)", kind=str)
    pooling: str = setting("mean", "prompt pooling over the K frames: mean (P1) | sample (one per step)",
                           prompts.POOLINGS)
    allow_partial: bool = setting(False, "train on the samples that have prompts when a cache covers part of the split")
    pair_noise: float = setting(0.0, "fraction p of the training pairs broken: the prompts of round(p n) of the n "
                                "training samples, drawn with --seed, permuted among themselves (none keeps its own); "
                                "the evaluation never sees prompts")
    pair_noise_modality: str = setting("both", "the prompts a broken pair takes from another sample: both (a wrong "
                                       "pair, as a wrong clip) | vision | language (one LMM output wrong)",
                                       ("both", "vision", "language"))
    pair_noise_kind: str = setting("swap", "how a pair breaks: swap (a permutation among the broken samples) | "
                                   "similar (the language prompt of the sample whose vision prompt is nearest, as an "
                                   "LMM that mistakes one look-alike action for another)", ("swap", "similar"))
    epochs: int | None = setting(None, "pretraining epochs E (M6)", kind=int)
    batch_size: int | None = setting(None, "N, the global batch over all processes: M1-M12 are computed over it", kind=int)
    optimizer: str | None = setting(None, "optimiser of the encoder and heads", ("sgd", "adamw"), str)
    lr: float | None = setting(None, "learning rate", kind=float)
    weight_decay: float | None = setting(None, "weight decay (not on biases, BatchNorm, the logit scale)", kind=float)
    lr_schedule: str | None = setting(None, "per-epoch schedule", ("step", "cosine"), str)
    lr_steps: str | None = setting(None, "epochs after which lr is x0.1 (schedule 'step'), comma separated", kind=str)
    warmup_epochs: int = setting(0, "linear lr warm-up")
    init: str | None = setting(None, "initialisation of the encoder and heads: reference (the field's training "
                               "code, ST-GCN's and AimCLR's weights_init: conv and linear weights normal(0, 0.02), "
                               "BatchNorm weights normal(1, 0.02), biases 0; the GRU's and Transformer's own in their "
                               "files) | pytorch (PyTorch's defaults) | orthogonal (ST-GCN's convolutions orthogonal, "
                               "biases 0; the rest PyTorch's defaults)", ("reference", "pytorch", "orthogonal"), str)
    grad_clip: float = setting(1.0, "largest L2 norm of the encoder and heads' gradient, rescaled above it (0: off)")
    logit_scale_lr: float = setting(1e-4, "Adam learning rate of the logit scale s = log t, 1 <= t <= 100 (0: t fixed)")
    collapse_patience: int = setting(3, "stop when the loss sits at chance (ln N) or t at 1 for this many epochs "
                                     "after the first (0: never)")
    monitor_every: int | None = setting(None, "every n epochs, kNN-20 from 90 %% of the training split to the other "
                                        "10 %% (the test part is never looked at); checkpoint_best.pt is its best "
                                        "epoch (0: off)", kind=int)
    linear_epochs: int = setting(100, "linear evaluation epochs (docs/method.md §9: 100, lr x0.1 after 80)")
    linear_seeds: int | None = setting(None, "linear classifiers from seeds seed .. seed + n - 1, their mean reported",
                                       kind=int)
    seed: int = setting(0, "seed of the initialisation, the batch order and the linear evaluation")
    init_seed: int = setting(-1, "seed of the initialisation alone (-1: --seed); a fixed one with --seed varying "
                             "separates the batch order's spread from the initialisation's (docs/training.md)")
    device: str = setting("auto", f"{DEVICES} (auto: cuda when available)")
    workers: int = setting(-1, "DataLoader workers per process (-1: 0 on CPU, 4 on GPU)", aliases=("num_workers",))
    input: str = setting("auto", "batches from the split kept on the device, one index per batch (resident), or "
                         "from a DataLoader (loader); auto: resident on a GPU when it fits in a quarter of its memory",
                         ("auto", "resident", "loader"))
    amp: str = setting("auto", "bf16 autocast (auto: on for CUDA)", ("auto", "on", "off"))
    compile: bool = setting(False, "torch.compile the encoder and heads (off: not yet shown to pay, docs/speed.md)")
    sync_bn: bool = setting(True, "under torchrun, BatchNorm statistics over the global batch (as in one process)")
    baseline: bool | None = setting(None, "also evaluate the same encoder at its random initialisation, BatchNorm "
                                          "re-estimated on the training split (preset: on for the demo)", kind=bool)
    max_steps: int = setting(0, "stop each epoch after this many steps (smoke tests); 0 = all")


# ----------------------------------------------------------------------------------------------------------------
# The model: the skeleton encoder f and one projection head g_m per prompt modality
# ----------------------------------------------------------------------------------------------------------------

class C2VLModel(nn.Module):
    """X (B, 3, T, 25, 2) -> G = {m: g_m(f(X))} (B, D); Z_m = normalize(G_m), inside the loss."""

    def __init__(self, size, dim, modalities, encoder="stgcn", frames=50, init="pytorch", gru_stepping="sequence"):
        super().__init__()
        self.encoder = make_encoder(encoder, size, frames, gru_stepping)  # f: ST-GCN, GRU or Transformer
        self.heads = nn.ModuleDict({m: ProjectionHead(self.encoder.feature_dim, 512, dim) for m in modalities})
        if init == "reference":
            # Reconstruction: the real preset takes the initialisation of the field's training code (ST-GCN's and
            # AimCLR's processors apply weights_init to the whole model); the demo's PyTorch's defaults, which learned
            # more on a validation world of the demo (docs/training.md); alternative: --init. The GRU and the
            # Transformer keep the initialisations of their reference code, applied in their files: only the heads
            # take this one.
            (self if encoder == "stgcn" else self.heads).apply(reference_init)
        if init == "orthogonal" and encoder == "stgcn":  # not a preset: the demo's spread study (docs/training.md)
            self.encoder.apply(orthogonal_init)

    def forward(self, x):  # x (B, 3, T, 25, 2)
        feature = self.encoder(x)  # (B, d) = f(X)
        return {m: head(feature) for m, head in self.heads.items()}  # {m: (B, D)}


# ----------------------------------------------------------------------------------------------------------------
# One optimisation step, one epoch, and the optimisers
# ----------------------------------------------------------------------------------------------------------------

def train_step(net, loss_fn, optimizers, x, P, index, epoch, epochs, amp=False, grad_clip=0.0):
    """One optimisation step on a batch x (B, 3, T, 25, 2) with prompt features P {m: (B, D)}: forward (bf16 under
    amp), the C2VL loss over the global batch, backward, the gradient clipped to norm grad_clip, every optimiser,
    the logit-scale clamp, then the teacher bank's write. -> (L, BatchTargets) (nothing here waits for the device)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        G = net(x)  # {m: (B, D)} g_m(f(X))
    loss, batch = loss_fn(G, P, index, epoch, epochs)  # (M1-M12), reading the teacher (M5)
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    # Reconstruction: the gradient of the encoder and heads is clipped to L2 norm 1 (SGD at lr 0.1 otherwise takes
    # first steps larger than the weights, and then stalls: docs/method.md §1); alternative: --grad_clip 0.
    if grad_clip:
        nn.utils.clip_grad_norm_(net.parameters(), grad_clip)  # on the device: no wait
    for optimizer in optimizers:
        optimizer.step()
    loss_fn.clamp_logit_scale_()
    loss_fn.bank.write(batch.index, batch.Z, epoch)  # (M5) the teacher of epoch e + 1; every rank: the global batch
    return loss, batch


def make_optimizers(config, model, loss_fn):
    """The encoder and heads' optimiser (SGD with momentum 0.9 or AdamW, no weight decay on biases and BatchNorm)
    with its per-epoch schedule, and the logit scale's own Adam."""
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = {"fused": True} if next(model.parameters()).is_cuda else {}  # one kernel for all parameters
    optimizer = (torch.optim.SGD(groups, lr=config.lr, momentum=0.9, **fused) if config.optimizer == "sgd"
                 else torch.optim.AdamW(groups, lr=config.lr, **fused))
    steps = [int(s) for s in config.lr_steps.split(",") if s.strip()] if config.lr_steps else []

    def lr_factor(epoch):  # epoch: 0-based number of finished epochs
        warm = (epoch + 1) / config.warmup_epochs if epoch < config.warmup_epochs else 1.0
        if config.lr_schedule == "cosine":
            return warm * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
        return warm * 0.1 ** sum(epoch >= s for s in steps)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    # Reconstruction: the logit scale s = log t has its own Adam at a small rate, as CLIP trains it (in the SGD
    # group at lr 0.1 it ran to t = 0.0004 by epoch 3 and training died); alternative: --logit_scale_lr 0, fixed t.
    loss_fn.log_logit_scale.requires_grad_(config.logit_scale_lr > 0)
    scale_optimizer = torch.optim.Adam(loss_fn.parameters(), lr=config.logit_scale_lr, betas=(0.9, 0.98), eps=1e-6)
    return optimizer, scale_optimizer, scheduler


def train_epoch(config, net, loss_fn, optimizers, batches, modalities, epoch, broken, rank, device, amp):
    """One epoch of train_step over the sampler's batches. -> its record for metrics.jsonl: every diagnostic's mean
    over the epoch (utils.diagnostics.epoch_means), epoch, lr and samples_per_s. broken: --pair_noise's mask."""
    generator = torch.Generator().manual_seed(epoch_seed(config.seed, epoch))  # pooling "sample" draws
    totals, steps, seen, started = {}, 0, 0, time.perf_counter()
    for x, prompt_rows, index in tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=rank != 0):
        P = {m: prompts.pool_prompts(prompt_rows[m], config.pooling, generator, config.batch_size,
                                     rank * len(index)).to(device, non_blocking=True)
             for m in modalities}  # {m: (B, D)}: P1, "sample" drawn for the global batch
        loss, batch = train_step(net, loss_fn, optimizers, x, P, index.to(device, non_blocking=True), epoch,
                                 config.epochs, amp, config.grad_clip)
        add_step(totals, batch_diagnostics(loss, batch, broken))  # summed on the device: no wait per step
        steps += 1
        seen += len(batch.index)
        if config.max_steps and steps >= config.max_steps:
            break
    # Reading the sums waits for the device, once per epoch and before the clock: samples_per_s counts every step.
    record = epoch_means(totals, steps)
    record.update(epoch=epoch, lr=optimizers[0].param_groups[0]["lr"],
                  samples_per_s=seen / (time.perf_counter() - started))
    return record


# ----------------------------------------------------------------------------------------------------------------
# Pretraining
# ----------------------------------------------------------------------------------------------------------------

def training_pairs(config, train_set, modalities, rank):
    """The prompt features of the training part, with --pair_noise's broken pairs: -> features {m: (n, [K,] D)},
    the indices of the samples that have prompts, and which of them are broken, (n,) bool (n training samples)."""
    features, present = load_prompt_caches(config, train_set.names, modalities)  # {m: (n, [K,] D)}, (n,)
    for warning in prompt_health(features) if rank == 0 else []:
        print(f"warning: {warning}", file=sys.stderr)
    indices = np.flatnonzero(present).tolist()
    features, broken = break_pairs(features, indices, config.pair_noise, config.seed,
                                   [m for m in modalities if config.pair_noise_modality in (m, "both")],
                                   config.pair_noise_kind)
    if len(indices) < len(train_set):
        print(f"training on the {len(indices)} of {len(train_set)} samples that have prompts (--allow-partial)",
              file=sys.stderr)
    return features, indices, broken


def initial_model(config, dim, modalities):
    """The model as pretraining starts it, from --init-seed (else --seed); the random-init baseline is its encoder."""
    torch.manual_seed(config.seed if config.init_seed < 0 else config.init_seed)
    return C2VLModel(config.size, dim, modalities, config.encoder, config.frames, config.init, config.gru_stepping)


def knn_monitor(encoder, train_set, device, held_out=0.1):
    """kNN-20 top-1 (%) from the training split's other samples to a fixed, class-balanced `held_out` part of it,
    with the current encoder: a progress signal that never looks at the test part."""
    part = np.zeros(len(train_set), dtype=bool)
    part[evaluate.class_balanced_subset(train_set.labels, held_out, seed=0)] = True
    feats, labels = evaluate.extract_features(encoder, train_set, device=device, desc="monitor")
    return evaluate.knn_evaluation(feats[~part], labels[~part], feats[part], labels[part], ks=(20,))["knn_top1_k20"]


def save_model(config, model, loss_fn, modalities, dim, out):
    """encoder.pt: the bare encoder state dict (encoders.build_encoder reads it); heads.pt: g_v, g_l and what
    zero-shot evaluation needs to know of the run."""
    save_torch({k: v.cpu() for k, v in model.encoder.state_dict().items()}, out / "encoder.pt")
    heads = {m: model.heads[m].state_dict() if m in modalities else None for m in prompts.MODALITIES}
    heads.update(dim=dim, hidden=512, clip_model=config.clip_model, pretrained=clip_pretrained(config),
                 logit_scale=float(loss_fn.logit_scale.detach()), dataset=config.dataset, split=config.split,
                 frames=config.frames, normalization=config.normalization, encoder=config.encoder, size=config.size,
                 gru_stepping=config.gru_stepping)
    save_torch(heads, out / "heads.pt")


def plot_targets(config, model, loss_fn, train_set, features, modalities, device, out):
    """Heat maps of one batch's soft targets (the last epoch's teacher) and the alpha schedule."""
    n = min(32, len(train_set))
    x = torch.stack([train_set[i][0] for i in range(n)]).to(device)
    index = torch.arange(n, device=device)
    model.eval()
    with torch.no_grad():
        G = model(x)  # {m: (n, D)}
    P = {m: prompts.pool_prompts(torch.from_numpy(np.array(features[m][:n]))).to(device) for m in modalities}
    plot_soft_targets(loss_fn.inspect_batch(G, P, index, config.epochs, config.epochs), out / "soft_targets.png")
    distill_config = loss_fn.config
    alpha = [alpha_schedule(e, config.epochs, distill_config.alpha_T, distill_config.alpha_schedule)
             for e in range(1, config.epochs + 1)]
    plot_alpha_schedule(out / "alpha_schedule.png", alpha, distill_config.alpha_T, distill_config.alpha_schedule)


def pretrain(config, distill_config, device, rank, world):
    """Pretrain f and the heads on the training part (M1-M12); writes the run folder. -> (model, modalities)."""
    out = Path(config.out)
    train_set = data.load_split(config.data_root, config.dataset, config.split, "train", config.frames,
                                config.normalization)
    modalities = prompt_modalities(config)
    features, indices, broken = training_pairs(config, train_set, modalities, rank)  # {m: (n, [K,] D)}
    dim = next(iter(features.values())).shape[-1]

    model = initial_model(config, dim, modalities).to(device)
    loss_fn = C2VLLoss(distill_config, len(train_set), dim, modalities).to(device)  # t and the teacher bank
    broken = torch.from_numpy(broken).to(device) if config.pair_noise else None  # diagnostics only
    if world > 1 and config.sync_bn:
        model = convert_global_batchnorm(model, device)
    optimizer, scale_optimizer, scheduler = make_optimizers(config, model, loss_fn)
    history, start, best = [], 1, -1.0  # a fresh run; --resume: every state of checkpoint_last.pt restored
    if config.resume:
        history, start, best = restore(Path(config.out) / "checkpoint_last.pt", model=model, loss_fn=loss_fn,
                                       optimizer=optimizer, scale_optimizer=scale_optimizer, scheduler=scheduler)
    if rank == 0:
        start_run(out, {"train": asdict(config), "distill": asdict(distill_config), "modalities": list(modalities),
                        "prompt_dim": dim, "world_size": world}, history)
    net = torch.compile(model) if config.compile else model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    sampler = GlobalBatchSampler(indices, config.batch_size, rank, world, config.seed)
    loss_fn.bank.check_index(torch.tensor(indices))  # once, on the CPU: per step it would wait for the device
    batches = make_batches(config, train_set, features, modalities, sampler, device)
    amp = config.amp == "on" or (config.amp == "auto" and device.type == "cuda")

    for epoch in tqdm(range(start, config.epochs + 1), desc="pretrain", unit="epoch", disable=rank != 0,
                      initial=start - 1, total=config.epochs):
        sampler.epoch = epoch
        model.train()
        loss_fn.train()
        record = train_epoch(config, net, loss_fn, (optimizer, scale_optimizer), batches, modalities, epoch, broken,
                             rank, device, amp)
        scheduler.step()
        if config.monitor_every and (epoch % config.monitor_every == 0 or epoch == config.epochs):
            if rank == 0:
                record["knn_top1"] = knn_monitor(model.encoder, train_set, device)
            barrier()
        history.append(record)
        if rank == 0:
            improved, best = record.get("knn_top1", -1.0) > best, max(best, record.get("knn_top1", -1.0))
            end_epoch(out, record, {"epoch": epoch, "model": model.state_dict(), "loss_fn": loss_fn.state_dict(),
                                    "optimizer": optimizer.state_dict(), "scale_optimizer": scale_optimizer.state_dict(),
                                    "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(),
                                    "history": history, "best": best}, improved)
        barrier()
        if message := collapse_message(history, config.batch_size, config.collapse_patience, modalities, config.lr,
                                       config.grad_clip, config.logit_scale_lr):
            raise TrainingCollapsedError(f"{message}\nThe last checkpoint is in {out}.")

    if rank == 0:
        save_model(config, model, loss_fn, modalities, dim, out)
        plot_targets(config, model, loss_fn, train_set, features, modalities, device, out)
    barrier()
    return model, modalities


# ----------------------------------------------------------------------------------------------------------------
# The prompt features training reads (prompts.py encodes them)
# ----------------------------------------------------------------------------------------------------------------

def clip_pretrained(config):
    """The pretrained tag as prompts.py takes it: None for random weights (--pretrained none)."""
    return None if config.pretrained.lower() == "none" else config.pretrained


def prompt_cache_path(config, modality):
    """Where prompts.py writes the training split's cache of `modality` for the configured CLIP and pooling."""
    return prompts.cache_path(config.data_root, config.dataset, config.split, "train", modality, config.clip_model,
                              clip_pretrained(config), config.pooling)


def load_prompt_caches(config, names, modalities):
    """{m: float16 (n, D) or (n, K, D) array} aligned to the training split, and the mask of samples that have all."""
    features, present = {}, np.ones(len(names), dtype=bool)
    for m in modalities:
        path = prompt_cache_path(config, m)
        if not path.is_file():
            raise FileNotFoundError(missing_prompts_message(config, [m], path))
        features[m], has = prompts.load_prompt_features(path, names, config.clip_model, clip_pretrained(config),
                                                        allow_partial=config.allow_partial)
        present &= has
    return features, present


def missing_prompts_message(config, modalities, path=None):
    """The prompts.py command that makes the missing caches, with every non-default flag of this run."""
    where = f" (looked for {path})" if path else ""
    flags = (f" --data-root {config.data_root}" if config.data_root != "datasets" else "") + (
        " --pooling sample" if config.pooling == "sample" else "")
    return (f"no {' or '.join(modalities)} prompt features for {config.dataset} {config.split} train with CLIP "
            f"{config.clip_model} / {config.pretrained}{where}. Make them with:\n"
            f"  python prompts.py encode --dataset {config.dataset} --split {config.split} --parts train "
            f"--modalities {' '.join(modalities)} --model {config.clip_model} --pretrained {config.pretrained}"
            f"{flags}\n(released language prompts first go through `python prompts.py import ...`; see docs/prompts.md)")


def prompt_modalities(config):
    """--modalities auto: every modality whose training prompt cache exists (both when both do)."""
    if config.modalities in prompts.MODALITIES:
        return (config.modalities,)
    if config.modalities == "both":
        return prompts.MODALITIES
    found = tuple(m for m in prompts.MODALITIES if prompt_cache_path(config, m).is_file())
    if not found:  # propose encoding the modalities whose prompt files exist (released prompts: language only)
        have = [m for m in prompts.MODALITIES
                if prompts.prompts_path(config.data_root, config.dataset, config.split, "train", m).is_file()]
        raise FileNotFoundError(missing_prompts_message(config, have or list(prompts.MODALITIES)))
    return found


# ----------------------------------------------------------------------------------------------------------------
# Evaluation of the run (rank 0)
# ----------------------------------------------------------------------------------------------------------------

def evaluate_run(config, out, device):
    """evaluate.py's protocols on the saved encoder: linear evaluation (docs/method.md §9), kNN and, with a language
    head, zero-shot; with --baseline also the same encoder at its random initialisation. -> metrics.json"""
    eval_config = evaluate.EvalConfig(encoder=str(out / "encoder.pt"), dataset=config.dataset, split=config.split,
                                      protocols="linear,knn,zeroshot", data_root=config.data_root, out=str(out),
                                      frames=config.frames, normalization=config.normalization,
                                      device=str(device), seed=config.seed, linear_epochs=config.linear_epochs,
                                      linear_seeds=config.linear_seeds)
    metrics = evaluate.run_evaluation(eval_config)
    if config.baseline:
        heads = read_checkpoint(out / "heads.pt")  # D and the modalities of the model pretraining started from
        modalities = [m for m in prompts.MODALITIES if heads[m] is not None]
        initial = initial_model(config, heads["dim"], modalities).encoder
        save_torch(initial.state_dict(), out / "random_init_encoder.pt")
        eval_config.encoder, eval_config.out, eval_config.protocols = (str(out / "random_init_encoder.pt"),
                                                                      str(out / "random_init"), "linear,knn")
        eval_config.heads, eval_config.recalibrate_bn = str(out / "heads.pt"), True  # its settings; fair BatchNorm
        baseline = evaluate.run_evaluation(eval_config)
        metrics.update({f"random_init_{k}": baseline[k] for k in ("linear_top1", "linear_top1_best", "knn_top1_k1",
                                                                    "knn_top1_k20")})
    write_json(out / "metrics.json", metrics)
    plot_curves(out)
    return metrics


# ----------------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, epilog=preset_table(PRESETS, {"real": "real datasets"}),
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
    if config.encoder == "transformer" and config.frames is None and config.dataset != "demo":
        config.frames = 120  # Reconstruction: MAMP's T, whole 4-frame patches (50 is not); alternative: --frames
    fill_unset(config, PRESETS["demo" if config.dataset == "demo" else "real"], data_root=config.data_root)
    if os.sep in config.pretrained or config.pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):
        config.pretrained = os.path.abspath(config.pretrained)  # a checkpoint file: any directory finds it
    resolve_device(config.device)
    if config.grad_clip < 0:
        raise ValueError(f"--grad-clip must be >= 0 (0: off), got {config.grad_clip}")
    for name in ("epochs", "batch_size", "frames", "linear_epochs", "linear_seeds"):
        if getattr(config, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(config, name)}")
    check_frames(config.encoder, config.frames)
    if config.baseline is None:
        config.baseline = config.dataset == "demo"
    return config


def main(argv=None):
    config, distill_config = parse_args(argv)
    try:
        if config.resume:  # the run's own settings; only --device and --workers come from the command
            saved = saved_settings(config.resume)
            config = TrainConfig(**{**saved["train"], "resume": config.resume, "out": config.resume,
                                    "device": config.device, "workers": config.workers})
            distill_config = DistillConfig(**saved["distill"])
        config.out = str(run_folder(config.dataset, config.split, config.out, config.resume))
        device, rank, world = setup_distributed(config.device)
        if config.dataset == "demo":  # the demo makes its own data, demo CLIP and prompt features when missing
            from demo.clip import prepare_demo_inputs
            if rank == 0:
                prepare_demo_inputs(config.data_root, config.split, [prompt_cache_path(config, m)
                                                                     for m in prompts.MODALITIES],
                                    config.clip_model, clip_pretrained(config))
            barrier()
        model, modalities = pretrain(config, distill_config, device, rank, world)
        if rank == 0:
            print(summary_table(evaluate_run(config, Path(config.out), device)))
            print(f"outputs in {config.out}: metrics.json, metrics.jsonl, encoder.pt, heads.pt, checkpoints, *.png")
    except KeyboardInterrupt:
        saved = (Path(config.out) / "checkpoint_last.pt").is_file() if config.out else False
        print(f"\ninterrupted: continue with  python train.py --resume {config.out}" if saved else
              "\ninterrupted before the first epoch ended: no checkpoint to continue from", file=sys.stderr)
        sys.exit(130)
    except (FileNotFoundError, TrainSetupError, data.DataFormatError, prompts.PromptError,
            prompts.WeightsUnavailableError, CheckpointMismatchError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    finally:
        shutdown_distributed()


if __name__ == "__main__":
    main()
