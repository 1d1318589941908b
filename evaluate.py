"""Skeleton-only evaluation of a C2VL encoder: the field's protocols (docs/method.md §9) and zero-shot in CLIP space.

C2VL is judged on the feature f(x) of its skeleton encoder alone (encoders.build_encoder rebuilds f from any
checkpoint). On one benchmark split (train part -> test part, the `val_*` files of the field's layout):

    linear    frozen f in eval(), one linear layer on f(x), cross-entropy; SGD momentum 0.9, lr 3.0, weight decay 0,
              batch 128, 100 epochs, lr x 0.1 after epoch 80, no augmentation (the AimCLR/CrosSCLR protocol).
              Reported: top-1 of the last epoch, and the best top-1 of the evaluations every 5 epochs (labelled
              `_best`: what those repositories print; it is selected on the test part, so read it as theirs).
                  (E1)  y_hat = argmax_c (W f(x) + b)_c
    knn       cosine k-nearest neighbours among the training features, k in {1, 10, 20}, each neighbour j voting
              for its class with weight exp(s_j / tau), tau = 0.07 (Wu et al. 2018; k = 1: the plain nearest one).
                  (E2)  y_hat = argmax_c sum_{j in N_k(x)} exp(cos(f(x), f(x_j)) / tau) [y_j = c]
    semi      fine-tune f and a new linear layer end to end on 1 % / 10 % of the training labels, class-balanced
              (round(p * n_c), at least one per class), for several seeds: mean and sample std.
    transfer  the same protocols on a dataset other than the one f was pretrained on (read from heads.pt).
    zeroshot  beyond the paper: C2VL maps skeletons into CLIP's space, so with the language head g_l
                  (E3)  Z_l = normalize(g_l(f(x))),   y_hat = argmax_c Z_l . w_c     (w_c: P2, prompts.py)
              is zero-shot classification; ranking the class texts per skeleton is skeleton->text retrieval (R@k,
              equal to top-k by construction), ranking the skeletons per class text gives text->skeleton mAP.

Every run also reports what the numbers can reach: chance (1 / classes present in the test part), the classes the
training part covers, and the test samples of classes it never saw (a linear probe or kNN cannot name those).
Writes metrics.json (with per-class accuracy), confusion matrices and PCA / t-SNE maps of the test features.
Not here: pretraining (train.py), data preparation (tools/gendata.py), prompt features (prompts.py).
"""
from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from data import DATASETS, NORMALIZATIONS, class_names, load_split, num_classes
from distill import ProjectionHead
from encoders import build_encoder, check_frames, encoder_kind, recorded_stepping
from prompts import CLI_ERRORS, MODALITIES, class_text_features
from skeleton_gru import STEPPINGS
from utils.checkpoints import CheckpointMismatchError, load_checkpoint
from utils.config import add_arguments, check_choices, check_positive, comma_list, from_args, setting
from utils.distributed import DEVICES, resolve_device
from utils.files import save_npz, write_json
from utils.plots import plot_confusion, plot_embedding
from utils.runs import Stopwatch, load_heads, pretraining_info
from utils.scores import (average_precision, confusion_matrix, coverage, evaluation_lines, per_class_accuracy,
                          topk_accuracy)

PROTOCOLS = ("linear", "knn", "semi", "zeroshot")
KNN_TEMPERATURE = 0.07


# ----------------------------------------------------------------------------------------------------------------
# The protocols: linear evaluation (E1), kNN (E2), zero-shot in CLIP space (E3)
# ----------------------------------------------------------------------------------------------------------------

