"""One composition root (``flows.wiring``): it alone constructs the backends (catalog, object stores, search indexes,
OCR engines, audit trail, accounts database, batch registry) from one ``Settings``; ``schemas.settings`` alone reads
the environment (with ``flows.prefect_env`` for Prefect's and Dask's own variables); and the services of a process
are cached by the whole settings, not by the archive alone."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "pipeline", "aip", "ocr_models", "storage", "flows", "interfaces")
COMPOSITION_ROOT = "flows/wiring.py"
# backend class -> the package that defines it (it may build its own, e.g. a store opening a sub-store)
BACKENDS = {
    "SqliteCatalog": "storage", "DirectoryObjectStore": "storage", "S3ObjectStore": "storage",
    "ElasticsearchIndex": "storage", "SqliteSearchIndex": "storage", "AuditLog": "storage", "WebDb": "storage",
    "BatchRegistry": "storage", "TesseractEngine": "ocr_models", "TesserocrEngine": "ocr_models",
}
ENVIRONMENT_READERS = {"schemas/settings.py", "flows/prefect_env.py"}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            yield relative, ast.parse(path.read_text(encoding="utf-8"), filename=relative)


def called_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def test_only_the_composition_root_constructs_backends() -> None:
    found = []
    for relative, tree in modules():
        if relative == COMPOSITION_ROOT:
            continue
        for node in ast.walk(tree):
            name = called_name(node) if isinstance(node, ast.Call) else None
            if name in BACKENDS and relative.split("/")[0] != BACKENDS[name]:
                found.append(f"{relative}:{node.lineno}: {name}(...)")
    assert found == [], "backends are built by flows.wiring only:\n" + "\n".join(found)


def environment_uses(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every use of ``os.environ`` / ``os.getenv`` / ``os.putenv`` except handing the whole environment to a child
    process (``{**os.environ, ...}``): that passes it on, it reads no setting."""
    passed_on = {id(value) for node in ast.walk(tree) if isinstance(node, ast.Dict)
                 for key, value in zip(node.keys, node.values, strict=True) if key is None}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            for alias in node.names:
                if alias.name in ("environ", "getenv", "putenv"):
                    yield node.lineno, f"from os import {alias.name}"
        if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv")
                and isinstance(node.value, ast.Name) and node.value.id == "os" and id(node) not in passed_on):
            yield node.lineno, f"os.{node.attr}"


def test_only_settings_and_the_prefect_environment_read_the_environment() -> None:
    found = [f"{relative}:{line}: {what}" for relative, tree in modules() if relative not in ENVIRONMENT_READERS
             for line, what in environment_uses(tree)]
    assert found == [], "the environment is read by schemas.settings (and flows.prefect_env) only:\n" + "\n".join(
        found)


def test_the_checks_see_what_they_look_for() -> None:
    """The two walks above would catch a construction and an environment read (they are not vacuous)."""
    tree = ast.parse("import os\nfrom storage.catalog import SqliteCatalog\nc = SqliteCatalog(p)\n"
                     "a = os.environ.get('SOHOA_X')\nb = os.getenv('Y')\nenv = {**os.environ, 'K': '1'}\n")
    assert [called_name(n) for n in ast.walk(tree) if isinstance(n, ast.Call)].count("SqliteCatalog") == 1
    assert sorted(environment_uses(tree)) == [(4, "os.environ"), (5, "os.getenv")]


def test_web_settings_are_part_of_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from interfaces.web.config import WebSettings

    monkeypatch.setenv("SOHOA_WEB_PAGE_SIZE", "25")
    monkeypatch.setenv("SOHOA_TRUSTED_PROXIES", " 10.0.0.0/24 , 127.0.0.1")
    settings = Settings()
    assert WebSettings is Settings
    assert settings.web_page_size == 25 and settings.trusted_proxy_list == ["10.0.0.0/24", "127.0.0.1"]
    monkeypatch.setenv("SOHOA_TRUSTED_PROXIES", "proxy.local")
    with pytest.raises(ValueError, match="SOHOA_TRUSTED_PROXIES"):
        Settings()


def test_services_are_cached_by_the_whole_settings(tmp_path: Path) -> None:
    from flows.wiring import close_all, services_for, settings_key

    archive = tmp_path / "archive"
    base = Settings(archive=archive, workers=1, ocr_seal_lines=False)
    try:
        first = services_for(base)
        assert services_for(base.model_copy()) is first  # equal settings: the same services
        assert services_for(Settings(archive=archive, workers=1, ocr_seal_lines=False)) is first
        other = services_for(base.model_copy(update={"workers": 2}))  # same archive, other settings
        assert other is not first and other.settings.workers == 2 and other.page_pool is not first.page_pool
        assert services_for(base.model_copy(update={"psm": 6})) is not first
    finally:
        close_all()
    # a relative archive path and the absolute one are the same archive; secrets count without being shown
    relative = Settings(archive=Path(".") / "archive")
    assert settings_key(relative) == settings_key(Settings(archive=relative.archive_path()))
    secret_a = base.model_copy(update={"s3_secret_key": SecretStr("a")})
    secret_b = base.model_copy(update={"s3_secret_key": SecretStr("b")})
    assert settings_key(secret_a) != settings_key(secret_b) and "\"a\"" not in settings_key(secret_a)
