"""Knowledge prompts -> frozen-CLIP features (docs/method.md §1 for P1, §9 for P2).

C2VL trains against two knowledge prompts per training sample, made offline by large multimodal models; a frozen
CLIP (ViT-L/14-336 in the paper) encodes them once, and training reads the features from a cache:

- vision prompt:   person crops of K = 16 RGB frames of the clip (frames and boxes: tools/generate_prompts.py);
- language prompt: K = 16 LLaVA answers about those frames, C2VL's released format {sample: [K answers]}.

    (P1)  p_i = normalize( (1/K) sum_k normalize(E(prompt_ik)) )      E = frozen CLIP image or text encoder
          pooling "sample" keeps the K unit vectors (K, D) per sample, and training draws one per step
    (P2)  w_c = normalize(E_text("a person {class name c}."))           class names, for zero-shot evaluation

The rows p_i of a batch form the prompt matrix P_m (N x D) of modality m in docs/method.md §2. K counts the prompts
(frames) of one sample throughout this file.

    python prompts.py import pkuv2_language.zip --dataset pku2 --split xsub     # released answers -> the split
    python prompts.py encode --dataset pku2 --split xsub --modalities language   # -> the cache training reads

Elsewhere: the two commands (tools/prompt_commands.py), the prompt files and the cache format
(utils/prompt_files.py), making prompts with Grounding DINO + LLaVA (tools/generate_prompts.py), the demo's CLIP
and prompts (demo/clip.py), training on the caches (train.py).
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from data import PARTS, DataFormatError, UnsafePickleError, split_dir
from utils.distributed import resolve_device
from utils.frames import FrameSourceError
from utils.imports import MissingExtraError, import_open_clip, quiet_root_logger
# train.py reads the caches as prompts.load_prompt_features and catches prompts.PromptError.
from utils.prompt_files import PromptError, cache_header, load_prompt_features, prompt_id, write_cache  # noqa: F401

MODALITIES = ("vision", "language")  # the two knowledge prompts; m in {v, l} in the equations
K_FRAMES = 16  # prompts per sample; the released files hold exactly 16 answers per sample
POOLINGS = ("mean", "sample")  # P1 mean over K, or keep all K so that training draws one per step
DEFAULT_CLIP_MODEL = "ViT-L-14-336"  # the paper's frozen CLIP
DEFAULT_CLIP_PRETRAINED = "openai"
DEMO_CLIP_MODEL = "c2vl-demo-tiny"  # the demo's tiny CLIP, pretrained on the demo world (demo/clip.py)
CLASS_TEMPLATE = "a person {}."


# ----------------------------------------------------------------------------------------------------------------
# The frozen CLIP: E_image and E_text (load_clip, below, makes one)
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
        """The side of the square CLIP input, in pixels."""
        size = self.model.visual.image_size
        return size[0] if isinstance(size, (tuple, list)) else size

    @cached_property
    def dim(self) -> int:
        """D, the size of the joint embedding space."""
        return int(self.encode_texts(["a person."]).shape[1])

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """E_image: unit-norm embeddings (n, D) of preprocessed images (n, 3, side, side), float32 on the CPU."""
        out = []
        for start in range(0, len(pixels), batch_size):
            with self._autocast():
                batch = pixels[start:start + batch_size].to(self.device)  # (B, 3, side, side)
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


# ----------------------------------------------------------------------------------------------------------------
# (P1) Prompt features, and (P2) class texts
# ----------------------------------------------------------------------------------------------------------------

def pool_prompts(features, pooling="mean", generator=None, global_batch=None, offset=0):
    """(P1) prompt features of a batch -> (B, D) unit rows.

    features: (B, D) already pooled (a "mean" cache), or (B, K, D) one per prompt frame. pooling "mean":
    normalize(mean_k normalize(f_k)); "sample": one frame k drawn per sample and per call (once per training step).
    Under torchrun the draw is made for the whole global batch and this process's rows offset .. offset + B are
    taken, so the processes together draw what one process would.
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


