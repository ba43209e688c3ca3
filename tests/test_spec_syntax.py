"""Parse every TLA+ module in spec/ with the tree-sitter TLA+ grammar.

The helpers here are shared with the other tests/test_spec*.py modules: they
load the spec_check tool, parse modules, and read action and invariant names
from the parse tree.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import tree_sitter
import tree_sitter_tlaplus

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = ROOT / "spec"
MODULES = sorted(SPEC_DIR.glob("*.tla"))
with warnings.catch_warnings():
    # tree-sitter-tlaplus 1.5.0 hands over the grammar as an int pointer,
    # which tree-sitter 0.26 still accepts with a DeprecationWarning.
    warnings.simplefilter("ignore", DeprecationWarning)
    PARSER = tree_sitter.Parser(tree_sitter.Language(tree_sitter_tlaplus.language()))


def load_spec_check() -> ModuleType:
    """Import tools/spec_check.py, which is a script and not a package module."""
    path = ROOT / "tools" / "spec_check.py"
    spec = importlib.util.spec_from_file_location("spec_check", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["spec_check"] = module
    spec.loader.exec_module(module)
    return module


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """Yield node and all its descendants, depth first."""
    yield node
    for child in node.children:
        yield from walk(child)


def syntax_errors(source: bytes, name: str) -> list[str]:
    """Return "file:line:column: message" for each syntax error in source."""
    tree = PARSER.parse(source)
    errors = []
    for node in walk(tree.root_node):
        if node.type == "ERROR" or node.is_missing:
            line, column = node.start_point
            problem = f"missing {node.type}" if node.is_missing else "syntax error"
            errors.append(f"{name}:{line + 1}:{column + 1}: {problem}")
    return errors


def text(node: tree_sitter.Node) -> str:
    assert node.text is not None
    return node.text.decode("utf-8")


def operator_definitions(path: Path) -> dict[str, tree_sitter.Node]:
    """Return the top-level operator definitions of a module, by name."""
    tree = PARSER.parse(path.read_bytes())
    definitions = {}
    for node in walk(tree.root_node):
        if node.type == "operator_definition":
            name = node.child_by_field_name("name") or node.named_children[0]
            definitions[text(name)] = node
    return definitions


def spec_definitions() -> dict[str, tree_sitter.Node]:
    """Return the operator definitions of every spec module except MC_* configurations."""
    definitions: dict[str, tree_sitter.Node] = {}
    for path in MODULES:
        if not path.name.startswith("MC_"):
            definitions.update(operator_definitions(path))
    return definitions


def spec_invariants() -> set[str]:
    """Return the spec's invariants: the definitions whose names end in Inv."""
    return {name for name in spec_definitions() if name.endswith("Inv")}


def _action_name(node: tree_sitter.Node) -> str | None:
    """Return the action applied by one disjunct of Next, under its quantifiers.

    A disjunct is an action application, possibly under \\E quantifiers and
    after guard conjuncts (`StoreUp(m) /\\ HandleWrite(m)`): the action is the
    last conjunct.
    """
    while node.type == "bounded_quantification":
        node = node.named_children[-1]
    if node.type == "bound_infix_op" and any(c.type == "land" for c in node.children):
        node = node.named_children[-1]
    if node.type == "bound_op":
        return text(node.named_children[0])
    if node.type == "identifier_ref":
        return text(node)
    return None


def spec_actions() -> set[str]:
    """Return the actions that Next in Cluster.tla applies."""
    next_definition = operator_definitions(SPEC_DIR / "Cluster.tla")["Next"]
    actions = set()
    for node in walk(next_definition):
        if node.type == "disj_item":
            name = _action_name(node.named_children[-1])
            if name is not None:
                actions.add(name)
    return actions


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_spec_module_parses(path: Path) -> None:
    errors = syntax_errors(path.read_bytes(), str(path.relative_to(ROOT)))

    assert errors == []


def test_syntax_error_reports_line_and_column() -> None:
    broken = b"---- MODULE Broken ----\nFoo == 1\nBar == 1 + * 2\nBaz == 2\n====\n"

    errors = syntax_errors(broken, "Broken.tla")

    assert errors, "the broken module parsed without errors"
    assert errors[0] == "Broken.tla:3:12: syntax error"


def test_spec_has_modules() -> None:
    names = {path.name for path in MODULES}

    assert {"Cluster.tla", "Cluster_typedefs.tla", "MC_3x2.tla", "MC_3x3.tla"} <= names
