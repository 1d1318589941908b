"""The demo's RGB frames: the person of a demo `.skeleton` file drawn where its colorX/colorY say.

prompts.py crops vision prompts from these frames exactly as from NTU's videos (K frames, person boxes from
colorX/colorY), so the whole prompt stage runs on the demo without any video.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from data import make_command, sample_name
from demo.motion import DemoSubject, demo_subject
from demo.world import DEMO_FRAME_SIZE, KINECT_COLOR
from tools.ntu_names import parse_ntu_name
from tools.raw_skeletons import read_skeleton
from utils.files import DataNotFoundError

# Limbs as capsules in the subject's colours, drawn far to near (ST-GCN's 'ntu-rgb+d' bones).
_LIMBS = (((4, 5), "shirt", 0.095), ((8, 9), "shirt", 0.095), ((5, 6), "sleeve", 0.075), ((9, 10), "sleeve", 0.075),
          ((6, 7), "skin", 0.06), ((10, 11), "skin", 0.06), ((7, 21), "skin", 0.035), ((11, 23), "skin", 0.035),
          ((7, 22), "skin", 0.03), ((11, 24), "skin", 0.03), ((0, 12), "pants", 0.16), ((0, 16), "pants", 0.16),
          ((12, 13), "pants", 0.14), ((16, 17), "pants", 0.14), ((13, 14), "pants", 0.11), ((17, 18), "pants", 0.11),
          ((14, 15), "shoes", 0.08), ((18, 19), "shoes", 0.08), ((20, 2), "skin", 0.08))
_WALLS = {1: (196, 186, 164), 2: (168, 178, 190), 3: (182, 192, 170)}


class DemoFrameSource:
    """FrameSource of a demo sample: RGB frames of the person rendered (lazily) from the colorX/colorY of its
    `.skeleton` file. `size` = (W, H); pixel = colorXY * (W / 1920, H / 1080). Frames whose skeleton is
    missing show the person of the nearest frame that has one (the video still shows the person)."""

    def __init__(self, skeleton_path, subject: DemoSubject, setup: int, camera: int, size=DEMO_FRAME_SIZE):
        self.path, self.subject, self.size = Path(skeleton_path), subject, tuple(size)
        self.setup, self.camera = setup, camera
        with open(self.path, "rb") as f:
            self.num_frames = int(f.readline())
        self._skeleton = None

    def read(self, indices: list[int]) -> list:
        from PIL import Image, ImageDraw
        if self._skeleton is None:
            self._skeleton = read_skeleton(self.path)
        sk = self._skeleton
        has_body = np.flatnonzero((sk.xyz != 0).any(axis=(1, 2, 3)))
        images = []
        for index in indices:
            if not 0 <= index < self.num_frames:
                raise IndexError(f"frame {index} outside 0..{self.num_frames - 1} of {self.path.name}")
            t = int(has_body[np.argmin(np.abs(has_body - index))])
            image = self._background(Image)
            self._draw_people(ImageDraw.Draw(image), sk.color_xy[t], sk.xyz[t, :, :, 2])
            images.append(image)
        return images

    def _background(self, Image):
        W, H = self.size
        wall, horizon = np.array(_WALLS[self.setup]), int(H * 0.62)
        canvas = np.empty((H, W, 3), np.uint8)
        shade = np.linspace(1.0, 0.85, horizon)[:, None, None]
        canvas[:horizon] = (wall * shade).astype(np.uint8)
        canvas[horizon:] = (wall * 0.55).astype(np.uint8)
        x0 = int(W * (0.15 + 0.25 * self.camera))  % W  # a poster on the wall, different per camera
        canvas[int(H * 0.15):int(H * 0.35), x0:x0 + W // 10] = (90, 60, 50)
        return Image.fromarray(canvas)

    def _draw_people(self, draw, color_xy, depth) -> None:
        scale = np.array([self.size[0] / 1920.0, self.size[1] / 1080.0])
        colours = {"shirt": self.subject.shirt, "pants": self.subject.pants, "skin": self.subject.skin,
                   "sleeve": self.subject.shirt if self.subject.long_sleeves else self.subject.skin,
                   "shoes": (40, 40, 45)}
        for m in np.argsort(-depth.mean(axis=1)):  # far body first
            if not depth[m].any():
                continue
            px, z = color_xy[m] * scale, np.maximum(depth[m], 0.5)

            def width(metres, joint):
                return max(1, int(metres * KINECT_COLOR[0] * scale[0] / z[joint]))

            draw.polygon([tuple(px[j]) for j in (4, 8, 16, 12)], fill=colours["shirt"])
            for (a, b), part, metres in sorted(_LIMBS, key=lambda limb: -(z[limb[0][0]] + z[limb[0][1]])):
                w = width(metres, a)
                draw.line([tuple(px[a]), tuple(px[b])], fill=colours[part], width=w)
                for j in (a, b):
                    r = w / 2
                    draw.ellipse([px[j][0] - r, px[j][1] - r, px[j][0] + r, px[j][1] + r], fill=colours[part])
            r = width(0.11, 3)
            head = px[3]
            draw.ellipse([head[0] - r, head[1] - r * 1.15, head[0] + r, head[1] + r * 1.15], fill=colours["skin"])
            draw.chord([head[0] - r, head[1] - r * 1.2, head[0] + r, head[1] + r * 0.6], 180, 360, fill=(45, 35, 30))


def demo_frame_source(data_root, name: str) -> DemoFrameSource:
    """The FrameSource of demo sample `name` (made by prepare_demo)."""
    root = Path(data_root) / "demo"
    meta_path, path = root / "demo_meta.json", root / "raw" / f"{sample_name(name)}.skeleton"
    if not meta_path.is_file() or not path.is_file():
        raise DataNotFoundError(f"demo sample {name} not found in {root}. Make the demo with:\n  "
                                f"{make_command(data_root, 'demo', 'xsub')}")
    n = parse_ntu_name(name)
    seed = json.loads(meta_path.read_text())["seed"]
    return DemoFrameSource(path, demo_subject(seed, n.subject), n.setup, n.camera)
