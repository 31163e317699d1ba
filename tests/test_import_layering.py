"""The package's layers, read from the source with `ast` (nothing is imported):

    ops, nets, data  <  eval  <  viz, bench  <  experiments

No module of `lmkcore.eval`, `.data`, `.ops` or `.nets` imports `lmkcore.viz`, `.experiments` or
`.bench` (at module level or inside a function); nothing outside `lmkcore.experiments` imports it;
and the imports of `lmkcore` have no circle, neither at module level (each module imports first in a
fresh interpreter) nor through imports inside functions (which hide a circle, not remove it: e.g.
eval.protocol -> eval.report -> eval.protocol). A module importing its own parent package (a
registry's `from . import register`) is not a circle: the parent is always initialised first.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lmkcore"

LOWER = ("lmkcore.eval", "lmkcore.data", "lmkcore.ops", "lmkcore.nets")
UPPER = ("lmkcore.viz", "lmkcore.experiments", "lmkcore.bench")


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _target(module: str, node: ast.ImportFrom | ast.Import, alias: ast.alias) -> str:
    """The module an import loads: `from X import y` is `X.y` where that is a module, else `X`."""
    if isinstance(node, ast.Import):
        return alias.name
    if node.level:
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        source = f"{base}.{node.module}" if node.module else base
    else:
        source = node.module
    return f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source


def imports(module: str, *, module_level_only: bool = False) -> set[str]:
    """The `lmkcore` modules `module` imports (all of them, or only those run when it is imported:
    function bodies skipped, class bodies and top-level `if`/`try` blocks kept)."""
    tree = ast.parse(MODULES[module].read_text(), str(MODULES[module]))
    found: set[str] = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if module_level_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.update(t for a in child.names if _within(t := _target(module, child, a), "lmkcore"))
            visit(child)

    visit(tree)
    return found


def test_the_parser_resolves_relative_imports():
    assert "lmkcore.eval.regression" in imports("lmkcore.eval.plots")  # from .regression import one_thread
    assert "lmkcore.viz.regressor" in imports("lmkcore.viz.state")  # from .regressor import ...
    assert "lmkcore.methods" in imports("lmkcore.methods.autolink")  # from . import register
    assert "lmkcore.ops.coords" in imports("lmkcore.nets.blocks")  # from ..ops.coords import full_precision
    assert "lmkcore.train" in imports("lmkcore.experiments.sweep")
    assert "lmkcore.methods" in imports("lmkcore.checkpoint")  # inside load_method
    assert "lmkcore.methods" not in imports("lmkcore.checkpoint", module_level_only=True)


@pytest.mark.parametrize("lower", LOWER)
def test_lower_layers_import_no_upper_one(lower):
    bad = {m: sorted(t for t in imports(m) if any(_within(t, u) for u in UPPER))
           for m in MODULES if _within(m, lower)}
    assert not {m: t for m, t in bad.items() if t}, f"{lower} must not import {', '.join(UPPER)}"


def test_only_experiments_import_experiments():
    bad = {m: sorted(t for t in imports(m) if _within(t, "lmkcore.experiments"))
           for m in MODULES if not _within(m, "lmkcore.experiments")}
    assert not {m: t for m, t in bad.items() if t}


@pytest.mark.parametrize("module_level_only", [True, False], ids=["module-level", "with-function-level"])
def test_no_import_circle(module_level_only):
    graph = {m: {t for t in imports(m, module_level_only=module_level_only) if t in MODULES and not _within(m, t)}
             for m in MODULES}
    done, path = set(), []

    def walk(m):  # depth-first; a module met again on the current path closes a circle
        if m in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        path.append(m)
        for t in sorted(graph[m]):
            walk(t)
        path.pop()
        done.add(m)

    for m in sorted(graph):
        walk(m)
