"""tools/raw_skeletons.py: raw NTU RGB+D and PKU-MMD files -> benchmark splits."""
import math
import os
import pickle
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import data
from bench.bench_data import plain_read_skeleton
from tools import generate_prompts, ntu_names, raw_skeletons
from tools.raw_skeletons import (PKU_VIEWS, SkeletonFormatError, WorkerError, _read_ntu_task, convert_ntu, convert_pku,
                                 cut_instance, find_ntu_files, parallel_map, pku_instances, pku_video_prefix,
                                 read_pku_skeleton, read_skeleton, to_stgcn_sample)
from utils.files import SplitExistsError

FIXTURES = Path(__file__).parent / "fixtures"


def write_skeleton(path, frames, seed=0):
    """Write an NTU `.skeleton` file; frames = list (per frame) of (25, 3) xyz arrays, one per body.
    colorX/colorY are 100 * x + 960 and 100 * y + 540, so the test can check them."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for b, xyz in enumerate(bodies):
            lines += [f"7205759403792{seed:04d}{b} 0 1 1 1 1 0 0.1 0.2 2", "25"]
            lines += [f"{x:.6f} {y:.6f} {z:.6f} 200 200 {100 * x + 960:.4f} {100 * y + 540:.4f} 0 0 0 0 2"
                      for x, y, z in xyz]
    Path(path).write_text("\r\n".join(lines) + "\r\n")


def random_motion(rng, T, bodies=1, scale=0.3):
    """(T, bodies, 25, 3) smooth random motion around a body 3 m in front of the camera."""
    base = rng.normal(0, 0.3, (1, bodies, 25, 3)) + np.array([0, 0, 3.0])
    return (base + np.cumsum(rng.normal(0, scale / 10, (T, bodies, 25, 3)), axis=0)).astype(np.float32)


def frames_of(motion):
    return [[motion[t, m] for m in range(motion.shape[1])] for t in range(len(motion))]


# ---- the reader ----------------------------------------------------------------------------------------------

def test_official_layout_fixture_parses_to_its_values():
    sk = read_skeleton(FIXTURES / "S001C001P001R001A001.skeleton")
    assert sk.name == "S001C001P001R001A001" and sk.num_frames == 4
    assert sk.xyz.shape == (4, 2, 25, 3) and sk.xyz.dtype == np.float32
    assert sk.bodies_per_frame.tolist() == [1, 2, 0, 1]
    joints = np.arange(25)
    np.testing.assert_allclose(sk.xyz[1, :, :, 0], [1 + 1 + joints / 100] * 2, atol=1e-5)  # frame 2, both bodies
    assert not sk.xyz[2].any()  # frame without a body stays zero
    np.testing.assert_allclose(sk.color_xy[3, 0, :, 0], 100 * (4 + joints / 100), atol=1e-3)
    np.testing.assert_allclose(sk.color_xy[3, 0, :, 1], 500, atol=1e-3)


def test_reader_round_trips_xyz_and_color(tmp_path):
    motion = random_motion(np.random.default_rng(0), 40, bodies=2)
    write_skeleton(tmp_path / "S001C001P001R001A001.skeleton", frames_of(motion))
    sk = read_skeleton(tmp_path / "S001C001P001R001A001.skeleton")
    assert sk.xyz.shape == (40, 2, 25, 3)
    kept = {tuple(np.round(sk.xyz[0, m, 0], 4)) for m in range(2)}
    assert kept == {tuple(np.round(motion[0, m, 0], 4)) for m in range(2)}
    np.testing.assert_allclose(sk.color_xy[..., 0], 100 * sk.xyz[..., 0] + 960, atol=1e-3)
    np.testing.assert_allclose(sk.color_xy[..., 1], 100 * sk.xyz[..., 1] + 540, atol=1e-3)


def test_reader_keeps_the_two_most_active_bodies_most_active_first(tmp_path):
    rng = np.random.default_rng(1)
    still = np.repeat(random_motion(rng, 1)[:, 0], 30, axis=0)  # (30, 25, 3) a body that does not move
    calm, active = random_motion(rng, 30, scale=0.2)[:, 0], random_motion(rng, 30, scale=2.0)[:, 0]
    write_skeleton(tmp_path / "x.skeleton", [[still[t], calm[t], active[t]] for t in range(30)])
    sk = read_skeleton(tmp_path / "x.skeleton")
    assert sk.xyz.shape[1] == 2
    np.testing.assert_allclose(sk.xyz[:, 0], active, atol=1e-5)
    np.testing.assert_allclose(sk.xyz[:, 1], calm, atol=1e-5)


def test_plain_reference_reader_agrees_on_a_single_body(tmp_path):
    motion = random_motion(np.random.default_rng(2), 25)
    write_skeleton(tmp_path / "x.skeleton", frames_of(motion))
    plain = plain_read_skeleton(tmp_path / "x.skeleton")  # (3, T, 25, 2)
    np.testing.assert_allclose(plain[..., 0].transpose(1, 2, 0), read_skeleton(tmp_path / "x.skeleton").xyz[:, 0],
                               atol=1e-6)


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    write_skeleton(path, frames_of(random_motion(np.random.default_rng(3), 6)))
    return path


def edit_line(path, line_number, new_text):
    lines = path.read_text().splitlines()
    lines[line_number - 1] = new_text
    path.write_text("\n".join(lines) + "\n")


def test_truncated_file_is_named_with_the_line_where_it_breaks(good_file):
    lines = good_file.read_text().splitlines()
    good_file.write_text("\n".join(lines[:60]))  # cut inside frame 3
    with pytest.raises(SkeletonFormatError, match=r"S001C001P001R001A001.skeleton:61: .*truncated") as error:
        read_skeleton(good_file)
    assert error.value.line == 61


def test_wrong_joint_count_is_an_error_on_its_line(good_file):
    edit_line(good_file, 4, "24")  # line 4 = joint count of the first body
    with pytest.raises(SkeletonFormatError, match=r":4: expected 25 joints, found 24"):
        read_skeleton(good_file)


def test_non_numeric_value_is_an_error_on_its_line(good_file):
    edit_line(good_file, 10, "0.1 0.2 abc 200 200 970 560 0 0 0 0 2")
    with pytest.raises(SkeletonFormatError, match=r":10: non-numeric value 'abc'"):
        read_skeleton(good_file)


def test_zero_frames_is_an_error(tmp_path):
    (tmp_path / "x.skeleton").write_text("0\n")
    with pytest.raises(SkeletonFormatError, match=r":1: zero frames"):
        read_skeleton(tmp_path / "x.skeleton")
    (tmp_path / "y.skeleton").write_text("2\n0\n0\n")
    with pytest.raises(SkeletonFormatError, match=r"no body in any of the 2 frames"):
        read_skeleton(tmp_path / "y.skeleton")


def test_nan_value_is_an_error_on_its_line(good_file):
    edit_line(good_file, 33, "nan 0.2 3.0 200 200 970 560 0 0 0 0 2")
    with pytest.raises(SkeletonFormatError, match=r":33: non-finite joint value"):
        read_skeleton(good_file)


# ---- benchmark splits ----------------------------------------------------------------------------------------

@pytest.fixture
def raw_ntu(tmp_path):
    """A small raw folder: samples across subjects/cameras/setups, one corrupt, one on the missing list."""
    rng = np.random.default_rng(4)
    names = ["S001C001P001R001A001", "S001C002P003R002A010", "S001C003P002R001A060", "S002C001P007R001A005",
             "S002C002P008R002A033", "S017C003P040R001A002", "S018C001P045R001A061", "S019C002P046R002A120",
             "S020C003P050R001A007", "S001C002P005R002A008"]  # last one is on the missing list
    motions = {}
    for k, name in enumerate(names):
        motions[name] = random_motion(rng, int(rng.integers(20, 60)), bodies=1 + k % 2)
        folder = tmp_path / ("part1" if k < 6 else "part2" / Path("nested"))
        folder.mkdir(parents=True, exist_ok=True)
        write_skeleton(folder / f"{name}.skeleton", frames_of(motions[name]), seed=k)
    corrupt = tmp_path / "part1" / "S001C001P002R001A003.skeleton"
    write_skeleton(corrupt, frames_of(random_motion(rng, 10)))
    corrupt.write_text("\n".join(corrupt.read_text().splitlines()[:100]))
    return tmp_path, names[:-1], motions


def check_rows_match(folder, part, motions):
    names, labels = pickle.load(open(folder / f"{part}_label.pkl", "rb"))
    array = np.load(folder / f"{part}_data.npy", mmap_mode="r")
    assert array.shape == (len(names), 3, 300, 25, 2) and array.dtype == np.float32
    for name, label, row in zip(names, labels, array):
        stem = name.removesuffix(".skeleton")
        assert label == ntu_names.parse_ntu_name(stem).action - 1
        motion = motions[stem]  # (T, M, 25, 3); bodies may be re-ordered by motion energy
        for m in range(motion.shape[1]):
            assert any(np.allclose(row[:, :len(motion), :, k].transpose(1, 2, 0), motion[:, m], atol=1e-5)
                       for k in range(2)), stem
        assert not row[:, len(motion):].any()  # zero padding after the last frame
    return [n.removesuffix(".skeleton") for n in names]


def test_convert_ntu_writes_every_split_sorted_with_skips_counted(raw_ntu, tmp_path):
    raw, names, motions = raw_ntu
    report = convert_ntu([raw / "part1", raw / "part2"], tmp_path / "out", ("ntu60", "ntu120"),
                         FIXTURES / "missing_with_header.txt", workers=2)
    assert report.skipped_missing == 1
    assert len(report.corrupt) == 1 and "S001C001P002R001A003" in report.corrupt[0][0]
    assert report.corrupt[0][1].startswith("line 101: file ends early (truncated)")
    ntu60 = sorted(n for n in names if ntu_names.ntu_in_dataset(n, "ntu60"))
    for dataset, split in (("ntu60", "xsub"), ("ntu60", "xview"), ("ntu120", "xsub"), ("ntu120", "xset")):
        folder = data.split_dir(tmp_path / "out", dataset, split)
        pool = ntu60 if dataset == "ntu60" else sorted(names)
        train = check_rows_match(folder, "train", motions)
        val = check_rows_match(folder, "val", motions)
        assert train == sorted(n for n in pool if ntu_names.ntu_is_train(n, dataset, split))
        assert val == sorted(n for n in pool if not ntu_names.ntu_is_train(n, dataset, split))
        assert report.written[f"{dataset}/{split}/train"] == len(train)
    assert (tmp_path / "out" / "ntu60" / "conversion_report.json").is_file()
    assert not list((tmp_path / "out").rglob(".*tmp*"))  # atomic writes leave no temporaries


def test_convert_ntu_in_process_equals_parallel(raw_ntu, tmp_path):
    raw, _, _ = raw_ntu
    convert_ntu(raw, tmp_path / "a", ("ntu60",), workers=1)
    convert_ntu(raw, tmp_path / "b", ("ntu60",), workers=2)
    for part in ("train", "val"):
        a = tmp_path / "a" / "ntu60" / "xsub" / f"{part}_data.npy"
        assert a.read_bytes() == (tmp_path / "b" / "ntu60" / "xsub" / f"{part}_data.npy").read_bytes()


def test_duplicate_sample_across_raw_folders_is_an_error(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        write_skeleton(tmp_path / folder / "S001C001P001R001A001.skeleton", [[np.ones((25, 3))]])
    with pytest.raises(data.DataFormatError, match="appears twice"):
        find_ntu_files([tmp_path / "a", tmp_path / "b"])


# ---- PKU-MMD -------------------------------------------------------------------------------------------------

def write_pku_video(folder, video, T, labels):
    """Skeleton file whose frame f (1-based) holds the value f everywhere; label lines 'label,start,end,conf'."""
    (folder / "skeleton").mkdir(exist_ok=True)
    (folder / "label").mkdir(exist_ok=True)
    values = np.repeat(np.arange(1, T + 1, dtype=np.float64)[:, None], 150, axis=1)
    values[:, 75:] = 0  # no second body
    np.savetxt(folder / "skeleton" / f"{video}.txt", values, fmt="%.6f")
    (folder / "label" / f"{video}.txt").write_text("".join(f"{a},{s},{e},1\n" for a, s, e in labels))


def test_pku_instance_cutting_honours_one_based_inclusive_ranges():
    xyz = np.arange(1, 21, dtype=np.float32)[:, None, None, None] * np.ones((20, 2, 25, 3), np.float32)
    assert cut_instance(xyz, 3, 7)[:, 0, 0, 0].tolist() == [3, 4, 5, 6, 7]
    assert cut_instance(xyz, 20, 20)[:, 0, 0, 0].tolist() == [20]
    instances, problems = pku_instances("A05N02-R", 2, xyz, [(13, 1, 5), (51, 18, 25), (2, 21, 30)])
    assert [(n, y) for n, y, _ in instances] == [("A005N002V003C013L001", 12), ("A005N002V003C051L002", 50)]
    assert instances[0][2][:, 0, 0, 0].tolist() == [1, 2, 3, 4, 5]
    assert instances[1][2][:, 0, 0, 0].tolist() == [18, 19, 20]  # clipped at the last frame
    assert problems == ["A005N002V003C002L003: starts at frame 21 but A05N02-R has 20 frames"]
    assert pku_video_prefix("0002-L", 1) == "F002V001"
    assert pku_video_prefix("A26N13-M", 2) == "A026N013V002"


def test_pku_names_follow_the_released_prompt_keys():
    # Keys of C2VL's pkuv2_language.json look like A001N001V001C004L002 (view L/M/R -> V001/V002/V003).
    assert PKU_VIEWS == {"L": 1, "M": 2, "R": 3}
    instances, _ = pku_instances("A01N01-L", 2, np.ones((50, 2, 25, 3), np.float32), [(30, 1, 9), (4, 10, 20)])
    assert [n for n, _, _ in instances] == ["A001N001V001C030L001", "A001N001V001C004L002"]


def test_convert_pku_writes_instance_level_splits(tmp_path):
    write_pku_video(tmp_path, "A01N01-L", 30, [(4, 1, 10), (13, 12, 30)])
    write_pku_video(tmp_path, "A01N02-M", 12, [(51, 2, 4)])
    write_pku_video(tmp_path, "A02N01-R", 15, [(1, 5, 15), (52, 1, 2)])  # 52 is outside the 51-id space
    split = tmp_path / "cross-subject-v2.txt"
    split.write_text("Training videos: \nA01N01-L, A02N01-R, A03N03-L\nValidataion videos: \nA01N02-M\n")
    report = convert_pku(2, tmp_path / "skeleton", tmp_path / "label", {"xsub": split}, tmp_path / "out",
                         workers=1)
    folder = data.split_dir(tmp_path / "out", "pku2", "xsub")
    names, labels = pickle.load(open(folder / "train_label.pkl", "rb"))
    assert names == ["A001N001V001C004L001", "A001N001V001C013L002"] and labels == [3, 12]
    array = np.load(folder / "train_data.npy")
    assert array.shape == (2, 3, 300, 25, 2)
    assert array[0, 0, :10, 0, 0].tolist() == list(range(1, 11)) and not array[0, :, 10:].any()
    assert array[1, 0, :19, 0, 0].tolist() == list(range(12, 31))
    val_names, val_labels = pickle.load(open(folder / "val_label.pkl", "rb"))
    assert val_names == ["A001N002V002C051L001"] and val_labels == [50]
    assert np.load(folder / "val_data.npy")[0, 0, :3, 0, 0].tolist() == [2, 3, 4]
    problems = dict(report.corrupt)
    assert "missing file" in problems["A03N03-L"]
    assert "action id 52 outside PKU-MMD's 1..51" in problems["A02N01-R"]


def test_pku_bad_skeleton_line_is_named(tmp_path):
    path = tmp_path / "0002-L.txt"
    path.write_text(" ".join(["0.5"] * 150) + "\n" + " ".join(["0.5"] * 149) + "\n")
    with pytest.raises(SkeletonFormatError, match=r"0002-L.txt:2: expected 150 values"):
        read_pku_skeleton(path)
    path.write_text("")
    with pytest.raises(SkeletonFormatError, match="zero frames"):
        read_pku_skeleton(path)


# ---- 2s-AGCN's body selection and the quirks of real files ----------------------------------------------------

def agcn_reference(path) -> np.ndarray:
    """2s-AGCN's ntu_gendata `read_xyz` written out with plain loops (independent of tools/raw_skeletons.py):
    the first 4 body slots, energy = sum over x, y, z of the std over the frames whose coordinates do not sum to
    zero (all 25 joints of those frames), the 2 most energetic slots, most energetic first -> (3, T, 25, 2)."""
    lines = iter(Path(path).read_text().splitlines())
    num_frames = int(next(lines))
    data = np.zeros((4, num_frames, 25, 3))
    for t in range(num_frames):
        for m in range(int(next(lines))):
            next(lines)  # body info
            for v in range(int(next(lines))):
                x, y, z = (float(field) for field in next(lines).split()[:3])
                if m < 4:
                    data[m, t, v] = x, y, z
    energy = []
    for body in data:
        frames = [t for t in range(num_frames) if sum(body[t].ravel()) != 0]
        total = 0.0
        for c in range(3):
            values = [body[t, v, c] for t in frames for v in range(25)]
            if values:
                mean = sum(values) / len(values)
                total += math.sqrt(sum((a - mean) ** 2 for a in values) / len(values))
        energy.append(total)
    index = np.argsort(energy, kind="stable")[::-1][:2]
    return data[index].transpose(3, 1, 2, 0).astype(np.float32)


UNMAPPED_LINES = ("-0.8071845 -1.301809 1.509615 78.52069 495.2916 NaN NaN 0 0 0 0 1",  # lines of real files
                  "0 0 0 NaN NaN NaN NaN 0 1 0 0 0")


def write_ntu(path, frames, newline="\r\n", trailing="", unmapped=()):
    """An NTU `.skeleton` file as the Kinect tools write it: frames = per frame a list of (25, 3) xyz bodies
    (an empty list = a frame without bodies); (t, m, v) in `unmapped` get NaN depth and colour columns."""
    lines = [str(len(frames))]
    for t, bodies in enumerate(frames):
        lines.append(str(len(bodies)))
        for m, xyz in enumerate(bodies):
            lines += [f"72057594037931{t % 7}{m} 0 1 1 1 1 0 -0.2 0.3 2", "25"]
            for v, (x, y, z) in enumerate(xyz):
                pixels = ("NaN NaN NaN NaN" if (t, m, v) in unmapped else
                          f"{200 + x * 50:.4f} {200 - y * 50:.4f} {960 + 500 * x:.4f} {540 - 500 * y:.4f}")
                lines.append(f"{x:.7f} {y:.7f} {z:.7f} {pixels} 0.1 0.2 0.3 0.4 {1 + (v % 2)}")
    Path(path).write_bytes((newline.join(lines) + newline + trailing).encode("ascii"))
    return path


def person(rng, T, spread=0.3, motion=0.01, at=(0.0, 0.0, 3.0)):
    """(T, 25, 3) a body of the given joint spread and frame-to-frame motion around `at`."""
    base = rng.normal(0, spread, (25, 3)) + np.array(at)
    return base + np.cumsum(rng.normal(0, motion, (T, 25, 3)), axis=0)


def selected(path):
    """Our reader's rows for `path` in the ST-GCN layout (3, T, 25, 2)."""
    return to_stgcn_sample(read_skeleton(path).xyz)


