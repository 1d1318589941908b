"""Checkpoint files: safe reading (torch.load with weights_only=True) and strict loading with a readable key report.

Not a paper concept: plumbing for the encoders (skeleton_*.py), evaluate.py and train.py. A silent partial load
leaves a random encoder that still trains a linear classifier, at a fraction of the expected accuracy; users of the
field lose weeks to that, so nothing here is lenient.
"""
import re
import warnings
from collections import OrderedDict
from pathlib import Path

import torch


class CheckpointMismatchError(RuntimeError):
    """A checkpoint that cannot be read, or whose keys or shapes do not match the model; the message says which."""


def read_checkpoint(path):
    """torch.load(weights_only=True) of a checkpoint file: tensors and plain containers only, because unpickling
    anything else can run code (checkpoints are files people share). Every other file is refused, naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found. Make an encoder by pretraining, e.g.:\n"
                                f"  python train.py --dataset demo --out {path.parent}\n"
                                f"or pass a checkpoint of a supported encoder (a published ST-GCN classifier, an "
                                f"AimCLR encoder_q, ...).")
    if path.stat().st_size == 0:
        raise CheckpointMismatchError(f"checkpoint {path} is empty (0 bytes): copy or download it again")
    try:
        with warnings.catch_warnings(action="ignore"):  # torch warns about pickle protocols before it refuses
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        with open(path, "rb") as f:  # torch.save writes a zip archive (b"PK"); older versions a pickle (b"\x80")
            pickled = f.read(2)[:1] in (b"P", b"\x80")
        if pickled and "Weights only load failed" in str(error):
            found = re.search(r"GLOBAL ([\w.]+)", str(error))
            raise CheckpointMismatchError(
                f"refused to load {path}: it holds {found[1] if found else 'pickle data'} beyond what torch.load("
                "weights_only=True) reads (tensors and plain containers written by torch.save); unpickling anything "
                "else can run code. Save only state dicts: torch.save(model.state_dict(), path)") from None
        reason = re.split(r"\.\s+(?=[A-Z])|\n", str(error).strip())[0][:160] or "no details"  # its first sentence
        raise CheckpointMismatchError(f"{path} is not a PyTorch checkpoint, or it is damaged ({type(error).__name__}: "
                                      f"{reason}); pass a file torch.save wrote, e.g. train.py's encoder.pt") from None


def unwrap_state_dict(checkpoint, source="the checkpoint"):
    """Accept a bare state dict, {'state_dict': ...}, {'model': ...}, and strip DataParallel's 'module.' prefix."""
    for wrapper in ("state_dict", "model", "encoder"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(wrapper), dict):
            checkpoint = checkpoint[wrapper]
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(f"{source}: expected a state dict, found {type(checkpoint).__name__}")
    return OrderedDict((k[len("module."):] if k.startswith("module.") else k, v) for k, v in checkpoint.items())


def state_of(path_or_state):
    """(state dict, the name messages use for it) of a checkpoint path or an already loaded checkpoint."""
    if isinstance(path_or_state, dict):
        return unwrap_state_dict(path_or_state, "state dict"), "state dict"
    return unwrap_state_dict(read_checkpoint(path_or_state), str(path_or_state)), str(path_or_state)


def encoder_part(state):
    """The encoder's own keys of a pretraining checkpoint: train.py's checkpoint_*.pt keep them under `encoder.` next
    to `heads.` (its C2VLModel), MoCo-style codebases (AimCLR, CrosSCLR, ISC, CMD) under `encoder_q.`, whose `fc`
    is the projection head and is dropped. Any other state dict is returned as it is (ISC's GRU has keys of its own
    that begin with `encoder.gru.`)."""
    if any(k.startswith("heads.") for k in state):
        return OrderedDict((k[len("encoder."):], v) for k, v in state.items() if k.startswith("encoder."))
    if any(k.startswith("encoder_q.") for k in state):
        return OrderedDict((k[len("encoder_q."):], v) for k, v in state.items()
                           if k.startswith("encoder_q.") and not k.startswith("encoder_q.fc."))
    return state


def _key_list(keys, limit=20):
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown


def load_checkpoint(model, path_or_state, source=None):
    """Load a checkpoint (path or state dict) into model strictly; any missing, unexpected or mis-shaped key raises
    CheckpointMismatchError with the key names."""
    state, name = state_of(path_or_state)
    source = source or name
    expected = model.state_dict()
    missing = expected.keys() - state.keys()
    unexpected = state.keys() - expected.keys()
    misshaped = [f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
                 for k in expected.keys() & state.keys()
                 if hasattr(state[k], "shape") and state[k].shape != expected[k].shape]
    if missing or unexpected or misshaped:
        lines = [f"checkpoint {source} does not match {type(model).__name__}:"]
        if missing:
            lines.append(f"  missing keys: {_key_list(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys: {_key_list(unexpected)}")
        if misshaped:
            lines.append(f"  shape mismatches: {_key_list(misshaped)}")
        raise CheckpointMismatchError("\n".join(lines))
    model.load_state_dict(state, strict=True)
    return model


def size_by_width(state, key, axis, widths: dict, encoder: str, source="the checkpoint") -> str:
    """The size name {name: width} whose width is dimension `axis` of the weight `key` of a state dict; a state
    without that weight gives the first size (its strict load then lists the keys), another width a named error."""
    weight = state.get(key)
    if weight is None:
        return next(iter(widths))
    names = {width: name for name, width in widths.items()}
    width = int(weight.shape[axis])
    if width not in names:
        expected = " or ".join(f"{w} ({n})" for n, w in widths.items())
        raise CheckpointMismatchError(f"cannot tell the {encoder} size from {source}: {key} has width {width} "
                                      f"(expected {expected})")
    return names[width]


def feature_extractor(build, state, source, classifier_weight: str, classifier: str):
    """An encoder built by build(num_class) with the classifier the state holds (its weight `classifier_weight`,
    or none), the state loaded strictly, then the classifier (attribute `classifier`) dropped: f alone."""
    weight = state.get(classifier_weight)
    encoder = build(int(weight.shape[0]) if weight is not None else None)
    load_checkpoint(encoder, state, source)
    setattr(encoder, classifier, None)
    encoder.num_class = None
    return encoder



def upgrade_teacher_bank(state, prefix=""):
    """A teacher bank (distill.TeacherBank) saved with its former buffers loads, in place: `Z_m` -> `Zt_m`, and
    `stamp` (the write step of each row, 0: never) with `step` (the writes so far) -> `written_in` (the epoch of each
    row's write).

    Checkpoints are written at the end of an epoch, and every epoch writes the same K steps of N rows (the sampler
    drops the last partial batch), so the write at step s belongs to epoch ceil(s / K). The last step's N rows all
    survive, and the rows ever written are the last epoch's K N plus fewer than N that it skipped:
    K = (rows written) // N. (A run cut short by --max_steps breaks the rule.)
    """
    for m in ("vision", "language"):
        if prefix + f"Z_{m}" in state:
            state[prefix + f"Zt_{m}"] = state.pop(prefix + f"Z_{m}")
    if prefix + "stamp" not in state:
        return
    stamp = state.pop(prefix + "stamp")  # (num_samples,) int64
    state.pop(prefix + "step", None)
    written = stamp > 0
    N = int((stamp == stamp.max()).sum()) if bool(written.any()) else 1  # rows per write (the global batch)
    K = max(int(written.sum()) // N, 1)  # writes per epoch
    state[prefix + "written_in"] = torch.where(written, (stamp + K - 1) // K, 0)  # ceil(s / K), 0: never
