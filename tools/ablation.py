"""The paper's ablations in one command: which of C2VL's targets does the work, with which encoder, at which noise.

Every cell is one `python train.py` run with flags that exist already (docs/method.md: beta of M4, alpha_T of M6,
the inter-modal target of M9, the prompt modalities; --encoder; --pair_noise), over several seeds; this file only
runs and tabulates. Finished runs are kept in the output folder and reused, so an interrupted ablation continues
where it stopped.

    python tools/ablation.py --variants infonce c2vl                        # the demo, seeds 0 1 2
    python tools/ablation.py --variants infonce c2vl --encoders stgcn gru transformer
    python tools/ablation.py --variants infonce c2vl --pair-noise 0 0.2 0.4 0.6
    python tools/ablation.py --dataset ntu60 --split xsub --seeds 0 --train-args "--epochs 100"

Writes <out>/ablation.md and ablation.png: per cell the mean and the sample standard deviation (n - 1) over seeds of
linear top-1, kNN-20 and zero-shot top-1 (%); the random-init encoder per encoder; and every variant's paired
difference to the reference variant (same seed, encoder and noise), its standard error, and whether it stands above
the spread: whether the 95 % confidence interval of the mean paired difference (Student's t, n - 1 degrees of
freedom) leaves out 0. Where the runs wrote predictions.npz (evaluate.py), also the part of each std that the
finite test set explains (`test_set_part`): a larger test set can shrink that part and no more.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

# Run as a script (python tools/ablation.py): the project's modules live in the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import train  # noqa: E402
from utils.config import add_arguments, from_args, setting  # noqa: E402
from utils.files import write_text  # noqa: E402

# key -> (row name, the train.py flags that make it); everything else at the dataset's preset and the loss defaults
VARIANTS = {
    "infonce": ("CLIP InfoNCE (β 0, α_T 0)", ["--beta", "0", "--alpha_T", "0"]),
    "intra": ("+ intra-modal targets (α_T 0)", ["--alpha_T", "0"]),
    "inter": ("+ inter-modal targets (β 0)", ["--beta", "0"]),
    "c2vl": ("C2VL", []),
    "self": ("C2VL, inter-modal target self", ["--inter", "self"]),
    "vision": ("C2VL, vision prompts only", ["--modalities", "vision"]),
    "language": ("C2VL, language prompts only", ["--modalities", "language"]),
    "constant": ("C2VL, constant α schedule", ["--alpha_schedule", "constant"]),
    "off": ("C2VL, no inter-modal target (Y_inter = Y_intra)", ["--inter", "off"]),
    "tau": ("C2VL, τ_t 0.2", ["--tau_t", "0.2"]),
}
METRICS = {"linear_top1": "linear top-1", "knn_top1_k20": "kNN-20", "zero_shot_top1": "zero-shot top-1"}
PREDICTIONS = {"linear_top1": "linear", "knn_top1_k20": "knn_k20", "zero_shot_top1": "zero_shot"}  # in predictions.npz
BASELINE = "random init"
T_975 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}  # Student's t, 97.5 %


@dataclass
class AblationConfig:
    """Every setting of `python tools/ablation.py`; each field is a flag of the same name."""
    dataset: str = setting("demo", "as train.py --dataset")
    split: str = setting("xsub", "as train.py --split")
    data_root: str = setting("datasets", "as train.py --data-root")
    seeds: tuple = setting((0, 1, 2), "seeds of every cell", kind=int, nargs="+")
    variants: tuple = setting(tuple(VARIANTS), f"variants (rows): {', '.join(VARIANTS)} (or their 0-based numbers)",
                              nargs="+")
    encoders: tuple = setting(("stgcn",), "train.py --encoder of every cell: stgcn, gru, transformer", nargs="+")
    pair_noise: tuple = setting((0.0,), "train.py --pair_noise of every cell: fractions of broken pairs",
                                kind=float, nargs="+")
    reference: str = setting("", "the variant paired differences are taken against (default: infonce when run, "
                             "else the first variant)")
    train_args: str = setting("", "more train.py flags for every run, one string (e.g. \"--epochs 100\")")
    out: str = setting("", "output folder; default runs/ablation-<dataset>-<split>")


def run_cell(config: AblationConfig, variant: str, encoder: str, noise: float, seed: int, baseline: bool) -> dict:
    """metrics.json of one train.py run (made now unless the folder holds a finished one)."""
    out = Path(config.out) / f"{variant}-{encoder}-noise{noise:g}-seed{seed}"
    if not (out / "metrics.json").is_file():
        argv = ["--dataset", config.dataset, "--split", config.split, "--data-root", config.data_root,
                "--seed", str(seed), "--out", str(out), "--encoder", encoder, "--pair_noise", str(noise),
                "--baseline" if baseline else "--no-baseline", *VARIANTS[variant][1], *shlex.split(config.train_args)]
        print(f"\n=== {VARIANTS[variant][0]}, {encoder}, pair noise {noise:g}, seed {seed}: python train.py "
              f"{shlex.join(argv)}", file=sys.stderr, flush=True)
        if out.exists():  # an unfinished run: start it again (its checkpoint may be from a killed evaluation)
            for stale in out.glob("checkpoint_*.pt"):
                stale.unlink()
        train.main(argv)
    return {**json.loads((out / "metrics.json").read_text()), "run_folder": str(out)}


def mean_std(values) -> tuple[float, float]:
    """(mean, sample standard deviation (n - 1), 0 for one value): the one spread every table of the project shows."""
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def paired_difference(a, b) -> tuple[float, float, bool]:
    """Mean of the per-seed differences a - b, its standard error (sample std / sqrt n), and whether the 95 %
    confidence interval (Student's t, n - 1 degrees of freedom) leaves out 0: the difference stands above the spread."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(d) < 2:
        return float(d.mean()), float("nan"), False
    se = float(d.std(ddof=1) / np.sqrt(len(d)))
    t = T_975.get(len(d) - 1, 1.96)
    return float(d.mean()), se, bool(abs(d.mean()) > t * se)


def baseline_sources(runs: dict) -> dict:
    """{(BASELINE, encoder, None): the first row key whose every run evaluated the random-init encoder}, per encoder."""
    sources = {}
    for (variant, encoder, noise), ms in runs.items():
        if all(any(f"random_init_{k}" in m for k in METRICS) for m in ms):
            sources.setdefault((BASELINE, encoder, None), (variant, encoder, noise))
    return sources


def summarise(runs: dict) -> dict:
    """runs {(variant, encoder, noise): [metrics per seed]} -> {row key: {metric: (mean, std) or None}}, plus one
    random-init row per encoder (key (BASELINE, encoder, None)) from the runs that evaluated it."""
    rows = dict(runs)
    for row, source in baseline_sources(runs).items():
        rows[row] = [{k: m[f"random_init_{k}"] for k in METRICS if f"random_init_{k}" in m} for m in runs[source]]
    return {key: {k: mean_std(v) if len(v := [m[k] for m in ms if k in m]) == len(ms) else None for k in METRICS}
            for key, ms in rows.items()}


def test_set_part(correct) -> float:
    """The part (%) of a seed std that the finite test set explains, from the runs' per-sample results c_i (n,)
    (1 where run i is right): sqrt(mean over pairs i < j of Var(c_i - c_j) / n / 2). Two runs' accuracies on the same
    n samples differ by mean(c_i - c_j), which varies by Var(c_i - c_j) / n from one test set of n to another even
    when the runs are equally good; each run carries half of it."""
    pairs = [np.var(np.asarray(a, float) - np.asarray(b, float)) / len(a) for a, b in itertools.combinations(correct, 2)]
    return 100.0 * float(np.sqrt(np.mean(pairs) / 2)) if pairs else float("nan")


def test_set_parts(runs: dict) -> dict:
    """{row key: {metric: test_set_part or None}} for the rows whose runs all wrote predictions.npz (the random-init
    rows from each run's random_init/ folder)."""
    folders = {key: [Path(m["run_folder"]) for m in ms] for key, ms in runs.items()
               if all("run_folder" in m for m in ms)}
    for row, source in baseline_sources(runs).items():
        if source in folders:
            folders[row] = [f / "random_init" for f in folders[source]]
    parts = {}
    for key, paths in folders.items():
        if len(paths) < 2 or not all((p / "predictions.npz").is_file() for p in paths):
            continue
        arrays = [np.load(p / "predictions.npz") for p in paths]
        parts[key] = {k: test_set_part([a[name] == a["labels"] for a in arrays])
                      if all(name in a for a in arrays) else None for k, name in PREDICTIONS.items()}
    return parts


def differences(runs: dict, reference: str) -> dict:
    """{(variant, encoder, noise): {metric: (mean difference, SE, stands above the spread) or None}} against the
    reference variant's runs of the same encoder, noise and seeds; and, for the runs that evaluated it, against the
    random-init encoder of the same seed (key (variant, encoder, noise, BASELINE))."""
    out = {}
    for (variant, encoder, noise), ms in runs.items():
        base = runs.get((reference, encoder, noise))
        if variant != reference and base is not None:
            out[(variant, encoder, noise)] = {
                k: paired_difference([m[k] for m in ms], [m[k] for m in base])
                if all(k in m for m in ms + base) else None for k in METRICS}
    for (variant, encoder, noise), ms in runs.items():
        if all(f"random_init_{k}" in m for m in ms for k in ("linear_top1", "knn_top1_k20")):
            out[(variant, encoder, noise, BASELINE)] = {
                k: paired_difference([m[k] for m in ms], [m[f"random_init_{k}"] for m in ms])
                if all(f"random_init_{k}" in m for m in ms) else None for k in METRICS}
    return out


def row_name(key, every_encoder: bool = False) -> str:
    """"C2VL, gru, pair noise 0.2"; ST-GCN, the default encoder, is named only in tables of several encoders."""
    variant, encoder, noise = key[:3]
    name = VARIANTS[variant][0] if variant in VARIANTS else variant
    shown = every_encoder or encoder != "stgcn"
    return name + (f", {encoder}" if shown else "") + (f", pair noise {noise:g}" if noise else "")


def markdown(table: dict, diffs: dict, config: AblationConfig, reference: str, parts: dict | None = None) -> str:
    seeds = ", ".join(map(str, config.seeds))
    every_encoder = len({key[1] for key in table}) > 1
    lines = [f"Ablation on {config.dataset} {config.split}: mean ± sample std (n - 1) over seeds {seeds} (top-1 %)"
             + (f", train.py flags `{config.train_args}`" if config.train_args else ""), "",
             "| run | flags | " + " | ".join(METRICS.values()) + " |", "|---|---|" + "---:|" * len(METRICS)]
    for key, row in table.items():
        flags = VARIANTS[key[0]][1] if key[0] in VARIANTS else None
        flags = ("`" + " ".join(flags) + "`" if flags else "") if flags is not None else "–"
        cells = ["–" if row[k] is None else f"{row[k][0]:.1f} ± {row[k][1]:.1f}" for k in METRICS]
        lines.append(f"| {row_name(key, every_encoder)} | {flags} | " + " | ".join(cells) + " |")
    if parts:
        lines += ["", "Of each std above, the part the finite test set explains (`test_set_part`: √(mean over seed "
                  "pairs of Var(c_i − c_j) / n / 2), c = 1 where a run is right; linear: each run's first probe); "
                  "the rest is the runs' own and a larger test set would not shrink it.", "",
                  "| run | " + " | ".join(METRICS.values()) + " |", "|---|" + "---:|" * len(METRICS)]
        for key, row in parts.items():
            cells = ["–" if row[k] is None else f"{row[k]:.1f}" for k in METRICS]
            lines.append(f"| {row_name(key, every_encoder)} | " + " | ".join(cells) + " |")
    for against, rows in ((VARIANTS[reference][0], {k: v for k, v in diffs.items() if len(k) == 3}),
                          ("the random-init encoder", {k: v for k, v in diffs.items() if len(k) == 4})):
        if not rows:
            continue
        lines += ["", f"Paired differences to {against} (same seed, encoder and noise): mean ± standard error; ✓ = the "
                  "95 % confidence interval leaves out 0 (the difference stands above the seed spread), · = within "
                  "the spread.", "", "| run | " + " | ".join(METRICS.values()) + " |", "|---|" + "---:|" * len(METRICS)]
        for key, row in rows.items():
            cells = ["–" if row[k] is None else f"{row[k][0]:+.1f} ± {row[k][1]:.1f} {'✓' if row[k][2] else '·'}"
                     for k in METRICS]
            lines.append(f"| {row_name(key, every_encoder)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(table: dict, path: Path) -> None:
    """With one noise level: grouped bars, one group per metric, the sample std as error bars. With several: one
    panel per metric against the fraction of broken pairs, one line per variant (and encoder), the spread shaded."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils.files import atomic_path
    noises = sorted({key[2] for key in table if key[2] is not None})
    every_encoder = len({key[1] for key in table}) > 1
    if len(noises) > 1:
        fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.6))
        lines = sorted({(variant, encoder) for variant, encoder, noise in table if noise is not None},
                       key=lambda line: list(VARIANTS).index(line[0]))
        for ax, (k, label) in zip(axes, METRICS.items()):
            for variant, encoder in lines:
                points = [(p, table[(variant, encoder, p)][k]) for p in noises
                          if (variant, encoder, p) in table and table[(variant, encoder, p)][k]]
                if not points:
                    continue
                p, stats = zip(*points)
                mean, std = np.array([s[0] for s in stats]), np.array([s[1] for s in stats])
                ax.plot(p, mean, "o-", label=row_name((variant, encoder, 0.0), every_encoder))
                ax.fill_between(p, mean - std, mean + std, alpha=0.2)
            ax.set(xlabel="fraction of broken skeleton-prompt pairs p", ylabel=f"{label} (%)", title=label)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
    else:
        fig, ax = plt.subplots(figsize=(11, 4.5))
        width = 0.8 / len(table)
        for i, (key, row) in enumerate(table.items()):
            x = [j + (i - (len(table) - 1) / 2) * width for j in range(len(METRICS))]
            means = [row[k][0] if row[k] else np.nan for k in METRICS]
            stds = [row[k][1] if row[k] else 0.0 for k in METRICS]
            ax.bar(x, means, width, yerr=stds, capsize=2, label=row_name(key, every_encoder))
        ax.set_xticks(range(len(METRICS)), list(METRICS.values()))
        ax.set_ylabel("top-1 (%), mean ± sample std over seeds")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = add_arguments(argparse.ArgumentParser(prog="python tools/ablation.py", description=__doc__,
                                                   formatter_class=argparse.RawDescriptionHelpFormatter),
                           AblationConfig)
    config = from_args(AblationConfig, parser.parse_args(argv))
    keys = list(VARIANTS)
    variants = [keys[int(v)] if v.isdigit() and int(v) < len(keys) else v for v in config.variants]
    if unknown := [v for v in variants if v not in VARIANTS]:
        parser.error(f"unknown --variants {unknown}; choose from: " + "; ".join(
            f"{i} {k} ({VARIANTS[k][0]})" for i, k in enumerate(keys)))
    reference = config.reference or ("infonce" if "infonce" in variants else variants[0])
    if reference not in variants:
        parser.error(f"--reference {reference} is not among --variants {variants}")
    config.out = config.out or f"runs/ablation-{config.dataset}-{config.split}"
    with_baseline = "c2vl" if "c2vl" in variants else variants[0]  # the random-init row: once per encoder and seed
    runs = {(v, e, p): [run_cell(config, v, e, p, seed, v == with_baseline and p == config.pair_noise[0])
                        for seed in config.seeds]
            for e in config.encoders for p in config.pair_noise for v in variants}
    table, diffs = summarise(runs), differences(runs, reference)
    out = Path(config.out)
    text = markdown(table, diffs, config, reference, test_set_parts(runs))
    write_text(out / "ablation.md", text)
    plot(table, out / "ablation.png")
    print(text)
    print(f"outputs in {out}: ablation.md, ablation.png, one train.py run folder per cell and seed")


if __name__ == "__main__":
    main()
