"""Knowledge prompts of C2VL and their frozen-CLIP feature cache (METHOD.md §1).

C2VL trains a skeleton encoder against two *knowledge prompts* per training sample, made offline by large
multimodal models and encoded once by a frozen CLIP (ViT-L/14 at 336 px in the paper):

- vision prompt:   person crops of K = 16 RGB frames of the clip (Grounding DINO, text query "person");
- language prompt: K = 16 LLaVA answers about those frames (what is held, the posture, what the person tries to do).

This file holds that whole stage:

1. released prompts: read C2VL's ``pkuv2_language.json`` / ``ntu120_language.json`` (zipped or not) and match them
   to a split by sample name (``import_released``);
2. generating prompts: K uniformly sampled frames, person boxes from the skeleton's colorX/colorY (or Grounding DINO),
   LLaVA answers (``make_vision_prompts``, ``make_language_prompts``; the LMM backends are an optional extra);
3. CLIP features: encode the K crops / K answers, pool them (P1 below) and write one float16 memory-mapped cache per
   (dataset, split, part, modality, model) that training reads (``encode_*``, ``load_prompt_features``);
4. the demo: the same code with a tiny random CLIP (``DEMO_CLIP_MODEL``), so it runs anywhere without downloads;
5. class-name text features for zero-shot evaluation (P2).

Equations (this file's numbers; METHOD.md §1):

    (P1)  v_i = normalize( (1/K) sum_k normalize(E(prompt_ik)) )      E = frozen CLIP image or text encoder
          pooling "none" keeps the K unit vectors: (K, D) per sample
    (P2)  w_c = normalize(E_text("a person {class name c}."))

What this file does not do: train anything (the heads and the loss are in distill.py), or read skeleton arrays
(data.py owns the datasets; this file only asks it for sample names, colorX/colorY and the demo's frames).
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

from data import (DATASETS, atomic_path, demo_frame_source, prepare_demo, read_label_pkl, read_skeleton,
                  sample_name, split_dir)
from distill import pool_prompts  # P1, shared with training's pooling of "none" caches

K_FRAMES = 16  # prompts per sample; the released files hold exactly 16 answers per sample

# Reconstruction: the paper's exact LLaVA question is not available; this wording is inferred from the released
# answers ("Yes, the person is holding ... They are standing ... trying to ...").
# Alternative: "What is the person doing?".
LLAVA_QUESTION = (
    "Is the person holding anything in their hand? Is the person standing or sitting? "
    "What is the person trying to do?"
)
LLAVA_PROMPT = "USER: <image>\n{question} ASSISTANT:"  # the llava-1.5 conversation format
# Reconstruction: the paper names LLaVA and Grounding DINO but not the checkpoints; these are the public HF ports.
DEFAULT_LLAVA = "llava-hf/llava-1.5-7b-hf"
DEFAULT_DETECTOR = "IDEA-Research/grounding-dino-base"
DETECTOR_QUERY = "person."  # Grounding DINO expects lower-case phrases ending with a period

DEFAULT_CLIP_MODEL = "ViT-L-14-336"  # the paper's frozen CLIP
DEFAULT_CLIP_PRETRAINED = "openai"
CLASS_TEMPLATE = "a person {}."
COLOR_FRAME_SIZE = (1920, 1080)  # colorX/colorY of NTU skeletons are pixels of the 1920x1080 Kinect RGB frame
PART_NAMES = ("train", "val")
MODALITIES = ("vision", "language")
POOLINGS = ("mean", "none")
CACHE_FORMAT = "c2vl-prompt-cache/1"

# The demo CLIP: a tiny ViT + text transformer with a fixed random initialisation. Its features carry no
# knowledge at all; it exists so the demo exercises the exact pipeline anywhere, fast and without downloads.
DEMO_CLIP_MODEL = "c2vl-demo-tiny"
DEMO_CLIP_SEED = 0
DEMO_CLIP_CONFIG = dict(
    embed_dim=64,
    vision_cfg=dict(image_size=64, patch_size=16, width=32, layers=1, head_width=32),
    text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=1, layers=1),
)


class PromptError(ValueError):
    """Bad prompt input or a cache that does not fit the request; the message says which file / sample / key."""


class WeightsUnavailableError(RuntimeError):
    """CLIP weights could not be downloaded or found; the message says how to provide them."""


# ---------------------------------------------------------------------------------------------------------------
# The one import work-around
# ---------------------------------------------------------------------------------------------------------------

_TORCHVISION_SCHEMAS = None  # keeps the torch.library.Library alive: dropping it would drop the declared schemas


def import_open_clip():
    """Import open_clip (and thereby torchvision); returns the open_clip module.

    Why: a CUDA build of torchvision 0.28 next to a CPU-only torch fails on import with
    "operator torchvision::nms does not exist", because its compiled ops are not loaded and registering the fake
    (meta) kernels then needs the op schemas. Only in that case we declare the two schemas ourselves, drop the
    half-imported torchvision modules and import again. Nothing here runs torchvision's detection ops.
    """
    global _TORCHVISION_SCHEMAS
    try:
        import torchvision  # noqa: F401
    except RuntimeError as err:
        if "torchvision::nms does not exist" not in str(err):
            raise
        _TORCHVISION_SCHEMAS = torch.library.Library("torchvision", "DEF")
        _TORCHVISION_SCHEMAS.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_SCHEMAS.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
    import open_clip

    return open_clip


# ---------------------------------------------------------------------------------------------------------------
# Prompt files: the released format {sample name: [K answers]}
# ---------------------------------------------------------------------------------------------------------------

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


def write_json_atomic(path: str | Path, obj: object, indent: int | None = 4) -> None:
    """Write JSON to a temporary file next to `path`, then rename: readers never see half a file."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, ensure_ascii=False), encoding="utf-8")


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
    """Prompts of `names` (matched by sample key, in the order of `names`) and a MatchReport.

    Missing samples are an error naming them, unless `allow_partial` (train on the matched subset).
    """
    keys = [sample_name(n) for n in names]
    missing = [k for k in keys if k not in prompts]
    report = MatchReport(matched=len(keys) - len(missing), missing=missing, extra=len(set(prompts) - set(keys)))
    if missing and not allow_partial:
        raise PromptError(
            f"{source}: {len(missing)} of {len(keys)} samples have no prompt (first: {', '.join(missing[:5])}). "
            "Pass --allow-partial (allow_partial=True) to train on the matched subset."
        )
    return {k: prompts[k] for k in keys if k in prompts}, report


