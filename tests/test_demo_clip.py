"""demo/clip.py and demo/corpus.py: the demo CLIP, and the demo through prompts.py (rendered frames and answers ->
crops -> both caches)."""
import json

import numpy as np
import pytest
import torch

import data
import prompts
from utils.files import file_sha256
from utils.prompt_files import match_prompts, read_language_prompts, weights_fingerprint
from demo import clip as demo_clip
from demo import corpus, world
from demo.clip import prepare_demo_prompts
from demo.frames import demo_frame_source
from demo.world import demo_names, prepare_demo
from tools import generate_prompts, prompt_commands

SAMPLES_PER_PART = 4  # the full demo (both splits, every sample) takes minutes here; the code path is the same


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    prepare_demo(root)
    return root


@pytest.fixture()
def few_samples(monkeypatch):
    every = prompt_commands.split_names
    first = lambda *args: every(*args)[:SAMPLES_PER_PART]  # noqa: E731
    monkeypatch.setattr(prompt_commands, "split_names", first)
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
    prepare_demo_prompts(demo_root, random_clip=True)  # the code path of the pretrained demo CLIP, without its cost
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
    prepare_demo_prompts(demo_root, random_clip=True)
    assert path.stat().st_mtime_ns == mtime


def test_demo_answers_go_through_the_released_format_importer(demo_root, few_samples):
    names = few_samples(demo_root, "demo", "xview", "val")
    matched, report = match_prompts(read_language_prompts(demo_root / "demo" / "demo_language.json"), names)
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
    clip = prompts.load_clip(prompts.DEMO_CLIP_MODEL, None)  # random weights, the same on every call
    reference = clip.encode_texts(language[data.sample_name(names[1])])  # (16, D)
    pooled = reference.mean(0) / reference.mean(0).norm()
    np.testing.assert_allclose(features[1], pooled.numpy(), atol=2e-3)


def test_cli_device_cuda_without_cuda_fails_at_once_naming_device_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only machine, also on a GPU one
    with pytest.raises(SystemExit) as exit_:
        demo_clip.main(["--device", "cuda", "--data-root", str(tmp_path / "datasets")])
    assert str(exit_.value.code) == ("error: --device cuda: this torch build or machine has no CUDA device "
                                     "(use --device cpu)")
    assert not (tmp_path / "datasets").exists()  # checked before the demo is generated


# --- The demo CLIP: its corpus, its pretraining, its checkpoint loaded like a user's -------------------------------

def test_corpus_comes_from_performers_outside_every_demo_split_and_captions_what_is_visible(monkeypatch):
    monkeypatch.setattr(corpus, "CORPUS_SUBJECTS", 1)
    monkeypatch.setattr(corpus, "HELD_OUT", 1)
    made = corpus.make_corpus(32, seed=0, workers=1)
    n = 2 * len(data.DEMO_CLASSES) * 3 * corpus.FRAMES_PER_SAMPLE  # 2 performers, 15 actions, 3 cameras
    assert made["images"].shape == (n, 32, 32, 3) and made["images"].dtype == np.uint8 and len(made["captions"]) == n
    assert set(made["subjects"]) == {13, 14}  # the demo's splits hold subjects 1..12
    assert np.array_equal(made["held_out"], made["subjects"] == 14)  # the last HELD_OUT performers check the CLIP
    assert not set(corpus.corpus_names(range(13, 15))) & set(demo_names())
    for caption, label in zip(made["captions"], made["labels"]):  # the action, or a person standing before/after
        assert data.DEMO_CLASSES[label] in caption or "stand" in caption or caption.startswith("a person ")
    again = corpus.make_corpus(32, seed=0, workers=2)
    assert np.array_equal(again["images"], made["images"]) and again["captions"] == made["captions"]


def test_clip_loss_is_clips_symmetric_infonce():
    g = torch.Generator().manual_seed(0)
    image = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=1)
    text = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=1)
    s = torch.tensor(2.0)
    logits = np.exp(2.0) * (image @ text.T).numpy().astype(np.float64)
    rows = -np.mean(np.diag(logits) - np.log(np.exp(logits).sum(1)))  # image -> its caption
    cols = -np.mean(np.diag(logits) - np.log(np.exp(logits).sum(0)))  # caption -> its image
    assert float(demo_clip.clip_loss(image, text, s)) == pytest.approx((rows + cols) / 2, rel=1e-5)