def test_a_body_listed_in_one_frame_has_the_std_over_its_joints_as_in_2s_agcn(tmp_path):
    rng = np.random.default_rng(10)
    calm, moving = person(rng, 20, spread=0.05), person(rng, 20, spread=0.1)
    flash = person(rng, 1, spread=0.8, at=(1.0, 0.0, 3.5))[0]  # listed in frame 10 only, joints far apart
    frames = [[calm[t], moving[t]] + ([flash] if t == 10 else []) for t in range(20)]
    path = write_ntu(tmp_path / "x.skeleton", frames)
    expected = agcn_reference(path)
    np.testing.assert_allclose(expected[:, 10, :, 0].T, flash, atol=1e-6)  # 2s-AGCN ranks it first...
    np.testing.assert_allclose(expected[:, :, :, 1].transpose(1, 2, 0), moving, atol=1e-6)  # ...then `moving`
    np.testing.assert_allclose(selected(path), expected, atol=1e-6)


def test_frames_that_list_a_body_with_all_zero_joints_do_not_count(tmp_path):
    rng = np.random.default_rng(11)
    steady, late = person(rng, 30, spread=0.2), person(rng, 30, spread=0.05, at=(0.5, 0.0, 3.0))
    late[:24] = 0  # listed in every frame, tracked only in the last 6: counting all 30 would make it "energetic"
    path = write_ntu(tmp_path / "x.skeleton", [[steady[t], late[t]] for t in range(30)],
                     unmapped={(t, 1, v) for t in range(24) for v in range(25)})
    expected = agcn_reference(path)
    np.testing.assert_allclose(expected[:, :, :, 0].transpose(1, 2, 0), steady, atol=1e-6)
    np.testing.assert_allclose(selected(path), expected, atol=1e-6)


