"""Running an exercise's tests in a folder and writing what they found (tools/exercises.py `check` and `grade`).

- `run_tests`: pytest on some test node ids in a folder, in a subprocess with a time limit -> {node id: Outcome};
- `first_lines`: the line or two of a failure a person reads first;
- `write_scores`: a class's scores as JSON (everything) or CSV (one row per submission, points per exercise).
"""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from utils.files import write_json, write_text


@dataclass(frozen=True)
class Outcome:
    passed: bool
    text: str = ""  # the failure: its message and traceback; empty when passed


def node_of(case: ElementTree.Element) -> str:
    """A junit <testcase>'s pytest node id without parameters: tests/checks/test_x.py::test_y."""
    return case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "").split("[")[0]


def run_tests(folder: Path, tests: Sequence[str], timeout: float = 900) -> dict[str, Outcome]:
    """{test node id (parameters dropped): Outcome} of `tests` run by pytest in `folder`. A parametrised test passes
    when every parameter passes. A test that did not run (its file failed to import, the time ran out) is absent
    unless the reason is known: then it fails with the reason."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.xml"
        try:
            run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                  f"--junitxml={report}", *sorted(set(tests))], cwd=folder, capture_output=True,
                                 text=True, timeout=timeout, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        except subprocess.TimeoutExpired:
            reason = f"not finished after {timeout:.0f} s: an endless loop, or a very slow function?"
            return {t.split("[")[0]: Outcome(False, reason) for t in tests}
        results: dict[str, Outcome] = {}
        broken_files: dict[str, str] = {}
        if report.is_file():
            for case in ElementTree.parse(report).getroot().iter("testcase"):
                problems = [c for c in case if c.tag in ("failure", "error", "skipped")]
                text = "\n".join((c.get("message") or "") + "\n" + (c.text or "") for c in problems).strip()
                if not case.get("classname"):  # a file that failed to import: pytest names the module
                    broken_files[case.get("name", "").replace(".", "/") + ".py"] = text
                    continue
                node, earlier = node_of(case), results.get(node_of(case), Outcome(True))
                results[node] = Outcome(not problems and earlier.passed, "\n".join(filter(None, (earlier.text, text))))
        for test in tests:
            node = test.split("[")[0]
            file = node.split("::")[0]
            if node not in results and file in broken_files:
                results[node] = Outcome(False, f"{file} could not be imported: {broken_files[file]}")
            elif node not in results and run.returncode in (2, 3, 4):  # interrupted, internal error, usage error
                results[node] = Outcome(False, "pytest did not run it: " + (run.stdout + run.stderr).strip()[-400:])
        return results


def first_lines(text: str, count: int = 2, width: int = 200) -> str:
    """The first `count` lines of a failure that say something ("AssertionError:" alone and blank lines do not),
    joined by " | " and cut at `width` characters."""
    useful = []
    for line in text.splitlines():
        line = line.strip()
        for prefix in ("AssertionError: ", "E   "):
            line = line.removeprefix(prefix)
        if line and line not in ("AssertionError:", "AssertionError") and not line.startswith(("assert ", "+  where")):
            useful.append(line)
        if len(useful) == count:
            break
    joined = " | ".join(useful)
    return joined if len(joined) <= width else joined[:width - 3] + "..."


def write_scores(path: Path, exercises: list[dict], submissions: list[dict]) -> None:
    """A class's scores: `path` ending .csv gets one row per submission (name, status, total, out_of, then the points
    of each exercise); any other ending gets JSON with everything, the failed tests and their first lines included.
    exercises: [{"number", "title", "points"}]; submissions: [{"name", "status", "total", "out_of",
    "exercises": {number: {"passed", "tests", "points", "failed": [{"test", "message"}]}}}]."""
    if path.suffix.lower() != ".csv":
        write_json(path, {"exercises": exercises, "submissions": submissions})
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", "status", "total", "out_of", *(f"exercise {e['number']}" for e in exercises)])
    for s in submissions:
        points = [s["exercises"].get(e["number"], {}).get("points", "") for e in exercises]
        writer.writerow([s["name"], s["status"], s["total"], s["out_of"], *points])
    write_text(path, buffer.getvalue())
