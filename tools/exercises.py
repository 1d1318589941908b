"""Course assignments on this repository: an exercise catalogue, a student copy that is a course handout, checks a
student runs, grading an instructor runs.

Three kinds of exercise (docs/exercises.md is rendered from CATALOGUE by `python tools/exercises.py catalogue`):
- implement: the paper's pieces in reading order; each names the function(s) a student writes, the equation in
  docs/method.md, the visible checks a student runs (tests/checks/: shapes, simple cases, invariants), the graded
  tests (they compute the equation independently: the answer key) and a hint;
- experiment: predict, run, explain; each with its question, its command, what it needs, its time, and the outcome
  measured on the demo (tools/exercise_outcomes.py, the instructor's);
- extend: where a new soft target, pooling or encoder plugs in, and how to test it.

The instructor:
    python tools/exercises.py make --out ../c2vl-student --hide-tests   # a copy with every implement-exercise blank
    python tools/exercises.py make --out ../c2vl-student --only 2 5 12  # exercises 2 and 5 blank, experiment 12
    python tools/exercises.py grade ../c2vl-student --tests tests        # one copy: scores, and why tests failed
    python tools/exercises.py grade --class submissions --tests tests    # one subfolder (or .zip) per student:
                                                                         # submissions/scores.json and .csv
The student, in the copy (its README.md says the rest):
    python tools/exercises.py check 2          # exercise 2's visible checks: which fails and why
    python tools/exercises.py run 12 --lab     # experiment 12, once its exercises are written
    python tools/exercises.py handin --out me.zip

The student copy has no git history and no instructor-only file (the kit's tests, bench/, the measured outcomes;
docs that hold measured results keep only their headings); each chosen function keeps its signature and docstring,
and its body becomes `raise NotImplementedError("Exercise N: ...")`, with a comment where the docstring does not say
everything the graded tests ask. With --hide-tests the graded tests of the chosen exercises, and the tests that hold
an independent computation of their answers, are left out (the instructor grades with --tests).
"""
from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.exercise_grading import Outcome, first_lines, run_tests, write_scores  # noqa: E402
from tools.exercise_sources import (  # noqa: E402
    blank,
    blanked_exercise,
    defined_tests,
    find_function,
    remove_imports_of,
    remove_tests,
    remove_tests_naming,
    remove_with_users,
)
from utils.files import write_json, write_text  # noqa: E402

try:  # the instructor's measured outcomes; a student copy has none
    from tools.exercise_outcomes import LAB_COMPARISON, LAB_VERDICT, OUTCOMES  # noqa: E402
except ImportError:
    LAB_COMPARISON, LAB_VERDICT, OUTCOMES = (), "", {}

# The lab setting: fewer pretraining epochs and linear-probe epochs, no random-init encoder; about half a demo run.
# For iterating on an exercise; its conclusions on the experiments are compared with the full demo's in
# docs/exercises.md.
LAB = "--epochs 8 --linear-epochs 50 --no-baseline"
SKIPPED = {".git", "datasets", "runs", "__pycache__", ".pytest_cache", "cache"}  # never copied to a student
# Instructor-only, never in a student copy: the kit's own tests, the measured outcomes, bench/ (bench_stgcn.py's
# graph_first_conv computes exercise 7's answer), the figures of the measured results. A doc's sections that hold a
# measured result (MEASURED) keep only their heading.
WITHHELD = ("tests/test_exercises.py", "tools/exercise_outcomes.py", "bench/", "docs/results/")
RESULTS_DOCS = ("docs/results.md",)  # in a copy: their headings only (other files cite their sections)
WITHHELD_MODULES = {"bench"}  # a copy's tests that import them lose those imports and the tests that used them
MEASURED = re.compile(r"\d+\.\d+ ?± ?\d+\.\d+")  # a mean ± spread, "x.y ± z.w": a measured result
COURSE_FILE = "course.json"  # in a copy: what was given (exercises, blanks, hidden tests); grade and check read it
TIMEOUT = 900  # seconds for one submission's tests (an endless loop fails, the class goes on)


@dataclass(frozen=True)
class Exercise:
    number: int
    kind: str  # implement | experiment | extend
    title: str
    section: str  # where the maths is, e.g. "docs/method.md §4"
    functions: tuple = ()  # implement: "module:Qualified.name" the student writes
    tests: tuple = ()  # implement: pytest node ids that grade it (the instructor's)
    hint: str = ""
    depends_on: tuple = ()  # implement: exercises whose functions its graded tests also run
    command: str = ""  # experiment: the command that measures it
    expected: str = ""  # extend: where it plugs in and how to test it (experiments: tools/exercise_outcomes.py)
    points: int = 10
    checks: tuple = ()  # implement: node ids of its visible checks (tests/checks/), a student's
    check_needs: tuple = ()  # implement: exercises whose functions its checks also run
    notes: tuple = ()  # implement: ("module:Qualified.name", what its docstring does not say), put into the blank
    question: str = ""  # experiment: what to predict before running, and what to explain after


ST, DI, PR = "tests/test_soft_targets.py::", "tests/test_distill.py::", "tests/test_prompts.py::"
CS, CD = "tests/checks/test_check_soft_targets.py::", "tests/checks/test_check_distill.py::"
CG = "tests/checks/test_check_skeleton_gcn.py::"


def checks_in(file: str, *names: str) -> tuple:
    return tuple(f"tests/checks/{file}::{name}" for name in names)


