"""Cost of the frozen-CLIP prompt features: encoding throughput, and why training reads a cache.

Measured in one run, with one CLIP (default: the ViT-B/32 architecture with random weights, so nothing is
downloaded; the paper's ViT-L/14-336 costs ~15x more per image and ~3x more per text):

1. encoding throughput (samples/s, K = 16 crops or 16 answers per sample) through `encode_prompts`, as
   `python prompts.py encode` runs it, for both modalities; and the demo's tiny CLIP on the same inputs;
2. one training step (ST-GCN forward + backward on B skeletons, a linear head into CLIP space and the symmetric
   InfoNCE against the prompt features) whose prompt features are read from the float16 memory-mapped cache,
   against the same step computing them with the CLIP encoder (B x 16 crops + B x 16 answers). Prints the ratio.

Inputs are synthetic but shaped like the real ones: 480x270 frames held in memory (no video decoding), person boxes
from colorX/colorY, and the released PKU-MMD II answers of the test fixture, made distinct per sample.

    python bench/bench_prompts.py                          # CPU, ~2-3 minutes on 2 cores
    python bench/bench_prompts.py --model ViT-L-14-336     # the paper's CLIP architecture (much slower on CPU)
    python bench/bench_prompts.py --device cuda --batch 64 --samples 256
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import prompts  # noqa: E402
from prompts import pool_prompts  # noqa: E402
from skeleton_gcn import STGCN  # noqa: E402
from tools.generate_prompts import vision_prompt  # noqa: E402
from utils.prompt_files import read_language_prompts  # noqa: E402

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "pkuv2_language_sample.json"


class MemoryFrames:
    """A frame source of T noise frames held in memory (W x H), so the bench times CLIP, not a video decoder."""

    def __init__(self, seed, T=64, size=(480, 270)):
        rng = np.random.default_rng(seed)
        self.num_frames, self.size = T, size
        self.frames = [Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(4)]

    def read(self, indices):
        return [self.frames[i % 4] for i in indices]


def synthetic_prompts(n):
    """n samples: language {key: [16 answers]} and vision {key: {frames, boxes}} with their frame sources."""
    released = list(read_language_prompts(FIXTURE).values())
    joints = np.zeros((64, 1, 25, 2), np.float32)
    joints[:, 0, :, 0], joints[:, 0, :, 1] = np.linspace(700, 1100, 25), np.linspace(200, 1000, 25)
    keys = [f"S001C001P{i:03d}R001A001" for i in range(n)]
    sources = {k: MemoryFrames(i) for i, k in enumerate(keys)}
    language = {k: [f"{a} (sample {i})" for a in released[i % len(released)]] for i, k in enumerate(keys)}
    vision = {k: vision_prompt(sources[k], joints) for k in keys}
    return keys, language, vision, sources


def timed(function):
    """(seconds, result) of function(); waits for queued GPU work so the time is the step's."""
    start = time.perf_counter()
    result = function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def encoding_throughput(clip, name, language, vision, sources, workdir):
    """Samples/s of encode_prompts for each modality (fresh cache files, chunks of 64 samples)."""
    rates = {}
    t, _ = timed(lambda: prompts.encode_language(language, workdir / f"{name}_language.npy", clip, name, None))
    rates["language"] = len(language) / t
    t, _ = timed(lambda: prompts.encode_vision(vision, workdir / f"{name}_vision.npy", sources.__getitem__, clip,
                                               name, None))
    rates["vision"] = len(vision) / t
    return rates


def training_step(encoder, head, optimizer, x, P):
    """One optimisation step: Z = normalize(head(f(x))), symmetric InfoNCE of Z against each modality's P."""
    Z = F.normalize(head(encoder(x)), dim=-1)  # (B, D)
    target = torch.arange(len(x), device=x.device)
    loss = 0.0
    for P_m in P:
        logits = 100.0 * Z @ P_m.T  # (B, B)
        loss = loss + (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ViT-B-32", help="open_clip architecture (random weights)")
    parser.add_argument("--batch", type=int, default=8, help="samples per training step")
    parser.add_argument("--samples", type=int, default=8, help="samples encoded per modality for the throughput")
    parser.add_argument("--frames", type=int, default=50, help="skeleton frames T of the training step")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")

    clip = prompts.load_clip(args.model, None, args.device)
    demo = prompts.load_clip(prompts.DEMO_CLIP_MODEL, None, args.device)
    keys, language, vision, sources = synthetic_prompts(max(args.samples, args.batch))
    few = lambda d: {k: d[k] for k in keys[:args.samples]}  # noqa: E731

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"\n1. encoding throughput (samples/s; one sample = 16 crops or 16 answers), {args.samples} samples")
        for row, (name, model) in enumerate(((args.model, clip), (prompts.DEMO_CLIP_MODEL, demo))):
            (workdir / str(row)).mkdir()  # fresh caches per row, also when --model is the demo CLIP
            rates = encoding_throughput(model, name, few(language), few(vision), sources, workdir / str(row))
            print(f"   {name:<16} vision {rates['vision']:8.2f}   language {rates['language']:8.2f}")

        # The caches that the cached training step reads: B samples, both modalities.
        batch_keys = keys[:args.batch]
        paths = [prompts.encode_language({k: language[k] for k in batch_keys}, workdir / "step_l.npy", clip,
                                         args.model, None),
                 prompts.encode_vision({k: vision[k] for k in batch_keys}, workdir / "step_v.npy",
                                       sources.__getitem__, clip, args.model, None)]
        caches = [prompts.load_prompt_features(p, batch_keys, args.model, None)[0] for p in paths]

        encoder = STGCN(size="standard").to(args.device)
        head = torch.nn.Linear(STGCN.feature_dim, clip.dim).to(args.device)
        optimizer = torch.optim.SGD(list(encoder.parameters()) + list(head.parameters()), lr=0.01)
        x = torch.randn(args.batch, 3, args.frames, 25, 2, device=args.device)  # (B, C, T, V, M)
        index = np.arange(args.batch)

        def cached_step():
            P = [torch.from_numpy(np.asarray(c[index], dtype=np.float32)).to(args.device) for c in caches]  # (B, D)
            training_step(encoder, head, optimizer, x, P)

        def clip_step():
            texts = [a for k in batch_keys for a in language[k]]  # B * 16 answers
            crops = [prompts.crop_person(im, box, clip.image_size) for k in batch_keys
                     for im, box in zip(sources[k].read(vision[k]["frames"]), vision[k]["boxes"])]  # B * 16 crops
            P = [pool_prompts(clip.encode_texts(texts).view(args.batch, 16, -1)).to(args.device),
                 pool_prompts(clip.encode_pixels(torch.stack([clip.preprocess(c) for c in crops])).view(args.batch, 16, -1)).to(args.device)]
            training_step(encoder, head, optimizer, x, P)

        cached_step()  # warm-up
        t_cached = min(timed(cached_step)[0] for _ in range(3))
        t_clip, _ = timed(clip_step)
        print(f"\n2. one training step, batch {args.batch}, ST-GCN standard, T = {args.frames}, both modalities")
        print(f"   prompt features read from the cache  {t_cached * 1000:10.1f} ms")
        print(f"   prompt features from {args.model:<14}  {t_clip * 1000:10.1f} ms")
        print(f"   ratio (CLIP step / cached step)      {t_clip / t_cached:10.1f}x")


if __name__ == "__main__":
    main()
