"""The paper's ablations in one command: which of C2VL's targets does the work.

Every variant is one `python train.py` run with loss flags that exist already (docs/method.md: beta of M4, alpha_T of
M6, the inter-modal target of M9, the prompt modalities), over several seeds; this file only runs and tabulates.
Finished runs are kept in the output folder and reused, so an interrupted ablation continues where it stopped.

    python tools/ablation.py                                   # the demo, 3 seeds (about 85 min on 2 CPU cores: 21 demo runs)
    python tools/ablation.py --dataset ntu60 --split xsub --seeds 0 --train-args "--epochs 100"

Writes <out>/ablation.md (mean +- std over seeds of linear top-1, kNN-20 and zero-shot top-1, in %) and ablation.png.
"""
from __future__ import annotations

import argparse
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

# name -> the train.py flags that make it (everything else at the dataset's preset and the loss defaults)
VARIANTS = {
    "CLIP InfoNCE (beta 0, alpha_T 0)": ["--beta", "0", "--alpha_T", "0"],
    "+ intra-modal targets (alpha_T 0)": ["--alpha_T", "0"],
    "+ inter-modal targets (beta 0)": ["--beta", "0"],
    "C2VL": [],
    "C2VL, inter-modal target self": ["--inter", "self"],
    "C2VL, vision prompts only": ["--modalities", "vision"],
    "C2VL, language prompts only": ["--modalities", "language"],
}
METRICS = {"linear_top1": "linear top-1", "knn_top1_k20": "kNN-20", "zero_shot_top1": "zero-shot top-1"}
BASELINE = "random init, BN re-estimated"


@dataclass
class AblationConfig:
    """Every setting of `python tools/ablation.py`; each field is a flag of the same name."""
    dataset: str = setting("demo", "as train.py --dataset")
    split: str = setting("xsub", "as train.py --split")
    data_root: str = setting("datasets", "as train.py --data-root")
    seeds: tuple = setting((0, 1, 2), "seeds of every variant", kind=int, nargs="+")
    variants: tuple = setting(tuple(range(len(VARIANTS))), "which rows of VARIANTS to run (0-based)", kind=int,
                              nargs="+")
    train_args: str = setting("", "more train.py flags for every run, one string (e.g. \"--epochs 100\")")
    out: str = setting("", "output folder; default runs/ablation-<dataset>-<split>")


def run_variant(config: AblationConfig, name: str, seed: int) -> dict:
    """metrics.json of one train.py run (made now unless the folder holds a finished one)."""
    out = Path(config.out) / f"{list(VARIANTS).index(name)}-seed{seed}"
    if not (out / "metrics.json").is_file():
        baseline = ["--baseline"] if name == "C2VL" else ["--no-baseline"]  # the random-init row, once per seed
        argv = ["--dataset", config.dataset, "--split", config.split, "--data-root", config.data_root,
                "--seed", str(seed), "--out", str(out), *baseline, *VARIANTS[name], *shlex.split(config.train_args)]
        print(f"\n=== {name}, seed {seed}: python train.py {shlex.join(argv)}", file=sys.stderr, flush=True)
        if out.exists():  # an unfinished run: start it again (its checkpoint may be from a killed evaluation)
            for stale in out.glob("checkpoint_*.pt"):
                stale.unlink()
        train.main(argv)
    return json.loads((out / "metrics.json").read_text())


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict[str, tuple[float, float] | None]]:
    """{row: {metric: (mean, sample std over seeds (n - 1; 0 for one seed)) or None}}; the random-init row from the
    C2VL runs' baselines."""
    rows = dict(runs)
    if "C2VL" in runs:
        rows[BASELINE] = [{k: m[f"random_init_{k}"] for k in METRICS if f"random_init_{k}" in m} for m in runs["C2VL"]]
    return {name: {k: mean_std(v) if len(v := [m[k] for m in ms if k in m]) == len(ms) else None for k in METRICS}
            for name, ms in rows.items()}


def mean_std(values) -> tuple[float, float]:
    """(mean, sample standard deviation (n - 1), 0 for one value): the one spread every table of the project shows."""
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def markdown(table: dict, config: AblationConfig) -> str:
    seeds = ", ".join(map(str, config.seeds))
    lines = [f"Ablation on {config.dataset} {config.split}: mean ± sample std (n - 1) over seeds {seeds} (top-1 %)"
             + (f", train.py flags `{config.train_args}`" if config.train_args else ""), "",
             "| run | flags | " + " | ".join(METRICS.values()) + " |", "|---|---|" + "---:|" * len(METRICS)]
    for name, row in table.items():
        flags = "`" + " ".join(VARIANTS[name]) + "`" if VARIANTS.get(name) else "" if name in VARIANTS else "–"
        cells = ["–" if row[k] is None else f"{row[k][0]:.1f} ± {row[k][1]:.1f}" for k in METRICS]
        lines.append(f"| {name} | {flags} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(table: dict, path: Path) -> None:
    """Grouped bars, one group per metric, with the std over seeds as error bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils.files import atomic_path
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(table)
    for i, (name, row) in enumerate(table.items()):
        x = [j + (i - (len(table) - 1) / 2) * width for j in range(len(METRICS))]
        means = [row[k][0] if row[k] else np.nan for k in METRICS]
        stds = [row[k][1] if row[k] else 0.0 for k in METRICS]
        ax.bar(x, means, width, yerr=stds, capsize=2, label=name)
    ax.set_xticks(range(len(METRICS)), list(METRICS.values()))
    ax.set_ylabel("top-1 (%)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = add_arguments(argparse.ArgumentParser(prog="python tools/ablation.py", description=__doc__,
                                                   formatter_class=argparse.RawDescriptionHelpFormatter),
                           AblationConfig)
    config = from_args(AblationConfig, parser.parse_args(argv))
    names = list(VARIANTS)
    if any(not 0 <= v < len(names) for v in config.variants):
        parser.error(f"--variants are row numbers 0..{len(names) - 1}: " + "; ".join(
            f"{i} {n}" for i, n in enumerate(names)))
    config.out = config.out or f"runs/ablation-{config.dataset}-{config.split}"
    runs = {names[v]: [run_variant(config, names[v], seed) for seed in config.seeds] for v in config.variants}
    table = summarise(runs)
    out = Path(config.out)
    write_text(out / "ablation.md", markdown(table, config))
    plot(table, out / "ablation.png")
    print(markdown(table, config))
    print(f"outputs in {out}: ablation.md, ablation.png, one train.py run folder per variant and seed")


if __name__ == "__main__":
    main()
