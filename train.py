"""C2VL pretraining, then skeleton-only evaluation: the whole paper in one command (docs/method.md §1, §5, §9).

    python train.py                                 # the demo: data, prompts, pretraining, evaluation (CPU, minutes)
    python train.py --dataset ntu60 --split xsub    # the real benchmark (tools/gendata.py and prompts.py prepare it)
    torchrun --nproc_per_node=4 train.py --dataset ntu120 --split xset

The skeleton encoder f (skeleton_gcn.py) and the heads g_v, g_l (distill.py) learn to match the frozen CLIP features
P_m of the vision / language knowledge prompts of the same clips (prompts.py), with progressive soft targets:

    for epoch e = 1 .. E:                                   alpha_e = alpha_T e / E                    (M6)
        for each global batch X of N samples:               (pretrain, train_epoch, train_step)
            Z_m = normalize(g_m(f(X)))                      the student's embeddings
            Zt_m = bank.read(e)                             the teacher: epoch e - 1's embeddings   (M5)
            T = targets(P, Zt), S = t Z P^T                 soft targets and logits           (M1-M10)
            L = sum_m lambda_m L_m(T, S)                                                     (M11-M12)
            one optimiser step on f, g_v, g_l (the gradient clipped to norm 1), one on the logit scale t
            bank.write(Z, e)                                the teacher of epoch e + 1              (M5)

Then f is frozen and evaluated on skeletons alone (evaluate.py). Not here: the maths (soft_targets.py, distill.py),
the settings (utils/train_config.py, docs/training.md), the run folder, resume and the collapse guard
(utils/runs.py), the per-step diagnostics (utils/diagnostics.py).
"""
import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

import data
import evaluate
import prompts
from distill import C2VLLoss, DistillConfig, ProjectionHead, alpha_schedule
from encoders import ENCODERS, STEPPINGS, check_frames, make_encoder
from skeleton_gcn import orthogonal_init, reference_init
from utils.batches import GlobalBatchSampler, TrainSetupError, epoch_seed, make_batches
from utils.checkpoints import CheckpointMismatchError, read_checkpoint
from utils.config import add_arguments, check_choices, fill_unset, from_args, preset_table
from utils.diagnostics import add_step, batch_diagnostics, epoch_means
from utils.distributed import barrier, convert_global_batchnorm, parallel_model, setup_distributed, shutdown_distributed
from utils.files import save_torch, write_json
from utils.optimizers import make_optimizers
from utils.plots import plot_alpha_schedule, plot_curves, plot_soft_targets
from utils.runs import Run, interrupted_message, resumed_settings, run_folder, save_model
from utils.scores import summary_table
from utils.train_config import TrainConfig, check_settings, clip_pretrained
from utils.training_prompts import training_modalities, training_prompts


# Pretraining (M1-M12): one step, one epoch, the epochs -------------------------------------------------------------

def train_step(net, loss_fn, optimizers, x, P, index, epoch, epochs, amp=False, grad_clip=0.0):
    """One step on a batch x (B, 3, T, 25, 2), its prompt features P {m: (B, D)} and dataset indices (B,) -> (L,
    BatchTargets) of the global batch, nothing read back from the device."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        G = net(x)  # {m: (B, D)} g_m(f(X))
    loss, batch = loss_fn(G, P, index, epoch, epochs)  # reads the teacher Zt (M5), the targets T (M1-M10), L (M12)
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


def train_epoch(config, net, loss_fn, optimizers, batches, modalities, epoch, broken, rank, device):
    """One epoch of train_step over the sampler's batches (P1 pools each batch's prompts). -> its record for
    metrics.jsonl: each diagnostic's epoch mean (utils/diagnostics.py), epoch, lr and samples_per_s."""
    generator = torch.Generator().manual_seed(epoch_seed(config.seed, epoch))  # pooling "sample" draws
    amp = config.amp == "on" or (config.amp == "auto" and device.type == "cuda")
    totals, steps, seen, started = {}, 0, 0, time.perf_counter()
    for x, prompt_rows, index in tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=rank != 0):
        P = {m: prompts.pool_prompts(prompt_rows[m], config.pooling, generator, config.batch_size,
                                     rank * len(index)).to(device, non_blocking=True)
             for m in modalities}  # {m: (B, D)}: P1, "sample" drawn for the global batch
        loss, batch = train_step(net, loss_fn, optimizers, x, P, index.to(device, non_blocking=True), epoch,
                                 config.epochs, amp, config.grad_clip)
        add_step(totals, batch_diagnostics(loss, batch, broken))  # summed on the device: no wait per step
        steps, seen = steps + 1, seen + len(batch.index)
        if config.max_steps and steps >= config.max_steps:
            break
    # Reading the sums waits for the device, once per epoch and before the clock: samples_per_s counts every step.
    record = epoch_means(totals, steps)
    record.update(epoch=epoch, lr=optimizers[0].param_groups[0]["lr"],
                  samples_per_s=seen / (time.perf_counter() - started))
    return record


