"""The demo's synthetic performers and how they move: joint angles per action, then forward kinematics.

A performer (DemoSubject) has body proportions, a tempo, a personal style and an appearance, all drawn from the
seed. One performance of an action is a set of joint-angle curves over T frames (demo_motion), which forward
kinematics turns into the 25 Kinect v2 joints in the body frame (demo_joints). demo/world.py places the body in
front of the cameras and writes the `.skeleton` files; demo/frames.py renders the person.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from data import DEMO_CLASSES, NUM_JOINTS

DEMO_FPS = 30  # as Kinect v2 records
# Segment lengths (metres) of an average performer; demo_subject scales them per performer.
_SEGMENTS = dict(spine1=0.22, spine2=0.25, neck=0.07, head=0.13, shoulder=0.17, upper_arm=0.28, forearm=0.25,
                 hand=0.08, tip=0.07, thumb=0.045, hip=0.09, thigh=0.42, shin=0.41, ankle=0.08, foot=0.13)


@dataclasses.dataclass(frozen=True)
class DemoSubject:
    """A synthetic performer: body proportions, motion style and appearance (all drawn from the seed)."""
    lengths: dict
    tempo: float
    vigour: float
    pronoun: str
    shirt: tuple
    pants: tuple
    skin: tuple
    long_sleeves: bool
    style: tuple   # personal offsets (degrees) of abduction, flexion, elbow bend whenever an action moves an arm
    slouch: float  # constant forward lean of the torso (degrees)


def demo_subject(seed: int, subject: int) -> DemoSubject:
    """Performer number `subject` (1-based): the same in every sample of that subject."""
    rng = np.random.default_rng([seed, 1, subject])
    scale, arm, leg, width = rng.uniform(0.88, 1.08), *rng.uniform(0.93, 1.07, 3)
    group = {"upper_arm": arm, "forearm": arm, "hand": arm, "thigh": leg, "shin": leg, "shoulder": width,
             "hip": width}
    lengths = {k: v * scale * group.get(k, 1.0) for k, v in _SEGMENTS.items()}
    skin = tuple(int(c) for c in np.array([224, 172, 140]) * rng.uniform(0.55, 1.05))
    return DemoSubject(lengths, rng.uniform(0.85, 1.15), rng.uniform(0.85, 1.1), ("he", "she")[rng.integers(2)],
                       tuple(int(c) for c in rng.integers(30, 230, 3)), tuple(int(c) for c in rng.integers(20, 140, 3)),
                       skin, bool(rng.random() < 0.5), tuple(rng.normal(0, [12.0, 12.0, 15.0])),
                       rng.uniform(0, 12))


_DEMO_ARM_BASE = np.array([7.0, 4.0, 12.0])  # arm hanging: abduction, flexion, elbow bend (degrees)
_DEMO_REST_POSES = ((7.0, 4.0, 12.0), (-12.0, 20.0, 60.0), (-15.0, 15.0, 125.0), (-5.0, -25.0, 40.0))


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _plateau(w, ramp=0.2):
    """0 -> 1 -> 0 over the action's progress w in [0, 1], flat in the middle."""
    return _smoothstep(w / ramp) * _smoothstep((1 - w) / ramp)


def _bumps(w, reps, lo=0.1, hi=0.9):
    """`reps` smooth bumps over w in [0, 1] (one per repetition of a discrete action)."""
    s = (w * reps) % 1.0
    inside = (s > lo) & (s < hi) & (w > 0) & (w < 1)
    return np.where(inside, np.sin(np.pi * (s - lo) / (hi - lo)) ** 2, 0.0)


def _drift(rng, t, amplitude):
    """Slow idle motion: two random low-frequency sinusoids."""
    f, phase, a = rng.uniform(0.1, 0.6, 2), rng.uniform(0, 2 * np.pi, 2), rng.uniform(0.3, 1.0, 2) * amplitude
    return (a[:, None] * np.sin(2 * np.pi * f[:, None] * t + phase[:, None])).sum(axis=0)


def _squat_legs(depth, lengths):
    """Hip flexion = half the knee bend that lowers the pelvis by `depth` with the feet under the hips."""
    kappa = np.degrees(np.arccos(np.clip(1 - depth / (lengths["thigh"] + lengths["shin"]), -1, 1)))
    return kappa, 2 * kappa


