"""Module and function sizes (run by ``make check`` and by the test suite).

A module over ``MAX_MODULE_LINES`` lines or a function over ``MAX_FUNCTION_LINES`` lines (its whole body,
nested functions included, from ``def`` to its last line) is a violation unless ``ALLOWED`` states why it is
kept whole. Keys of ``ALLOWED``: a module path (``flows/export.py``) or a function
(``flows/export.py:export_rows``, nested and methods dotted: ``module.py:Class.method``).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "pipeline", "aip", "ocr_models", "storage", "flows", "interfaces")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

# path or "path:qualified.name" -> the stated reason it may stay over the limit
ALLOWED: dict[str, str] = {}

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def _functions(node: ast.AST, prefix: str = "") -> Iterator[tuple[str, FunctionNode]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, FunctionNode):
            name = prefix + child.name
            yield name, child
            yield from _functions(child, name + ".")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, prefix + child.name + ".")
        else:
            yield from _functions(child, prefix)


def module_paths() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def oversized() -> list[tuple[str, str]]:
    """Every (key, description) over a limit, allowed or not."""
    found: list[tuple[str, str]] = []
    for path in module_paths():
        rel = path.relative_to(ROOT).as_posix()
        source = path.read_text(encoding="utf-8")
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append((rel, f"{rel}: module has {lines} lines (> {MAX_MODULE_LINES})"))
        for name, fn in _functions(ast.parse(source, rel)):
            length = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if length > MAX_FUNCTION_LINES:
                key = f"{rel}:{name}"
                found.append((key, f"{key}: function has {length} lines (> {MAX_FUNCTION_LINES})"))
    return found


def violations() -> list[str]:
    """Oversized modules and functions without a stated reason in ``ALLOWED``."""
    return [line for key, line in oversized() if key not in ALLOWED]


def stale_allowances() -> list[str]:
    """``ALLOWED`` entries that no longer name anything oversized (to be removed)."""
    present = {key for key, _ in oversized()}
    return [f"{key}: allowed but no longer oversized" for key in ALLOWED if key not in present]


def main() -> int:
    problems = violations() + stale_allowances()
    for line in problems:
        print(line)
    print("sizes: " + ("OK" if not problems else f"{len(problems)} violation(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