def pretrain(config, distill_config, device, rank, world):
    """Pretrain f and the heads g_m on the training part; writes the run folder. -> (model, modalities)."""
    train_set, features, indices, broken, modalities = training_data(config, device, rank)  # P's rows {m: (n, D)}
    dim = next(iter(features.values())).shape[-1]  # D
    model = initial_model(config, dim, modalities).to(device)  # f and g_m
    loss_fn = C2VLLoss(distill_config, len(train_set), dim, modalities).to(device)  # t and the teacher bank (M5)
    if world > 1 and config.sync_bn:
        model = convert_global_batchnorm(model, device)
    optimizer, scale_optimizer, scheduler = make_optimizers(config, model, loss_fn)
    run = Run(config.out, rank, dict(train=asdict(config), distill=asdict(distill_config), modalities=list(modalities),
                                     prompt_dim=dim, world_size=world), config.resume, model=model, loss_fn=loss_fn,
              optimizer=optimizer, scale_optimizer=scale_optimizer, scheduler=scheduler)  # --resume: restored
    net = parallel_model(model, device, world, config.compile)  # torch.compile, DistributedDataParallel
    sampler = GlobalBatchSampler(indices, config.batch_size, rank, world, config.seed)
    loss_fn.bank.check_index(torch.tensor(indices))  # once, on the CPU: per step it would wait for the device
    batches = make_batches(config, train_set, features, modalities, sampler, device)
    for epoch in tqdm(range(run.start, config.epochs + 1), desc="pretrain", unit="epoch", disable=rank != 0,
                      initial=run.start - 1, total=config.epochs):
        sampler.epoch = epoch  # epoch e's global batches
        model.train()
        record = train_epoch(config, net, loss_fn, (optimizer, scale_optimizer), batches, modalities, epoch, broken,
                             rank, device)
        scheduler.step()
        if config.monitor_every and (epoch % config.monitor_every == 0 or epoch == config.epochs):
            knn_monitor(record, model.encoder, train_set, device, rank)
        run.end_epoch(epoch, record)  # metrics.jsonl, the checkpoints
        run.stop_if_collapsed(config, modalities)
    if rank == 0:
        save_outputs(config, model, loss_fn, train_set, features, modalities, device)  # encoder.pt, heads.pt, PNGs
    barrier()
    return model, modalities


# The model: the encoder f and the heads g_m ------------------------------------------------------------------------

class C2VLModel(nn.Module):
    """X (B, 3, T, 25, 2) -> G = {m: g_m(f(X))} (B, D); Z_m = normalize(G_m), inside the loss."""

    def __init__(self, size, dim, modalities, encoder="stgcn", frames=50, init="pytorch", gru_stepping="sequence"):
        super().__init__()
        self.encoder = make_encoder(encoder, size, frames, gru_stepping)  # f: ST-GCN, GRU or Transformer
        self.heads = nn.ModuleDict({m: ProjectionHead(self.encoder.feature_dim, 512, dim) for m in modalities})
        if init == "reference":
            # Reconstruction: the real preset takes the initialisation of the field's training code (ST-GCN's and
            # AimCLR's weights_init; the GRU's and the Transformer's own in their files: only their heads take it),
            # the demo PyTorch's defaults, which learned more (docs/training.md); alternative: --init.
            (self if encoder == "stgcn" else self.heads).apply(reference_init)
        if init == "orthogonal" and encoder == "stgcn":  # not a preset: the demo's spread study (docs/training.md)
            self.encoder.apply(orthogonal_init)

    def forward(self, x):  # x (B, 3, T, 25, 2)
        feature = self.encoder(x)  # (B, d) = f(X)
        return {m: head(feature) for m, head in self.heads.items()}  # {m: (B, D)}


def initial_model(config, dim, modalities):
    """The model as pretraining starts it, from --init-seed (else --seed); the random-init baseline is its encoder."""
    torch.manual_seed(config.seed if config.init_seed < 0 else config.init_seed)
    return C2VLModel(config.size, dim, modalities, config.encoder, config.frames, config.init, config.gru_stepping)