CATALOGUE = (
    Exercise(1, "implement", "The soft cross-entropy H and the student's logits (M1)", "docs/method.md §2, §3",
             ("soft_targets:soft_cross_entropy", "soft_targets:student_logits"),
             (ST + "test_student_logits_are_scaled_cosines_M1", ST + "test_soft_cross_entropy_matches_its_definition",
              ST + "test_soft_cross_entropy_with_identity_is_cross_entropy"),
             "H averages over rows and sums over columns; log_softmax keeps it finite for any logit scale. S_ms is not "
             "computed again.",
             checks=(CS + "test_S_sm_is_N_by_N_and_S_ms_is_its_transpose",
                     CS + "test_the_diagonal_of_S_sm_is_t_when_each_skeleton_equals_its_prompt",
                     CS + "test_the_logit_scale_t_receives_a_gradient",
                     CS + "test_H_of_equal_logits_is_log_N_for_any_target",
                     CS + "test_H_of_a_two_sample_batch_by_hand", CS + "test_H_stays_finite_at_large_logit_scales")),
    Exercise(2, "implement", "Soft targets within one modality (M2-M4)", "docs/method.md §4",
             ("soft_targets:prompt_self_similarity", "soft_targets:teacher_self_similarity",
              "soft_targets:intra_modal_targets"),
             (ST + "test_prompt_self_similarity_M2", ST + "test_teacher_self_similarity_M3",
              ST + "test_intra_modal_targets_M4", ST + "test_intra_targets_in_epoch_one_use_the_prompt_similarity_twice",
              ST + "test_beta_zero_intra_target_is_identity"),
             "Rows without a teacher take their epoch-1 value; masked_row_softmax and _epoch_one_rows are there to "
             "help. Every row of Y_intra must sum to 1.",
             checks=(CS + "test_A_m_is_row_stochastic_and_each_prompt_is_most_similar_to_itself",
                     CS + "test_a_smaller_tau_t_gives_sharper_rows_of_A_m", CS + "test_A_s_in_epoch_one_is_A_m",
                     CS + "test_A_s_rows_without_a_teacher_are_A_m_rows_and_no_mass_goes_to_them",
                     CS + "test_Y_intra_is_row_stochastic_I_at_beta_0_and_A_m_at_beta_1_in_epoch_one",
                     CS + "test_Y_intra_keeps_at_least_1_minus_beta_on_the_diagonal")),
    Exercise(3, "implement", "The teacher bank and the alpha schedule (M5-M6)", "docs/method.md §5",
             ("distill:TeacherBank.read", "distill:TeacherBank.write", "distill:alpha_schedule"),
             (DI + "test_alpha_is_alpha_T_over_E_at_first_epoch_and_alpha_T_at_last",
              DI + "test_teacher_bank_read_write_by_dataset_index"),
             "Epochs are 1-based. The bank stores float16 and reads float32; `written_in` records the epoch of each "
             "row's write: a row teaches only in the epoch after it was written, and a read never sees the write of "
             "the same step.",
             checks=(CD + "test_alpha_e_rises_in_equal_steps_to_alpha_T_at_the_last_epoch",
                     CD + "test_the_constant_schedule_is_alpha_T_from_the_first_epoch",
                     CD + "test_an_epoch_outside_1_to_E_is_refused",
                     CD + "test_the_bank_reads_back_what_was_written_as_float32",
                     CD + "test_rows_never_written_are_not_filled_and_read_as_zero",
                     CD + "test_a_row_teaches_only_in_the_epoch_after_its_write",
                     CD + "test_a_second_write_replaces_the_first")),
    Exercise(4, "implement", "Soft targets across modalities: the cycle (M7-M9)", "docs/method.md §6",
             ("soft_targets:cross_prompt_agreement", "soft_targets:teacher_predictions",
              "soft_targets:teacher_predictions_from_prompts", "soft_targets:inter_modal_targets",
              "soft_targets:self_distillation_targets"),
             (ST + "test_cross_prompt_agreement_M7", ST + "test_teacher_predictions_M8",
              ST + "test_inter_modal_targets_follow_the_cycle_M9", ST + "test_inter_targets_in_epoch_one_are_identity",
              ST + "test_self_distillation_targets_are_the_teachers_predictions",
              ST + "test_rows_without_teacher_fall_back_as_in_epoch_one"),
             "Write the path of each cycle in words first (skeleton i -> language k -> vision j); a product of row-"
             "stochastic matrices is row-stochastic.", depends_on=(2,),
             checks=(CS + "test_C_ab_is_row_stochastic_and_exact_for_orthogonal_prompts",
                     CS + "test_Q_sm_and_Q_ms_are_row_stochastic_and_sharpen_with_t_hat",
                     CS + "test_Q_ms_puts_no_mass_on_skeletons_without_a_teacher",
                     CS + "test_every_Y_inter_is_row_stochastic",
                     CS + "test_each_cycle_follows_its_path_through_the_other_prompt_modality",
                     CS + "test_Y_inter_is_I_in_epoch_one_and_on_rows_without_a_teacher",
                     CS + "test_self_distillation_targets_are_I_in_epoch_one_and_row_stochastic")),
    Exercise(5, "implement", "The progressive target and the loss (M10-M12)", "docs/method.md §7",
             ("distill:progressive_target", "distill:modality_loss", "distill:c2vl_loss"),
             (DI + "test_progressive_target_mixes_intra_and_inter_M10", DI + "test_modality_loss_averages_both_directions_M11",
              DI + "test_total_loss_weights_the_modalities_M12", DI + "test_beta_zero_alpha_zero_is_infonce"),
             "With beta = 0 and alpha_T = 0 your loss must be CLIP's symmetric InfoNCE exactly.",
             depends_on=(1, 2, 3, 4),
             checks=(CD + "test_T_is_Y_intra_at_alpha_0_Y_inter_at_alpha_1_and_row_stochastic_between",
                     CD + "test_L_m_of_equal_logits_is_log_N", CD + "test_L_m_averages_the_two_directions",
                     CD + "test_L_weights_each_modality_by_its_lambda"), check_needs=(1,)),
    Exercise(6, "implement", "P1: pooling the K prompt features", "docs/method.md §1",
             ("prompts:pool_prompts",),
             (PR + "test_prompt_pooling_mean_and_sample_one_per_step",),
             "Normalise each of the K features before the mean, and the mean again after it. 'sample' draws for the "
             "global batch and keeps this process's rows.",
             checks=checks_in("test_check_prompts.py", "test_a_mean_cache_B_by_D_comes_back_as_unit_rows",
                              "test_mean_pooling_normalises_each_feature_before_the_mean",
                              "test_mean_pooling_gives_B_unit_rows_in_float32",
                              "test_sample_pooling_returns_one_of_each_samples_K_unit_features",
                              "test_sample_pooling_under_torchrun_draws_what_one_process_would",
                              "test_an_unknown_pooling_or_shape_is_refused"),
             notes=(("prompts:pool_prompts", "the rows come back float32 whatever the cache's "
                     "dtype (caches are float16); 'sample' draws k = torch.randint(K, (global_batch or B,), "
                     "generator=generator) once and keeps rows offset .. offset + B; a pooling other than 'mean' or "
                     "'sample', or features neither (B, D) nor (B, K, D), raise ValueError."),)),
    Exercise(7, "implement", "G1: the spatial graph convolution", "docs/method.md §8",
             ("skeleton_gcn:SpatialGraphConv.forward",),
             ("tests/test_skeleton_gcn.py::test_spatial_graph_conv_equals_direct_loop",),
             "One 1x1 convolution gives every W_k x at once; the graph sum over v and k is one einsum.",
             checks=(CG + "test_G1_maps_N_C_in_T_V_to_N_C_out_T_V",
                     CG + "test_G1_with_an_empty_graph_is_zero_because_the_bias_is_inside_the_graph_sum",
                     CG + "test_partition_k_uses_channels_k_C_out_to_k_plus_1_C_out_of_the_1x1_conv",
                     CG + "test_A_k_v_w_carries_joint_v_into_joint_w", CG + "test_G1_is_linear_in_the_graph"),
             notes=(("skeleton_gcn:SpatialGraphConv.forward", "self.conv(x) is (N, K*C_out, T, V), "
                     "channels k*C_out .. (k+1)*C_out - 1 holding W_k x + b_k; the bias is added before "
                     "the graph sum, as in the reference code, so an empty graph A = 0 gives 0. A (K, V, V) comes "
                     "from the caller: this exercise does not need exercise 8's Graph."),)),
    Exercise(8, "implement", "G2: the spatial partition of the skeleton graph", "docs/method.md §8",
             ("skeleton_gcn:Graph.__init__",),
             ("tests/test_skeleton_gcn.py::test_spine_mid_partitions_are_itself_spine_base_spine_shoulder",
              "tests/test_skeleton_gcn.py::test_columns_of_summed_partitions_sum_to_one",
              "tests/test_skeleton_gcn.py::test_spatial_partition_matches_an_independent_transcription_of_the_rule"),
             "Read docs/conventions.md §4 on the reference code's capped distance: joints further than one hop from "
             "the centre all tie.",
             checks=(CG + "test_A_holds_three_partitions_of_the_25_joints",
                     CG + "test_A_0_is_the_joint_itself_divided_by_its_degree",
                     CG + "test_every_link_of_the_skeleton_is_in_exactly_one_of_A_1_and_A_2",
                     CG + "test_the_centre_spine_shoulder_is_closer_than_its_neighbours"),
             notes=(("skeleton_gcn:Graph.__init__", "set self.A, a numpy float array (3, V, V) = "
                     "(A_0, A_1, A_2) of G2 (docs/method.md §8, docs/conventions.md §4), from NTU_EDGES_1BASED "
                     "(1-based joints) and NTU_CENTER (0-based); hop_distance and normalize_digraph above are there "
                     "to help."),)),
    Exercise(9, "implement", "E2: the weighted kNN classifier", "docs/method.md §9",
             ("evaluate:knn_predict",),
             ("tests/test_evaluate.py::test_knn_of_separable_features_is_100_percent_for_k_1_10_20",
              "tests/test_evaluate.py::test_knn_votes_are_weighted_by_exp_similarity_over_tau"),
             "Cosine similarity of unit rows; each neighbour votes exp(s / tau) for its class (scatter_add_).",
             checks=checks_in("test_check_evaluate.py", "test_the_result_is_a_dict_of_N_test_predictions_for_each_k",
                              "test_k_1_is_the_nearest_neighbours_class",
                              "test_similarity_is_cosine_so_a_features_length_does_not_matter",
                              "test_votes_weigh_exp_similarity_over_tau",
                              "test_a_k_larger_than_the_training_set_uses_all_of_it",
                              "test_the_chunk_size_does_not_change_the_predictions"),
             notes=(("evaluate:knn_predict", "the result is a dict {k: (N_test,) int64 class "
                     "predictions} with one entry per k in ks; a k larger than the training set uses all of it; "
                     "classes are 0 .. max(train_labels); `chunk` test rows at a time bound the memory of the "
                     "(chunk, N_train) similarity and do not change the result."),)),
    Exercise(10, "implement", "Multi-head attention of the Transformer encoder", "docs/method.md §8",
             ("skeleton_transformer:Attention.forward",),
             ("tests/test_skeleton_transformer.py::test_attention_equals_softmax_qk_over_sqrt_d_times_v_looped_over_heads",
              "tests/test_skeleton_transformer.py::test_the_feature_equals_tokens_pre_norm_blocks_and_the_mean_over_persons_patches_joints"),
             "qkv(u) holds Q, K and V side by side; split D into H heads of D / H, attend per head, put the heads "
             "side by side again and apply W_o.",
             checks=checks_in("test_check_skeleton_transformer.py", "test_attention_maps_B_n_D_to_B_n_D",
                              "test_one_token_attends_only_to_itself_so_attn_is_W_o_V",
                              "test_two_tokens_by_hand_with_q_k_v_equal_to_the_tokens",
                              "test_attention_is_equivariant_to_the_order_of_the_tokens",
                              "test_the_samples_of_a_batch_do_not_attend_to_each_other",
                              "test_the_heads_each_attend_with_their_own_weights"),
             notes=(("skeleton_transformer:Attention.forward", "u (B, n, D) -> (B, n, D); "
                     "self.qkv(u) is (B, n, 3*D), Q, K and V side by side, and head h of each is its columns h*d .. "
                     "(h+1)*d - 1 with d = D / self.heads; Attn(u) = [softmax(Q_h K_h^T / sqrt(d)) V_h]_h W_o + "
                     "b_o, W_o and b_o being self.proj."),)),
    Exercise(11, "implement", "The bidirectional GRU's feature, whole-sequence and ISC's stepping",
             "docs/method.md §8",
             ("skeleton_gru:SkeletonGRU.features",),
             ("tests/test_skeleton_gru.py::test_gru_feature_is_both_directions_final_state_by_the_cell_equations",
              "tests/test_skeleton_gru.py::test_the_frame_vector_is_ordered_joint_coordinate_person_as_in_isc"),
             "torch.nn.GRU returns the last state of every layer and direction; which rows of h_n are the last "
             "layer's? Write both settings of self.stepping (the graded tests run both): stepping \"frame\" "
             "feeds the GRU one frame at a time and carries the state h from step to step.",
             checks=checks_in("test_check_skeleton_gru.py", "test_f_X_is_N_by_2_hidden",
                              "test_the_frame_vector_u_t_is_ordered_joint_coordinate_person",
                              "test_f_X_is_the_last_layers_state",
                              "test_a_one_person_input_is_the_two_person_layout_with_an_empty_second_person",
                              "test_one_frame_gives_the_same_feature_in_both_settings",
                              "test_frame_stepping_is_iscs_stepping_not_the_whole_sequence_pass"),
             notes=(("skeleton_gru:SkeletonGRU.features", "both settings of self.stepping. "
                     "\"sequence\": one pass of self.encoder.gru over the T frame vectors u_t, f(X) = [h_T^fwd ; h_1^bwd] of "
                     "the last layer. \"frame\", ISC's stepping (its and CMD's released weights give their features only "
                     "this way): the GRU reads one frame at a time, carrying its state h (every layer and direction) "
                     "from step to step, so the 'backward' direction also reads forward in time, and f(X) is the "
                     "GRU's output at the last frame. A one-person input (M = 1) first gets an empty second person."),
                    )),
    Exercise(12, "experiment", "Soft targets against CLIP's hard InfoNCE", "docs/method.md §3, §7",
             command="python tools/ablation.py --variants infonce c2vl",
             question="Predict: do C2VL's soft targets beat CLIP's hard InfoNCE targets on the demo (linear, kNN-20, "
                      "zero-shot top-1), and by more than the spread over seeds? Then explain the table, and how far "
                      "both are above the random-init encoder."),
    Exercise(13, "experiment", "Without the intra-modal soft labels (beta = 0)", "docs/method.md §4",
             command="python tools/ablation.py --variants c2vl inter --reference c2vl",
             question="Predict: what do the intra-modal soft labels (M4, weight beta) add? Compare beta = 0 with "
                      "C2VL's beta = 0.5, paired by seed, and say whether any difference stands above the spread."),
    Exercise(14, "experiment", "Without the teacher's inter-modal targets (alpha_T = 0), and a constant alpha",
             "docs/method.md §5", command="python tools/ablation.py --variants c2vl intra constant --reference c2vl",
             question="Predict: does the teacher's inter-modal target help (alpha_T = 0 switches it off), and does "
                      "ramping alpha_e up over the epochs matter against mixing it in at alpha_T from epoch 1?"),
    Exercise(15, "experiment", "The cycle, the teacher's own prediction, or no inter-modal target",
             "docs/method.md §6, §11", command="python tools/ablation.py --variants c2vl self off --reference c2vl",
             question="Predict: which inter-modal target works best on the demo: the cycle through the other prompt "
                      "modality (M9), the teacher's own prediction (self), or none (off)? Can the demo tell them "
                      "apart?"),
    Exercise(16, "experiment", "One prompt modality", "docs/method.md §6",
             command="python tools/ablation.py --variants c2vl vision language --reference c2vl",
             question="Predict: which prompt modality carries the method on the demo: vision only, language only, "
                      "or both? Then look at how well each modality's prompt features separate the classes and "
                      "explain."),
    Exercise(17, "experiment", "The target temperature tau_t", "docs/method.md §4",
             command="python tools/ablation.py --variants c2vl tau --reference c2vl",
             question="Predict: what does a softer target temperature (tau_t = 0.2 instead of 0.05) do to the "
                      "targets' entropy and to the three scores?"),
    Exercise(18, "experiment", "Does the method depend on ST-GCN? The encoder comparison", "docs/method.md §8",
             command="python tools/ablation.py --variants c2vl --encoders stgcn gru transformer",
             question="Predict: does C2VL need ST-GCN? Rank ST-GCN, the GRU and the Transformer, and compare each "
                      "with its own random-init encoder: which comparison can the demo make, which can it not?"),
    Exercise(19, "experiment", "Noisy pairs: soft targets against InfoNCE as pairs break", "docs/method.md §6",
             command="python tools/ablation.py --variants infonce c2vl --pair-noise 0 0.2 0.4 0.6",
             question="Predict: as a fraction p of the skeleton-prompt pairs breaks (a sample gets another sample's "
                      "prompts), do soft targets degrade more slowly than InfoNCE? Then compare the target entropy "
                      "of broken and intact rows (train.py logs both) and explain why."),
    Exercise(20, "experiment", "Where does a seed spread come from?", "docs/training.md, the demo's seed spread",
             command="python tools/ablation.py --variants c2vl --train-args \"--init orthogonal\" --out runs/orthogonal",
             question="Predict: where does the spread over seeds come from: the initialisation, the batch order, the "
                      "finite test set? Run C2VL with ST-GCN's convolutions orthogonal and compare each std with "
                      "C2VL's runs of experiment 12 (PyTorch's initialisation); the table's test-set part says how "
                      "much of each std the test samples explain. Then run it again with OMP_NUM_THREADS=2 and "
                      "another --out and compare the means: which conclusions keep their sign? Last, a world with "
                      "twice the pairs (python demo/world.py --replications 4 --data-root datasets-r4, then the "
                      "ablation with --data-root datasets-r4 and --epochs 8 inside --train-args), seeds 0 1 2 and "
                      "then 3 4: how many seeds does a std need? And which part is the initialisation's: add "
                      "--init-seed 0 inside --train-args (the initialisation fixed, only the batch order following "
                      "the seed)."),
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

# Test helpers that are not graded tests but compute some exercises' answers independently (test_distill.py's
# reference_loss writes M1-M12 in numpy): with --hide-tests they leave a copy where any of those exercises is blank,
# and so does every test that uses them.
ANSWER_KEYS = {DI + "reference_loss": (1, 2, 4, 5)}

# What training needs: the loss and its targets (1-5), the prompt features (6: the caches are pooled when made) and
# the kNN monitor and evaluation (9), and then the encoder's own exercise(s).
TRAINING_NEEDS = (1, 2, 3, 4, 5, 6, 9)
ENCODER_NEEDS = {"stgcn": (7, 8), "gru": (11,), "transformer": (10,)}
# Minutes per train.py run on an idle 2-core CPU, (full demo, lab setting), data and prompt features in place
# (docs/speed.md: ST-GCN 3 min 6 s, lab 1 min 49 s, GRU 1 min 22 s, Transformer 3 min 14 s; the GRU's and the
# Transformer's lab runs are estimated at ST-GCN's lab / full ratio). The first run of a copy also makes the data and
# the prompt features: about FIRST_RUN minutes more (4 min 40 s against 3 min 6 s).
MINUTES = {"stgcn": (3.1, 1.8), "gru": (1.4, 0.8), "transformer": (3.2, 1.9)}
FIRST_RUN = 1.6


class KitError(Exception):
    """A wrong argument or a folder the kit cannot use: main prints its one line and exits with status 2."""


def exercise(number: int) -> Exercise:
    found = next((e for e in CATALOGUE if e.number == number), None)
    if found is None:
        raise KitError(f"no exercise {number}: the catalogue has exercises 1-{len(CATALOGUE)} "
                       f"(python tools/exercises.py catalogue lists them)")
    return found


def of_kind(kind: str, exercises: Sequence[Exercise] = CATALOGUE) -> list[Exercise]:
    return [e for e in exercises if e.kind == kind]


def span(numbers: Sequence[int]) -> str:
    """(1, 2, 3, 5) -> "1-3, 5"."""
    numbers, parts = sorted(set(numbers)), []
    for n in numbers:
        if parts and n == parts[-1][1] + 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" if b > a + 1 else f"{a}, {b}" for a, b in parts)


def implement_exercises(numbers: Sequence[int], what: str) -> list[Exercise]:
    """The implement-exercises `numbers` (KitError naming any that is unknown or of another kind)."""
    chosen = [exercise(n) for n in numbers]
    for e in chosen:
        if e.kind == "experiment":
            raise KitError(f"exercise {e.number} is an experiment, nothing to {what}: run it with "
                           f"python tools/exercises.py run {e.number}")
        if e.kind == "extend":
            raise KitError(f"exercise {e.number} is an extension, nothing to {what}: {e.expected}")
    return chosen


# ----------------------------------------------------------------------------------------------------------------
# Experiments: what they run, what they need, how long they take
# ----------------------------------------------------------------------------------------------------------------

def ablation_grid(command: str) -> dict[str, list[str]]:
    """The values of tools/ablation.py's flags in `command` (an experiment names its --variants), with the defaults
    of its encoders, pair noise and seeds where it leaves them out."""
    tokens, grid, flag = shlex.split(command), {}, None
    for token in tokens[2:]:
        if token.startswith("--"):
            flag = token.lstrip("-").replace("-", "_")
            grid[flag] = []
        elif flag:
            grid[flag].append(token)
    for name, default in (("encoders", ["stgcn"]), ("pair_noise", ["0"]), ("seeds", ["0", "1", "2"])):
        grid.setdefault(name, default)
    return grid


def experiment_needs(e: Exercise) -> tuple:
    """The implement-exercises whose functions an experiment's runs call."""
    needs = set(TRAINING_NEEDS)
    for encoder in ablation_grid(e.command)["encoders"]:
        needs |= set(ENCODER_NEEDS[encoder])
    return tuple(sorted(needs))


def experiment_argv(e: Exercise, lab: bool = False, seeds: Sequence[int] = ()) -> list[str]:
    """The experiment's command as an argument list; lab: the lab setting inside --train-args and its own output
    folder (tools/ablation.py reuses the finished runs of a folder: lab and full runs must not share one)."""
    argv = shlex.split(e.command)[1:]
    if seeds:
        argv += ["--seeds", *map(str, seeds)]
    if lab:
        if "--train-args" in argv:  # a second --train-args would replace the first
            at = argv.index("--train-args") + 1
            argv[at] = f"{argv[at]} {LAB}"
        else:
            argv += ["--train-args", LAB]
        if "--out" in argv:
            argv[argv.index("--out") + 1] += "-lab"
        else:
            argv += ["--out", "runs/ablation-lab"]
    return argv


def experiment_minutes(e: Exercise, lab: bool = False, seeds: Sequence[int] = ()) -> tuple[int, float]:
    """(number of train.py runs, minutes on an idle 2-core CPU with the data in place)."""
    grid = ablation_grid(e.command)
    per_encoder = len(grid["variants"]) * len(grid["pair_noise"]) * len(seeds or grid["seeds"])
    minutes = sum(per_encoder * MINUTES[encoder][lab] for encoder in grid["encoders"])
    return per_encoder * len(grid["encoders"]), minutes


def about(minutes: float) -> str:
    if minutes < 10:
        return f"about {max(1, round(minutes))} min"
    if minutes < 90:
        return f"about {5 * round(minutes / 5)} min"
    return f"about {minutes / 60:.1f} h"


def time_note(e: Exercise) -> str:
    runs, full = experiment_minutes(e)
    _, lab = experiment_minutes(e, lab=True)
    return (f"{runs} train.py runs: {about(full)} on an idle 2-core CPU, {about(lab)} in the lab setting (a shared "
            f"or slower machine: up to twice that; the first run of a copy makes the data and the prompt features, "
            f"about {math.ceil(FIRST_RUN)} min more)")


# ----------------------------------------------------------------------------------------------------------------
# The catalogue as Markdown: the instructor's (docs/exercises.md) and a student copy's
# ----------------------------------------------------------------------------------------------------------------

def catalogue_markdown(student: bool = False, chosen: Sequence[Exercise] = CATALOGUE,
                       hidden_tests: bool = False) -> str:
    """docs/exercises.md. The instructor's (student=False) has every exercise, the graded tests and each experiment's
    measured outcome; a student copy's has the chosen exercises, how to check them, and no outcome."""
    student = student or not OUTCOMES
    lines = ["# Exercises", ""]
    if student:
        lines += ["The exercises of this course copy (README.md says how to work, check and hand in). Check an "
                  "implement-exercise with `python tools/exercises.py check N`; run an experiment with "
                  "`python tools/exercises.py run N` (add `--lab` for the lab setting).", ""]
    else:
        lines += ["Rendered from `tools/exercises.py` (`CATALOGUE`; the measured outcomes: "
                  "`tools/exercise_outcomes.py`) by `python tools/exercises.py catalogue --out docs/exercises.md`; "
                  "edit the tool, not this file.", "",
                  "`python tools/exercises.py make --out DIR --hide-tests` makes a student copy with every implement-"
                  "exercise blank (`--only N ...` for some): a course handout with its own README.md, the visible "
                  "checks and no instructor-only file (the graded tests, the kit's tests, bench/, the measured "
                  "outcomes). A student checks an exercise with `python tools/exercises.py check N` (tests/checks/: "
                  "shapes, simple cases, invariants, in the paper's terms) and runs an experiment with "
                  "`python tools/exercises.py run N`, which first says what it needs and how long it takes. "
                  "`python tools/exercises.py grade DIR --tests tests` grades a copy (which tests failed and why, "
                  "`--scores FILE.json|.csv`); `grade --class DIR --tests tests` grades one subfolder or .zip per "
                  "student into DIR/scores.json and DIR/scores.csv.", "",
                  "**Where students work.** A plain shell runs every command as written. In a hosted notebook "
                  "(Jupyter, Colab) clone the repository, `%cd` into it, and prefix the README's commands with `!` "
                  "(`!pip install -r requirements.txt`, `!python train.py`, `!python -m pytest`); nothing else is "
                  "needed. On a notebook that already has a torch build, `pip` replaces it with the pinned 2.13.0 (a "
                  "CUDA build where no CPU wheel is the default: several GB).", ""]
    lines += [f"**The lab setting** `python train.py {LAB}` (or `--train-args \"{LAB}\"` for tools/ablation.py, "
              "`--lab` for `python tools/exercises.py run N`) pretrains 8 epochs instead of 15, probes 50 linear "
              "epochs instead of 100 and skips the random-init encoder: about half a demo run, for iterating on an "
              "exercise. A lab verdict is a pointer, not a result: check it in the full demo before concluding."
              + ("" if student else " Its conclusions are compared with the full demo's where both were measured:"),
              ""]
    if not student:
        lines += [*LAB_COMPARISON, "", LAB_VERDICT, ""]
    for kind, heading in (("implement", "Implement"), ("experiment", "Experiment: predict, run, explain"),
                          ("extend", "Extend")):
        these = of_kind(kind, chosen)
        if not these:
            continue
        lines += [f"## {heading}", ""]
        for e in these:
            lines += [f"### {e.number}. {e.title}", "", f"- the maths: {e.section}"]
            if e.kind == "implement":
                lines.append("- write: " + ", ".join(f"`{f.replace(':', '.')}`" for f in e.functions))
                for target, note in e.notes:
                    lines.append(f"- `{target.replace(':', '.')}` must also: {note}")
                lines.append(f"- check: `python tools/exercises.py check {e.number}` ({len(e.checks)} checks"
                             + (f"; they also run exercise {span(e.check_needs)}'s functions" if e.check_needs else "")
                             + ")")
                if student and hidden_tests:
                    lines.append(f"- graded by the instructor's tests ({e.points} points)")
                else:
                    lines.append("- graded by: " + ", ".join(f"`{t}`" for t in e.tests) + f" ({e.points} points)")
                if e.depends_on:
                    lines.append(f"- its graded tests also run exercise {span(e.depends_on)}'s functions")
                lines.append(f"- hint: {e.hint}")
            if e.kind == "experiment":
                lab = (f"inside --train-args: `{LAB}`" if "--train-args" in e.command else
                       f"add `--train-args \"{LAB}\"`")  # a second --train-args would replace the first
                lines += [f"- {e.question}",
                          f"- run: `python tools/exercises.py run {e.number}` (`--lab` for the lab setting), that is "
                          f"`{e.command}` (the demo, seeds 0 1 2; the lab setting: {lab})",
                          f"- needs: exercises {span(experiment_needs(e))}", f"- time: {time_note(e)}"]
                if not student:
                    lines.append(f"- measured: {OUTCOMES.get(e.number, 'not yet measured')}")
            if e.kind == "extend":
                lines.append(f"- how: {e.expected}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def student_readme(chosen: Sequence[Exercise], hidden_tests: bool) -> str:
    """The README.md of a student copy: the course, the order of the exercises, how to check, run and hand in."""
    implement, experiments, extensions = (of_kind(k, chosen) for k in ("implement", "experiment", "extend"))
    lines = ["# C2VL: the course copy", "",
             "This folder is a course assignment on the reference implementation of C2VL (\"Vision-Language Meets "
             "the Skeleton: Progressively Distillation with Cross-Modal Knowledge for 3D Action Representation "
             "Learning\", Chen et al., IEEE TMM 2025): a skeleton encoder learns from frozen CLIP features of two "
             "knowledge prompts (vision and language) through soft targets that need no labels. In this course you "
             + " and ".join(part for part, given in (("write the paper's pieces yourself", implement),
                                                     ("measure what they do on a small synthetic dataset (predict, "
                                                      "run, explain)", experiments),
                                                     ("extend them", extensions)) if given)
             + ". Everything runs offline on a CPU.", "",
             "Read `docs/method.md` beside the code: §2 names every symbol, and each exercise cites the section "
             "with its equations. `docs/exercises.md` lists this copy's exercises with their hints.", "",
             "## Setup", "",
             "```",
             "pip install -r requirements.txt          # Python 3.11; a CPU is enough",
             "python tools/exercises.py check          # where you stand: every exercise's checks",
             "```", ""]
    if implement:
        lines += ["## Implement", "",
                  "Each function to write keeps its signature and docstring; its body is "
                  "`raise NotImplementedError(\"Exercise N: ...\")`, sometimes with a comment above it saying what "
                  "the docstring does not. Work in this order (a later exercise may use an earlier one):", "",
                  "| # | exercise | write | the maths | its checks also need |",
                  "|---|---|---|---|---|"]
        for e in implement:
            functions = ", ".join(f"`{f.split(':')[0]}.{f.split(':')[1]}`" for f in e.functions)
            lines.append(f"| {e.number} | {e.title} | {functions} | {e.section} | "
                         f"{('exercise ' + span(e.check_needs)) if e.check_needs else '-'} |")
        lines += ["", "Exercises 1-5 are the loss, 6 the prompt features, 7-8 ST-GCN (7's checks use hand-made "
                  "graphs, so 7 does not wait for 8), 9 the kNN evaluation, 10-11 the other two encoders.", "",
                  "### Checking your work", "",
                  "```",
                  "python tools/exercises.py check 2        # exercise 2's checks: which fails and why",
                  "python tools/exercises.py check          # every exercise of this copy",
                  "python -m pytest tests/checks            # the same checks, with pytest's own output",
                  "```", "",
                  "The checks (`tests/checks/`) try shapes, cases small enough to do by hand and invariants (rows "
                  "that sum to 1, the epoch-1 fallbacks, a cycle through a permutation), and a failing one says what "
                  "is wrong in the paper's terms (\"rows of Y_intra^m must sum to 1; row 3 sums to 0.8000\"). They "
                  "are a good sign, not the grade: "
                  + ("the instructor grades with tests that are not in this copy, which compare each function with "
                     "an independent computation of its equation on random inputs."
                     if hidden_tests else "the graded tests named in docs/exercises.md compare each function with "
                     "an independent computation of its equation on random inputs."), ""]
    if experiments:
        lines += ["## Experiments: predict, run, explain", "",
                  "Write down your prediction before you run. `python tools/exercises.py run N` first says what the "
                  "experiment needs and how long it takes, and refuses before any work while one of the exercises it "
                  "needs is still blank or fails its checks; `--dry-run` only says; `--lab` runs the lab setting "
                  f"(`{LAB}`: about half the time, a pointer rather than a result); `--seeds 0` one seed. Runs go "
                  "to `runs/` (full and lab runs to different folders); a finished run is reused, so an interrupted "
                  "experiment goes on where it stopped.", "",
                  "| # | experiment | train.py runs | idle 2-core CPU: full / lab | needs exercises |",
                  "|---|---|---|---|---|"]
        for e in experiments:
            runs, full = experiment_minutes(e)
            _, lab = experiment_minutes(e, lab=True)
            lines.append(f"| {e.number} | {e.title} | {runs} | {about(full)} / {about(lab)} | "
                         f"{span(experiment_needs(e))} |")
        lines += ["", f"Times are for an idle 2-core CPU with the data in place (docs/speed.md); a shared or slower "
                  f"machine takes up to twice as long, and the first run of this copy also makes the demo data and "
                  f"the prompt features (about {math.ceil(FIRST_RUN)} min). The questions are in docs/exercises.md; "
                  "the table each run writes is `<its runs folder>/ablation.md`.", ""]
    if extensions:
        lines += ["## Extend", ""] + [f"- **{e.number}. {e.title}**: {e.expected}" for e in extensions] + [""]
    needs_all = span(sorted(set(TRAINING_NEEDS) | set(ENCODER_NEEDS["stgcn"])))
    lines += ["## Commands that work in this copy", "",
              "```",
              "python tools/exercises.py check [N]      # any time",
              "python tools/exercises.py run N --dry-run",
              "python train.py --help                   # every option, with its equation",
              "python evaluate.py --help",
              "python demo/world.py                     # the demo data (15 actions, synthetic skeletons), ~15 s",
              "```", "",
              f"Once exercises {needs_all} pass their checks: `python train.py` (the demo end to end: pretraining, "
              "then linear, kNN and zero-shot evaluation; "
              "3-5 min on 2 cores), `python train.py --encoder gru` (also needs 11) or `--encoder transformer` "
              "(10), and `python tools/ablation.py` (what `run` calls). `python -m pytest` runs the project's "
              "remaining tests: those that reach a function you have not written yet fail with its "
              "NotImplementedError until you do.", "",
              "## Handing in", "",
              "```",
              "python tools/exercises.py handin --out <your name>.zip",
              "```", "",
              "It packs this folder without `datasets/`, `runs/` and caches. Put in it, beside your code, "
              "`answers.md`: for each experiment your prediction, the table it printed and your explanation; for "
              "each extension what you added and how you tested it. The instructor grades the code with "
              "`python tools/exercises.py grade`; keep every function's name and signature."]
    return "\n".join(lines) + "\n"


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


def withheld(path: Path) -> bool:
    text = path.as_posix()
    return any(text == w or (w.endswith("/") and text.startswith(w)) for w in WITHHELD)


def message(e: Exercise, target: str) -> str:
    """The NotImplementedError of a blank: the exercise first (the kit finds blanks by it), then what to do."""
    module, qualified = target.split(":")
    return f"Exercise {e.number}: {e.title} ({e.section}): write {module}.{qualified}, then check it with " \
           f"python tools/exercises.py check {e.number}"


RESULTS_NOTE = ("(This course copy leaves out the measured results that were here: your experiments measure them, "
                "`python tools/exercises.py run N`.)")


def without_measured_results(text: str, everything: bool = False) -> str:
    """A Markdown file with the body of every section (heading to next heading) that holds a measured result (or of
    every section: `everything`) replaced by RESULTS_NOTE; the headings stay, so other files' citations resolve."""
    sections, fenced = [[]], False  # each [heading, body lines...]; the first may have no heading
    for line in text.splitlines():
        fenced ^= line.startswith("```")
        if line.startswith("#") and not fenced:
            sections.append([])
        sections[-1].append(line)
    kept = []
    for section in filter(None, sections):
        heading = section[0] if section[0].startswith("#") else None
        body = section[1:] if heading else section
        if everything or MEASURED.search("\n".join(body)):
            kept.append(f"{heading}\n\n{RESULTS_NOTE}\n" if heading else f"{RESULTS_NOTE}\n")
        else:
            kept.append("\n".join(section).rstrip() + "\n")
    return "\n".join(kept)


def make_copy(out: Path, only: Sequence[int] = (), hide_tests: bool = False, root: Path = ROOT) -> list[Exercise]:
    """The student copy at `out` (a new or empty folder): the chosen exercises (default: all), the implement ones
    blank, with its README.md, docs/exercises.md and course.json. -> the chosen exercises."""
    chosen = sorted({exercise(n) for n in only}, key=lambda e: e.number) if only else list(CATALOGUE)
    implement = of_kind("implement", chosen)
    if out.exists() and not out.is_dir():
        raise KitError(f"{out} is a file: give a new folder for the copy")
    if out.exists() and any(out.iterdir()):
        raise KitError(f"{out} exists and is not empty: give a new folder")
    for path in project_files(root):
        if not withheld(path):
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / path, out / path)
    for e in implement:
        notes = dict(e.notes)
        for target in e.functions:
            module, qualified = target.split(":")
            path = out / f"{module.replace('.', '/')}.py"
            note = f"Exercise {e.number}, what the docstring does not say: {notes[target]}" if target in notes else ""
            path.write_text(blank(path.read_text(), qualified, message(e, target), note))
    graded: dict[str, set[str]] = {}  # with --hide-tests: the tests, and the answer keys with their users, to leave
    keys: dict[str, set[str]] = {}
    if hide_tests:
        for test in [t for e in implement for t in e.tests]:
            graded.setdefault(test.split("::")[0], set()).add(test.split("::")[1].split("[")[0])
        for key, uses in ANSWER_KEYS.items():
            if {e.number for e in implement} & set(uses):
                keys.setdefault(key.split("::")[0], set()).add(key.split("::")[1])
    for path in sorted((out / "tests").rglob("test_*.py")):
        source, file = path.read_text(), path.relative_to(out).as_posix()
        edited = remove_imports_of(source, WITHHELD_MODULES)
        edited = remove_with_users(edited, keys[file]) if file in keys else edited
        edited = remove_tests(edited, graded[file]) if file in graded else edited
        edited = remove_tests_naming(edited, {name for names in graded.values() for name in names})
        if edited != source:
            path.write_text(edited)
    for path in sorted((out / "docs").rglob("*.md")):
        if MEASURED.search(path.read_text()):
            path.write_text(without_measured_results(path.read_text()))
    for name in RESULTS_DOCS:  # the measured results' own home: its headings only
        if (root / name).is_file():
            write_text(out / name, without_measured_results((root / name).read_text(), everything=True))
    write_text(out / "README.md", student_readme(chosen, hide_tests))
    write_text(out / "docs" / "exercises.md", catalogue_markdown(True, chosen, hide_tests))
    write_json(out / COURSE_FILE, {"exercises": [e.number for e in chosen], "blank": [e.number for e in implement],
                                   "hidden_tests": hide_tests, "made_from": source_commit(root)}, indent=None)
    return chosen


def source_commit(root: Path) -> str | None:
    """The git commit a copy was made from (its graded tests must be that version's), if `root` is a checkout."""
    if not ((root / ".git").exists() and shutil.which("git")):
        return None
    run = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    return run.stdout.strip() or None


def course(root: Path) -> dict:
    """A copy's course.json ({} in the project itself)."""
    path = root / COURSE_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError as error:
        raise KitError(f"{path} is not the kit's JSON ({error}): make the copy again") from None


def blank_functions(root: Path) -> dict[int, list[str]]:
    """{exercise: its functions that are still the kit's blank} in the sources under `root`."""
    found: dict[int, list[str]] = {}
    for e in of_kind("implement"):
        for target in e.functions:
            module, qualified = target.split(":")
            path = root / f"{module}.py"
            try:
                number = blanked_exercise(path.read_text(), qualified) if path.is_file() else None
            except (SyntaxError, KeyError):
                number = None  # a student's unfinished edit: its checks say what is wrong
            if number is not None:
                found.setdefault(number, []).append(f"{module}.{qualified}")
    return found


# ----------------------------------------------------------------------------------------------------------------
# The student's side: check an exercise, run an experiment, hand in
# ----------------------------------------------------------------------------------------------------------------

BLANK_RAISED = re.compile(r"NotImplementedError: Exercise (\d+):.*?write (\S+?),")


def check(numbers: Sequence[int] = (), root: Path = ROOT, out=sys.stdout) -> bool:
    """Run the visible checks of the implement-exercises `numbers` (default: the copy's blank ones, else all) and
    print, per exercise, which check fails and why. -> every check passed."""
    chosen = implement_exercises(numbers or course(root).get("blank") or [e.number for e in of_kind("implement")],
                                 "check")
    results = run_tests(root, [c for e in chosen for c in e.checks], timeout=TIMEOUT)
    every = True
    for e in chosen:
        print(f"Exercise {e.number}: {e.title} ({e.section})", file=out)
        outcomes = [(c.split("::")[1], results.get(c, Outcome(False, "not run"))) for c in e.checks]
        passed = sum(o.passed for _, o in outcomes)
        every &= passed == len(outcomes)
        if passed == len(outcomes):
            print(f"  all {passed} checks pass", file=out)
            continue
        raised = [(name, BLANK_RAISED.search(o.text), o) for name, o in outcomes if not o.passed]
        not_started = passed == 0 and all(m and int(m.group(1)) == e.number for _, m, _ in raised)
        if not_started:
            functions = sorted({m.group(2) for _, m, _ in raised})
            print(f"  not written yet: {', '.join(functions)} still raise{'s' if len(functions) == 1 else ''} "
                  f"NotImplementedError", file=out)
        for name, m, outcome in () if not_started else raised:
            name = name.removeprefix("test_")
            if m and int(m.group(1)) != e.number:
                print(f"  WAIT  {name}: needs exercise {m.group(1)} first ({m.group(2)} is still blank)", file=out)
            else:
                why = f"{m.group(2)} is not written yet" if m else first_lines(outcome.text, 1, 400)
                print(f"  FAIL  {name}\n        {why}", file=out)
        print(f"  {passed} of {len(outcomes)} checks pass. Hint: {e.hint}", file=out)
    print("All checks pass." if every else "Not every check passes yet.", "The checks try simple cases and "
          "invariants; the graded tests compare each function with an independent computation of its equation.",
          file=out)
    return every


def run_experiment(number: int, lab: bool = False, seeds: Sequence[int] = (), dry_run: bool = False,
                   root: Path = ROOT, out=sys.stdout) -> int:
    """An experiment: what it asks, runs, needs and costs first; then refuse (nothing run) while a needed exercise
    is blank or fails its checks; then run it. -> the exit status."""
    e = exercise(number)
    if e.kind != "experiment":
        raise KitError(f"exercise {number} is {'an extension' if e.kind == 'extend' else 'to implement'}, not an "
                       f"experiment" + (f": check it with python tools/exercises.py check {number}"
                                        if e.kind == "implement" else ""))
    argv = experiment_argv(e, lab, seeds)
    runs, minutes = experiment_minutes(e, lab, seeds)
    needs = experiment_needs(e)
    print(f"Experiment {e.number}: {e.title} ({e.section})\n  {e.question}\n"
          f"  runs: python {shlex.join(argv)}\n"
          f"  {runs} train.py runs{' in the lab setting' if lab else ''}: {about(minutes)} on an idle 2-core CPU "
          f"(up to twice that on a shared one; the first run of a copy also makes the data, about "
          f"{math.ceil(FIRST_RUN)} min); finished runs in its folder are reused\n"
          f"  needs exercises {span(needs)}", file=out)
    blank_now = {n: f for n, f in blank_functions(root).items() if n in needs}
    if blank_now:
        print("  still blank: " + ("; ".join(f"exercise {n} ({', '.join(f)})" for n, f in sorted(blank_now.items()))
                                   if len(blank_now) <= 2 else f"exercises {span(blank_now)}"), file=out)
    if dry_run:
        return 0
    if blank_now:
        raise KitError(f"experiment {e.number} needs exercises {span(needs)}; {span(blank_now)} "
                       f"{'is' if len(blank_now) == 1 else 'are'} still blank: write them first (python "
                       f"tools/exercises.py check N says when each is right). Nothing was run.")
    print("Checking the exercises it needs first:", file=out)
    if not check(needs, root, out):
        raise KitError(f"experiment {e.number} needs exercises {span(needs)} and not all of their checks pass "
                       f"(above): fix them first. Nothing was run.")
    status = subprocess.run([sys.executable, *argv], cwd=root).returncode
    if status == 0 and e.number in OUTCOMES:
        print(f"\nMeasured on the demo (the instructor's catalogue): {OUTCOMES[e.number]}", file=out)
    return status


def handin(out: Path, root: Path = ROOT) -> int:
    """A zip of the copy for the instructor, without datasets/, runs/ and caches. -> the number of files."""
    if out.exists():
        raise KitError(f"{out} exists: give a new file name")
    if out.suffix.lower() != ".zip":
        raise KitError(f"{out}: the hand-in is a .zip file")
    files = [p for p in project_files(root) if p.suffix.lower() != ".zip"]  # no earlier hand-in inside it
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(root / path, path.as_posix())
    return len(files)


# ----------------------------------------------------------------------------------------------------------------
# Grading
# ----------------------------------------------------------------------------------------------------------------

class NotASubmission(KitError):
    """A folder that holds nothing to grade: empty, or not a copy of this project."""


def is_copy_of_project(folder: Path) -> list[str]:
    """The files of the project a copy must have that `folder` lacks ([] for a copy)."""
    needed = {"train.py", "tools/exercises.py"} | {f"{t.split(':')[0]}.py" for e in of_kind("implement")
                                                    for t in e.functions}
    return sorted(p for p in needed if not (folder / p).is_file())


def submission_folder(path: Path, unpack_to: Path) -> Path:
    """The copy a submission holds: a folder, or a .zip unpacked into `unpack_to` (a zip of the folder itself, too)."""
    if not path.exists():
        raise KitError(f"{path}: no such folder")
    if path.is_file() and path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                archive.extractall(unpack_to)
        except zipfile.BadZipFile:
            raise NotASubmission(f"{path} is not a readable .zip file") from None
        inside = [p for p in unpack_to.iterdir() if p.name != "__MACOSX"]
        path = inside[0] if len(inside) == 1 and inside[0].is_dir() else unpack_to
    elif not path.is_dir():
        raise KitError(f"{path} is not a folder (or a .zip of one)")
    if not any(path.iterdir()):
        raise NotASubmission(f"{path} is empty: nothing handed in")
    missing = is_copy_of_project(path)
    if missing:
        raise NotASubmission(f"{path} is not a copy of this project (no {', '.join(missing[:3])}"
                             f"{', ...' if len(missing) > 3 else ''}): give a folder made by "
                             f"`python tools/exercises.py make`")
    return path


def graded_exercises(folder: Path, only: Sequence[int]) -> list[Exercise]:
    return implement_exercises(only or course(folder).get("blank") or [e.number for e in of_kind("implement")],
                               "grade")


def check_tests_folder(tests_from: Path | None, chosen: Sequence[Exercise]) -> None:
    """KitError unless `tests_from` (if given) holds every graded test of `chosen`."""
    if tests_from is None:
        return
    if not tests_from.is_dir():
        raise KitError(f"--tests {tests_from}: no such folder (give the instructor's tests/ folder)")
    for file in sorted({t.split("::")[0] for e in chosen for t in e.tests}):
        path = tests_from / Path(file).name
        if not path.is_file():
            raise KitError(f"--tests {tests_from} has no {Path(file).name}: give the instructor's tests/ folder")
        absent = sorted({t.split("::")[1] for e in chosen for t in e.tests if t.startswith(file)}
                        - defined_tests(path.read_text()))
        if absent:
            raise KitError(f"{path} lacks the graded test {absent[0]}: are these tests from another version of the "
                           f"project?")


def grade(folder: Path, tests_from: Path | None = None, only: Sequence[int] = (), timeout: float = TIMEOUT) -> dict:
    """Run each implement-exercise's graded tests in a copy of `folder`, with the instructor's test files of
    `tests_from` put in place -> {"name", "folder", "status", "total", "out_of", "exercises": {number: {"title",
    "passed", "tests", "points", "out_of", "failed": [{"test", "message"}]}}}."""
    with tempfile.TemporaryDirectory() as tmp:
        folder_in = submission_folder(folder, Path(tmp) / "unpacked")
        chosen = graded_exercises(folder_in, only)
        check_tests_folder(tests_from, chosen)
        work = Path(tmp) / "copy"
        shutil.copytree(folder_in, work, ignore=shutil.ignore_patterns(*SKIPPED), symlinks=True)
        files = sorted({t.split("::")[0] for e in chosen for t in e.tests})
        for file in files:
            if tests_from:
                shutil.copy2(tests_from / Path(file).name, work / file)
            path = work / file
            if path.is_file():  # the instructor's tests may import what a copy does not ship (bench/)
                absent = {m for m in WITHHELD_MODULES if not (work / m).exists()}
                path.write_text(remove_imports_of(path.read_text(), absent))
        missing = [e.number for e in chosen if any(
            not (work / t.split("::")[0]).is_file()
            or t.split("::")[1] not in defined_tests((work / t.split("::")[0]).read_text()) for t in e.tests)]
        if missing:
            raise KitError(f"the graded tests of exercise {span(missing)} are not in {folder}/tests (a copy made "
                           f"with --hide-tests): grade it with --tests <the instructor's tests/ folder>")
        results = run_tests(work, [t for e in chosen for t in e.tests], timeout)
    record = {"name": folder.name.removesuffix(".zip"), "folder": str(folder), "status": "graded", "exercises": {}}
    for e in chosen:
        outcomes = {t: results.get(t, Outcome(False, "did not run")) for t in e.tests}
        passed = sum(o.passed for o in outcomes.values())
        record["exercises"][e.number] = {
            "title": e.title, "passed": passed, "tests": len(e.tests), "points": e.points * passed // len(e.tests),
            "out_of": e.points, "failed": [{"test": t, "message": first_lines(o.text)}
                                           for t, o in outcomes.items() if not o.passed]}
    record["total"] = sum(x["points"] for x in record["exercises"].values())
    record["out_of"] = sum(x["out_of"] for x in record["exercises"].values())
    return record


def print_grade(record: dict, out=sys.stdout) -> None:
    """The score table of one submission, then each failed test with its first lines and the exercise's hint."""
    print(f"{'exercise':60s} {'tests passed':>12s} {'points':>7s}", file=out)
    for number, x in record["exercises"].items():
        name, tests, points = f"{number}. {x['title']}", f"{x['passed']}/{x['tests']}", f"{x['points']}/{x['out_of']}"
        print(f"{name[:60]:60s} {tests:>12s} {points:>7s}", file=out)
    print(f"{'total':60s} {'':>12s} {record['total']:>3d}/{record['out_of']}", file=out)
    for number, x in record["exercises"].items():
        if x["failed"]:
            print(f"\nExercise {number}, {x['tests'] - x['passed']} of {x['tests']} graded tests failed:", file=out)
            for failure in x["failed"]:
                print(f"  {failure['test'].split('::')[1]}\n      {failure['message'] or '(no message)'}", file=out)
            print(f"  hint: {exercise(number).hint}", file=out)


def grade_class(folder: Path, tests_from: Path, only: Sequence[int] = (), timeout: float = TIMEOUT,
                out=sys.stdout) -> list[dict]:
    """Every submission of a class folder (one subfolder or .zip per student), in name order -> their records;
    a submission that is empty or not a copy is recorded with that status and scores 0."""
    if not folder.is_dir():
        raise KitError(f"--class {folder}: no such folder")
    entries = sorted(p for p in folder.iterdir() if p.is_dir() or p.suffix.lower() == ".zip")
    if not entries:
        raise KitError(f"--class {folder} holds no submission: put one subfolder (or .zip) per student there")
    check_tests_folder(tests_from, graded_exercises(ROOT, only))
    records = []
    for entry in entries:
        print(f"grading {entry.name} ...", file=out, flush=True)
        try:
            records.append(grade(entry, tests_from, only, timeout))
        except NotASubmission as reason:
            records.append({"name": entry.name.removesuffix(".zip"), "folder": str(entry), "status": str(reason),
                            "total": 0, "out_of": sum(e.points for e in graded_exercises(ROOT, only)),
                            "exercises": {}})
    width = max(len(r["name"]) for r in records) + 2
    numbers = [e.number for e in graded_exercises(ROOT, only)]
    print(f"\n{'submission':{width}s}" + "".join(f"{n:>5d}" for n in numbers) + f"{'total':>9s}", file=out)
    for r in records:
        cells = "".join(f"{r['exercises'][n]['points'] if n in r['exercises'] else '-':>5}" for n in numbers)
        print(f"{r['name']:{width}s}{cells}{r['total']:>5d}/{r['out_of']}"
              + ("" if r["status"] == "graded" else f"  ({r['status']})"), file=out)
    return records


# ----------------------------------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the usage block
        self.exit(2, f"{self.prog}: error: {message} (--help says more)\n")


def main(argv: Sequence[str] | None = None) -> None:
    parser = Parser(prog="python tools/exercises.py", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    make = commands.add_parser("make", help="a student copy: the chosen exercises, the implement ones blank")
    make.add_argument("--out", required=True, help="a new (or empty) folder")
    make.add_argument("--only", type=int, nargs="+", default=(), help="exercise numbers (default: all of them)")
    make.add_argument("--hide-tests", action="store_true",
                      help="leave the graded tests (and the tests holding their answers) out of the copy")
    marks = commands.add_parser("grade", help="run the graded tests: the score table and why tests failed")
    marks.add_argument("folder", nargs="?", default=None,
                       help="the copy (a folder or .zip) to grade (default: this repository)")
    marks.add_argument("--class", dest="class_folder", default=None,
                       help="a folder of submissions, one subfolder or .zip per student (needs --tests)")
    marks.add_argument("--tests", default=None, help="the instructor's tests/ folder (for a copy made --hide-tests)")
    marks.add_argument("--only", type=int, nargs="+", default=(), help="exercise numbers (default: the copy's)")
    marks.add_argument("--scores", default=None, help="write the scores there: .json (everything) or .csv "
                                                      "(default with --class: scores.json and scores.csv in it)")
    marks.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds for one submission's tests")
    checking = commands.add_parser("check", help="a student's visible checks of implement-exercises")
    checking.add_argument("numbers", type=int, nargs="*", help="exercise numbers (default: this copy's)")
    running = commands.add_parser("run", help="an experiment: what it needs and costs, then the runs")
    running.add_argument("number", type=int)
    running.add_argument("--lab", action="store_true", help=f"the lab setting ({LAB}): about half the time")
    running.add_argument("--seeds", type=int, nargs="+", default=(), help="seeds (default: 0 1 2)")
    running.add_argument("--dry-run", action="store_true", help="only say what it would run")
    packing = commands.add_parser("handin", help="a .zip of this copy for the instructor")
    packing.add_argument("--out", required=True, help="a new .zip file")
    listing = commands.add_parser("catalogue", help="the catalogue as Markdown (docs/exercises.md)")
    listing.add_argument("--out", default=None, help="write it there instead of printing it")
    args = parser.parse_args(argv)
    try:
        sys.exit(command(args))
    except KitError as error:
        parser.exit(2, f"{parser.prog} {args.command}: error: {error}\n")


def command(args) -> int:
    if args.command == "make":
        chosen = make_copy(Path(args.out), args.only, args.hide_tests)
        implement, others = of_kind("implement", chosen), [e for e in chosen if e.kind != "implement"]
        what = [f"exercise{'s' if len(implement) > 1 else ''} {span([e.number for e in implement])} to implement"
                + (" (their graded tests left out)" if args.hide_tests else "")] if implement else \
            ["nothing to implement (every function is the reference's)"]
        for kind, name in (("experiment", "experiment"), ("extend", "extension")):
            numbers = [e.number for e in others if e.kind == kind]
            if numbers:
                what.append(f"{name}{'s' if len(numbers) > 1 else ''} {span(numbers)}"
                            + (" (python tools/exercises.py run N)" if kind == "experiment" else ""))
        print(f"{args.out}: a student copy with {'; '.join(what)}. It starts with {args.out}/README.md.")
        return 0
    if args.command == "grade":
        if args.class_folder and args.folder:
            raise KitError("give a folder or --class, not both")
        if args.class_folder and not args.tests:
            raise KitError("grading a class needs the instructor's tests: --tests <the tests/ folder>")
        tests_from = Path(args.tests) if args.tests else None
        if args.class_folder:
            records = grade_class(Path(args.class_folder), tests_from, args.only, args.timeout)
            targets = [Path(args.scores)] if args.scores else [Path(args.class_folder) / "scores.json",
                                                               Path(args.class_folder) / "scores.csv"]
        else:
            records = [grade(Path(args.folder) if args.folder else ROOT, tests_from, args.only, args.timeout)]
            print_grade(records[0])
            if args.folder and not tests_from:
                print("note: graded with the copy's own tests, which whoever handed it in could have edited; "
                      "--tests <the instructor's tests/ folder> grades with yours", file=sys.stderr)
            targets = [Path(args.scores)] if args.scores else []
        numbers = sorted({n for r in records for n in r["exercises"]}) or \
            [e.number for e in graded_exercises(ROOT, args.only)]
        for target in targets:
            write_scores(target, [{"number": n, "title": exercise(n).title, "points": exercise(n).points}
                                  for n in numbers], records)
            print(f"scores: {target}")
        return 0 if all(r["status"] == "graded" and r["total"] == r["out_of"] for r in records) else 1
    if args.command == "check":
        return 0 if check(args.numbers) else 1
    if args.command == "run":
        return run_experiment(args.number, args.lab, args.seeds, args.dry_run)
    if args.command == "handin":
        count = handin(Path(args.out))
        print(f"{args.out}: {count} files. Hand it in as your course says.")
        return 0
    text = catalogue_markdown()
    if args.out:
        write_text(Path(args.out), text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    main()