def demo_motion(action: int, T: int, rng, subject: DemoSubject, speed: float) -> dict:
    """Joint angles (degrees) and pelvis offsets (metres) per frame for one performance of `action`.

    arm_*: (abduction, flexion, elbow bend); leg_*: (hip flexion, abduction, knee bend); torso: (bow, lean,
    twist); pelvis: (dx, dy, dz). `activity` in [0, 1] says how visible the action is in each frame.
    "stand up" and "take off a hat" are "sit down" and "put on a hat" played backwards: they share every
    per-joint statistic with their partner and differ only in temporal order (as NTU's such pairs do).
    """
    t = np.arange(T) / DEMO_FPS
    u = np.arange(T) / max(T - 1, 1)
    a0, a1 = rng.uniform(0.02, 0.3), rng.uniform(0.7, 0.98)
    w = np.clip((u - a0) / (a1 - a0), 0, 1)  # progress of the action
    env = _plateau(w)
    amp = rng.uniform(0.6, 1.25) * subject.vigour
    phase = rng.uniform(0, 2 * np.pi)
    L = subject.lengths

    def cycle(hz):
        return np.sin(2 * np.pi * hz * speed * subject.tempo * t + phase)

    m = {"arm_l": np.tile(_DEMO_ARM_BASE, (T, 1)), "arm_r": np.tile(_DEMO_ARM_BASE, (T, 1)),
         "leg_l": np.tile([0.0, 3.0, 0.0], (T, 1)), "leg_r": np.tile([0.0, 3.0, 0.0], (T, 1)),
         "torso": np.zeros((T, 3)), "pelvis": np.zeros((T, 3))}
    kind = DEMO_CLASSES[action] if action >= 0 else "stand still"
    reverse = kind in ("stand up", "take off a hat")
    kind = {"stand up": "sit down", "take off a hat": "put on a hat"}.get(kind, kind)
    act_arm, free_arm = ("arm_r", "arm_l") if "right" in kind else ("arm_l", "arm_r")
    act_leg = "leg_r" if "right" in kind else "leg_l"
    activity, zero = env, np.zeros(T)
    use = {"arm_l": zero, "arm_r": zero}  # how much the action (rather than the resting pose) drives each arm
    if kind.startswith("wave"):  # arm up and out, forearm swinging
        A = m[act_arm]
        A[:, 0] = 7 + (70 + 20 * amp) * env
        A[:, 1] = 4 + 20 * env
        A[:, 2] = 12 + env * (60 + 30 * amp * cycle(1.8))
        use = {act_arm: env, free_arm: zero}
    elif kind == "raise both arms":  # above the head and down again, once or twice
        b = _bumps(w, rng.integers(1, 3))
        for side in ("arm_l", "arm_r"):
            m[side][:, 0] = 7 + 12 * b
            m[side][:, 1] = 4 + 150 * min(amp, 1.15) * b
        activity = use["arm_l"] = use["arm_r"] = b
    elif kind == "clap hands":  # arms forward, hands meeting and parting
        opening = 0.5 + 0.5 * cycle(2.2)
        for side in ("arm_l", "arm_r"):
            m[side][:, 0] = 7 + env * (-24 + 34 * opening * amp)
            m[side][:, 1] = 4 + 66 * env
            m[side][:, 2] = 12 + 38 * env
        use = {"arm_l": env, "arm_r": env}
    elif kind == "sit down":  # lower into a deep squat and stay there, arms forward for balance
        s = _smoothstep(w)
        depth = 0.45 * min(amp, 1.1) * s
        kappa, bend = _squat_legs(depth, L)
        for side in ("leg_l", "leg_r"):
            m[side][:, 0], m[side][:, 2] = kappa, bend
        m["pelvis"][:, 1], m["pelvis"][:, 2] = -depth, -0.2 * depth
        m["torso"][:, 0] = 20 * s
        for side in ("arm_l", "arm_r"):
            m[side][:, 1] = 4 + 50 * s
        activity = use["arm_l"] = use["arm_r"] = s
    elif kind.startswith("kick"):  # knee up, leg extends at the top, lean back
        k = _bumps(w, rng.integers(1, 3), 0.15, 0.85)
        m[act_leg][:, 0] = 85 * amp * k
        m[act_leg][:, 2] = 70 * 4 * k * (1 - k)
        m["torso"][:, 0] = -12 * k
        for side in ("arm_l", "arm_r"):
            m[side][:, 0] += 20 * k
        activity = np.clip(2 * k, 0, 1)
    elif kind == "jump up":  # two or three times: crouch, take off, land
        s = (w * rng.integers(2, 4)) % 1.0
        moving = (w > 0) & (w < 1)
        crouch = np.where(moving & (s < 0.3), 0.15 * np.sin(np.pi * s / 0.3), 0)
        air = np.where(moving & (s >= 0.3) & (s < 0.7), 0.25 * amp * np.sin(np.pi * (s - 0.3) / 0.4), 0)
        land = np.where(moving & (s >= 0.7), 0.1 * np.sin(np.pi * (s - 0.7) / 0.3), 0)
        kappa, bend = _squat_legs(crouch + land, L)
        for side in ("leg_l", "leg_r"):
            m[side][:, 0], m[side][:, 2] = kappa, bend
        m["pelvis"][:, 1] = air - crouch - land
        for side in ("arm_l", "arm_r"):
            m[side][:, 1] = 4 + 110 * np.clip(air / 0.25, 0, 1)
        activity = use["arm_l"] = use["arm_r"] = np.clip((air + crouch + land) * 8, 0, 1)
    elif kind == "bow":  # from the waist
        b = _bumps(w, 1, 0.05, 0.95)
        m["torso"][:, 0] = 55 * amp * b
        for side in ("arm_l", "arm_r"):
            m[side][:, 1] = 4 + 10 * b
        activity = b
    elif kind == "punch with right hand":  # guard with both fists, punch with the right
        for side in ("arm_l", "arm_r"):
            m[side][:, 0] = 7 + 5 * env
            m[side][:, 1] = 4 + 56 * env
            m[side][:, 2] = 12 + 103 * env
        punch = np.clip(cycle(1.4), 0, 1) ** 3 * env
        m["arm_r"][:, 1] += 26 * punch
        m["arm_r"][:, 2] -= 110 * punch
        m["torso"][:, 2] = -12 * punch
        use = {"arm_l": env, "arm_r": env}
    elif kind == "walk in place":  # alternate knees up, arms swinging opposite
        s = cycle(0.9) * env
        m["leg_l"][:, 0] = 38 * amp * np.clip(s, 0, None)
        m["leg_r"][:, 0] = 38 * amp * np.clip(-s, 0, None)
        m["leg_l"][:, 2], m["leg_r"][:, 2] = 2 * m["leg_l"][:, 0], 2 * m["leg_r"][:, 0]
        m["arm_r"][:, 1] = 4 + 22 * s
        m["arm_l"][:, 1] = 4 - 22 * s
        m["pelvis"][:, 1] = 0.02 * np.abs(s)
        use = {"arm_l": env, "arm_r": env}
    elif kind == "lean side to side":  # arms stretched out to the sides
        m["torso"][:, 1] = 22 * amp * cycle(0.55) * env
        for side in ("arm_l", "arm_r"):
            m[side][:, 0] = 7 + 75 * env
            m[side][:, 2] = 12 + 10 * env
        use = {"arm_l": env, "arm_r": env}
    elif kind == "put on a hat":  # both hands travel up to the head and stay there
        s = _smoothstep(w)
        for side in ("arm_l", "arm_r"):
            m[side][:, 0] = 7 + 25 * s
            m[side][:, 1] = 4 + 146 * s
            m[side][:, 2] = 12 + 100 * s
        activity = use["arm_l"] = use["arm_r"] = s
    if reverse:
        m = {k: v[::-1].copy() for k, v in m.items()}
        activity, use = activity[::-1].copy(), {k: v[::-1].copy() for k, v in use.items()}
    # Arms not driven by the action rest in a per-sample pose (hanging, hands clasped in front, arms folded,
    # hands behind the back): the static pose alone must not give the class away.
    rest = _DEMO_REST_POSES[rng.choice(len(_DEMO_REST_POSES), p=(0.45, 0.2, 0.15, 0.2))]
    for side in ("arm_l", "arm_r"):
        m[side] += (np.array(rest) + rng.normal(0, 6, 3) - _DEMO_ARM_BASE) * (1 - use[side])[:, None]
        m[side] += np.array(subject.style) * use[side][:, None]  # everyone waves, claps, punches a bit differently
    m["torso"][:, 0] += subject.slouch
    # Nuisance that every real recording has: idle drift of every angle, swaying, and sometimes a stray
    # gesture of a free hand (touching the face) that has nothing to do with the action.
    for side in ("arm_l", "arm_r"):
        for k in range(3):
            m[side][:, k] += _drift(rng, t, 6.0)
    for side in ("leg_l", "leg_r"):
        m[side][:, 1] += _drift(rng, t, 1.5)
    for k, amplitude in enumerate((2.0, 2.0, 3.0)):
        m["torso"][:, k] += _drift(rng, t, amplitude)
    m["pelvis"][:, 0] += _drift(rng, t, 0.02)
    m["pelvis"][:, 2] += _drift(rng, t, 0.02)
    if rng.random() < 0.45:
        arm = free_arm if kind.startswith("wave") else ("arm_l", "arm_r")[rng.integers(2)]
        start = rng.uniform(0.0, 0.6)
        g = _bumps(np.clip((u - start) / rng.uniform(0.25, 0.4), 0, 1), 1)
        m[arm] += g[:, None] * np.array([12.0, 100.0, 115.0])
    m["activity"] = activity
    return m



