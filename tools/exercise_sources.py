"""Source surgery for the course kit (tools/exercises.py): blank a function, find the blanks, take tests out of a file.

Everything works on the text of one Python file, through its syntax tree, so that what is left reads as the author
wrote it (comments, blank lines and line breaks kept):
- `blank`: a function's body becomes `raise NotImplementedError(message)`, its signature and docstring kept, with
  optional comment lines above the raise (what the docstring does not say);
- `blanked_exercise`: which exercise a function's body is the blank of, if any;
- `remove_tests`: test functions out, then the helpers only they used (an independent computation of an answer
  would otherwise stay behind in a student's copy);
- `remove_with_users`: functions and every test or helper that uses them (a test helper that computes an answer);
- `remove_tests_naming`: tests whose text names a test that left (a citation test's example row);
- `remove_imports_of`: imports of modules a copy does not ship, and every test that used what they imported;
- `defined_tests`: the test functions a file defines.
"""
from __future__ import annotations

import ast
import re
import textwrap

BLANK_MESSAGE = re.compile(r"^Exercise (\d+):")


def find_function(tree: ast.Module, qualified: str) -> ast.FunctionDef:
    """The function (or method: "Class.method") `qualified` of a module's syntax tree; KeyError if absent."""
    node, found = tree, None
    for name in qualified.split("."):
        found = next((n for n in node.body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == name), None)
        if found is None:
            raise KeyError(f"no {qualified} in the module")
        node = found
    return found


def _has_docstring(function: ast.FunctionDef) -> bool:
    first = function.body[0]
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


def blank(source: str, qualified: str, message: str, note: str = "") -> str:
    """`source` with the body of function `qualified` replaced by `raise NotImplementedError(message)`, its
    signature and docstring kept; `note`, if given, becomes comment lines above the raise."""
    function = find_function(ast.parse(source), qualified)
    body = function.body
    lines = source.splitlines(keepends=True)
    indent = " " * body[0].col_offset
    comments = [f"{indent}# {line}\n" for line in textwrap.wrap(note, 116 - len(indent))] if note else []
    raise_lines = comments + [f"{indent}raise NotImplementedError({message!r})\n"]
    documented = _has_docstring(function)
    if documented and len(body) == 1:  # a docstring and nothing else
        return "".join(lines[:function.end_lineno] + raise_lines + lines[function.end_lineno:])
    first = body[1].lineno if documented else body[0].lineno
    return "".join(lines[:first - 1] + raise_lines + lines[function.end_lineno:])


def blanked_exercise(source: str, qualified: str) -> int | None:
    """The exercise number whose blank function `qualified`'s body is (`raise NotImplementedError("Exercise N: ...")`
    after its docstring), else None: the student has written it, or it was never blanked."""
    function = find_function(ast.parse(source), qualified)
    body = function.body[1:] if _has_docstring(function) else function.body
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or not isinstance(body[0].exc, ast.Call):
        return None
    call = body[0].exc
    if not (isinstance(call.func, ast.Name) and call.func.id == "NotImplementedError" and call.args
            and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)):
        return None
    match = BLANK_MESSAGE.match(call.args[0].value)
    return int(match.group(1)) if match else None


def defined_tests(source: str) -> set[str]:
    """The names of the module-level test functions of a test file."""
    return {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def _span(node: ast.AST) -> tuple[int, int]:
    """(first, last) line of a top-level definition, its decorators included."""
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]), node.end_lineno


def _delete(source: str, spans: list[tuple[int, int]]) -> str:
    lines = source.splitlines(keepends=True)
    for start, end in sorted(spans, reverse=True):
        del lines[start - 1:end]
        while start - 1 < len(lines) and start >= 2 and not lines[start - 2].strip() and not lines[start - 1].strip():
            del lines[start - 1]  # no run of three blank lines where a definition was
    return "".join(lines).strip("\n") + "\n"


def _used_names(nodes) -> set[str]:
    """Every name the nodes read, and the parameter names of their functions (pytest fixtures are used that way)."""
    used = set()
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                used.add(sub.id)
            elif isinstance(sub, ast.arg):
                used.add(sub.arg)
            elif isinstance(sub, ast.Attribute):
                used.add(sub.attr)
            elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value.isidentifier():
                used.add(sub.value)  # getattr(module, "name"), request.getfixturevalue("name")
    return used


def remove_tests(source: str, names: set[str]) -> str:
    """`source` without the test functions `names` (decorators included), and without the module-level helper
    functions that no remaining code uses any more."""
    tree = ast.parse(source)
    helpers = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("test_")]
    unused_before = {n for n in helpers if n.name not in _used_names([m for m in tree.body if m is not n])}
    removed = {n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names}
    while removed:  # a helper used only by what was removed goes too, and so on
        kept = [n for n in tree.body if n not in removed]
        dead = {n for n in helpers if n in kept and n not in unused_before
                and n.name not in _used_names([m for m in kept if m is not n])}
        if not dead:
            break
        removed |= dead
    return _delete(source, [_span(n) for n in removed])


def remove_with_users(source: str, names: set[str]) -> str:
    """`source` without the module-level functions `names`, every function that uses one of them or of `names`
    (whatever they name: a helper, an imported module or function), and so on; then the helpers only those used."""
    tree = ast.parse(source)
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    gone = {n.name for n in functions if n.name in names}
    while True:
        more = {n.name for n in functions if n.name not in gone and (set(names) | gone) & _used_names([n])}
        if not more:
            break
        gone |= more
    return remove_tests(source, gone) if gone else source


def remove_tests_naming(source: str, names: set[str]) -> str:
    """`source` without the test functions whose text names one of `names` (tests that check a table naming a test
    that is not there any more)."""
    if not names:
        return source
    tree = ast.parse(source)
    word = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b")
    naming = {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")
              and n.name not in names and word.search(ast.get_source_segment(source, n) or "")}
    return remove_tests(source, naming) if naming else source


def remove_imports_of(source: str, modules: set[str]) -> str:
    """`source` without its imports of `modules` (and their submodules), and without every function that used a
    name they imported (remove_with_users)."""
    tree = ast.parse(source)

    def withheld(name):
        return any(name == m or name.startswith(m + ".") for m in modules)

    imports, names = [], set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and withheld(node.module):
            imports.append(node)
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import) and any(withheld(alias.name) for alias in node.names):
            imports.append(node)
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    if not imports:
        return source
    return remove_with_users(_delete(source, [_span(n) for n in imports]), names)
