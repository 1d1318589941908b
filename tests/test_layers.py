"""The project's layers, kept by reading every import (docs/conventions.md §6).

- the reading path, in reading order: a file imports only earlier reading-path files and utils/;
- utils/ imports nothing of the project above it (other utils/ modules only);
- demo/ may use tools/ (the demo writes real .skeleton files that tools/raw_skeletons.py converts, and makes its
  vision prompts with tools/generate_prompts.py), so tools/ never imports demo/;
- tools/ and demo/ import the reading path and utils/ freely; bench/ and tests/ import anything.
One exception, by rule and not by file: an entry point's `main` may import the plumbing it dispatches to: demo/ to
make the demo (train.py: the demo's data, CLIP and prompt caches when they are missing), tools/ for a command's
implementation (prompts.py: `import` and `encode`, in tools/prompt_commands.py).
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READING_PATH = ["data", "skeleton_gcn", "skeleton_gru", "skeleton_transformer", "encoders", "prompts", "soft_targets",
                "distill", "evaluate", "train"]
ROOMS = ("utils", "tools", "demo")  # the plumbing folders


def imports(source: str):
    """(line, imported project-level name, enclosing top-level function or None) for every import in `source`."""
    tree = ast.parse(source)
    found = []
    for top in tree.body:
        function = top.name if isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
        for node in ast.walk(top):
            if isinstance(node, ast.Import):
                found += [(node.lineno, alias.name, function) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((node.lineno, node.module, function))
                if node.module in ROOMS:  # `from utils import files`: the module is utils.files
                    found += [(node.lineno, f"{node.module}.{alias.name}", function) for alias in node.names]
    return found


def layer(module: str):
    """'reading', 'utils', 'tools', 'demo', or None for anything outside the project."""
    top = module.split(".")[0]
    if top in READING_PATH:
        return "reading"
    return top if top in ROOMS else None


def violations(path: Path, source: str) -> list[str]:
    """The imports of one file (its path relative to the repository root) that run the wrong way."""
    own = layer(".".join(path.with_suffix("").parts))
    bad = []
    for line, module, function in imports(source):
        target = layer(module)
        if target is None or module.split(".")[0] == own:
            continue
        where = f"{path}:{line} imports {module}"
        if own == "reading":
            here, there = READING_PATH.index(path.stem), READING_PATH.index(module.split(".")[0]) if target == \
                "reading" else None
            if target == "reading" and there > here:
                bad.append(f"{where}: a later reading-path file")
            elif target in ("tools", "demo") and function != "main":
                bad.append(f"{where}: plumbing, from the reading path")
        elif own == "utils" and target != "utils":
            bad.append(f"{where}: utils/ imports nothing above it")
        elif own == "tools" and target == "demo":
            bad.append(f"{where}: tools/ never imports demo/ (demo/ uses tools/)")
    return bad


def project_files():
    for path in sorted(ROOT.glob("*.py")) + sorted(p for room in ROOMS for p in (ROOT / room).glob("*.py")):
        yield path.relative_to(ROOT)


def test_every_import_runs_the_right_way():
    found = [v for path in project_files() for v in violations(path, (ROOT / path).read_text())]
    assert found == [], "\n".join(found)


def test_the_reading_path_files_are_all_there():
    assert {p.stem for p in project_files() if len(p.parts) == 1} >= set(READING_PATH)


def test_the_layer_check_catches_each_wrong_arrow():
    """The check itself: each kind of wrong arrow, planted in a file of the layer it would break."""
    planted = {
        ("utils", "plots.py"): "from evaluate import confusion_matrix\n",
        ("distill.py",): "import train\n",
        ("prompts.py",): "def frames():\n    from demo.frames import demo_frame_source\n",
        ("data.py",): "from tools.raw_skeletons import convert_ntu\n",
        ("evaluate.py",): "def linear():\n    from tools.prompt_commands import EncodeConfig\n",
        ("tools", "gendata.py"): "from demo.world import prepare_demo\n",
    }
    for parts, source in planted.items():
        assert len(violations(Path(*parts), source)) == 1, parts
    allowed = {("train.py",): "def main():\n    from demo.clip import prepare_demo_inputs\n",
               ("prompts.py",): "def main(argv=None):\n    from tools.prompt_commands import main\n",
               ("demo", "world.py"): "from tools.raw_skeletons import convert_ntu\n",
               ("evaluate.py",): "import prompts\nfrom utils.files import write_json\n"}
    for parts, source in allowed.items():
        assert violations(Path(*parts), source) == [], parts
