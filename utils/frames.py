"""Frame sources for the vision prompts: a folder of extracted images or a video file, read by index.

A frame source has `num_frames`, `size` (W, H) and `read(indices) -> [PIL RGB images]`. Not a paper concept:
prompts.py crops the person out of these frames (the vision prompt) and tools/generate_prompts.py samples them.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from PIL import Image

from utils.imports import import_av


class FrameSourceError(ValueError):
    """Frames that cannot be found or decoded; the message names the folder or video."""


def _key(name: str) -> str:
    return name.removesuffix(".skeleton")  # data.sample_name, without importing the reading path


class FolderFrameSource:
    """Frames extracted to a folder of images (any of .jpg/.jpeg/.png/.bmp), in natural file-name order."""
    EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        natural = lambda p: [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", p.name)]  # noqa: E731
        self.files = sorted((p for p in self.folder.iterdir() if p.suffix.lower() in self.EXTENSIONS), key=natural)
        if not self.files:
            raise FrameSourceError(f"{self.folder}: no frame images ({', '.join(self.EXTENSIONS)})")
        self.num_frames = len(self.files)
        with Image.open(self.files[0]) as first:
            self.size = first.size  # (W, H)

    def read(self, indices: Sequence[int]) -> list[Image.Image]:
        return [Image.open(self.files[i]).convert("RGB") for i in indices]


class VideoFrameSource:
    """Frames of a video file (e.g. NTU's S001C001P001R001A001_rgb.avi), decoded with PyAV (optional extra)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        with import_av().open(str(self.path)) as container:
            stream = container.streams.video[0]
            self.size = (stream.codec_context.width, stream.codec_context.height)
            # The container's frame count can be missing or wrong (AVI); count by decoding then.
            self.num_frames = stream.frames or sum(1 for _ in container.decode(video=0))

    def read(self, indices: Sequence[int]) -> list[Image.Image]:
        wanted, frames = set(indices), {}
        with import_av().open(str(self.path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    frames[i] = frame.to_image().convert("RGB")
                if i >= max(wanted):
                    break
        lost = sorted(wanted - set(frames))
        if lost:
            raise FrameSourceError(f"{self.path}: frames {lost[:5]} could not be decoded (video has {len(frames)} of them)")
        return [frames[i] for i in indices]


def open_frame_source(frames_root: str | Path, name: str):
    """The frames of sample `name` under `frames_root`: a folder `<key>/`, or a video `<key>_rgb.avi|.avi|.mp4`."""
    key, root = _key(name), Path(frames_root)
    if (root / key).is_dir():
        return FolderFrameSource(root / key)
    for video in (root / f"{key}_rgb.avi", root / f"{key}.avi", root / f"{key}.mp4"):
        if video.is_file():
            return VideoFrameSource(video)
    raise FileNotFoundError(f"no frames for sample {key} in {root} (looked for {key}/, {key}_rgb.avi, {key}.avi, "
                            f"{key}.mp4)")