def import_released(path: str | Path, names: Sequence[str], allow_partial: bool = False, K: int = K_FRAMES):
    """C2VL's released language prompts matched to a split: ({key: [K answers]} in split order, MatchReport)."""
    return match_prompts(read_language_prompts(path, K), names, allow_partial, source=str(path))


# ---------------------------------------------------------------------------------------------------------------
# Frames: uniform sampling and frame sources (protocol: num_frames, size (W, H), read(indices) -> RGB images)
# ---------------------------------------------------------------------------------------------------------------

def sample_frame_indices(num_frames: int, K: int = K_FRAMES) -> list[int]:
    """K frame indices uniformly over a clip: the middle frame of each of K equal segments.

    Clips shorter than K repeat frames (the list stays sorted), so every sample has exactly K prompts.
    """
    # Reconstruction: segment midpoints (TSN-style); alternative: np.linspace(0, T - 1, K) rounded.
    if num_frames < 1:
        raise PromptError(f"cannot sample {K} frames from an empty clip (num_frames={num_frames})")
    return [min(num_frames - 1, int((k + 0.5) * num_frames / K)) for k in range(K)]


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


class FolderFrameSource:
    """Frames extracted to a folder of images (any of .jpg/.jpeg/.png/.bmp), in natural file-name order."""

    EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.files = sorted((p for p in self.folder.iterdir() if p.suffix.lower() in self.EXTENSIONS),
                            key=lambda p: _natural_key(p.name))
        if not self.files:
            raise PromptError(f"{self.folder}: no frame images ({', '.join(self.EXTENSIONS)})")
        self.num_frames = len(self.files)
        with Image.open(self.files[0]) as first:
            self.size = first.size  # (W, H)

    def read(self, indices: Sequence[int]) -> list[Image.Image]:
        return [Image.open(self.files[i]).convert("RGB") for i in indices]


def _import_av():
    try:
        import av
    except ImportError as err:
        raise ImportError("reading videos needs PyAV: pip install -r requirements-lmm.txt (or extract the frames "
                          "to folders and pass those)") from err
    return av


