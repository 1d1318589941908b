"""tools/foreign_formats.py: the formats users already have round-trip into split folders, checked before install."""
import os
import pickle

import numpy as np
import pytest

import data
from utils.files import read_label_pkl
from test_data import LABELS, NAMES, raw_samples, write_stgcn  # the samples data.py's tests use too
from tools.foreign_formats import convert_existing, detect_format


def installed(root, dataset, split, part="train", suffix=""):
    folder = data.split_dir(root, dataset, split)
    names, labels = pickle.load(open(folder / f"{part}_label.pkl", "rb"))
    return np.load(folder / f"{part}_data{suffix}.npy", mmap_mode="r"), names, labels


# ---- round trips through every format ------------------------------------------------------------------------

def test_stgcn_layout_round_trips_by_symlink(tmp_path):
    x = raw_samples()
    write_stgcn(tmp_path / "NTU-RGB-D" / "xsub", x)
    convert_existing(tmp_path / "NTU-RGB-D" / "xsub", "ntu60", "xsub", data_root=tmp_path / "out")
    array, names, labels = installed(tmp_path / "out", "ntu60", "xsub")
    assert os.path.islink(data.split_dir(tmp_path / "out", "ntu60", "xsub") / "train_data.npy")
    np.testing.assert_array_equal(array, x)
    assert names == NAMES and labels == LABELS


def test_agcn_joint_layout_round_trips_with_copy(tmp_path):
    x = raw_samples(1)
    write_stgcn(tmp_path / "agcn", x, data_name="{part}_data_joint.npy")
    assert detect_format(tmp_path / "agcn") == "agcn"
    convert_existing(tmp_path / "agcn", "ntu60", "xview", data_root=tmp_path / "out", copy=True)
    array, names, _ = installed(tmp_path / "out", "ntu60", "xview", "val")
    assert not os.path.islink(data.split_dir(tmp_path / "out", "ntu60", "xview") / "val_data.npy")
    np.testing.assert_array_equal(array, x)
    assert names == NAMES


def test_aimclr_50_frame_arrays_need_the_300_frame_labels_and_become_the_training_cache(tmp_path):
    x50 = data.preprocess(raw_samples(2), 50, "aimclr")
    (tmp_path / "frame50" / "xsub").mkdir(parents=True)
    for part in ("train", "val"):
        np.save(tmp_path / "frame50" / "xsub" / f"{part}_position.npy", x50)
    write_stgcn(tmp_path / "NTU-RGB-D" / "xsub", raw_samples(2))
    with pytest.raises(data.DataNotFoundError, match="pass --labels"):
        convert_existing(tmp_path / "frame50" / "xsub", "ntu60", "xsub", data_root=tmp_path / "out")
    convert_existing(tmp_path / "frame50" / "xsub" / "train_position.npy", "ntu60", "xsub",
                     data_root=tmp_path / "out", labels=tmp_path / "NTU-RGB-D" / "xsub")
    dataset = data.load_split(tmp_path / "out", "ntu60", "xsub", "train", frames=50, normalization="aimclr")
    np.testing.assert_array_equal(dataset.data, x50)
    assert dataset.names == [n.removesuffix(".skeleton") for n in NAMES]
    with pytest.raises(data.DataNotFoundError, match="only train_data.aimclr_T50.npy exist"):
        data.load_split(tmp_path / "out", "ntu60", "xsub", "train", frames=64)


def ctrgcn_rows(x):
    """(N, 3, T, 25, 2) -> CTR-GCN's (N, T, 150) = (N, T, 2 bodies, 25 joints, xyz)."""
    return x.transpose(0, 2, 4, 3, 1).reshape(len(x), x.shape[2], 150)


