"""prompts.py: released prompts, frame sampling, person crops (of vision prompts made by tools/generate_prompts.py),
the frozen-CLIP cache (P1), its refusals, P2."""
import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import prompts
from demo import clip as demo_clip
from prompts import (DEMO_CLIP_MODEL, K_FRAMES, PromptError, WeightsUnavailableError,
                     crop_person, encode_language, encode_vision, load_clip, load_prompt_features)
from tools import gendata, generate_prompts, prompt_commands
from tools.generate_prompts import make_prompts, make_vision_prompts, sample_frame_indices, skeleton_box
from utils.config import from_args
from utils.files import write_labels
from utils.prompt_files import match_prompts, prompt_id, read_language_prompts, sibling_caches
from utils.frames import FolderFrameSource, open_frame_source
from utils.imports import OPEN_CLIP_CONFIGS

FIXTURE = Path(__file__).parent / "fixtures" / "pkuv2_language_sample.json"
MODEL, PRETRAINED = DEMO_CLIP_MODEL, None


@pytest.fixture(scope="module")
def clip():
    return load_clip(DEMO_CLIP_MODEL, None)


@pytest.fixture(scope="module")
def released():
    return read_language_prompts(FIXTURE)


def reference_language_features(clip, prompts_of_sample):
    """P1 computed independently: CLIP text embeddings, L2-normalised, averaged over K, re-normalised."""
    with torch.no_grad():
        e = clip.model.encode_text(clip.tokenizer(prompts_of_sample))  # (K, D)
    e = e / e.norm(dim=-1, keepdim=True)
    m = e.mean(dim=0)
    return (m / m.norm()).numpy()


# --- released prompts -----------------------------------------------------------------------------------------

def test_released_fixture_holds_16_answers_per_sample(released):
    assert len(released) == 4
    assert all(len(a) == K_FRAMES and all(isinstance(s, str) and s for s in a) for a in released.values())


def test_released_zip_reads_like_the_json(released, tmp_path):
    archive = tmp_path / "pkuv2_language.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(FIXTURE, "pkuv2_language.json")
    assert read_language_prompts(archive) == released


def import_released(path, names, allow_partial=False):
    """C2VL's released language prompts matched to a split, as `prompts.py import` does."""
    return match_prompts(read_language_prompts(path), names, allow_partial, str(path))


def test_import_matches_by_name_reports_extra_and_keeps_split_order(released):
    names = ["A026N013V002C035L001.skeleton", "A001N001V001C004L002"]  # a suffix and another order
    matched, report = import_released(FIXTURE, names)
    assert list(matched) == ["A026N013V002C035L001", "A001N001V001C004L002"]
    assert matched["A001N001V001C004L002"] == released["A001N001V001C004L002"]
    assert (report.matched, report.missing, report.extra) == (2, [], 2)


def test_import_refuses_missing_samples_naming_them_unless_allow_partial():
    names = ["A001N001V001C004L002", "A099N001V001C001L001"]
    with pytest.raises(PromptError, match=r"1 of 2 samples have no prompt.*A099N001V001C001L001.*allow-partial"):
        import_released(FIXTURE, names)
    matched, report = import_released(FIXTURE, names, allow_partial=True)
    assert list(matched) == ["A001N001V001C004L002"] and report.missing == ["A099N001V001C001L001"]
    assert "1 matched, 1 missing, 3 extra" in str(report)


def test_import_refuses_wrong_answer_count_naming_the_sample(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"A001N001V001C004L002": ["one answer"]}))
    with pytest.raises(PromptError, match=r"bad.json.*A001N001V001C004L002.*1 answers, expected K = 16"):
        read_language_prompts(bad)


