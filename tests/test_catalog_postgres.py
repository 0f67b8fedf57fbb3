"""The catalog in PostgreSQL through the composition root (``SOHOA_DATABASE_URL``): the one switch, the settings it
cannot go with (the embedded search index), and a whole digitisation run with the catalog in a real PostgreSQL and
the search index in the Elasticsearch stand-in, then ``sohoa search`` and ``sohoa show`` finding the documents."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from flows.wiring import (
    archive_has_catalog,
    build_search_index,
    catalog_target,
    open_archive_catalog,
    open_catalog,
    open_existing_catalog,
    open_file_records,
)
from interfaces.cli import main
from schemas.errors import ConfigError, ExitCode, NotFoundError
from schemas.settings import Settings
from storage.files import FileRecord
from tests.conftest import SAMPLE_BATCH, catalogued, sample_expected
from tests.tools.postgres import PostgresServer


def _settings(archive: Path, url: str, search_index: str = "elasticsearch") -> Settings:
    return Settings(archive=archive, database_url=url, search_index=search_index)  # type: ignore[arg-type]


def _sqlite_settings(archive: Path) -> Settings:
    return Settings(archive=archive, database_url=None, search_index="sqlite")  # whatever the environment says


def test_without_a_url_the_catalog_is_the_archive_file(tmp_path: Path) -> None:
    settings = _sqlite_settings(tmp_path / "kho")
    assert catalog_target(settings) == tmp_path / "kho" / "catalog.sqlite"
    assert archive_has_catalog(settings) is False and open_existing_catalog(settings) is None
    open_catalog(settings).close()
    assert (tmp_path / "kho" / "catalog.sqlite").is_file() and archive_has_catalog(settings) is True


def test_a_url_puts_catalog_and_records_in_postgres(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.create_database(f"wire_{tmp_path.name[-24:].lower()}")
    settings = _settings(tmp_path / "kho", url)
    assert catalog_target(settings) == url
    assert archive_has_catalog(settings) is False and open_existing_catalog(settings) is None
    with pytest.raises(NotFoundError):
        open_archive_catalog(settings)
    catalog = open_catalog(settings)
    try:
        assert catalog.dialect == "postgres" and catalog.indexer is None
    finally:
        catalog.close()
    records = open_file_records(settings)
    try:
        records.save(FileRecord(file_code="H.1", title="Hồ sơ trong PostgreSQL"))
    finally:
        records.close()
    assert archive_has_catalog(settings) is True
    reader = open_archive_catalog(settings)
    reader.close()
    assert not (tmp_path / "kho" / "catalog.sqlite").exists()  # nothing of the catalog in the archive folder
    with __import__("psycopg").connect(url) as conn:
        assert conn.execute("SELECT title FROM ho_so").fetchall() == [("Hồ sơ trong PostgreSQL",)]


def test_text_columns_compare_bytewise_in_postgres_as_in_sqlite(postgres: PostgresServer, tmp_path: Path) -> None:
    """Orderings (entries, filed, hồ sơ) and ISO-time comparisons must not depend on the server's locale."""
    url = postgres.create_database(f"coll_{tmp_path.name[-24:].lower()}")
    settings = _settings(tmp_path / "kho", url)
    open_catalog(settings).close()
    open_file_records(settings).close()
    with __import__("psycopg").connect(url) as conn:
        rows = conn.execute("SELECT table_name, column_name, collation_name FROM information_schema.columns "
                            "WHERE table_schema = current_schema() AND data_type = 'text'").fetchall()
    assert {(t, c) for t, c, _ in rows} >= {("documents", "source"), ("documents", "file_code"), ("ho_so", "title")}
    assert {coll for _, _, coll in rows} == {"C"}


def _vietnamese(error: ConfigError) -> None:
    assert str(error) == unicodedata.normalize("NFC", str(error)) and error.fix
    assert error.fix == unicodedata.normalize("NFC", error.fix)