@pytest.mark.parametrize("compressed", [False, True])
def test_ctrgcn_npz_round_trips_with_names_from_the_name_list(tmp_path, compressed):
    train_x, val_x = raw_samples(3, 3), raw_samples(4, 2)
    # CTR-GCN's NTU60_CS: training subjects 1, 2, 4; test subjects 3, 6 (order of skes_available_name.txt).
    listed = ["S001C001P001R001A001", "S001C001P003R001A004", "S001C001P002R001A002", "S001C001P006R001A005",
              "S001C001P004R001A003", "S018C001P001R001A061"]
    (tmp_path / "skes_available_name.txt").write_text("\n".join(listed) + "\n")
    save = np.savez_compressed if compressed else np.savez
    save(tmp_path / "NTU60_CS.npz", x_train=ctrgcn_rows(train_x), y_train=np.eye(60)[[0, 1, 2]],
         x_test=ctrgcn_rows(val_x), y_test=np.eye(60)[[3, 4]])
    convert_existing(tmp_path / "NTU60_CS.npz", "ntu60", names_file=tmp_path / "skes_available_name.txt",
                     data_root=tmp_path / "out")
    array, names, labels = installed(tmp_path / "out", "ntu60", "xsub", "train")
    np.testing.assert_array_equal(array, train_x)
    assert names == ["S001C001P001R001A001", "S001C001P002R001A002", "S001C001P004R001A003"] and labels == [0, 1, 2]
    array, names, labels = installed(tmp_path / "out", "ntu60", "xsub", "val")
    np.testing.assert_array_equal(array, val_x)
    assert names == ["S001C001P003R001A004", "S001C001P006R001A005"] and labels == [3, 4]


def test_ctrgcn_npz_without_a_name_list_gets_positional_names(tmp_path):
    np.savez(tmp_path / "NTU120_CSet.npz", x_train=ctrgcn_rows(raw_samples(5, 2)), y_train=np.eye(120)[[7, 8]],
             x_test=ctrgcn_rows(raw_samples(6, 1)), y_test=np.eye(120)[[119]])
    convert_existing(tmp_path / "NTU120_CSet.npz", "ntu120", data_root=tmp_path / "out")
    _, names, labels = installed(tmp_path / "out", "ntu120", "xset", "val")
    assert names == ["NTU120_CSet/val/000000"] and labels == [119]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pyskl_3danno_round_trips_every_split(tmp_path, protocol):
    x = raw_samples(7)
    annotations = []
    for name, label, sample in zip(NAMES, LABELS, x):
        T = int(data.valid_frames(sample[None])[0].sum())
        keypoint = sample[:, :T].transpose(3, 1, 2, 0).copy()  # (M, T, 25, 3)
        annotations.append({"frame_dir": name.removesuffix(".skeleton"), "label": label, "keypoint": keypoint,
                            "total_frames": T})
    stems = [n.removesuffix(".skeleton") for n in NAMES]
    split = {"xsub_train": stems[:3], "xsub_val": stems[3:], "xview_train": stems[1:], "xview_val": stems[:1]}
    with open(tmp_path / "ntu60_3danno.pkl", "wb") as f:
        pickle.dump({"split": split, "annotations": annotations}, f, protocol=protocol)
    convert_existing(tmp_path / "ntu60_3danno.pkl", "ntu60", data_root=tmp_path / "out")
    for split_name, part, rows in (("xsub", "train", slice(0, 3)), ("xsub", "val", slice(3, 5)),
                                   ("xview", "train", slice(1, 5)), ("xview", "val", slice(0, 1))):
        array, names, labels = installed(tmp_path / "out", "ntu60", split_name, part)
        np.testing.assert_array_equal(array, x[rows])
        assert names == stems[rows] and labels == LABELS[rows]


# ---- checks before anything is installed ---------------------------------------------------------------------

def test_label_out_of_range_is_explained(tmp_path):
    x = raw_samples()
    write_stgcn(tmp_path / "bad", x, labels=[0, 60, 1, 2, 3])
    with pytest.raises(data.DataFormatError, match=r"labels outside 0..59, first: label 60 of sample "
                                                   r"S001C002P002R001A002.skeleton \(index 1\)"):
        convert_existing(tmp_path / "bad", "ntu60", "xsub", data_root=tmp_path / "out")
    write_stgcn(tmp_path / "one_based", x, labels=[1, 2, 3, 10, 60])
    with pytest.raises(data.DataFormatError, match="look 1-based"):
        convert_existing(tmp_path / "one_based", "ntu60", "xsub", data_root=tmp_path / "out")
    assert not (tmp_path / "out" / "ntu60" / "xsub" / "train_label.pkl").exists()  # nothing half-installed


