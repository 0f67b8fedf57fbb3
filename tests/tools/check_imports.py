"""Import boundaries between sohoa's packages (run by ``make check`` and by the test suite).

    schemas     imports no other sohoa package
    pipeline    schemas only; no orchestration or storage SDKs (pure stages)
    aip         schemas only, as pipeline (archival packages: layout, METS, EAD, PREMIS)
    ocr_models  schemas only
    storage     schemas only
    flows       schemas, pipeline, ocr_models, storage (use cases, Prefect flows, the composition root)
    interfaces  flows, storage, schemas (the CLI and the web app: translate between people and use cases)
                interfaces.cli never imports interfaces.web, nor interfaces.web interfaces.cli, except that
                the ``sohoa web`` command (interfaces/cli/web.py) starts the server through ``interfaces.web.server``

and no cycles among modules' top-level imports (imports inside functions are deferred on purpose, mostly to keep
Prefect out of commands that do not run a flow).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {"schemas", "pipeline", "aip", "ocr_models", "storage", "flows", "interfaces"}
ALLOWED = {
    "schemas": set(),
    "pipeline": {"schemas"},
    "aip": {"schemas"},
    "ocr_models": {"schemas"},
    "storage": {"schemas"},
    "flows": {"schemas", "pipeline", "aip", "ocr_models", "storage"},
    "interfaces": {"flows", "storage", "schemas"},
}
FORBIDDEN_THIRD_PARTY = {
    "schemas": {"prefect", "minio", "elasticsearch", "sqlite3", "cv2", "subprocess"},
    "pipeline": {"prefect", "minio", "elasticsearch", "sqlite3", "subprocess", "pytesseract", "os"},
    "aip": {"prefect", "minio", "elasticsearch", "sqlite3", "subprocess", "pytesseract", "os"},
    "ocr_models": {"prefect", "minio", "elasticsearch", "sqlite3"},
    "storage": {"prefect", "cv2", "pytesseract"},
}
# the two interfaces stay apart: (importing package, imported package) -> the one module and import allowed
SEPARATE = {("interfaces.cli", "interfaces.web"): {"interfaces/cli/web.py": {"interfaces.web.server"}},
            ("interfaces.web", "interfaces.cli"): {}}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Dotted names of the modules a file imports (relative imports resolved; ``from a import b`` gives ``a.b``
    as well as ``a``, since ``b`` may be a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = _module_name(path, root) if path.name == "__init__.py" else _module_name(path, root).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            found |= _names_imported(node, package)
    return found


def _names_imported(node: ast.Import | ast.ImportFrom, package: str) -> set[str]:
    """The dotted names one import statement in ``package`` names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1] if package else []
        base = ".".join([*anchor, base] if base else anchor)
    if not base:
        return set()
    return {base} | {f"{base}.{alias.name}" for alias in node.names if alias.name != "*"}


def imported_roots(path: Path, root: Path = ROOT) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path, root)}


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _separation_violations(path: Path, root: Path) -> list[str]:
    rel = path.relative_to(root).as_posix()
    importer = _module_name(path, root)
    found = []
    for (source, target), exceptions in SEPARATE.items():
        if not _within(importer, source):
            continue
        allowed = exceptions.get(rel, set())
        direct = {name for name in imported_modules(path, root) if _within(name, target)}
        bad = sorted(name for name in direct if not any(_within(name, ok) for ok in allowed))
        found += [f"{rel}: {source} must not import {name}" for name in bad]
    return found


def violations(root: Path = ROOT) -> list[str]:
    found = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            for name in sorted(imported_roots(path, root)):
                if name in OURS and name != package and name not in allowed:
                    found.append(f"{rel}: {package} must not import {name}")
                if name in FORBIDDEN_THIRD_PARTY.get(package, set()):
                    found.append(f"{rel}: {package} must not import {name}")
            found += _separation_violations(path, root)
    return found


def _top_level_imports(path: Path, root: Path) -> set[str]:
    """Modules imported when ``path`` is imported (``if TYPE_CHECKING:`` blocks and function bodies excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = _module_name(path, root) if path.name == "__init__.py" else _module_name(path, root).rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                found.update(_names_imported(node, package))

    visit(tree.body)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Our modules and the modules of ours each imports at load time (the most specific module a name names)."""
    files = {_module_name(path, root): path for package in ALLOWED for path in (root / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets: set[str] = set()
        for imported in _top_level_imports(path, root):
            parts = imported.split(".")
            target = next((".".join(parts[:i]) for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in files), None)
            if target is not None and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def main() -> int:
    problems = violations() + [f"import cycle: {' -> '.join(c)}" for c in cycles(import_graph())]
    for line in problems:
        print(line)
    print("import boundaries: " + ("OK" if not problems else f"{len(problems)} violation(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
