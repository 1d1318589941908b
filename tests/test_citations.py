"""Citations that stay true: every `docs/<file>.md §N` in the code and the docs resolves to a heading numbered N
of that file, and every function, class or test named in a table of the README or the docs exists."""
import ast
import fnmatch
import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# "docs/method.md §1, §5 and §7", "[method.md §9](method.md)": a file, then one or more section numbers
CITATION = re.compile(r"(?:docs/)?(\w+)\.md\)?\s*((?:§\d+(?:[,;]?\s*(?:and\s+)?)?)+)")
TABLE_NAME = re.compile(r"`([^`]+)`")


def sources():
    """Every file that may cite the docs: the project's Python files and Markdown."""
    skip = {"datasets", "runs", ".git"}
    for path in sorted(ROOT.rglob("*")):
        if path.suffix in (".py", ".md") and not skip & set(path.relative_to(ROOT).parts):
            yield path


def headings(doc: Path) -> set[int]:
    """The section numbers of a Markdown file: '## 3. Title' (or deeper levels) -> 3."""
    return {int(m) for m in re.findall(r"^#{1,4}\s+(\d+)\.\s", doc.read_text(), flags=re.M)}


def citations(text: str):
    """(doc file stem, section number) of every citation in `text`."""
    for match in CITATION.finditer(text):
        for number in re.findall(r"§(\d+)", match.group(2)):
            yield match.group(1), int(number)


def broken_citations(path: Path, text: str) -> list[str]:
    bad = []
    for stem, number in citations(text):
        doc = ROOT / "docs" / f"{stem}.md"
        if not doc.is_file():
            bad.append(f"{path.relative_to(ROOT)}: cites {stem}.md §{number}, but there is no docs/{stem}.md")
        elif number not in headings(doc):
            bad.append(f"{path.relative_to(ROOT)}: cites {stem}.md §{number}, but docs/{stem}.md has no "
                       f"section {number} (it has {sorted(headings(doc))})")
    return bad


def test_every_section_citation_resolves_to_a_numbered_heading():
    bad = [b for path in sources() for b in broken_citations(path, path.read_text())]
    assert bad == [], "\n".join(bad)


def test_a_wrong_section_number_is_caught():
    path = ROOT / "distill.py"
    assert broken_citations(path, "the single-modality fallback (docs/method.md §6)") == []
    section = "§"  # the wrong citations below are assembled, so that this file itself cites nothing wrong
    assert len(broken_citations(path, f"see docs/method.md §6 and {section}99")) == 1
    assert len(broken_citations(path, f"see docs/nowhere.md {section}1")) == 1
    assert len(broken_citations(path, f"[method.md {section}42](method.md)")) == 1


# ---------------------------------------------------------------------------------------------------------------
# Names in tables
# ---------------------------------------------------------------------------------------------------------------

PROJECT = {p.stem for p in ROOT.glob("*.py")} | {"utils", "tools", "demo", "bench"}
TEST_FUNCTIONS = {path.name: {n.name for n in ast.walk(ast.parse(path.read_text()))
                              if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}
                  for path in (ROOT / "tests").glob("test_*.py")}


def resolves(dotted: str) -> bool:
    """module[.submodule].attribute[.attribute]: the longest importable prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
            return True
        except AttributeError:
            return False
    return False


def named_test_exists(name: str, current_file: str | None) -> bool:
    """'tests/test_x.py::test_y', '::test_y' (the file of the row's last one) or 'test_y' / 'test_y*' (any file)."""
    if "::" in name:
        file, _, function = name.partition("::")
        files = [Path(file).name] if file else [current_file] if current_file else list(TEST_FUNCTIONS)
    else:
        function, files = name, list(TEST_FUNCTIONS)
    return any(fnmatch.filter(TEST_FUNCTIONS.get(f, ()), function) for f in files)


def table_rows():
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(doc.read_text().splitlines(), start=1):
            if line.startswith("|") and not set(line) <= set("|-: "):
                yield doc, number, line


def missing_names(doc, number, line) -> list[str]:
    bad, current = [], None
    for name in TABLE_NAME.findall(line):
        name = name.rstrip("()")
        where = f"{doc.relative_to(ROOT)}:{number}: `{name}`"
        if re.fullmatch(r"(tests/)?test_\w+\.py::[\w*\[\]-]+|::[\w*]+|test_[\w*]+", name):
            if name.startswith("tests/"):
                current = Path(name.split("::")[0]).name
            if not named_test_exists(name.split("[")[0], current):
                bad.append(f"{where}: no such test")
        elif (re.fullmatch(r"[a-z_]\w*(\.\w+)+", name) and name.split(".")[0] in PROJECT
              and name.rsplit(".", 1)[1] not in ("py", "png", "md", "json", "jsonl", "npy", "pt", "pkl", "txt")):
            if not resolves(name):
                bad.append(f"{where}: no such module, function or class")
    return bad


def test_every_function_and_test_named_in_a_table_exists():
    bad = [b for row in table_rows() for b in missing_names(*row)]
    assert bad == [], "\n".join(bad)


def test_a_renamed_function_or_test_in_a_table_is_caught():
    readme = ROOT / "README.md"
    assert missing_names(readme, 1, "| M4 | `soft_targets.intra_modal_targets` | `test_intra_modal_targets_M4` |") == []
    assert len(missing_names(readme, 1, "| M4 | `soft_targets.intra_targets` | `test_intra_modal_targets_M4` |")) == 1
    assert len(missing_names(readme, 1, "| M4 | `soft_targets.intra_modal_targets` | `tests/test_soft_targets.py::"
                                        "test_intra_M4` |")) == 1
