"""Imports that can fail on a user's machine, each failing with the one command that fixes it.

- `import_open_clip`: open_clip (a requirement), with the one work-around for a torchvision that does not match torch,
  and the project's architectures (resources/open_clip/*.json) registered;
- `import_transformers`, `import_av`: the optional LMM extra (requirements-lmm.txt), imported only when a command
  asks for Grounding DINO / LLaVA (tools/generate_prompts.py) or for frames from video files (utils/frames.py);
- `quiet_root_logger`: third-party log lines that would read as a failure (open_clip's) kept out of the way.

Not a paper concept: plumbing for prompts.py, tools/generate_prompts.py and utils/frames.py.
"""
import contextlib
import logging
import sys
from pathlib import Path

import torch

LMM_EXTRA = "pip install -r requirements-lmm.txt"
OPEN_CLIP_CONFIGS = Path(__file__).resolve().parent.parent / "resources" / "open_clip"  # <architecture>.json files


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names what needs it and the pip command."""


_TORCHVISION_SCHEMAS = None  # keeps the torch.library.Library alive: dropping it would drop the declared schemas


def import_open_clip():
    """Import open_clip (and thereby torchvision); returns the open_clip module.

    Why: a CUDA build of torchvision 0.28 next to a CPU-only torch fails on import with
    "operator torchvision::nms does not exist", because its compiled ops are not loaded and registering the fake
    (meta) kernels then needs the op schemas. Only in that case we declare the two schemas ourselves, drop the
    half-imported torchvision modules and import again. Nothing here runs torchvision's detection ops.
    """
    global _TORCHVISION_SCHEMAS
    try:
        import torchvision  # noqa: F401
    except RuntimeError as err:
        if "torchvision::nms does not exist" not in str(err):
            raise
        _TORCHVISION_SCHEMAS = torch.library.Library("torchvision", "DEF")
        _TORCHVISION_SCHEMAS.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _TORCHVISION_SCHEMAS.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
    except ImportError:
        pass  # open_clip imports torchvision itself and then says what is missing
    try:
        import open_clip
    except ImportError as err:
        raise MissingExtraError(f"CLIP needs open_clip ({err}): pip install -r requirements.txt") from err
    if "c2vl-demo-tiny" not in open_clip.list_models():
        open_clip.add_model_config(OPEN_CLIP_CONFIGS)  # the project's own architectures, e.g. the demo's CLIP
    return open_clip


def import_transformers():
    """Hugging Face transformers (Grounding DINO, LLaVA), after the torchvision work-around its vision models need."""
    import_open_clip()
    try:
        import transformers
    except ImportError as err:
        raise MissingExtraError(f"--detector and --llava need Hugging Face transformers, which is not installed: "
                                f"{LMM_EXTRA}") from err
    return transformers


def import_av():
    """PyAV, the decoder of video files (.avi/.mp4)."""
    try:
        import av
    except ImportError as err:
        raise MissingExtraError(f"reading videos needs PyAV, which is not installed: {LMM_EXTRA} (or extract the "
                                "frames to <sample>/ folders and pass their parent with --frames)") from err
    return av


@contextlib.contextmanager
def quiet_root_logger():
    """Messages of the root logger below CRITICAL are dropped inside the block: open_clip logs "No pretrained weights
    loaded ... Model initialized randomly" when random weights are asked for, and an "ERROR:root:" line before a
    failure that prompts.load_clip explains in its own message."""
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(previous)