# Forward kinematics: joint angles -> the 25 joints in the body frame.

def rotation(axis: str, degrees) -> np.ndarray:
    """(T,) angles -> (T, 3, 3) rotations about x, y or z."""
    a = np.radians(np.asarray(degrees, dtype=np.float64))
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    rows = {"x": [[i, o, o], [o, c, -s], [o, s, c]], "y": [[c, o, s], [o, i, o], [-s, o, c]],
            "z": [[c, s, o], [-s, c, o], [o, o, i]]}[axis]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def _limb(alpha, phi, side):
    """Unit direction of a limb from abduction alpha and flexion phi (degrees); hanging down at (0, 0)."""
    a, f = np.radians(alpha), np.radians(phi)
    return np.stack([side * np.sin(a), -np.cos(a) * np.cos(f), np.cos(a) * np.sin(f)], axis=-1)


def _bend(u, beta):
    """Rotate unit vectors u (T, 3) by beta degrees towards 'up' (or 'forward' when u is vertical)."""
    up, forward = np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    n = up - (u @ up)[:, None] * u
    n_forward = forward - (u @ forward)[:, None] * u
    n = np.where((np.linalg.norm(n, axis=1) < 0.3)[:, None], n_forward, n)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    b = np.radians(beta)[:, None]
    return np.cos(b) * u + np.sin(b) * n