def linear_evaluation(train_feats, train_labels, test_feats, test_labels, num_class, epochs=100, lr=3.0,
                      momentum=0.9, weight_decay=0.0, batch_size=128, milestones=(80,), eval_every=5, seed=0,
                      device="cpu"):
    """(E1) one linear layer trained on frozen features; top-1 of the last epoch and the best of every `eval_every`.

    The encoder is frozen, in eval() mode, and the protocol has no augmentation, so f(x) of a sample is the same in
    every epoch: the features are computed once and the epochs run on them (the same updates as re-encoding each
    batch). The classifier starts from N(0, 0.01) weights and zero bias (MoCo/AimCLR). Returns dict(top1, top1_best,
    top5, history=[(epoch, top1)], predictions LongTensor (N_test,)).
    """
    train_feats, train_labels = train_feats.float().to(device), train_labels.long().to(device)
    test_feats, test_labels = test_feats.float().to(device), test_labels.long().to(device)
    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's random state
        torch.manual_seed(seed)
        classifier = nn.Linear(train_feats.shape[1], num_class)
        classifier.weight.data.normal_(mean=0.0, std=0.01)
        classifier.bias.data.zero_()
    classifier.to(device)
    optimizer = torch.optim.SGD(classifier.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=0.1)
    order_rng = torch.Generator().manual_seed(seed)
    history = []
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
            with torch.no_grad():
                history.append((epoch, topk_accuracy(classifier(test_feats), test_labels, 1)))
    with torch.no_grad():
        scores = classifier(test_feats)  # (N_test, num_class)
    evaluated = [acc for e, acc in history if e % eval_every == 0] or [history[-1][1]]
    return dict(top1=history[-1][1], top1_best=max(evaluated), top5=topk_accuracy(scores, test_labels, 5),
                history=history, predictions=scores.argmax(dim=1).cpu())


def standardize(train_feats, test_feats, eps=1e-6):
    """x <- (x - mu) / sigma per dimension, mu and sigma of the training features: the linear probe of MAE and MAMP (a
    BatchNorm without affine before the linear layer), with the statistics of the whole training split. The
    Transformer's features are LayerNorm outputs whose dimensions vary ~100x less than their common offset; with
    them as they are, the SGD lr of AimCLR's protocol (3.0) cannot separate them."""
    mu, sigma = train_feats.mean(dim=0), train_feats.std(dim=0) + eps  # (d,), (d,)
    return (train_feats - mu) / sigma, (test_feats - mu) / sigma


def linear_protocol(config, architecture, train_feats, train_labels, test_feats, test_labels, num_class, device):
    """E1 as a run reports it: the mean of config.linear_seeds linear_evaluation probes (seeds seed .. seed + n - 1),
    on standardised features for the Transformer. -> (its metrics, the first probe's run for the pictures)."""
    epochs = config.linear_epochs
    # Reconstruction: each encoder probed as in its reference code (MAMP standardises); alternative: --linear_norm.
    norm = config.linear_norm if config.linear_norm != "auto" else (
        "standard" if architecture == "transformer" else "none")
    x_train, x_test = standardize(train_feats, test_feats) if norm == "standard" else (train_feats, test_feats)
    # Reconstruction: the demo averages the probe over seeds (its own randomness is ~1 point of top-1 there);
    # alternative: --linear_seeds 1, the field's single run.
    runs = [linear_evaluation(x_train, train_labels, x_test, test_labels, num_class, epochs=epochs,
                              lr=config.linear_lr, batch_size=config.linear_batch_size,
                              milestones=(max(1, round(0.8 * epochs)),), seed=config.seed + i, device=device)
            for i in range(config.linear_seeds)]
    metrics = dict(linear_norm=norm, linear_top1=float(np.mean([r["top1"] for r in runs])),
                   linear_top1_best=float(np.mean([r["top1_best"] for r in runs])),
                   linear_top5=float(np.mean([r["top5"] for r in runs])),
                   linear_top1_seeds=[r["top1"] for r in runs], linear_history=runs[0]["history"])
    return metrics, runs[0]


def knn_predict(train_feats, train_labels, test_feats, ks=(1, 10, 20), temperature=KNN_TEMPERATURE, chunk=1024,
                device="cpu"):
    """(E2) predictions (N_test,) for each k: cosine neighbours, votes weighted by exp(similarity / tau)."""
    train = F.normalize(train_feats.float().to(device), dim=1)  # (N_train, d)
    test = F.normalize(test_feats.float().to(device), dim=1)  # (N_test, d)
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
                   temperature=KNN_TEMPERATURE, device="cpu", predictions_out=None) -> dict:
    """{"knn_top1_k1": %, "knn_top1_k10": %, ...}; k larger than the training set uses all of it. A dict given as
    predictions_out receives {"knn_k1": (N_test,) array, ...}."""
    predictions = knn_predict(train_feats, train_labels, test_feats, ks, temperature, device=device)
    test_labels = test_labels.cpu().long()
    if predictions_out is not None:
        predictions_out.update({f"knn_k{k}": p.numpy() for k, p in predictions.items()})
    return {f"knn_top1_k{k}": 100.0 * (p == test_labels).float().mean().item() for k, p in predictions.items()}


