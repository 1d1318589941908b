"""The experiments' measured outcomes on the demo (docs/exercises.md, the instructor's catalogue).

Instructor-only: `python tools/exercises.py make` leaves this file out of a student copy, whose catalogue and README
then ask each experiment's question without its answer, and whose `run` prints no outcome to compare with.
"""

# {experiment number: its outcome measured on the demo (3 seeds, mean ± sample std; paired differences ± SE)}
OUTCOMES = {
    12: ("full demo: C2VL 76.1 ± 3.2 linear, 69.2 ± 3.0 kNN-20, 62.0 ± 5.0 zero-shot; InfoNCE 74.7 ± 4.9, 68.9 ± "
         "8.3, 64.4 ± 7.4; paired C2VL - InfoNCE +1.4 ± 2.0, +0.3 ± 3.2, -2.3 ± 1.6 (SE): **no measurable "
         "difference on the demo** (lab setting: -0.7 ± 2.9, -1.4 ± 1.3, -4.8 ± 4.7, the same conclusion). Both "
         "are far above the random-init encoder (C2VL +18.7 ± 3.8 linear)."),
    13: ("lab setting: beta 0 - C2VL, paired: +0.9 ± 1.2 linear, +2.7 ± 0.6 kNN-20 (passes the 3-seed t-test, a "
         "small margin), +0.4 ± 2.1 zero-shot: **no effect above the spread on linear or zero-shot**; the soft "
         "intra-modal labels do not help on the demo. Full demo: -0.7 ± 1.3, +0.7 ± 2.0, -0.0 ± 1.3, all within "
         "the spread: the lab's small kNN-20 margin does not reproduce."),
    14: ("lab setting, paired to C2VL: alpha_T 0 +1.1 ± 1.2 linear, +3.1 ± 1.7 kNN-20, +2.4 ± 3.1 zero-shot "
         "(within the spread); constant alpha -4.0 ± 1.1, -3.0 ± 2.6, -6.0 ± 2.4 (lower on all three, none above "
         "the spread with 3 seeds): **no measurable effect of the inter-modal target; mixing it in from epoch 1 "
         "tends to hurt**. Full demo, alpha_T 0: -2.1 ± 2.6, +1.2 ± 1.6, +2.3 ± 1.0, within the spread (constant "
         "alpha: lab only)."),
    15: ("lab setting, paired to C2VL: self -0.8 ± 0.1 linear (passes, under 1 point), -2.9 ± 1.0 kNN-20, +1.0 ± "
         "3.0 zero-shot; off +0.6 ± 0.9, +2.7 ± 1.8, +2.3 ± 3.2: **the three inter-modal targets are not "
         "distinguishable on the demo**."),
    16: ("lab setting, paired to C2VL: vision only -10.8 ± 1.5 linear, -14.3 ± 3.0 kNN-20, -26.8 ± 6.0 zero-shot "
         "(all above the spread); language only +3.6 ± 2.0, +11.4 ± 1.1 (above), +7.5 ± 4.2: **the prompts matter "
         "more than the targets**: the demo CLIP's vision features are its weaker ones (38 % 1-NN by class against"
         " 68 % for language) and pull the two-modality model down. Full demo: vision only -10.8 ± 2.9, -20.1 ± "
         "0.4 (above), -33.5 ± 4.2 (above); language only +5.9 ± 1.5, +12.3 ± 1.0 (above), +8.9 ± 1.6 (above): the"
         " same conclusions."),
    17: ("lab setting: tau_t 0.2 - C2VL (0.05), paired: +0.3 ± 2.4 linear, +3.5 ± 4.8 kNN-20, +4.5 ± 1.4 "
         "zero-shot: **no effect above the spread**."),
    18: ("full demo, C2VL linear / kNN-20: ST-GCN 76.1 ± 3.2 / 69.2 ± 3.0, GRU 74.9 ± 1.5 / 68.5 ± 3.2, "
         "Transformer 72.8 ± 2.2 / 71.6 ± 2.3 (not ranked: within the spreads); each above its own random-init "
         "encoder, paired: +18.7 ± 3.8 / +22.8 ± 6.8, +6.9 ± 1.1 / +22.1 ± 1.6, +14.7 ± 1.4 / +35.7 ± 2.9. **The "
         "method works with every encoder; the demo does not rank them.**"),
    19: ("lab setting, linear: InfoNCE 71.8 ± 6.7, 69.3 ± 3.7, 63.3 ± 1.5, 54.1 ± 0.8 at p = 0, 0.2, 0.4, 0.6; "
         "C2VL 71.1 ± 3.3, 69.0 ± 2.7, 61.2 ± 4.3, 50.0 ± 10.5; one of twelve paired differences above the spread "
         "(kNN-20 at p 0.2, +4.9 ± 1.1). **C2VL does not degrade more slowly on the demo**; its target entropy on "
         "broken rows is within 0.06 nats of intact rows (README, Noisy pairs)."),
    20: ("full demo (PyTorch's initialisation, README): C2VL 76.1 ± 3.2 linear, random init 57.4 ± 9.1; validation"
         " world, orthogonal initialisation: the untrained encoder's kNN-20 std over 6 seeds 9.3 -> 1.4, the "
         "pretrained C2VL's 3-seed std 1.9 -> 2.6 linear, 3.4 -> 1.8 kNN-20 (InfoNCE 3.9 -> 4.1, 3.9 -> 3.1); the "
         "table's test-set part: 540 test samples explain 1.5 of about 3.5 points of std there. **The untrained "
         "lottery sits in ST-GCN's first block; the pretrained spread is the pretraining's own.** Twice the pairs,"
         " on the validation world: its 3-seed stds (1.0-2.9) looked like the cure and its 5-seed stds (2.6-5.4) "
         "were not. The initialisation fixed (--init-seed 0), on the validation world, 5 seeds: the linear std "
         "stayed 3.0-3.3 (3.7 / 2.5 with both varying)."),
}

# The lab setting against the full demo, where both were measured (paired differences, mean ± SE, 3 seeds).
LAB_COMPARISON = (
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
    "| alpha_T 0 - C2VL, lab setting | +1.1 ± 1.2 | +3.1 ± 1.7 | +2.4 ± 3.1 |",
)
LAB_VERDICT = ("The same direction and the same verdict where it matters (InfoNCE vs C2VL: within the spread in both; "
               "vision only worse, language only better on kNN-20, in both); the lab's numbers are 3-8 points lower "
               "(8 epochs). The one lab difference that passed its t-test by a small margin (beta 0, kNN-20 +2.7 ± "
               "0.6) is within the spread in the full demo: treat a lab verdict as a pointer, not a result. "
               "Experiments 15, 17, 19 and 14's constant alpha were measured in the lab setting only (their "
               "full-demo runs: drop `--train-args`, about 3 min a run).")
