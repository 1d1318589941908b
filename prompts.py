"""Knowledge prompts -> frozen-CLIP features (docs/method.md §1 for P1, §9 for P2).

C2VL trains against two knowledge prompts per training sample, made offline by large multimodal models; a frozen
CLIP (ViT-L/14-336 in the paper) encodes them once, and training reads the features from a cache:

- vision prompt:   person crops of K = 16 RGB frames of the clip (frames and boxes: tools/generate_prompts.py);
- language prompt: K = 16 LLaVA answers about those frames, C2VL's released format {sample: [K answers]}.

    (P1)  p_i = normalize( (1/K) sum_k normalize(E(prompt_ik)) )      E = frozen CLIP image or text encoder
          pooling "sample" keeps the K unit vectors (K, D) per sample, and training draws one per step
    (P2)  w_c = normalize(E_text("a person {class name c}."))           class names, for zero-shot evaluation

The rows p_i of a batch form the prompt matrix P_m (N x D) of modality m in docs/method.md §2.

    python prompts.py import pkuv2_language.zip --dataset pku2 --split xsub     # released answers -> the split
    python prompts.py encode --dataset pku2 --split xsub --modalities language   # -> the cache training reads

Elsewhere: the prompt files and the cache format (utils/prompt_files.py), making prompts with Grounding DINO +
LLaVA (tools/generate_prompts.py), the demo's CLIP and prompts (demo/clip.py), training on the caches (train.py).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from data import PARTS, DataFormatError, DataNotFoundError, UnsafePickleError, make_command, read_label_pkl, split_dir
from utils.config import add_arguments, from_args, setting
from utils.diagnostics import prompt_health
from utils.distributed import DEVICES, resolve_device
from utils.files import write_json
from utils.frames import FrameSourceError, open_frame_source
from utils.imports import MissingExtraError, import_open_clip, quiet_root_logger
from utils.prompt_files import (PromptError, cache_header, load_prompt_features, match_prompts,  # noqa: F401
                                prompt_id, read_language_prompts, read_vision_prompts, sibling_caches, write_cache)

MODALITIES = ("vision", "language")  # the two knowledge prompts; m in {v, l} in the equations
K_FRAMES = 16  # prompts per sample; the released files hold exactly 16 answers per sample
POOLINGS = ("mean", "sample")  # P1 mean over K, or keep all K so that training draws one per step
DEFAULT_CLIP_MODEL = "ViT-L-14-336"  # the paper's frozen CLIP
DEFAULT_CLIP_PRETRAINED = "openai"
DEMO_CLIP_MODEL = "c2vl-demo-tiny"  # the demo's tiny CLIP, pretrained on the demo world (demo/clip.py)
CLASS_TEMPLATE = "a person {}."


class WeightsUnavailableError(RuntimeError):
    """CLIP weights could not be downloaded or found; the message says how to provide them."""


# ----------------------------------------------------------------------------------------------------------------
# The vision prompt: the person cropped out of each of its K frames (tools/generate_prompts.py picks frames, boxes)
# ----------------------------------------------------------------------------------------------------------------

def crop_person(image: Image.Image, box: Sequence[float] | None, size: int) -> Image.Image:
    """Square crop around `box` (0..1 of the frame; None = whole frame), zero-padded where it leaves the frame,
    resized to size x size (the CLIP input)."""
    W, H = image.size
    x0, y0, x1, y1 = (0.0, 0.0, 1.0, 1.0) if box is None else box
    x0, x1, y0, y1 = x0 * W, x1 * W, y0 * H, y1 * H
    side = max(x1 - x0, y1 - y0, 1.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    square = tuple(round(v) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    # PIL pads outside the frame with black; reducing_gap shrinks large crops by box-averaging first (fast).
    return image.convert("RGB").crop(square).resize((size, size), Image.BICUBIC, reducing_gap=3.0)


# ----------------------------------------------------------------------------------------------------------------
# The frozen CLIP
# ----------------------------------------------------------------------------------------------------------------

@dataclass
class Clip:
    """A frozen CLIP: model, image preprocessing, tokenizer (truncates at the model's 77-token context)."""
    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    device: str = "cpu"

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return size[0] if isinstance(size, (tuple, list)) else size

    @cached_property
    def dim(self) -> int:
        """D, the size of the joint embedding space."""
        return int(self.encode_texts(["a person."]).shape[1])

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """E_image: unit-norm embeddings (n, D) of preprocessed images (n, 3, S, S), float32 on the CPU."""
        out = []
        for start in range(0, len(pixels), batch_size):
            with self._autocast():
                batch = pixels[start:start + batch_size].to(self.device)  # (B, 3, S, S)
                out.append(self.model.encode_image(batch, normalize=True).float().cpu())
        return torch.cat(out)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """E_text: unit-norm embeddings (n, D), float32 on the CPU; each distinct text is encoded once."""
        unique = list(dict.fromkeys(texts))
        out = []
        for start in range(0, len(unique), batch_size):
            tokens = self.tokenizer(unique[start:start + batch_size])  # (B, 77), truncated by the tokenizer
            with self._autocast():
                out.append(self.model.encode_text(tokens.to(self.device), normalize=True).float().cpu())
        row = {t: i for i, t in enumerate(unique)}
        return torch.cat(out)[[row[t] for t in texts]]  # (U, D) -> (n, D)

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16, enabled=str(self.device).startswith("cuda"))


