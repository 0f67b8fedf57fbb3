from pathlib import Path

import pytest

from tests.tools.check_imports import cycles, import_graph, imported_modules, violations


def test_packages_respect_import_boundaries() -> None:
    assert violations() == []


def test_no_import_cycles_at_load_time() -> None:
    assert cycles(import_graph()) == []


def test_an_import_cycle_is_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "flows/__init__.py": "",
        "flows/a.py": "from flows.b import x\n",
        "flows/b.py": ("from typing import TYPE_CHECKING\nfrom flows import c\n"
                       "if TYPE_CHECKING:\n    from flows import a\n"),
        "flows/c.py": "import flows.a\n\ndef later():\n    from flows import b\n",
        "flows/d.py": "def later():\n    import flows.a\n",
    })
    assert cycles(import_graph(root)) == [["flows.a", "flows.b", "flows.c"]]


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, source in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root


@pytest.mark.parametrize(("rel", "source", "expected"), [
    ("interfaces/cli/documents.py", "from interfaces.web.app import create_app\n",
     "interfaces/cli/documents.py: interfaces.cli must not import interfaces.web.app"),
    ("interfaces/cli/web.py", "def f():\n    from interfaces.web import create_app\n",
     "interfaces/cli/web.py: interfaces.cli must not import interfaces.web"),
    ("interfaces/web/pages.py", "import interfaces.cli.common\n",
     "interfaces/web/pages.py: interfaces.web must not import interfaces.cli.common"),
    ("interfaces/web/pages.py", "from ..cli import main\n",
     "interfaces/web/pages.py: interfaces.web must not import interfaces.cli"),
    ("interfaces/cli/digitise.py", "from pipeline.load import read_batch_info\n",
     "interfaces/cli/digitise.py: interfaces must not import pipeline"),
    ("flows/run.py", "from interfaces.cli import main\n", "flows/run.py: flows must not import interfaces"),
])
def test_a_forbidden_import_is_reported(tmp_path: Path, rel: str, source: str, expected: str) -> None:
    root = _tree(tmp_path, {rel: source})
    assert expected in violations(root)


def test_the_web_command_may_start_the_server_only(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "interfaces/cli/web.py": "def f():\n    from interfaces.web.server import run_web\n",
        "interfaces/cli/batches.py": "from interfaces.cli.common import settings_of\nfrom flows import batches\n",
        "interfaces/web/app.py": "from interfaces.web.auth import reader\nfrom flows.access import Rule\n",
    })
    assert violations(root) == []
    (root / "interfaces/cli/accounts.py").write_text("from interfaces.web.server import run_web\n", encoding="utf-8")
    assert violations(root) == [f"interfaces/cli/accounts.py: interfaces.cli must not import {name}"
                                for name in ("interfaces.web.server", "interfaces.web.server.run_web")]


def test_relative_imports_resolve_to_their_package(tmp_path: Path) -> None:
    path = _tree(tmp_path, {"interfaces/cli/audit.py": "from . import common\nfrom .. import web\n"}) / \
        "interfaces/cli/audit.py"
    assert {"interfaces.cli.common", "interfaces.web"} <= imported_modules(path, tmp_path)
