"""tools/exercises.py, the course kit: the catalogue, the student copy (a handout without instructor-only files), the
student's checks (failing before and passing after the solution), running an experiment, grading one copy and a
class (the score files), and one clear line for every wrong argument."""
import ast
import csv
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tools import exercise_outcomes, exercises
from tools.exercise_grading import run_tests
from tools.exercise_sources import blank, blanked_exercise, defined_tests, find_function, remove_imports_of, \
    remove_tests, remove_tests_naming, remove_with_users

ROOT = Path(__file__).resolve().parents[1]
IMPLEMENT = [e for e in exercises.CATALOGUE if e.kind == "implement"]
EXPERIMENTS = [e for e in exercises.CATALOGUE if e.kind == "experiment"]


@pytest.fixture(scope="module")
def hidden_copy(tmp_path_factory):
    """A student copy with every exercise, the implement ones blank, made --hide-tests (only read by the tests)."""
    copy = tmp_path_factory.mktemp("course") / "student"
    exercises.make_copy(copy, hide_tests=True)
    return copy


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "tools/exercises.py", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True)


# ----------------------------------------------------------------------------------------------------------------
# The catalogue
# ----------------------------------------------------------------------------------------------------------------

def test_the_catalogue_has_three_kinds_and_the_docs_are_rendered_from_it():
    kinds = [e.kind for e in exercises.CATALOGUE]
    assert len(kinds) >= 10 and {"implement", "experiment", "extend"} == set(kinds)
    assert [e.number for e in exercises.CATALOGUE] == list(range(1, len(kinds) + 1))
    assert (ROOT / "docs" / "exercises.md").read_text() == exercises.catalogue_markdown(), \
        "docs/exercises.md is stale: python tools/exercises.py catalogue --out docs/exercises.md"
    for e in exercises.CATALOGUE:
        assert e.section.startswith("docs/"), e.number
        if e.kind == "experiment":
            assert e.command.startswith("python tools/ablation.py --variants ") and e.question, e.number
            assert exercise_outcomes.OUTCOMES[e.number], e.number
    assert set(exercise_outcomes.OUTCOMES) == {e.number for e in EXPERIMENTS}


def test_every_function_test_and_check_of_an_exercise_exists():
    for e in IMPLEMENT:
        for target in e.functions:
            module, qualified = target.split(":")
            find_function(ast.parse((ROOT / f"{module}.py").read_text()), qualified)
        for test in e.tests + e.checks:
            file, _, name = test.partition("::")
            assert name in defined_tests((ROOT / file).read_text()), test
        assert e.checks and all(c.startswith("tests/checks/") for c in e.checks), e.number
        assert set(e.depends_on) < {x.number for x in IMPLEMENT} - {e.number}
        assert set(e.check_needs) <= set(e.depends_on) | {x.number for x in IMPLEMENT if x.number < e.number}
        assert {target for target, _ in e.notes} <= set(e.functions), e.number
    for key, uses in exercises.ANSWER_KEYS.items():
        file, _, name = key.partition("::")
        find_function(ast.parse((ROOT / file).read_text()), name)
        assert set(uses) <= {e.number for e in IMPLEMENT}
    every_check = [f"{p.relative_to(ROOT).as_posix()}::{name}" for p in sorted((ROOT / "tests" / "checks")
                   .glob("test_*.py")) for name in defined_tests(p.read_text())]
    listed = [c for e in IMPLEMENT for c in e.checks]
    assert sorted(listed) == sorted(every_check), "every check in tests/checks/ belongs to exactly one exercise"


def test_experiments_say_what_they_need_what_they_run_and_how_long_it_takes():
    assert exercises.experiment_needs(exercises.exercise(12)) == tuple(range(1, 10))
    assert exercises.experiment_needs(exercises.exercise(18)) == tuple(range(1, 12))  # every encoder
    assert exercises.experiment_minutes(exercises.exercise(12)) == (6, pytest.approx(6 * 3.1))
    assert exercises.experiment_minutes(exercises.exercise(19), lab=True)[0] == 24  # 2 variants x 4 noises x 3 seeds
    assert exercises.experiment_minutes(exercises.exercise(12), seeds=[0])[0] == 2
    lab = exercises.experiment_argv(exercises.exercise(12), lab=True)
    assert lab[-4:] == ["--train-args", exercises.LAB, "--out", "runs/ablation-lab"]
    inside = exercises.experiment_argv(exercises.exercise(20), lab=True, seeds=[0])  # one --train-args, lab inside
    assert inside.count("--train-args") == 1 and inside[inside.index("--train-args") + 1] == \
        f"--init orthogonal {exercises.LAB}" and inside[inside.index("--out") + 1] == "runs/orthogonal-lab"
    assert inside[-2:] == ["--seeds", "0"]
    out = io.StringIO()
    assert exercises.run_experiment(12, lab=True, dry_run=True, out=out) == 0
    said = out.getvalue()
    assert "needs exercises 1-9" in said and "6 train.py runs in the lab setting" in said and "Predict" in said


