"""data.py: label files and the checks of a split part, the restricted unpickler, preprocessing, the Dataset."""
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import data
from utils.files import read_label_pkl, safe_load_pickle, write_labels
from utils import files
from tools.foreign_formats import convert_existing

FIXTURES = Path(__file__).parent / "fixtures"

NAMES = ["S001C001P001R001A001.skeleton", "S001C002P002R001A002.skeleton", "S001C003P004R002A003.skeleton",
         "S002C001P003R001A010.skeleton", "S002C002P005R002A060.skeleton"]
LABELS = [0, 1, 2, 9, 59]


def raw_samples(seed=0, n=5):
    """(n, 3, 300, 25, 2) raw-coordinate samples of different lengths, zero-padded; every other one has 2 bodies."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 3, 300, 25, 2), np.float32)
    for i in range(n):
        T, M = int(rng.integers(30, 120)), 1 + i % 2
        base = rng.normal(0, 0.3, (3, 1, 25, M)) + np.array([0, 0, 3.0])[:, None, None, None]
        x[i, :, :T, :, :M] = base + np.cumsum(rng.normal(0, 0.02, (3, T, 25, M)), axis=1)
    return x


def write_stgcn(folder, x, names=NAMES, labels=LABELS, data_name="{part}_data.npy"):
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("train", "val"):
        np.save(folder / data_name.format(part=part), x)
        with open(folder / f"{part}_label.pkl", "wb") as f:
            pickle.dump((list(names), list(labels)), f)


# ---- restricted unpickler ------------------------------------------------------------------------------------

class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class CallsEval:
    def __reduce__(self):
        return eval, ("1 + 1",)


class CallsNumpyLoad:
    def __reduce__(self):
        return np.load, ("/etc/passwd",)


def test_malicious_pickle_is_refused_with_a_clear_error_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    for payload, what in ((RunsACommand(marker), "system"), (CallsEval(), "builtins.eval"),
                          (CallsNumpyLoad(), "numpy.load")):
        path = tmp_path / "train_label.pkl"
        path.write_bytes(pickle.dumps((NAMES, payload)))
        with pytest.raises(data.UnsafePickleError, match=rf"train_label.pkl: refused to load: .*{what}"):
            read_label_pkl(path)
    assert not marker.exists()


def test_plain_containers_and_numpy_arrays_load_in_every_protocol(tmp_path):
    content = {"a": [1, 2.5, "x", (3, None)], "b": np.arange(6, dtype=np.float32).reshape(2, 3),
               "c": np.int64(4), "d": {1, 2}, "e": b"bytes"}
    for protocol in (2, 3, 4, 5):
        (tmp_path / "ok.pkl").write_bytes(pickle.dumps(content, protocol=protocol))
        loaded = safe_load_pickle(tmp_path / "ok.pkl")
        np.testing.assert_array_equal(loaded["b"], content["b"])
        assert loaded["a"] == content["a"] and loaded["c"] == 4 and loaded["d"] == {1, 2}


# ---- checks with clear errors --------------------------------------------------------------------------------

def test_duplicate_names_and_wrong_shapes_are_errors():
    shape = (5, 3, 300, 25, 2)
    with pytest.raises(data.DataFormatError, match=r"duplicate sample names, e.g. S001C001P001R001A001 "
                                                   r"\(indices 0 and 3\)"):
        data.check_split(NAMES[:3] + NAMES[:1] + NAMES[4:], LABELS, shape, 60, "somewhere")
    with pytest.raises(data.DataFormatError, match=r"array shape \(5, 3, 300, 20, 2\) is not"):
        data.check_split(NAMES, LABELS, (5, 3, 300, 20, 2), 60, "somewhere")


def test_nan_sample_is_named_when_preprocessing(tmp_path):
    x = raw_samples()
    x[3, 1, 5, 7, 0] = np.nan
    write_stgcn(tmp_path / "nan", x)
    convert_existing(tmp_path / "nan", "ntu60", "xsub", data_root=tmp_path / "out")
    with pytest.raises(data.DataFormatError, match=r"sample S002C001P003R001A010.skeleton \(index 3\) contains NaN"):
        data.load_split(tmp_path / "out", "ntu60", "xsub", "train")


def test_missing_split_names_the_command_that_makes_it(tmp_path):
    with pytest.raises(data.DataNotFoundError, match=r"python tools/gendata.py ntu --raw .* --dataset ntu120"):
        data.load_split(tmp_path, "ntu120", "xset", "val")
    with pytest.raises(data.DataNotFoundError, match=r"python demo/world.py --data-root"):
        data.load_split(tmp_path, "demo", "xsub", "train")
    assert issubclass(data.DataNotFoundError, FileNotFoundError)


# ---- preprocessing -------------------------------------------------------------------------------------------

def test_resizing_a_linear_ramp_interpolates_linearly_over_valid_frames_only():
    x = np.zeros((1, 3, 300, 25, 2), np.float32)
    ramp = np.arange(1, 81, dtype=np.float32)  # 80 valid frames holding 1..80
    x[0, :, :80] = ramp[None, :, None, None]
    with_gaps = np.insert(x[:, :, :80], [10, 40], 0.0, axis=2)  # two empty frames inside
    out = data.resize_valid_frames(x, 50)
    p = np.clip((np.arange(50) + 0.5) * 80 / 50 - 0.5, 0, 79)
    np.testing.assert_allclose(out[0, 0, :, 0, 0], 1 + p, rtol=1e-6)
    np.testing.assert_allclose(data.resize_valid_frames(with_gaps, 50), out, rtol=1e-6)
    np.testing.assert_array_equal(data.resize_valid_frames(x[:, :, :80], 80), x[:, :, :80])  # identity


def crossclr_reference(sample, frames):
    """CrosSCLR's NTUMotionProcessor ('relative', 'resize', y_rotation) for one (C, T, V, M) sample, in loops."""
    C, T, V, M = sample.shape
    length = int((np.abs(sample[:, :, 0, 0]).sum(axis=0) != 0).sum())
    rel = sample - sample[:, :, 20:21, :]
    rel[:, :, 20, :] = sample[:, :, 20, :] - sample[:, 0:1, 20, :]
    out = np.zeros((C, frames, V, M))
    for t in range(frames):  # cv2.resize INTER_LINEAR along time
        p = min(max((t + 0.5) * length / frames - 0.5, 0), length - 1)
        i0 = int(np.floor(p))
        i1, w = min(i0 + 1, length - 1), p - i0
        out[:, t] = (1 - w) * rel[:, i0] + w * rel[:, i1]
    for m in range(M):  # parallel_skeleton
        vec = out[:, :, 8, m] - out[:, :, 4, m]
        vec[1] = 0
        thetas = np.arccos(vec[0] / (np.sqrt((vec ** 2).sum(axis=0)) + 0.0001))
        if vec[2].sum() >= 0:
            thetas = -thetas
        for t, theta in enumerate(thetas):
            rot = np.array([[np.cos(theta), 0, -np.sin(theta)], [0, 1, 0], [np.sin(theta), 0, np.cos(theta)]])
            out[:, t, :, m] = rot @ out[:, t, :, m]
    return out