def zero_shot(Z_l, text_features, labels) -> dict:
    """(E3) Z_l (N, D) unit skeleton embeddings vs text_features (C, D) unit class-name embeddings w_c.

    zero_shot_top1/top5 classify by cosine; retrieval_R@1/R@5 (skeleton->text) equal top1/top5 by construction;
    retrieval_t2s_mAP ranks all skeletons for each class text present in `labels`. Also `predictions` (N,).
    """
    labels = torch.as_tensor(labels).long().cpu()
    S = Z_l.float().cpu() @ text_features.float().cpu().T  # (N, C) cosine similarities
    top1, top5 = topk_accuracy(S, labels, 1), topk_accuracy(S, labels, 5)
    present = labels.unique()
    relevant = labels[None, :] == present[:, None]  # (C_present, N)
    mAP = average_precision(S.T[present], relevant).mean().item()
    return {"zero_shot_top1": top1, "zero_shot_top5": top5, "retrieval_R@1": top1, "retrieval_R@5": top5,
            "retrieval_t2s_mAP": 100.0 * mAP, "predictions": S.argmax(dim=1)}


def clip_embeddings(feats, heads, modality="language") -> torch.Tensor:
    """(E3) Z_m = normalize(g_m(f(x))) for features f(x) (N, d) -> (N, D), head in eval()."""
    head = ProjectionHead(in_dim=feats.shape[1], hidden=int(heads["hidden"]), out_dim=int(heads["dim"]))
    load_checkpoint(head, heads[modality])
    with torch.no_grad():
        return F.normalize(head.eval()(feats.float()), dim=1)


# ----------------------------------------------------------------------------------------------------------------
# The frozen encoder's features, and semi-supervised fine-tuning
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
def extract_features(encoder, dataset, batch_size=256, device="cpu", workers=0, desc="features"):
    """f(x) for every sample, in dataset order: (feats FloatTensor (N, d), labels LongTensor (N,)) on the CPU.
    The encoder runs in eval() (a feature does not depend on its batch); its previous mode is restored."""
    was_training = encoder.training
    encoder.eval().to(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        pin_memory=str(device).startswith("cuda"))
    feats, labels = [], []
    for batch in tqdm(loader, desc=desc, unit="batch", leave=False, file=sys.stderr):
        x, y = batch[0], batch[1]  # (B, 3, T, 25, M), (B,)
        feats.append(encoder.features(x.to(device, non_blocking=True)).float().cpu())  # (B, d)
        labels.append(torch.as_tensor(y, dtype=torch.long))
    encoder.train(was_training)
    return torch.cat(feats), torch.cat(labels)


def class_balanced_subset(labels, fraction, seed=0) -> np.ndarray:
    """Sorted indices of round(fraction * n_c) samples of every class c present (at least one), drawn with `seed`."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        chosen.append(rng.choice(members, size=max(1, round(fraction * len(members))), replace=False))
    return np.sort(np.concatenate(chosen))


def _fraction_key(fraction) -> str:
    return f"semi_{fraction * 100:g}%"


def fine_tune(encoder_state, size, train_set, test_set, num_class, indices, seed=0, epochs=100, lr=0.1,
              momentum=0.9, weight_decay=1e-4, batch_size=128, device="cpu", workers=0, gru_stepping=None):
    """Fine-tune encoder + a new linear classifier on train_set[indices]; (top-1 % on test_set, the model).
    gru_stepping: a GRU's (None: ISC's, as for any state dict; encoders.build_encoder)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        encoder = build_encoder(encoder_state, size, gru_stepping)  # f(x) (N, d), then a new linear classifier
        model = nn.Sequential(OrderedDict(encoder=encoder, fc=nn.Linear(encoder.feature_dim, num_class))).to(device)
    # Reconstruction: the field does not fix one fine-tuning recipe; ours is SGD momentum 0.9, lr 0.1,
    # weight decay 1e-4, lr x 0.1 after 80 % of the epochs, no augmentation, one lr for encoder and classifier.
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[max(1, round(0.8 * epochs))], gamma=0.1)
    loader = DataLoader(Subset(train_set, list(map(int, indices))), batch_size=min(batch_size, len(indices)),
                        shuffle=True, num_workers=workers, generator=torch.Generator().manual_seed(seed))
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
        for batch in DataLoader(test_set, batch_size=256, num_workers=workers):
            y = torch.as_tensor(batch[1], dtype=torch.long)
            correct += (model(batch[0].to(device)).argmax(dim=1).cpu() == y).sum().item()
            total += len(y)
    return 100.0 * correct / total, model