# ----------------------------------------------------------------------------------------------------------------
# Source surgery
# ----------------------------------------------------------------------------------------------------------------

def test_blank_keeps_signature_and_docstring_and_raises_the_exercises_message():
    source = 'def f(a,\n      b=1):\n    """Doc."""\n    c = a + b\n    return c\n\n\ndef g():\n    return 2\n'
    blanked = blank(source, "f", "Exercise 9: f (docs/method.md §1)", note="Exercise 9: return a + b.")
    assert blanked.startswith('def f(a,\n      b=1):\n    """Doc."""\n    # Exercise 9: return a + b.\n'
                              '    raise NotImplementedError(')
    assert "c = a + b" not in blanked and "def g():\n    return 2" in blanked
    assert blanked_exercise(blanked, "f") == 9 and blanked_exercise(source, "f") is None
    namespace = {}
    exec(blanked, namespace)  # noqa: S102 - the blanked source of the test above
    with pytest.raises(NotImplementedError, match="Exercise 9: f"):
        namespace["f"](1)


def test_removed_tests_take_the_helpers_only_they_used_and_withheld_imports_take_their_tests():
    source = ("from bench.fast import quick\nimport numpy as np\n\n\ndef answer(x):\n    return x + 1\n\n\n"
              "def shared():\n    return 2\n\n\ndef unused_before():\n    return 3\n\n\n"
              "def test_graded():\n    assert answer(1) == shared()\n\n\n"
              "def test_other():\n    assert shared() == 2\n\n\ndef test_bench():\n    assert quick() == 1\n")
    removed = remove_tests(source, {"test_graded"})
    assert "def answer" not in removed and "def test_graded" not in removed  # its helper went with it
    assert "def shared" in removed and "def unused_before" in removed  # still used, or never used by a test
    ast.parse(removed)
    keyless = remove_with_users(source, {"answer"})
    assert "def answer" not in keyless and "def test_graded" not in keyless and "def test_other" in keyless
    stripped = remove_imports_of(source, {"bench"})
    assert "bench" not in stripped and "def test_bench" not in stripped and "def test_other" in stripped
    assert remove_imports_of(source, {"nothing"}) == source
    naming = 'def test_table():\n    assert "| `test_graded` |"\n\n\ndef test_kept():\n    assert "test_graded_more"\n'
    assert remove_tests_naming(naming, {"test_graded"}) == 'def test_kept():\n    assert "test_graded_more"\n'



def test_a_docs_measured_results_leave_a_copy_but_its_headings_stay():
    text = ("# Results\n\nintro\n\n## 1. Table\n\n| a | 76.1 ± 3.2 |\n\n```\n# a comment, 1.0 ± 2.0\n```\n\n"
            "## 2. How\n\nno numbers\n")
    kept = exercises.without_measured_results(text)
    assert "## 1. Table" in kept and "76.1" not in kept and "# a comment" not in kept
    assert "no numbers" in kept and exercises.RESULTS_NOTE in kept
    assert "intro" not in exercises.without_measured_results(text, everything=True)


# ----------------------------------------------------------------------------------------------------------------
# The student copy
# ----------------------------------------------------------------------------------------------------------------

def measured_outcomes():
    """Every 'x.y ± z.w' of the instructor's measured outcomes and lab comparison."""
    texts = [*exercise_outcomes.OUTCOMES.values(), *exercise_outcomes.LAB_COMPARISON, exercise_outcomes.LAB_VERDICT]
    return {m for t in texts for m in exercises.MEASURED.findall(t)}


