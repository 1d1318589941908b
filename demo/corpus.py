"""The demo CLIP's pretraining corpus: person crops of the demo world, each with a short caption.

CLIP knows the real world from image-caption pairs of the web; the demo CLIP (demo/clip.py) learns the demo world
the same way. Its corpus comes from performers that no demo benchmark split contains: the splits hold subjects
1..DEMO_SUBJECTS, the corpus the next CORPUS_SUBJECTS (and the check of demo/clip.py the next HELD_OUT ones), made by
the same generator, cameras and renderer as the demo (demo/world.py, demo/frames.py) and cropped like the vision
prompts (prompts.crop_person around the colorX/colorY box).

A caption says what the frame shows, as web captions do: while the action is visible, either the action's name in
a caption template or a posture-and-intent sentence about it; before and after it, that the person stands. The
LLaVA-style answers of the demo (the prompts C2VL reads, with their mistakes) are not part of the corpus.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from data import DEMO_CLASSES
from demo.frames import DemoFrameSource
from demo.motion import demo_subject
from demo.world import DEMO_SUBJECTS, _INTENTS, _NEUTRAL_POSTURES, _POSTURES, _demo_setup, demo_recording
from prompts import crop_person
from tools.generate_prompts import vision_prompt
from tools.raw_skeletons import parallel_map, read_skeleton

CORPUS_SUBJECTS, HELD_OUT = 20, 2  # performers 13..32 train the demo CLIP, 33..34 check it
FIRST = DEMO_SUBJECTS + 1  # the first performer after the demo's own
FRAMES_PER_SAMPLE = 8  # of the 16 answered frames of each performance
ACTIVE = 0.35  # activity above which the action is visible (the threshold of the demo's answers)
_TEMPLATES = ("a person {}.", "someone doing {}.", "{}.", "a photo of a person doing {}.",
              "a person doing {} in a room.")


def corpus_names(subjects) -> list[str]:
    """One performance per (subject, action, camera), NTU-style names; replication 1 or 2 alternates."""
    return [f"S{_demo_setup(p):03d}C{c:03d}P{p:03d}R{1 + (p + a + c) % 2:03d}A{a:03d}"
            for p in subjects for a in range(1, len(DEMO_CLASSES) + 1) for c in (1, 2, 3)]


def caption(action: int, activity: float, pronoun: str, rng) -> str:
    """What a frame of `action` (0-based) shows, at `activity` in [0, 1]."""
    words = {"he": pronoun, "his": "his" if pronoun == "he" else "her", "him": "him" if pronoun == "he" else "her"}
    if activity <= ACTIVE:
        return f"a person {rng.choice(_NEUTRAL_POSTURES)}.".format(**words)
    if rng.random() < 0.5:
        return rng.choice(_TEMPLATES).format(DEMO_CLASSES[action])
    return f"a person {rng.choice(_POSTURES[action])}, {rng.choice(_INTENTS[action])}.".format(**words)


def _corpus_sample(task) -> tuple[np.ndarray, list[str], int]:
    """One performance -> FRAMES_PER_SAMPLE crops (F, S, S, 3) uint8, their captions, the subject."""
    name, seed, size = task
    text, _, activity = demo_recording(name, seed)
    subject, setup, camera, action = int(name[9:12]), int(name[1:4]), int(name[5:8]), int(name[17:20]) - 1
    rng = np.random.default_rng([seed, 4, subject, camera, action])
    with tempfile.TemporaryDirectory() as tmp:  # the renderer reads `.skeleton` files, like NTU's tools
        path = Path(tmp) / f"{name}.skeleton"
        path.write_text(text)
        skeleton = read_skeleton(path)
        source = DemoFrameSource(path, demo_subject(seed, subject), setup, camera)
        ks = np.sort(rng.choice(16, FRAMES_PER_SAMPLE, replace=False))
        frames = np.linspace(0, source.num_frames - 1, 16).round().astype(int)[ks]  # the frames `activity` describes
        boxes = vision_prompt(source, skeleton.color_xy, 16)["boxes"]  # person box of each frame, as for prompts
        images = source.read(frames.tolist())
    crops = np.stack([np.asarray(crop_person(image, boxes[k], size)) for image, k in zip(images, ks)])
    pronoun = demo_subject(seed, subject).pronoun
    return crops, [caption(action, activity[k], pronoun, rng) for k in ks], subject


def make_corpus(size: int, seed: int = 0, workers: int | None = None) -> dict:
    """The corpus of CORPUS_SUBJECTS + HELD_OUT performers: images (n, S, S, 3) uint8, captions [n], labels (n,)
    action ids, subjects (n,), held_out (n,) bool: the last HELD_OUT performers. A pure function of (size, seed)."""
    subjects = range(FIRST, FIRST + CORPUS_SUBJECTS + HELD_OUT)
    names = corpus_names(subjects)
    samples = list(parallel_map(_corpus_sample, [(n, seed, size) for n in names], workers, "demo CLIP corpus",
                                unit="performance"))
    subject = np.repeat([p for _, _, p in samples], FRAMES_PER_SAMPLE)
    return dict(images=np.concatenate([crops for crops, _, _ in samples]),
                captions=[c for _, captions, _ in samples for c in captions],
                labels=np.repeat([int(n[17:20]) - 1 for n in names], FRAMES_PER_SAMPLE),
                subjects=subject, held_out=subject >= FIRST + CORPUS_SUBJECTS)
