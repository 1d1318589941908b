"""The commands of prompts.py: `python prompts.py import | encode` (docs/prompts.md §1, §3).

- import: C2VL's released language prompts (zip or json) matched to a split by sample name, written next to it;
- encode: every prompt file of the split parts through the frozen CLIP (prompts.encode_language / encode_vision)
  into the caches that training reads, after checking --device, the split and every input.

Not a paper concept: the settings, checks and messages around prompts.py's functions. `SplitConfig`,
`frame_opener` and `split_names` serve tools/generate_prompts.py too.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from data import PARTS, DataNotFoundError, make_command, read_label_pkl, split_dir
from prompts import (CLI_ERRORS, DEFAULT_CLIP_MODEL, DEFAULT_CLIP_PRETRAINED, K_FRAMES, MODALITIES, POOLINGS,
                     PromptError, cache_path, checked_device, encode_language, encode_vision, load_clip,
                     prompts_path)
from utils.config import add_arguments, from_args, setting
from utils.diagnostics import prompt_health
from utils.distributed import DEVICES
from utils.files import write_json
from utils.frames import open_frame_source
from utils.prompt_files import match_prompts, read_language_prompts, read_vision_prompts, sibling_caches


def split_names(data_root, dataset: str, split: str, part: str) -> list[str]:
    """Sample names of a split part (its `<part>_label.pkl`), in the order training uses them."""
    path = split_dir(data_root, dataset, split) / f"{part}_label.pkl"
    if not path.is_file():  # prompts are matched to a split's names: the split comes first
        raise DataNotFoundError(f"no {dataset} {split} split in {path.parent} (no {path.name}); make it first with:"
                                f"\n  {make_command(data_root, dataset, split)}")
    return read_label_pkl(path)[0]


@dataclass
class SplitConfig:
    """The split parts a command works on (prompts.py import / encode, tools/generate_prompts.py)."""
    data_root: str = setting("datasets", "root of the prepared datasets (data.py)")
    dataset: str = setting(None, "ntu60, ntu120, pku1, pku2 or demo", kind=str, required=True)
    split: str = setting(None, "benchmark, e.g. xsub, xview, xset", kind=str, required=True)
    parts: tuple = setting(PARTS, "split parts (val: the test part)", PARTS, nargs="+", aliases=("part",))


def frame_opener(config) -> Callable[[str], object]:
    """The frame sources of --rgb: <sample>/ frame folders or <sample>_rgb.avi videos."""
    if config.dataset == "demo":
        raise PromptError("the demo renders its RGB frames from its skeletons: its vision prompts and caches are "
                          "made by `python demo/clip.py`")
    if not config.rgb:
        raise PromptError("--rgb is required: a folder with <sample>/ frame folders or <sample>_rgb.avi videos")
    return lambda key: open_frame_source(config.rgb, key)


@dataclass
class ImportConfig(SplitConfig):
    """match C2VL's released language prompts (zip or json) to a split"""
    released: str = setting(None, "pkuv2_language.zip / ntu120_language.json ...", kind=str, positional=True)
    allow_partial: bool = setting(False, "keep the matched subset when samples are missing")

    def run(self) -> None:
        names = {part: split_names(self.data_root, self.dataset, self.split, part) for part in self.parts}
        released = read_language_prompts(self.released)  # checked after the split: a large file, read once
        matched = {part: match_prompts(released, names[part], self.allow_partial, self.released, part)
                   for part in self.parts}  # every part is checked before anything is written
        for part, (prompts, report) in matched.items():
            out = prompts_path(self.data_root, self.dataset, self.split, part, "language")
            write_json(out, prompts, indent=4)
            print(f"{self.dataset}/{self.split}/{part}: {report}\n  -> {out}")