def test_body_slots_beyond_the_fourth_are_ignored(tmp_path):
    rng = np.random.default_rng(12)
    bodies = [person(rng, 12, spread=s) for s in (0.05, 0.1, 0.3, 0.2, 1.5, 2.0)]  # slots 4, 5 would win
    path = write_ntu(tmp_path / "x.skeleton", [[b[t] for b in bodies] for t in range(12)])
    assert read_skeleton(path).bodies_per_frame.tolist() == [6] * 12
    expected = agcn_reference(path)
    np.testing.assert_allclose(expected[..., 0].transpose(1, 2, 0), bodies[2], atol=1e-6)
    np.testing.assert_allclose(expected[..., 1].transpose(1, 2, 0), bodies[3], atol=1e-6)
    np.testing.assert_allclose(selected(path), expected, atol=1e-6)


def test_nan_depth_and_colour_mean_unknown_2d_position_and_the_sample_is_kept(tmp_path):
    rng = np.random.default_rng(13)
    body = person(rng, 8)
    body[5, 7] = 0  # a joint Kinect lost: x y z = 0 and no depth or colour position
    unmapped = {(2, 0, 3), (2, 0, 4), (5, 0, 7)}
    path = write_ntu(tmp_path / "S001C001P001R001A001.skeleton", [[body[t]] for t in range(8)], unmapped=unmapped)
    lines = path.read_text().splitlines()  # 0-based index of joint v in frame t (one body): 4 + 28 t + v
    assert lines[4 + 28 * 2 + 3].endswith("NaN NaN NaN NaN 0.1 0.2 0.3 0.4 2")  # frame 3, joint 4
    lines[4 + 28 * 5 + 7] = UNMAPPED_LINES[1]                                  # frame 6, joint 8
    lines[4 + 28 * 0 + 0] = UNMAPPED_LINES[0]                                  # frame 1, joint 1
    path.write_text("\r\n".join(lines) + "\r\n")
    body[0, 0] = -0.8071845, -1.301809, 1.509615
    sk = read_skeleton(path)
    np.testing.assert_allclose(sk.xyz[:, 0], body, atol=1e-6)
    missing = np.isnan(sk.color_xy[:, 0]).any(axis=-1)  # (T, 25)
    assert sorted(zip(*np.nonzero(missing))) == [(0, 0), (2, 3), (2, 4), (5, 7)]
    box = generate_prompts.skeleton_box(sk.color_xy[2])  # the person crop ignores the joints without a colour position
    known = np.delete(sk.color_xy[2, 0], [3, 4], axis=0) / [1920, 1080]
    assert box is not None and box[0] <= known[:, 0].min() and box[2] >= known[:, 0].max()
    np.testing.assert_allclose(selected(path), agcn_reference(path), atol=1e-6)


