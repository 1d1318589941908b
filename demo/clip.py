"""The demo's CLIP: a tiny open_clip model pretrained on the demo world, shipped with the repository, and the demo's
prompt caches.

The paper's frozen CLIP knows the real world from web image-caption pairs; the demo CLIP learns the synthetic demo
world the same way (CLIP's contrastive loss on person crops and captions of performers outside every demo split,
demo/corpus.py), so its vision and language features share one space, as the method assumes. Its architecture
DEMO_CLIP_MODEL is registered with open_clip (resources/open_clip/c2vl-demo-tiny.json) and its weights are loaded
like any local checkpoint (`--pretrained datasets/demo/clip/c2vl-demo-tiny.pt`), through prompts.load_clip. It knows
a synthetic world only: the demo's numbers say nothing about the paper's NTU results.

The weights are shipped (resources/demo_clip/): trained once with DEMO_CLIP_RECIPE, because training them on each
machine gave each machine another demo CLIP (the float paths of CPU kernels differ over hundreds of steps) and so
other demo numbers. The shipped file holds every weight except the rows of the 49,408-token embedding that no demo
text uses (the demo's vocabulary keeps its rows; the others are zeros when unpacked), which keeps it small.

    python demo/clip.py              # the shipped demo CLIP unpacked, and both caches of every demo split and part
    python demo/clip.py --retrain    # the recipe again, from scratch (about 9 min on 2 cores), compared with it
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

# Run as a script (python demo/clip.py): the project's modules live in the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

import prompts  # noqa: E402
from data import DATASETS, DEMO_CLASSES, PARTS  # noqa: E402
from demo.corpus import _TEMPLATES, FRAMES_PER_SAMPLE, make_corpus  # noqa: E402
from demo.frames import demo_frame_source  # noqa: E402
from demo.world import (_INTENTS, _NEUTRAL_POSTURES, _OBJECTS, _POSTURES, _VAGUE_INTENTS, _WRONG_POSTURES,  # noqa: E402
                        ANSWER_WORDS, prepare_demo)
from prompts import DEMO_CLIP_MODEL, Clip  # noqa: E402
from tools import prompt_commands  # noqa: E402
from tools.generate_prompts import make_vision_prompts, skeleton_color_xy  # noqa: E402
from utils.config import add_arguments, from_args, setting  # noqa: E402
from utils.distributed import DEVICES  # noqa: E402
from utils.checkpoints import read_checkpoint  # noqa: E402
from utils.files import file_sha256, save_torch, write_json  # noqa: E402
from utils.prompt_files import match_prompts, read_language_prompts, sibling_caches, weights_fingerprint  # noqa: E402

# Reconstruction: nothing in the paper; the demo's stand-in for CLIP's web-scale pretraining. Size and recipe chosen for
# the demo and by the corpus's held-out performers (not a demo split); alternative: --pretrained none (random weights).
DEMO_CLIP_VERSION = 2  # bump whenever the corpus or the recipe changes, and ship weights trained with it
DEMO_CLIP_RECIPE = dict(steps=3000, batch_size=256, lr=3e-3, weight_decay=0.1, warmup=30)
SHIPPED = Path(__file__).resolve().parent.parent / "resources" / "demo_clip" / f"{DEMO_CLIP_MODEL}.pt"


def demo_clip_checkpoint(data_root: str | Path = "datasets") -> Path:
    """Where the demo CLIP's weights are unpacked: the --pretrained of the demo preset."""
    return Path(data_root) / "demo" / "clip" / f"{DEMO_CLIP_MODEL}.pt"


def demo_clip_recipe(seed: int = 0) -> dict:
    """The recipe the shipped weights were trained with (their .json records it)."""
    return dict(DEMO_CLIP_RECIPE, version=DEMO_CLIP_VERSION, seed=seed)