def test_the_hidden_copy_is_a_handout_without_instructor_only_files(hidden_copy):
    copy = hidden_copy
    assert not (copy / ".git").exists() and (copy / "train.py").is_file() and not (copy / "datasets").exists()
    readme = (copy / "README.md").read_text()
    assert readme.startswith("# C2VL: the course copy") and readme != (ROOT / "README.md").read_text()
    for said in ("python tools/exercises.py check 2", "python tools/exercises.py run N", "handin", "| 12 |",
                 "| 1 |", "idle 2-core CPU"):
        assert said in readme, said
    assert json.loads((copy / "course.json").read_text())["blank"] == [e.number for e in IMPLEMENT]
    for instructor_only in ("tests/test_exercises.py", "tools/exercise_outcomes.py", "bench", "docs/results"):
        assert not (copy / instructor_only).exists(), instructor_only
    for e in IMPLEMENT:
        for test in e.tests:
            file, _, name = test.partition("::")
            assert name not in defined_tests((copy / file).read_text()), f"{test} is still in the student copy"
        for check in e.checks:
            assert (copy / check.split("::")[0]).is_file(), check
    distill_tests = (copy / "tests" / "test_distill.py").read_text()
    assert "test_loss_matches_equations_M1_to_M12" not in distill_tests and "def H(" not in distill_tests
    assert "test_teacher_bank_round_trips_through_checkpoint" in distill_tests  # a test without an answer stays
    for helper, file in (("reference_feature", "test_skeleton_gru.py"), ("attention_by_heads",
                                                                         "test_skeleton_transformer.py"),
                         ("reference_loss", "test_distill.py"), ("graph_first_conv", "test_skeleton_gcn.py")):
        assert helper not in (copy / "tests" / file).read_text(), f"{helper}, an answer, is in the copy's {file}"
    outcomes = measured_outcomes()
    for path in copy.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".py", ".txt", ".json"):
            text = path.read_text()
            found = sorted(m for m in exercises.MEASURED.findall(text) if m in outcomes)
            assert not found, f"{path.relative_to(copy)} holds measured outcomes {found[:3]}"
            if path.suffix == ".md":
                assert not exercises.MEASURED.search(text), f"{path.relative_to(copy)} holds a measured result"
    catalogue = (copy / "docs" / "exercises.md").read_text()
    assert "measured:" not in catalogue and "python tools/exercises.py check 11" in catalogue
    assert "self.stepping" in catalogue  # exercise 11's requirement is stated
    blanked = (copy / "skeleton_gru.py").read_text()
    assert "# Exercise 11, what the docstring does not say: both settings of self.stepping" in blanked