def quirk_files(raw):
    """One generated file per quirk of real NTU files; names cover both parts of NTU-60 xsub and xview."""
    rng = np.random.default_rng(14)
    raw.mkdir(parents=True, exist_ok=True)
    a, b = person(rng, 40, motion=0.02), person(rng, 40, motion=0.03, at=(0.8, 0.0, 3.2))
    noise = [person(rng, 3, spread=0.02, at=(2.0, 0.5, 4.0)) for _ in range(3)]
    gaps = [[a[t]] if t % 10 < 7 else [] for t in range(40)]  # frames with 0 bodies between frames with bodies
    crowd = [[a[t], b[t]] + [n[t - 5 * k] for k, n in enumerate(noise) if 5 * k <= t < 5 * k + 3]
             for t in range(40)]  # two people, plus short noisy bodies listed for 3 frames each
    unmapped = {(t, m, v) for t in range(0, 40, 3) for m in range(2) for v in (3, 7, 11, 21)}
    return [
        write_ntu(raw / "S001C001P001R001A001.skeleton", [[a[t], b[t]] for t in range(40)], unmapped=unmapped),
        write_ntu(raw / "S001C002P003R001A002.skeleton", [[a[t]] for t in range(40)], trailing="\r\n\r\n\r\n"),
        write_ntu(raw / "S001C002P001R001A003.skeleton", gaps, newline="\n"),
        write_ntu(raw / "S001C003P003R001A004.skeleton", crowd),
        write_ntu(raw / "S001C001P003R002A005.skeleton", crowd, newline="\n", trailing="\n\n", unmapped=unmapped),
    ]