class VideoFrameSource:
    """Frames of a video file (e.g. NTU's S001C001P001R001A001_rgb.avi), decoded with PyAV (optional extra)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        av = _import_av()
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            self.size = (stream.codec_context.width, stream.codec_context.height)
            # The container's frame count can be missing or wrong (AVI); count by decoding then.
            self.num_frames = stream.frames or sum(1 for _ in container.decode(video=0))

    def read(self, indices: Sequence[int]) -> list[Image.Image]:
        wanted, frames = set(indices), {}
        with _import_av().open(str(self.path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    frames[i] = frame.to_image().convert("RGB")
                if i >= max(wanted):
                    break
        lost = sorted(wanted - set(frames))
        if lost:
            raise PromptError(f"{self.path}: frames {lost[:5]} could not be decoded (video has {len(frames)} of them)")
        return [frames[i] for i in indices]


def open_frame_source(frames_root: str | Path, name: str):
    """The frames of sample `name` under `frames_root`: a folder `<key>/`, or a video `<key>_rgb.avi|.avi|.mp4`."""
    key, root = sample_name(name), Path(frames_root)
    if (root / key).is_dir():
        return FolderFrameSource(root / key)
    for video in (root / f"{key}_rgb.avi", root / f"{key}.avi", root / f"{key}.mp4"):
        if video.is_file():
            return VideoFrameSource(video)
    raise FileNotFoundError(f"no frames for sample {key} in {root} (looked for {key}/, {key}_rgb.avi, {key}.avi, "
                            f"{key}.mp4)")


# ---------------------------------------------------------------------------------------------------------------
# Person crops
# ---------------------------------------------------------------------------------------------------------------

def skeleton_box(color_xy: np.ndarray, margin: float = 0.1) -> tuple[float, float, float, float] | None:
    """Person box from one frame's joints, normalised to 0..1 of the frame: (x0, y0, x1, y1), or None.

    color_xy: (M, 25, 2) colorX/colorY in 1920x1080 pixels; absent bodies / untracked joints are zeros or NaN.
    """
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


def skeleton_frame(index: int, num_frames: int, num_skeleton_frames: int) -> int:
    """Skeleton frame of video frame `index` when the two counts differ slightly (proportional mapping)."""
    return min(num_skeleton_frames - 1, index * num_skeleton_frames // num_frames)


# ---------------------------------------------------------------------------------------------------------------
# LMM backends (optional extra: requirements-lmm.txt), loaded lazily
# ---------------------------------------------------------------------------------------------------------------

def _import_transformers():
    import_open_clip()  # transformers' vision models import torchvision too: same work-around, same place
    try:
        import transformers
    except ImportError as err:
        raise ImportError("the LMM step needs Hugging Face transformers: pip install -r requirements-lmm.txt") from err
    return transformers


class PersonDetector:
    """Grounding DINO with the text query "person": one box per frame around every detected person."""

    def __init__(self, model_id: str = DEFAULT_DETECTOR, device: str = "cpu", box_threshold: float = 0.35,
                 text_threshold: float = 0.25, model=None, processor=None):
        transformers = _import_transformers()
        self.processor = processor or transformers.AutoProcessor.from_pretrained(model_id)
        self.model = (model or transformers.GroundingDinoForObjectDetection.from_pretrained(model_id)).to(device).eval()
        self.device, self.box_threshold, self.text_threshold = device, box_threshold, text_threshold

    @torch.inference_mode()
    def boxes(self, images: Sequence[Image.Image]) -> list[tuple[float, float, float, float] | None]:
        """(x0, y0, x1, y1) in 0..1 per image (union of the person boxes above threshold), None when none found."""
        inputs = self.processor(images=list(images), text=[DETECTOR_QUERY] * len(images), return_tensors="pt")
        outputs = self.model(**inputs.to(self.device))
        results = self.processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=self.box_threshold, text_threshold=self.text_threshold,
            target_sizes=[image.size[::-1] for image in images])
        boxes = []
        for image, result in zip(images, results):
            found = result["boxes"].float().cpu().numpy()  # (n, 4) pixels
            if len(found) == 0:
                boxes.append(None)
                continue
            W, H = image.size
            x0, y0 = found[:, :2].min(axis=0)
            x1, y1 = found[:, 2:].max(axis=0)
            boxes.append((max(0.0, x0 / W), max(0.0, y0 / H), min(1.0, x1 / W), min(1.0, y1 / H)))
        return boxes


class LlavaAnswerer:
    """LLaVA asked LLAVA_QUESTION about each frame; greedy decoding, so the answers are reproducible."""

    def __init__(self, model_id: str = DEFAULT_LLAVA, device: str = "cpu", max_new_tokens: int = 96,
                 model=None, processor=None):
        transformers = _import_transformers()
        self.processor = processor or transformers.AutoProcessor.from_pretrained(model_id)
        self.processor.tokenizer.padding_side = "left"  # batched generation continues every row at its end
        self.model = (model or transformers.LlavaForConditionalGeneration.from_pretrained(
            model_id, dtype=torch.float16 if str(device).startswith("cuda") else torch.float32)).to(device).eval()
        self.device, self.max_new_tokens = device, max_new_tokens

    @torch.inference_mode()
    def answers(self, images: Sequence[Image.Image]) -> list[str]:
        prompt = LLAVA_PROMPT.format(question=LLAVA_QUESTION)
        inputs = self.processor(images=list(images), text=[prompt] * len(images), return_tensors="pt", padding=True)
        output = self.model.generate(**inputs.to(self.device), max_new_tokens=self.max_new_tokens, do_sample=False)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]  # (K, new) drop the echoed prompt
        return [a.strip() for a in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]


# ---------------------------------------------------------------------------------------------------------------
# Generating prompts
# ---------------------------------------------------------------------------------------------------------------

def vision_prompt(source, color_xy: np.ndarray | None, K: int = K_FRAMES, detector: PersonDetector | None = None,
                  margin: float = 0.1) -> dict:
    """One sample's vision prompt: K uniformly sampled frame indices and the person box in each (0..1 or None).

    color_xy: (T_s, M, 25, 2) colorX/colorY of the sample's skeleton, or None (no skeleton: detector or full frame).
    Frames without joints take the skeleton box of the nearest sampled frame. With a detector, its box is used and
    the skeleton box is the fallback for frames where it finds nobody.
    """
    frames = sample_frame_indices(source.num_frames, K)
    boxes = [None] * K
    if color_xy is not None and len(color_xy):
        boxes = [skeleton_box(color_xy[skeleton_frame(i, source.num_frames, len(color_xy))], margin) for i in frames]
        # A frame whose skeleton was lost still shows the person: take the box of the nearest sampled frame.
        found = [k for k, box in enumerate(boxes) if box is not None]
        if found:
            boxes = [boxes[min(found, key=lambda j: abs(j - k))] for k in range(K)]
    if detector is not None:
        found = detector.boxes(source.read(frames))
        boxes = [d if d is not None else s for d, s in zip(found, boxes)]
    return {"frames": frames, "boxes": [None if b is None else [round(float(v), 5) for v in b] for b in boxes]}


def make_prompts(names: Sequence[str], out_path: str | Path, make_one: Callable[[str], object],
                 save_every: int = 50, desc: str = "prompts") -> dict:
    """Run `make_one(key)` for every sample not yet in `out_path` and save the JSON atomically every `save_every`
    samples, so an interrupted LMM run resumes where it stopped. Returns {key: prompt} for all `names`."""
    out_path = Path(out_path)
    done = json.loads(out_path.read_text(encoding="utf-8")) if out_path.is_file() else {}
    todo = [k for k in map(sample_name, names) if k not in done]
    if done and todo:
        print(f"{out_path}: keeping its {len(done)} samples, making {len(todo)} more (delete it to start over)",
              file=sys.stderr)
    for n, key in enumerate(tqdm(todo, desc=desc, unit="sample", disable=not todo), start=1):
        done[key] = make_one(key)
        if n % save_every == 0 or n == len(todo):
            write_json_atomic(out_path, done)
    return {k: done[k] for k in map(sample_name, names)}


def make_vision_prompts(names, out_path, open_source: Callable[[str], object],
                        open_color_xy: Callable[[str], np.ndarray | None], K: int = K_FRAMES,
                        detector: PersonDetector | None = None, margin: float = 0.1) -> dict:
    """Vision prompts (frames + person boxes) of `names`, saved to `out_path` as {key: {frames, boxes}}."""
    return make_prompts(names, out_path, lambda k: vision_prompt(open_source(k), open_color_xy(k), K, detector, margin),
                        desc="vision prompts")


def make_language_prompts(names, out_path, open_source: Callable[[str], object], answerer: LlavaAnswerer,
                          K: int = K_FRAMES) -> dict:
    """LLaVA's K answers per sample in the released format {key: [K answers]}, saved to `out_path`."""
    # Reconstruction: LLaVA sees the whole frame (the released answers describe the room around the person);
    # alternative: the person crop.
    def answer(key):
        source = open_source(key)
        return answerer.answers(source.read(sample_frame_indices(source.num_frames, K)))

    return make_prompts(names, out_path, answer, desc="LLaVA answers")


