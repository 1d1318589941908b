"""Pictures of a run: one batch's soft targets next to the student's predictions, the alpha schedule, the curves.

Not a paper concept: what a person wants to look at after train.py (soft_targets.png, alpha_schedule.png,
curves.png). evaluate.py draws its own confusion matrices and embedding maps.
"""
import json

from distill import SYMBOL, alpha_schedule
from utils.files import save_figure


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
            (batch.S[m][d].softmax(dim=1), f"student σ(S) {pair} (M1)"),
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


def plot_alpha_schedule(path, epochs, alpha_T=0.5, kind="linear"):
    """alpha_e over the epochs e = 1 ... E (M6) as a PNG at `path`."""
    from matplotlib.figure import Figure

    e = list(range(1, epochs + 1))
    alpha = [alpha_schedule(k, epochs, alpha_T, kind) for k in e]
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
