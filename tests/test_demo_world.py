"""The built-in demo dataset (demo/world.py, demo/motion.py) and its rendered frames (demo/frames.py)."""
import json
import time

import numpy as np
import pytest

import data
from demo import world
from demo.frames import demo_frame_source
from tools import ntu_names
from tools.raw_skeletons import read_skeleton


def test_demo_has_fifteen_classes_and_1080_samples_named_like_ntu(demo):
    root, _ = demo
    assert data.num_classes("demo") == len(data.class_names("demo")) == 15
    names = world.demo_names()
    assert len(names) == 1080 and names == sorted(names)
    subjects = {ntu_names.parse_ntu_name(n).subject for n in names}
    assert len(subjects) == 12 and {ntu_names.parse_ntu_name(n).camera for n in names} == {1, 2, 3}
    assert sorted(p.stem for p in (root / "demo" / "raw").glob("*.skeleton")) == names
    for split, (n_train, n_val) in {"xsub": (540, 540), "xview": (720, 360)}.items():
        train = data.load_split(root, "demo", split, "train")
        val = data.load_split(root, "demo", split, "val")
        assert (len(train), len(val)) == (n_train, n_val)
        assert sorted(train.names + val.names) == names
        assert all(ntu_names.ntu_is_train(n, "demo", split) for n in train.names)
        assert np.bincount(train.labels, minlength=15).min() > 0


def test_demo_generation_is_fast_and_idempotent(demo):
    root, elapsed = demo
    assert elapsed < 60
    cache = data.split_dir(root, "demo", "xsub") / "train_data.aimclr_T50.npy"
    before = cache.stat().st_mtime_ns
    started = time.perf_counter()
    world.prepare_demo(root, seed=0)
    assert time.perf_counter() - started < 1.0 and cache.stat().st_mtime_ns == before


def test_a_world_of_four_replications_holds_the_default_world_and_doubles_both_parts():
    default, larger = world.demo_names(), world.demo_names(4)
    assert len(larger) == 2160 and set(default) < set(larger)
    assert {ntu_names.parse_ntu_name(n).replication for n in set(larger) - set(default)} == {3, 4}
    for split, (n_train, n_val) in {"xsub": (1080, 1080), "xview": (1440, 720)}.items():
        n = sum(ntu_names.ntu_is_train(name, "demo", split) for name in larger)
        assert (n, len(larger) - n) == (n_train, n_val)
    with pytest.raises(ValueError, match="1 to 4 replications"):
        world.demo_names(5)


def test_prepare_demo_keeps_the_world_on_disk_unless_told_otherwise(tmp_path, monkeypatch):
    for split in data.DATASETS["demo"]:  # what prepare_demo checks for; a seed-1 world of 4 replications
        for part in data.PARTS:
            path = data.split_dir(tmp_path, "demo", split) / f"{part}_data.aimclr_T50.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
    (tmp_path / "demo" / "demo_language.json").write_text("{}")
    (tmp_path / "demo" / "demo_meta.json").write_text(json.dumps(world._demo_meta(seed=1, replications=4)))

    def regenerate(*args, **kwargs):
        raise RuntimeError("regenerated")
    monkeypatch.setattr(world, "parallel_map", regenerate)
    assert world.prepare_demo(tmp_path) == tmp_path / "demo"  # what train.py and the prompts call: kept
    assert world.prepare_demo(tmp_path, seed=1, replications=4) == tmp_path / "demo"
    for other in (dict(seed=0), dict(replications=2)):
        with pytest.raises(RuntimeError, match="regenerated"):
            world.prepare_demo(tmp_path, **other)


def test_demo_is_regenerated_identically_from_the_seed(demo):
    root, _ = demo
    answers = json.loads((root / "demo" / "demo_language.json").read_text())
    for name in world.demo_names()[::97]:
        text, sample_answers = world.generate_demo_sample(name, seed=0)
        assert (root / "demo" / "raw" / f"{name}.skeleton").read_bytes() == text.encode()
        assert answers[name] == sample_answers
    assert world.generate_demo_sample(world.demo_names()[0], seed=1)[0] != world.generate_demo_sample(
        world.demo_names()[0], seed=0)[0]


