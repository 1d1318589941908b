"""Run bookkeeping: the run folder, what a run records, resuming it, the collapse guard, the saved model, step timing.

A run folder (train.py) holds config.json (every setting and the machine), metrics.jsonl (one line per epoch),
checkpoint_last.pt / checkpoint_best.pt (everything needed to continue exactly), encoder.pt and heads.pt (what
evaluate.py reads), metrics.json and PNGs. Not a paper concept: plumbing for train.py and evaluate.py.
"""
import json
import math
import platform
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from utils.batches import TrainSetupError
from utils.checkpoints import CheckpointMismatchError, read_checkpoint
from utils.distributed import barrier
from utils.files import save_torch, write_json, write_text


class TrainingCollapsedError(TrainSetupError):
    """The run stopped learning (collapse_message); the message gives the numbers and what to try."""


def environment() -> dict:
    """What produced the run: library versions and the machine."""
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "open_clip_torch": version("open_clip_torch"), "platform": platform.platform(), "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def run_folder(dataset, split, out="", resume="") -> Path:
    """--resume, else --out, else runs/<dataset>-<split>-<time>."""
    return Path(resume or out or Path("runs") / f"{dataset}-{split}-{time.strftime('%Y%m%d-%H%M%S')}")


def saved_settings(run) -> dict:
    """config.json of a run to continue (--resume); a folder without it or without a checkpoint is named."""
    run = Path(run)
    missing = [name for name in ("config.json", "checkpoint_last.pt") if not (run / name).is_file()]
    if missing:
        why = ("no run folder there" if not run.is_dir() else f"it has no {' and no '.join(missing)}"
               + (" (the run stopped before its first epoch ended: start it again)" if missing == ["checkpoint_last.pt"]
                  else ""))
        raise FileNotFoundError(f"--resume {run}: nothing to continue from, {why}")
    saved = json.loads((run / "config.json").read_text())
    # Settings added since a run began take their defaults (TrainConfig's), except where the default changed:
    saved["train"].setdefault("grad_clip", 0.0)  # runs begun before gradient clipping continue without it
    saved["train"].setdefault("linear_seeds", 1)  # ... and before averaged probes, with the field's single one
    saved["train"].setdefault("init", "pytorch")  # ... and before the reference initialisation, with PyTorch's
    return saved


def resumed_settings(config, distill_class):
    """--resume: the run's own settings (its config.json) as (type(config), distill_class) instances; only --device
    and --workers come from `config`, the command."""
    saved = saved_settings(config.resume)
    train = type(config)(**{**saved["train"], "resume": config.resume, "out": config.resume, "device": config.device,
                            "workers": config.workers})
    return train, distill_class(**saved["distill"])


def start_run(out, settings: dict, history: list) -> None:
    """config.json, and metrics.jsonl with the epochs already done (a resumed run's)."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", {**settings, "environment": environment()})
    write_text(out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))


def end_epoch(out, record: dict, state: dict, best: bool) -> None:
    """One epoch's line of metrics.jsonl, checkpoint_last.pt (and checkpoint_best.pt when `best`), atomically."""
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    save_torch(state, out / "checkpoint_last.pt")
    if best:
        save_torch(state, out / "checkpoint_best.pt")


def restore(path, **objects):
    """--resume: every object's state from checkpoint_last.pt (each saved under its name by end_epoch's state) and the
    global random state -> (history, first epoch to run, best monitor value)."""
    state = read_checkpoint(path)  # weights_only; a damaged file is named
    for name, obj in objects.items():
        obj.load_state_dict(state[name])
    torch.set_rng_state(state["rng"])
    return state["history"], state["epoch"] + 1, state["best"]


class Run:
    """A pretraining run as it goes: its folder (rank 0 writes it), its history, resume and the collapse guard.

    objects: what a checkpoint holds besides the epoch, the random state, the history and the best monitor value,
    each saved and restored under its name (model, loss_fn, optimizers, scheduler). A fresh run starts at epoch 1;
    `resume` continues from checkpoint_last.pt exactly (every state restored). Every process keeps the history, so
    that all stop together when the run has collapsed.
    """

    def __init__(self, out, rank, settings: dict, resume=False, **objects):
        self.out, self.rank, self.objects = Path(out), rank, objects
        self.history, self.start, self.best = [], 1, -1.0
        if resume:
            self.history, self.start, self.best = restore(self.out / "checkpoint_last.pt", **objects)
        if rank == 0:
            start_run(self.out, settings, self.history)

    def end_epoch(self, epoch, record: dict) -> None:
        """Record an epoch: metrics.jsonl and checkpoint_last.pt (checkpoint_best.pt when the kNN monitor improved)
        on rank 0; every process waits for them."""
        self.history.append(record)
        if self.rank == 0:
            improved, self.best = record.get("knn_top1", -1.0) > self.best, max(self.best, record.get("knn_top1", -1.0))
            state = {name: obj.state_dict() for name, obj in self.objects.items()}
            end_epoch(self.out, record, {"epoch": epoch, **state, "rng": torch.get_rng_state(),
                                         "history": self.history, "best": self.best}, improved)
        barrier()

    def stop_if_collapsed(self, config, modalities) -> None:
        """TrainingCollapsedError when the run stopped learning (collapse_message, with train.py's settings)."""
        if message := collapse_message(self.history, config.batch_size, config.collapse_patience, modalities,
                                       config.lr, config.grad_clip, config.logit_scale_lr):
            raise TrainingCollapsedError(f"{message}\nThe last checkpoint is in {self.out}.")


