"""Knowledge prompts -> frozen-CLIP feature caches (docs/method.md §1).

C2VL trains against two knowledge prompts per training sample, made offline by large multimodal models; a frozen
CLIP (ViT-L/14-336 in the paper) encodes them once into a float16 memory-mapped cache per split part and modality:

- vision prompt:   person crops of K = 16 RGB frames of the clip, stored as {"frames": [K], "boxes": [K]};
- language prompt: K = 16 LLaVA answers about those frames, C2VL's released format {sample: [K answers]}.

    (P1)  v_i = normalize( (1/K) sum_k normalize(E(prompt_ik)) )      E = frozen CLIP image or text encoder
          pooling "sample" keeps the K unit vectors, (K, D) per sample: training draws one per step
    (P2)  w_c = normalize(E_text("a person {class name c}."))           class names, for zero-shot evaluation

    python prompts.py import pkuv2_language.zip --dataset pku2 --split xsub     # released answers -> the split
    python prompts.py encode --dataset pku2 --split xsub --modalities language   # -> the cache training reads

Elsewhere: generating prompts with Grounding DINO + LLaVA (tools/generate_prompts.py), the demo's CLIP pretrained on
the demo world (demo/clip.py), skeletons and sample names (data.py), training on the caches (distill.py).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from data import (PARTS, DataFormatError, DataNotFoundError, UnsafePickleError, make_command, read_label_pkl,
                  sample_name, split_dir)
from distill import MODALITIES, pool_prompts  # P1, the same pooling training applies to "sample" caches
from utils.config import add_arguments, from_args, setting
from utils.distributed import DEVICES, resolve_device
from utils.files import atomic_path, file_sha256, move_into_place, write_json
from utils.diagnostics import prompt_health
from utils.frames import FrameSourceError, open_frame_source
from utils.imports import MissingExtraError, import_open_clip

K_FRAMES = 16  # prompts per sample; the released files hold exactly 16 answers per sample
DEFAULT_CLIP_MODEL = "ViT-L-14-336"  # the paper's frozen CLIP
DEFAULT_CLIP_PRETRAINED = "openai"
DEMO_CLIP_MODEL = "c2vl-demo-tiny"  # the demo's tiny CLIP, pretrained on the demo world (demo/clip.py)
CLASS_TEMPLATE = "a person {}."
COLOR_FRAME_SIZE = (1920, 1080)  # colorX/colorY of NTU skeletons are pixels of the 1920x1080 Kinect RGB frame
POOLINGS = ("mean", "sample")  # P1 mean over K, or keep all K so that training draws one per step
CACHE_FORMAT = "c2vl-prompt-cache/1"


class PromptError(ValueError):
    """Bad prompt input or a cache that does not fit the request; the message says which file / sample / key."""


class WeightsUnavailableError(RuntimeError):
    """CLIP weights could not be downloaded or found; the message says how to provide them."""


# --- Prompt files: the released format {sample name: [K answers]} --------------------------------------------

def read_json_or_zip(path: str | Path) -> object:
    """JSON from `path`, or from the single .json member of a zip archive."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prompt file not found: {path}")
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.namelist() if m.endswith(".json") and not m.startswith("__MACOSX")]
                if len(members) != 1:
                    raise PromptError(f"{path}: expected exactly one .json inside the zip, found {members}")
                return json.loads(archive.read(members[0]).decode("utf-8"))
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise PromptError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}): {err.msg}") from err


def read_language_prompts(path: str | Path, K: int = K_FRAMES) -> dict[str, list[str]]:
    """C2VL's released language prompts (or ours, same format): {sample key: [K answers]}, validated."""
    raw = read_json_or_zip(path)
    if not isinstance(raw, dict):
        raise PromptError(f"{path}: expected a JSON object {{sample name: [{K} answers]}}, got {type(raw).__name__}")
    prompts = {}
    for name, answers in raw.items():
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise PromptError(f"{path}: sample {name!r}: expected a list of strings")
        if len(answers) != K:
            raise PromptError(f"{path}: sample {name!r} has {len(answers)} answers, expected K = {K}")
        prompts[sample_name(name)] = answers
    return prompts