# Settings: TrainConfig (utils/train_config.py, docs/training.md) and the dataset's presets for those left None -----

# Reconstruction: the paper's optimiser settings are unknown; real datasets take AimCLR's and CrosSCLR's recipe (SGD
# 0.1, momentum 0.9, wd 1e-4, batch 128, lr x0.1 at epoch 250 of 300), the demo a short AdamW run (minutes on a CPU).
PRESETS = {
    "demo": dict(size="quarter", frames=24, epochs=15, batch_size=32, optimizer="adamw", lr=2e-3, weight_decay=1e-4,
                 lr_schedule="cosine", lr_steps="", monitor_every=0, linear_seeds=5, init="pytorch",
                 clip_model=prompts.DEMO_CLIP_MODEL,
                 pretrained="{data_root}/demo/clip/c2vl-demo-tiny.pt"),  # demo/clip.py unpacks the shipped weights
    "real": dict(size="standard", frames=50, epochs=300, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=1e-4,
                 lr_schedule="step", lr_steps="250", monitor_every=10, linear_seeds=1, init="reference",
                 clip_model=prompts.DEFAULT_CLIP_MODEL, pretrained=prompts.DEFAULT_CLIP_PRETRAINED),
}
CHOICES = {"dataset": tuple(data.DATASETS), "encoder": tuple(ENCODERS), "normalization": data.NORMALIZATIONS,
           "pooling": prompts.POOLINGS, "gru_stepping": STEPPINGS}  # settings whose values the reading path names
RUN_SETTINGS = ("dataset", "split", "frames", "normalization", "encoder", "size", "gru_stepping")  # into heads.pt


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, epilog=preset_table(PRESETS, {"real": "real datasets"}),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, TrainConfig, none_means="the preset", choices=CHOICES)
    add_arguments(parser.add_argument_group("C2VL loss (distill.py; docs/method.md §11)"), DistillConfig)
    args = parser.parse_args(argv)
    try:
        return fill_presets(from_args(TrainConfig, args)), from_args(DistillConfig, args)
    except ValueError as error:
        parser.error(str(error))


def fill_presets(config):
    """Check the choices, then fill the dataset's preset values into the settings left empty; check the rest."""
    check_choices(config, CHOICES)  # --dataset among them; preset values are valid by construction
    if config.encoder == "transformer" and config.frames is None and config.dataset != "demo":  # MAMP's T:
        config.frames = 120  # Reconstruction: whole 4-frame patches (the preset's 50 is not); alternative: --frames
    fill_unset(config, PRESETS["demo" if config.dataset == "demo" else "real"], data_root=config.data_root)
    check_frames(config.encoder, config.frames)  # the Transformer's whole 4-frame patches
    return check_settings(config, splits=data.DATASETS[config.dataset])


# What a run reads (the split, the prompt caches) and what it measures besides the loss (rank 0) --------------------

def training_data(config, device, rank):
    """The training part, its prompt features {m: (n, [K,] D)} (utils/training_prompts.py), the indices of the samples
    that have prompts, --pair_noise's broken ones ((n,) bool on the device, or None) and the modalities."""
    train_set = data.load_split(config.data_root, config.dataset, config.split, "train", config.frames,
                                config.normalization)
    caches, prompt_files = prompt_paths(config)
    modalities = training_modalities(config, caches, prompt_files)
    features, indices, broken = training_prompts(config, train_set.names, {m: caches[m] for m in modalities}, rank)
    broken = torch.from_numpy(broken).to(device) if config.pair_noise else None  # for the diagnostics only
    return train_set, features, indices, broken, modalities


def prompt_paths(config):
    """{m: the training split's prompt cache for the configured CLIP and pooling}, {m: its prompt file} (prompts.py)."""
    where = (config.data_root, config.dataset, config.split, "train")
    return ({m: prompts.cache_path(*where, m, config.clip_model, clip_pretrained(config), config.pooling)
             for m in prompts.MODALITIES}, {m: prompts.prompts_path(*where, m) for m in prompts.MODALITIES})


def knn_monitor(record, encoder, train_set, device, rank, held_out=0.1):
    """record["knn_top1"] (rank 0): kNN-20 top-1 (%) from the training split to a fixed, class-balanced `held_out`
    part of it, with the current encoder: a progress signal that never sees the test part."""
    if rank == 0:
        part = np.zeros(len(train_set), dtype=bool)
        part[evaluate.class_balanced_subset(train_set.labels, held_out, seed=0)] = True
        f, y = evaluate.extract_features(encoder, train_set, device=device, desc="monitor")  # features, labels
        record["knn_top1"] = evaluate.knn_evaluation(f[~part], y[~part], f[part], y[part], ks=(20,))["knn_top1_k20"]
    barrier()