def semi_supervised(encoder_state, size, train_set, test_set, num_class, fractions=(0.01, 0.1), seeds=(0, 1, 2),
                    epochs=100, lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=128, device="cpu",
                    workers=0, gru_stepping=None) -> dict:
    """{"semi_1%": {"mean": %, "std": %, "runs": [{"seed", "num_labels", "top1"}]}, "semi_10%": ...}.

    Each (fraction, seed) draws its own class-balanced label subset with that seed and fine-tunes a fresh copy of
    the encoder; std is the sample standard deviation over the seeds (0 for one seed). Fractions that draw the
    same labels (small classes: at least one each) say so in `same_labels_as`.
    """
    results, subsets = {}, {}
    for fraction in fractions:
        runs = []
        for seed in seeds:
            indices = class_balanced_subset(train_set.labels, fraction, seed)
            top1, _ = fine_tune(encoder_state, size, train_set, test_set, num_class, indices, seed, epochs, lr,
                                momentum, weight_decay, batch_size, device, workers, gru_stepping)
            runs.append({"seed": int(seed), "num_labels": len(indices), "top1": top1})
            subsets.setdefault(_fraction_key(fraction), []).append(indices.tolist())
        accuracies = np.array([r["top1"] for r in runs])
        results[_fraction_key(fraction)] = {"mean": float(accuracies.mean()),
                                            "std": float(accuracies.std(ddof=1)) if len(runs) > 1 else 0.0,
                                            "runs": runs}
        same = [k for k in subsets if k != _fraction_key(fraction) and subsets[k] == subsets[_fraction_key(fraction)]]
        if same:
            results[_fraction_key(fraction)]["same_labels_as"] = same[0]
    return results


# ----------------------------------------------------------------------------------------------------------------
# Every protocol on one split
# ----------------------------------------------------------------------------------------------------------------

def output_dir(config: EvalConfig) -> Path:
    return Path(config.out) if config.out else Path(config.encoder).parent / f"eval-{config.dataset}-{config.split}"


def zero_shot_inputs(config, names, device):
    """(the head's modality, heads, class text features w_c (C, D)) for zero-shot; computed first, so that a
    missing head or CLIP weight file stops the run before the long protocols."""
    checkpoint = Path(config.encoder).name.startswith("checkpoint_")  # train.py's: the heads of that epoch
    heads = load_heads(config.heads or (config.encoder if checkpoint else Path(config.encoder).parent / "heads.pt"),
                       MODALITIES)
    modality = "language" if heads["language"] is not None else "vision"
    if heads[modality] is None:
        raise CheckpointMismatchError("heads.pt holds neither a language nor a vision head: no zero-shot")
    clip_model = config.clip_model or heads["clip_model"]
    pretrained = config.pretrained or heads["pretrained"]
    pretrained = None if str(pretrained).lower() == "none" else pretrained
    text = class_text_features(names, clip_model, pretrained, device=device)  # (C, D)  (P2)
    if text.shape[1] != int(heads["dim"]):
        raise CheckpointMismatchError(f"heads.pt projects to D = {heads['dim']} but {clip_model} text features have "
                                      f"D = {text.shape[1]}")
    return modality, heads, text, [clip_model, pretrained]