def demo_joints(m: dict, L: dict) -> np.ndarray:
    """Forward kinematics -> (T, 25, 3) joints in the body frame (x: the person's left, y: up, z: forward),
    origin on the floor under the standing pelvis."""
    T = len(m["torso"])
    J = np.zeros((T, NUM_JOINTS, 3))
    hip_height = L["ankle"] + L["thigh"] + L["shin"]
    pelvis = m["pelvis"] + np.array([0.0, hip_height, 0.0])
    R = rotation("y", m["torso"][:, 2]) @ rotation("z", -m["torso"][:, 1]) @ rotation("x", -m["torso"][:, 0])

    def torso_point(p):  # a point given in the torso frame -> body frame
        return pelvis + R @ np.asarray(p, dtype=np.float64)

    spine = L["spine1"] + L["spine2"]
    J[:, 0] = pelvis
    J[:, 1] = torso_point([0, L["spine1"], 0])
    J[:, 20] = torso_point([0, spine, 0])
    J[:, 2] = torso_point([0, spine + L["neck"], 0.01])
    J[:, 3] = torso_point([0, spine + L["neck"] + L["head"], 0.02])
    for side, (shoulder, elbow, wrist, hand, tip, thumb) in ((1, (4, 5, 6, 7, 21, 22)),
                                                             (-1, (8, 9, 10, 11, 23, 24))):
        alpha, phi, beta = m["arm_l" if side == 1 else "arm_r"].T
        upper = _limb(alpha, phi, side)
        lower = _bend(upper, beta)
        J[:, shoulder] = torso_point([side * L["shoulder"], spine - 0.03, 0])
        J[:, elbow] = J[:, shoulder] + L["upper_arm"] * (R @ upper[..., None])[..., 0]
        lower_world = (R @ lower[..., None])[..., 0]
        J[:, wrist] = J[:, elbow] + L["forearm"] * lower_world
        J[:, hand] = J[:, wrist] + L["hand"] * lower_world
        J[:, tip] = J[:, hand] + L["tip"] * lower_world
        inward = (R @ np.array([-side, 0.0, 0.6]))  # thumb points to the body's midline
        J[:, thumb] = J[:, hand] + L["thumb"] * inward / np.linalg.norm(inward, axis=-1, keepdims=True)
    for side, (hip, knee, ankle, foot) in ((1, (12, 13, 14, 15)), (-1, (16, 17, 18, 19))):
        kappa, abduction, bend = m["leg_l" if side == 1 else "leg_r"].T
        gamma = kappa - bend  # shin angle from vertical, forward positive
        J[:, hip] = pelvis + (rotation("y", m["torso"][:, 2] * 0.3) @ np.array([side * L["hip"], -0.04, 0.0]))
        J[:, knee] = J[:, hip] + L["thigh"] * _limb(abduction, kappa, side)
        J[:, ankle] = J[:, knee] + L["shin"] * _limb(abduction, gamma, side)
        g = np.radians(gamma)
        toe = np.stack([np.zeros(T), -np.sin(g) - 0.15 * np.cos(g), np.cos(g)], axis=-1)
        J[:, foot] = J[:, ankle] + L["foot"] * toe / np.linalg.norm(toe, axis=-1, keepdims=True)
    return J