def demo_clip_is_current(data_root: str | Path = "datasets") -> bool:
    """Whether the unpacked checkpoint is the shipped one (its .json holds the shipped file's sha256)."""
    path = demo_clip_checkpoint(data_root)
    meta = path.with_suffix(".json")
    return path.is_file() and meta.is_file() and json.loads(meta.read_text()).get("shipped") == file_sha256(SHIPPED)


def install_demo_clip(data_root: str | Path = "datasets") -> Path:
    """The shipped weights as the full open_clip state dict that --pretrained loads (made once; again when the
    shipped file changes): the embedding rows the shipped file leaves out are zeros. -> its path."""
    path = demo_clip_checkpoint(data_root)
    if demo_clip_is_current(data_root):
        return path
    packed = read_checkpoint(SHIPPED)  # weights_only: tensors and plain containers
    embedding = torch.zeros(packed["vocab_size"], packed["token_rows"].shape[1])  # (49408, width)
    embedding[packed["token_ids"]] = packed["token_rows"]
    save_torch({**packed["state"], "token_embedding.weight": embedding}, path)
    write_json(path.with_suffix(".json"), dict(shipped=file_sha256(SHIPPED), **json.loads(
        SHIPPED.with_suffix(".json").read_text())))
    return path


def demo_vocabulary(tokenizer) -> torch.Tensor:
    """The token ids of every text the demo makes: the phrases of its LLaVA-style answers (demo/world.py) with either
    pronoun, the corpus captions' templates and the class texts (P2). Sorted, unique."""
    words = [{"he": h, "his": p, "him": o, "He": h.capitalize()} for h, p, o in (("he", "his", "him"),
                                                                                 ("she", "her", "her"))]
    phrases = [*ANSWER_WORDS, *(p for group in (*_POSTURES, *_INTENTS) for p in group), *_NEUTRAL_POSTURES,
               *_WRONG_POSTURES, *_VAGUE_INTENTS, *_OBJECTS, *(t.format(c) for t in _TEMPLATES for c in DEMO_CLASSES),
               *(prompts.CLASS_TEMPLATE.format(c) for c in DEMO_CLASSES), "a person.", "a person standing, waving."]
    texts = [p.format(**w) if "{" in p else p for p in phrases for w in words]
    return torch.unique(tokenizer(texts).flatten())


def pack_demo_clip(checkpoint: str | Path, meta: dict, out: Path | None = None) -> Path:
    """A trained demo CLIP as the shipped file: every weight but the token embedding, whose demo-vocabulary rows are
    kept with their ids; `meta` (recipe, held-out check, ...) in the .json next to it."""
    out, state = Path(out or SHIPPED), read_checkpoint(checkpoint)
    embedding = state.pop("token_embedding.weight")  # (vocab, width)
    ids = demo_vocabulary(prompts.load_clip(DEMO_CLIP_MODEL, None).tokenizer)
    save_torch({"state": state, "token_ids": ids, "token_rows": embedding[ids].clone(),
                "vocab_size": len(embedding)}, out)
    write_json(out.with_suffix(".json"), meta)
    return out


def demo_prompts_ready(caches: Sequence[Path], model_name: str, pretrained: str | None,
                       data_root: str | Path = "datasets") -> bool:
    """Whether the prompt caches train.py reads exist and, when they are the demo CLIP's, were encoded from its
    current checkpoint (made with the current recipe; the caches record the file's sha256)."""
    if not all(Path(c).is_file() and Path(c).with_suffix(".json").is_file() for c in caches):
        return False
    checkpoint = demo_clip_checkpoint(data_root)
    if model_name != DEMO_CLIP_MODEL or pretrained is None or os.path.abspath(pretrained) != os.path.abspath(checkpoint):
        return True  # random weights, or a CLIP of the user's: nothing here would make them again
    if not demo_clip_is_current(data_root):
        return False
    weights = weights_fingerprint(str(checkpoint))
    return all(json.loads(Path(c).with_suffix(".json").read_text()).get("weights") == weights for c in caches)


