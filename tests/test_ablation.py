"""tools/ablation.py: the variants are train.py flags, the table is mean +- sample std over seeds, paired differences
carry their standard error and verdict, finished runs are reused."""
import itertools
import json

import numpy as np
import pytest

import train
from tools import ablation


def test_every_variant_is_a_valid_train_command():
    for name, (_, flags) in ablation.VARIANTS.items():
        config, _ = train.parse_args(["--seed", "1", *flags])
        assert config.seed == 1, name
    _, infonce = train.parse_args(ablation.VARIANTS["infonce"][1])
    assert (infonce.beta, infonce.alpha_T) == (0.0, 0.0)


def fake_metrics(seed, zero_shot=True, shift=0.0):
    m = {"linear_top1": 60.0 + seed + shift, "knn_top1_k20": 50.0 + 2 * seed + shift,
         "random_init_linear_top1": 70.0, "random_init_knn_top1_k20": 55.0 + seed}
    return {**m, "zero_shot_top1": 20.0 + seed} if zero_shot else m


def test_paired_difference_is_mean_se_and_a_t_interval():
    mean, se, stands = ablation.paired_difference([3.0, 4.0, 5.0], [1.0, 1.0, 1.0])
    d = np.array([2.0, 3.0, 4.0])
    assert (mean, se) == pytest.approx((3.0, d.std(ddof=1) / np.sqrt(3)))
    assert stands  # 3.0 > t(0.975, 2) = 4.303 * 0.577
    assert not ablation.paired_difference([3.0, -1.0, 5.0], [1.0, 1.0, 1.0])[2]  # mean 1.33, SE 1.76: within


def test_table_is_mean_and_std_over_seeds_with_the_random_init_row(tmp_path):
    runs = {("c2vl", "stgcn", 0.0): [fake_metrics(s, shift=1.0) for s in (0, 1, 2)],
            ("vision", "stgcn", 0.0): [fake_metrics(s, zero_shot=False) for s in (0, 1, 2)]}
    table = ablation.summarise(runs)
    assert table[("c2vl", "stgcn", 0.0)]["linear_top1"] == pytest.approx((62.0, np.std([61, 62, 63], ddof=1)))
    assert table[("vision", "stgcn", 0.0)]["zero_shot_top1"] is None  # no language head: no zero-shot
    baseline = table[(ablation.BASELINE, "stgcn", None)]
    assert baseline["linear_top1"] == (70.0, 0.0) and baseline["zero_shot_top1"] is None
    diffs = ablation.differences(runs, "c2vl")
    assert diffs[("vision", "stgcn", 0.0)]["linear_top1"][:2] == pytest.approx((-1.0, 0.0))
    text = ablation.markdown(table, diffs, ablation.AblationConfig(), "c2vl")
    assert "| C2VL |  | 62.0 ± 1.0 | 53.0 ± 2.0 | 21.0 ± 1.0 |" in text
    assert "| C2VL, vision prompts only | `--modalities vision` | 61.0 ± 1.0 | 52.0 ± 2.0 | – |" in text
    assert "| C2VL, vision prompts only | -1.0 ± 0.0 ✓ | -1.0 ± 0.0 ✓ | – |" in text
    # and every run that evaluated the random-init encoder, against it, seed by seed: 61..63 - 70; 51..55 - 55..57
    assert diffs[("c2vl", "stgcn", 0.0, ablation.BASELINE)]["linear_top1"][:2] == pytest.approx((-8.0, 1 / np.sqrt(3)))
    assert "Paired differences to the random-init encoder" in text
    assert "| C2VL | -8.0 ± 0.6 ✓ | -3.0 ± 0.6 ✓ | – |" in text
    ablation.plot(table, tmp_path / "ablation.png")
    assert (tmp_path / "ablation.png").stat().st_size > 0


def test_noise_sweep_plots_lines_against_p(tmp_path):
    runs = {(v, "stgcn", p): [fake_metrics(s, shift=-10 * p) for s in (0, 1, 2)]
            for v in ("infonce", "c2vl") for p in (0.0, 0.4)}
    table = ablation.summarise(runs)
    ablation.plot(table, tmp_path / "sweep.png")
    assert (tmp_path / "sweep.png").stat().st_size > 0
    assert "pair noise 0.4" in ablation.markdown(table, ablation.differences(runs, "infonce"),
                                                 ablation.AblationConfig(), "infonce")


