"""tools/generate_prompts.py's LMM step (LLaVA answers, Grounding DINO boxes), tiny random models from configs,
and what it says when the optional extra is not installed.

No downloads: the tokenizers are built in memory and the models from small configs. The model tests need the
optional extra (requirements-lmm.txt); CI installs only requirements.txt, so they skip there.
"""
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import data
from utils.files import write_labels
import prompts
from tools import generate_prompts
from utils.frames import open_frame_source
from utils.imports import MissingExtraError
from utils.prompt_files import read_language_prompts

prompts.import_open_clip()  # the torchvision work-around, before transformers' vision models are imported
try:
    import transformers
except ImportError:
    transformers = None
needs_transformers = pytest.mark.skipif(transformers is None, reason="needs the LMM extra (requirements-lmm.txt)")

LLAVA_WORDS = ["<unk>", "<pad>", "<s>", "</s>", "<image>", "USER", ":", "ASSISTANT", "is", "the", "person",
               "holding", "anything", "in", "their", "hand", "?", "standing", "or", "sitting", "what", "trying",
               "to", "do", "he", "a", "cup", "."]


def tiny_llava():
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(LLAVA_WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        extra_special_tokens={"image_token": "<image>"})
    processor = transformers.LlavaProcessor(
        image_processor=transformers.CLIPImageProcessor(size={"shortest_edge": 32},
                                                        crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer, patch_size=16, vision_feature_select_strategy="default", num_additional_image_tokens=1)
    config = transformers.LlavaConfig(
        vision_config=transformers.CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                    num_attention_heads=2, image_size=32, patch_size=16),
        text_config=transformers.LlamaConfig(vocab_size=len(LLAVA_WORDS), hidden_size=16, intermediate_size=32,
                                             num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                             pad_token_id=1, bos_token_id=2, eos_token_id=3),
        image_token_index=4, vision_feature_select_strategy="default", vision_feature_layer=-1)
    torch.manual_seed(0)
    return transformers.LlavaForConditionalGeneration(config), processor


def tiny_grounding_dino():
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "person", "."]
    processor = transformers.GroundingDinoProcessor(
        image_processor=transformers.GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}),
        tokenizer=transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(words)}))
    config = transformers.GroundingDinoConfig(
        backbone_config=transformers.SwinConfig(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                                                window_size=4, image_size=64,
                                                out_features=["stage2", "stage3", "stage4"]),
        text_config=transformers.BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1,
                                            num_attention_heads=2, intermediate_size=32, max_position_embeddings=64),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, num_queries=10, num_feature_levels=3, max_text_len=16,
        encoder_n_points=2, decoder_n_points=2)
    torch.manual_seed(0)
    return transformers.GroundingDinoForObjectDetection(config), processor


class Frames:
    """An in-memory frame source of T frames."""

    def __init__(self, T=20, size=(96, 64)):
        self.num_frames, self.size = T, size

    def read(self, indices):
        return [Image.new("RGB", self.size, (10 * (i % 20), 80, 120)) for i in indices]


@needs_transformers
def test_llava_answers_every_frame_in_the_released_format(tmp_path):
    model, processor = tiny_llava()
    answerer = generate_prompts.LlavaAnswerer(model=model, processor=processor, max_new_tokens=4)
    answers = answerer.answers(Frames().read([0, 5, 9]))
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    out = tmp_path / "train_language_prompts.json"
    made = generate_prompts.make_language_prompts(["S001C001P001R001A001.skeleton"], out, lambda key: Frames(T=7),
                                         answerer, K=16)
    assert read_language_prompts(out) == made and len(made["S001C001P001R001A001"]) == 16


@needs_transformers
def test_llava_prompt_asks_the_constant_question():
    model, processor = tiny_llava()
    text = generate_prompts.LLAVA_PROMPT.format(question=generate_prompts.LLAVA_QUESTION)
    assert text.startswith("USER: <image>\n") and text.endswith(" ASSISTANT:")
    ids = processor(images=Frames().read([0]), text=[text], return_tensors="pt")["input_ids"]
    assert (ids == 4).sum() == 4  # the <image> placeholder expands to the 2x2 patches of the tiny vision tower


@needs_transformers
def test_grounding_dino_boxes_are_inside_the_frame():
    model, processor = tiny_grounding_dino()
    detector = generate_prompts.PersonDetector(model=model, processor=processor, box_threshold=0.0, text_threshold=0.0)
    boxes = detector.boxes(Frames().read([0, 1]))
    assert len(boxes) == 2
    for box in boxes:
        assert box is not None and 0 <= box[0] <= box[2] <= 1 and 0 <= box[1] <= box[3] <= 1


@needs_transformers
def test_frames_where_the_detector_finds_nobody_fall_back_to_the_skeleton_box():
    model, processor = tiny_grounding_dino()
    detector = generate_prompts.PersonDetector(model=model, processor=processor, box_threshold=1.01)  # finds nobody
    joints = np.zeros((20, 1, 25, 2), np.float32)
    joints[:, 0, :, 0], joints[:, 0, :, 1] = np.linspace(480, 960, 25), np.linspace(270, 810, 25)
    prompt = generate_prompts.vision_prompt(Frames(), joints, K=4, detector=detector, margin=0.0)
    assert prompt["boxes"] == [[0.25, 0.25, 0.5, 0.75]] * 4


# ---------------------------------------------------------------------------------------------------------------
# Without the optional extra: one line naming `pip install -r requirements-lmm.txt`, a non-zero exit, no traceback
# ---------------------------------------------------------------------------------------------------------------

def generate_error(argv) -> str:
    with pytest.raises(SystemExit) as exit_:  # any other exception (a traceback) goes through and fails the test
        generate_prompts.main(argv)
    message = str(exit_.value.code)
    assert message.startswith("error: ") and len(message.splitlines()) == 1, message
    return message


@pytest.mark.parametrize("flag", ["--llava", "--detector"])
def test_llava_and_detector_without_transformers_name_the_pip_command(tmp_path, monkeypatch, flag):
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails, as when not installed
    write_labels(data.split_dir(tmp_path, "ntu60", "xsub") / "train_label.pkl", ["S001C001P001R001A001"], [0])
    (tmp_path / "rgb").mkdir()
    message = generate_error(["--dataset", "ntu60", "--split", "xsub", "--parts", "train", "--data-root",
                              str(tmp_path), "--rgb", str(tmp_path / "rgb"), "--device", "cpu", flag])
    assert "--detector and --llava need Hugging Face transformers" in message
    assert "pip install -r requirements-lmm.txt" in message
    assert not (tmp_path / "ntu60" / "xsub" / "prompts").exists()  # it failed before making anything


def test_videos_without_pyav_name_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    frames = tmp_path / "videos"
    frames.mkdir()
    (frames / "S001C001P001R001A001_rgb.avi").write_bytes(b"RIFF....AVI ")
    with pytest.raises(MissingExtraError, match=r"PyAV.*pip install -r requirements-lmm.txt"):
        open_frame_source(frames, "S001C001P001R001A001.skeleton")
    write_labels(data.split_dir(tmp_path, "ntu60", "xsub") / "train_label.pkl", ["S001C001P001R001A001"], [0])
    message = generate_error(["--dataset", "ntu60", "--split", "xsub", "--parts", "train", "--data-root",
                              str(tmp_path), "--frames", str(frames), "--device", "cpu"])
    assert "reading videos needs PyAV" in message and "pip install -r requirements-lmm.txt" in message
