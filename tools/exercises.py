"""Course assignments on this repository: an exercise catalogue, a student copy made by one command, grading by tests.

Three kinds of exercise (docs/exercises.md is rendered from CATALOGUE by `python tools/exercises.py catalogue`):
- implement: the paper's pieces in reading order; each names the function(s) a student writes, the equation in
  docs/method.md, the tests that grade it (they compute the equation independently: the answer key) and a hint;
- experiment: predict, run, explain; each with its command and the outcome measured on the demo (3 seeds, mean ±
  sample std) and whether the effect stands above the seed spread;
- extend: where a new soft target, pooling or encoder plugs in, and how to test it.

    python tools/exercises.py make --out ../c2vl-student --hide-tests    # a copy with every implement-exercise blank
    python tools/exercises.py make --out ../c2vl-student --only 2 5      # only exercises 2 and 5 blank
    python tools/exercises.py grade ../c2vl-student --tests tests         # the score table (non-zero exit on a fail)

The student copy has no git history; each chosen function keeps its signature and docstring, and its body becomes
`raise NotImplementedError("Exercise N: ... (docs/method.md §k)")`. With --hide-tests the tests that grade the chosen
exercises are left out of the copy (they stay with the instructor, who grades with --tests).
"""
from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utils.files import write_text  # noqa: E402

# The lab setting: fewer pretraining epochs and linear-probe epochs, no random-init encoder; about half a demo run.
# For iterating on an exercise; its conclusions on the experiments are compared with the full demo's in
# docs/exercises.md.
LAB = "--epochs 8 --linear-epochs 50 --no-baseline"
SKIPPED = {".git", "datasets", "runs", "__pycache__", ".pytest_cache", "cache"}  # never copied to a student


@dataclass(frozen=True)
class Exercise:
    number: int
    kind: str  # implement | experiment | extend
    title: str
    section: str  # where the maths is, e.g. "docs/method.md §4"
    functions: tuple = ()  # implement: "module:Qualified.name" the student writes
    tests: tuple = ()  # implement: pytest node ids that grade it
    hint: str = ""
    depends_on: tuple = ()  # implement: exercises whose functions its tests also run
    command: str = ""  # experiment: the command that measures it
    expected: str = ""  # experiment: the measured outcome; extend: where it plugs in and how to test it
    points: int = 10