def test_pretrain_demo_clip_saves_a_checkpoint_open_clip_loads_deterministically(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "CORPUS_SUBJECTS", 1)
    monkeypatch.setattr(corpus, "HELD_OUT", 1)
    monkeypatch.setattr(demo_clip, "DEMO_CLIP_RECIPE", dict(demo_clip.DEMO_CLIP_RECIPE, steps=3, batch_size=16))
    state = torch.random.get_rng_state()
    meta = demo_clip.pretrain_demo_clip(tmp_path / "a.pt", workers=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random state is untouched
    assert meta["recipe"]["steps"] == 3 and 0 <= meta["held_out_zero_shot"] <= 1
    assert json.loads((tmp_path / "a.json").read_text()) == meta
    demo_clip.pretrain_demo_clip(tmp_path / "b.pt", workers=1)
    saved, again = (torch.load(tmp_path / name, weights_only=True) for name in ("a.pt", "b.pt"))
    assert all(torch.equal(saved[k], again[k]) for k in saved)  # deterministic on one machine
    clip = prompts.load_clip(prompts.DEMO_CLIP_MODEL, str(tmp_path / "a.pt"))  # the path of a user's checkpoint
    assert all(torch.equal(saved[k], v) for k, v in clip.model.state_dict().items())
    assert not any(p.requires_grad for p in clip.model.parameters())


def test_packed_demo_clip_unpacks_to_the_same_model_for_every_demo_text(tmp_path, monkeypatch):
    """The shipped file keeps the embedding rows of the demo's vocabulary only: unpacked, the model encodes every
    demo text (answers, captions, class texts) exactly as the trained one; other rows are zeros."""
    monkeypatch.setattr(corpus, "CORPUS_SUBJECTS", 1)
    monkeypatch.setattr(corpus, "HELD_OUT", 1)
    monkeypatch.setattr(demo_clip, "DEMO_CLIP_RECIPE", dict(demo_clip.DEMO_CLIP_RECIPE, steps=3, batch_size=16))
    meta = demo_clip.pretrain_demo_clip(tmp_path / "trained.pt", workers=1)
    monkeypatch.setattr(demo_clip, "SHIPPED", tmp_path / "resources" / "c2vl-demo-tiny.pt")
    demo_clip.SHIPPED.parent.mkdir()
    demo_clip.pack_demo_clip(tmp_path / "trained.pt", meta)
    assert demo_clip.SHIPPED.stat().st_size < 0.2 * (tmp_path / "trained.pt").stat().st_size
    path = demo_clip.install_demo_clip(tmp_path / "data")
    assert json.loads(path.with_suffix(".json").read_text())["shipped"] == file_sha256(demo_clip.SHIPPED)
    mtime = path.stat().st_mtime_ns
    assert demo_clip.install_demo_clip(tmp_path / "data") == path and path.stat().st_mtime_ns == mtime  # once
    trained, unpacked = (prompts.load_clip(prompts.DEMO_CLIP_MODEL, str(p)) for p in (tmp_path / "trained.pt", path))
    answers = [a for sample in world.generate_demo_sample("S002C003P007R002A013")[1:] for a in sample][:16]
    texts = answers + [c for c in corpus.make_corpus(32, seed=0, workers=1)["captions"][:40]] + [
        prompts.CLASS_TEMPLATE.format(c) for c in data.DEMO_CLASSES]
    assert torch.equal(trained.encode_texts(texts), unpacked.encode_texts(texts))
    rows = unpacked.model.state_dict()["token_embedding.weight"]
    assert (rows.abs().sum(1) > 0).sum() == len(demo_clip.demo_vocabulary(unpacked.tokenizer))


def test_demo_prompts_are_made_again_after_the_demo_clip_changes(tmp_path):
    """train.py remakes the demo's caches when the shipped demo CLIP changed (it is then unpacked again) or the
    unpacked file is not the one the caches were encoded from; caches of other CLIPs only need to exist."""
    checkpoint = demo_clip.demo_clip_checkpoint(tmp_path)
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"demo CLIP weights")
    checkpoint.with_suffix(".json").write_text(json.dumps({"shipped": file_sha256(demo_clip.SHIPPED)}))
    caches = [tmp_path / f"train_{m}.npy" for m in ("vision", "language")]
    for cache in caches:
        cache.write_bytes(b"features")
        cache.with_suffix(".json").write_text(json.dumps({"weights": weights_fingerprint(str(checkpoint))}))
    ready = lambda: demo_clip.demo_prompts_ready(caches, prompts.DEMO_CLIP_MODEL, str(checkpoint), tmp_path)  # noqa
    assert ready()
    checkpoint.with_suffix(".json").write_text(json.dumps({"shipped": "the sha256 of older shipped weights"}))
    assert not ready()  # other shipped weights: install_demo_clip unpacks them again
    checkpoint.with_suffix(".json").write_text(json.dumps({"shipped": file_sha256(demo_clip.SHIPPED)}))
    checkpoint.write_bytes(b"new demo CLIP weights")
    assert not ready()  # the caches hold the features of the old file
    assert demo_clip.demo_prompts_ready(caches, prompts.DEMO_CLIP_MODEL, None, tmp_path)  # random weights: exist
    caches[0].unlink()
    assert not demo_clip.demo_prompts_ready(caches, prompts.DEMO_CLIP_MODEL, None, tmp_path)


def test_health_check_fires_on_random_demo_clip_vision_features_and_not_after_pretraining(demo_root, tmp_path,
                                                                                          monkeypatch):
    """The failure the check exists for: a random CLIP maps every person crop to nearly the same feature; the shipped
    demo CLIP does not."""
    from utils.diagnostics import prompt_health
    names = demo_names()[::45][:20]  # 20 samples, every action
    color_xy = {n: generate_prompts.skeleton_color_xy(demo_root / "demo" / "raw", n) for n in names}
    vision = {n: generate_prompts.vision_prompt(demo_frame_source(demo_root, n), color_xy[n], K=4) for n in names}

    def vision_features(clip):
        crops = [clip.preprocess(prompts.crop_person(image, box, clip.image_size)) for n in names
                 for image, box in zip(demo_frame_source(demo_root, n).read(vision[n]["frames"]), vision[n]["boxes"])]
        return {"vision": clip.encode_pixels(torch.stack(crops)).view(len(names), 4, -1).numpy()}  # (N, K, D)

    assert prompt_health(vision_features(prompts.load_clip(prompts.DEMO_CLIP_MODEL, None)))  # random weights: warns
    path = demo_clip.install_demo_clip(tmp_path)
    assert prompt_health(vision_features(prompts.load_clip(prompts.DEMO_CLIP_MODEL, str(path)))) == []
