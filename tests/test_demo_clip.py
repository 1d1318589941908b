"""demo/clip.py: the demo through prompts.py, its rendered frames and answers -> crops -> both caches (tiny CLIP)."""
import json

import numpy as np
import pytest
import torch

import data
import prompts
from demo.clip import prepare_demo_prompts
from demo.frames import demo_frame_source
from demo.world import demo_names, prepare_demo
from tools import generate_prompts

SAMPLES_PER_PART = 4  # the full demo (both splits, every sample) takes minutes here; the code path is the same


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    prepare_demo(root)
    return root


@pytest.fixture()
def few_samples(monkeypatch):
    every = prompts.split_names
    first = lambda *args: every(*args)[:SAMPLES_PER_PART]  # noqa: E731
    monkeypatch.setattr(prompts, "split_names", first)
    return first


def test_demo_crops_from_color_xy_hold_the_rendered_person(demo_root):
    name = demo_names()[0]
    source = demo_frame_source(demo_root, name)
    color_xy = generate_prompts.skeleton_color_xy(demo_root / "demo" / "raw", name)  # (T, M, 25, 2)
    prompt = generate_prompts.vision_prompt(source, color_xy)
    frames = source.read(prompt["frames"])
    background = np.asarray(frames[0])[5, 5].astype(int)  # top-left corner: wall
    for frame, box in zip(frames, prompt["boxes"]):
        assert box is not None
        crop = np.asarray(prompts.crop_person(frame, box, 64)).astype(int)  # (64, 64, 3)
        person = np.abs(crop - background).sum(axis=2) > 60  # pixels that are not the wall
        assert person[16:48, 16:48].mean() > 0.25  # the person fills the middle of the crop


def test_prepare_demo_prompts_builds_both_caches_for_both_splits_idempotently(demo_root, few_samples):
    prepare_demo_prompts(demo_root)
    for split in data.DATASETS["demo"]:
        for part in data.PARTS:
            names = few_samples(demo_root, "demo", split, part)
            for modality in prompts.MODALITIES:
                path = prompts.cache_path(demo_root, "demo", split, part, modality, prompts.DEMO_CLIP_MODEL, None)
                features, present = prompts.load_prompt_features(path, names, prompts.DEMO_CLIP_MODEL, None)
                assert features.shape == (SAMPLES_PER_PART, 64) and present.all()
    path = prompts.cache_path(demo_root, "demo", "xsub", "train", "vision", prompts.DEMO_CLIP_MODEL, None)
    assert path == demo_root / "demo" / "xsub" / "prompts" / "train_vision_c2vl-demo-tiny_random.npy"
    mtime = path.stat().st_mtime_ns
    prepare_demo_prompts(demo_root)
    assert path.stat().st_mtime_ns == mtime


def test_demo_answers_go_through_the_released_format_importer(demo_root, few_samples):
    names = few_samples(demo_root, "demo", "xview", "val")
    matched, report = prompts.import_released(demo_root / "demo" / "demo_language.json", names)
    assert report.matched == len(names) and not report.missing and report.extra == len(demo_names()) - len(names)
    assert all(len(answers) == 16 for answers in matched.values())


def test_cli_import_then_encode_makes_the_cache_training_reads(demo_root, few_samples, capsys):
    answers = demo_root / "demo" / "demo_language.json"
    prompts.main(["import", str(answers), "--data-root", str(demo_root), "--dataset", "demo", "--split", "xview"])
    extra = len(demo_names()) - SAMPLES_PER_PART
    assert f"{SAMPLES_PER_PART} matched, 0 missing, {extra} extra (ignored)" in capsys.readouterr().out
    prompts.main(["encode", "--data-root", str(demo_root), "--dataset", "demo", "--split", "xview", "--part", "val",
                  "--modality", "language", "--clip-model", prompts.DEMO_CLIP_MODEL, "--pretrained", "none"])
    path = prompts.cache_path(demo_root, "demo", "xview", "val", "language", prompts.DEMO_CLIP_MODEL, None)
    names = few_samples(demo_root, "demo", "xview", "val")
    features, _ = prompts.load_prompt_features(path, names, prompts.DEMO_CLIP_MODEL, None)
    language = json.loads((path.parent / "val_language_prompts.json").read_text())
    clip = prompts.load_clip(prompts.DEMO_CLIP_MODEL, None)
    reference = clip.encode_texts(language[data.sample_name(names[1])])  # (16, D)
    pooled = reference.mean(0) / reference.mean(0).norm()
    np.testing.assert_allclose(features[1], pooled.numpy(), atol=2e-3)


def test_cli_device_cuda_without_cuda_fails_at_once_naming_device_cpu(tmp_path, monkeypatch):
    from demo import clip as demo_clip
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only machine, also on a GPU one
    with pytest.raises(SystemExit) as exit_:
        demo_clip.main(["--device", "cuda", "--data-root", str(tmp_path / "datasets")])
    assert str(exit_.value.code) == ("error: --device cuda: this torch build or machine has no CUDA device "
                                     "(use --device cpu)")
    assert not (tmp_path / "datasets").exists()  # checked before the demo is generated
