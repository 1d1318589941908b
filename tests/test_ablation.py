"""tools/ablation.py: the variants are train.py flags, the table is mean +- std over seeds, finished runs are reused."""
import json

import numpy as np
import pytest

import train
from tools import ablation


def test_every_variant_is_a_valid_train_command():
    for name, flags in ablation.VARIANTS.items():
        config, distill_config = train.parse_args(["--seed", "1", *flags])
        assert config.seed == 1, name
    _, infonce = train.parse_args(ablation.VARIANTS["CLIP InfoNCE (beta 0, alpha_T 0)"])
    assert (infonce.beta, infonce.alpha_T) == (0.0, 0.0)


def fake_metrics(seed, zero_shot=True):
    m = {"linear_top1": 60.0 + seed, "knn_top1_k20": 50.0 + 2 * seed, "random_init_linear_top1": 70.0,
         "random_init_knn_top1_k20": 55.0 + seed}
    return {**m, "zero_shot_top1": 20.0 + seed} if zero_shot else m


def test_table_is_mean_and_std_over_seeds_with_the_random_init_row(tmp_path):
    runs = {"C2VL": [fake_metrics(s) for s in (0, 1, 2)],
            "C2VL, vision prompts only": [fake_metrics(s, zero_shot=False) for s in (0, 1, 2)]}
    table = ablation.summarise(runs)
    assert table["C2VL"]["linear_top1"] == pytest.approx((61.0, np.std([60, 61, 62], ddof=1)))  # the sample std
    assert table["C2VL"]["knn_top1_k20"] == pytest.approx((52.0, np.std([50, 52, 54], ddof=1)))
    assert table["C2VL, vision prompts only"]["zero_shot_top1"] is None  # no language head: no zero-shot
    assert table[ablation.BASELINE]["linear_top1"] == (70.0, 0.0) and table[ablation.BASELINE]["zero_shot_top1"] is None
    text = ablation.markdown(table, ablation.AblationConfig())
    assert "| C2VL |  | 61.0 ± 1.0 | 52.0 ± 2.0 | 21.0 ± 1.0 |" in text
    assert "| C2VL, vision prompts only | `--modalities vision` | 61.0 ± 1.0 | 52.0 ± 2.0 | – |" in text
    ablation.plot(table, tmp_path / "ablation.png")
    assert (tmp_path / "ablation.png").stat().st_size > 0


def test_finished_runs_are_reused_not_run_again(tmp_path, monkeypatch):
    config = ablation.AblationConfig(out=str(tmp_path))
    run = tmp_path / "3-seed0"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps(fake_metrics(0)))
    monkeypatch.setattr(train, "main", lambda argv: pytest.fail(f"ran train.py {argv}"))
    assert ablation.run_variant(config, "C2VL", 0)["linear_top1"] == 60.0


def test_bad_variant_numbers_list_the_variants(capsys):
    with pytest.raises(SystemExit):
        ablation.main(["--variants", "9"])
    assert "0 CLIP InfoNCE" in capsys.readouterr().err