def test_finished_runs_are_reused_not_run_again(tmp_path, monkeypatch):
    config = ablation.AblationConfig(out=str(tmp_path))
    run = tmp_path / "c2vl-gru-noise0.2-seed0"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps(fake_metrics(0)))
    monkeypatch.setattr(train, "main", lambda argv: pytest.fail(f"ran train.py {argv}"))
    assert ablation.run_cell(config, "c2vl", "gru", 0.2, 0, baseline=True)["linear_top1"] == 60.0


def test_a_cell_runs_train_py_with_its_flags(tmp_path, monkeypatch):
    seen = []

    def fake_main(argv):
        seen.append(argv)
        out = argv[argv.index("--out") + 1]
        (tmp_path / out).mkdir(parents=True, exist_ok=True)
        (tmp_path / out / "metrics.json").write_text(json.dumps(fake_metrics(1)))
    monkeypatch.setattr(train, "main", fake_main)
    monkeypatch.chdir(tmp_path)
    ablation.run_cell(ablation.AblationConfig(out="ab"), "tau", "transformer", 0.4, 1, baseline=False)
    argv = seen[0]
    assert argv[argv.index("--encoder") + 1] == "transformer" and argv[argv.index("--pair_noise") + 1] == "0.4"
    assert "--no-baseline" in argv and argv[-2:] == ["--tau_t", "0.2"]
    train.parse_args(argv)  # a valid train.py command


def test_bad_variant_numbers_list_the_variants(capsys):
    with pytest.raises(SystemExit):
        ablation.main(["--variants", "12"])
    assert "0 infonce (CLIP InfoNCE" in capsys.readouterr().err


def test_test_set_part_is_the_bootstrap_spread_of_accuracy_differences_split_between_the_two_runs():
    """Checked against every resample of 4 test samples (4^4 equally likely): the variance over them of the
    difference of two runs' accuracies, averaged over the pairs of runs, halved."""
    import itertools
    correct = [np.array(c, dtype=float) for c in ([1, 1, 0, 1], [1, 0, 0, 1], [0, 1, 1, 1])]
    variances = []
    for a, b in itertools.combinations(correct, 2):
        diffs = [np.mean([a[i] - b[i] for i in resample]) for resample in itertools.product(range(4), repeat=4)]
        variances.append(np.var(diffs))
    assert ablation.test_set_part(correct) == pytest.approx(100 * np.sqrt(np.mean(variances) / 2))
    assert ablation.test_set_part([correct[0], correct[0]]) == 0.0  # the same mistakes: no test-set part


def test_the_table_gives_the_test_set_part_where_the_runs_wrote_their_predictions(tmp_path):
    labels = np.arange(20) % 5
    runs = {}
    for variant in ("infonce", "c2vl"):
        runs[(variant, "stgcn", 0.0)] = []
        for seed in (0, 1, 2):
            folder = tmp_path / f"{variant}-{seed}"
            wrong = np.zeros(20, dtype=bool)
            wrong[seed::4] = True  # each seed wrong on its own five samples
            for where in (folder, folder / "random_init"):
                where.mkdir(parents=True)
                np.savez(where / "predictions.npz", labels=labels, linear=np.where(wrong, (labels + 1) % 5, labels),
                         knn_k20=labels)
            runs[(variant, "stgcn", 0.0)].append({**fake_metrics(seed), "run_folder": str(folder)})
    parts = ablation.test_set_parts(runs)
    c = [(~np.isin(np.arange(20), np.arange(s, 20, 4))).astype(float) for s in (0, 1, 2)]
    expected = 100 * np.sqrt(np.mean([np.var(a - b) / 20 for a, b in itertools.combinations(c, 2)]) / 2)
    assert parts[("c2vl", "stgcn", 0.0)]["linear_top1"] == pytest.approx(expected)
    assert parts[("c2vl", "stgcn", 0.0)]["knn_top1_k20"] == 0.0  # every run right everywhere
    assert parts[("c2vl", "stgcn", 0.0)]["zero_shot_top1"] is None  # no zero-shot predictions written
    assert (ablation.BASELINE, "stgcn", None) in parts
    text = ablation.markdown(ablation.summarise(runs), ablation.differences(runs, "infonce"),
                             ablation.AblationConfig(), "infonce", parts)
    assert "the part the finite test set explains" in text and f"| C2VL | {expected:.1f} | 0.0 | – |" in text
    (tmp_path / "c2vl-2" / "predictions.npz").unlink()  # a run from before predictions.npz: no part for its row
    assert ("c2vl", "stgcn", 0.0) not in ablation.test_set_parts(runs)
