"""Shared test settings: no network for model weights, deterministic and small."""
import os
import time

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The demo dataset, generated once per session (test_demo_world.py, test_gendata.py): (root, seconds)."""
    from demo.world import prepare_demo
    root = tmp_path_factory.mktemp("demo")
    started = time.perf_counter()
    prepare_demo(root, seed=0, workers=2)
    return root, time.perf_counter() - started
