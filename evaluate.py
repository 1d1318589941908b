"""Skeleton-only evaluation of a C2VL encoder: the field's protocols (docs/method.md §9) and zero-shot in CLIP space.

C2VL is judged on the 256-d feature f(x) of its ST-GCN alone (skeleton_gcn.build_encoder loads any ST-GCN
checkpoint). On one benchmark split (train part -> val part):

    linear        frozen f in eval(), one linear layer W on f(x), cross-entropy; SGD momentum 0.9, lr 3.0,
                  weight decay 0, batch 128, 100 epochs, lr x 0.1 after epoch 80, no augmentation
                  (the AimCLR/CrosSCLR protocol). Reported: top-1 of the last epoch, and top-1 best of the
                  evaluations every 5 epochs (labelled `_best`: what those repositories print).
                      (E1)  y_hat = argmax_c (W f(x) + b)_c
    knn           cosine k-nearest neighbours of f(x) among the training features, k in {1, 10, 20}, each
                  neighbour j voting for its class with weight exp(s_j / tau), tau = 0.07 (Wu et al. 2018,
                  the InfoNCE kNN monitor; k = 1 is the plain nearest neighbour).
                      (E2)  y_hat = argmax_c sum_{j in N_k(x)} exp(cos(f(x), f(x_j)) / tau) [y_j = c]
    semi          fine-tune f and a new linear layer end to end on 1 % / 10 % of the training labels,
                  class-balanced (round(p * n_c), at least one per class), for several seeds: mean and spread.
    transfer      the same protocols on a dataset other than the one f was pretrained on (the source is read
                  from heads.pt / config.json next to encoder.pt, and both are written to the metrics).
    zeroshot      beyond the paper: C2VL maps skeletons into CLIP's space, so with the language head g_l
                      (E3)  Z_l = normalize(g_l(f(x)))       w_c = normalize(E_text("a person {class c}."))   (P2)
                            y_hat = argmax_c Z_l . w_c
                  is zero-shot classification; ranking the class texts per skeleton is skeleton->text retrieval
                  (R@k, equal to top-k by construction), ranking the skeletons per class text gives
                  text->skeleton mean average precision.

Writes metrics.json (with per-class accuracy), confusion-matrix PNGs and PCA and t-SNE maps of the test features.
Not here: pretraining (train.py), data preparation (tools/gendata.py), prompt features (prompts.py), augmentation.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from data import DATASETS, NORMALIZATIONS, class_names, load_split, num_classes
from distill import MODALITIES
from prompts import CLI_ERRORS, class_text_features
from skeleton_gcn import CheckpointMismatchError, build_encoder, load_checkpoint, read_checkpoint
from utils.config import add_arguments, check_choices, from_args, setting
from utils.distributed import DEVICES, resolve_device
from utils.files import write_json
from utils.plots import plot_confusion, plot_embedding

PROTOCOLS = ("linear", "knn", "semi", "zeroshot")
KNN_TEMPERATURE = 0.07


def _comma_list(kind, text, name):
    try:
        return tuple(kind(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--{name} expects a comma-separated list, got {text!r}") from None


@dataclass
class EvalConfig:
    """Every setting of `python evaluate.py`; each field is a flag of the same name."""

    encoder: str = setting("", "encoder.pt of train.py, or any ST-GCN checkpoint (required)")
    heads: str | None = setting(None, "heads.pt (zero-shot; pretraining metadata); default: next to the encoder, "
                                "or the encoder itself if it is a checkpoint_*.pt of train.py", kind=str)
    dataset: str = setting("demo", "dataset to evaluate on; another than the pretraining one is transfer",
                           tuple(DATASETS))
    split: str = setting("xsub", "benchmark split: xsub, xview or xset")
    protocols: str = setting("linear,knn", f"comma list of {', '.join(PROTOCOLS)}")
    data_root: str = setting("datasets", "where the <dataset>/<split>/ folders are (tools/gendata.py)")
    out: str | None = setting(None, "output folder; default: <encoder folder>/eval-<dataset>-<split>", kind=str)
    size: str = setting("auto", "ST-GCN width; auto = read from the checkpoint's shapes",
                        ("auto", "standard", "quarter"))
    frames: int | None = setting(None, "frames T of the input; default: the pretraining setting, else 50", kind=int)
    normalization: str | None = setting(None, "input normalisation; default: the pretraining setting, else aimclr",
                                        NORMALIZATIONS, str)
    device: str = setting("auto", f"{DEVICES} (auto: cuda when available)")
    batch_size: int = setting(256, "feature extraction batch")
    num_workers: int = setting(0, "DataLoader worker processes")
    seed: int = setting(0, "seed of the linear classifier and the batch order")
    linear_epochs: int = setting(100, "(E1) epochs; lr x 0.1 after 80 %% of them (docs/method.md §9)")
    linear_lr: float = setting(3.0, "(E1) SGD learning rate")
    linear_batch_size: int = setting(128, "(E1) batch")
    knn_k: str = setting("1,10,20", "(E2) neighbour counts, comma list")
    semi_fractions: str = setting("0.01,0.1", "labelled fractions per class, comma list, each in (0, 1]")
    semi_seeds: str = setting("0,1,2", "one label subset and fine-tuning run per seed, comma list")
    semi_epochs: int = setting(100, "fine-tuning epochs (Reconstruction: the recipe is ours, see semi_supervised)")
    semi_lr: float = setting(0.1, "fine-tuning SGD learning rate")
    semi_batch_size: int = setting(128, "fine-tuning batch")
    recalibrate_bn: bool = setting(False, "re-estimate BatchNorm statistics on the training split first (the fair "
                                   "frozen baseline of a randomly initialised encoder)")

    def __post_init__(self):
        check_choices(self)
        resolve_device(self.device)
        if self.split not in DATASETS[self.dataset]:
            raise ValueError(f"--split: {self.dataset} has splits {', '.join(DATASETS[self.dataset])}")
        if bad := [p for p in self.protocols.split(",") if p not in PROTOCOLS]:
            raise ValueError(f"--protocols: unknown {', '.join(map(repr, bad))}; choose from {', '.join(PROTOCOLS)}")
        for name in ("frames", "batch_size", "linear_epochs", "linear_lr", "linear_batch_size", "semi_epochs",
                     "semi_lr", "semi_batch_size"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        if any(k < 1 for k in _comma_list(int, self.knn_k, "knn-k")):
            raise ValueError(f"--knn-k values must be >= 1, got {self.knn_k}")
        if any(s < 0 for s in _comma_list(int, self.semi_seeds, "semi-seeds")):
            raise ValueError(f"--semi-seeds values must be >= 0, got {self.semi_seeds}")
        if not all(0 < f <= 1 for f in _comma_list(float, self.semi_fractions, "semi-fractions")):
            raise ValueError(f"--semi-fractions: fractions must be in (0, 1], got {self.semi_fractions}")


# ----------------------------------------------------------------------------------------------------------------
# Features of the frozen encoder (skeleton_gcn.build_encoder loads any ST-GCN checkpoint)
# ----------------------------------------------------------------------------------------------------------------

@torch.no_grad()
def recalibrate_batchnorm(encoder, dataset, batch_size=256, device="cpu"):
    """Every BatchNorm's running mean and variance re-estimated over one pass of `dataset` (cumulative average; no
    weight changes). An untrained encoder in eval() normalises with its initial statistics (0, 1), which makes its
    features nearly constant: a strawman baseline. Re-estimated, the frozen random network is judged fairly."""
    for bn in [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over the pass
    encoder.train().to(device)
    for batch in DataLoader(dataset, batch_size=batch_size):
        encoder.features(batch[0].to(device))
    encoder.eval()


@torch.no_grad()
def extract_features(encoder, dataset, batch_size=256, device="cpu", num_workers=0, desc="features"):
    """f(x) for every sample, in dataset order: (feats FloatTensor (N, 256), labels LongTensor (N,)) on the CPU.

    The encoder runs in eval() (BatchNorm running statistics, so a feature does not depend on its batch);
    its previous train/eval mode is restored afterwards.
    """
    was_training = encoder.training
    encoder.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=str(device).startswith("cuda"))
    feats, labels = [], []
    for batch in tqdm(loader, desc=desc, unit="batch", leave=False, file=sys.stderr):
        x, y = batch[0], batch[1]  # (B, 3, T, 25, M), (B,)
        feats.append(encoder.features(x.to(device, non_blocking=True)).float().cpu())  # (B, 256)
        labels.append(torch.as_tensor(y, dtype=torch.long))
    encoder.train(was_training)
    return torch.cat(feats), torch.cat(labels)


# ----------------------------------------------------------------------------------------------------------------
# Accuracy helpers
# ----------------------------------------------------------------------------------------------------------------

def topk_accuracy(scores, labels, k=1) -> float:
    """% of rows whose label is among the k highest scores (k capped at the number of classes)."""
    k = min(k, scores.shape[1])
    hits = (scores.topk(k, dim=1).indices == labels[:, None]).any(dim=1)
    return 100.0 * hits.float().mean().item()


def per_class_accuracy(predictions, labels, num_class) -> list[float]:
    """Accuracy % of each class c = 0 .. num_class-1 over its test samples; nan for a class with none."""
    predictions, labels = torch.as_tensor(predictions).cpu(), torch.as_tensor(labels).cpu()
    correct = torch.bincount(labels[predictions == labels], minlength=num_class).double()
    total = torch.bincount(labels, minlength=num_class).double()
    return [100.0 * c / n if n > 0 else math.nan for c, n in zip(correct.tolist(), total.tolist())]


def confusion_matrix(predictions, labels, num_class) -> np.ndarray:
    """(num_class, num_class) counts: row = true class, column = predicted class."""
    index = torch.as_tensor(labels).cpu() * num_class + torch.as_tensor(predictions).cpu()
    return torch.bincount(index, minlength=num_class * num_class).view(num_class, num_class).numpy()


# ----------------------------------------------------------------------------------------------------------------
# Linear evaluation (E1)
# ----------------------------------------------------------------------------------------------------------------

def linear_evaluation(train_feats, train_labels, test_feats, test_labels, num_class, epochs=100, lr=3.0,
                      momentum=0.9, weight_decay=0.0, batch_size=128, milestones=(80,), eval_every=5, seed=0,
                      device="cpu"):
    """Train one linear layer on frozen features; top-1 of the last epoch and the best of every `eval_every`.

    The encoder is frozen, in eval() mode, and the protocol has no augmentation, so f(x) of a sample is the same
    in every epoch: the features are computed once (extract_features) and the 100 epochs run on them, which
    gives the same updates as re-encoding each batch at a fraction of the cost.
    Returns dict(top1, top1_best, top5, history=[(epoch, top1)], predictions LongTensor (N_test,)).
    """
    train_feats, train_labels = train_feats.float().to(device), train_labels.long().to(device)
    test_feats, test_labels = test_feats.float().to(device), test_labels.long().to(device)
    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's random state
        torch.manual_seed(seed)
        classifier = nn.Linear(train_feats.shape[1], num_class)
        # The initialisation of MoCo/AimCLR's linear classifier.
        classifier.weight.data.normal_(mean=0.0, std=0.01)
        classifier.bias.data.zero_()
    classifier.to(device)
    optimizer = torch.optim.SGD(classifier.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=0.1)
    order_rng = torch.Generator().manual_seed(seed)
    history = []

    def evaluate():
        with torch.no_grad():
            return classifier(test_feats)  # (N_test, num_class)

    for epoch in tqdm(range(1, epochs + 1), desc="linear evaluation", unit="epoch", leave=False, file=sys.stderr):
        # Every sample once per epoch; the reference loaders drop the last incomplete batch, we keep it.
        order = torch.randperm(len(train_feats), generator=order_rng).to(device)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            loss = F.cross_entropy(classifier(train_feats[batch]), train_labels[batch])  # (E1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()  # lr x 0.1 once `epoch` reaches a milestone: epochs 81..100 run at 0.3
        if epoch % eval_every == 0 or epoch == epochs:
            history.append((epoch, topk_accuracy(evaluate(), test_labels, 1)))
    scores = evaluate()
    evaluated = [acc for e, acc in history if e % eval_every == 0] or [history[-1][1]]
    return dict(top1=history[-1][1], top1_best=max(evaluated), top5=topk_accuracy(scores, test_labels, 5),
                history=history, predictions=scores.argmax(dim=1).cpu())


# ----------------------------------------------------------------------------------------------------------------
# kNN (E2)
# ----------------------------------------------------------------------------------------------------------------

def knn_predict(train_feats, train_labels, test_feats, ks=(1, 10, 20), temperature=KNN_TEMPERATURE, chunk=1024,
                device="cpu"):
    """Predictions (N_test,) for each k of (E2): cosine neighbours, votes weighted by exp(similarity / tau)."""
    train = F.normalize(train_feats.float().to(device), dim=1)  # (N_train, 256)
    test = F.normalize(test_feats.float().to(device), dim=1)  # (N_test, 256)
    train_labels = train_labels.long().to(device)
    num_class = int(train_labels.max()) + 1
    k_max = min(max(ks), len(train))
    predictions = {k: [] for k in ks}
    for start in range(0, len(test), chunk):  # chunks keep the (chunk, N_train) similarity small
        similarity, neighbour = (test[start:start + chunk] @ train.T).topk(k_max, dim=1)  # (B, k_max), sorted
        weight = (similarity / temperature).exp()  # (B, k_max)
        votes_of = train_labels[neighbour]  # (B, k_max)
        for k in ks:
            n = min(k, k_max)
            votes = torch.zeros(len(weight), num_class, device=device)
            votes.scatter_add_(1, votes_of[:, :n], weight[:, :n])  # (B, C): sum of exp(s / tau) per class
            predictions[k].append(votes.argmax(dim=1).cpu())
    return {k: torch.cat(p) for k, p in predictions.items()}


def knn_evaluation(train_feats, train_labels, test_feats, test_labels, ks=(1, 10, 20),
                   temperature=KNN_TEMPERATURE, device="cpu") -> dict:
    """{"knn_top1_k1": %, "knn_top1_k10": %, ...}; k larger than the training set uses all of it."""
    predictions = knn_predict(train_feats, train_labels, test_feats, ks, temperature, device=device)
    test_labels = test_labels.cpu().long()
    return {f"knn_top1_k{k}": 100.0 * (p == test_labels).float().mean().item() for k, p in predictions.items()}


# ----------------------------------------------------------------------------------------------------------------
# Semi-supervised fine-tuning
# ----------------------------------------------------------------------------------------------------------------

def class_balanced_subset(labels, fraction, seed=0) -> np.ndarray:
    """Sorted indices of round(fraction * n_c) samples of every class c present (at least one), drawn with `seed`."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        chosen.append(rng.choice(members, size=max(1, round(fraction * len(members))), replace=False))
    return np.sort(np.concatenate(chosen))