def test_real_file_quirks_convert_to_the_rows_of_2s_agcn(tmp_path):
    paths = quirk_files(tmp_path / "raw")
    report = convert_ntu(tmp_path / "raw", tmp_path / "out", ("ntu60",), workers=2)
    assert report.corrupt == [] and sum(report.written[f"ntu60/xsub/{p}"] for p in ("train", "val")) == 5
    expected = {p.stem: agcn_reference(p) for p in paths}
    for split in ("xsub", "xview"):
        for part in ("train", "val"):
            folder = data.split_dir(tmp_path / "out", "ntu60", split)
            names, _ = pickle.load(open(folder / f"{part}_label.pkl", "rb"))
            rows = np.load(folder / f"{part}_data.npy")
            for name, row in zip(names, rows):
                T = expected[name.removesuffix(".skeleton")].shape[1]
                np.testing.assert_allclose(row[:, :T], expected[name.removesuffix(".skeleton")], atol=1e-6)
                assert not row[:, T:].any()
    gaps = read_skeleton(paths[2])
    assert gaps.bodies_per_frame.tolist()[:10] == [1] * 7 + [0] * 3 and not gaps.xyz[7:10].any()


# ---- the corrupt-file catalogue -------------------------------------------------------------------------------

def corrupt_catalogue(raw):
    """Valid files covering every part of NTU-60 xsub/xview, and one corrupt file of each kind -> {name: why}."""
    rng = np.random.default_rng(15)
    raw.mkdir(parents=True, exist_ok=True)
    for name in ("S001C001P001R001A001", "S001C002P003R001A002", "S001C003P001R001A003", "S001C001P003R001A004"):
        write_skeleton(raw / f"{name}.skeleton", frames_of(random_motion(rng, 6)))
    good = "\n".join(_good_lines(rng)) + "\n"

    def edited(line_number, text, base=good):
        lines = base.splitlines()
        lines[line_number - 1] = text
        return "\n".join(lines) + "\n"

    kinds = {  # name: (content, expected reason); a good file has 1 + 6 * 28 = 169 lines
        "S002C001P001R001A010": ("\n".join(good.splitlines()[:60]), "line 61: file ends early (truncated)"),
        "S002C001P001R001A011": (edited(4, "24"), "line 4: expected 25 joints, found 24"),
        "S002C001P001R001A012": (edited(10, "0.1 0.2 abc 200 200 970 560 0 0 0 0 2"),
                                 "line 10: non-numeric value 'abc'"),
        "S002C001P001R001A013": ("0\n", "line 1: zero frames"),
        "S002C001P001R001A014": (edited(33, "0.1 inf 3.0 200 200 970 560 0 0 0 0 2"),
                                 "line 33: non-finite joint value"),
        "S002C001P001R001A015": ("", "line 1: file ends early (truncated): expected the frame count"),
        "S002C001P001R001A016": (bytes(range(256)) * 4, "line 1: expected the frame count"),
        "S002C001P001R001A017": (edited(1, "9"), "line 170: file ends early (truncated): expected the body count "
                                                 "of frame 7"),
        "S002C001P001R001A018": (edited(2, "-1"), "line 2: negative body count -1"),
        "S002C001P001R001A019": (edited(12, "0.1 0.2 0.3 200 200"), "line 12: expected 12 values per joint, "
                                                                    "found 5"),
    }
    for name, (content, _) in kinds.items():
        path = raw / f"{name}.skeleton"
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return {name: why for name, (_, why) in kinds.items()}


