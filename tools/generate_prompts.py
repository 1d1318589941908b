"""Generating knowledge prompts offline: the paper's Grounding DINO + LLaVA step (docs/method.md §1).

For every training sample, from its RGB video:

- vision prompt:   K = 16 uniformly sampled frames and the person box in each, from the skeleton's colorX/colorY
                   (or Grounding DINO with the text query "person"): {"frames": [K indices], "boxes": [K boxes]};
- language prompt: LLaVA's answer to LLAVA_QUESTION about each of the K frames, in the format of C2VL's released
                   files {sample: [K answers]}.

Both are saved as JSON next to the split (prompts.prompts_path), every 50 samples, so a long LMM run resumes where
it stopped; `python prompts.py encode` then turns them into the frozen-CLIP caches that training reads.

    python tools/generate_prompts.py --dataset ntu60 --split xsub --rgb /data/nturgb+d_rgb \\
        --skeletons nturgb+d_skeletons --llava

The LMM backends are an optional extra (requirements-lmm.txt), imported only when asked for. Not needed with the
released language prompts (`python prompts.py import`), nor for the demo (demo/clip.py).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

# Run as a script (python tools/generate_prompts.py): the project's modules live in the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from data import sample_name  # noqa: E402
from prompts import CLI_ERRORS, K_FRAMES, PromptError, checked_device, prompts_path  # noqa: E402
from tools.prompt_commands import SplitConfig, frame_opener, split_names  # noqa: E402
from tools.raw_skeletons import read_skeleton  # noqa: E402
from utils.config import add_arguments, from_args, setting  # noqa: E402
from utils.distributed import DEVICES  # noqa: E402
from utils.files import write_json  # noqa: E402
from utils.imports import import_transformers  # noqa: E402

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
COLOR_FRAME_SIZE = (1920, 1080)  # colorX/colorY of NTU skeletons are pixels of the 1920x1080 Kinect RGB frame


# ---------------------------------------------------------------------------------------------------------------
# Which frames, and where the person is in them
# ---------------------------------------------------------------------------------------------------------------

def sample_frame_indices(num_frames: int, K: int = K_FRAMES) -> list[int]:
    """K frame indices: the middle frame of each of K equal segments; clips shorter than K repeat frames."""
    # Reconstruction: segment midpoints (TSN-style); alternative: np.linspace(0, T - 1, K) rounded.
    if num_frames < 1:
        raise PromptError(f"cannot sample {K} frames from an empty clip (num_frames={num_frames})")
    return [min(num_frames - 1, int((k + 0.5) * num_frames / K)) for k in range(K)]


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


# ---------------------------------------------------------------------------------------------------------------
# LMM backends (optional extra: requirements-lmm.txt), loaded lazily
# ---------------------------------------------------------------------------------------------------------------

class PersonDetector:
    """Grounding DINO with the text query "person": one box per frame around every detected person."""

    def __init__(self, model_id: str = DEFAULT_DETECTOR, device: str = "cpu", box_threshold: float = 0.35,
                 text_threshold: float = 0.25, model=None, processor=None):
        transformers = import_transformers()
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
        transformers = import_transformers()
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

def skeleton_color_xy(skeleton_root: str | Path | None, name: str) -> np.ndarray | None:
    """(T, M, 25, 2) colorX/colorY of `<skeleton_root>/<key>.skeleton`, or None without a skeleton root."""
    if skeleton_root is None:
        return None
    return read_skeleton(Path(skeleton_root) / f"{sample_name(name)}.skeleton").color_xy


def skeleton_frame(index: int, num_frames: int, num_skeleton_frames: int) -> int:
    """Skeleton frame of video frame `index` when the two counts differ slightly (proportional mapping)."""
    return min(num_skeleton_frames - 1, index * num_skeleton_frames // num_frames)


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
            write_json(out_path, done, indent=4)
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
# Command line
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class GenerateConfig(SplitConfig):
    """Every setting of `python tools/generate_prompts.py`; each field is a flag of the same name."""
    rgb: str | None = setting(None, "folder of <sample>/ RGB frame folders or <sample>_rgb.avi videos (not for demo)",
                              kind=str, aliases=("frames",))
    skeletons: str | None = setting(None, "folder of raw <sample>.skeleton files: person boxes from colorX/colorY",
                                    kind=str)
    detector: str | None = setting(None, f"use Grounding DINO for person boxes (default model {DEFAULT_DETECTOR})",
                                   kind=str, nargs="?", const=DEFAULT_DETECTOR)
    llava: str | None = setting(None, f"also ask LLaVA for the language prompts (default model {DEFAULT_LLAVA})",
                                kind=str, nargs="?", const=DEFAULT_LLAVA)
    K: int = setting(K_FRAMES, "frames (and answers) per sample")
    margin: float = setting(0.1, "box margin, fraction of the box's long side")
    device: str = setting("auto", f"{DEVICES} (auto: cuda when available)")


def generate(config: GenerateConfig) -> None:
    device = checked_device(config.device)  # every input is checked before the LMMs load
    names = {part: split_names(config.data_root, config.dataset, config.split, part) for part in config.parts}
    open_source = frame_opener(config)
    detector = PersonDetector(config.detector, device) if config.detector else None
    answerer = LlavaAnswerer(config.llava, device) if config.llava else None
    for part in config.parts:
        out = prompts_path(config.data_root, config.dataset, config.split, part, "vision")
        make_vision_prompts(names[part], out, open_source, lambda key: skeleton_color_xy(config.skeletons, key),
                            config.K, detector, config.margin)
        print(f"{part}: vision prompts -> {out}")
        if answerer is not None:
            out = prompts_path(config.data_root, config.dataset, config.split, part, "language")
            make_language_prompts(names[part], out, open_source, answerer, config.K)
            print(f"{part}: language prompts -> {out}")


def build_parser() -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(
        prog="python tools/generate_prompts.py",
        description="make vision prompts (frames + person boxes) and, with --llava, answers"), GenerateConfig)


def main(argv: Sequence[str] | None = None) -> None:
    config = from_args(GenerateConfig, build_parser().parse_args(argv))
    try:
        generate(config)
    except CLI_ERRORS as err:  # their messages say what is wrong and what to do: no traceback
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