ST, DI, PR = "tests/test_soft_targets.py::", "tests/test_distill.py::", "tests/test_prompts.py::"
CATALOGUE = (
    Exercise(1, "implement", "The soft cross-entropy H and the student's logits (M1)", "docs/method.md §3",
             ("soft_targets:soft_cross_entropy", "soft_targets:student_logits"),
             (ST + "test_student_logits_are_scaled_cosines_M1", ST + "test_soft_cross_entropy_matches_its_definition",
              ST + "test_soft_cross_entropy_with_identity_is_cross_entropy"),
             "H averages over rows and sums over columns; log_softmax keeps it finite for any logit scale. S_ms is not "
             "computed again."),
    Exercise(2, "implement", "Soft targets within one modality (M2-M4)", "docs/method.md §4",
             ("soft_targets:prompt_self_similarity", "soft_targets:teacher_self_similarity",
              "soft_targets:intra_modal_targets"),
             (ST + "test_prompt_self_similarity_M2", ST + "test_teacher_self_similarity_M3",
              ST + "test_intra_modal_targets_M4", ST + "test_intra_targets_in_epoch_one_use_the_prompt_similarity_twice",
              ST + "test_beta_zero_intra_target_is_identity"),
             "Rows without a teacher take their epoch-1 value; masked_row_softmax and _epoch_one_rows are there to "
             "help. Every row of Y_intra must sum to 1."),
    Exercise(3, "implement", "The teacher bank and the alpha schedule (M5-M6)", "docs/method.md §5",
             ("distill:TeacherBank.read", "distill:TeacherBank.write", "distill:alpha_schedule"),
             (DI + "test_alpha_is_alpha_T_over_E_at_first_epoch_and_alpha_T_at_last",
              DI + "test_teacher_bank_read_write_by_dataset_index"),
             "Epochs are 1-based. The bank stores float16 and reads float32; `written_in` records the epoch of each "
             "row's write: a row teaches only in the epoch after it was written, and a read never sees the write of "
             "the same step."),
    Exercise(4, "implement", "Soft targets across modalities: the cycle (M7-M9)", "docs/method.md §6",
             ("soft_targets:cross_prompt_agreement", "soft_targets:teacher_predictions",
              "soft_targets:teacher_predictions_from_prompts", "soft_targets:inter_modal_targets",
              "soft_targets:self_distillation_targets"),
             (ST + "test_cross_prompt_agreement_M7", ST + "test_teacher_predictions_M8",
              ST + "test_inter_modal_targets_follow_the_cycle_M9", ST + "test_inter_targets_in_epoch_one_are_identity",
              ST + "test_self_distillation_targets_are_the_teachers_predictions",
              ST + "test_rows_without_teacher_fall_back_as_in_epoch_one"),
             "Write the path of each cycle in words first (skeleton i -> language k -> vision j); a product of row-"
             "stochastic matrices is row-stochastic.", depends_on=(2,)),
    Exercise(5, "implement", "The progressive target and the loss (M10-M12)", "docs/method.md §7",
             ("distill:progressive_target", "distill:modality_loss", "distill:c2vl_loss"),
             (DI + "test_progressive_target_mixes_intra_and_inter_M10", DI + "test_modality_loss_averages_both_directions_M11",
              DI + "test_total_loss_weights_the_modalities_M12", DI + "test_beta_zero_alpha_zero_is_infonce"),
             "With beta = 0 and alpha_T = 0 your loss must be CLIP's symmetric InfoNCE exactly.",
             depends_on=(1, 2, 3, 4)),
    Exercise(6, "implement", "P1: pooling the K prompt features", "docs/method.md §1",
             ("prompts:pool_prompts",),
             (PR + "test_prompt_pooling_mean_and_sample_one_per_step",),
             "Normalise each of the K features before the mean, and the mean again after it. 'sample' draws for the "
             "global batch and keeps this process's rows."),
    Exercise(7, "implement", "G1: the spatial graph convolution", "docs/method.md §8",
             ("skeleton_gcn:SpatialGraphConv.forward",),
             ("tests/test_skeleton_gcn.py::test_spatial_graph_conv_equals_direct_loop",),
             "One 1x1 convolution gives every W_k x at once; the graph sum over v and k is one einsum."),
    Exercise(8, "implement", "G2: the spatial partition of the skeleton graph", "docs/method.md §8",
             ("skeleton_gcn:Graph.__init__",),
             ("tests/test_skeleton_gcn.py::test_spine_mid_partitions_are_itself_spine_base_spine_shoulder",
              "tests/test_skeleton_gcn.py::test_columns_of_summed_partitions_sum_to_one",
              "tests/test_skeleton_gcn.py::test_spatial_partition_matches_an_independent_transcription_of_the_rule"),
             "Read docs/conventions.md §4 on the reference code's capped distance: joints further than one hop from "
             "the centre all tie."),
    Exercise(9, "implement", "E2: the weighted kNN classifier", "docs/method.md §9",
             ("evaluate:knn_predict",),
             ("tests/test_evaluate.py::test_knn_of_separable_features_is_100_percent_for_k_1_10_20",
              "tests/test_evaluate.py::test_knn_votes_are_weighted_by_exp_similarity_over_tau"),
             "Cosine similarity of unit rows; each neighbour votes exp(s / tau) for its class (scatter_add_)."),
    Exercise(10, "implement", "Multi-head attention of the Transformer encoder", "docs/method.md §8",
             ("skeleton_transformer:Attention.forward",),
             ("tests/test_skeleton_transformer.py::test_attention_equals_softmax_qk_over_sqrt_d_times_v_looped_over_heads",
              "tests/test_skeleton_transformer.py::test_the_feature_equals_tokens_pre_norm_blocks_and_the_mean_over_persons_patches_joints"),
             "qkv(u) holds Q, K and V side by side; split D into H heads of D / H, attend per head, put the heads "
             "side by side again and apply W_o."),
    Exercise(11, "implement", "The bidirectional GRU's feature", "docs/method.md §8",
             ("skeleton_gru:SkeletonGRU.features",),
             ("tests/test_skeleton_gru.py::test_gru_feature_is_both_directions_final_state_by_the_cell_equations",
              "tests/test_skeleton_gru.py::test_the_frame_vector_is_ordered_joint_coordinate_person_as_in_isc"),
             "torch.nn.GRU returns the last state of every layer and direction; which rows of h_n are the last layer's?"),
    Exercise(12, "experiment", "Soft targets against CLIP's hard InfoNCE", "docs/method.md §3, §7",
             command="python tools/ablation.py --variants infonce c2vl",
             expected="full demo: C2VL 76.1 ± 3.2 linear, 69.2 ± 3.0 kNN-20, 62.0 ± 5.0 zero-shot; InfoNCE 74.7 ± 4.9, "
                      "68.9 ± 8.3, 64.4 ± 7.4; paired C2VL - InfoNCE +1.4 ± 2.0, +0.3 ± 3.2, -2.3 ± 1.6 (SE): **no "
                      "measurable difference on the demo** (lab setting: -0.7 ± 2.9, -1.4 ± 1.3, -4.8 ± 4.7, the same "
                      "conclusion). Both are far above the random-init encoder (C2VL +18.7 ± 3.8 linear)."),
    Exercise(13, "experiment", "Without the intra-modal soft labels (beta = 0)", "docs/method.md §4",
             command="python tools/ablation.py --variants c2vl inter --reference c2vl",
             expected="lab setting: beta 0 - C2VL, paired: +0.9 ± 1.2 linear, +2.7 ± 0.6 kNN-20 (passes the 3-seed "
                      "t-test, a small margin), +0.4 ± 2.1 zero-shot: **no effect above the spread on linear or "
                      "zero-shot**; the soft intra-modal labels do not help on the demo. Full demo: -0.7 ± 1.3, "
                      "+0.7 ± 2.0, -0.0 ± 1.3, all within the spread: the lab's small kNN-20 margin does not "
                      "reproduce."),
    Exercise(14, "experiment", "Without the teacher's inter-modal targets (alpha_T = 0), and a constant alpha",
             "docs/method.md §5", command="python tools/ablation.py --variants c2vl intra constant --reference c2vl",
             expected="lab setting, paired to C2VL: alpha_T 0 +1.1 ± 1.2 linear, +3.1 ± 1.7 kNN-20, +2.4 ± 3.1 "
                      "zero-shot (within the spread); constant alpha -4.0 ± 1.1, -3.0 ± 2.6, -6.0 ± 2.4 (lower on all "
                      "three, none above the spread with 3 seeds): **no measurable effect of the inter-modal target; "
                      "mixing it in from epoch 1 tends to hurt**. Full demo, alpha_T 0: -2.1 ± 2.6, +1.2 ± 1.6, "
                      "+2.3 ± 1.0, within the spread (constant alpha: lab only)."),
    Exercise(15, "experiment", "The cycle, the teacher's own prediction, or no inter-modal target",
             "docs/method.md §6, §11", command="python tools/ablation.py --variants c2vl self off --reference c2vl",
             expected="lab setting, paired to C2VL: self -0.8 ± 0.1 linear (passes, under 1 point), -2.9 ± 1.0 "
                      "kNN-20, +1.0 ± 3.0 zero-shot; off +0.6 ± 0.9, +2.7 ± 1.8, +2.3 ± 3.2: **the three inter-modal "
                      "targets are not distinguishable on the demo**."),
    Exercise(16, "experiment", "One prompt modality", "docs/method.md §6",
             command="python tools/ablation.py --variants c2vl vision language --reference c2vl",
             expected="lab setting, paired to C2VL: vision only -10.8 ± 1.5 linear, -14.3 ± 3.0 kNN-20, -26.8 ± 6.0 "
                      "zero-shot (all above the spread); language only +3.6 ± 2.0, +11.4 ± 1.1 (above), +7.5 ± 4.2: "
                      "**the prompts matter more than the targets**: the demo CLIP's vision features are its weaker ones "
                      "(38 % 1-NN by class against 68 % for language) and pull the two-modality model down. Full demo: "
                      "vision only -10.8 ± 2.9, -20.1 ± 0.4 (above), -33.5 ± 4.2 (above); language only +5.9 ± 1.5, "
                      "+12.3 ± 1.0 (above), +8.9 ± 1.6 (above): the same conclusions."),
    Exercise(17, "experiment", "The target temperature tau_t", "docs/method.md §4",
             command="python tools/ablation.py --variants c2vl tau --reference c2vl",
             expected="lab setting: tau_t 0.2 - C2VL (0.05), paired: +0.3 ± 2.4 linear, +3.5 ± 4.8 kNN-20, +4.5 ± 1.4 "
                      "zero-shot: **no effect above the spread**."),
    Exercise(18, "experiment", "Does the method depend on ST-GCN? The encoder comparison", "docs/method.md §8",
             command="python tools/ablation.py --variants c2vl --encoders stgcn gru transformer",
             expected="full demo, C2VL linear / kNN-20: ST-GCN 76.1 ± 3.2 / 69.2 ± 3.0, GRU 74.9 ± 1.5 / 68.5 ± 3.2, "
                      "Transformer 72.8 ± 2.2 / 71.6 ± 2.3 (not ranked: within the spreads); each above its own "
                      "random-init encoder, paired: +18.7 ± 3.8 / +22.8 ± 6.8, +6.9 ± 1.1 / +22.1 ± 1.6, +14.7 ± 1.4 / "
                      "+35.7 ± 2.9. **The method works with every encoder; the demo does not rank them.**"),
    Exercise(19, "experiment", "Noisy pairs: soft targets against InfoNCE as pairs break", "docs/method.md §6",
             command="python tools/ablation.py --variants infonce c2vl --pair-noise 0 0.2 0.4 0.6",
             expected="lab setting, linear: InfoNCE 71.8 ± 6.7, 69.3 ± 3.7, 63.3 ± 1.5, 54.1 ± 0.8 at p = 0, 0.2, "
                      "0.4, 0.6; C2VL 71.1 ± 3.3, 69.0 ± 2.7, 61.2 ± 4.3, 50.0 ± 10.5; one of twelve paired differences "
                      "above the spread (kNN-20 at p 0.2, +4.9 ± 1.1). **C2VL does not degrade more slowly on the "
                      "demo**; its target entropy on broken rows is within 0.06 nats of intact rows (README, Noisy "
                      "pairs): explain why."),
    Exercise(20, "experiment", "Where does a seed spread come from?", "docs/training.md, the demo's seed spread",
             command="python tools/ablation.py --variants c2vl --train-args \"--init orthogonal\" --out runs/orthogonal",
             expected="full demo (PyTorch's initialisation, README): C2VL 76.1 ± 3.2 linear, random init 57.4 ± 9.1; "
                      "validation world, orthogonal initialisation: the untrained encoder's kNN-20 std over 6 seeds "
                      "9.3 -> 1.4, the pretrained C2VL's 3-seed std 1.9 -> 2.6 linear, 3.4 -> 1.8 kNN-20 (InfoNCE 3.9 "
                      "-> 4.1, 3.9 -> 3.1). The table's test-set part says how much of each std 540 test samples "
                      "explain (1.5 of about 3.5 there). **The untrained lottery sits in ST-GCN's first block; the "
                      "pretrained spread is the pretraining's own.** Then run it again with OMP_NUM_THREADS=2 and "
                      "another --out and compare the means: which conclusions keep their sign? Last, a world with "
                      "twice the pairs (python demo/world.py --replications 4 --data-root datasets-r4, then the "
                      "ablation with --data-root datasets-r4 and --epochs 8 inside --train-args), seeds 0 1 2 and "
                      "then 3 4: on the validation world its 3-seed stds (1.0-2.9) looked like the cure and its "
                      "5-seed stds (2.6-5.4) were not. How many seeds does a std need? And which part is the "
                      "initialisation's: add --init-seed 0 inside --train-args (the initialisation fixed, only the "
                      "batch order following the seed); on the validation world, 5 seeds, the linear std stayed "
                      "3.0-3.3 (3.7 / 2.5 with both varying)."),
    Exercise(21, "extend", "A soft target of your own", "docs/method.md §4, §6",
             expected="Write it in soft_targets.py as a pure function with its equation in the docstring; give it a "
                      "value of DistillConfig.inter (distill.py) and a branch in distill.batch_targets; test that "
                      "its rows sum to 1 and that it equals a loop computation, like tests/test_soft_targets.py; "
                      "then add it to tools/ablation.py's VARIANTS and measure it against c2vl."),
    Exercise(22, "extend", "A pooling of the K prompt features of your own", "docs/method.md §1",
             expected="Add a value to prompts.POOLINGS and its branch in prompts.pool_prompts (the 'sample' caches "
                      "keep all K features, so a new pooling needs no new cache); test it like "
                      "test_prompt_pooling_mean_and_sample_one_per_step; train with --pooling <yours>."),
    Exercise(23, "extend", "Another skeleton encoder", "docs/method.md §8",
             expected="A file skeleton_<name>.py after skeleton_transformer.py, before encoders.py, in the reading "
                      "path (tests/test_layers.py), with `features`, `feature_dim`, `size` and `from_state` like "
                      "skeleton_gru.py; register it in encoders.ENCODERS, encoders.encoder_kind and "
                      "encoders.make_encoder; test its "
                      "layers against a direct computation and its strict checkpoint load like "
                      "tests/test_skeleton_gru.py; then train.py --encoder <name>."),
)