def _good_lines(rng):
    lines = ["6"]
    for xyz in random_motion(rng, 6)[:, 0]:
        lines += ["1", "72057594037931001 0 1 1 1 1 0 0.1 0.2 2", "25"]
        lines += [f"{x:.6f} {y:.6f} {z:.6f} 200 200 970 560 0 0 0 0 2" for x, y, z in xyz]
    return lines


def test_corrupt_files_are_named_with_their_line_and_every_valid_file_is_kept(tmp_path):
    expected = corrupt_catalogue(tmp_path / "raw")
    report = convert_ntu(tmp_path / "raw", tmp_path / "out", ("ntu60",), workers=2)
    found = {Path(file).stem: why for file, why in report.corrupt}
    assert sorted(found) == sorted(expected)
    for name, why in expected.items():
        assert found[name].startswith(why), (name, found[name])
    assert report.written["ntu60/xsub/train"] + report.written["ntu60/xsub/val"] == 4


# ---- errors across processes, failing workers, the pool -------------------------------------------------------

def test_errors_that_cross_a_process_boundary_unpickle_to_equal_messages():
    errors = [SkeletonFormatError("S001C001P001R001A001.skeleton", 61, "file ends early (truncated)"),
              data.DataFormatError("train_label.pkl: 3 names but 2 labels"),
              data.DataNotFoundError("label file x not found"),
              data.UnsafePickleError("x.pkl: refused to load: the pickle refers to posix.system"),
              SplitExistsError("datasets/ntu60/xsub already holds a split (train_label.pkl); pass --force"),
              WorkerError("S001C001P001R001A001.skeleton: RuntimeError: boom")]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
    copy = pickle.loads(pickle.dumps(errors[0]))
    assert (copy.path, copy.line, copy.what) == ("S001C001P001R001A001.skeleton", 61, "file ends early (truncated)")