def save_model(out, model, modalities, **info) -> None:
    """encoder.pt: the bare encoder state dict (encoders.build_encoder reads it); heads.pt: g_v and g_l (None for a
    modality the run did not train) and `info`, what zero-shot evaluation needs to know of the run (load_heads)."""
    save_torch({k: v.cpu() for k, v in model.encoder.state_dict().items()}, out / "encoder.pt")
    heads = {m: model.heads[m].state_dict() if m in modalities else None for m in ("vision", "language")}
    save_torch({**heads, **info}, out / "heads.pt")


def interrupted_message(out) -> str:
    """What Ctrl-C says: the command that continues the run, when it has a checkpoint."""
    if out and (Path(out) / "checkpoint_last.pt").is_file():
        return f"\ninterrupted: continue with  python train.py --resume {out}"
    return "\ninterrupted before the first epoch ended: no checkpoint to continue from"


def collapse_message(history, batch_size, patience, modalities, lr, grad_clip, logit_scale_lr):
    """Why the run is dead, or None: for `patience` epochs after the first, every modality's loss sat within 0.1 %
    of chance, ln N: the loss of uniform predictions over the global batch whatever the soft targets (a learning
    run with soft targets can sit above ln N, so only "at" counts), or the logit scale sat at its floor 1."""
    chance = math.log(batch_size)
    recent = [r for r in history if r["epoch"] > 1][-patience:] if patience else []
    dead = [r for r in recent if r["logit_scale"] <= 1.001
            or all(abs(r[f"loss_{m}"] - chance) <= 1e-3 * chance for m in modalities)]
    if not patience or len(dead) < patience:  # dead is a subset of the last `patience` epochs
        return None
    rows = "\n".join(f"  epoch {r['epoch']}: t = {r['logit_scale']:.4g}, "
                     + ", ".join(f"loss_{m} = {r[f'loss_{m}']:.4f}" for m in modalities) for r in recent)
    return (f"training has collapsed: for {patience} epochs the loss per modality stayed at chance "
            f"(ln N = {chance:.4f}, N = {batch_size}) or the logit scale t sat at its floor 1:\n{rows}\n"
            f"Nothing more will be learned. Try a smaller --lr (now {lr}), --optimizer adamw, --grad_clip 1 "
            f"(now {grad_clip}), a smaller --logit_scale_lr (now {logit_scale_lr}; 0 fixes t), and "
            f"check that the prompt features are not all alike; --collapse_patience 0 turns this guard off.")


class Stopwatch:
    """Seconds per named step: lap(name) records the time since the previous lap (or the start)."""

    def __init__(self):
        self.started = self.last = time.perf_counter()
        self.seconds = {}

    def lap(self, name):
        now = time.perf_counter()
        self.seconds[name], self.last = now - self.last, now

    def total(self) -> dict:
        return {**self.seconds, "total": time.perf_counter() - self.started}


def pretraining_info(encoder_path, heads_path=None) -> dict:
    """What the encoder was pretrained on (dataset, split, frames, normalization, encoder, size, gru_stepping, CLIP),
    from heads.pt or config.json next to it; empty for checkpoints that come without them (published classifiers)."""
    folder = Path(encoder_path).parent
    heads_path = Path(heads_path) if heads_path else folder / "heads.pt"
    keys = ("dataset", "split", "frames", "normalization", "encoder", "size", "gru_stepping", "clip_model",
            "pretrained")
    saved = read_checkpoint(heads_path) if heads_path.is_file() else {}
    if not any(k in saved for k in keys) and (folder / "config.json").is_file():  # e.g. next to checkpoint_*.pt
        saved = json.loads((folder / "config.json").read_text()).get("train", {})  # {"train": TrainConfig, ...}
    return {k: saved[k] for k in keys if k in saved}


def load_heads(path, modalities=("vision", "language")) -> dict:
    """heads.pt of train.py: {"vision", "language": ProjectionHead state or None, "dim", "hidden", "clip_model",
    "pretrained", "dataset", "split", "frames", "normalization", "size", ...}; or the same from one of train.py's
    checkpoint_*.pt: the heads of that epoch (its model's `heads.<m>.`), the settings from the run's config.json."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"heads file {path} not found: train.py writes heads.pt next to encoder.pt "
                                f"(python train.py --dataset <dataset> --out <run>); zero-shot needs it")
    heads = read_checkpoint(path)
    if isinstance(heads, dict) and isinstance(heads.get("model"), dict):  # a checkpoint_*.pt
        state, heads = heads["model"], pretraining_info(path)
        for m in modalities:
            heads[m] = {k[len(f"heads.{m}."):]: v for k, v in state.items() if k.startswith(f"heads.{m}.")} or None
            if heads[m]:  # ProjectionHead: net.0 Linear(256, hidden), net.3 Linear(hidden, D)
                heads.update(hidden=len(heads[m]["net.0.weight"]), dim=len(heads[m]["net.3.weight"]))
        if str(heads.get("pretrained")).lower() == "none":  # config.json spells random CLIP weights "none"
            heads["pretrained"] = None
    needed = (*modalities, "dim", "hidden", "clip_model", "pretrained")
    if missing := [k for k in needed if not isinstance(heads, dict) or k not in heads]:
        raise CheckpointMismatchError(f"{path}: not a heads.pt of train.py, missing keys: {', '.join(missing)}")
    return heads
