"""One import path per name: every public name of the evaluator's modules has one home.

A module's ``__all__`` lists only what the module itself defines, so a function is never
importable as two different module paths; the one exception is the package's
``autometa/meta/__init__.py``, the user-facing path, which gathers names from their homes.
The torch-free homes below the package (``autometa._maml_config``, ``autometa._meta_learners``)
count as modules of the evaluator here.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import autometa
import autometa.evaluation
import autometa.meta

PACKAGE = Path(autometa.__file__).parent
MODULES = {
    f"autometa.meta.{path.stem}": path
    for path in sorted((PACKAGE / "meta").glob("*.py"))
    if path.name != "__init__.py"
} | {
    "autometa._maml_config": PACKAGE / "_maml_config.py",
    "autometa._meta_learners": PACKAGE / "_meta_learners.py",
}


def _top_level(path: Path) -> tuple[list[str], set[str]]:
    """``(__all__, names the module defines)``: its functions, classes and assigned names."""
    tree = ast.parse(path.read_text())
    exported: list[str] = []
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if "__all__" in names:
                exported = list(ast.literal_eval(node.value))
            defined.update(names)
    return exported, defined


EXPORTS = {module: _top_level(path) for module, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_module_exports_only_what_it_defines(module):
    exported, defined = EXPORTS[module]
    assert exported, f"{module} has no literal __all__"
    assert [name for name in exported if name not in defined] == []


def test_no_name_is_exported_by_two_modules():
    homes = defaultdict(list)
    for module, (exported, _) in EXPORTS.items():
        for name in exported:
            homes[name].append(module)
    assert {name: where for name, where in homes.items() if len(where) > 1} == {}


def test_the_package_names_come_from_their_homes():
    """``autometa.meta`` re-exports each name from the one module that defines it (the
    evaluator contract's names from ``autometa.evaluation``)."""
    homes = {name: module for module, (exported, _) in EXPORTS.items() for name in exported}
    homes |= dict.fromkeys(autometa.evaluation.__all__, "autometa.evaluation")
    tree = ast.parse((PACKAGE / "meta" / "__init__.py").read_text())
    imported = {
        alias.asname or alias.name: node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    wrong = {
        name: imported.get(name)
        for name in autometa.meta.__all__
        if imported.get(name) != homes.get(name)
    }
    assert wrong == {}
    assert set(autometa.meta.__all__) <= set(imported)
