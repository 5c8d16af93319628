"""The shape of the package, checked (the README's "How it works" and issue #12's targets):
a thin plugin.py, short functions, rooms that import each other one way only, torch only
under models/, and no pytest in the parts that must run without it."""

import ast
import pathlib
import re

PACKAGE = pathlib.Path(__file__).parent.parent / "pytest_rmbench"
DECLARATIVE = {("options.py", "add_options")}  # the option table: one long list on purpose
MAX_FUNCTION_LINES = 60


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def room(path: pathlib.Path) -> str:
    """The top-level module or folder a file belongs to: items, report, session, ..."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_rooms(path: pathlib.Path) -> set[str]:
    """Rooms this file imports with relative imports, at any depth in the file."""
    parts = path.relative_to(PACKAGE).parts
    depth = len(parts) - 1  # folders below the package
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            up = node.level - 1  # levels above the file's own folder
            base = list(parts[:depth])[: max(0, depth - up)] if up <= depth else []
            target = base + (node.module.split(".") if node.module else [])
            if target:
                found.add(target[0])
            else:  # `from .. import x`: x is a room (or a name in __init__)
                found.update(a.name for a in node.names)
    return {r for r in found if (PACKAGE / f"{r}.py").exists() or (PACKAGE / r).is_dir()}


def test_plugin_py_is_a_thin_table_of_hooks():
    lines = (PACKAGE / "plugin.py").read_text(encoding="utf-8").count("\n")
    assert lines < 200, f"plugin.py has {lines} lines: hooks should be one-liners into the RunSession"


def test_no_function_is_longer_than_sixty_lines():
    long = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                if size > MAX_FUNCTION_LINES and (path.name, node.name) not in DECLARATIVE:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({size} lines)")
    assert not long, "split these into named steps:\n" + "\n".join(long)


def test_rooms_import_each_other_one_way_only():
    edges = {}
    for path in modules():
        edges.setdefault(room(path), set()).update(imported_rooms(path) - {room(path)})
    both_ways = sorted({tuple(sorted((a, b))) for a, targets in edges.items() for b in targets if a in edges.get(b, ())})
    assert not both_ways, f"rooms that import each other: {both_ways}"


def test_torch_is_imported_only_under_models():
    pattern = re.compile(r"^\s*(import torch|from torch)", re.M)
    outside = [str(p.relative_to(PACKAGE)) for p in modules() if room(p) != "models" and pattern.search(p.read_text())]
    assert not outside, f"torch imported outside models/: {outside}"


def test_items_engine_storage_and_report_run_without_pytest():
    pattern = re.compile(r"^\s*(import pytest|from pytest|from _pytest)", re.M)
    rooms = {"items", "engine", "storage", "report", "text", "registry", "catalog"}
    found = [str(p.relative_to(PACKAGE)) for p in modules() if room(p) in rooms and pattern.search(p.read_text())]
    assert not found, f"pytest imported where plain data should do: {found}"