@dataclass
class EncodeConfig(SplitConfig):
    """encode prompts with the frozen CLIP into the feature caches training reads"""
    modalities: tuple = setting(MODALITIES, "prompts to encode; all their files must exist, else nothing is encoded",
                                MODALITIES, nargs="+", aliases=("modality",))
    model: str = setting(DEFAULT_CLIP_MODEL, "open_clip architecture name", aliases=("clip_model",))
    pretrained: str | None = setting(DEFAULT_CLIP_PRETRAINED, "open_clip tag or checkpoint path (none: random weights)",
                                     kind=lambda s: None if s.lower() in ("none", "") else s)
    clip_cache_dir: str | None = setting(None, "where open_clip stores downloaded weights", kind=str)
    pooling: str = setting("mean", "mean over K (P1), or keep all K (train.py --pooling sample)", POOLINGS)
    rgb: str | None = setting(None, "RGB frames / videos of the vision prompts", kind=str, aliases=("frames",))
    K: int = setting(K_FRAMES, "prompts per sample")
    batch_size: int = setting(256, "images or texts per CLIP forward pass")
    allow_partial: bool = setting(False, "encode the samples that have prompts")
    device: str = setting("auto", f"{DEVICES} (auto: cuda when available)")

    def run(self) -> None:
        # --device, the split and every prompt file are checked before CLIP loads: nothing is encoded unless all are.
        device = checked_device(self.device)
        names = {part: split_names(self.data_root, self.dataset, self.split, part) for part in self.parts}
        sources = {(part, m): prompts_path(self.data_root, self.dataset, self.split, part, m)
                   for part in self.parts for m in self.modalities}
        if missing := [(m, path) for (_, m), path in sources.items() if not path.is_file()]:
            raise PromptError(self.missing_prompts_message(missing))
        open_source = frame_opener(self) if "vision" in self.modalities else None
        clip = load_clip(self.model, self.pretrained, device, self.clip_cache_dir)
        for (part, modality), source in sources.items():
            out = cache_path(self.data_root, self.dataset, self.split, part, modality, self.model, self.pretrained,
                             self.pooling)
            kwargs = dict(K=self.K, pooling=self.pooling, batch_size=self.batch_size, reuse=sibling_caches(out))
            read = read_language_prompts if modality == "language" else read_vision_prompts
            prompts, report = match_prompts(read(source, self.K), names[part], self.allow_partial, str(source), part)
            if modality == "language":
                encode_language(prompts, out, clip, self.model, self.pretrained, **kwargs)
            else:
                encode_vision(prompts, out, open_source, clip, self.model, self.pretrained, **kwargs)
            print(f"{part} {modality}: {report}\n  -> {out}")
            for warning in prompt_health({modality: np.load(out, mmap_mode="r")}):
                print(f"warning: {warning}", file=sys.stderr)

    def missing_prompts_message(self, missing: list[tuple[str, Path]]) -> str:
        lacking = sorted({m for m, _ in missing})
        split = f"--dataset {self.dataset} --split {self.split}" + (
            f" --data-root {self.data_root}" if str(self.data_root) != "datasets" else "")
        make = {"language": f"`python prompts.py import <released language zip or json> {split}`",
                "vision": f"`python tools/generate_prompts.py {split} --rgb <frames or videos>`"}
        have = [m for m in self.modalities if m not in lacking]
        alone = f"; or rerun with `--modalities {' '.join(have)}` to encode the {' and '.join(have)} cache alone"
        return (f"no {' or '.join(lacking)} prompts ({', '.join(str(p) for _, p in missing)}); make them with "
                + " and ".join(make[m] for m in lacking) + (alone if have else ""))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python prompts.py", description="C2VL knowledge prompts: import, encode with a frozen CLIP.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, cls in (("import", ImportConfig), ("encode", EncodeConfig)):
        add_arguments(sub.add_parser(name, help=cls.__doc__), cls).set_defaults(config=cls)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        from_args(args.config, args).run()
    except CLI_ERRORS as err:
        raise SystemExit(f"error: {err}") from None