def test_aimclr_normalisation_matches_crossclr_and_aligns_the_shoulders():
    x = raw_samples(8)
    ours = data.preprocess(x, 50, "aimclr")
    assert ours.shape == (5, 3, 50, 25, 2) and ours.dtype == np.float32
    for i in range(len(x)):
        np.testing.assert_allclose(ours[i], crossclr_reference(x[i].astype(np.float64), 50), atol=2e-5)
    shoulders = ours[:, :, :, 8, 0] - ours[:, :, :, 4, 0]  # (N, 3, T): right - left shoulder
    aligned = np.abs(shoulders[:, 2]) < 0.02 * shoulders[:, 0]  # not exact: arccos(v_x / (|v| + 1e-4))
    before = data.resize_valid_frames(data.center_on_spine_shoulder(x), 50)
    v_z = before[:, 2, :, 8, 0] - before[:, 2, :, 4, 0]  # (N, T)
    agrees = (v_z >= 0) == (v_z.sum(axis=1, keepdims=True) >= 0)  # CrosSCLR picks the sign once per sequence
    assert np.array_equal(aligned, agrees) and agrees.mean() > 0.5
    centred = data.center_on_spine_shoulder(x)
    assert not centred[:, :, :, 20][:, :, 0].any()  # joint 20 (SpineShoulder) keeps its trajectory, starting at 0
    np.testing.assert_allclose(centred[:, :, 5, 3, 0], x[:, :, 5, 3, 0] - x[:, :, 5, 20, 0], atol=1e-6)


