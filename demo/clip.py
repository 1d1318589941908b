"""The demo's CLIP and its prompt caches: the exact pipeline of prompts.py with a tiny random CLIP.

DEMO_CLIP_MODEL is a tiny ViT + text transformer with a fixed random initialisation. Its features carry no
knowledge at all; it exists so the demo runs the whole prompt stage (person crops of K frames, K answers, P1
pooling, the float16 caches) anywhere, fast and without downloads. `prompts.load_clip(DEMO_CLIP_MODEL, None)`
builds it here.

    python demo/clip.py            # both caches of every demo split and part; training makes them when missing
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

# Run as a script (python demo/clip.py): the project's modules live in the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import prompts  # noqa: E402
from data import DATASETS, PARTS  # noqa: E402
from demo.frames import demo_frame_source  # noqa: E402
from demo.world import prepare_demo  # noqa: E402
from prompts import DEMO_CLIP_MODEL, Clip  # noqa: E402
from tools.generate_prompts import make_vision_prompts, skeleton_color_xy  # noqa: E402
from utils.config import add_arguments, from_args, setting  # noqa: E402
from utils.distributed import DEVICES  # noqa: E402
from utils.files import write_json  # noqa: E402

DEMO_CLIP_SEED = 0
DEMO_CLIP_CONFIG = dict(
    embed_dim=64,
    vision_cfg=dict(image_size=64, patch_size=16, width=32, layers=1, head_width=32),
    text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=1, layers=1),
)


def demo_clip(open_clip, device: str) -> Clip:
    """DEMO_CLIP_MODEL: the same weights on every call, without touching the caller's random state."""
    with torch.random.fork_rng(devices=[]):
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


def prepare_demo_prompts(data_root: str | Path = "datasets", device: str = "cpu",
                         splits: Sequence[str] = DATASETS["demo"], parts: Sequence[str] = PARTS) -> None:
    """Both modality caches of the demo's splits and parts (default: all) with DEMO_CLIP_MODEL; idempotent."""
    clip = prompts.load_clip(DEMO_CLIP_MODEL, None, device)  # first: a --device this machine lacks fails at once
    prepare_demo(data_root)
    answers = prompts.read_language_prompts(Path(data_root) / "demo" / "demo_language.json")
    raw = Path(data_root) / "demo" / "raw"
    for split in splits:
        for part in parts:
            names = prompts.split_names(data_root, "demo", split, part)
            language, _ = prompts.match_prompts(answers, names, source="demo_language.json")
            write_json(prompts.prompts_path(data_root, "demo", split, part, "language"), language, indent=4)
            out = prompts.cache_path(data_root, "demo", split, part, "language", DEMO_CLIP_MODEL, None)
            prompts.encode_language(language, out, clip, DEMO_CLIP_MODEL, None, reuse=prompts.sibling_caches(out))
            open_source = lambda key: demo_frame_source(data_root, key)  # noqa: E731
            vision_path = prompts.prompts_path(data_root, "demo", split, part, "vision")
            if vision_path.is_file() and vision_path.stat().st_mtime < (raw.parent / "demo_meta.json").stat().st_mtime:
                vision_path.unlink()  # made from an older demo: its frame indices may not exist any more
            vision = make_vision_prompts(names, vision_path, open_source, lambda key: skeleton_color_xy(raw, key))
            out = prompts.cache_path(data_root, "demo", split, part, "vision", DEMO_CLIP_MODEL, None)
            prompts.encode_vision(vision, out, open_source, clip, DEMO_CLIP_MODEL, None,
                                  reuse=prompts.sibling_caches(out))


@dataclass
class DemoClipConfig:
    """Every setting of `python demo/clip.py`; each field is a flag of the same name."""
    data_root: str = setting("datasets", "where the demo dataset and its prompt caches are written")
    device: str = setting("cpu", f"device of the tiny CLIP: {DEVICES}")


def build_parser() -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(
        prog="python demo/clip.py", description="prepare the demo dataset and both of its caches (tiny random CLIP)"),
        DemoClipConfig)


def main(argv: Sequence[str] | None = None) -> None:
    config = from_args(DemoClipConfig, build_parser().parse_args(argv))
    try:
        prepare_demo_prompts(config.data_root, config.device)
    except prompts.CLI_ERRORS as err:  # their messages say what is wrong and what to do: no traceback
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
