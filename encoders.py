"""The skeleton encoder f, chosen by name: ST-GCN, the GRU or the Transformer (docs/method.md §8).

C2VL's paper trains three kinds of skeleton encoder with its method and compares them. Each lives in its own file,
built with the parameter names of the reference code the field reuses, so that published weights load strictly.
This file is where one of them is chosen, for a new run or for a checkpoint:

    --encoder      file                                       reference                       f(x)
    stgcn          skeleton_gcn.STGCN                         ST-GCN (Yan et al., AAAI 2018)   (N, 256)
    gru            skeleton_gru.SkeletonGRU                   ISC's BIGRU (Thoker et al. 2021) (N, 2 * hidden)
    transformer    skeleton_transformer.SkeletonTransformer   MAMP (Mao et al., ICCV 2023)     (N, D), D its width

    make_encoder(kind, size, frames, gru_stepping)   a new f of train.py's --encoder, --size and --gru_stepping,
                                                     for inputs of T = frames frames
    build_encoder(checkpoint)                        f with the weights of a checkpoint: its kind read from its keys
                                                     (encoder_kind), its width from its shapes (each from_state)

The GRU's stepping (skeleton_gru.py: the whole sequence in one pass, or ISC's one frame at a time) is not in its
weights but changes its feature, so it travels beside them: train.py --gru_stepping records it in heads.pt, and
build_encoder reads it there (recorded_stepping). Weights that come without a run of train.py (ISC's, CMD's) get
ISC's stepping, the one their features were computed with.

The checkpoints build_encoder reads: train.py's encoder.pt and checkpoint_*.pt, a published classifier (ST-GCN's;
its classifier is dropped), a MoCo-style pretraining checkpoint (AimCLR's, CrosSCLR's, ISC's, CMD's `encoder_q.`,
without its projection) and MAMP's (without its decoder).
Not here: the encoders themselves (skeleton_gcn.py, skeleton_gru.py, skeleton_transformer.py), reading checkpoint
files (utils/checkpoints.py), evaluating f (evaluate.py).
"""
from skeleton_gcn import STGCN
from skeleton_gru import STEPPINGS, SkeletonGRU  # noqa: F401 (train.py's --gru_stepping choices)
from skeleton_transformer import SkeletonTransformer, check_patches
from utils.checkpoints import encoder_part, state_of
from utils.runs import pretraining_info

ENCODERS = {"stgcn": STGCN, "gru": SkeletonGRU, "transformer": SkeletonTransformer}  # train.py --encoder -> f


def make_encoder(kind="stgcn", size="standard", frames=50, gru_stepping="sequence"):
    """A new f of train.py's --encoder, --size and --gru_stepping, for inputs of `frames` frames (the Transformer's
    patches: a multiple of 4, check_frames)."""
    if kind == "transformer":
        return SkeletonTransformer(size=size, frames=frames)
    if kind == "gru":
        return SkeletonGRU(size=size, stepping=gru_stepping)
    return ENCODERS[kind](size=size)


def check_frames(kind, frames):
    """train.py's and evaluate.py's --frames for an encoder of `kind`: ST-GCN and the GRU read any T, the Transformer
    whole 4-frame patches (a ValueError naming --frames otherwise)."""
    if kind == "transformer":
        check_patches(frames)


def encoder_kind(state) -> str:
    """Which encoder a state dict holds, by the keys of each one's reference code."""
    if "joints_embed.proj.weight" in state:
        return "transformer"  # MAMP's
    if any(k.startswith("encoder.gru.") for k in state):
        return "gru"  # ISC's BIGRU
    return "stgcn"  # a state of anything else fails ST-GCN's strict load, which lists its keys


def recorded_stepping(info: dict) -> str:
    """The GRU stepping of a checkpoint, from what utils.runs.pretraining_info found beside it: the run's
    --gru_stepping; a run that does not record one trained the whole-sequence pass; no run at all: ISC's."""
    return info.get("gru_stepping") or ("sequence" if info else "frame")


def build_encoder(path_or_state, size="auto", gru_stepping=None):
    """f from a checkpoint, loaded strictly: train.py's encoder.pt or checkpoint_*.pt (the `encoder.` part of its
    model), a published classifier (its classifier is dropped after the strict load) or a MoCo-style pretraining
    checkpoint (`encoder_q.`, without its projection `fc`). Which encoder it is (ST-GCN, GRU, Transformer) and its
    width come from its keys and shapes; a GRU's stepping is gru_stepping, or (None) what the run beside the file
    records (a state dict has none beside it: ISC's)."""
    state, source = state_of(path_or_state)
    state = encoder_part(state)
    kind = encoder_kind(state)
    if kind == "gru":
        info = {} if isinstance(path_or_state, dict) else pretraining_info(path_or_state)
        return SkeletonGRU.from_state(state, source, size, gru_stepping or recorded_stepping(info))
    return ENCODERS[kind].from_state(state, source, size)
