"""Scores of the evaluation protocols, and what a split lets them reach.

Top-k accuracy, per-class accuracy, confusion counts and average precision (evaluate.py's protocols report them),
and `coverage`: chance, the classes the training part covers, and the top-1 reachable when the test part holds
classes the training part never saw. Not a paper concept: plumbing for evaluate.py and train.py.
"""
import math

import numpy as np
import torch


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


def coverage(train_labels, test_labels) -> dict:
    """What a split lets the protocols reach: chance top-1 (% of always guessing one class present in the test part,
    1 / classes there), the classes the training part covers, the test samples of classes it never saw, and the
    highest top-1 a classifier trained on the training part can reach (the seen test samples' share)."""
    trained, tested = set(np.unique(train_labels).tolist()), np.unique(test_labels)
    unseen = int(sum(int(y) not in trained for y in np.asarray(test_labels)))
    return {"chance_top1": 100.0 / len(tested), "classes_trained": len(trained), "classes_tested": len(tested),
            "classes_tested_not_trained": int(sum(int(c) not in trained for c in tested)),
            "samples_of_untrained_classes": unseen,
            "reachable_top1": 100.0 * (len(test_labels) - unseen) / len(test_labels)}


def average_precision(scores, relevant) -> torch.Tensor:
    """AP of each row: scores (Q, N), relevant bool (Q, N) -> (Q,); rows without a relevant item give nan."""
    order = scores.argsort(dim=1, descending=True)
    hits = relevant.gather(1, order).float()  # (Q, N) relevance in rank order
    precision = hits.cumsum(dim=1) / torch.arange(1, hits.shape[1] + 1)  # precision at every rank
    return (precision * hits).sum(dim=1) / hits.sum(dim=1)


def reach_line(metrics) -> str:
    """What the numbers can reach, in one line (printed by evaluate.py and train.py)."""
    line = (f"chance {metrics['chance_top1']:.1f} %; training part covers {metrics['classes_trained']} classes, "
            f"test part {metrics['classes_tested']}")
    if metrics["samples_of_untrained_classes"]:
        line += (f"; {metrics['samples_of_untrained_classes']} of {metrics['num_test']} test samples belong to "
                 f"classes never trained on: at most {metrics['reachable_top1']:.1f} % reachable by linear and kNN")
    return line


def evaluation_lines(metrics, out) -> str:
    """What evaluate.py prints: the target and its source, every score (2 decimals; semi-supervised: mean +- std),
    what the split lets them reach, and the output folder."""
    shown = {k: round(v, 2) for k, v in metrics.items() if isinstance(v, float) and not k.startswith("retrieval_R")
             and k not in ("chance_top1", "reachable_top1")}
    shown.update({k: f"{v['mean']:.2f} +- {v['std']:.2f}" + (f" (the labels of {v['same_labels_as']})"
                                                            if "same_labels_as" in v else "")
                  for k, v in metrics.items() if k.startswith("semi_")})
    return (f"{metrics['target']} ({'transfer from ' + metrics['source'] if metrics['transfer'] else 'same dataset'}): "
            + ", ".join(f"{k} {v}" for k, v in shown.items()) + f"\n{reach_line(metrics)}\noutputs in {out}")


def summary_table(metrics) -> str:
    """What train.py prints at the end: linear evaluation of the run (and of the random-init baseline), kNN,
    zero-shot, and what the split lets them reach."""
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
    lines.append(f"  {reach_line(metrics)}")
    if metrics["dataset"] == "demo":
        lines.append("  one draw (this seed, this machine); the demo's 3-seed means and their spread: docs/results.md")
    return "\n".join(lines)