def class_text_features(class_names: Sequence[str], model_name: str = DEFAULT_CLIP_MODEL,
                        pretrained: str | None = DEFAULT_CLIP_PRETRAINED, device: str = "cpu",
                        template: str = CLASS_TEMPLATE, clip: Clip | None = None) -> torch.Tensor:
    """(P2) w_c = normalize(E_text(template.format(class name))): (C, D) unit rows on `device`, C classes."""
    clip = clip or load_clip(model_name, pretrained, device)
    return clip.encode_texts([template.format(name) for name in class_names]).to(device)


# ----------------------------------------------------------------------------------------------------------------
# Every sample's K prompts -> E -> P1 -> one row of the cache training reads
# ----------------------------------------------------------------------------------------------------------------

def encode_prompts(prompts: dict, path, modality: str, load_prompt: Callable[[str], list], clip: Clip,
                   model_name: str, pretrained: str | None, K: int = K_FRAMES, pooling: str = "mean",
                   batch_size: int = 256, workers: int = min(8, os.cpu_count() or 1), **cache) -> Path:
    """The cache of every sample in `prompts` ({key: its prompt}, in cache order): `load_prompt(key)` gives its K
    texts or K preprocessed crops (3, side, side) (loaded in `workers` threads), the frozen CLIP encodes them, and
    P1 pools them into one row (pooling "sample": the K rows). `cache`: write_cache's chunk_size, reuse.

    One prompt's trip: its JSON file (utils/prompt_files.read_*_prompts), matched to the split's names
    (match_prompts), then here: loaded, encoded, pooled, and written by write_cache chunk by chunk."""
    if pooling not in POOLINGS:
        raise PromptError(f"unknown pooling {pooling!r}; choose from {POOLINGS}")

    def encode_rows(keys):
        with ThreadPoolExecutor(workers) as pool:
            loaded = list(pool.map(load_prompt, keys))
        for key, prompt in zip(keys, loaded):
            if len(prompt) != K:
                raise PromptError(f"sample {key}: {len(prompt)} {modality} prompts, expected K = {K}")
        flat = [p for prompt in loaded for p in prompt]
        embedded = (clip.encode_texts(flat, batch_size) if modality == "language"  # E(prompt_ik): (B, K, D) unit rows
                    else clip.encode_pixels(torch.stack(flat), batch_size)).view(len(keys), K, -1)
        return (embedded if pooling == "sample" else pool_prompts(embedded, "mean")).numpy()  # (B, [K,] D)

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


def crop_person(image: Image.Image, box: Sequence[float] | None, size: int) -> Image.Image:
    """The vision prompt of one frame: a square crop around `box` (0..1 of the frame; None = whole frame),
    zero-padded where it leaves the frame, resized to size x size (the CLIP input)."""
    width, height = image.size
    x0, y0, x1, y1 = (0.0, 0.0, 1.0, 1.0) if box is None else box
    x0, x1, y0, y1 = x0 * width, x1 * width, y0 * height, y1 * height
    side = max(x1 - x0, y1 - y0, 1.0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    square = tuple(round(v) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
    # PIL pads outside the frame with black; reducing_gap shrinks large crops by box-averaging first (fast).
    return image.convert("RGB").crop(square).resize((size, size), Image.BICUBIC, reducing_gap=3.0)


# ----------------------------------------------------------------------------------------------------------------
# Loading the frozen CLIP
# ----------------------------------------------------------------------------------------------------------------

class WeightsUnavailableError(RuntimeError):
    """CLIP weights could not be downloaded or found; the message says how to provide them."""


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


# Errors whose messages say what is wrong and what to do: the commands print them without a traceback.
CLI_ERRORS = (PromptError, FrameSourceError, WeightsUnavailableError, MissingExtraError, FileNotFoundError,
              DataFormatError, UnsafePickleError)


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


def main(argv: Sequence[str] | None = None) -> None:
    """python prompts.py import | encode (the commands: tools/prompt_commands.py)."""
    from tools.prompt_commands import main as run_command
    run_command(argv)


if __name__ == "__main__":
    main()