# ---------------------------------------------------------------------------------------------------------------
# Frozen CLIP
# ---------------------------------------------------------------------------------------------------------------

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
        features = torch.cat(out)  # (U, D)
        row = {t: i for i, t in enumerate(unique)}
        return features[[row[t] for t in texts]]

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16, enabled=str(self.device).startswith("cuda"))


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _demo_clip(open_clip, device: str) -> Clip:
    with torch.random.fork_rng(devices=[]):  # fixed weights without touching the caller's random state
        torch.manual_seed(DEMO_CLIP_SEED)
        model = open_clip.CLIP(**DEMO_CLIP_CONFIG)
        # A random CLIP pools text at the end-of-text token, whose embedding is the same for every text, so all
        # features nearly coincide (cosine ~0.9). Unit-scale word embeddings and no end-of-text or positional
        # embedding make the pooled feature a random mix of the answer's words instead: a random bag-of-words map.
        with torch.no_grad():
            torch.nn.init.normal_(model.token_embedding.weight, std=1.0)
            model.token_embedding.weight[open_clip.tokenizer.SimpleTokenizer().eot_token_id].zero_()
            model.positional_embedding.zero_()
    preprocess = open_clip.image_transform(DEMO_CLIP_CONFIG["vision_cfg"]["image_size"], is_train=False)
    return Clip(model, preprocess, open_clip.tokenizer.SimpleTokenizer(), device)


