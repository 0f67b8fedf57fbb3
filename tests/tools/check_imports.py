"""Import boundaries between sohoa's packages (run by ``make check`` and by the test suite).

    schemas     imports no other sohoa package
    pipeline    schemas only; no orchestration or storage SDKs (pure stages)
    ocr_models  schemas only
    storage     schemas only
    flows       schemas, pipeline, ocr_models, storage (use cases, Prefect flows, the composition root)
    interfaces  flows, storage, schemas (the CLI and the web app: translate between people and use cases)
                interfaces.cli never imports interfaces.web, nor interfaces.web interfaces.cli, except that
                the ``sohoa web`` command starts the server through ``interfaces.web.server``
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OURS = {"schemas", "pipeline", "ocr_models", "storage", "flows", "interfaces"}
ALLOWED = {
    "schemas": set(),
    "pipeline": {"schemas"},
    "ocr_models": {"schemas"},
    "storage": {"schemas"},
    "flows": {"schemas", "pipeline", "ocr_models", "storage"},
    "interfaces": {"flows", "storage", "schemas"},
}
FORBIDDEN_THIRD_PARTY = {
    "schemas": {"prefect", "minio", "elasticsearch", "sqlite3", "cv2", "subprocess"},
    "pipeline": {"prefect", "minio", "elasticsearch", "sqlite3", "subprocess", "pytesseract", "os"},
    "ocr_models": {"prefect", "minio", "elasticsearch", "sqlite3"},
    "storage": {"prefect", "cv2", "pytesseract"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def violations() -> list[str]:
    found = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for root in sorted(imported_roots(path)):
                rel = path.relative_to(ROOT)
                if root in OURS and root != package and root not in allowed:
                    found.append(f"{rel}: {package} must not import {root}")
                if root in FORBIDDEN_THIRD_PARTY.get(package, set()):
                    found.append(f"{rel}: {package} must not import {root}")
    return found


def main() -> int:
    problems = violations()
    for line in problems:
        print(line)
    print("import boundaries: " + ("OK" if not problems else f"{len(problems)} violation(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