def checked_device(name: str | torch.device | None = "auto") -> str:
    """--device as a device name (auto / None: cuda when available); one this torch lacks is a PromptError."""
    try:
        return str(resolve_device(str(name or "auto")))
    except ValueError as err:
        raise PromptError(str(err)) from None


def load_clip(model_name: str = DEFAULT_CLIP_MODEL, pretrained: str | None = DEFAULT_CLIP_PRETRAINED,
              device: str = "cpu", cache_dir: str | None = None) -> Clip:
    """A frozen open_clip model (any registered architecture, DEMO_CLIP_MODEL included; `pretrained`: a tag, a local
    checkpoint path or None = random weights), as a Clip. `cache_dir`: where open_clip keeps downloads (default: the
    HF cache)."""
    device, open_clip = checked_device(device), import_open_clip()
    if model_name not in open_clip.list_models() and not model_name.startswith(("hf-hub:", "local-dir:")):
        raise PromptError(f"unknown open_clip model {model_name!r}; see open_clip.list_models()")
    try:
        # open_clip logs through the root logger: "No pretrained weights loaded ... initialized randomly" when random
        # weights are asked for, and "ERROR:root:" before a failure that the message below explains; both silenced.
        with torch.random.fork_rng(devices=[]), quiet_root_logger():  # random weights: the same on every call
            torch.manual_seed(0)
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pretrained or None, device="cpu", cache_dir=cache_dir)
    except RuntimeError as err:
        if not re.search(r"download|not a known tag|valid file path", str(err)):
            raise
        raise WeightsUnavailableError(
            f"CLIP weights for model {model_name!r}, pretrained {pretrained!r} are not available here ({err}).\n"
            f"Provide them in one of two ways:\n  1. a local checkpoint: --pretrained /path/to/{model_name}.pt "
            "(load_clip(..., pretrained=path));\n  2. run the same command once on a machine with internet (with "
            "HF_HUB_OFFLINE unset); open_clip caches the weights (~/.cache/huggingface) and later runs work "
            "offline, also with HF_HUB_OFFLINE=1.") from err
    clip = Clip(model, preprocess, open_clip.get_tokenizer(model_name), device)
    clip.model = clip.model.to(device).eval().requires_grad_(False)
    return clip


# ----------------------------------------------------------------------------------------------------------------
# (P1) Prompt features, and (P2) class texts
# ----------------------------------------------------------------------------------------------------------------

def pool_prompts(features, pooling="mean", generator=None, global_batch=None, offset=0):
    """(P1) prompt features of a batch -> (B, D) unit rows.

    features: (B, D) already pooled (a "mean" cache), or (B, K, D) one per prompt frame. pooling "mean":
    normalize(mean_k normalize(f_k)); "sample": one frame k drawn per sample and per call (once per training step).
    Under torchrun the draw is made for the whole global batch and this process's rows offset .. offset + B are
    taken, so K processes draw what one process would.
    """
    features = features.float()
    if features.dim() == 2:
        return F.normalize(features, dim=-1)
    if features.dim() != 3:
        raise ValueError(f"prompt features must be (B, D) or (B, K, D), got shape {tuple(features.shape)}")
    features = F.normalize(features, dim=-1)  # (B, K, D)
    if pooling == "mean":
        # Reconstruction: average the K unit features and re-normalise; alternative: "sample", one frame per step.
        return F.normalize(features.mean(dim=1), dim=-1)
    if pooling == "sample":
        B, K, _ = features.shape
        k = torch.randint(K, (global_batch or B,), generator=generator)[offset:offset + B]  # (B,) one frame each
        k = k.to(features.device, non_blocking=True)
        return features[torch.arange(B, device=features.device), k]
    raise ValueError(f"prompt pooling must be 'mean' or 'sample', got {pooling!r}")


def encode_prompts(prompts: dict, path, modality: str, load_prompt: Callable[[str], list], clip: Clip,
                   model_name: str, pretrained: str | None, K: int = K_FRAMES, pooling: str = "mean",
                   batch_size: int = 256, workers: int = min(8, os.cpu_count() or 1), **cache) -> Path:
    """The cache of every sample in `prompts` ({key: its prompt}, in cache order): `load_prompt(key)` gives its K
    texts or K preprocessed crops (3, S, S) (loaded in `workers` threads), the frozen CLIP encodes them, and P1 pools
    them into one row (pooling "sample": the K rows). `cache`: write_cache's chunk_size, reuse."""
    if pooling not in POOLINGS:
        raise PromptError(f"unknown pooling {pooling!r}; choose from {POOLINGS}")

    def encode_rows(keys):
        with ThreadPoolExecutor(workers) as pool:
            loaded = list(pool.map(load_prompt, keys))
        for key, prompt in zip(keys, loaded):
            if len(prompt) != K:
                raise PromptError(f"sample {key}: {len(prompt)} {modality} prompts, expected K = {K}")
        flat = [p for prompt in loaded for p in prompt]
        E = (clip.encode_texts(flat, batch_size) if modality == "language"
             else clip.encode_pixels(torch.stack(flat), batch_size)).view(len(keys), K, -1)  # (B, K, D) unit rows
        return (E if pooling == "sample" else pool_prompts(E, "mean")).numpy()  # (B, [K,] D)

    header = cache_header(modality, model_name, pretrained, K, pooling, clip.dim, list(prompts),
                          [prompt_id(p) for p in prompts.values()])
    row_shape = (clip.dim,) if pooling == "mean" else (K, clip.dim)
    return write_cache(path, header, row_shape, encode_rows, desc=f"encode {modality}", **cache)