def _explodes_on_one_file(path):
    """A per-file task with a bug no format check foresees, on one file (pickled by reference into workers)."""
    if "S002C001P007R001A005" in str(path):
        raise RuntimeError("boom")
    return _read_ntu_task(path)


def _dies_on_three(item):
    if item == 3:
        os._exit(1)  # a worker killed outright (out of memory, a crash in C code)
    return item


def _parent_pid(_):
    return os.getppid()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_worker_that_raises_unexpectedly_ends_the_conversion_naming_the_file(raw_ntu, tmp_path, monkeypatch,
                                                                               workers):
    raw, _, _ = raw_ntu
    monkeypatch.setattr(raw_skeletons, "_read_ntu_task", _explodes_on_one_file)
    started = time.perf_counter()
    with pytest.raises(WorkerError, match=r"S002C001P007R001A005.skeleton: RuntimeError: boom \(at test_raw_"):
        convert_ntu(raw, tmp_path / "out", ("ntu60",), workers=workers)
    assert time.perf_counter() - started < 30
    assert not list((tmp_path / "out").rglob("*.npy")) and not list((tmp_path / "out").rglob(".*tmp*"))


def test_a_worker_that_dies_ends_the_map_with_an_error_instead_of_a_hang():
    started = time.perf_counter()
    with pytest.raises(WorkerError, match=r"a worker process failed on \d .*BrokenProcessPool"):
        list(parallel_map(_dies_on_three, list(range(8)), 2, "test"))
    assert time.perf_counter() - started < 30


