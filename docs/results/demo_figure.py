"""The README's picture, from the files of one finished demo run (docs/results.md §1):

    python docs/results/demo_figure.py runs/demo-xsub-<time> docs/results/demo.png

Left, the language branch of one batch at the last epoch, skeleton -> prompt (cut from the run's soft_targets.png):
Y_intra (M4), Y_inter (M9), their mix T (M10) and the student's softmax(S) (M1). Right, from metrics.jsonl: in-batch
retrieval (skeleton i -> its own prompt) over the pretraining epochs, against chance 1/N.
It reads only the run folder (PNG and JSON), not the project's code.
"""
import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

ROW = 2  # the rows of soft_targets.png: s->v, v->s, s->l, l->s
TITLES = ["M4  $Y_{intra}^{l}$ (within the modality)", "M9  $Y_{inter}^{s\\to l}$ (the cycle)",
          "M10  $T^{s\\to l}$ (the target: their mix)", "M1  softmax($S_{sl}$) (the student)"]


def panels(png):
    """The 16 heat maps of soft_targets.png (4 rows x 4 columns), each cut at its frame: [(row, col) -> image]."""
    image = mpimg.imread(png)[..., :3]
    regions = ndimage.find_objects(ndimage.label(~(image > 0.97).all(-1))[0])
    boxes = sorted((s for s in regions if s[0].stop - s[0].start > 150 and s[1].stop - s[1].start > 150),
                   key=lambda s: (s[0].start, s[1].start))
    assert len(boxes) == 16, f"{png}: expected 16 heat maps, found {len(boxes)}"
    return [image[box] for box in boxes]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished run folder of python train.py")
    parser.add_argument("out", type=Path, help="the PNG to write")
    args = parser.parse_args()
    maps = panels(args.run / "soft_targets.png")[4 * ROW: 4 * ROW + 4]
    history = [json.loads(line) for line in (args.run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    batch = json.loads((args.run / "config.json").read_text())["train"]["batch_size"]

    fig, axes = plt.subplots(1, 5, figsize=(18, 3.9), gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.5]},
                             layout="constrained")
    for ax, image, title in zip(axes, maps, TITLES):
        ax.imshow(image)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    epochs = [h["epoch"] for h in history]
    ax = axes[4]
    for m, colour in (("vision", "tab:orange"), ("language", "tab:green")):
        ax.plot(epochs, [100 * h[f"retrieval_{m}"] for h in history], marker="o", markersize=3, color=colour,
                label=f"skeleton -> own {m} prompt")
    ax.axhline(100 / batch, color="grey", linestyle="--", label=f"chance 1/{batch}")
    ax.set(xlabel="pretraining epoch", ylabel="in-batch retrieval (%)", ylim=(0, None),
           title="the student learns the pairs (training batches)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.suptitle("C2VL on the demo, language branch: one batch of 32 training samples at the last epoch "
                 "(rows skeleton i, columns prompt j; dark = 0, each panel its own scale)", fontsize=11)
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out} ({np.round(fig.get_size_inches() * 90).astype(int).tolist()} px)")


if __name__ == "__main__":
    main()