def prepare_demo_inputs(data_root, split: str, caches: Sequence[Path], model_name: str, pretrained: str | None):
    """What `python train.py` on the demo needs and a fresh clone lacks: the demo dataset, the demo CLIP and the
    training part's prompt caches; made again when they were made by an earlier demo CLIP (later runs reuse them)."""
    if not demo_prompts_ready(caches, model_name, pretrained, data_root):
        prepare_demo(data_root)
        prepare_demo_prompts(data_root, splits=(split,), parts=("train",), random_clip=pretrained is None)


def clip_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric InfoNCE of a batch of n matching (image, caption) pairs: unit rows (n, D) each."""
    logits = logit_scale.exp() * image @ text.T  # (n, n); pair i is the positive of row i and of column i
    target = torch.arange(len(image), device=image.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def pretrain_demo_clip(out: str | Path, seed: int = 0, device: str = "cpu", workers: int | None = None) -> dict:
    """DEMO_CLIP_RECIPE from scratch: DEMO_CLIP_MODEL trained contrastively on the demo corpus (demo/corpus.py),
    saved as an open_clip state dict at `out` (+ .json); -> what the .json records (recipe, held-out check, time).
    How the shipped weights were made; deterministic for a seed on one machine."""
    out, recipe, started = Path(out), demo_clip_recipe(seed), time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # the same weights on every call; the caller's random state untouched
        torch.manual_seed(seed)
        clip = prompts.load_clip(DEMO_CLIP_MODEL, None, device)  # random weights of the registered architecture
        corpus = make_corpus(clip.image_size, seed, workers)
        images = torch.stack([clip.preprocess(Image.fromarray(im)) for im in corpus["images"]])  # (n, 3, S, S)
        tokens = clip.tokenizer(corpus["captions"])  # (n, context)
        train = torch.from_numpy(np.flatnonzero(~corpus["held_out"]))
        model = clip.model.train().requires_grad_(True)
        optimizer = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
        warmup, steps = recipe["warmup"], recipe["steps"]
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warmup, 0.5 * (
            1 + math.cos(math.pi * s / steps))))  # linear warm-up, then cosine to 0
        for _ in tqdm(range(steps), desc="pretrain the demo CLIP", unit="step"):
            batch = train[torch.randint(len(train), (recipe["batch_size"],))]
            loss = clip_loss(model.encode_image(images[batch].to(device), normalize=True),
                             model.encode_text(tokens[batch].to(device), normalize=True), model.logit_scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))  # t <= 100, as CLIP
    clip.model = model.eval().requires_grad_(False)
    meta = dict(recipe=recipe, corpus_pairs=len(train), last_loss=round(loss.item(), 4),
                **held_out_check(clip, images, corpus), seconds=round(time.perf_counter() - started, 1))
    save_torch(model.state_dict(), out)
    write_json(out.with_suffix(".json"), meta)
    return meta


def held_out_check(clip: Clip, images: torch.Tensor, corpus: dict) -> dict:
    """Zero-shot action recognition of the corpus's held-out performers (`images`: the corpus preprocessed, (n, 3, S,
    S)): per frame, and with the unit features of each performance's frames averaged (as P1 pools the K prompts).
    Chance is 1 / 15."""
    held = np.flatnonzero(corpus["held_out"])
    features = clip.encode_pixels(images[held])  # (n, D) unit rows
    classes = prompts.class_text_features(DEMO_CLASSES, clip=clip)  # (C, D)
    labels = torch.from_numpy(corpus["labels"][held])
    pooled = F.normalize(features.view(-1, FRAMES_PER_SAMPLE, features.shape[1]).mean(1), dim=1)
    return dict(held_out_zero_shot=((features @ classes.T).argmax(1) == labels).float().mean().item(),
                held_out_zero_shot_pooled=((pooled @ classes.T).argmax(1) == labels[::FRAMES_PER_SAMPLE])
                .float().mean().item())


def prepare_demo_prompts(data_root: str | Path = "datasets", device: str = "cpu",
                         splits: Sequence[str] = DATASETS["demo"], parts: Sequence[str] = PARTS,
                         random_clip: bool = False) -> str | None:
    """Both modality caches of the demo's splits and parts (default: all) with the demo CLIP (the shipped weights;
    random_clip: its random initial weights instead); idempotent. -> the `pretrained` they were made with."""
    prompts.checked_device(device)  # first: a --device this machine lacks fails at once
    prepare_demo(data_root)
    pretrained = None if random_clip else str(install_demo_clip(data_root))
    clip = prompts.load_clip(DEMO_CLIP_MODEL, pretrained, device)
    answers = read_language_prompts(Path(data_root) / "demo" / "demo_language.json")
    raw = Path(data_root) / "demo" / "raw"
    for split in splits:
        for part in parts:
            names = prompt_commands.split_names(data_root, "demo", split, part)
            language, _ = match_prompts(answers, names, source="demo_language.json")
            write_json(prompts.prompts_path(data_root, "demo", split, part, "language"), language, indent=4)
            out = prompts.cache_path(data_root, "demo", split, part, "language", DEMO_CLIP_MODEL, pretrained)
            prompts.encode_language(language, out, clip, DEMO_CLIP_MODEL, pretrained,
                                    reuse=sibling_caches(out))
            open_source = lambda key: demo_frame_source(data_root, key)  # noqa: E731
            vision_path = prompts.prompts_path(data_root, "demo", split, part, "vision")
            if vision_path.is_file() and vision_path.stat().st_mtime < (raw.parent / "demo_meta.json").stat().st_mtime:
                vision_path.unlink()  # made from an older demo: its frame indices may not exist any more
            vision = make_vision_prompts(names, vision_path, open_source, lambda key: skeleton_color_xy(raw, key))
            out = prompts.cache_path(data_root, "demo", split, part, "vision", DEMO_CLIP_MODEL, pretrained)
            prompts.encode_vision(vision, out, open_source, clip, DEMO_CLIP_MODEL, pretrained,
                                  reuse=sibling_caches(out))
    return pretrained


@dataclass
class DemoClipConfig:
    """Every setting of `python demo/clip.py`; each field is a flag of the same name."""
    data_root: str = setting("datasets", "where the demo dataset and its prompt caches are written")
    device: str = setting("cpu", f"device of the tiny CLIP: {DEVICES}")
    random_clip: bool = setting(False, "encode with the demo CLIP's random initial weights instead (the failure the "
                                       "prompt health check warns about)")
    retrain: bool = setting(False, "train DEMO_CLIP_RECIPE from scratch into <data_root>/demo/clip/retrained/ and "
                                   "compare it with the shipped weights (held-out performers); nothing else is made")
    pack: bool = setting(False, "with --retrain: make the retrained weights the shipped ones (resources/demo_clip/)")


def build_parser() -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(
        prog="python demo/clip.py", description="prepare the demo dataset, the demo CLIP and both prompt caches"),
        DemoClipConfig)


def retrain(config: DemoClipConfig) -> None:
    """The recipe again, and its held-out check next to the shipped weights' (the check that it reproduces them)."""
    out = Path(config.data_root) / "demo" / "clip" / "retrained" / f"{DEMO_CLIP_MODEL}.pt"
    made = pretrain_demo_clip(out, device=config.device)
    shipped = json.loads(SHIPPED.with_suffix(".json").read_text())
    for key in ("held_out_zero_shot", "held_out_zero_shot_pooled"):
        print(f"{key}: shipped {shipped[key]:.1%}, retrained here {made[key]:.1%} (chance {1 / len(DEMO_CLASSES):.1%})")
    if config.pack:
        print(f"shipped weights replaced: {pack_demo_clip(out, made)}")


def main(argv: Sequence[str] | None = None) -> None:
    config = from_args(DemoClipConfig, build_parser().parse_args(argv))
    try:
        if config.retrain:
            retrain(config)
        else:
            prepare_demo_prompts(config.data_root, config.device, random_clip=config.random_clip)
    except prompts.CLI_ERRORS as err:  # their messages say what is wrong and what to do: no traceback
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