def read_vision_prompts(path: str | Path, K: int = K_FRAMES) -> dict[str, dict]:
    """Our vision prompts: {sample key: {"frames": [K indices], "boxes": [K x [x0, y0, x1, y1] in 0..1, or null]}}."""
    raw = read_json_or_zip(path)
    if not isinstance(raw, dict):
        raise PromptError(f"{path}: expected a JSON object {{sample name: {{frames, boxes}}}}")
    for name, entry in raw.items():
        if not isinstance(entry, dict) or set(entry) != {"frames", "boxes"}:
            raise PromptError(f"{path}: sample {name!r}: expected keys 'frames' and 'boxes'")
        if len(entry["frames"]) != K or len(entry["boxes"]) != K:
            raise PromptError(f"{path}: sample {name!r}: expected {K} frames and {K} boxes")
    return {sample_name(name): entry for name, entry in raw.items()}


@dataclass
class MatchReport:
    """How prompts matched a split's sample names."""
    matched: int
    missing: list[str] = field(default_factory=list)
    extra: int = 0

    def __str__(self) -> str:
        text = f"{self.matched} matched, {len(self.missing)} missing, {self.extra} extra (ignored)"
        if self.missing:
            text += f"; missing: {', '.join(self.missing[:5])}" + (" ..." if len(self.missing) > 5 else "")
        return text


def match_prompts(prompts: dict, names: Sequence[str], allow_partial: bool = False, source: str = "prompts"):
    """Prompts of `names` (by sample key, in the order of `names`) and a MatchReport; missing samples are an error
    naming them, unless `allow_partial` (train on the matched subset)."""
    keys = [sample_name(n) for n in names]
    missing = [k for k in keys if k not in prompts]
    report = MatchReport(matched=len(keys) - len(missing), missing=missing, extra=len(set(prompts) - set(keys)))
    if keys and not report.matched:  # --allow-partial would keep nothing
        raise no_match_error(source, list(prompts), keys, "check that the prompts belong to this --dataset and --split")
    if missing and not allow_partial:
        raise PromptError(
            f"{source}: {len(missing)} of {len(keys)} samples have no prompt (first: {', '.join(missing[:5])}). "
            "Pass --allow-partial (allow_partial=True) to train on the matched subset.")
    return {k: prompts[k] for k in keys if k in prompts}, report


def no_match_error(source: str, have: Sequence[str], keys: Sequence[str], fix: str) -> PromptError:
    """None of a split's samples `keys` is among the names `have` of `source`: a name of each side, and `fix`."""
    there = f"its names look like {have[0]!r}" if len(have) else "it holds no samples"
    return PromptError(f"{source}: none of the split's {len(keys)} samples has a prompt there ({there}, the split's "
                       f"like {keys[0]!r}): {fix}")


def import_released(path: str | Path, names: Sequence[str], allow_partial: bool = False, K: int = K_FRAMES):
    """C2VL's released language prompts matched to a split: ({key: [K answers]} in split order, MatchReport)."""
    return match_prompts(read_language_prompts(path, K), names, allow_partial, source=str(path))


# --- Frames: K uniform samples; frame sources have num_frames, size (W, H), read(indices) -> RGB images ------

def sample_frame_indices(num_frames: int, K: int = K_FRAMES) -> list[int]:
    """K frame indices: the middle frame of each of K equal segments; clips shorter than K repeat frames."""
    # Reconstruction: segment midpoints (TSN-style); alternative: np.linspace(0, T - 1, K) rounded.
    if num_frames < 1:
        raise PromptError(f"cannot sample {K} frames from an empty clip (num_frames={num_frames})")
    return [min(num_frames - 1, int((k + 0.5) * num_frames / K)) for k in range(K)]


# --- Person crops ---------------------------------------------------------------------------------------------

def skeleton_box(color_xy: np.ndarray, margin: float = 0.1) -> tuple[float, float, float, float] | None:
    """Person box (x0, y0, x1, y1) in 0..1 of the frame, or None, from one frame's colorX/colorY: (M, 25, 2)
    pixels of the 1920x1080 frame, zeros or NaN for absent bodies and untracked joints."""
    xy = np.asarray(color_xy, dtype=np.float64).reshape(-1, 2)  # (M*25, 2)
    valid = np.isfinite(xy).all(axis=1) & (np.abs(xy).sum(axis=1) > 0)
    if not valid.any():
        return None
    xy = xy[valid] / np.asarray(COLOR_FRAME_SIZE, dtype=np.float64)  # 1920x1080 pixels -> 0..1
    # Reconstruction: one box around all bodies of the frame (two-person actions keep both people);
    # alternative: one crop per body.
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    pad = margin * max(x1 - x0, (y1 - y0) * COLOR_FRAME_SIZE[1] / COLOR_FRAME_SIZE[0])  # margin of the long side
    pad_y = pad * COLOR_FRAME_SIZE[0] / COLOR_FRAME_SIZE[1]
    return (max(0.0, x0 - pad), max(0.0, y0 - pad_y), min(1.0, x1 + pad), min(1.0, y1 + pad_y))


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