def load_clip(model_name: str = DEFAULT_CLIP_MODEL, pretrained: str | None = DEFAULT_CLIP_PRETRAINED,
              device: str = "cpu", cache_dir: str | None = None) -> Clip:
    """A frozen open_clip model in eval mode: any open_clip architecture name with a pretrained tag, a local
    checkpoint path, or None (random weights: tests and benchmarks only). DEMO_CLIP_MODEL is the demo's tiny CLIP.
    The returned Clip also unpacks as (model, preprocess, tokenizer).

    `cache_dir` is where open_clip keeps downloaded weights (default: the Hugging Face cache).
    """
    open_clip = import_open_clip()
    if model_name == DEMO_CLIP_MODEL:
        if pretrained:
            raise PromptError(f"{DEMO_CLIP_MODEL} has no pretrained weights (got pretrained={pretrained!r})")
        clip = _demo_clip(open_clip, device)
    else:
        if model_name not in open_clip.list_models() and not model_name.startswith(("hf-hub:", "local-dir:")):
            raise PromptError(f"unknown open_clip model {model_name!r}; see open_clip.list_models()")
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pretrained or None, device="cpu", cache_dir=cache_dir)
        except RuntimeError as err:
            if not re.search(r"download|not a known tag|valid file path", str(err)):
                raise
            raise WeightsUnavailableError(
                f"CLIP weights for model {model_name!r}, pretrained {pretrained!r} are not available here ({err}).\n"
                "Provide them in one of two ways:\n"
                f"  1. a local checkpoint: --pretrained /path/to/{model_name}.pt (load_clip(..., pretrained=path));\n"
                "  2. run the same command once on a machine with internet (with HF_HUB_OFFLINE unset); open_clip "
                "caches the weights (~/.cache/huggingface) and later runs work offline, also with HF_HUB_OFFLINE=1."
            ) from err
        clip = Clip(model, preprocess, open_clip.get_tokenizer(model_name), device)
    clip.model = clip.model.to(device).eval().requires_grad_(False)
    return clip


def class_text_features(class_names: Sequence[str], model_name: str = DEFAULT_CLIP_MODEL,
                        pretrained: str | None = DEFAULT_CLIP_PRETRAINED, device: str = "cpu",
                        template: str = CLASS_TEMPLATE, clip: Clip | None = None) -> torch.Tensor:
    """(P2) w_c = normalize(E_text(template.format(class name))): (C, D) unit rows on `device`, for zero-shot
    evaluation."""
    clip = clip or load_clip(model_name, pretrained, device)
    return clip.encode_texts([template.format(name) for name in class_names]).to(device)


# ---------------------------------------------------------------------------------------------------------------
# Feature cache: <prefix>.npy (float16, memory-mapped) + <prefix>.json (header)
# ---------------------------------------------------------------------------------------------------------------

def _model_slug(model_name: str, pretrained: str | None) -> str:
    """'ViT-L-14-336_openai'; a checkpoint path contributes its file stem, no weights 'random'."""
    tag = "random" if not pretrained else Path(pretrained).stem if os.path.sep in pretrained else pretrained
    return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", part) for part in (model_name, tag))


def cache_path(data_root: str | Path, dataset: str, split: str, part: str, modality: str,
               model_name: str = DEFAULT_CLIP_MODEL, pretrained: str | None = DEFAULT_CLIP_PRETRAINED,
               pooling: str = "mean") -> Path:
    """<split dir>/prompts/<part>_<modality>_<model>_<pretrained>[_allK].npy (its header: the same name, .json)."""
    if part not in PART_NAMES or modality not in MODALITIES or pooling not in POOLINGS:
        raise PromptError(f"part must be one of {PART_NAMES}, modality one of {MODALITIES}, pooling one of "
                          f"{POOLINGS} (got {part!r}, {modality!r}, {pooling!r})")
    name = f"{part}_{modality}_{_model_slug(model_name, pretrained)}" + ("_allK" if pooling == "none" else "")
    return split_dir(data_root, dataset, split) / "prompts" / f"{name}.npy"


def prompts_path(data_root: str | Path, dataset: str, split: str, part: str, modality: str) -> Path:
    """Where a split part's prompts live before encoding: <split dir>/prompts/<part>_<modality>_prompts.json."""
    return split_dir(data_root, dataset, split) / "prompts" / f"{part}_{modality}_prompts.json"


def _same_pretrained(a: str | None, b: str | None) -> bool:
    a, b = a or None, b or None
    if a and b and os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return a == b


def _header_path(path: Path) -> Path:
    return path.with_suffix(".json")


