"""Every measured demo number has one home, docs/results.md: each of its tables says above it which command made it
and on which machine; README.md and docs/training.md restate no measured mean ± std and link there instead; and
every link to a section of a Markdown file (`results.md#2-does-pretraining-work`) lands on a heading."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results.md"
# a command in backticks, environment settings allowed in front: `python tools/ablation.py ...`, `OMP_NUM_THREADS=1 python ...`
COMMAND = re.compile(r"`(?:[A-Z_]+=\S+\s+)*python\s[^`]+`")
MACHINE = re.compile(r"\b2-core\s+(?:development\s+)?(?:CPU|machine)\b|\bH100\b|\bH200\b", re.I)
MEAN_STD = re.compile(r"\d+\.\d ± \d+\.\d")  # a measured cell: "12.3 ± 4.5"
LINK = re.compile(r"(?:\(|\]:\s*)((?:[\w./-]*/)?(\w+)\.md)?#([\w-]+)\)?")


def tables(text: str):
    """(first line number, the text above the table since the last heading or table) of every Markdown table."""
    found, above, start, in_table = [], [], None, False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("|"):
            if not in_table:
                found.append((number, "\n".join(above)))
                in_table, above = True, []
            continue
        if in_table:
            in_table = False
        if re.match(r"#{1,6}\s", line):
            above = []
        above.append(line)
    return found


def tables_without_provenance(text: str) -> list[str]:
    """The tables of `text` that lack a command or a machine above them."""
    bad = []
    for number, above in tables(text):
        if not COMMAND.search(above):
            bad.append(f"line {number}: no `python ...` command above the table")
        if not MACHINE.search(above):
            bad.append(f"line {number}: no machine named above the table")
    return bad


def test_every_results_table_names_its_command_and_machine():
    found = tables(RESULTS.read_text())
    assert len(found) >= 10, "docs/results.md should hold the demo's tables"
    bad = tables_without_provenance(RESULTS.read_text())
    assert bad == [], "docs/results.md:\n" + "\n".join(bad)


def test_a_table_without_its_command_or_machine_is_caught():
    table = "| run | linear |\n|---|---:|\n| C2VL | 12.3 ± 4.5 |\n"
    assert tables_without_provenance("## 2. A question\n\n`python tools/ablation.py`, the 2-core CPU:\n\n" + table) == []
    assert len(tables_without_provenance("## 2. A question\n\nthe 2-core CPU:\n\n" + table)) == 1
    assert len(tables_without_provenance("## 2. A question\n\n`python tools/ablation.py`:\n\n" + table)) == 1
    # a command above the heading belongs to the section before: it does not count
    assert len(tables_without_provenance("`python train.py`, the 2-core CPU\n\n## 3. Next\n\n" + table)) == 2


def measured_cells(text: str) -> list[str]:
    return [f"line {n}: {line.strip()}" for n, line in enumerate(text.splitlines(), start=1) if MEAN_STD.search(line)]


def test_readme_and_training_md_restate_no_measured_mean_and_std_and_link_to_results():
    for doc in (ROOT / "README.md", ROOT / "docs" / "training.md"):
        text = doc.read_text()
        assert measured_cells(text) == [], f"{doc.relative_to(ROOT)} restates measured numbers (their home is " \
                                           "docs/results.md):\n" + "\n".join(measured_cells(text))
        assert "results.md" in text, f"{doc.relative_to(ROOT)} should link to docs/results.md"


def test_a_planted_mean_and_std_is_caught():
    readme = (ROOT / "README.md").read_text()
    assert measured_cells(readme) == []
    planted = readme + "\n| C2VL | 12.3 ± 4.5 | 23.4 ± 5.6 |\n"
    assert len(measured_cells(planted)) == 1
    assert len(measured_cells("C2VL reaches 12.3 ± 4.5 linear on the demo.")) == 1
    assert measured_cells("a paired difference is the mean ± its standard error") == []


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    """The anchors of a Markdown file's headings, outside fenced code."""
    found, fenced = set(), False
    for line in doc.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"#{1,6}\s+(.*)", line)):
            found.add(slug(heading.group(1)))
    return found


def broken_anchors(doc: Path, text: str) -> list[str]:
    bad = []
    for match in LINK.finditer(text):
        target = ROOT / "docs" / f"{match.group(2)}.md" if match.group(2) else doc
        if match.group(2) == "README":
            target = ROOT / "README.md"
        if not target.is_file():
            bad.append(f"{doc.relative_to(ROOT)}: links {match.group(0)}, but there is no {target.relative_to(ROOT)}")
        elif match.group(3) not in anchors(target):
            bad.append(f"{doc.relative_to(ROOT)}: links #{match.group(3)}, which no heading of "
                       f"{target.relative_to(ROOT)} makes")
    return bad


def test_every_link_to_a_section_lands_on_a_heading():
    bad = [b for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
           for b in broken_anchors(doc, doc.read_text())]
    assert bad == [], "\n".join(bad)


def test_a_link_to_a_missing_section_is_caught():
    readme = ROOT / "README.md"
    assert slug("1. One run: what `python train.py` prints") == "1-one-run-what-python-trainpy-prints"
    assert broken_anchors(readme, "[§2](docs/results.md#2-does-pretraining-work)") == []
    assert len(broken_anchors(readme, "[§2](docs/results.md#2-does-pretraining-help)")) == 1
    assert len(broken_anchors(readme, "[r2]: docs/results.md#99-nowhere")) == 1
