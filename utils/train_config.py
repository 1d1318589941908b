"""The settings of a pretraining run: train.py's TrainConfig, one field per flag (docs/training.md explains each).

A setting left None takes the dataset's preset (train.PRESETS). The values of `dataset`, `encoder`, `normalization`
and `pooling` are the reading path's names (data.py, evaluate.py, prompts.py): train.py passes them to the command
line and checks them (train.CHOICES). Not a paper concept: plumbing for train.py.
"""
import os
from dataclasses import dataclass

from utils.config import setting
from utils.distributed import DEVICES, resolve_device


@dataclass
class TrainConfig:
    """Every setting of a run (config.json holds the effective values). None = the dataset's PRESETS value."""

    dataset: str = setting("demo", "ntu60 | ntu120 | pku1 | pku2 | demo")
    split: str = setting("xsub", "xsub | xview (ntu60, pku) | xset (ntu120)")
    data_root: str = setting("datasets", "where tools/gendata.py put the prepared splits (and prompts.py the caches)")
    out: str = setting("", "output folder; default runs/<dataset>-<split>-<time>")
    resume: str = setting("", "a run folder to continue from its last checkpoint, with the run's own settings")
    encoder: str = setting("stgcn", "skeleton encoder f (docs/method.md §8): stgcn (ST-GCN) | gru (ISC's "
                           "bidirectional GRU) | transformer (MAMP's)")
    size: str | None = setting(None, "encoder width: standard | quarter (the demo's)", ("standard", "quarter"), str)
    gru_stepping: str = setting("sequence", "the GRU's stepping (docs/method.md §8): sequence (one pass over the "
                                "whole sequence) | frame (ISC's: one frame at a time, the state carried)")
    frames: int | None = setting(None, "T after resizing the valid frames (data.py preprocessing); the Transformer's "
                                 "a multiple of 4 (real preset: 120, MAMP's)", kind=int)
    normalization: str = setting("aimclr", "skeleton preprocessing")
    modalities: str = setting("auto", "prompt modalities (auto: every modality whose training cache exists)",
                              ("auto", "vision", "language", "both"))
    clip_model: str | None = setting(None, "the open_clip model the prompt caches were encoded with", kind=str)
    pretrained: str | None = setting(None, "its pretrained tag or checkpoint ('none': random weights)", kind=str)
    pooling: str = setting("mean", "prompt pooling over the K frames: mean (P1) | sample (one per step)")
    allow_partial: bool = setting(False, "train on the samples that have prompts when a cache covers part of the split")
    pair_noise: float = setting(0.0, "fraction p of the training pairs broken (utils/pair_noise.py)")
    pair_noise_modality: str = setting("both", "the prompts a broken pair takes from another sample",
                                       ("both", "vision", "language"))
    pair_noise_kind: str = setting("swap", "how a pair breaks: swap (a permutation among the broken samples) | "
                                   "similar (the language prompt of the nearest vision prompt)", ("swap", "similar"))
    epochs: int | None = setting(None, "pretraining epochs E (M6)", kind=int)
    batch_size: int | None = setting(None, "N, the global batch over all processes (M1-M12 are over it)", kind=int)
    optimizer: str | None = setting(None, "optimiser of the encoder and heads", ("sgd", "adamw"), str)
    lr: float | None = setting(None, "learning rate", kind=float)
    weight_decay: float | None = setting(None, "weight decay (not on biases, BatchNorm, the logit scale)", kind=float)
    lr_schedule: str | None = setting(None, "per-epoch schedule", ("step", "cosine"), str)
    lr_steps: str | None = setting(None, "epochs after which lr is x0.1 (schedule 'step'), comma separated", kind=str)
    warmup_epochs: int = setting(0, "linear lr warm-up")
    init: str | None = setting(None, "initialisation of the encoder and heads: reference (the field's weights_init) | "
                               "pytorch | orthogonal", ("reference", "pytorch", "orthogonal"), str)
    grad_clip: float = setting(1.0, "largest L2 norm of the encoder and heads' gradient, rescaled above it (0: off)")
    logit_scale_lr: float = setting(1e-4, "Adam learning rate of the logit scale s = log t, 1 <= t <= 100 (0: t fixed)")
    collapse_patience: int = setting(3, "stop when the loss sits at chance (ln N) or t at 1 for this many epochs "
                                     "after the first (0: never)")
    monitor_every: int | None = setting(None, "every n epochs, kNN-20 from 90 %% of the training split to the other "
                                        "10 %%; checkpoint_best.pt is its best epoch (0: off)", kind=int)
    linear_epochs: int = setting(100, "linear evaluation epochs (docs/method.md §9: 100, lr x0.1 after 80)")
    linear_seeds: int | None = setting(None, "linear classifiers from seeds seed .. seed + n - 1, their mean reported",
                                       kind=int)
    seed: int = setting(0, "seed of the initialisation, the batch order and the linear evaluation")
    init_seed: int = setting(-1, "seed of the initialisation alone (-1: --seed)")
    device: str = setting("auto", f"{DEVICES} (auto: cuda when available)")
    workers: int = setting(-1, "DataLoader workers per process (-1: 0 on CPU, 4 on GPU)", aliases=("num_workers",))
    input: str = setting("auto", "batches from the split held on the device (resident) or a DataLoader (loader); "
                         "auto: resident on a GPU when it fits in a quarter of its memory",
                         ("auto", "resident", "loader"))
    amp: str = setting("auto", "bf16 autocast (auto: on for CUDA)", ("auto", "on", "off"))
    compile: bool = setting(False, "torch.compile the encoder and heads (docs/speed.md)")
    sync_bn: bool = setting(True, "under torchrun, BatchNorm statistics over the global batch (as in one process)")
    baseline: bool | None = setting(None, "also evaluate the encoder at its random initialisation, BatchNorm "
                                          "re-estimated on the training split (preset: on for the demo)", kind=bool)
    max_steps: int = setting(0, "stop each epoch after this many steps (smoke tests); 0 = all")


def check_settings(config, splits):
    """After the presets: ValueError naming the flag of a value out of range (--split: one of the dataset's
    `splits`); a checkpoint file given as --pretrained made absolute (any directory finds it); --baseline's preset
    (on for the demo)."""
    if config.split not in splits:
        raise ValueError(f"--split for {config.dataset} must be one of {splits}, got {config.split!r}")
    if os.sep in config.pretrained or config.pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):
        config.pretrained = os.path.abspath(config.pretrained)
    resolve_device(config.device)
    if config.grad_clip < 0:
        raise ValueError(f"--grad-clip must be >= 0 (0: off), got {config.grad_clip}")
    for name in ("epochs", "batch_size", "frames", "linear_epochs", "linear_seeds"):
        if getattr(config, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(config, name)}")
    if config.baseline is None:
        config.baseline = config.dataset == "demo"
    return config


def clip_pretrained(config):
    """The pretrained tag as prompts.py takes it: None for random weights (--pretrained none)."""
    return None if config.pretrained.lower() == "none" else config.pretrained
