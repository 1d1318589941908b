"""The command line tools/gendata.py: every sub-command, run in-process and as a script."""
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import data
from utils.files import write_labels
from demo import world
from test_data import raw_samples, write_stgcn
from test_raw_skeletons import corrupt_catalogue
from demo import world as demo_world
from tools import gendata, ntu_names, raw_skeletons

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args):
    return subprocess.run([sys.executable, "tools/gendata.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_cli_help_lists_every_command(capsys):
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("ntu", "pku", "convert", "info"):
        assert command in result.stdout
        with pytest.raises(SystemExit) as done:
            gendata.main([command, "--help"])
        assert done.value.code == 0 and "--data-root" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"error: the demo dataset is made by `python demo/world.py`"):
        gendata.main(["demo"])  # the older spelling says where the demo went (demo/ uses tools/, not the reverse)


def test_cli_ntu_convert_pku_info_and_demo_commands_work(demo, tmp_path, capsys):
    root, _ = demo
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in world.demo_names()[::18]:  # 60 samples of every subject and camera
        shutil.copy(root / "demo" / "raw" / f"{name}.skeleton", raw)
    gendata.main(["ntu", "--raw", str(raw), "--dataset", "ntu60", "--data-root", str(tmp_path / "a"),
                  "--workers", "1", "--frames", "20"])
    assert "ntu60/xsub/train: 30 samples" in capsys.readouterr().out
    assert len(data.load_split(tmp_path / "a", "ntu60", "xview", "val", frames=20)) == 21
    gendata.main(["convert", str(data.split_dir(tmp_path / "a", "ntu60", "xsub")), "--dataset", "ntu60",
                  "--split", "xsub", "--data-root", str(tmp_path / "b"), "--normalization", "ctrgcn"])
    assert (data.split_dir(tmp_path / "b", "ntu60", "xsub") / "val_data.ctrgcn_T50.npy").is_file()
    (tmp_path / "skeleton").mkdir()
    (tmp_path / "label").mkdir()
    np.savetxt(tmp_path / "skeleton" / "0002-L.txt", np.random.default_rng(0).normal(size=(30, 150)))
    (tmp_path / "label" / "0002-L.txt").write_text("8,1,20,1\n")
    np.savetxt(tmp_path / "skeleton" / "0003-M.txt", np.random.default_rng(1).normal(size=(30, 150)))
    (tmp_path / "label" / "0003-M.txt").write_text("3,5,30,1\n")
    (tmp_path / "cross-view.txt").write_text("Training videos: \n0002-L\nValidataion videos: \n0003-M\n")
    gendata.main(["pku", "--phase", "1", "--skeletons", str(tmp_path / "skeleton"), "--labels", str(tmp_path / "label"),
                  "--xview", str(tmp_path / "cross-view.txt"), "--data-root", str(tmp_path / "c"), "--workers", "1"])
    assert data.load_split(tmp_path / "c", "pku1", "xview", "val").names == ["F003V002C003L001"]
    gendata.main(["info", "--data-root", str(tmp_path / "c"), "--dataset", "pku1"])
    assert "pku1    xview train       1 samples" in capsys.readouterr().out
    demo_world.main(["--data-root", str(root)])
    assert capsys.readouterr().out.strip() == str(root / "demo")
    with pytest.raises(SystemExit, match=r"error: .*skeleton/train_data.npy not found"):
        gendata.main(["convert", str(tmp_path / "skeleton" / "0002-L.txt"), "--dataset", "pku1", "--format", "stgcn",
                      "--split", "xsub", "--data-root", str(tmp_path / "d")])
    pickle.loads(pickle.dumps(data.load_split(tmp_path / "a", "ntu60", "xsub", "train", frames=20)))  # picklable


# ---- every mistake a newcomer makes gets one `error: ...` line naming the fix ---------------------------------

def fails(args, *needles):
    """main(args) ends with exactly one `error: ...` line that names every needle."""
    with pytest.raises(SystemExit) as done:
        gendata.main(args)
    message = str(done.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def cli_fails(*args):
    """The script as a user runs it: non-zero exit, no traceback, the last stderr line is the error."""
    result = run_cli(*args)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    return last


def ctrgcn_file(path, classes=60, train=3, val=2):
    """A CTR-GCN-style .npz: x (N, 300, 150), one-hot y over `classes`."""
    x = raw_samples(20, train + val).transpose(0, 2, 4, 3, 1).reshape(train + val, 300, 150)
    np.savez(path, x_train=x[:train], y_train=np.eye(classes)[np.arange(train)], x_test=x[train:],
             y_test=np.eye(classes)[np.arange(val)])
    return path


def test_convert_names_the_fix_for_a_missing_names_file_and_warns_without_one(tmp_path, capsys):
    npz = ctrgcn_file(tmp_path / "NTU60_CS.npz")
    last = cli_fails("convert", str(npz), "--dataset", "ntu60", "--names", str(tmp_path / "skes_available_name.txt"),
                     "--data-root", str(tmp_path / "out"))
    assert "--names" in last and "not found" in last and "skes_available_name.txt" in last
    gendata.main(["convert", str(npz), "--dataset", "ntu60", "--data-root", str(tmp_path / "out"), "--no-cache"])
    err = capsys.readouterr().err
    assert "warning: NTU60_CS.npz holds no sample names" in err and "cannot be matched" in err and "--names" in err
    fails(["convert", str(npz), "--dataset", "ntu60", "--split", "xset", "--data-root", str(tmp_path / "b")],
          "--split xset is not a split of ntu60")


def test_convert_refuses_ntu60_arrays_given_as_ntu120(tmp_path):
    npz = ctrgcn_file(tmp_path / "NTU60_CS.npz")
    cli_fails("convert", str(npz), "--dataset", "ntu120", "--names", str(tmp_path / "missing.txt"))
    fails(["convert", str(npz), "--dataset", "ntu120", "--data-root", str(tmp_path / "out")],
          "CTR-GCN's ntu60 xsub file", "pass --dataset ntu60")
    renamed = ctrgcn_file(tmp_path / "mine.npz")
    fails(["convert", str(renamed), "--dataset", "ntu120", "--split", "xsub", "--data-root", str(tmp_path / "out")],
          "one-hot over 60 classes", "--dataset ntu120 has 120")
    write_stgcn(tmp_path / "stgcn", raw_samples(21))
    fails(["convert", str(tmp_path / "stgcn"), "--dataset", "ntu120", "--split", "xsub",
           "--data-root", str(tmp_path / "out")], "NTU-60 arrays", "every sample name is an NTU-60 one",
          "pass --dataset ntu60")
    assert not (tmp_path / "out" / "ntu120").exists()


def test_an_existing_split_is_never_replaced_without_force(tmp_path):
    write_stgcn(tmp_path / "stgcn", raw_samples(22))
    args = ["convert", str(tmp_path / "stgcn"), "--dataset", "ntu60", "--split", "xsub", "--data-root",
            str(tmp_path / "out"), "--frames", "20"]
    gendata.main(args)
    folder = data.split_dir(tmp_path / "out", "ntu60", "xsub")
    assert (folder / "train_data.aimclr_T20.npy").is_file()
    fails(args, "ntu60/xsub already holds a split", "pass --force")
    write_stgcn(tmp_path / "other", raw_samples(23))
    gendata.main(["convert", str(tmp_path / "other")] + args[2:-2] + ["--no-cache", "--force"])
    assert not (folder / "train_data.aimclr_T20.npy").exists()  # the old cache went with the old rows
    np.testing.assert_array_equal(np.load(folder / "train_data.npy"), raw_samples(23))


def write_pku(tmp_path):
    (tmp_path / "skeleton").mkdir()
    (tmp_path / "label").mkdir()
    for k, video in enumerate(("0002-L", "0003-M")):
        np.savetxt(tmp_path / "skeleton" / f"{video}.txt", np.random.default_rng(k).normal(size=(30, 150)))
        (tmp_path / "label" / f"{video}.txt").write_text(f"{8 - k},1,20,1\n")
    (tmp_path / "cross-view.txt").write_text("Training videos: \n0002-L\nValidataion videos: \n0003-M\n")
    return ["pku", "--phase", "1", "--skeletons", str(tmp_path / "skeleton"), "--labels", str(tmp_path / "label"),
            "--data-root", str(tmp_path / "out"), "--workers", "1", "--no-cache"]


def test_pku_names_a_missing_split_file_and_refuses_to_replace_a_split(tmp_path):
    args = write_pku(tmp_path)
    last = cli_fails(*args, "--xview", str(tmp_path / "cross-view-v1.txt"))
    assert "--xview split file" in last and "cross-view-v1.txt not found" in last
    fails(args[:3] + ["--skeletons", str(tmp_path / "nowhere")] + args[5:] + ["--xview", "x"],
          "--skeletons folder", "not found")
    gendata.main(args + ["--xview", str(tmp_path / "cross-view.txt")])
    fails(args + ["--xview", str(tmp_path / "cross-view.txt")], "pku1/xview already holds a split", "--force")
    gendata.main(args + ["--xview", str(tmp_path / "cross-view.txt"), "--force"])


def test_ntu_refuses_an_empty_split_part_an_existing_split_and_names_a_failing_worker(demo, tmp_path, monkeypatch):
    root, _ = demo
    raw = tmp_path / "raw"
    raw.mkdir()
    names = world.demo_names()
    for name in names[::18]:
        shutil.copy(root / "demo" / "raw" / f"{name}.skeleton", raw)
    only_test_subjects = tmp_path / "raw_val"
    only_test_subjects.mkdir()
    for name in [n for n in names if ntu_names.parse_ntu_name(n).subject == 3][:4]:
        shutil.copy(root / "demo" / "raw" / f"{name}.skeleton", only_test_subjects)
    args = ["ntu", "--dataset", "ntu60", "--data-root", str(tmp_path / "out"), "--workers", "1", "--no-cache"]
    last = cli_fails(*args, "--raw", str(only_test_subjects))
    assert "give no sample to ntu60 xsub train" in last and "nothing was written" in last and "--dataset" in last
    cli_fails(*args, "--raw", str(tmp_path / "nowhere"))
    fails(args + ["--raw", str(raw), "--missing", str(tmp_path / "missing.txt")], "--missing", "not found")
    gendata.main(args + ["--raw", str(raw)])
    fails(args + ["--raw", str(raw)], "ntu60/xsub already holds a split", "pass --force")
    monkeypatch.setattr(raw_skeletons, "_read_ntu_task", broken_task)
    fails(args + ["--raw", str(raw), "--force"], "RuntimeError: a bug", "the run stopped")


def broken_task(path):
    raise RuntimeError("a bug")


def test_ntu_names_every_corrupt_file_with_its_line_and_keeps_the_valid_ones(tmp_path):
    expected = corrupt_catalogue(tmp_path / "raw")
    result = run_cli("ntu", "--raw", str(tmp_path / "raw"), "--dataset", "ntu60", "--data-root",
                     str(tmp_path / "out"), "--workers", "2", "--no-cache")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert f"corrupt, skipped: {len(expected)}" in result.stdout
    for name, why in expected.items():
        assert f"{name}.skeleton: {why}" in result.stdout, name
    assert "ntu60/xsub/train: 2 samples" in result.stdout and "ntu60/xsub/val: 2 samples" in result.stdout


def test_info_lists_an_empty_or_unreadable_split_without_crashing(tmp_path, capsys):
    folder = data.split_dir(tmp_path, "ntu60", "xsub")
    folder.mkdir(parents=True)
    write_labels(folder / "train_label.pkl", [], [])
    np.save(folder / "train_data.npy", np.zeros((0, 3, 300, 25, 2), np.float32))
    (folder / "val_label.pkl").write_bytes(b"not a pickle")
    gendata.main(["info", "--data-root", str(tmp_path), "--dataset", "ntu60"])
    out = capsys.readouterr().out
    assert "ntu60   xsub  train       0 samples: empty, remake it: python tools/gendata.py ntu" in out
    assert "--force" in out and "ntu60   xsub  val    unreadable (" in out


def test_demo_prints_its_folder_when_it_generates_it(tmp_path, monkeypatch, capsys):
    subset = world.demo_names()[::18]
    monkeypatch.setattr(world, "demo_names", lambda replications=world.DEMO_REPLICATIONS: subset)
    demo_world.main(["--data-root", str(tmp_path), "--workers", "2"])
    assert capsys.readouterr().out.strip() == str(tmp_path / "demo")
    assert len(data.load_split(tmp_path, "demo", "xsub", "train")) + len(
        data.load_split(tmp_path, "demo", "xsub", "val")) == len(subset)