def test_import_refuses_broken_json_naming_file_and_line(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{\n  "A": [\n')
    with pytest.raises(PromptError, match=r"broken.json: not valid JSON \(line 3"):
        read_language_prompts(bad)


# --- frame sampling -------------------------------------------------------------------------------------------

def test_uniform_sampling_takes_segment_midpoints():
    assert sample_frame_indices(160, 16) == list(range(5, 160, 10))


@pytest.mark.parametrize("T", [1, 5, 15, 16, 17, 300])
def test_uniform_sampling_always_gives_K_sorted_frames_inside_the_clip(T):
    idx = sample_frame_indices(T, 16)
    assert len(idx) == 16 and idx == sorted(idx) and 0 <= idx[0] and idx[-1] <= T - 1
    assert len(set(idx)) == min(T, 16)  # a clip shorter than K repeats frames but uses every one of them


def test_uniform_sampling_refuses_an_empty_clip():
    with pytest.raises(PromptError, match="empty clip"):
        sample_frame_indices(0)


# --- person crops from colorX / colorY ------------------------------------------------------------------------

def person_frame(W=480, H=270, box=(200, 60, 260, 200)):
    """A black frame with a red 'person' rectangle at pixel box (x0, y0, x1, y1)."""
    image = Image.new("RGB", (W, H))
    image.paste((255, 0, 0), box)
    return image


def person_joints(box=(200, 60, 260, 200), W=480, H=270, M=2):
    """(M, 25, 2) colorX/colorY in 1920x1080 pixels spanning `box` of a WxH frame; body 2 absent (zeros)."""
    x0, y0, x1, y1 = box
    rng = np.random.default_rng(0)
    xy = np.stack([rng.uniform(x0, x1, 25), rng.uniform(y0, y1, 25)], axis=1)
    xy[0], xy[1] = (x0, y0), (x1 - 1, y1 - 1)  # the extremes are joints
    joints = np.zeros((M, 25, 2), np.float32)
    joints[0] = xy * np.array([1920 / W, 1080 / H])
    return joints


def test_skeleton_box_scales_1920x1080_joints_to_the_frame():
    box = skeleton_box(person_joints(), margin=0.0)
    np.testing.assert_allclose(box, (200 / 480, 60 / 270, 259 / 480, 199 / 270), atol=1e-6)


def test_skeleton_box_ignores_absent_bodies_and_is_none_without_joints():
    one_body = person_joints(M=1)
    assert skeleton_box(person_joints(M=2)) == skeleton_box(one_body)
    assert skeleton_box(np.zeros((2, 25, 2))) is None
    assert skeleton_box(np.full((1, 25, 2), np.nan)) is None


def test_crop_from_color_xy_is_a_square_clip_input_centred_on_the_person():
    crop = crop_person(person_frame(), skeleton_box(person_joints(), margin=0.0), size=64)
    assert crop.size == (64, 64)
    red = np.asarray(crop)[..., 0] > 128  # (64, 64)
    rows, cols = np.nonzero(red)
    assert red[:, 32].all()  # the person spans the square's full height (its long side)
    assert abs(cols.mean() - 31.5) < 2 and abs(rows.mean() - 31.5) < 2
    assert 0.35 < red.mean() < 0.5  # 60 wide / 140 high -> ~43% of the square; the rest is square padding


def test_crop_pads_with_black_where_the_square_leaves_the_frame():
    image = person_frame(box=(0, 0, 480, 270))  # all red
    crop = np.asarray(crop_person(image, None, size=32))  # whole frame, square-padded to 480x480
    assert (crop[:6, :, 0] < 50).all() and (crop[-6:, :, 0] < 50).all() and (crop[12:20, :, 0] > 200).all()


def test_vision_prompt_samples_K_frames_with_skeleton_boxes(tmp_path):
    source = make_frame_folder(tmp_path / "S001", num_frames=5)
    prompt = generate_prompts.vision_prompt(source, np.stack([person_joints()] * 7), K=16, margin=0.0)
    assert prompt["frames"] == sample_frame_indices(5, 16)
    assert len(prompt["boxes"]) == 16
    np.testing.assert_allclose(prompt["boxes"][0], (200 / 480, 60 / 270, 259 / 480, 199 / 270), atol=1e-4)
    assert generate_prompts.vision_prompt(source, None, K=4)["boxes"] == [None] * 4


def test_frames_whose_skeleton_is_lost_take_the_nearest_sampled_box(tmp_path):
    source = make_frame_folder(tmp_path / "S001", num_frames=4)
    joints = np.stack([person_joints(box=(10 * t, 10, 10 * t + 50, 100)) for t in range(4)])  # (T, M, 25, 2)
    joints[[0, 2]] = 0  # lost in frames 0 and 2
    boxes = generate_prompts.vision_prompt(source, joints, K=4, margin=0.0)["boxes"]
    assert boxes[0] == boxes[1] and boxes[2] in (boxes[1], boxes[3]) and boxes[1] != boxes[3]


# --- frame sources --------------------------------------------------------------------------------------------

def make_frame_folder(folder, num_frames=5):
    """frame_1.png ... frame_N.png (natural order 1, 2, ..., 10), frame i has green value 10 * i."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(num_frames):
        image = person_frame()
        image.paste((0, 10 * i, 0), (0, 0, 10, 10))
        image.save(folder / f"frame_{i + 1}.png")
    return FolderFrameSource(folder)


def test_folder_frame_source_reads_frames_in_natural_order(tmp_path):
    source = make_frame_folder(tmp_path / "S001C001P001R001A001", num_frames=11)
    assert (source.num_frames, source.size) == (11, (480, 270))
    frames = source.read([10, 1, 1])
    assert [f.getpixel((0, 0))[1] for f in frames] == [100, 10, 10]
    assert open_frame_source(tmp_path, "S001C001P001R001A001.skeleton").num_frames == 11


def test_open_frame_source_names_the_sample_it_cannot_find(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"S002C001P001R001A001.*S002C001P001R001A001_rgb.avi"):
        open_frame_source(tmp_path, "S002C001P001R001A001")


def test_video_frame_source_decodes_the_requested_frames(tmp_path):
    av = pytest.importorskip("av")
    path = tmp_path / "S001C001P001R001A001_rgb.avi"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        for i in range(6):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    source = open_frame_source(tmp_path, "S001C001P001R001A001")
    assert (source.num_frames, source.size) == (6, (64, 48))
    grey = [np.asarray(f).mean() for f in source.read([5, 0, 2])]
    np.testing.assert_allclose(grey, [200, 0, 80], atol=6)


# --- CLIP ------------------------------------------------------------------------------------------------------

def test_demo_clip_is_deterministic_and_leaves_the_global_rng_alone(clip):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    again = load_clip(DEMO_CLIP_MODEL, None)
    assert torch.equal(torch.rand(3), expected)
    for a, b in zip(clip.model.state_dict().values(), again.model.state_dict().values()):
        assert torch.equal(a, b)
    assert clip.image_size == 64 and clip.dim == 64
    assert not any(p.requires_grad for p in clip.model.parameters())


def test_offline_without_weights_fails_fast_saying_how_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match=r"(?s)ViT-B-32.*openai.*local checkpoint.*internet"):
        load_clip("ViT-B-32", "openai", cache_dir=str(tmp_path))
    assert time.perf_counter() - start < 20


def test_any_open_clip_architecture_loads_a_local_checkpoint(tmp_path):
    open_clip = prompts.import_open_clip()
    config = tmp_path / "c2vl-test-tiny.json"
    config.write_text((OPEN_CLIP_CONFIGS / f"{DEMO_CLIP_MODEL}.json").read_text())  # the demo's architecture
    open_clip.add_model_config(config)
    random_clip = load_clip("c2vl-test-tiny", None)
    torch.save(random_clip.model.state_dict(), tmp_path / "tiny.pt")
    loaded = load_clip("c2vl-test-tiny", str(tmp_path / "tiny.pt"))
    for a, b in zip(random_clip.model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(PromptError, match="unknown open_clip model 'no-such-model'"):
        load_clip("no-such-model", None)


def test_class_text_features_are_unit_rows_of_the_template(clip):
    names = ["drink water", "sit down", "wave"]
    W = prompts.class_text_features(names, DEMO_CLIP_MODEL, None, clip=clip)
    assert W.shape == (3, 64)
    torch.testing.assert_close(W.norm(dim=1), torch.ones(3))
    with torch.no_grad():
        e = clip.model.encode_text(clip.tokenizer(["a person sit down."]))[0]
    torch.testing.assert_close(W[1], e / e.norm(), atol=1e-5, rtol=1e-5)


def test_long_answers_are_truncated_to_the_context_length(clip):
    long = "he is holding a cup " * 60
    assert clip.tokenizer([long]).shape == (1, clip.model.context_length)  # 77 for CLIP, 40 for the demo's
    assert clip.encode_texts([long]).shape == (1, 64)


# --- the cache ------------------------------------------------------------------------------------------------

def test_language_cache_is_float16_unit_rows_of_the_mean_over_K(clip, released, tmp_path):
    path = encode_language(released, tmp_path / "train_language.npy", clip, MODEL, PRETRAINED)
    features, present = load_prompt_features(path, list(released), MODEL, PRETRAINED)
    assert isinstance(features, np.memmap) and features.dtype == np.float16 and features.shape == (4, 64)
    assert present.all()
    np.testing.assert_allclose(np.linalg.norm(features.astype(np.float32), axis=1), 1.0, atol=2e-3)
    for row, answers in zip(features, released.values()):
        np.testing.assert_allclose(row, reference_language_features(clip, answers), atol=2e-3)
    header = json.loads(path.with_suffix(".json").read_text())
    assert {k: header[k] for k in ("model", "pretrained", "K", "pooling", "dim", "dtype", "modality")} == dict(
        model=MODEL, pretrained=None, K=16, pooling="mean", dim=64, dtype="float16", modality="language")
    assert header["names"] == list(released) and len(header["input_hash"]) == 64


def test_pooling_sample_keeps_all_K_unit_vectors(clip, released, tmp_path):
    path = encode_language(released, tmp_path / "allK.npy", clip, MODEL, PRETRAINED, pooling="sample")
    features, _ = load_prompt_features(path, list(released), MODEL, PRETRAINED)
    assert features.shape == (4, 16, 64) and features.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(features.astype(np.float32), axis=2), 1.0, atol=2e-3)
    mean = features.astype(np.float32).mean(axis=1)
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    pooled, _ = load_prompt_features(encode_language(released, tmp_path / "mean.npy", clip, MODEL, PRETRAINED),
                                     list(released), MODEL, PRETRAINED)
    np.testing.assert_allclose(mean, pooled, atol=3e-3)


def test_vision_cache_encodes_the_person_crops_of_the_sampled_frames(clip, tmp_path):
    names = ["S001C001P001R001A001", "S001C001P001R001A002"]
    for n, T in zip(names, (5, 20)):
        make_frame_folder(tmp_path / "frames" / n, num_frames=T)
    open_source = lambda key: open_frame_source(tmp_path / "frames", key)  # noqa: E731
    vision = make_vision_prompts(names, tmp_path / "train_vision_prompts.json", open_source,
                                 lambda key: np.stack([person_joints()] * 20))
    assert json.loads((tmp_path / "train_vision_prompts.json").read_text()) == vision
    path = encode_vision(vision, tmp_path / "train_vision.npy", open_source, clip, MODEL, PRETRAINED)
    features, _ = load_prompt_features(path, names, MODEL, PRETRAINED)
    assert features.shape == (2, 64) and features.dtype == np.float16
    frames = open_source(names[0]).read(vision[names[0]]["frames"])
    crops = [crop_person(f, b, 64) for f, b in zip(frames, vision[names[0]]["boxes"])]
    with torch.no_grad():
        e = clip.model.encode_image(torch.stack([clip.preprocess(c) for c in crops]))
    e = e / e.norm(dim=-1, keepdim=True)
    expected = e.mean(0) / e.mean(0).norm()
    np.testing.assert_allclose(features[0], expected.numpy(), atol=2e-3)


def test_features_are_aligned_to_the_requested_names(clip, released, tmp_path):
    path = encode_language(released, tmp_path / "c.npy", clip, MODEL, PRETRAINED)
    stored, _ = load_prompt_features(path, list(released), MODEL, PRETRAINED)
    order = [list(released)[i] for i in (2, 0, 3)]
    features, present = load_prompt_features(path, [n + ".skeleton" for n in order], MODEL, PRETRAINED)
    np.testing.assert_array_equal(features, np.asarray(stored)[[2, 0, 3]])
    assert present.all()


def test_cache_refuses_another_model_or_pretrained_saying_which(clip, released, tmp_path):
    path = encode_language(released, tmp_path / "c.npy", clip, MODEL, PRETRAINED)
    with pytest.raises(PromptError, match=r"encoded with CLIP model 'c2vl-demo-tiny'.*model 'ViT-L-14-336'"):
        load_prompt_features(path, list(released), "ViT-L-14-336", "openai")
    with pytest.raises(PromptError, match=r"pretrained None.*pretrained 'laion2b'"):
        load_prompt_features(path, list(released), MODEL, "laion2b")


def test_cache_of_a_checkpoint_file_is_refused_and_encoded_again_once_the_file_changes(clip, released, tmp_path):
    """A checkpoint path names a file that can be rewritten (the demo CLIP is, when its recipe changes): the cache
    records the file's sha256, and a cache of its earlier contents is refused by name and re-encoded."""
    checkpoint = tmp_path / "my-clip.pt"
    checkpoint.write_bytes(b"weights, version 1")
    path = encode_language(released, tmp_path / "c.npy", clip, MODEL, str(checkpoint))
    load_prompt_features(path, list(released), MODEL, str(checkpoint))  # the same file: accepted
    header = json.loads(path.with_suffix(".json").read_text())
    assert header["weights"] == hashlib.sha256(b"weights, version 1").hexdigest()
    checkpoint.write_bytes(b"weights, version 2")
    with pytest.raises(PromptError, match=r"earlier version of the checkpoint .*my-clip.pt .*prompts.py encode"):
        load_prompt_features(path, list(released), MODEL, str(checkpoint))
    encode_language(released, path, clip, MODEL, str(checkpoint))  # the header differs: encoded again
    load_prompt_features(path, list(released), MODEL, str(checkpoint))


def test_cache_refuses_missing_names_naming_them_unless_allow_partial(clip, released, tmp_path):
    path = encode_language(released, tmp_path / "c.npy", clip, MODEL, PRETRAINED)
    names = [list(released)[1], "A099N001V001C001L001"]
    with pytest.raises(PromptError, match=r"1 of 2 samples are not in the cache \(first: A099N001V001C001L001\)"):
        load_prompt_features(path, names, MODEL, PRETRAINED)
    features, present = load_prompt_features(path, names, MODEL, PRETRAINED, allow_partial=True)
    assert present.tolist() == [True, False] and not features[1].any()


def test_cache_refuses_a_missing_or_corrupt_file_with_what_to_do(clip, released, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no prompt feature cache.*python prompts.py encode"):
        load_prompt_features(tmp_path / "none.npy", list(released), MODEL, PRETRAINED)
    path = encode_language(released, tmp_path / "c.npy", clip, MODEL, PRETRAINED)
    np.save(path, np.zeros((3, 64), np.float16))
    with pytest.raises(PromptError, match=r"c.npy: array is float16 \(3, 64\), header says float16 \[4, 64\]"):
        load_prompt_features(path, list(released), MODEL, PRETRAINED)


def test_encode_refuses_a_sample_with_the_wrong_number_of_prompts(clip, released, tmp_path):
    short = dict(released, A001N001V001C004L002=["only one"])
    with pytest.raises(PromptError, match=r"sample A001N001V001C004L002: 1 language prompts, expected K = 16"):
        encode_language(short, tmp_path / "c.npy", clip, MODEL, PRETRAINED)


class Interrupt(Exception):
    pass


def test_interrupted_encoding_resumes_without_redoing_finished_samples(clip, tmp_path):
    many = {f"S{i:03d}": [f"he is doing action {i} in frame {k}" for k in range(16)] for i in range(10)}
    reference = encode_language(many, tmp_path / "ref.npy", clip, MODEL, PRETRAINED, chunk_size=3)
    path, calls = tmp_path / "c.npy", []

    def failing(key):  # the 8th sample (third chunk) cannot be read
        if key == "S007":
            raise Interrupt
        return many[key]

    run = lambda load: prompts.encode_prompts(many, path, "language", load, clip, MODEL, PRETRAINED,  # noqa
                                              chunk_size=3)
    with pytest.raises(Interrupt):
        run(failing)
    with pytest.raises(FileNotFoundError, match="interrupted: rerun"):
        load_prompt_features(path, list(many), MODEL, PRETRAINED)
    calls.clear()
    run(lambda key: calls.append(key) or many[key])
    assert sorted(calls) == list(many)[6:]  # two chunks of 3 were finished before the interruption
    np.testing.assert_array_equal(load_prompt_features(path, list(many), MODEL, PRETRAINED)[0],
                                  load_prompt_features(reference, list(many), MODEL, PRETRAINED)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json", "c.npy", "ref.json", "ref.npy"]


def test_rows_of_sibling_caches_are_copied_not_re_encoded(clip, tmp_path):
    many = {f"S{i:03d}": [f"he is doing action {i} in frame {k}" for k in range(16)] for i in range(12)}
    xsub = prompts.cache_path(tmp_path, "demo", "xsub", "train", "language", MODEL, PRETRAINED)
    encode_language({k: many[k] for k in list(many)[:8]}, xsub, clip, MODEL, PRETRAINED)
    xview = prompts.cache_path(tmp_path, "demo", "xview", "val", "language", MODEL, PRETRAINED)
    assert sibling_caches(xview) == [xsub]
    wanted = {k: many[k] for k in list(many)[4:]}
    wanted["S005"] = ["he waves"] * 16  # changed prompts are encoded again
    calls = []
    prompts.encode_prompts(wanted, xview, "language", lambda k: calls.append(k) or wanted[k], clip, MODEL,
                           PRETRAINED, reuse=sibling_caches(xview))
    assert sorted(calls) == ["S005", "S008", "S009", "S010", "S011"]
    copied, _ = load_prompt_features(xview, list(wanted), MODEL, PRETRAINED)
    reference, _ = load_prompt_features(encode_language(wanted, tmp_path / "ref.npy", clip, MODEL, PRETRAINED),
                                        list(wanted), MODEL, PRETRAINED)
    np.testing.assert_allclose(copied, reference, atol=1e-3)


def test_encoding_again_is_a_no_op_and_changed_prompts_are_re_encoded(clip, released, tmp_path):
    path = encode_language(released, tmp_path / "c.npy", clip, MODEL, PRETRAINED)
    mtime = path.stat().st_mtime_ns
    encode_language(released, path, clip, MODEL, PRETRAINED)
    assert path.stat().st_mtime_ns == mtime
    changed = dict(released, A001N001V001C004L002=["he waves"] * 16)
    encode_language(changed, path, clip, MODEL, PRETRAINED)
    features, _ = load_prompt_features(path, list(changed), MODEL, PRETRAINED)
    np.testing.assert_allclose(features[0], reference_language_features(clip, ["he waves"] * 16), atol=2e-3)


def test_prompt_generation_resumes_from_the_saved_json(tmp_path):
    out, calls = tmp_path / "p.json", []
    make_prompts(["a", "b"], out, lambda k: calls.append(k) or [k])
    assert make_prompts(["a.skeleton", "b", "c"], out, lambda k: calls.append(k) or [k]) == \
        {"a": ["a"], "b": ["b"], "c": ["c"]}
    assert calls == ["a", "b", "c"]


# --- command line ---------------------------------------------------------------------------------------------

def test_cli_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "prompts.py", "--help"], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent).stdout
    for command in ("import", "encode"):
        assert command in out
    for command in ("import", "encode"):
        with pytest.raises(SystemExit) as exit_:
            prompt_commands.build_parser().parse_args([command, "--help"])
        assert exit_.value.code == 0
    # generate and demo: their own scripts (tools/generate_prompts.py, demo/clip.py), run from the repository root
    for script, module in (("tools/generate_prompts.py", generate_prompts), ("demo/clip.py", demo_clip)):
        out = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).parent.parent).stdout
        assert script in out
        with pytest.raises(SystemExit) as exit_:
            module.build_parser().parse_args(["--help"])
        assert exit_.value.code == 0


def test_cli_dashed_and_underscored_flags_parse_to_the_same_config():
    def config(parser, cls, argv):
        return from_args(cls, parser.parse_args(argv))

    split = ["--dataset", "demo", "--split", "xsub"]
    for command, cls in (("import", prompt_commands.ImportConfig), ("encode", prompt_commands.EncodeConfig)):
        released = ["answers.zip"] if command == "import" else []
        dashed = config(prompt_commands.build_parser(), cls, [command, *released, *split, "--data-root", "r", "--allow-partial"])
        underscored = config(prompt_commands.build_parser(), cls,
                             [command, *released, *split, "--data_root", "r", "--allow_partial"])
        assert dashed == underscored and (dashed.data_root, dashed.allow_partial) == ("r", True)
    # the older aliases users know, with list flags taking several values
    aliased = config(prompt_commands.build_parser(), prompt_commands.EncodeConfig,
                     ["encode", *split, "--part", "val", "--modality", "vision", "language", "--clip-model", "m"])
    assert (aliased.parts, aliased.modalities, aliased.model) == (["val"], ["vision", "language"], "m")
    convert = ["convert", "arrays", "--dataset", "ntu60"]
    dashed = config(gendata.build_parser(), gendata.ConvertConfig, [*convert, "--data-root", "r", "--no-cache"])
    underscored = config(gendata.build_parser(), gendata.ConvertConfig, [*convert, "--data_root", "r", "--no-cache"])
    assert dashed == underscored and (dashed.data_root, dashed.cache, dashed.path) == ("r", False, "arrays")


# --- command-line error paths: one line saying what is wrong and what fixes it, a non-zero exit, no traceback -----

ROOT = Path(__file__).resolve().parent.parent


def write_pku_split(root, parts=("train", "val")):
    """pku2 xsub parts whose sample names are the released fixture's: (labels only, all that prompts.py reads)."""
    import data
    names = list(read_language_prompts(FIXTURE))
    for part in parts:
        write_labels(data.split_dir(root, "pku2", "xsub") / f"{part}_label.pkl", names, range(len(names)))
    return names


def cli_error(main, argv) -> str:
    """The message of a command that must fail cleanly: SystemExit with one `error: ...` line (a traceback would
    be any other exception, which pytest.raises(SystemExit) lets through)."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    message = str(exit_.value.code)
    assert exit_.value.code not in (0, None) and message.startswith("error: "), message
    return message


@pytest.mark.parametrize("command", [["prompts.py", "encode"], ["tools/generate_prompts.py"]])
def test_cli_device_cuda_without_cuda_is_one_error_line_that_names_device_cpu(tmp_path, command):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # a CPU-only machine, also on a GPU one
    result = subprocess.run([sys.executable, *command, "--dataset", "pku2", "--split", "xsub", "--data-root",
                             str(tmp_path), "--device", "cuda"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: --device cuda: this torch build or machine has no CUDA device (use --device cpu)"]


def test_encode_with_only_language_prompts_names_the_missing_vision_file_and_encodes_nothing(tmp_path, monkeypatch):
    """The released prompts are language only: asked for both modalities, encode checks every input first and
    fails before encoding anything, naming the missing modality and `--modalities language`, which then works."""
    names = write_pku_split(tmp_path)
    prompts.main(["import", str(FIXTURE), "--dataset", "pku2", "--split", "xsub", "--data-root", str(tmp_path)])
    encode = ["encode", "--dataset", "pku2", "--split", "xsub", "--data-root", str(tmp_path), "--model", MODEL,
              "--pretrained", "none", "--device", "cpu"]
    message = cli_error(prompts.main, encode)
    assert "no vision prompts" in message and "train_vision_prompts.json" in message
    # the command as printed runs: it carries the user's --data-root (and says --rgb, the frames' flag)
    assert f"tools/generate_prompts.py --dataset pku2 --split xsub --data-root {tmp_path} --rgb" in message
    assert "rerun with `--modalities language` to encode the language cache alone" in message
    assert "language or vision" not in message and not list((tmp_path / "pku2" / "xsub" / "prompts").glob("*.npy"))
    prompts.main(encode + ["--modalities", "language"])
    for part in ("train", "val"):
        path = prompts.cache_path(tmp_path, "pku2", "xsub", part, "language", MODEL, None)
        assert load_prompt_features(path, names, MODEL, None)[1].all()


def test_a_prompt_file_that_matches_no_sample_shows_a_name_of_each_side_not_allow_partial(clip, released, tmp_path):
    ntu = ["S001C001P001R001A001.skeleton", "S001C001P001R001A002.skeleton"]
    for allow_partial in (False, True):  # --allow-partial would keep nothing: it is no way out here
        with pytest.raises(PromptError) as error:
            match_prompts(released, ntu, allow_partial, source="pkuv2_language.json")
        message = str(error.value)
        assert "none of the split's 2 samples has a prompt" in message and "allow-partial" not in message
        assert "'A001N001V001C004L002'" in message and "'S001C001P001R001A001'" in message
        assert "--dataset and --split" in message
    path = encode_language(released, tmp_path / "c.npy", clip, MODEL, PRETRAINED)
    for allow_partial in (False, True):
        with pytest.raises(PromptError, match=r"none of the split's 2 samples.*'A001N001V001C004L002'.*"
                                              r"'S001C001P001R001A001'.*check the dataset and split") as error:
            load_prompt_features(path, ntu, MODEL, PRETRAINED, allow_partial)
        assert "allow-partial" not in str(error.value)
    # the same through the command line: the demo's split and the PKU-MMD prompts
    import data
    write_labels(data.split_dir(tmp_path, "demo", "xsub") / "train_label.pkl", ntu, [0, 1])
    message = cli_error(prompts.main, ["import", str(FIXTURE), "--dataset", "demo", "--split", "xsub", "--parts",
                                       "train", "--data-root", str(tmp_path)])
    assert "none of the split's 2 samples" in message and "allow-partial" not in message


@pytest.mark.parametrize("dataset, command", [("demo", "python demo/world.py --data-root {root}"),
                                              ("pku2", "python tools/gendata.py pku --phase 2"),
                                              ("ntu60", "python tools/gendata.py ntu --raw")])
def test_import_before_the_split_exists_names_the_command_that_makes_it(tmp_path, dataset, command):
    message = cli_error(prompts.main, ["import", str(FIXTURE), "--dataset", dataset, "--split", "xsub",
                                       "--data-root", str(tmp_path)])
    assert f"no {dataset} xsub split in {tmp_path / dataset / 'xsub'}" in message
    assert command.format(root=tmp_path) in message
    assert not (tmp_path / dataset / "xsub" / "prompts").exists()


def test_prompt_pooling_mean_and_sample_one_per_step():
    features = F.normalize(torch.randn(4, 16, 32), dim=-1)  # (B, K, D)
    mean = prompts.pool_prompts(features, "mean")
    np.testing.assert_allclose(mean.numpy(), (lambda m: m / np.linalg.norm(m, axis=1, keepdims=True))(features.double().mean(dim=1).numpy()), atol=1e-6)
    drawn = prompts.pool_prompts(features, "sample", generator=torch.Generator().manual_seed(0))
    for i in range(4):  # each row is one of that sample's K prompt frames
        assert min(float((drawn[i] - features[i, k]).abs().max()) for k in range(16)) < 1e-6
    assert prompts.pool_prompts(features[:, 0].half(), "mean").dtype == torch.float32


def test_import_of_a_file_with_training_samples_only_names_the_part_and_the_parts_fix(tmp_path):
    """The released file may hold one part's samples: the error names the part that matched nothing and the
    --parts that leaves it out, nothing is written, and with that --parts the import works."""
    names = write_pku_split(tmp_path, parts=("train",))
    write_labels(data_split(tmp_path) / "val_label.pkl", ["A099N001V001C001L001", "A098N001V001C001L001"], [0, 1])
    command = ["import", str(FIXTURE), "--dataset", "pku2", "--split", "xsub", "--data-root", str(tmp_path)]
    message = cli_error(prompts.main, command)
    assert "none of the split's 2 samples of its val part has a prompt there" in message
    assert "--parts train" in message
    assert not (data_split(tmp_path) / "prompts").exists()  # every part is checked before anything is written
    prompts.main(command + ["--parts", "train"])
    written = json.loads((data_split(tmp_path) / "prompts" / "train_language_prompts.json").read_text())
    assert list(written) == names


def data_split(root):
    import data
    return data.split_dir(root, "pku2", "xsub")


def test_random_clip_weights_load_without_open_clips_warning(capsys, caplog):
    """open_clip logs "No pretrained weights loaded ... Model initialized randomly" for random weights; in the demo's
    log that read as if the pretrained demo CLIP had not been used. load_clip keeps it out of the way."""
    load_clip(DEMO_CLIP_MODEL, None)
    captured = capsys.readouterr()
    assert "initialized randomly" not in captured.err + captured.out + caplog.text



def test_a_missing_clip_checkpoint_shows_one_error_and_no_open_clip_error_line(tmp_path, capsys, caplog):
    """open_clip logs "ERROR:root: ..." before raising; the user sees only the project's own message."""
    with pytest.raises(WeightsUnavailableError, match="--pretrained /path/to/"):
        load_clip(DEMO_CLIP_MODEL, str(tmp_path / "nowhere" / "clip.pt"))
    captured = capsys.readouterr()
    assert "ERROR" not in captured.err + captured.out + caplog.text