def test_ctrgcn_translation_puts_the_first_spine_mid_at_the_origin_and_none_keeps_coordinates():
    x = raw_samples(9)
    lengths = data.valid_frames(x).sum(axis=1)
    translated = data.preprocess(x, 300, "ctrgcn")
    for i, T in enumerate(lengths):
        resized = data.preprocess(x[i:i + 1], int(T), "ctrgcn")[0]
        np.testing.assert_allclose(resized[:, 0, 1, 0], 0, atol=1e-6)
        np.testing.assert_allclose(data.preprocess(x[i:i + 1], int(T), "none")[0], x[i, :, :T], atol=1e-6)
    assert translated.shape == (5, 3, 300, 25, 2)


# ---- the Dataset and its cache -------------------------------------------------------------------------------

def test_dataset_yields_float32_skeleton_label_and_index_from_an_atomic_cache(tmp_path):
    write_stgcn(tmp_path / "src", raw_samples(10))
    convert_existing(tmp_path / "src", "ntu60", "xsub", data_root=tmp_path / "out")
    dataset = data.load_split(tmp_path / "out", "ntu60", "xsub", "train", frames=32, normalization="aimclr")
    folder = data.split_dir(tmp_path / "out", "ntu60", "xsub")
    assert dataset.path == folder / "train_data.aimclr_T32.npy" and dataset.num_class == 60
    assert isinstance(dataset.data, np.memmap) and dataset.data.shape == (5, 3, 32, 25, 2)
    x, y, i = dataset[3]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 25, 2) and (y, i) == (9, 3)
    np.testing.assert_array_equal(x.numpy(), dataset.data[3])
    assert dataset.names[0] == "S001C001P001R001A001" and dataset.labels.dtype == np.int64
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # no temporaries left
    built = dataset.path.stat().st_mtime_ns
    time.sleep(0.01)
    data.load_split(tmp_path / "out", "ntu60", "xsub", "train", frames=32)
    assert dataset.path.stat().st_mtime_ns == built  # reused, not rebuilt
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2)
    batches = list(loader)
    assert torch.equal(torch.cat([b[2] for b in batches]), torch.arange(5))
    assert torch.equal(torch.cat([b[0] for b in batches]), torch.from_numpy(np.array(dataset.data)))


def test_an_empty_split_part_is_a_clear_error_where_it_is_read(tmp_path):
    with pytest.raises(data.DataFormatError, match="somewhere: no samples"):
        data.check_split([], [], (0, 3, 300, 25, 2), 60, "somewhere")
    folder = data.split_dir(tmp_path, "ntu60", "xsub")
    folder.mkdir(parents=True)
    np.save(folder / "val_data.npy", np.zeros((0, 3, 300, 25, 2), np.float32))
    write_labels(folder / "val_label.pkl", [], [])
    with pytest.raises(data.DataFormatError, match="val_data.npy: no samples"):
        data.load_split(tmp_path, "ntu60", "xsub", "val")


def test_replacing_a_split_part_deletes_its_old_rows_and_caches_only(tmp_path):
    for name in ("train_data.npy", "train_data.aimclr_T50.npy", "train_data.none_T64.npy", "val_data.npy",
                 "train_label.pkl"):
        (tmp_path / name).write_bytes(b"x")
    files.remove_part_arrays(tmp_path, "train", keep=[tmp_path / "train_data.npy"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train_data.npy", "train_label.pkl", "val_data.npy"]
