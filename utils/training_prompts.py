"""The prompt features a training run reads: which modalities, their caches aligned to the training split,
--pair_noise's broken pairs, and the message that names the command making a missing cache.

train.py passes the paths (prompts.py decides where caches and prompt files live) and its TrainConfig. Not a paper
concept: plumbing for train.py.
"""
import sys

import numpy as np

from utils.diagnostics import prompt_health
from utils.pair_noise import break_pairs
from utils.prompt_files import load_prompt_features


def training_modalities(config, caches, prompt_files):
    """--modalities: one, both, or auto: every modality whose training cache exists (caches, prompt_files: {m: path},
    every modality in order)."""
    if config.modalities != "auto":
        return tuple(caches) if config.modalities == "both" else (config.modalities,)
    found = tuple(m for m, path in caches.items() if path.is_file())
    if not found:  # propose encoding the modalities whose prompt files exist (released prompts: language only)
        have = [m for m, path in prompt_files.items() if path.is_file()]
        raise FileNotFoundError(missing_prompts_message(config, have or list(caches)))
    return found


def load_prompt_caches(config, names, caches):
    """{m: float16 (n, D) or (n, K, D) array} aligned to the training split's sample `names` from the caches
    {m: path}, and the (n,) mask of the samples that have all."""
    features, present = {}, np.ones(len(names), dtype=bool)
    for m, path in caches.items():
        if not path.is_file():
            raise FileNotFoundError(missing_prompts_message(config, [m], path))
        pretrained = None if config.pretrained.lower() == "none" else config.pretrained
        features[m], has = load_prompt_features(path, names, config.clip_model, pretrained,
                                                allow_partial=config.allow_partial)
        present &= has
    return features, present


def training_prompts(config, names, caches, rank):
    """The training pairs: -> features {m: (n, [K,] D)} with --pair_noise's pairs broken, the indices of the samples
    that have prompts, and the (n,) bool mask of the broken ones. Rank 0 warns of nearly identical features."""
    features, present = load_prompt_caches(config, names, caches)  # {m: (n, [K,] D)}, (n,)
    for warning in prompt_health(features) if rank == 0 else []:
        print(f"warning: {warning}", file=sys.stderr)
    indices = np.flatnonzero(present).tolist()
    features, broken = break_pairs(features, indices, config.pair_noise, config.seed,
                                   [m for m in caches if config.pair_noise_modality in (m, "both")],
                                   config.pair_noise_kind)
    if len(indices) < len(names):
        print(f"training on the {len(indices)} of {len(names)} samples that have prompts (--allow-partial)",
              file=sys.stderr)
    return features, indices, broken


def missing_prompts_message(config, modalities, path=None):
    """The prompts.py command that makes the missing caches, with every non-default flag of this run."""
    where = f" (looked for {path})" if path else ""
    flags = (f" --data-root {config.data_root}" if config.data_root != "datasets" else "") + (
        " --pooling sample" if config.pooling == "sample" else "")
    return (f"no {' or '.join(modalities)} prompt features for {config.dataset} {config.split} train with CLIP "
            f"{config.clip_model} / {config.pretrained}{where}. Make them with:\n"
            f"  python prompts.py encode --dataset {config.dataset} --split {config.split} --parts train "
            f"--modalities {' '.join(modalities)} --model {config.clip_model} --pretrained {config.pretrained}"
            f"{flags}\n(released language prompts first go through `python prompts.py import ...`; see "
            f"docs/prompts.md)")
