"""The command line tools/gendata.py: every sub-command, run in-process and as a script."""
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import data
from demo import world
from tools import gendata

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args):
    return subprocess.run([sys.executable, "tools/gendata.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_cli_help_lists_every_command(capsys):
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("ntu", "pku", "convert", "demo", "info"):
        assert command in result.stdout
        with pytest.raises(SystemExit) as done:
            gendata.main([command, "--help"])
        assert done.value.code == 0 and "--data-root" in capsys.readouterr().out


def test_cli_ntu_convert_pku_info_and_demo_commands_work(demo, tmp_path, capsys):
    root, _ = demo
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in world.demo_names()[::18]:  # 50 samples of every subject and camera
        shutil.copy(root / "demo" / "raw" / f"{name}.skeleton", raw)
    gendata.main(["ntu", "--raw", str(raw), "--dataset", "ntu60", "--data-root", str(tmp_path / "a"),
                  "--workers", "1", "--frames", "20"])
    assert "ntu60/xsub/train: 28 samples" in capsys.readouterr().out
    assert len(data.load_split(tmp_path / "a", "ntu60", "xview", "val", frames=20)) == 17
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
    gendata.main(["demo", "--data-root", str(root)])
    assert capsys.readouterr().out.strip() == str(root / "demo")
    with pytest.raises(SystemExit, match=r"error: .*skeleton/train_data.npy not found"):
        gendata.main(["convert", str(tmp_path / "skeleton" / "0002-L.txt"), "--dataset", "pku1", "--format", "stgcn",
                      "--split", "xsub", "--data-root", str(tmp_path / "d")])
    pickle.loads(pickle.dumps(data.load_split(tmp_path / "a", "ntu60", "xsub", "train", frames=20)))  # picklable