def test_a_url_with_the_embedded_search_index_is_a_config_error(postgres: PostgresServer, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    url = postgres.create_database(f"wire_{tmp_path.name[-24:].lower()}")
    settings = _settings(tmp_path / "kho", url, search_index="sqlite")
    for build in (open_catalog, open_existing_catalog, open_file_records, build_search_index, catalog_target):
        with pytest.raises(ConfigError) as caught:
            build(settings)  # type: ignore[operator]
        assert "SOHOA_SEARCH_INDEX=elasticsearch" in str(caught.value.fix)
        _vietnamese(caught.value)
    monkeypatch.setenv("SOHOA_DATABASE_URL", url)
    monkeypatch.setenv("SOHOA_SEARCH_INDEX", "sqlite")
    assert main(["status", "--archive", str(tmp_path / "kho")]) == ExitCode.CONFIG
    assert main(["search", "nghi quyet", "--archive", str(tmp_path / "kho")]) == ExitCode.CONFIG
    with __import__("psycopg").connect(url) as conn:  # and nothing was created there
        assert conn.execute("SELECT to_regclass('documents')").fetchone() == (None,)


def test_a_url_that_is_not_postgres_or_unreachable_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        catalog_target(_settings(tmp_path, "mysql://sohoa@localhost/sohoa"))
    _vietnamese(caught.value)
    assert not list(tmp_path.iterdir())  # no file named after the URL
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(ConfigError) as caught:
        open_catalog(_settings(tmp_path, f"postgresql://sohoa:mat-khau-bi-mat@127.0.0.1:{port}/sohoa"))
    _vietnamese(caught.value)
    assert "mat-khau-bi-mat" not in str(caught.value) + str(caught.value.fix)  # the password is never shown


# --- end to end --------------------------------------------------------------------------------------------------


def _digitise_into_postgres(postgres: PostgresServer, osmem: Any, root: Path,
                            patch: pytest.MonkeyPatch) -> tuple[Path, str, dict[str, Any], int]:
    """The bundled sample batch digitised through the CLI with the catalog in PostgreSQL and the search index in
    the Elasticsearch stand-in; the settings stay in ``patch``'s environment for the rest of the test."""
    from storage import search_es

    batch, archive, report = root / "batch", root / "archive", root / "report.json"
    shutil.copytree(SAMPLE_BATCH, batch)
    url = postgres.create_database("catalog_e2e")
    plain_init = search_es.ElasticsearchIndex.__init__

    def init(self: object, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("node_class", osmem.node_class)  # the stand-in's content-type quirk (test only)
        plain_init(self, *args, **kwargs)  # type: ignore[arg-type]

    patch.setattr(search_es.ElasticsearchIndex, "__init__", init)
    patch.setenv("SOHOA_DATABASE_URL", url)
    patch.setenv("SOHOA_SEARCH_INDEX", "elasticsearch")
    patch.setenv("SOHOA_ES_URL", osmem.url)
    patch.setenv("SOHOA_ES_INDEX", "sohoa-catalog-e2e")
    code = main(["digitise", str(batch), "--archive", str(archive), "--report", str(report), "--quiet"])
    return archive, url, json.loads(report.read_text(encoding="utf-8")), code


def _cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(list(args)) == 0
    return dict(json.loads(capsys.readouterr().out))


@pytest.mark.slow
def test_digitise_catalogues_into_postgres_and_search_and_show_find_the_documents(
    prefect_api: None, postgres: PostgresServer, osmem: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive_dir, url, report, code = _digitise_into_postgres(postgres, osmem, tmp_path, monkeypatch)
    assert code == 0, report
    expected = sample_expected()
    docs = {d["source"]: d for d in report["documents"]}
    assert all(docs[str(e["source"])]["status"] in ("done", "needs_review") for e in expected)
    assert catalogued(archive_dir, url) == len(expected)
    sqlite_file = archive_dir / "catalog.sqlite"  # the batch registry may still live there: never documents
    if sqlite_file.exists():
        with sqlite3.connect(f"file:{sqlite_file}?mode=ro", uri=True) as conn:
            assert conn.execute("SELECT name FROM sqlite_master WHERE name IN ('documents', 'search_fts')").fetchall() \
                == []
    archive = str(archive_dir)
    for exp in expected:
        doc_id = str(docs[str(exp["source"])]["id"])
        number = f"{exp['code_number']}-{exp['code_notation']}"
        found = _cli_json(capsys, "search", number, "--archive", archive, "--json")
        assert found["hits"] and found["hits"][0]["id"] == doc_id, (number, found)
        shown = _cli_json(capsys, "show", doc_id, "--archive", archive, "--json")
        assert shown["id"] == doc_id and shown["source"] == exp["source"]
        assert [p["number"] for p in shown["pages"]] == list(range(1, int(exp["pages"]) + 1))
    again = tmp_path / "again.json"  # a second run finds them done in PostgreSQL: no new OCR
    assert main(["digitise", str(tmp_path / "batch"), "--archive", archive, "--report",
                 str(again), "--quiet"]) == 0
    rerun = json.loads(again.read_text(encoding="utf-8"))
    assert rerun["pages_processed"] == 0 and all(d["skipped"] for d in rerun["documents"])
    assert catalogued(archive_dir, url) == len(expected)


def test_the_audit_sees_the_documents_of_a_postgres_catalog(postgres: PostgresServer, tmp_path: Path) -> None:
    """The audit's "an archive with documents but no trail" and "trail began after the first document" checks read
    the catalog where it is: in PostgreSQL, not an absent catalog.sqlite (which would hide a wiped trail)."""
    from flows.audit_anchor import catalog_facts, documents_in_catalog
    from tests.test_catalog_contract import _key, _manifest

    url = postgres.create_database(f"audit_{tmp_path.name[-24:].lower()}")
    settings = _settings(tmp_path / "kho", url)
    assert catalog_facts(settings) == (0, None)
    with __import__("psycopg").connect(url) as conn:  # reading created nothing
        assert conn.execute("SELECT to_regclass('documents')").fetchone() == (None,)
    catalog = open_catalog(settings)
    try:
        catalog.commit_document(_manifest("aaa"), _key("aaa"))
        first = catalog.first_catalogued()
    finally:
        catalog.close()
    assert documents_in_catalog(settings) == 1 and first is not None
    assert catalog_facts(settings) == (1, first)
    assert documents_in_catalog(_sqlite_settings(tmp_path / "kho")) == 0  # the archive's own file: none