def encode_language(prompts: dict[str, list[str]], path, clip: Clip, model_name: str, pretrained: str | None,
                    **kwargs) -> Path:
    """Language cache of every sample in `prompts` ({key: [K answers]})."""
    return encode_prompts(prompts, path, "language", prompts.__getitem__, clip, model_name, pretrained, **kwargs)


def encode_vision(prompts: dict[str, dict], path, open_source: Callable[[str], object], clip: Clip,
                  model_name: str, pretrained: str | None, **kwargs) -> Path:
    """Vision cache of every sample in `prompts` ({key: {frames, boxes}}): crop the person out of the K frames. The
    prompt ids cover frame indices and boxes, not the pixels of the videos."""
    def crops(key):
        entry = prompts[key]
        frames = open_source(key).read(entry["frames"])
        return [clip.preprocess(crop_person(image, box, clip.image_size)) for image, box in zip(frames, entry["boxes"])]

    return encode_prompts(prompts, path, "vision", crops, clip, model_name, pretrained, **kwargs)


def class_text_features(class_names: Sequence[str], model_name: str = DEFAULT_CLIP_MODEL,
                        pretrained: str | None = DEFAULT_CLIP_PRETRAINED, device: str = "cpu",
                        template: str = CLASS_TEMPLATE, clip: Clip | None = None) -> torch.Tensor:
    """(P2) w_c = normalize(E_text(template.format(class name))): (C, D) unit rows on `device`."""
    clip = clip or load_clip(model_name, pretrained, device)
    return clip.encode_texts([template.format(name) for name in class_names]).to(device)


# ----------------------------------------------------------------------------------------------------------------
# Where prompts and caches live (datasets/<dataset>/<split>/prompts/)
# ----------------------------------------------------------------------------------------------------------------

def prompts_path(data_root, dataset: str, split: str, part: str, modality: str) -> Path:
    """A split part's prompts before encoding: <split dir>/prompts/<part>_<modality>_prompts.json."""
    return split_dir(data_root, dataset, split) / "prompts" / f"{part}_{modality}_prompts.json"


def cache_path(data_root, dataset: str, split: str, part: str, modality: str, model_name: str = DEFAULT_CLIP_MODEL,
               pretrained: str | None = DEFAULT_CLIP_PRETRAINED, pooling: str = "mean") -> Path:
    """<split dir>/prompts/<part>_<modality>_<model>_<pretrained>[_allK].npy; a checkpoint path contributes its
    file stem, no weights 'random'."""
    if part not in PARTS or modality not in MODALITIES or pooling not in POOLINGS:
        raise PromptError(f"part must be one of {PARTS}, modality one of {MODALITIES}, pooling one of "
                          f"{POOLINGS} (got {part!r}, {modality!r}, {pooling!r})")
    tag = "random" if not pretrained else Path(pretrained).stem if os.path.sep in pretrained else pretrained
    slug = "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", s) for s in (model_name, tag))  # 'ViT-L-14-336_openai'
    name = f"{part}_{modality}_{slug}" + ("_allK" if pooling == "sample" else "")
    return split_dir(data_root, dataset, split) / "prompts" / f"{name}.npy"


def split_names(data_root, dataset: str, split: str, part: str) -> list[str]:
    """Sample names of a split part (its `<part>_label.pkl`), in the order training uses them."""
    path = split_dir(data_root, dataset, split) / f"{part}_label.pkl"
    if not path.is_file():  # prompts are matched to a split's names: the split comes first
        raise DataNotFoundError(f"no {dataset} {split} split in {path.parent} (no {path.name}); make it first with:"
                                f"\n  {make_command(data_root, dataset, split)}")
    return read_label_pkl(path)[0]


# ----------------------------------------------------------------------------------------------------------------
# Command line: python prompts.py import | encode
# ----------------------------------------------------------------------------------------------------------------

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


# Errors whose messages say what is wrong and what to do: the commands print them without a traceback.
CLI_ERRORS = (PromptError, FrameSourceError, WeightsUnavailableError, MissingExtraError, FileNotFoundError,
              DataFormatError, UnsafePickleError)


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


if __name__ == "__main__":
    main()
