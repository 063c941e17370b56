"""Dependencies inside bertkit/ point one way: no import cycle, counting imports inside functions too.

A function-level import hides a cycle from Python but not from a reader (model -> checkpoint ->
model is a knot either way), so every `import` statement counts, at any depth, except those under
`if TYPE_CHECKING:`. `from pkg import name` counts as an edge to pkg.name when that is a module,
else to pkg itself.

An import inside a function stays there only for a reason a reader is told: a `# lazy: REASON`
comment on its line or the line above, REASON from the short list LAZY_REASONS.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bertkit"
PYPROJECT = PACKAGE.parent / "pyproject.toml"
# Why an import may stay inside a function (the start of the reason; a new kind of reason goes here).
LAZY_REASONS = (
    "keeps bertkit --help free of torch",  # cli/*: the parsers are built from these modules
    "keeps bertkit --help free of numpy",
    "keeps bertkit --help fast",  # light but slow to import (tqdm, the tokenizers)
    "optional extra [",  # followed by the extra's name, which pyproject.toml must declare
    "matplotlib is slow to import and only plots need it",
    "bertkit.tokenizers loads without numpy and torch",
    "tomllib is absent before Python 3.11",
    "pydoc_data is absent from some trimmed Python builds",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_blocks(tree: ast.AST) -> set[int]:
    """ids of import nodes inside `if TYPE_CHECKING:` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_blocks(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_inside_bertkit():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_cycle_between_packages():
    """Collapsed to bertkit's first-level packages and modules, the graph is still acyclic."""

    def top(module: str) -> str:
        return ".".join(module.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for name, targets in import_graph().items():
        packages.setdefault(top(name), set()).update(top(t) for t in targets if top(t) != top(name))
    found = cycles(packages)
    assert not found, "package cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def _extras() -> set[str]:
    text = PYPROJECT.read_text(encoding="utf-8")
    section = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return set(re.findall(r"^([A-Za-z0-9_-]+) = ", section, flags=re.M))


def unexplained_lazy_imports(source: str, extras: set[str]) -> list[int]:
    """Lines of function-level imports (outside `if TYPE_CHECKING:`) without a `# lazy:` reason from
    LAZY_REASONS on the statement's first line or the line above."""
    tree = ast.parse(source)
    lines = source.splitlines()
    skip = _type_checking_blocks(tree)
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in skip:
                continue
            here = [lines[node.lineno - 1].partition("# lazy:")[2]]
            if node.lineno > 1 and lines[node.lineno - 2].strip().startswith("# lazy:"):
                here.append(lines[node.lineno - 2].partition("# lazy:")[2])
            if not any(_is_reason(text.strip(), extras) for text in here):
                found.append(node.lineno)
    return sorted(set(found))


def _is_reason(text: str, extras: set[str]) -> bool:
    match = re.match(r"optional extra \[([^\]]+)\]", text)
    if match:
        return match.group(1) in extras
    return any(text.startswith(reason) for reason in LAZY_REASONS)


def test_every_function_level_import_says_why_it_is_lazy():
    extras = _extras()
    assert {"onnx", "hub", "serve"} <= extras
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in unexplained_lazy_imports(path.read_text(encoding="utf-8"), extras)
    ]
    assert not found, (
        "imports inside functions without a '# lazy: REASON' (see LAZY_REASONS); move them to the top "
        "of the module or say why not:\n" + "\n".join(found)
    )


def test_the_lazy_import_checker_finds_a_missing_reason():
    source = """
import os
from typing import TYPE_CHECKING


def f():
    import json
    import torch  # lazy: keeps bertkit --help free of torch
    # lazy: optional extra [onnx]
    import onnx
    if TYPE_CHECKING:
        import numpy
    # lazy: it felt right
    import shutil
    import uvicorn  # lazy: optional extra [nosuchextra]
    from bertkit.tokenizers import (  # lazy: keeps bertkit --help fast
        Tokenizer,
    )

    def inner():
        import re

    return inner
"""
    assert unexplained_lazy_imports(source, {"onnx"}) == [7, 14, 15, 21]