def test_workers_are_not_forked_from_the_calling_process():
    threading.Thread(target=time.sleep, args=(2,), daemon=True).start()  # this process has threads
    assert os.getpid() not in set(parallel_map(_parent_pid, list(range(4)), 2, "test"))


# ---- split folders: never replaced without force, never empty ------------------------------------------------

def test_an_existing_split_is_replaced_only_with_force_and_its_old_caches_go(raw_ntu, tmp_path):
    raw, _, _ = raw_ntu
    convert_ntu(raw, tmp_path / "out", ("ntu60",), workers=1)
    folder = data.split_dir(tmp_path / "out", "ntu60", "xsub")
    data.load_split(tmp_path / "out", "ntu60", "xsub", "train", frames=20)
    before = (folder / "train_label.pkl").read_bytes()
    with pytest.raises(SplitExistsError, match=r"ntu60/xsub already holds a split .*pass --force"):
        convert_ntu(raw, tmp_path / "out", ("ntu60",), workers=1)
    assert (folder / "train_label.pkl").read_bytes() == before and (folder / "train_data.aimclr_T20.npy").exists()
    convert_ntu(raw, tmp_path / "out", ("ntu60",), workers=1, force=True)
    assert not (folder / "train_data.aimclr_T20.npy").exists()  # its rows were replaced


def test_a_split_part_without_samples_is_refused_where_it_is_made(tmp_path):
    rng = np.random.default_rng(16)
    (tmp_path / "raw").mkdir()
    for name in ("S001C001P003R001A001", "S001C002P006R001A002"):  # subjects 3 and 6: xsub test subjects only
        write_skeleton(tmp_path / "raw" / f"{name}.skeleton", frames_of(random_motion(rng, 5)))
    with pytest.raises(data.DataFormatError, match=r"the 2 sample files found give no sample to ntu60 xsub train; "
                                                   r".*nothing was written; .*--dataset"):
        convert_ntu(tmp_path / "raw", tmp_path / "out", ("ntu60",), workers=1)
    assert not (tmp_path / "out").exists()
