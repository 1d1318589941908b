"""Pictures of a run: one batch's soft targets next to the student's predictions, the alpha schedule, the curves,
confusion matrices and the embedding maps (PCA, t-SNE) of the test features.

Not a paper concept: what a person wants to look at after train.py and evaluate.py (soft_targets.png,
alpha_schedule.png, curves.png, confusion_*.png, embedding.png).
"""
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from utils.files import save_figure

SYMBOL = {"vision": "v", "language": "l"}  # the subscripts of docs/method.md §2


def plot_soft_targets(batch, path, max_samples=32):
    """Heat maps of one batch: Y_intra^m, Y_inter, the final target T and the student's softmax(S), for both
    directions (s->m, m->s) of every modality; PNG at `path`. batch: BatchTargets (C2VLLoss.inspect_batch)."""
    from matplotlib.figure import Figure

    n = min(max_samples, batch.has_teacher.shape[0])
    rows = [(m, d) for m in batch.T for d in (0, 1)]
    fig = Figure(figsize=(15, 3.6 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 4, squeeze=False)
    for r, (m, d) in enumerate(rows):
        v = SYMBOL[m]
        pair = f"s→{v}" if d == 0 else f"{v}→s"
        panels = [
            (batch.Y_intra[m], f"M4  $Y_{{intra}}^{{{v}}}$"),
            (batch.Y_inter[m][d], f"M9  $Y_{{inter}}^{{{pair}}}$ ({batch.inter})"),
            (batch.T[m][d], f"M10  $T^{{{pair}}}$ (α_e = {batch.alpha_e:.3f})"),
            (batch.S[m][d].softmax(dim=1), f"student softmax(S) {pair} (M1)"),
        ]
        for c, (matrix, title) in enumerate(panels):
            ax = axes[r, c]
            image = ax.imshow(matrix[:n, :n].detach().float().cpu().numpy(), cmap="viridis", vmin=0.0)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("skeleton j" if d == 1 else "prompt j")
            ax.set_ylabel("prompt i" if d == 1 else "skeleton i")
            fig.colorbar(image, ax=ax, fraction=0.046)
    teacher = float(batch.has_teacher.float().mean())
    fig.suptitle(f"C2VL soft targets, first {n} samples of the batch (teacher rows: {teacher:.0%})")
    return save_figure(fig, path)


def plot_alpha_schedule(path, alpha, alpha_T=0.5, kind="linear"):
    """alpha_e over the epochs e = 1 ... E (M6; `alpha`: the E values of distill.alpha_schedule) as a PNG."""
    from matplotlib.figure import Figure

    epochs = len(alpha)
    e = list(range(1, epochs + 1))
    fig = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(e, alpha, marker="o" if epochs <= 50 else None, markersize=3)
    ax.set_xlabel("epoch e")
    ax.set_ylabel("α_e (weight of Y_inter)")
    ax.set_ylim(0.0, max(1e-3, alpha_T) * 1.1)
    formula = "α_T · e / E" if kind == "linear" else "α_T"
    ax.set_title(f"α schedule ({kind}): α_e = {formula}, α_T = {alpha_T}, E = {epochs}", fontsize=9)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_curves(out):
    """loss and accuracy over the epochs (metrics.jsonl) -> curves.png."""
    from matplotlib.figure import Figure

    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    metrics = json.loads((out / "metrics.json").read_text())
    fig = Figure(figsize=(15, 4), layout="tight")
    ax_loss, ax_acc, ax_health = fig.subplots(1, 3)
    epochs = [h["epoch"] for h in history]
    for key in [k for k in history[0] if k.startswith("loss")]:
        ax_loss.plot(epochs, [h[key] for h in history], label=key)
    ax_loss.set(xlabel="pretraining epoch", ylabel="C2VL loss (M12)", title="pretraining loss")
    ax_loss.legend()
    monitored = [(h["epoch"], h["knn_top1"]) for h in history if "knn_top1" in h]
    if monitored:
        ax_acc.plot(*zip(*monitored), "o-", label="kNN-20 top-1 during pretraining")
    if metrics.get("linear_history"):
        e, acc = zip(*metrics["linear_history"])
        ax_acc.plot(e, acc, label="linear evaluation top-1 (by linear epoch)")
    for key in [k for k in history[0] if k.startswith("retrieval_")]:  # chance: 100 / global batch
        ax_acc.plot(epochs, [100 * h[key] for h in history], "--", label=f"{key} (in-batch, train)")
    ax_acc.set(xlabel="epoch", ylabel="top-1 (%)", title="accuracy")
    ax_acc.legend(fontsize=7)
    for key in [k for k in history[0] if k.startswith(("target_entropy_", "prompt_cosine_"))]:
        ax_health.plot(epochs, [h[key] for h in history], label=key)
    ax_health.set(xlabel="pretraining epoch", title="target entropy (nats) and in-batch prompt cosine")
    ax_health.legend(fontsize=7)
    save_figure(fig, out / "curves.png", dpi=100)


def plot_confusion(counts, class_names, path, title="confusion matrix") -> Path:
    """Row-normalised confusion matrix (counts (C, C), rows: true class) of the classes that occur, as a PNG."""
    from matplotlib.figure import Figure

    counts = np.asarray(counts)
    shown = np.flatnonzero(counts.sum(axis=0) + counts.sum(axis=1))  # classes in the labels or the predictions
    counts = counts[np.ix_(shown, shown)]
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(max(5.0, 0.22 * len(shown) + 2.5), 30.0)
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    names = [class_names[i] if len(shown) <= 60 else str(i) for i in shown]
    ax.set_xticks(range(len(shown)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(shown)), names, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    accuracy = 100.0 * np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"{title} (top-1 {accuracy:.1f} %, rows sum to 1)", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    return save_figure(fig, path)


def pca_2d(feats) -> np.ndarray:
    """(N, d) -> (N, 2): the two principal components of the L2-normalised features."""
    X = F.normalize(torch.as_tensor(feats).float(), dim=1)
    X = X - X.mean(dim=0)
    _, _, Vh = torch.linalg.svd(X, full_matrices=False)
    return (X @ Vh[:2].T).numpy()


def tsne_2d(feats, seed=0) -> np.ndarray:
    """(N, d) -> (N, 2): t-SNE (van der Maaten & Hinton, 2008) of the L2-normalised features, seeded."""
    from sklearn.manifold import TSNE  # imported here: only the embedding picture needs scikit-learn
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    X = F.normalize(torch.as_tensor(feats).float(), dim=1).numpy()  # |a - b|^2 = 2 - 2 cos(a, b) on unit vectors
    perplexity = min(30.0, (len(X) - 1) / 3)  # 30: the usual value; (N - 1) / 3 keeps tiny test sets valid
    # One thread: t-SNE's 1000 short gradient steps each wait for every OpenMP thread, which stalls on busy cores
    # (torch's own pool, other jobs): 2000 points took 10 s on one thread, 50-60 s on two, on a shared 2-core CPU.
    with threadpool_limits(1, user_api="openmp"):
        return TSNE(perplexity=perplexity, init="pca", random_state=seed).fit_transform(X)


def stratified_subset(labels, n) -> np.ndarray:
    """Indices of n samples evenly spaced in class order (all of them if n >= N): each class keeps its share."""
    order = np.argsort(np.asarray(labels), kind="stable")
    return order[np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int)]


def plot_embedding(feats, labels, class_names, path, max_points=5000, tsne_points=2000, seed=0) -> Path:
    """2-D maps of the features coloured by class, as a PNG: PCA of a seeded subset of max_points, and next to it
    t-SNE of a class-stratified tsne_points of those (about 10 s per 2000 points on one CPU core)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    feats, labels = torch.as_tensor(feats), torch.as_tensor(labels).long()
    if len(feats) > max_points:
        keep = torch.randperm(len(feats), generator=torch.Generator().manual_seed(seed))[:max_points]
        feats, labels = feats[keep], labels[keep]
    labels = labels.numpy()
    sub = stratified_subset(labels, tsne_points)
    C = len(class_names)
    cmap = colormaps["tab20" if C <= 20 else "turbo"]
    fig = Figure(figsize=(14.5 if C <= 20 else 12.5, 6), layout="constrained")
    ax_pca, ax_tsne = fig.subplots(1, 2)
    for ax, xy, y in ((ax_pca, pca_2d(feats), labels), (ax_tsne, tsne_2d(feats[sub], seed), labels[sub])):
        for c in np.unique(y):
            at = y == c
            ax.scatter(xy[at, 0], xy[at, 1], s=6, color=cmap(c / max(C - 1, 1) if C > 20 else c % 20),
                       label=class_names[c], alpha=0.8, linewidths=0)
    if C <= 20:
        ax_tsne.legend(*ax_pca.get_legend_handles_labels(),  # the PCA panel's: it shows every class
                       fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    ax_pca.set_xlabel("PC 1")
    ax_pca.set_ylabel("PC 2")
    ax_pca.set_title(f"test features f(x), PCA of the unit vectors ({len(labels)} samples, {C} classes)", fontsize=9)
    ax_tsne.set_xlabel("t-SNE 1")
    ax_tsne.set_ylabel("t-SNE 2")
    shown = f"{len(sub)} of {len(labels)} samples, class-stratified" if len(sub) < len(labels) else "all samples"
    ax_tsne.set_title(f"t-SNE of the unit vectors ({shown})", fontsize=9)
    return save_figure(fig, path)