def run_evaluation(config: EvalConfig) -> dict:
    """Every protocol of config.protocols on config.dataset/split; writes metrics.json and PNGs to the out folder."""
    clock, protocols, device = Stopwatch(), [p for p in config.protocols.split(",") if p], resolve_device(config.device)
    source = pretraining_info(config.encoder, config.heads)
    encoder = build_encoder(config.encoder, config.size, config.gru_stepping or recorded_stepping(source))
    architecture = encoder_kind(encoder.state_dict())
    frames = config.frames or int(source.get("frames", getattr(encoder, "frames", 50)))  # the Transformer's own
    check_frames(architecture, frames)
    normalization = config.normalization or source.get("normalization", "aimclr")
    out, C, names = output_dir(config), num_classes(config.dataset), class_names(config.dataset)
    train_set = load_split(config.data_root, config.dataset, config.split, "train", frames, normalization)
    test_set = load_split(config.data_root, config.dataset, config.split, "val", frames, normalization)
    if "zeroshot" in protocols:
        modality, heads, text, clip = zero_shot_inputs(config, names, device)
    if config.recalibrate_bn:
        recalibrate_batchnorm(encoder, train_set, config.batch_size, device)
    target = f"{config.dataset}/{config.split}"
    origin = f"{source['dataset']}/{source['split']}" if "dataset" in source and "split" in source else None
    metrics = {"encoder": str(config.encoder), "architecture": architecture, "size": encoder.size,
               **({"gru_stepping": encoder.stepping} if architecture == "gru" else {}), "dataset": config.dataset,
               "split": config.split, "frames": frames, "normalization": normalization,
               "source": origin, "target": target, "transfer": origin is not None and origin != target,
               "num_train": len(train_set), "num_test": len(test_set), "num_class": C, "config": asdict(config),
               **coverage(train_set.labels, test_set.labels)}
    clock.lap("setup")

    train_feats, train_labels = extract_features(encoder, train_set, config.batch_size, device, config.workers,
                                                 desc="features (train)")
    test_feats, test_labels = extract_features(encoder, test_set, config.batch_size, device, config.workers,
                                               desc="features (test)")
    clock.lap("features")
    plot_embedding(test_feats, test_labels, names, out / "embedding.png", seed=config.seed)  # PCA and t-SNE
    clock.lap("embedding")
    predicted = {"labels": test_labels.numpy()}  # per test sample: tools/ablation.py splits a seed spread with them
    if "linear" in protocols:
        probes, linear = linear_protocol(config, architecture, train_feats, train_labels, test_feats,
                                         test_labels, C, device)
        predicted["linear"] = linear["predictions"].numpy()
        metrics.update(probes,
                       linear_per_class=dict(zip(names, per_class_accuracy(linear["predictions"], test_labels, C))))
        plot_confusion(confusion_matrix(linear["predictions"], test_labels, C), names, out / "confusion_linear.png",
                       title=f"linear evaluation, {target}")
        clock.lap("linear")
    if "knn" in protocols:
        ks = comma_list(int, config.knn_k, "knn-k")
        metrics.update(knn_evaluation(train_feats, train_labels, test_feats, test_labels, ks, device=device,
                                      predictions_out=predicted))
        clock.lap("knn")
    if "semi" in protocols:
        metrics.update(semi_supervised(encoder.state_dict(), encoder.size, train_set, test_set, C,
                                       comma_list(float, config.semi_fractions, "semi-fractions"),
                                       comma_list(int, config.semi_seeds, "semi-seeds"), epochs=config.semi_epochs,
                                       lr=config.semi_lr, batch_size=config.semi_batch_size, device=device,
                                       workers=config.workers, gru_stepping=getattr(encoder, "stepping", None)))
        clock.lap("semi")
    if "zeroshot" in protocols:
        shot = zero_shot(clip_embeddings(test_feats, heads, modality), text, test_labels)
        predictions = shot.pop("predictions")
        predicted["zero_shot"] = predictions.cpu().numpy()
        metrics.update(shot, zero_shot_head=modality, zero_shot_clip=clip,
                       zero_shot_per_class=dict(zip(names, per_class_accuracy(predictions, test_labels, C))))
        plot_confusion(confusion_matrix(predictions, test_labels, C), names, out / "confusion_zero_shot.png",
                       title=f"zero-shot ({modality} head), {target}")
        clock.lap("zeroshot")
    metrics["seconds"] = clock.total()
    save_npz(out / "predictions.npz", **predicted)
    write_json(out / "metrics.json", metrics)
    return metrics