def prompt_id(prompt: object) -> str:
    """Short sha256 of one sample's prompts (answers, or frames + boxes): which rows may be copied between caches."""
    return hashlib.sha256(json.dumps(prompt, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def _save_mask_atomic(path: Path, mask: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, mask)


def _copy_reused_rows(rows: np.ndarray, done: np.ndarray, header: dict, reuse: Sequence[Path]) -> None:
    """Copy into `rows` the rows of finished caches in `reuse` made with the same model and pooling for the same
    (sample, prompt id); mark them done. NTU's xsub and xview hold the same samples: each is encoded once."""
    row_of = {(k, p): i for i, (k, p) in enumerate(zip(header["names"], header["prompt_ids"]))}
    same = ("format", "modality", "model", "pretrained", "K", "pooling", "dim")
    for other in reuse:
        if not (other.is_file() and _header_path(other).is_file()):
            continue
        other_header = json.loads(_header_path(other).read_text())
        if any(other_header.get(f) != header[f] for f in same):
            continue
        pairs = [(row_of[kp], j) for j, kp in enumerate(zip(other_header["names"], other_header["prompt_ids"]))
                 if kp in row_of and not done[row_of[kp]]]
        if pairs:
            mine, theirs = (list(ix) for ix in zip(*pairs))
            rows[mine] = np.load(other, mmap_mode="r")[theirs]
            done[mine] = True


def sibling_caches(path: str | Path) -> list[Path]:
    """The other finished caches of the same dataset, modality and model (other splits and parts)."""
    path = Path(path)
    same_model = path.name.split("_", 1)[1]  # <part>_<modality>_<model>_<pretrained>[_allK].npy -> drop <part>
    return sorted(p for p in path.parent.parent.parent.glob(f"*/prompts/*_{same_model}") if p != path)


def encode_cache(path: str | Path, names: Sequence[str], load_prompt: Callable[[str], list], modality: str,
                 clip: Clip, model_name: str, pretrained: str | None, prompt_ids: Sequence[str], K: int = K_FRAMES,
                 pooling: str = "mean", batch_size: int = 256, chunk_size: int = 64,
                 workers: int = min(8, os.cpu_count() or 1), reuse: Sequence[Path] = ()) -> Path:
    """Encode every sample's K prompts with the frozen CLIP and write the cache at `path` (+ header .json).

    `load_prompt(key)` returns the sample's K texts (language) or K preprocessed images (3, S, S) (vision); it runs
    in `workers` threads, so frame decoding and cropping overlap with the GPU. `prompt_ids` (one per sample, see
    `prompt_id`) record what was encoded; rows of the caches in `reuse` with the same model and prompt id are copied.
    Work is done in chunks of `chunk_size` samples; after each chunk the rows are flushed and a done mask is saved,
    so a rerun after an interruption continues there. A finished cache with the same header is left as it is.
    """
    if pooling not in POOLINGS:
        raise PromptError(f"unknown pooling {pooling!r}; choose from {POOLINGS}")
    path, keys = Path(path), [sample_name(n) for n in names]
    header = dict(format=CACHE_FORMAT, modality=modality, model=model_name, pretrained=pretrained or None,
                  K=K, pooling=pooling, dim=clip.dim, dtype="float16",
                  input_hash=hashlib.sha256("".join(prompt_ids).encode()).hexdigest(), names=keys,
                  prompt_ids=list(prompt_ids))
    shape = (len(keys), clip.dim) if pooling == "mean" else (len(keys), K, clip.dim)
    final_header = _header_path(path)
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
        _save_mask_atomic(done_file, done)
        write_json_atomic(progress, header, indent=None)
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
            # (P1) normalize(mean over K of the unit features): the same pooling that training applies to "none" caches
            rows[chunk] = (features if pooling == "none" else pool_prompts(features, "mean")).numpy()
            rows.flush()
            done[chunk] = True
            _save_mask_atomic(done_file, done)
            bar.update(len(chunk))
    del rows
    final_header.unlink(missing_ok=True)  # a header is only ever next to the data it describes
    os.replace(partial, path)
    write_json_atomic(final_header, header, indent=None)
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

    The prompt ids cover frame indices and boxes, not the pixels of the videos.
    """
    def crops(key):
        entry = prompts[key]
        frames = open_source(key).read(entry["frames"])
        return [clip.preprocess(crop_person(image, box, clip.image_size)) for image, box in zip(frames, entry["boxes"])]

    return encode_cache(path, list(prompts), crops, "vision", clip, model_name, pretrained,
                        [prompt_id(p) for p in prompts.values()], K, pooling, **kwargs)


def load_prompt_features(path: str | Path, names: Sequence[str], model_name: str, pretrained: str | None,
                         allow_partial: bool = False):
    """Cached prompt features aligned to `names`: (features, present).

    features: float16 (len(names), D) — or (len(names), K, D) for pooling "none" — memory-mapped when the cache
    holds exactly `names` in order; present: bool (len(names),). Refuses a cache made with another model or
    pretrained weights, and names without features (unless `allow_partial`; their rows are zeros).
    """
    path = Path(path)
    header_file = _header_path(path)
    if not header_file.is_file() or not path.is_file():
        hint = ("encoding was interrupted: rerun the same `python prompts.py encode ...` command to resume"
                if path.with_name(path.stem + ".progress.json").is_file()
                else "make it with `python prompts.py encode ...` (see `python prompts.py encode --help`)")
        raise FileNotFoundError(f"no prompt feature cache at {path}: {hint}")
    header = json.loads(header_file.read_text())
    if header.get("model") != model_name or not _same_pretrained(header.get("pretrained"), pretrained):
        raise PromptError(
            f"{path} was encoded with CLIP model {header.get('model')!r} / pretrained {header.get('pretrained')!r}, "
            f"but model {model_name!r} / pretrained {pretrained!r} was asked for; re-encode or pick the matching cache")
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
    if not present.all() and not allow_partial:
        missing = [k for k, p in zip(keys, present) if not p]
        raise PromptError(f"{path}: {len(missing)} of {len(keys)} samples are not in the cache "
                          f"(first: {', '.join(missing[:5])}); encode them, or allow_partial=True "
                          "(--allow-partial) to train on the samples that have prompts")
    aligned = np.zeros((len(keys),) + features.shape[1:], dtype=np.float16)
    aligned[present] = features[[row[k] for k, p in zip(keys, present) if p]]
    return aligned, present


# ---------------------------------------------------------------------------------------------------------------
# Datasets and the demo (sample names, skeleton colorX/colorY and demo frames come from data.py)
# ---------------------------------------------------------------------------------------------------------------

def split_names(data_root: str | Path, dataset: str, split: str, part: str) -> list[str]:
    """Sample names of a split part (its `<part>_label.pkl`), in the order training uses them."""
    return read_label_pkl(split_dir(data_root, dataset, split) / f"{part}_label.pkl")[0]


def skeleton_color_xy(skeleton_root: str | Path | None, name: str) -> np.ndarray | None:
    """(T, M, 25, 2) colorX/colorY of `<skeleton_root>/<key>.skeleton`, or None without a skeleton root."""
    if skeleton_root is None:
        return None
    return read_skeleton(Path(skeleton_root) / f"{sample_name(name)}.skeleton").color_xy


def prepare_demo_prompts(data_root: str | Path = "datasets", device: str = "cpu",
                         splits: Sequence[str] = DATASETS["demo"], parts: Sequence[str] = PART_NAMES) -> None:
    """Both modality caches of the demo's splits and parts (default: all) with DEMO_CLIP_MODEL; idempotent."""
    prepare_demo(data_root)
    answers = read_language_prompts(Path(data_root) / "demo" / "demo_language.json")
    clip = load_clip(DEMO_CLIP_MODEL, None, device)
    raw = Path(data_root) / "demo" / "raw"
    for split in splits:
        for part in parts:
            names = split_names(data_root, "demo", split, part)
            language, _ = match_prompts(answers, names, source="demo_language.json")
            write_json_atomic(prompts_path(data_root, "demo", split, part, "language"), language)
            out = cache_path(data_root, "demo", split, part, "language", DEMO_CLIP_MODEL, None)
            encode_language(language, out, clip, DEMO_CLIP_MODEL, None, reuse=sibling_caches(out))
            open_source = lambda key: demo_frame_source(data_root, key)  # noqa: E731
            vision_path = prompts_path(data_root, "demo", split, part, "vision")
            if vision_path.is_file() and vision_path.stat().st_mtime < (raw.parent / "demo_meta.json").stat().st_mtime:
                vision_path.unlink()  # made from an older demo: its frame indices may not exist any more
            vision = make_vision_prompts(names, vision_path, open_source, lambda key: skeleton_color_xy(raw, key))
            out = cache_path(data_root, "demo", split, part, "vision", DEMO_CLIP_MODEL, None)
            encode_vision(vision, out, open_source, clip, DEMO_CLIP_MODEL, None, reuse=sibling_caches(out))


# ---------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------

def _pretrained_arg(value: str) -> str | None:
    return None if value.lower() in ("none", "") else value


def _add_split_args(p: argparse.ArgumentParser, parts: bool = True) -> None:
    p.add_argument("--data-root", default="datasets", help="root of the prepared datasets (data.py)")
    p.add_argument("--dataset", required=True, help="ntu60, ntu120, pku1, pku2 or demo")
    p.add_argument("--split", required=True, help="benchmark, e.g. xsub, xview, xset")
    if parts:
        p.add_argument("--parts", "--part", nargs="+", default=list(PART_NAMES), choices=PART_NAMES)


def _frame_opener(args) -> Callable[[str], object]:
    if args.dataset == "demo":
        return lambda key: demo_frame_source(args.data_root, key)
    if not args.frames:
        raise SystemExit("--frames is required: a folder with <sample>/ frame folders or <sample>_rgb.avi videos")
    return lambda key: open_frame_source(args.frames, key)


def _cmd_import(args) -> None:
    for part in args.parts:
        names = split_names(args.data_root, args.dataset, args.split, part)
        prompts, report = import_released(args.released, names, args.allow_partial)
        out = prompts_path(args.data_root, args.dataset, args.split, part, "language")
        write_json_atomic(out, prompts)
        print(f"{args.dataset}/{args.split}/{part}: {report}\n  -> {out}")


def _cmd_generate(args) -> None:
    device = args.device or default_device()
    open_source = _frame_opener(args)
    detector = PersonDetector(args.detector, device) if args.detector else None
    answerer = LlavaAnswerer(args.llava, device) if args.llava else None
    for part in args.parts:
        names = split_names(args.data_root, args.dataset, args.split, part)
        out = prompts_path(args.data_root, args.dataset, args.split, part, "vision")
        make_vision_prompts(names, out, open_source, lambda key: skeleton_color_xy(args.skeletons, key),
                            args.K, detector, args.margin)
        print(f"{part}: vision prompts -> {out}")
        if answerer is not None:
            out = prompts_path(args.data_root, args.dataset, args.split, part, "language")
            make_language_prompts(names, out, open_source, answerer, args.K)
            print(f"{part}: language prompts -> {out}")


def _cmd_encode(args) -> None:
    device = args.device or default_device()
    clip = load_clip(args.model, args.pretrained, device, args.clip_cache_dir)
    for part in args.parts:
        names = split_names(args.data_root, args.dataset, args.split, part)
        for modality in args.modalities:
            source = prompts_path(args.data_root, args.dataset, args.split, part, modality)
            if not source.is_file():
                raise SystemExit(f"{source} not found: run `python prompts.py import ...` (language) or "
                                 "`python prompts.py generate ...` first")
            out = cache_path(args.data_root, args.dataset, args.split, part, modality, args.model, args.pretrained,
                             args.pooling)
            kwargs = dict(K=args.K, pooling=args.pooling, batch_size=args.batch_size, reuse=sibling_caches(out))
            if modality == "language":
                prompts, report = match_prompts(read_language_prompts(source, args.K), names, args.allow_partial,
                                                str(source))
                encode_language(prompts, out, clip, args.model, args.pretrained, **kwargs)
            else:
                prompts, report = match_prompts(read_vision_prompts(source, args.K), names, args.allow_partial,
                                                str(source))
                encode_vision(prompts, out, _frame_opener(args), clip, args.model, args.pretrained, **kwargs)
            print(f"{part} {modality}: {report}\n  -> {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python prompts.py", description="C2VL knowledge prompts: import, generate, encode with a frozen CLIP.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("import", help="match C2VL's released language prompts (zip or json) to a split")
    p.add_argument("released", help="pkuv2_language.zip / ntu120_language.json ...")
    _add_split_args(p)
    p.add_argument("--allow-partial", action="store_true", help="keep the matched subset when samples are missing")
    p.set_defaults(run=_cmd_import)

    p = sub.add_parser("generate", help="make vision prompts (frames + person boxes) and, with --llava, answers")
    _add_split_args(p)
    p.add_argument("--frames", help="folder of <sample>/ frame folders or <sample>_rgb.avi videos (not for demo)")
    p.add_argument("--skeletons", help="folder of raw <sample>.skeleton files: person boxes from colorX/colorY")
    p.add_argument("--detector", nargs="?", const=DEFAULT_DETECTOR, default=None,
                   help=f"use Grounding DINO for person boxes (default model {DEFAULT_DETECTOR})")
    p.add_argument("--llava", nargs="?", const=DEFAULT_LLAVA, default=None,
                   help=f"also ask LLaVA for the language prompts (default model {DEFAULT_LLAVA})")
    p.add_argument("--K", type=int, default=K_FRAMES)
    p.add_argument("--margin", type=float, default=0.1, help="box margin, fraction of the box's long side")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.set_defaults(run=_cmd_generate)

    p = sub.add_parser("encode", help="encode prompts with the frozen CLIP into the feature caches training reads")
    _add_split_args(p)
    p.add_argument("--modalities", "--modality", nargs="+", default=list(MODALITIES), choices=MODALITIES)
    p.add_argument("--model", "--clip-model", default=DEFAULT_CLIP_MODEL, help="open_clip architecture name")
    p.add_argument("--pretrained", type=_pretrained_arg, default=DEFAULT_CLIP_PRETRAINED,
                   help="open_clip pretrained tag or local checkpoint path ('none' = random weights)")
    p.add_argument("--clip-cache-dir", default=None, help="where open_clip stores downloaded weights")
    p.add_argument("--pooling", default="mean", choices=POOLINGS, help="mean over K (P1) or keep all K")
    p.add_argument("--frames", help="frames / videos of the vision prompts (not for demo)")
    p.add_argument("--K", type=int, default=K_FRAMES)
    p.add_argument("--batch-size", type=int, default=256, help="images or texts per CLIP forward pass")
    p.add_argument("--allow-partial", action="store_true", help="encode the samples that have prompts")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.set_defaults(run=_cmd_encode)

    p = sub.add_parser("demo", help="prepare the demo dataset and both of its caches (tiny random CLIP)")
    p.add_argument("--data-root", default="datasets")
    p.add_argument("--device", default="cpu")
    p.set_defaults(run=lambda args: prepare_demo_prompts(args.data_root, args.device))
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (PromptError, WeightsUnavailableError, FileNotFoundError) as err:  # messages say what to do; no traceback
        raise SystemExit(f"error: {err}") from err


if __name__ == "__main__":
    main()