def test_the_hidden_copy_still_imports_runs_help_and_refuses_to_grade_without_the_graded_tests(hidden_copy):
    for command in (["-c", "import train, evaluate, skeleton_gru, skeleton_transformer"], ["train.py", "--help"]):
        result = subprocess.run([sys.executable, *command], cwd=hidden_copy, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
    with pytest.raises(exercises.KitError, match=r"graded tests of exercise 1-11 are not in .*--tests"):
        exercises.grade(hidden_copy)
    record = exercises.grade(hidden_copy, ROOT / "tests")  # with the instructor's tests: every one fails
    assert record["total"] == 0 and all(x["passed"] == 0 for x in record["exercises"].values())
    for number, x in record["exercises"].items():
        assert all(f"Exercise {number}:" in f["message"] or "Exercise " in f["message"] for f in x["failed"]), number
    out = io.StringIO()
    exercises.print_grade(record, out)
    printed = out.getvalue()
    assert "test_gru_feature_is_both_directions_final_state_by_the_cell_equations\n      NotImplementedError: " \
           "Exercise 11:" in printed and f"hint: {exercises.exercise(11).hint}" in printed
    assert "total" in printed and "0/110" in printed


def test_a_students_check_fails_naming_the_exercise_then_passes_once_its_solution_is_back(hidden_copy, tmp_path):
    one = cli("check", 1, cwd=hidden_copy)
    assert one.returncode == 1 and one.stdout.startswith("Exercise 1: The soft cross-entropy H"), one.stdout
    assert "not written yet: soft_targets.soft_cross_entropy, soft_targets.student_logits" in one.stdout
    assert "0 of 6 checks pass. Hint:" in one.stdout and "Traceback" not in one.stdout + one.stderr
    before = io.StringIO()
    assert not exercises.check(root=hidden_copy, out=before)
    for e in IMPLEMENT:
        said = before.getvalue().split(f"Exercise {e.number}: ")[1].split("\nExercise ")[0]
        assert "not written yet" in said and f"0 of {len(e.checks)} checks pass" in said, (e.number, said)
    restored = tmp_path / "restored"
    shutil.copytree(hidden_copy, restored)
    for module in {t.split(":")[0] for e in IMPLEMENT for t in e.functions}:
        shutil.copy2(ROOT / f"{module}.py", restored / f"{module}.py")
    after = io.StringIO()
    assert exercises.check(root=restored, out=after), after.getvalue()
    for e in IMPLEMENT:
        assert f"Exercise {e.number}: {e.title} ({e.section})\n  all {len(e.checks)} checks pass" in after.getvalue()


def test_a_failing_check_names_the_check_and_says_why_in_the_papers_terms(tmp_path):
    copy = tmp_path / "student"
    exercises.make_copy(copy, only=[2])
    source = (copy / "soft_targets.py").read_text()
    wrong = "    return (P @ P.T / tau_t).softmax(dim=0)  # a column softmax\n"
    source = re.sub(r"    raise NotImplementedError\('Exercise 2: [^\n]*prompt_self_similarity[^\n]*\n", wrong,
                    source, count=1)
    (copy / "soft_targets.py").write_text(source)
    out = io.StringIO()
    assert not exercises.check([2], root=copy, out=out)
    said = out.getvalue()
    assert re.search(r"FAIL  A_m_is_row_stochastic_and_each_prompt_is_most_similar_to_itself\n\s+rows of A_m = "
                     r"softmax\(P_m P_m\^T / tau_t\) must sum to 1; row \d sums to", said), said
    assert "soft_targets.intra_modal_targets is not written yet" in said


def test_an_experiment_refuses_before_any_work_while_an_exercise_it_needs_is_blank(hidden_copy):
    out = io.StringIO()
    with pytest.raises(exercises.KitError, match=r"experiment 12 needs exercises 1-9; 1-9 are still blank.*Nothing "
                                                 r"was run"):
        exercises.run_experiment(12, root=hidden_copy, out=out)
    assert "train.py runs" in out.getvalue() and "still blank: exercises 1-9" in out.getvalue()
    assert not (hidden_copy / "datasets").exists() and not (hidden_copy / "runs").exists()


def test_make_with_only_an_experiment_says_what_it_does(tmp_path):
    result = cli("make", "--out", tmp_path / "exp", "--only", 12)
    assert result.returncode == 0 and "nothing to implement" in result.stdout and "experiment 12" in result.stdout
    copy = tmp_path / "exp"
    assert exercises.blank_functions(copy) == {}
    readme = (copy / "README.md").read_text()
    assert "| 12 | Soft targets against CLIP's hard InfoNCE | 6 |" in readme and "## Implement" not in readme
    out = io.StringIO()
    assert exercises.run_experiment(12, dry_run=True, root=copy, out=out) == 0
    assert "still blank" not in out.getvalue()


# ----------------------------------------------------------------------------------------------------------------
# Grading
# ----------------------------------------------------------------------------------------------------------------

def test_each_exercise_blank_alone_fails_only_its_own_tests_and_those_of_the_exercises_that_use_it(tmp_path):
    """Every implement-exercise in a copy of its own: its graded tests and its checks fail with its
    NotImplementedError message, and every other exercise's tests and checks pass unless the catalogue lists it as
    using this one (depends_on, check_needs): a student's check of one exercise needs no other blank written."""
    every_test = [t for e in IMPLEMENT for t in e.tests + e.checks]

    def check(e):
        copy = tmp_path / f"only-{e.number}"
        exercises.make_copy(copy, only=[e.number])
        return e, run_tests(copy, every_test)

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(check, IMPLEMENT))
    for e, results in outcomes:
        for test in e.tests + e.checks:
            outcome = results[test]
            assert not outcome.passed and f"Exercise {e.number}:" in outcome.text, (e.number, test, outcome.text[:300])
        for other in IMPLEMENT:
            if other is not e and e.number not in other.depends_on:
                assert all(results[t].passed for t in other.tests), (e.number, other.number)
            if other is not e and e.number not in other.check_needs:
                assert all(results[t].passed for t in other.checks), (e.number, other.number, "checks")


def test_the_solution_grades_full_marks():
    record = exercises.grade(ROOT)
    assert record["total"] == record["out_of"] == sum(e.points for e in IMPLEMENT)


