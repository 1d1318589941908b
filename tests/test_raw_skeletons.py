"""tools/raw_skeletons.py: raw NTU RGB+D and PKU-MMD files -> benchmark splits."""
import pickle
from pathlib import Path

import numpy as np
import pytest

import data
from bench.bench_data import plain_read_skeleton
from tools.raw_skeletons import (PKU_VIEWS, SkeletonFormatError, convert_ntu, convert_pku, cut_instance, find_ntu_files,
                                 pku_instances, pku_video_prefix, read_pku_skeleton, read_skeleton)

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
        assert label == data.parse_ntu_name(stem).action - 1
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
    ntu60 = sorted(n for n in names if data.ntu_in_dataset(n, "ntu60"))
    for dataset, split in (("ntu60", "xsub"), ("ntu60", "xview"), ("ntu120", "xsub"), ("ntu120", "xset")):
        folder = data.split_dir(tmp_path / "out", dataset, split)
        pool = ntu60 if dataset == "ntu60" else sorted(names)
        train = check_rows_match(folder, "train", motions)
        val = check_rows_match(folder, "val", motions)
        assert train == sorted(n for n in pool if data.ntu_is_train(n, dataset, split))
        assert val == sorted(n for n in pool if not data.ntu_is_train(n, dataset, split))
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