# --- Frozen CLIP ----------------------------------------------------------------------------------------------

@dataclass
class Clip:
    """A frozen CLIP: model, image preprocessing, tokenizer (truncates at the model's 77-token context)."""
    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    device: str = "cpu"

    def __iter__(self):  # model, preprocess, tokenizer = load_clip(...)
        return iter((self.model, self.preprocess, self.tokenizer))

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return size[0] if isinstance(size, (tuple, list)) else size

    @cached_property
    def dim(self) -> int:
        """D, the size of the joint embedding space."""
        return int(self.encode_texts(["a person."]).shape[1])

    @torch.inference_mode()
    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 256) -> torch.Tensor:
        """Unit-norm image embeddings (n, D), float32 on the CPU."""
        return self.encode_pixels(torch.stack([self.preprocess(im) for im in images]), batch_size)

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Unit-norm image embeddings (n, D) of preprocessed images (n, 3, S, S), float32 on the CPU."""
        out = []
        for start in range(0, len(pixels), batch_size):
            with self._autocast():
                batch = pixels[start:start + batch_size].to(self.device)  # (B, 3, S, S)
                out.append(self.model.encode_image(batch, normalize=True).float().cpu())
        return torch.cat(out)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Unit-norm text embeddings (n, D), float32 on the CPU; each distinct text is encoded once."""
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
        with torch.random.fork_rng(devices=[]):  # random weights are the same on every call: 'random' caches agree
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


def class_text_features(class_names: Sequence[str], model_name: str = DEFAULT_CLIP_MODEL,
                        pretrained: str | None = DEFAULT_CLIP_PRETRAINED, device: str = "cpu",
                        template: str = CLASS_TEMPLATE, clip: Clip | None = None) -> torch.Tensor:
    """(P2) w_c = normalize(E_text(template.format(class name))): (C, D) unit rows on `device`."""
    clip = clip or load_clip(model_name, pretrained, device)
    return clip.encode_texts([template.format(name) for name in class_names]).to(device)


# --- Feature cache: <name>.npy (float16, memory-mapped) + <name>.json (header) ---------------------------------

def cache_path(data_root: str | Path, dataset: str, split: str, part: str, modality: str,
               model_name: str = DEFAULT_CLIP_MODEL, pretrained: str | None = DEFAULT_CLIP_PRETRAINED,
               pooling: str = "mean") -> Path:
    """<split dir>/prompts/<part>_<modality>_<model>_<pretrained>[_allK].npy; a checkpoint path contributes its
    file stem, no weights 'random'."""
    if part not in PARTS or modality not in MODALITIES or pooling not in POOLINGS:
        raise PromptError(f"part must be one of {PARTS}, modality one of {MODALITIES}, pooling one of "
                          f"{POOLINGS} (got {part!r}, {modality!r}, {pooling!r})")
    tag = "random" if not pretrained else Path(pretrained).stem if os.path.sep in pretrained else pretrained
    slug = "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", s) for s in (model_name, tag))  # 'ViT-L-14-336_openai'
    name = f"{part}_{modality}_{slug}" + ("_allK" if pooling == "sample" else "")
    return split_dir(data_root, dataset, split) / "prompts" / f"{name}.npy"


def prompts_path(data_root: str | Path, dataset: str, split: str, part: str, modality: str) -> Path:
    """Where a split part's prompts live before encoding: <split dir>/prompts/<part>_<modality>_prompts.json."""
    return split_dir(data_root, dataset, split) / "prompts" / f"{part}_{modality}_prompts.json"


