"""tools/exercises.py: the catalogue, the student copy (every implement-exercise blanked alone and all together),
grading, and the docs rendered from the catalogue."""
import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tools import exercises

ROOT = Path(__file__).resolve().parents[1]
IMPLEMENT = [e for e in exercises.CATALOGUE if e.kind == "implement"]


def test_the_catalogue_has_three_kinds_and_the_docs_are_rendered_from_it():
    kinds = [e.kind for e in exercises.CATALOGUE]
    assert len(kinds) >= 10 and {"implement", "experiment", "extend"} == set(kinds)
    assert [e.number for e in exercises.CATALOGUE] == list(range(1, len(kinds) + 1))
    assert (ROOT / "docs" / "exercises.md").read_text() == exercises.catalogue_markdown(), \
        "docs/exercises.md is stale: python tools/exercises.py catalogue --out docs/exercises.md"
    for e in exercises.CATALOGUE:
        assert e.section.startswith("docs/"), e.number
        if e.kind == "experiment":
            assert e.command.startswith("python ") and e.expected, e.number


def test_every_function_and_test_of_an_exercise_exists():
    for e in IMPLEMENT:
        for target in e.functions:
            module, qualified = target.split(":")
            exercises.find_function(ast.parse((ROOT / f"{module}.py").read_text()), qualified)
        for test in e.tests:
            file, _, name = test.partition("::")
            names = {n.name for n in ast.parse((ROOT / file).read_text()).body if isinstance(n, ast.FunctionDef)}
            assert name in names, test
        assert set(e.depends_on) < {x.number for x in IMPLEMENT} - {e.number}


def test_blank_keeps_signature_and_docstring_and_raises_the_exercises_message():
    source = 'def f(a,\n      b=1):\n    """Doc."""\n    c = a + b\n    return c\n\n\ndef g():\n    return 2\n'
    blanked = exercises.blank(source, "f", "Exercise 9: f (docs/method.md §1)")
    assert blanked.startswith('def f(a,\n      b=1):\n    """Doc."""\n    raise NotImplementedError(')
    assert "c = a + b" not in blanked and "def g():\n    return 2" in blanked
    namespace = {}
    exec(blanked, namespace)  # noqa: S102 - the blanked source of the test above
    with pytest.raises(NotImplementedError, match="Exercise 9: f"):
        namespace["f"](1)


def test_the_student_copy_with_every_exercise_blank_hides_its_tests_and_still_runs(tmp_path):
    copy = tmp_path / "student"
    exercises.make_copy(copy, hide_tests=True)
    assert not (copy / ".git").exists() and (copy / "train.py").is_file() and not (copy / "datasets").exists()
    for e in IMPLEMENT:
        for test in e.tests:
            file, _, name = test.partition("::")
            names = {n.name for n in ast.parse((copy / file).read_text()).body if isinstance(n, ast.FunctionDef)}
            assert name not in names, f"{test} is still in the student copy"
    for command in (["-c", "import train, evaluate, skeleton_gru, skeleton_transformer"], ["train.py", "--help"]):
        result = subprocess.run([sys.executable, *command], cwd=copy, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
    rows, ok = exercises.grade(copy, ROOT / "tests")
    assert not ok and all(passed == 0 for _, passed, _, _ in rows)  # graded with the instructor's tests: all fail


def test_each_exercise_blank_alone_fails_only_its_own_tests_and_those_of_the_exercises_that_use_it(tmp_path):
    """Every implement-exercise in a copy of its own: its graded tests fail with its NotImplementedError message,
    and every other exercise's tests pass unless the catalogue lists it as using this one."""
    every_test = [t for e in IMPLEMENT for t in e.tests]

    def check(e):
        copy = tmp_path / f"only-{e.number}"
        exercises.make_copy(copy, only=[e.number])
        return e, exercises.run_tests(copy, every_test)

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(check, IMPLEMENT))
    for e, results in outcomes:
        for test in e.tests:
            passed, text = results[test]
            assert not passed and f"Exercise {e.number}:" in text, (e.number, test, text[:300])
        for other in IMPLEMENT:
            if other is e or e.number in other.depends_on:
                continue
            assert all(results[t][0] for t in other.tests), (e.number, other.number)


def test_the_solution_grades_full_marks():
    rows, ok = exercises.grade(ROOT)
    assert ok and sum(points for *_, points in rows) == sum(e.points for e in IMPLEMENT)