def test_demo_classes_are_separable_by_nearest_centroid_but_not_by_a_global_statistic(demo):
    root, _ = demo
    train, val = data.load_split(root, "demo", "xsub", "train"), data.load_split(root, "demo", "xsub", "val")

    def nearest_centroid(f_train, f_val):
        centroids = np.stack([f_train[train.labels == c].mean(axis=0) for c in range(15)])
        return (((f_val[:, None] - centroids[None]) ** 2).sum(-1).argmin(1) == val.labels).mean()

    def trajectories(ds):  # (N, 3 * 50 * 25) joint trajectories of the main body
        return np.asarray(ds.data[..., 0]).reshape(len(ds), -1)

    def motion_energy(ds):  # one global number per sample
        return np.abs(np.diff(np.asarray(ds.data[..., 0]), axis=2)).sum(axis=(1, 2, 3))[:, None]

    accuracy = nearest_centroid(trajectories(train), trajectories(val))
    energy = nearest_centroid(motion_energy(train), motion_energy(val))
    assert accuracy > 0.45  # chance is 1/15: the demo can be learned
    assert accuracy < 0.9  # ...but not trivially: there is room for better features
    assert energy < 0.4 and accuracy - energy > 0.2


def test_demo_skeletons_have_consistent_color_projections_and_realistic_noise(demo):
    root, _ = demo
    files = sorted((root / "demo" / "raw").glob("*.skeleton"))
    empty_frames, two_bodies = 0, 0
    for path in files[::6]:
        sk = read_skeleton(path)
        present = (sk.xyz != 0).any(axis=-1)  # (T, M, 25)
        f, cx, cy = world.KINECT_COLOR
        xyz = sk.xyz[present]
        np.testing.assert_allclose(sk.color_xy[present][:, 0], cx + f * xyz[:, 0] / xyz[:, 2], atol=0.01)
        np.testing.assert_allclose(sk.color_xy[present][:, 1], cy - f * xyz[:, 1] / xyz[:, 2], atol=0.01)
        inside = ((0 < sk.color_xy) & (sk.color_xy < [1920, 1080])).all(axis=-1)  # (T, M, 25)
        assert inside[present[:, :, 0], 0].all()  # the body centre is always in the frame...
        assert inside[present].mean() > 0.97  # ...raised hands may leave it, as in NTU's videos
        empty_frames += int((sk.bodies_per_frame == 0).any())
        two_bodies += int(sk.xyz.shape[1] == 2)
    assert 0 < empty_frames < len(files[::6]) and 0 < two_bodies < len(files[::6]) / 4


def test_demo_language_file_has_16_answers_per_sample_in_the_released_format(demo):
    root, _ = demo
    answers = json.loads((root / "demo" / "demo_language.json").read_text())
    assert sorted(answers) == world.demo_names()
    assert all(isinstance(a, list) and len(a) == 16 and all(isinstance(s, str) and s for s in a)
               for a in answers.values())
    text = " ".join(s for a in answers.values() for s in a)
    assert "holding" in text and "trying to do something" in text  # noisy objects and vague intentions
    waves = " ".join(s for n, a in answers.items() if n.endswith("A001") for s in a)
    assert waves.count("wav") > waves.count("squat") + 50  # ...but informative on average


def test_demo_frame_source_renders_the_person_where_colorxy_says(demo):
    root, _ = demo
    name = world.demo_names()[123]
    source = demo_frame_source(root, name)
    assert source.size == world.DEMO_FRAME_SIZE and source.num_frames > 30
    frames = source.read([0, source.num_frames // 2, source.num_frames - 1])
    assert len(frames) == 3 and all(f.mode == "RGB" and f.size == source.size for f in frames)
    sk = read_skeleton(root / "demo" / "raw" / f"{name}.skeleton")
    t = source.num_frames // 2
    t = t if sk.xyz[t].any() else int(np.flatnonzero(sk.xyz.any(axis=(1, 2, 3)))[0])
    scale = np.array(source.size) / [1920, 1080]
    pixels = np.asarray(source.read([t])[0])
    head, wall = (sk.color_xy[t, 0, 3] * scale).astype(int), pixels[5, 5]
    assert np.abs(pixels[head[1], head[0]].astype(int) - wall).sum() > 30  # the person, not the wall
    with pytest.raises(IndexError):
        source.read([source.num_frames])