class FineTuned(nn.Module):
    """f followed by a new linear classifier, trained end to end."""

    def __init__(self, encoder, num_class):
        super().__init__()
        self.encoder, self.fc = encoder, nn.Linear(encoder.feature_dim, num_class)

    def forward(self, x):  # (N, 3, T, 25, M) -> (N, num_class)
        return self.fc(self.encoder.features(x))


def _fraction_key(fraction) -> str:
    return f"semi_{fraction * 100:g}%"


def fine_tune(encoder_state, size, train_set, test_set, num_class, indices, seed=0, epochs=100, lr=0.1,
              momentum=0.9, weight_decay=1e-4, batch_size=128, device="cpu", num_workers=0):
    """Fine-tune encoder + a new linear classifier on train_set[indices]; (top-1 % on test_set, the model)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FineTuned(build_encoder(encoder_state, size), num_class).to(device)
    # Reconstruction: the field does not fix one fine-tuning recipe; ours is SGD momentum 0.9, lr 0.1,
    # weight decay 1e-4, lr x 0.1 after 80 % of the epochs, no augmentation, one lr for encoder and classifier.
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[max(1, round(0.8 * epochs))], gamma=0.1)
    loader = DataLoader(Subset(train_set, list(map(int, indices))), batch_size=min(batch_size, len(indices)),
                        shuffle=True, num_workers=num_workers, generator=torch.Generator().manual_seed(seed))
    model.train()
    for _ in tqdm(range(epochs), desc=f"fine-tune ({len(indices)} labels, seed {seed})", unit="epoch",
                  leave=False, file=sys.stderr):
        for batch in loader:
            x, y = batch[0].to(device), torch.as_tensor(batch[1], dtype=torch.long).to(device)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        scheduler.step()
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for batch in DataLoader(test_set, batch_size=256, num_workers=num_workers):
            y = torch.as_tensor(batch[1], dtype=torch.long)
            correct += (model(batch[0].to(device)).argmax(dim=1).cpu() == y).sum().item()
            total += len(y)
    return 100.0 * correct / total, model


def semi_supervised(encoder_state, size, train_set, test_set, num_class, fractions=(0.01, 0.1), seeds=(0, 1, 2),
                    epochs=100, lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=128, device="cpu",
                    num_workers=0) -> dict:
    """{"semi_1%": {"mean": %, "std": %, "runs": [{"seed", "num_labels", "top1"}]}, "semi_10%": ...}.

    Each (fraction, seed) draws its own class-balanced label subset with that seed and fine-tunes a fresh copy
    of the encoder; std is the sample standard deviation over the seeds (0 for one seed).
    `train_set` needs `labels` (N,) (SkeletonDataset has them) and items (x, y, ...).
    """
    results = {}
    for fraction in fractions:
        runs = []
        for seed in seeds:
            indices = class_balanced_subset(train_set.labels, fraction, seed)
            top1, _ = fine_tune(encoder_state, size, train_set, test_set, num_class, indices, seed, epochs, lr,
                             momentum, weight_decay, batch_size, device, num_workers)
            runs.append({"seed": int(seed), "num_labels": len(indices), "top1": top1})
        accuracies = np.array([r["top1"] for r in runs])
        results[_fraction_key(fraction)] = {"mean": float(accuracies.mean()),
                                            "std": float(accuracies.std(ddof=1)) if len(runs) > 1 else 0.0,
                                            "runs": runs}
    return results


# ----------------------------------------------------------------------------------------------------------------
# Zero-shot in CLIP space (E3)
# ----------------------------------------------------------------------------------------------------------------

def average_precision(scores, relevant) -> torch.Tensor:
    """AP of each row: scores (Q, N), relevant bool (Q, N) -> (Q,); rows without a relevant item give nan."""
    order = scores.argsort(dim=1, descending=True)
    hits = relevant.gather(1, order).float()  # (Q, N) relevance in rank order
    precision = hits.cumsum(dim=1) / torch.arange(1, hits.shape[1] + 1)  # precision at every rank
    return (precision * hits).sum(dim=1) / hits.sum(dim=1)


def zero_shot(Z_l, text_features, labels) -> dict:
    """(E3) Z_l (N, D) unit skeleton embeddings vs text_features (C, D) unit class-name embeddings.

    zero_shot_top1/top5 classify by cosine; retrieval_R@1/R@5 (skeleton->text: is the true class text among the
    k nearest texts) equal top1/top5 by construction; retrieval_t2s_mAP ranks all skeletons for each class text
    present in `labels`. Also returns `predictions` (N,).
    """
    labels = torch.as_tensor(labels).long().cpu()
    S = Z_l.float().cpu() @ text_features.float().cpu().T  # (N, C) cosine similarities
    top1, top5 = topk_accuracy(S, labels, 1), topk_accuracy(S, labels, 5)
    present = labels.unique()
    relevant = labels[None, :] == present[:, None]  # (C_present, N)
    mAP = average_precision(S.T[present], relevant).mean().item()
    return {"zero_shot_top1": top1, "zero_shot_top5": top5, "retrieval_R@1": top1, "retrieval_R@5": top5,
            "retrieval_t2s_mAP": 100.0 * mAP, "predictions": S.argmax(dim=1)}


def load_heads(path) -> dict:
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
        for m in MODALITIES:
            heads[m] = {k[len(f"heads.{m}."):]: v for k, v in state.items() if k.startswith(f"heads.{m}.")} or None
            if heads[m]:  # ProjectionHead: net.0 Linear(256, hidden), net.3 Linear(hidden, D)
                heads.update(hidden=len(heads[m]["net.0.weight"]), dim=len(heads[m]["net.3.weight"]))
        if str(heads.get("pretrained")).lower() == "none":  # config.json spells random CLIP weights "none"
            heads["pretrained"] = None
    needed = ("vision", "language", "dim", "hidden", "clip_model", "pretrained")
    if missing := [k for k in needed if not isinstance(heads, dict) or k not in heads]:
        raise CheckpointMismatchError(f"{path}: not a heads.pt of train.py, missing keys: {', '.join(missing)}")
    return heads


def clip_embeddings(feats, heads, modality="language") -> torch.Tensor:
    """(E3) Z_m = normalize(g_m(f(x))) for features f(x) (N, 256) -> (N, D), head in eval()."""
    from distill import ProjectionHead

    head = ProjectionHead(in_dim=feats.shape[1], hidden=int(heads["hidden"]), out_dim=int(heads["dim"]))
    load_checkpoint(head, heads[modality])
    with torch.no_grad():
        return F.normalize(head.eval()(feats.float()), dim=1)


# ----------------------------------------------------------------------------------------------------------------
# Running the protocols on one split
# ----------------------------------------------------------------------------------------------------------------

def pretraining_info(encoder_path, heads_path=None) -> dict:
    """What the encoder was pretrained on (dataset, split, frames, normalization), from heads.pt or config.json
    next to it; empty for checkpoints that come without them (published classifiers)."""
    folder = Path(encoder_path).parent
    heads_path = Path(heads_path) if heads_path else folder / "heads.pt"
    keys = ("dataset", "split", "frames", "normalization", "size", "clip_model", "pretrained")
    saved = read_checkpoint(heads_path) if heads_path.is_file() else {}
    if not any(k in saved for k in keys) and (folder / "config.json").is_file():  # e.g. next to checkpoint_*.pt
        saved = json.loads((folder / "config.json").read_text()).get("train", {})  # {"train": TrainConfig, ...}
    return {k: saved[k] for k in keys if k in saved}


def output_dir(config: EvalConfig) -> Path:
    return Path(config.out) if config.out else Path(config.encoder).parent / f"eval-{config.dataset}-{config.split}"


def run_evaluation(config: EvalConfig) -> dict:
    """Every protocol of config.protocols on config.dataset/split; writes metrics.json and PNGs to the out folder."""
    started = time.perf_counter()
    protocols = [p for p in config.protocols.split(",") if p]
    device = resolve_device(config.device)
    source = pretraining_info(config.encoder, config.heads)
    frames = config.frames or int(source.get("frames", 50))
    normalization = config.normalization or source.get("normalization", "aimclr")
    out = output_dir(config)

    encoder = build_encoder(config.encoder, config.size)
    train_set = load_split(config.data_root, config.dataset, config.split, "train", frames, normalization)
    test_set = load_split(config.data_root, config.dataset, config.split, "val", frames, normalization)
    if config.recalibrate_bn:
        recalibrate_batchnorm(encoder, train_set, config.batch_size, device)
    C, names = num_classes(config.dataset), class_names(config.dataset)
    if "zeroshot" in protocols:  # fail before the long protocols, not after them
        checkpoint = Path(config.encoder).name.startswith("checkpoint_")  # train.py's: the heads of that epoch
        heads = load_heads(config.heads or (config.encoder if checkpoint else Path(config.encoder).parent / "heads.pt"))
        modality = "language" if heads["language"] is not None else "vision"
        if heads[modality] is None:
            raise CheckpointMismatchError("heads.pt holds neither a language nor a vision head: no zero-shot")

    target = f"{config.dataset}/{config.split}"
    origin = f"{source['dataset']}/{source['split']}" if "dataset" in source and "split" in source else None
    metrics = {"encoder": str(config.encoder), "size": encoder.size, "dataset": config.dataset,
               "split": config.split, "frames": frames, "normalization": normalization,
               "source": origin, "target": target, "transfer": origin is not None and origin != target,
               "num_train": len(train_set), "num_test": len(test_set), "num_class": C, "config": asdict(config)}
    seconds = {}

    t = time.perf_counter()  # each step's seconds count from the end of the step before
    train_feats, train_labels = extract_features(encoder, train_set, config.batch_size, device,
                                                 config.num_workers, desc="features (train)")
    test_feats, test_labels = extract_features(encoder, test_set, config.batch_size, device,
                                               config.num_workers, desc="features (test)")
    seconds["features"], t = time.perf_counter() - t, time.perf_counter()
    plot_embedding(test_feats, test_labels, names, out / "embedding.png", seed=config.seed)  # PCA and t-SNE
    seconds["embedding"], t = time.perf_counter() - t, time.perf_counter()

    if "linear" in protocols:
        epochs = config.linear_epochs
        linear = linear_evaluation(train_feats, train_labels, test_feats, test_labels, C, epochs=epochs,
                                   lr=config.linear_lr, batch_size=config.linear_batch_size,
                                   milestones=(max(1, round(0.8 * epochs)),), seed=config.seed, device=device)
        metrics.update(linear_top1=linear["top1"], linear_top1_best=linear["top1_best"], linear_top5=linear["top5"],
                       linear_history=linear["history"],
                       linear_per_class=dict(zip(names, per_class_accuracy(linear["predictions"], test_labels, C))))
        plot_confusion(linear["predictions"], test_labels, names, out / "confusion_linear.png",
                       title=f"linear evaluation, {target}")
        seconds["linear"], t = time.perf_counter() - t, time.perf_counter()
    if "knn" in protocols:
        ks = _comma_list(int, config.knn_k, "knn-k")
        metrics.update(knn_evaluation(train_feats, train_labels, test_feats, test_labels, ks, device=device))
        seconds["knn"], t = time.perf_counter() - t, time.perf_counter()
    if "semi" in protocols:
        metrics.update(semi_supervised(encoder.state_dict(), encoder.size, train_set, test_set, C,
                                       _comma_list(float, config.semi_fractions, "semi-fractions"),
                                       _comma_list(int, config.semi_seeds, "semi-seeds"), epochs=config.semi_epochs,
                                       lr=config.semi_lr, batch_size=config.semi_batch_size, device=device,
                                       num_workers=config.num_workers))
        seconds["semi"], t = time.perf_counter() - t, time.perf_counter()
    if "zeroshot" in protocols:
        text = class_text_features(names, heads["clip_model"], heads["pretrained"], device=device)  # (C, D) (P2)
        if text.shape[1] != int(heads["dim"]):
            raise CheckpointMismatchError(f"heads.pt projects to D = {heads['dim']} but {heads['clip_model']} "
                                          f"text features have D = {text.shape[1]}")
        shot = zero_shot(clip_embeddings(test_feats, heads, modality), text, test_labels)
        predictions = shot.pop("predictions")
        metrics.update(shot, zero_shot_head=modality, zero_shot_clip=[heads["clip_model"], heads["pretrained"]],
                       zero_shot_per_class=dict(zip(names, per_class_accuracy(predictions, test_labels, C))))
        plot_confusion(predictions, test_labels, names, out / "confusion_zero_shot.png",
                       title=f"zero-shot ({modality} head), {target}")
        seconds["zeroshot"], t = time.perf_counter() - t, time.perf_counter()
    seconds["total"] = time.perf_counter() - started
    metrics["seconds"] = seconds
    write_json(out / "metrics.json", metrics)
    return metrics


# ----------------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python evaluate.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Skeleton-only evaluation of a pretrained ST-GCN encoder (docs/method.md §9): linear evaluation "
                    "(E1), kNN (E2), semi-supervised fine-tuning, transfer, and zero-shot / retrieval in CLIP space "
                    "(E3). Writes metrics.json, confusion matrices and embedding maps.",
        epilog="examples:\n"
               "  python evaluate.py --encoder runs/demo/encoder.pt --dataset demo --split xsub\n"
               "  python evaluate.py --encoder runs/ntu60/encoder.pt --dataset ntu60 --split xsub "
               "--protocols linear,knn,semi,zeroshot\n"
               "  python evaluate.py --encoder runs/ntu60/encoder.pt --dataset pku2 --split xsub   # transfer\n"
               "  python evaluate.py --encoder st_gcn.ntu-xsub.pt --dataset ntu60 --split xsub "
               "--frames 300 --normalization none")
    return add_arguments(parser, EvalConfig)


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.encoder:
        parser.error("the following arguments are required: --encoder")
    try:
        config = from_args(EvalConfig, args)
    except ValueError as error:
        parser.error(str(error))
    try:
        metrics = run_evaluation(config)
    except (*CLI_ERRORS, CheckpointMismatchError) as error:  # messages that say what to do: no traceback
        sys.exit(f"error: {error}")
    shown = {k: round(v, 2) for k, v in metrics.items() if isinstance(v, float) and not k.startswith("retrieval_R")}
    shown.update({k: f"{v['mean']:.2f} +- {v['std']:.2f}" for k, v in metrics.items() if k.startswith("semi_")})
    print(f"{metrics['target']} ({'transfer from ' + metrics['source'] if metrics['transfer'] else 'same dataset'}): "
          + ", ".join(f"{k} {v}" for k, v in shown.items()) + f"\noutputs in {output_dir(config)}")
    return metrics


if __name__ == "__main__":
    main()