# ----------------------------------------------------------------------------------------------------------------
# Settings and command line
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class EvalConfig:
    """Every setting of `python evaluate.py`; each field is a flag of the same name."""

    encoder: str = setting("", "encoder.pt of train.py, or a checkpoint of a supported encoder (required)")
    heads: str | None = setting(None, "heads.pt (zero-shot; pretraining settings); default: next to the encoder, "
                                "or the encoder itself if it is a checkpoint_*.pt of train.py", kind=str)
    dataset: str = setting("demo", "dataset to evaluate on; another than the pretraining one is transfer",
                           tuple(DATASETS))
    split: str = setting("xsub", "benchmark split: xsub, xview or xset")
    protocols: str = setting("linear,knn", f"comma list of {', '.join(PROTOCOLS)}")
    data_root: str = setting("datasets", "where the <dataset>/<split>/ folders are (tools/gendata.py)")
    out: str | None = setting(None, "output folder; default: <encoder folder>/eval-<dataset>-<split>", kind=str)
    size: str = setting("auto", "encoder width; auto = read from the checkpoint's shapes (so is which encoder it is)",
                        ("auto", "standard", "quarter"))
    gru_stepping: str | None = setting(None, "a GRU's stepping: sequence (the whole sequence in one pass) | frame "
                                       "(ISC's); default: the run's (heads.pt), else frame (ISC's, CMD's weights)",
                                       STEPPINGS, str)
    frames: int | None = setting(None, "frames T of the input; default: the pretraining setting, else the frames a "
                                 "Transformer is built for (MAMP's: 120), else 50", kind=int)
    normalization: str | None = setting(None, "input normalisation; default: the pretraining setting, else aimclr",
                                        NORMALIZATIONS, str)
    clip_model: str | None = setting(None, "zero-shot: the CLIP of the class texts; default: heads.pt's", kind=str)
    pretrained: str | None = setting(None, "zero-shot: its pretrained tag or checkpoint; default: heads.pt's", kind=str)
    device: str = setting("auto", f"{DEVICES} (auto: cuda when available)")
    batch_size: int | None = setting(None, "feature extraction batch (default: 256 on a GPU, 64 on a CPU, where "
                                     "larger batches ran slower: 101 against 178 samples/s, demo encoder)", kind=int)
    workers: int = setting(0, "DataLoader worker processes", aliases=("num_workers",))
    seed: int = setting(0, "seed of the linear classifier and the batch order")
    linear_seeds: int = setting(1, "(E1) linear classifiers trained from seeds seed .. seed + n - 1 on the same "
                                "features; the numbers are their mean (1: the field's single run)")
    linear_epochs: int = setting(100, "(E1) epochs; lr x 0.1 after 80 %% of them (docs/method.md §9)")
    linear_lr: float = setting(3.0, "(E1) SGD learning rate")
    linear_batch_size: int = setting(128, "(E1) batch")
    linear_norm: str = setting("auto", "(E1) the features the linear layer sees: none (as extracted, AimCLR's "
                               "protocol) | standard (each dimension standardised by the training features' mean and "
                               "std, MAE's and MAMP's BatchNorm without affine) | auto (standard for the Transformer, "
                               "as MAMP; none for ST-GCN and the GRU, as their references)", ("auto", "none", "standard"))
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
        cuda = resolve_device(self.device).type == "cuda"
        if self.batch_size is None:
            self.batch_size = 256 if cuda else 64
        if self.split not in DATASETS[self.dataset]:
            raise ValueError(f"--split: {self.dataset} has splits {', '.join(DATASETS[self.dataset])}")
        if bad := [p for p in self.protocols.split(",") if p not in PROTOCOLS]:
            raise ValueError(f"--protocols: unknown {', '.join(map(repr, bad))}; choose from {', '.join(PROTOCOLS)}")
        check_positive(self, ("frames", "batch_size", "linear_epochs", "linear_lr", "linear_batch_size",
                              "linear_seeds", "semi_epochs", "semi_lr", "semi_batch_size"))
        for name, kind, valid, rule in (("knn_k", int, lambda k: k >= 1, "values must be >= 1"),
                                        ("semi_seeds", int, lambda s: s >= 0, "values must be >= 0"),
                                        ("semi_fractions", float, lambda f: 0 < f <= 1, "fractions must be in (0, 1]")):
            if not all(map(valid, comma_list(kind, getattr(self, name), name.replace("_", "-")))):
                raise ValueError(f"--{name.replace('_', '-')}: {rule}, got {getattr(self, name)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python evaluate.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Skeleton-only evaluation of a pretrained skeleton encoder (docs/method.md §9): linear evaluation "
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
    print(evaluation_lines(metrics, output_dir(config)))
    return metrics


if __name__ == "__main__":
    main()