def test_names_and_arrays_length_mismatch_is_an_error(tmp_path):
    write_stgcn(tmp_path / "short", raw_samples(), names=NAMES[:4], labels=LABELS[:4])
    with pytest.raises(data.DataFormatError, match="the array has 5 samples but the label file lists 4 names"):
        convert_existing(tmp_path / "short", "ntu60", "xsub", data_root=tmp_path / "out")
    (tmp_path / "pairs.pkl").write_bytes(pickle.dumps((NAMES, LABELS[:3])))
    with pytest.raises(data.DataFormatError, match="5 names but 3 labels"):
        read_label_pkl(tmp_path / "pairs.pkl")


@pytest.mark.parametrize("empty", ["train", "test"])
def test_ctrgcn_npz_with_an_empty_part_converts_the_part_that_exists(tmp_path, capsys, empty):
    """Both NTU60_CS.npz (x_train emptied) and NTU60_CV.npz (x_test emptied) circulate; with the name list the
    non-empty part converts with its names, and the message says which part was left out."""
    listed = ["S001C001P001R001A001", "S001C002P003R001A004", "S001C002P002R001A002", "S001C001P006R001A005"]
    (tmp_path / "names.txt").write_text("\n".join(listed) + "\n")
    rows = {"train": raw_samples(7, 2), "test": raw_samples(8, 2)}
    arrays = {f"x_{k}": ctrgcn_rows(v) for k, v in rows.items()}
    arrays.update(y_train=np.eye(60)[[0, 1]], y_test=np.eye(60)[[3, 4]])
    arrays[f"x_{empty}"], arrays[f"y_{empty}"] = np.zeros((0, 300, 150), np.float32), np.zeros((0, 60))
    np.savez(tmp_path / "NTU60_CV.npz", **arrays)  # xview: cameras 2, 3 train, camera 1 test
    convert_existing(tmp_path / "NTU60_CV.npz", "ntu60", names_file=tmp_path / "names.txt", data_root=tmp_path / "out")
    part, kept = ("val", "train") if empty == "test" else ("train", "test")
    assert f"x_{empty} is empty: its {part} part is left out" in capsys.readouterr().err
    array, names, _ = installed(tmp_path / "out", "ntu60", "xview", "train" if kept == "train" else "val")
    np.testing.assert_array_equal(array, rows[kept])
    assert names == (listed[1:3] if kept == "train" else [listed[0], listed[3]])
    assert not (tmp_path / "out" / "ntu60" / "xview" / f"{part}_label.pkl").exists()


def test_an_empty_part_and_the_other_ntu_dataset_are_refused_before_anything_is_installed(tmp_path):
    x = raw_samples(11)
    write_stgcn(tmp_path / "empty", x)
    np.save(tmp_path / "empty" / "train_data.npy", x[:0])
    (tmp_path / "empty" / "train_label.pkl").write_bytes(pickle.dumps(([], [])))
    with pytest.raises(data.DataFormatError, match=r"train_data.npy \(train\): no samples"):
        convert_existing(tmp_path / "empty", "ntu60", "xsub", data_root=tmp_path / "out")
    ntu120_names = NAMES[:4] + ["S018C001P045R001A061.skeleton"]
    write_stgcn(tmp_path / "ntu120", x, names=ntu120_names)
    with pytest.raises(data.DataFormatError, match=r"sample S018C001P045R001A061 is not part of NTU-60 .* pass "
                                                   r"--dataset ntu120"):
        convert_existing(tmp_path / "ntu120", "ntu60", "xsub", data_root=tmp_path / "out")
    write_stgcn(tmp_path / "unnamed", x, names=[f"sample_{i}" for i in range(5)])
    with pytest.raises(data.DataFormatError, match=r"NTU-60 arrays: their labels stay in 0..59 .* --dataset ntu60"):
        convert_existing(tmp_path / "unnamed", "ntu120", "xsub", data_root=tmp_path / "out")
    assert not (tmp_path / "out").exists()