def exercise(number: int) -> Exercise:
    return next(e for e in CATALOGUE if e.number == number)


# ----------------------------------------------------------------------------------------------------------------
# The catalogue as Markdown (docs/exercises.md)
# ----------------------------------------------------------------------------------------------------------------

def catalogue_markdown(measured: dict | None = None) -> str:
    """docs/exercises.md: the catalogue, and each experiment's measured outcome from `measured` {number: text}."""
    measured = measured or {}
    lines = ["# Exercises", "",
             "Rendered from `tools/exercises.py` (`CATALOGUE`) by `python tools/exercises.py catalogue --out "
             "docs/exercises.md`; edit the tool, not this file.", "",
             "`python tools/exercises.py make --out DIR --hide-tests` makes a student copy with every implement-"
             "exercise blank (`--only N ...` for some); `python tools/exercises.py grade DIR --tests tests` grades it. "
             "A student runs the same tests on their copy: `python -m pytest <the tests of the exercise>`.", "",
             "**Where students work.** A plain shell runs every command as written. In a hosted notebook (Jupyter, "
             "Colab) clone the repository, `%cd` into it, and prefix the README's commands with `!` "
             "(`!pip install -r requirements.txt`, `!python train.py`, `!python -m pytest`); nothing else is needed. "
             "On a notebook that already has a torch build, `pip` replaces it with the pinned 2.13.0 (a CUDA build "
             "where no CPU wheel is the default: several GB).", "",
             f"**The lab setting** `python train.py {LAB}` (or `--train-args \"{LAB}\"` for tools/ablation.py) "
             "pretrains 8 epochs instead of 15, probes 50 linear epochs instead of 100 and skips the random-init "
             "encoder: about half a demo run, for iterating on an exercise. Its conclusions are compared with the "
             "full demo's where both were measured:", "",
             "| paired difference (mean ± SE, 3 seeds) | linear top-1 | kNN-20 | zero-shot |",
             "|---|---:|---:|---:|",
             "| **C2VL - InfoNCE**, full demo | +1.4 ± 2.0 | +0.3 ± 3.2 | -2.3 ± 1.6 |",
             "| C2VL - InfoNCE, lab setting | -0.7 ± 2.9 | -1.4 ± 1.3 | -4.8 ± 4.7 |",
             "| **vision only - C2VL**, full demo | -10.8 ± 2.9 | -20.1 ± 0.4 | -33.5 ± 4.2 |",
             "| vision only - C2VL, lab setting | -10.8 ± 1.5 | -14.3 ± 3.0 | -26.8 ± 6.0 |",
             "| **language only - C2VL**, full demo | +5.9 ± 1.5 | +12.3 ± 1.0 | +8.9 ± 1.6 |",
             "| language only - C2VL, lab setting | +3.6 ± 2.0 | +11.4 ± 1.1 | +7.5 ± 4.2 |",
             "| **beta 0 - C2VL**, full demo | -0.7 ± 1.3 | +0.7 ± 2.0 | -0.0 ± 1.3 |",
             "| beta 0 - C2VL, lab setting | +0.9 ± 1.2 | +2.7 ± 0.6 | +0.4 ± 2.1 |",
             "| **alpha_T 0 - C2VL**, full demo | -2.1 ± 2.6 | +1.2 ± 1.6 | +2.3 ± 1.0 |",
             "| alpha_T 0 - C2VL, lab setting | +1.1 ± 1.2 | +3.1 ± 1.7 | +2.4 ± 3.1 |", "",
             "The same direction and the same verdict where it matters (InfoNCE vs C2VL: within the spread in both; "
             "vision only worse, language only better on kNN-20, in both); the lab's numbers are 3-8 points lower (8 "
             "epochs). The one lab difference that passed its t-test by a small margin (beta 0, kNN-20 +2.7 ± 0.6) is "
             "within the spread in the full demo: treat a lab verdict as a pointer, not a result. Experiments 15, 17, "
             "19 and 14's constant alpha were measured in the lab setting only (their full-demo runs: drop "
             "`--train-args`, about 3 min a run).", ""]
    for kind, heading in (("implement", "Implement"), ("experiment", "Experiment: predict, run, explain"),
                          ("extend", "Extend")):
        lines += [f"## {heading}", ""]
        for e in [e for e in CATALOGUE if e.kind == kind]:
            lines.append(f"### {e.number}. {e.title}")
            lines.append("")
            lines.append(f"- the maths: {e.section}")
            if e.functions:
                lines.append("- write: " + ", ".join(f"`{f.replace(':', '.')}`" for f in e.functions))
                lines.append("- graded by: " + ", ".join(f"`{t}`" for t in e.tests) + f" ({e.points} points)")
                if e.depends_on:
                    lines.append("- its tests also run exercise " + ", ".join(map(str, e.depends_on)) + "'s functions")
                lines.append(f"- hint: {e.hint}")
            if e.command:
                lab = (f"inside --train-args: `{LAB}`" if "--train-args" in e.command else
                       f"add `--train-args \"{LAB}\"`")  # a second --train-args would replace the first
                lines.append(f"- run: `{e.command}` (the demo, seeds 0 1 2; the lab setting: {lab})")
                lines.append(f"- measured: {measured.get(e.number, e.expected or 'not yet measured')}")
            if e.kind == "extend":
                lines.append(f"- how: {e.expected}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------------------------------------------
# The student copy
# ----------------------------------------------------------------------------------------------------------------

def project_files(root: Path) -> list[Path]:
    """The repository's files, relative to `root`: git's tracked and untracked-but-not-ignored ones in a checkout,
    else every file outside SKIPPED folders."""
    if (root / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                                capture_output=True, check=True).stdout.decode().split("\0")
        return [Path(p) for p in listed if p and (root / p).is_file()]
    return [p.relative_to(root) for p in root.rglob("*") if p.is_file()
            and not SKIPPED & set(p.relative_to(root).parts)]


def find_function(tree: ast.Module, qualified: str) -> ast.FunctionDef:
    node, found = tree, None
    for name in qualified.split("."):
        found = next((n for n in node.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name), None)
        if found is None:
            raise KeyError(f"no {qualified} in the module")
        node = found
    return found


def blank(source: str, qualified: str, message: str) -> str:
    """`source` with the body of function `qualified` replaced by `raise NotImplementedError(message)`, its
    signature and docstring kept."""
    tree = ast.parse(source)
    function = find_function(tree, qualified)
    body = function.body
    documented = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and \
        isinstance(body[0].value.value, str)
    lines = source.splitlines(keepends=True)
    first = body[1].lineno if documented and len(body) > 1 else body[0].lineno if not documented else None
    indent = " " * body[0].col_offset
    raise_line = f"{indent}raise NotImplementedError({message!r})\n"
    if first is None:  # a docstring and nothing else
        return "".join(lines[:function.end_lineno] + [raise_line] + lines[function.end_lineno:])
    return "".join(lines[:first - 1] + [raise_line] + lines[function.end_lineno:])


def remove_tests(source: str, names: set[str]) -> str:
    """`source` without the test functions `names` (their decorators included)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    spans = [(min([n.lineno] + [d.lineno for d in n.decorator_list]), n.end_lineno) for n in tree.body
             if isinstance(n, ast.FunctionDef) and n.name in names]
    for start, end in sorted(spans, reverse=True):
        del lines[start - 1:end]
    return "".join(lines)


def message(e: Exercise) -> str:
    return f"Exercise {e.number}: {e.title} ({e.section})"


def make_copy(out: Path, only: Sequence[int] = (), hide_tests: bool = False, root: Path = ROOT) -> list[Exercise]:
    """The student copy at `out` (a new folder): chosen implement-exercises (default: all) blank. -> them."""
    chosen = [e for e in CATALOGUE if e.kind == "implement" and (not only or e.number in only)]
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"error: {out} exists and is not empty: give a new folder")
    for path in project_files(root):
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / path, out / path)
    for e in chosen:
        for target in e.functions:
            module, qualified = target.split(":")
            path = out / f"{module.replace('.', '/')}.py"
            path.write_text(blank(path.read_text(), qualified, message(e)))
    if hide_tests:
        hidden: dict[str, set[str]] = {}
        for e in chosen:
            for test in e.tests:
                file, _, name = test.partition("::")
                hidden.setdefault(file, set()).add(name.split("[")[0])
        for file, names in hidden.items():
            (out / file).write_text(remove_tests((out / file).read_text(), names))
    return chosen


# ----------------------------------------------------------------------------------------------------------------
# Grading
# ----------------------------------------------------------------------------------------------------------------

def run_tests(folder: Path, tests: Sequence[str]) -> dict[str, tuple[bool, str]]:
    """{test node id (parameters dropped): (passed, failure text)} of `tests` run by pytest in `folder`."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                        *sorted(set(tests))], cwd=folder, capture_output=True, text=True,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        results: dict[str, tuple[bool, str]] = {}
        if not report.is_file():
            return results
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            file = case.get("classname", "").replace(".", "/") + ".py"
            node = f"{file}::{case.get('name', '').split('[')[0]}"
            problems = [c for c in case if c.tag in ("failure", "error", "skipped")]
            text = " ".join((c.get("message") or "") + (c.text or "") for c in problems)
            passed, earlier = not problems, results.get(node, (True, ""))
            results[node] = (passed and earlier[0], (earlier[1] + " " + text).strip())
        return results


def grade(folder: Path, tests_from: Path | None = None, only: Sequence[int] = ()) -> tuple[list, bool]:
    """Run each implement-exercise's tests in a copy of `folder` (with the instructor's test files of `tests_from`
    put in place) -> ([(exercise, passed, total, points)], all passed)."""
    chosen = [e for e in CATALOGUE if e.kind == "implement" and (not only or e.number in only)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "copy"
        shutil.copytree(folder, work, ignore=shutil.ignore_patterns(*SKIPPED))
        if tests_from:
            for file in {t.split("::")[0] for e in chosen for t in e.tests}:
                shutil.copy2(Path(tests_from) / Path(file).name, work / file)
        results = run_tests(work, [t for e in chosen for t in e.tests])
    rows = []
    for e in chosen:
        passed = sum(results.get(t, (False, ""))[0] for t in e.tests)
        rows.append((e, passed, len(e.tests), e.points * passed // len(e.tests)))
    return rows, all(p == n for _, p, n, _ in rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python tools/exercises.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("make", help="a student copy with the chosen implement-exercises blank")
    make.add_argument("--out", required=True, help="a new folder")
    make.add_argument("--only", type=int, nargs="+", default=(), help="exercise numbers (default: every implement)")
    make.add_argument("--hide-tests", action="store_true", help="leave the grading tests out of the copy")
    marks = commands.add_parser("grade", help="run the exercises' tests and print the score table")
    marks.add_argument("folder", nargs="?", default=str(ROOT), help="the copy to grade (default: this repository)")
    marks.add_argument("--tests", default=None, help="the instructor's tests/ folder (for a copy made --hide-tests)")
    marks.add_argument("--only", type=int, nargs="+", default=())
    listing = commands.add_parser("catalogue", help="the catalogue as Markdown (docs/exercises.md)")
    listing.add_argument("--out", default=None, help="write it there instead of printing it")
    args = parser.parse_args(argv)
    if args.command == "make":
        chosen = make_copy(Path(args.out), args.only, args.hide_tests)
        print(f"{args.out}: a student copy with exercises {', '.join(str(e.number) for e in chosen)} to implement"
              + (" (their tests left out)" if args.hide_tests else ""))
    elif args.command == "grade":
        rows, ok = grade(Path(args.folder), Path(args.tests) if args.tests else None, args.only)
        print(f"{'exercise':60s} {'tests passed':>12s} {'points':>7s}")
        for e, passed, total, points in rows:
            print(f"{f'{e.number}. {e.title}'[:60]:60s} {f'{passed}/{total}':>12s} {f'{points}/{e.points}':>7s}")
        print(f"{'total':60s} {'':>12s} {sum(r[3] for r in rows):>3d}/{sum(r[0].points for r in rows)}")
        if not ok:
            sys.exit(1)
    else:
        text = catalogue_markdown()
        if args.out:
            write_text(Path(args.out), text)
        else:
            print(text, end="")


if __name__ == "__main__":
    main()