def save_outputs(config, model, loss_fn, train_set, features, modalities, device):
    """encoder.pt, heads.pt (RUN_SETTINGS); one batch's soft targets (the last teacher), the alpha schedule (PNGs)."""
    out, n = Path(config.out), min(32, len(train_set))
    save_model(out, model, modalities, dim=loss_fn.dim, hidden=512, clip_model=config.clip_model,
               pretrained=clip_pretrained(config), logit_scale=float(loss_fn.logit_scale.detach()),
               **{k: getattr(config, k) for k in RUN_SETTINGS})
    model.eval()
    with torch.no_grad():
        G = model(torch.stack([train_set[i][0] for i in range(n)]).to(device))  # {m: (n, D)}
    P = {m: prompts.pool_prompts(torch.from_numpy(np.array(features[m][:n]))).to(device) for m in modalities}
    plot_soft_targets(loss_fn.inspect_batch(G, P, torch.arange(n, device=device), config.epochs, config.epochs),
                      out / "soft_targets.png")
    c = loss_fn.config
    alpha = [alpha_schedule(e, config.epochs, c.alpha_T, c.alpha_schedule) for e in range(1, config.epochs + 1)]
    plot_alpha_schedule(out / "alpha_schedule.png", alpha, c.alpha_T, c.alpha_schedule)


def evaluate_run(config, out, device):
    """evaluate.py's protocols on the saved encoder: linear evaluation (docs/method.md §9), kNN and, with a language
    head, zero-shot; with --baseline also the same encoder at its random initialisation. -> metrics.json"""
    settings = ("dataset", "split", "data_root", "frames", "normalization", "seed", "linear_epochs", "linear_seeds")
    eval_config = evaluate.EvalConfig(encoder=str(out / "encoder.pt"), protocols="linear,knn,zeroshot", out=str(out),
                                      device=str(device), **{k: getattr(config, k) for k in settings})
    metrics = evaluate.run_evaluation(eval_config)
    if config.baseline:
        heads = read_checkpoint(out / "heads.pt")  # D and the modalities of the model pretraining started from
        initial = initial_model(config, heads["dim"], [m for m in prompts.MODALITIES if heads[m] is not None])
        save_torch(initial.encoder.state_dict(), out / "random_init_encoder.pt")
        eval_config.encoder, eval_config.out, eval_config.protocols = (str(out / "random_init_encoder.pt"),
                                                                      str(out / "random_init"), "linear,knn")
        eval_config.heads, eval_config.recalibrate_bn = str(out / "heads.pt"), True  # its settings; fair BatchNorm
        baseline = evaluate.run_evaluation(eval_config)
        metrics.update({f"random_init_{k}": baseline[k] for k in ("linear_top1", "linear_top1_best", "knn_top1_k1",
                                                                    "knn_top1_k20")})
    write_json(out / "metrics.json", metrics)
    plot_curves(out)
    return metrics


def main(argv=None):
    config, distill_config = parse_args(argv)
    try:
        if config.resume:  # the run's own settings; only --device and --workers come from the command
            config, distill_config = resumed_settings(config, DistillConfig)
        config.out = str(run_folder(config.dataset, config.split, config.out, config.resume))
        device, rank, world = setup_distributed(config.device)
        if config.dataset == "demo":  # the demo makes its own data, demo CLIP and prompt features when missing
            from demo.clip import prepare_demo_inputs
            if rank == 0:
                prepare_demo_inputs(config.data_root, config.split, list(prompt_paths(config)[0].values()),
                                    config.clip_model, clip_pretrained(config))
            barrier()
        pretrain(config, distill_config, device, rank, world)
        if rank == 0:
            print(summary_table(evaluate_run(config, Path(config.out), device)))
            print(f"outputs in {config.out}: metrics.json, metrics.jsonl, encoder.pt, heads.pt, checkpoints, *.png")
    except KeyboardInterrupt:
        print(interrupted_message(config.out), file=sys.stderr)
        sys.exit(130)
    except (FileNotFoundError, TrainSetupError, data.DataFormatError, prompts.PromptError,
            prompts.WeightsUnavailableError, CheckpointMismatchError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    finally:
        shutdown_distributed()


if __name__ == "__main__":
    main()