def prompt_id(prompt: object) -> str:
    """Short sha256 of one sample's prompts (answers, or frames + boxes): which rows may be copied between caches."""
    return hashlib.sha256(json.dumps(prompt, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def sibling_caches(path: str | Path) -> list[Path]:
    """The other finished caches of the same dataset, modality and model (other splits and parts)."""
    path = Path(path)
    same_model = path.name.split("_", 1)[1]  # <part>_<modality>_<model>_<pretrained>[_allK].npy -> drop <part>
    return sorted(p for p in path.parent.parent.parent.glob(f"*/prompts/*_{same_model}") if p != path)


def _copy_reused_rows(rows: np.ndarray, done: np.ndarray, header: dict, reuse: Sequence[Path]) -> None:
    """Copy the rows of finished caches in `reuse` with the same model and pooling for the same (sample, prompt id);
    mark them done. NTU's xsub and xview hold the same samples: each is encoded once."""
    row_of = {(k, p): i for i, (k, p) in enumerate(zip(header["names"], header["prompt_ids"]))}
    same = ("format", "modality", "model", "pretrained", "weights", "K", "pooling", "dim")
    for other in reuse:
        if not (other.is_file() and other.with_suffix(".json").is_file()):
            continue
        other_header = json.loads(other.with_suffix(".json").read_text())
        if any(other_header.get(f) != header[f] for f in same):
            continue
        pairs = [(row_of[kp], j) for j, kp in enumerate(zip(other_header["names"], other_header["prompt_ids"]))
                 if kp in row_of and not done[row_of[kp]]]
        if pairs:
            mine, theirs = (list(ix) for ix in zip(*pairs))
            rows[mine] = np.load(other, mmap_mode="r")[theirs]
            done[mine] = True


def encode_cache(path: str | Path, names: Sequence[str], load_prompt: Callable[[str], list], modality: str,
                 clip: Clip, model_name: str, pretrained: str | None, prompt_ids: Sequence[str], K: int = K_FRAMES,
                 pooling: str = "mean", batch_size: int = 256, chunk_size: int = 64,
                 workers: int = min(8, os.cpu_count() or 1), reuse: Sequence[Path] = ()) -> Path:
    """Encode every sample's K prompts (`load_prompt(key)`: K texts or K preprocessed images (3, S, S), loaded in
    `workers` threads) with the frozen CLIP into the cache at `path` + its header .json. Rows of `reuse` caches
    with the same model and prompt id are copied. After each chunk the rows and a done mask are saved: a rerun
    resumes there; a finished cache with the same header is left as it is."""
    if pooling not in POOLINGS:
        raise PromptError(f"unknown pooling {pooling!r}; choose from {POOLINGS}")
    path, keys = Path(path), [sample_name(n) for n in names]
    header = dict(format=CACHE_FORMAT, modality=modality, model=model_name, pretrained=pretrained or None,
                  weights=weights_fingerprint(pretrained), K=K, pooling=pooling, dim=clip.dim, dtype="float16",
                  input_hash=hashlib.sha256("".join(prompt_ids).encode()).hexdigest(), names=keys,
                  prompt_ids=list(prompt_ids))
    shape = (len(keys), clip.dim) if pooling == "mean" else (len(keys), K, clip.dim)
    final_header = path.with_suffix(".json")
    if final_header.is_file() and path.is_file() and json.loads(final_header.read_text()) == header:
        return path  # already encoded from the same inputs with the same model
    partial = path.with_name(path.stem + ".partial.npy")
    progress = path.with_name(path.stem + ".progress.json")  # the header being encoded
    done_file = path.with_name(path.stem + ".done.npy")  # bool (N,): rows of `partial` that are final
    if (progress.is_file() and partial.is_file() and done_file.is_file()
            and json.loads(progress.read_text()) == header):
        rows, done = np.load(partial, mmap_mode="r+"), np.load(done_file)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float16, shape=shape)
        done = np.zeros(len(keys), dtype=bool)
        _copy_reused_rows(rows, done, header, [Path(p) for p in reuse])
        rows.flush()
        with atomic_path(done_file) as tmp, open(tmp, "wb") as f:
            np.save(f, done)  # to a file object: np.save would append .npy to the temporary name
        write_json(progress, header, indent=None)
    todo = np.flatnonzero(~done)
    with tqdm(total=len(keys), initial=len(keys) - len(todo), desc=f"encode {modality} {path.name}",
              unit="sample") as bar, ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            prompts = list(pool.map(load_prompt, [keys[i] for i in chunk]))
            for i, prompt in zip(chunk, prompts):
                if len(prompt) != K:
                    raise PromptError(f"sample {keys[i]}: {len(prompt)} {modality} prompts, expected K = {K}")
            flat = [p for prompt in prompts for p in prompt]
            encoded = (clip.encode_texts(flat, batch_size) if modality == "language"
                       else clip.encode_pixels(torch.stack(flat), batch_size))  # (B * K, D)
            features = encoded.view(len(chunk), K, -1)  # (B, K, D) unit rows
            # (P1) normalize(mean over K of the unit features): the same pooling that training applies to "sample" caches
            rows[chunk] = (features if pooling == "sample" else pool_prompts(features, "mean")).numpy()
            rows.flush()
            done[chunk] = True
            with atomic_path(done_file) as tmp, open(tmp, "wb") as f:
                np.save(f, done)
            bar.update(len(chunk))
    del rows
    final_header.unlink(missing_ok=True)  # a header is only ever next to the data it describes
    move_into_place(partial, path)
    write_json(final_header, header, indent=None)
    progress.unlink()
    done_file.unlink()
    return path


def encode_language(prompts: dict[str, list[str]], path: str | Path, clip: Clip, model_name: str,
                    pretrained: str | None, K: int = K_FRAMES, pooling: str = "mean", **kwargs) -> Path:
    """Language cache of every sample in `prompts` ({key: [K answers]}, in cache order)."""
    return encode_cache(path, list(prompts), prompts.__getitem__, "language", clip, model_name, pretrained,
                        [prompt_id(p) for p in prompts.values()], K, pooling, **kwargs)


def encode_vision(prompts: dict[str, dict], path: str | Path, open_source: Callable[[str], object], clip: Clip,
                  model_name: str, pretrained: str | None, K: int = K_FRAMES, pooling: str = "mean",
                  **kwargs) -> Path:
    """Vision cache of every sample in `prompts` ({key: {frames, boxes}}): crop the K frames and encode them.
    The prompt ids cover frame indices and boxes, not the pixels of the videos."""
    def crops(key):
        entry = prompts[key]
        frames = open_source(key).read(entry["frames"])
        return [clip.preprocess(crop_person(image, box, clip.image_size)) for image, box in zip(frames, entry["boxes"])]

    return encode_cache(path, list(prompts), crops, "vision", clip, model_name, pretrained,
                        [prompt_id(p) for p in prompts.values()], K, pooling, **kwargs)


def weights_fingerprint(pretrained: str | None) -> str | None:
    """sha256 of a checkpoint file given as `pretrained` (a cache encoded before the file changed is stale);
    None for an open_clip tag (fixed weights) or random weights."""
    return file_sha256(pretrained) if pretrained and os.path.isfile(pretrained) else None


def _same_pretrained(a: str | None, b: str | None) -> bool:
    a, b = a or None, b or None
    if a and b and os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return a == b


def load_prompt_features(path: str | Path, names: Sequence[str], model_name: str, pretrained: str | None,
                         allow_partial: bool = False):
    """(features, present) aligned to `names`: float16 (N, D), or (N, K, D) for pooling "sample", memory-mapped when
    the cache holds exactly `names` in order; bool (N,). Refuses another model or pretrained weights, and names
    without features unless `allow_partial` (their rows are zeros)."""
    path = Path(path)
    if not path.with_suffix(".json").is_file() or not path.is_file():
        hint = ("encoding was interrupted: rerun the same `python prompts.py encode ...` command to resume"
                if path.with_name(path.stem + ".progress.json").is_file()
                else "make it with `python prompts.py encode ...` (see `python prompts.py encode --help`)")
        raise FileNotFoundError(f"no prompt feature cache at {path}: {hint}")
    header = json.loads(path.with_suffix(".json").read_text())
    if header.get("model") != model_name or not _same_pretrained(header.get("pretrained"), pretrained):
        raise PromptError(
            f"{path} was encoded with CLIP model {header.get('model')!r} / pretrained {header.get('pretrained')!r}, "
            f"but model {model_name!r} / pretrained {pretrained!r} was asked for; re-encode or pick the matching cache")
    if header.get("weights") != weights_fingerprint(pretrained):
        raise PromptError(f"{path} was encoded with an earlier version of the checkpoint {pretrained} (the file has "
                          f"changed since): encode again with `python prompts.py encode ...`")
    features = np.load(path, mmap_mode="r")
    expected = [len(header["names"]), header["dim"]] if header["pooling"] == "mean" else \
        [len(header["names"]), header["K"], header["dim"]]
    if list(features.shape) != expected or features.dtype != np.float16:
        raise PromptError(f"{path}: array is {features.dtype} {features.shape}, header says float16 {expected}: "
                          "the cache is corrupt, delete it and encode again")
    keys = [sample_name(n) for n in names]
    if keys == header["names"]:
        return features, np.ones(len(keys), dtype=bool)
    row = {k: i for i, k in enumerate(header["names"])}
    present = np.array([k in row for k in keys], dtype=bool)
    if keys and not present.any():
        raise no_match_error(str(path), header["names"], keys, "check the dataset and split (another one's cache?)")
    if not present.all() and not allow_partial:
        missing = [k for k, p in zip(keys, present) if not p]
        raise PromptError(f"{path}: {len(missing)} of {len(keys)} samples are not in the cache "
                          f"(first: {', '.join(missing[:5])}); encode them, or allow_partial=True "
                          "(--allow-partial) to train on the samples that have prompts")
    aligned = np.zeros((len(keys),) + features.shape[1:], dtype=np.float16)
    aligned[present] = features[[row[k] for k, p in zip(keys, present) if p]]
    return aligned, present


# --- Command line ---------------------------------------------------------------------------------------------

def split_names(data_root: str | Path, dataset: str, split: str, part: str) -> list[str]:
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
    parts: tuple = setting(PARTS, "split parts", PARTS, nargs="+", aliases=("part",))


def frame_opener(config) -> Callable[[str], object]:
    """The frame sources of --frames; the demo renders its frames from its skeletons."""
    if config.dataset == "demo":
        from demo.frames import demo_frame_source  # like load_clip: demo/ imports this file
        return lambda key: demo_frame_source(config.data_root, key)
    if not config.frames:
        raise PromptError("--frames is required: a folder with <sample>/ frame folders or <sample>_rgb.avi videos")
    return lambda key: open_frame_source(config.frames, key)


@dataclass
class ImportConfig(SplitConfig):
    """match C2VL's released language prompts (zip or json) to a split"""
    released: str = setting(None, "pkuv2_language.zip / ntu120_language.json ...", kind=str, positional=True)
    allow_partial: bool = setting(False, "keep the matched subset when samples are missing")

    def run(self) -> None:
        names = {part: split_names(self.data_root, self.dataset, self.split, part) for part in self.parts}
        released = read_language_prompts(self.released)  # checked after the split: a large file, read once
        for part in self.parts:
            prompts, report = match_prompts(released, names[part], self.allow_partial, self.released)
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
    frames: str | None = setting(None, "frames / videos of the vision prompts (not for demo)", kind=str)
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
            prompts, report = match_prompts(read(source, self.K), names[part], self.allow_partial, str(source))
            if modality == "language":
                encode_language(prompts, out, clip, self.model, self.pretrained, **kwargs)
            else:
                encode_vision(prompts, out, open_source, clip, self.model, self.pretrained, **kwargs)
            print(f"{part} {modality}: {report}\n  -> {out}")
            for warning in prompt_health({modality: np.load(out, mmap_mode="r")}):
                print(f"warning: {warning}", file=sys.stderr)

    def missing_prompts_message(self, missing: list[tuple[str, Path]]) -> str:
        lacking, split = sorted({m for m, _ in missing}), f"--dataset {self.dataset} --split {self.split}"
        make = {"language": f"`python prompts.py import <released language zip or json> {split}`",
                "vision": f"`python tools/generate_prompts.py {split} --frames <frames or videos>`"}
        have = [m for m in self.modalities if m not in lacking]
        alone = f"; or rerun with `--modalities {' '.join(have)}` to encode the {' and '.join(have)} cache alone"
        return (f"no {' or '.join(lacking)} prompts ({', '.join(str(p) for _, p in missing)}); make them with "
                + " and ".join(make[m] for m in lacking) + (alone if have else ""))


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
    except CLI_ERRORS as err:  # their messages say what is wrong and what to do: no traceback
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