def test_grading_a_class_writes_the_score_files_and_keeps_going_past_bad_submissions(hidden_copy, tmp_path):
    submissions = tmp_path / "class"
    (submissions / "empty").mkdir(parents=True)
    (submissions / "notes").mkdir()
    (submissions / "notes" / "todo.txt").write_text("not a copy")
    exercises.make_copy(submissions / "done", only=[2], hide_tests=True)  # exercise 1 is the solution
    (submissions / "done" / "datasets").mkdir()
    (submissions / "done" / "datasets" / "big.npy").write_text("x")
    exercises.handin(submissions / "blank.zip", root=hidden_copy)
    result = cli("grade", "--class", submissions, "--tests", ROOT / "tests", "--only", 1)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    scores = json.loads((submissions / "scores.json").read_text())
    by_name = {s["name"]: s for s in scores["submissions"]}
    assert [s["name"] for s in scores["submissions"]] == ["blank", "done", "empty", "notes"]
    assert by_name["done"]["total"] == 10 and by_name["blank"]["total"] == 0
    failed = by_name["blank"]["exercises"]["1"]["failed"]
    assert len(failed) == 3 and all(f["message"].startswith("NotImplementedError: Exercise 1:") for f in failed)
    assert by_name["empty"]["status"].endswith("is empty: nothing handed in")
    assert "is not a copy of this project" in by_name["notes"]["status"]
    rows = list(csv.DictReader((submissions / "scores.csv").read_text().splitlines()))
    assert [(r["submission"], r["total"], r["exercise 1"]) for r in rows] == [
        ("blank", "0", "0"), ("done", "10", "10"), ("empty", "0", ""), ("notes", "0", "")]
    assert "done" in result.stdout and "10/10" in result.stdout


def test_handin_packs_the_copy_without_data_runs_or_an_earlier_hand_in(tmp_path):
    copy = tmp_path / "student"
    exercises.make_copy(copy, only=[1])
    for junk in ("datasets/x.npy", "runs/r/metrics.json", "old.zip"):
        (copy / junk).parent.mkdir(parents=True, exist_ok=True)
        (copy / junk).write_text("x")
    (copy / "answers.md").write_text("predictions")
    result = cli("handin", "--out", "me.zip", cwd=copy)
    assert result.returncode == 0, result.stderr
    names = zipfile.ZipFile(copy / "me.zip").namelist()
    assert "answers.md" in names and "soft_targets.py" in names and "course.json" in names
    assert not any(n.startswith(("datasets/", "runs/")) or n.endswith(".zip") for n in names)


# ----------------------------------------------------------------------------------------------------------------
# Wrong arguments: one line, a non-zero exit, no traceback, nothing lost
# ----------------------------------------------------------------------------------------------------------------

def test_every_wrong_argument_gets_one_clear_line_and_a_non_zero_exit(hidden_copy, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hello")
    (tmp_path / "a-file.txt").write_text("x")
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "work.py").write_text("mine")
    cases = [
        (["grade", tmp_path / "nowhere"], "nowhere: no such folder"),
        (["grade", tmp_path / "a-file.txt"], "is not a folder"),
        (["grade", tmp_path / "empty"], "is empty: nothing handed in"),
        (["grade", tmp_path / "other"], "is not a copy of this project (no distill.py, evaluate.py"),
        (["grade", hidden_copy], "graded tests of exercise 1-11 are not in"),
        (["grade", hidden_copy, "--tests", tmp_path / "nowhere"], "nowhere: no such folder (give the instructor's"),
        (["grade", hidden_copy, "--tests", tmp_path / "other"], "has no test_distill.py: give the instructor"),
        (["grade", "--only", 99], "no exercise 99: the catalogue has exercises 1-23"),
        (["grade", "--only", 12], "exercise 12 is an experiment, nothing to grade"),
        (["grade", "--class", tmp_path / "empty"], "grading a class needs the instructor's tests"),
        (["grade", "--class", tmp_path / "empty", "--tests", ROOT / "tests"], "holds no submission"),
        (["grade", "--class", tmp_path / "nowhere", "--tests", ROOT / "tests"], "no such folder"),
        (["make", "--out", tmp_path / "x", "--only", 99], "no exercise 99"),
        (["make", "--out", kept], "exists and is not empty: give a new folder"),
        (["make", "--out", tmp_path / "a-file.txt"], "is a file"),
        (["check", 99], "no exercise 99"),
        (["check", 12], "exercise 12 is an experiment, nothing to check: run it with"),
        (["check", 22], "exercise 22 is an extension"),
        (["run", 3], "exercise 3 is to implement, not an experiment: check it with"),
        (["run", 99], "no exercise 99"),
        (["handin", "--out", tmp_path / "a-file.txt"], "exists: give a new file name"),
        (["handin", "--out", tmp_path / "me.tar"], "the hand-in is a .zip file"),
        (["grade", "--bogus"], "unrecognized arguments: --bogus"),
    ]
    for argv, expected in cases:
        with pytest.raises(SystemExit) as exit_:
            exercises.main([str(a) for a in argv])
        captured = capsys.readouterr()
        assert exit_.value.code not in (0, None), argv
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (argv, captured.err)
        assert "Traceback" not in captured.err + captured.out, argv
    assert (kept / "work.py").read_text() == "mine" and not (tmp_path / "x").exists()  # nothing lost, nothing made
