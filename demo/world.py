"""The demo dataset: a small synthetic NTU RGB+D, made in seconds from a seed, read by the same code as NTU.

15 actions (data.DEMO_CLASSES) x 12 subjects x 3 cameras x 2 replications = 1080 samples, named like NTU
(SsssCcccPpppRrrrAaaa, xsub/xview by NTU-60's rules). Each performance (demo/motion.py) is seen by three cameras
at 0 and +-45 degrees, with sensor noise, dropped frames, tracking glitches and the occasional bystander, and
written as a real `.skeleton` file that tools/raw_skeletons.py converts like any NTU file. Each sample also gets 16
noisy LLaVA-style answers in C2VL's released format; demo/frames.py renders its RGB frames.

    python demo/world.py        # = prepare_demo(): datasets/demo/{raw, demo_language.json, xsub, xview}
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Run as a script (python demo/world.py): the project's modules live in the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from data import DATASETS, DEMO_CLASSES, NUM_JOINTS, PARTS, load_split, split_dir  # noqa: E402
from demo.motion import DEMO_FPS, demo_joints, demo_motion, demo_subject, rotation  # noqa: E402
from tools.ntu_names import parse_ntu_name  # noqa: E402
from tools.raw_skeletons import convert_ntu, parallel_map  # noqa: E402
from utils.config import add_arguments, from_args, setting  # noqa: E402
from utils.files import atomic_path, write_text  # noqa: E402

# 12 subjects: xsub trains on 1, 2, 4, 5, 8, 9 (NTU-60's rule) and tests on the other six, 540 samples each; test
# samples need no prompts, so the test part is as large as the training part to keep the measurement noise down.
DEMO_SUBJECTS, DEMO_CAMERAS, DEMO_REPLICATIONS = 12, 3, 2
DEMO_VERSION = 4  # bump whenever the generator changes: prepare_demo then regenerates
DEMO_FRAME_SIZE = (480, 270)  # rendered RGB frames; colorX/colorY stay in 1920x1080 units
KINECT_COLOR = (1081.37, 959.5, 539.5)  # focal length and principal point of the 1920x1080 colour camera
KINECT_DEPTH = (365.5, 255.5, 211.5)    # ... and of the 512x424 depth camera
_DEMO_SETUPS = {1: (1.00, 3.0, -2.0), 2: (1.25, 3.4, -5.0), 3: (0.85, 2.7, -1.0)}  # camera height, distance, pitch
_DEMO_CAMERA_YAW = {1: 0.0, 2: 45.0, 3: -45.0}  # NTU's three cameras at 0 and +-45 degrees
_DEMO_FACING = {1: 15.0, 2: -15.0, 3: 5.0, 4: -5.0}  # the performer turns towards one side in each replication
_DEMO_SECONDS = (2.6, 2.6, 3.2, 2.4, 2.6, 2.6, 2.4, 2.4, 3.0, 2.8, 2.4, 3.0, 3.4, 2.4, 2.4)  # at speed 1


def demo_names(replications: int = DEMO_REPLICATIONS) -> list[str]:
    """All demo sample names, sorted: 12 subjects x 3 cameras x 2 replications x 15 actions = 1080 (a world of 4
    replications, `python demo/world.py --replications 4`, holds these and 1080 more)."""
    if replications not in _DEMO_FACING:
        raise ValueError(f"the demo world has 1 to {len(_DEMO_FACING)} replications, not {replications}")
    return sorted(f"S{_demo_setup(p):03d}C{c:03d}P{p:03d}R{r:03d}A{a:03d}"
                  for p in range(1, DEMO_SUBJECTS + 1) for c in range(1, DEMO_CAMERAS + 1)
                  for r in range(1, replications + 1) for a in range(1, len(DEMO_CLASSES) + 1))


def _demo_setup(subject: int) -> int:
    return (subject - 1) % len(_DEMO_SETUPS) + 1


# Recording: the body in Kinect v2 camera space, projected like its depth and colour cameras, as `.skeleton` text.

def _to_camera(joints, yaw, position, camera_height, pitch) -> np.ndarray:
    """Body frame -> Kinect camera space (x, y up, z away from the sensor, metres). The body faces the sensor
    at yaw 0 (its forward axis is -z); `position` = (x, z) of the floor point under the pelvis."""
    face = np.diag([-1.0, 1.0, -1.0])
    R = rotation("x", np.full(1, pitch))[0] @ rotation("y", np.full(1, yaw))[0] @ face
    world = joints @ R.T + rotation("x", np.full(1, pitch))[0] @ np.array([position[0], -camera_height, position[1]])
    return world


def _project(xyz, camera) -> np.ndarray:
    """Pinhole projection (x, y, z) -> pixel (u, v) with v pointing down."""
    f, cx, cy = camera
    return np.stack([cx + f * xyz[..., 0] / xyz[..., 2], cy - f * xyz[..., 1] / xyz[..., 2]], axis=-1)


_JOINT_LINE = "%.5f %.5f %.5f %.4f %.4f %.3f %.3f 0 0 0 0 %d"
_JOINT_BLOCK = "\r\n".join([_JOINT_LINE] * NUM_JOINTS)


def _skeleton_text(bodies: list[dict], T: int) -> str:
    """NTU `.skeleton` text for bodies {id, xyz (T,25,3), present (T,), state (T,25)} (CRLF like the originals)."""
    for body in bodies:
        body["depth"], body["color"] = _project(body["xyz"], KINECT_DEPTH), _project(body["xyz"], KINECT_COLOR)
        body["values"] = np.concatenate([body["xyz"], body["depth"], body["color"], body["state"][..., None]],
                                        axis=-1).reshape(T, -1)  # (T, 25 * 8)
    out = [str(T)]
    for t in range(T):
        present = [b for b in bodies if b["present"][t]]
        out.append(str(len(present)))
        for b in present:
            lean = b["xyz"][t, 20, :2] - b["xyz"][t, 0, :2]
            out.append(f"{b['id']} 0 1 1 1 1 0 {lean[0]:.6f} {lean[1]:.6f} 2")
            out.append(str(NUM_JOINTS))
            out.append(_JOINT_BLOCK % tuple(b["values"][t].tolist()))
    return "\r\n".join(out) + "\r\n"


def generate_demo_sample(name: str, seed: int = 0) -> tuple[str, list[str]]:
    """One demo sample -> (its `.skeleton` text, its 16 LLaVA-style answers); a pure function of (name, seed).

    The three cameras of one performance see the same motion (as in NTU); camera yaw, joint noise, missing
    frames, tracking glitches and the answers differ per camera.
    """
    text, answers, _ = demo_recording(name, seed)
    return text, answers


def demo_recording(name: str, seed: int = 0) -> tuple[str, list[str], np.ndarray]:
    """generate_demo_sample's text and answers, and how active the performer is (0..1) at the 16 answered frames
    np.linspace(0, T - 1, 16) (demo/corpus.py captions frames by it)."""
    n = parse_ntu_name(name)
    action = n.action - 1
    subject = demo_subject(seed, n.subject)
    perform = np.random.default_rng([seed, 2, n.setup, n.subject, n.replication, n.action])
    record = np.random.default_rng([seed, 3, n.setup, n.camera, n.subject, n.replication, n.action])
    speed = perform.uniform(0.75, 1.3)
    T = int(np.clip(round(_DEMO_SECONDS[action] * DEMO_FPS / (speed * subject.tempo)), 36, 160))
    motion = demo_motion(action, T, perform, subject, speed)
    camera_height, distance, pitch = _DEMO_SETUPS[n.setup]
    yaw = _DEMO_CAMERA_YAW[n.camera] + _DEMO_FACING[n.replication] + perform.normal(0, 6)
    position = (perform.uniform(-0.4, 0.4), distance + perform.uniform(-0.3, 0.3))
    actor = {"id": str(72057594037927936 + 1000 * n.subject + 17 * n.replication + n.action),
             "xyz": _to_camera(demo_joints(motion, subject.lengths), yaw, position, camera_height, pitch),
             "present": np.ones(T, bool), "state": np.full((T, NUM_JOINTS), 2.0)}
    bodies = [actor]
    if perform.random() < 0.08:  # a bystander standing at the back
        other = demo_subject(seed, n.subject % DEMO_SUBJECTS + 1)
        still = demo_motion(-1, T, perform, other, 1.0)
        side = perform.choice([-1.0, 1.0])
        bystander = {"id": str(72057594037927936 + 999), "present": np.ones(T, bool),
                     "xyz": _to_camera(demo_joints(still, other.lengths), yaw + perform.normal(0, 20),
                                       (position[0] + side * 1.1, position[1] + 1.2), camera_height, pitch),
                     "state": np.full((T, NUM_JOINTS), 2.0)}
        bodies.insert(int(perform.integers(2)), bystander)
    for body in bodies:  # sensor noise: jitter everywhere, more on hand tips, thumbs and feet
        body["xyz"] = body["xyz"] + record.normal(0, 0.01, body["xyz"].shape)
        body["xyz"][:, [15, 19, 21, 22, 23, 24]] += record.normal(0, 0.02, (T, 6, 3))
    if record.random() < 0.1:  # a tracking glitch: one extremity jumps for a few frames, marked "inferred"
        joints = [(6, 7, 21, 22), (10, 11, 23, 24), (14, 15), (18, 19)][record.integers(4)]
        start, length = int(record.integers(0, T - 6)), int(record.integers(2, 6))
        actor["xyz"][start:start + length, list(joints)] += record.normal(0, 0.15, 3)
        actor["state"][start:start + length, list(joints)] = 1
    if record.random() < 0.35:  # dropped frames: the sensor lists no body
        for body in bodies:
            body["present"][record.integers(1, T - 1, record.integers(1, 4))] = False
    if record.random() < 0.15:
        for body in bodies:
            body["present"][:record.integers(1, 6)] = False
    frames = np.linspace(0, T - 1, 16).round().astype(int)
    answers = _demo_answers(action, motion["activity"][frames], subject.pronoun, record)
    return _skeleton_text(bodies, T), answers, motion["activity"][frames]


# Answer templates for the LLaVA question of C2VL (what the person holds, their posture, what they try to do).
_POSTURES = (
    ("standing with {his} right arm raised", "raising {his} right hand", "standing and waving {his} right hand"),
    ("standing with {his} left arm raised", "raising {his} left hand", "standing and waving {his} left hand"),
    ("standing with both arms raised above {his} head", "raising both hands", "stretching {his} arms upwards"),
    ("standing with {his} hands together in front of {his} chest", "clapping", "standing with {his} hands joined"),
    ("squatting", "crouching down", "sitting down on the floor"),
    ("squatting", "getting up from a squat", "standing up"),
    ("standing on {his} left leg with {his} right leg raised", "lifting {his} right leg", "kicking"),
    ("standing on {his} right leg with {his} left leg raised", "lifting {his} left leg", "kicking"),
    ("jumping in the air", "in mid-air", "jumping"),
    ("bending forward at the waist", "bowing", "leaning forward"),
    ("standing with {his} fists raised", "throwing a punch with {his} right hand", "in a fighting stance"),
    ("walking", "marching in place", "standing with one knee lifted"),
    ("standing with {his} arms stretched out to the sides", "leaning to one side", "bending sideways"),
    ("standing with both hands on {his} head", "raising {his} hands to {his} head", "touching {his} head"),
    ("standing with both hands on {his} head", "lowering {his} hands from {his} head", "touching {his} head"),
)
_INTENTS = (
    ("waving to someone", "trying to get someone's attention", "greeting someone", "saying hello"),
    ("waving to someone", "saying goodbye", "greeting someone", "trying to get someone's attention"),
    ("stretching {his} arms", "cheering", "reaching for something above {him}"),
    ("clapping {his} hands", "applauding someone", "celebrating something"),
    ("sitting down", "trying to sit on the floor", "lowering {him}self to the ground"),
    ("standing up", "getting up from the floor", "trying to stand up"),
    ("kicking something", "practicing a kick", "exercising {his} legs"),
    ("kicking something", "practicing a kick", "exercising {his} legs"),
    ("jumping up and down", "exercising", "trying to reach something high"),
    ("bowing to greet someone", "showing respect", "looking at something on the floor"),
    ("boxing", "practicing martial arts", "punching the air"),
    ("walking across the room", "exercising", "marching"),
    ("stretching {his} body", "doing a warm-up exercise", "exercising"),
    ("putting on a hat", "adjusting {his} hat", "fixing {his} hair"),
    ("taking off {his} hat", "adjusting {his} hat", "scratching {his} head"),
)
_NEUTRAL_POSTURES = ("standing", "standing still", "standing with {his} arms at {his} sides",
                     "standing in the middle of a room")
_WRONG_POSTURES = ("sitting on a chair", "kneeling on the floor", "leaning against a wall", "lying on the floor")
_VAGUE_INTENTS = ("trying to do something", "engaged in some kind of activity", "possibly waiting for someone",
                  "trying to perform an action", "maybe trying to communicate something", "posing for the camera")
_OBJECTS = ("a cell phone", "a remote control", "a cup", "a water bottle", "a book", "a piece of paper", "a towel",
            "a pen", "a bag")


# The fixed words of the answer forms below (the demo CLIP ships the embedding rows of every word its texts use).
ANSWER_WORDS = ("{He} is holding a thing in {his} hand.", "{He} is standing and holding it.", "The person is here.",
                "It looks like {he} is here.", "{He} is not holding anything.")


def _demo_answers(action: int, activity: np.ndarray, pronoun: str, rng) -> list[str]:
    """16 answers in temporal order, one per sampled frame, with LLaVA's kinds of mistakes: objects that are not
    there, wrong postures, vague or wrong intentions, left/right swaps, and repeating itself."""
    words = {"he": "he", "his": "his", "him": "him"} if pronoun == "he" else {"he": "she", "his": "her", "him": "her"}
    He = words["he"].capitalize()
    answers = []
    for k, level in enumerate(activity):
        if answers and rng.random() < 0.2:
            answers.append(answers[-1])
            continue
        active = level > 0.35
        posture = rng.choice(_POSTURES[action] if active else _NEUTRAL_POSTURES)
        if rng.random() < 0.12:
            posture = rng.choice(_WRONG_POSTURES)
        draw = rng.random()
        if draw < 0.3 or (not active and draw < 0.6):
            intent = rng.choice(_VAGUE_INTENTS)
        elif draw < 0.4:
            intent = rng.choice(_INTENTS[rng.integers(len(_INTENTS))])
        else:
            intent = rng.choice(_INTENTS[action])
        held = rng.choice(_OBJECTS) if rng.random() < 0.4 else None
        form = rng.integers(4)
        if held and form == 0:
            text = f"{He} is holding {held} in {{his}} hand. {He} is {posture}. {He} is {intent}."
        elif held:
            text = f"{He} is {posture} and holding {held} in {{his}} hand. {He} is {intent}."
        elif form < 2:
            text = f"{He} is {posture}. {He} is {intent}."
        elif form == 2:
            text = f"The person is {posture}. It looks like {{he}} is {intent}."
        else:
            text = f"{He} is not holding anything. {He} is {posture}."
        if rng.random() < 0.2:
            text = text.replace("left", "\0").replace("right", "left").replace("\0", "right")
        answers.append(text.format(**words))
    return answers


def _write_demo_task(task) -> tuple[str, list[str]]:
    raw_dir, seed, name = task
    text, answers = generate_demo_sample(name, seed)
    with atomic_path(Path(raw_dir) / f"{name}.skeleton") as tmp:
        tmp.write_bytes(text.encode("ascii"))
    return name, answers


def _demo_meta(seed: int, replications: int) -> dict:
    return {"version": DEMO_VERSION, "seed": seed, "replications": replications,
            "samples": len(demo_names(replications)), "classes": list(DEMO_CLASSES), "frame_size": list(DEMO_FRAME_SIZE)}


def prepare_demo(data_root="datasets", seed: int | None = None, replications: int | None = None,
                 workers: int | None = None) -> Path:
    """Generate (if missing) the demo: raw `.skeleton` files in datasets/demo/raw/, the answers
    datasets/demo/demo_language.json ({name: [16 answers]}, C2VL's released format), and the xsub/xview splits
    with their default training caches. Idempotent; byte-identical for the same seed and replications.
    seed / replications None: those of the demo already in data_root (so a world made with `python demo/world.py
    --seed 1 --replications 4` stays that world when train.py prepares its prompts), else 0 / DEMO_REPLICATIONS."""
    root = Path(data_root) / "demo"
    meta_path = root / "demo_meta.json"
    on_disk = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    seed = on_disk.get("seed", 0) if seed is None else seed
    replications = on_disk.get("replications", DEMO_REPLICATIONS) if replications is None else replications
    meta = _demo_meta(seed, replications)
    ready = all((split_dir(data_root, "demo", s) / f"{p}_data.aimclr_T50.npy").is_file()
                for s in DATASETS["demo"] for p in PARTS) and (root / "demo_language.json").is_file()
    if ready and meta_path.is_file() and json.loads(meta_path.read_text()) == meta:
        return root
    started = time.perf_counter()
    meta_path.unlink(missing_ok=True)
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    names = demo_names(replications)
    for stale in set(p.stem for p in raw.glob("*.skeleton")) - set(names):  # from an older demo version
        (raw / f"{stale}.skeleton").unlink()
    answers = dict(parallel_map(_write_demo_task, [(raw, seed, n) for n in names], workers,
                                "generate demo", unit="sample"))
    write_text(root / "demo_language.json", json.dumps({n: answers[n] for n in names}, indent=1))
    convert_ntu(raw, data_root, datasets=("demo",), workers=workers, force=True)  # regenerating replaces it
    for split in DATASETS["demo"]:
        for part in PARTS:
            load_split(data_root, "demo", split, part)  # builds the default (aimclr, T = 50) caches
    write_text(meta_path, json.dumps(meta, indent=1))
    print(f"demo dataset: {len(names)} samples, {len(DEMO_CLASSES)} classes in {root} "
          f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return root


@dataclass
class DemoConfig:
    """Every setting of `python demo/world.py`; each field is a flag of the same name."""
    data_root: str = setting("datasets", "where datasets/demo/ is written")
    seed: int = setting(0, "seed of the demo world")
    replications: int = setting(DEMO_REPLICATIONS, "performances per subject, camera and action (1-4); 4 doubles "
                                "both parts (docs/training.md, the demo's seed spread)")
    workers: int | None = setting(None, "generator and parser processes (default: all cores)", kind=int)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python demo/world.py", description="generate the demo dataset "
                                     "(deterministic): raw .skeleton files, LLaVA-style answers, xsub and xview")
    config = from_args(DemoConfig, add_arguments(parser, DemoConfig).parse_args(argv))
    print(prepare_demo(config.data_root, config.seed, config.replications, config.workers))


if __name__ == "__main__":
    main()
