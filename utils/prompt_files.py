"""The files of the prompt step: prompt JSON files matched to a split, and the feature cache that training reads.

- prompt files (docs/prompts.md §1): C2VL's released format {sample: [K answers]} for language, ours
  {sample: {"frames": [K], "boxes": [K]}} for vision; matched to a split's sample names with a report.
- feature cache (docs/prompts.md §3): <name>.npy, float16 rows memory-mapped, + <name>.json header (model, weights
  fingerprint, pooling, sample names, prompt ids). `write_cache` encodes chunk by chunk with a done mask, so an
  interrupted encoding resumes, and copies rows of finished sibling caches with the same model and prompt ids.

Not a paper concept: plumbing for prompts.py (which computes the rows: CLIP, then P1) and train.py (which reads
them). Sample names are the canonical ones (utils.files.sample_name).
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from utils.files import atomic_path, file_sha256, move_into_place, sample_name, write_json

CACHE_FORMAT = "c2vl-prompt-cache/1"


class PromptError(ValueError):
    """Bad prompt input or a cache that does not fit the request; the message says which file / sample / key."""


# --- Prompt files -----------------------------------------------------------------------------------------------

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


def read_language_prompts(path: str | Path, K: int = 16) -> dict[str, list[str]]:
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


def read_vision_prompts(path: str | Path, K: int = 16) -> dict[str, dict]:
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


def match_prompts(prompts: dict, names: Sequence[str], allow_partial: bool = False, source: str = "prompts",
                  part: str | None = None):
    """Prompts of `names` (by sample key, in the order of `names`) and a MatchReport; missing samples are an error
    naming them, unless `allow_partial` (train on the matched subset). `part`: the split part, named in errors."""
    keys = [sample_name(n) for n in names]
    missing = [k for k in keys if k not in prompts]
    report = MatchReport(matched=len(keys) - len(missing), missing=missing, extra=len(set(prompts) - set(keys)))
    of_part = f" of its {part} part" if part else ""
    if keys and not report.matched:  # --allow-partial would keep nothing
        fix = "check that the prompts belong to this --dataset and --split"
        if part:
            others = [p for p in ("train", "val") if p != part]
            fix += (f"; if the file holds no {part} samples, leave that part out: --parts {' '.join(others)}")
        raise no_match_error(source, list(prompts), keys, fix, of_part)
    if missing and not allow_partial:
        raise PromptError(
            f"{source}: {len(missing)} of {len(keys)} samples{of_part} have no prompt (first: "
            f"{', '.join(missing[:5])}). Pass --allow-partial (allow_partial=True) to use the matched subset.")
    return {k: prompts[k] for k in keys if k in prompts}, report


def no_match_error(source: str, have: Sequence[str], keys: Sequence[str], fix: str, where: str = "") -> PromptError:
    """None of a split's samples `keys` is among the names `have` of `source`: a name of each side, and `fix`."""
    there = f"its names look like {have[0]!r}" if len(have) else "it holds no samples"
    return PromptError(f"{source}: none of the split's {len(keys)} samples{where} has a prompt there ({there}, the "
                       f"split's like {keys[0]!r}): {fix}")


def prompt_id(prompt: object) -> str:
    """Short sha256 of one sample's prompts (answers, or frames + boxes): which rows may be copied between caches."""
    return hashlib.sha256(json.dumps(prompt, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


# --- The feature cache ------------------------------------------------------------------------------------------

def weights_fingerprint(pretrained: str | None) -> str | None:
    """sha256 of a checkpoint file given as `pretrained` (a cache encoded before the file changed is stale);
    None for an open_clip tag (fixed weights) or random weights."""
    return file_sha256(pretrained) if pretrained and os.path.isfile(pretrained) else None


def cache_header(modality, model_name, pretrained, K, pooling, dim, keys, prompt_ids) -> dict:
    """What a cache's .json records; a finished cache with the same header is not encoded again."""
    return dict(format=CACHE_FORMAT, modality=modality, model=model_name, pretrained=pretrained or None,
                weights=weights_fingerprint(pretrained), K=K, pooling=pooling, dim=dim, dtype="float16",
                input_hash=hashlib.sha256("".join(prompt_ids).encode()).hexdigest(), names=list(keys),
                prompt_ids=list(prompt_ids))


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


def _save_done(done_file: Path, done: np.ndarray) -> None:
    with atomic_path(done_file) as tmp, open(tmp, "wb") as f:
        np.save(f, done)  # to a file object: np.save would append .npy to the temporary name


def write_cache(path: str | Path, header: dict, row_shape: tuple, encode_rows: Callable[[list[str]], np.ndarray],
                chunk_size: int = 64, reuse: Sequence[Path] = (), desc: str = "encode") -> Path:
    """The cache at `path` (+ its header .json): rows[i] = encode_rows([names[i], ...]) chunk by chunk, float16.

    After each chunk the rows and a done mask are saved, so a rerun resumes there; rows of `reuse` caches with the
    same model and prompt id are copied; a finished cache with the same header is left as it is. The array is
    renamed into place and its header written last, so a header always describes complete data."""
    path, keys = Path(path), header["names"]
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
        rows = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float16, shape=(len(keys), *row_shape))
        done = np.zeros(len(keys), dtype=bool)
        _copy_reused_rows(rows, done, header, [Path(p) for p in reuse])
        rows.flush()
        _save_done(done_file, done)
        write_json(progress, header, indent=None)
    todo = np.flatnonzero(~done)
    with tqdm(total=len(keys), initial=len(keys) - len(todo), desc=f"{desc} {path.name}", unit="sample") as bar:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            rows[chunk] = encode_rows([keys[i] for i in chunk])
            rows.flush()
            done[chunk] = True
            _save_done(done_file, done)
            bar.update(len(chunk))
    del rows
    final_header.unlink(missing_ok=True)  # a header is only ever next to the data it describes
    move_into_place(partial, path)
    write_json(final_header, header, indent=None)
    progress.unlink()
    done_file.unlink()
    return path


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
