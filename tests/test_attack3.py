"""Outside security review (attack3) of the PostgreSQL backends, the S3 inbox's local scratch and the facet cache:
each test shows one finding and stays as its regression test."""

from __future__ import annotations

import os
import sqlite3
import time
import traceback
from pathlib import Path

import pytest
from pydantic import SecretStr

from schemas.errors import ConfigError
from schemas.search import IndexEntry, SearchRequest
from schemas.settings import Settings
from storage.scratch import private_root, remove_expired

SECRET = "Tr0ng%zzBi-Mat"  # a password with a '%' not followed by two hex digits, as pasted into the URL


def _whole_error(exc: BaseException) -> str:
    """Everything a traceback of ``exc`` prints (its message and every chained cause), as a log would keep it."""
    return "".join(traceback.format_exception(exc))


@pytest.mark.parametrize("url", [
    f"postgresql://sohoa:{SECRET}@127.0.0.1:1/sohoa",  # libpq: invalid percent-encoded token: "<password>"
    f"postgresql://sohoa:{SECRET}@[::1/sohoa",  # libpq quotes the whole URI (an unclosed IPv6 bracket)
])
def test_database_url_error_never_shows_the_password(tmp_path: Path, url: str) -> None:
    """A SOHOA_DATABASE_URL libpq cannot parse is reported without the password: the driver's message quotes the
    password (or the whole URL), and it used to escape as a raw psycopg.ProgrammingError (a traceback on the
    console, in Prefect's logs of a scheduled run)."""
    from flows.wiring import open_batch_registry, open_catalog

    settings = Settings(archive=tmp_path / "archive", database_url=SecretStr(url), search_index="elasticsearch")
    for opener in (open_catalog, open_batch_registry):
        with pytest.raises(ConfigError) as caught:
            opener(settings)
        assert "Bi-Mat" not in _whole_error(caught.value)


def test_database_backup_url_error_never_shows_the_password(tmp_path: Path) -> None:
    """``sohoa backup``'s pg_dump step splits the password out of the same URL: its parse error hid nothing."""
    from flows.database_backup import split_password

    with pytest.raises(ConfigError) as caught:
        split_password(f"postgresql://sohoa:{SECRET}@127.0.0.1:5432/sohoa")
    assert "Bi-Mat" not in _whole_error(caught.value)


def test_scratch_dir_symlink_is_refused_not_followed(tmp_path: Path) -> None:
    """SOHOA_SCRATCH_DIR under a shared folder (/tmp, /scratch): another local user plants a symbolic link at its
    name pointing to a folder of the service account (here: the archive). ``scratch_path`` resolved the link, so
    the "refused when it is a symbolic link" check never saw it, and the start-up clean-up (``remove_expired``)
    deleted everything in the target older than the lease: the archive's catalog and objects."""
    archive = tmp_path / "archive"
    (archive / "objects").mkdir(parents=True)
    (archive / "catalog.sqlite").write_bytes(b"catalog")
    old = time.time() - 7 * 86400
    for entry in (archive / "objects", archive / "catalog.sqlite"):
        os.utime(entry, (old, old))
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    planted = shared / "sohoa-scratch"
    planted.symlink_to(archive, target_is_directory=True)

    settings = Settings(archive=archive, scratch_dir=planted)
    with pytest.raises(ConfigError):
        remove_expired(private_root(settings.scratch_path()), lease_s=settings.scratch_lease_s)
    assert (archive / "catalog.sqlite").exists() and (archive / "objects").is_dir()


def _entry(doc_id: str, organ: str, level: int) -> IndexEntry:
    classification = {0: None, 1: "Mật", 2: "Tối mật", 3: "Tuyệt mật"}[level]
    metadata = {"code_number": "1", "code_notation": "NQ/TU", "type_name": "Nghị quyết", "issued_date": "2001-05-02",
                "organ_name": organ, "subject": "về công tác", "signer": None, "classification": classification}
    return IndexEntry(id=doc_id, source=f"{doc_id}.pdf", batch="lo-1", status="done", metadata=metadata,
                      text="VĂN BẢN zabor kết thúc.", issued_date="2001-05-02", year=2001, secrecy_level=level)


def test_facet_columns_never_count_a_docid_with_another_documents_values(tmp_path: Path) -> None:
    """The column store trusts that a serial (``docid >> LEVEL_BITS``) is never given twice in a generation. The
    catalog file brought back in place from a copy (``cp backup/catalog.sqlite archive/``, SQLite's backup API:
    same inode, same generation, an older ``search_serial``) while the web app runs gives the next document the
    serial of one written after the copy: the arrays still held that one's values, so an unclassified document
    was counted with the facet values (organ, type, hồ sơ) of a Tuyệt mật one, at clearance 0."""
    from storage.search_sqlite import SqliteSearchIndex

    path, copy = tmp_path / "catalog.sqlite", tmp_path / "copy.sqlite"
    index = SqliteSearchIndex(path)
    try:
        index.upsert([_entry("cong-khai", "Văn phòng Thành ủy", 0)])
        with sqlite3.connect(path) as live, sqlite3.connect(copy) as saved:
            live.backup(saved)
        index.upsert([_entry("tuyet-mat", "Ban Nội chính mật", 3)])
        for _ in range(2):  # the second request with facets reads the arrays (the first is counted in SQL)
            index.search(SearchRequest(query="zabor", clearance=3, facets=True))
        with sqlite3.connect(copy) as saved, sqlite3.connect(path) as live:
            saved.backup(live)  # back in place: the same file
        index.upsert([_entry("moi", "Quận ủy Hải Châu", 0)])
        result = index.search(SearchRequest(query="zabor", clearance=0, facets=True))
        organs = {f.value for f in result.facets["organ_name"]}
        assert "Ban Nội chính mật" not in organs
    finally:
        index.close()


@pytest.mark.parametrize("where", ["archive", "archive/work", "."])
def test_scratch_dir_over_the_archive_is_refused(tmp_path: Path, where: str) -> None:
    """SOHOA_SCRATCH_DIR set to the archive folder, a folder in it or its parent (a slip in an .env file): the
    start-up clean-up took every entry there older than the lease for a crashed run's leftovers and deleted it
    (the catalog, the objects, the audit trail). The README says "never the archive folder": now it is refused."""
    archive = tmp_path / "archive"
    (archive / "objects").mkdir(parents=True)
    (archive / "catalog.sqlite").write_bytes(b"catalog")
    old = time.time() - 7 * 86400
    for entry in (archive / "objects", archive / "catalog.sqlite", archive):
        os.utime(entry, (old, old))
    settings = Settings(archive=archive, scratch_dir=tmp_path / where)
    with pytest.raises(ConfigError):
        remove_expired(private_root(settings.scratch_path()), lease_s=settings.scratch_lease_s)
    assert (archive / "catalog.sqlite").exists() and (archive / "objects").is_dir()
