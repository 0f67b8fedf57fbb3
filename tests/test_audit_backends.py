"""The audit trail (storage/audit.py) on SQLite and on a real PostgreSQL: the same chain, the same tampering
found, appenders in several processes (as on several hosts) extending one valid chain, and ``sohoa audit verify``
(flows/audit_verify.py) with ``SOHOA_DATABASE_URL``."""

from __future__ import annotations

import dataclasses
import multiprocessing
from pathlib import Path

import pytest
from pydantic import SecretStr

from flows.audit import ANCHOR_FILE, AUDIT_FILE, KEY_FILE, record, verify_audit
from schemas.settings import Settings
from storage.audit import AuditLog, AuditLogMissing, has_entries, load_or_create_key, trail_exists
from storage.db import open_database
from tests.test_audit import ACTORS, TAMPERING
from tests.tools.postgres import PostgresServer


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """``None``: the trail in ``tmp_path/audit.sqlite3``; else the URL of a PostgreSQL database of its own."""
    if request.param == "sqlite":
        return None
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"audit_{tmp_path.name[-24:].lower()}")


def _log(tmp_path: Path, database: str | None, entries: int = 6) -> bytes:
    key = load_or_create_key(tmp_path / KEY_FILE)
    log = AuditLog(tmp_path / AUDIT_FILE, key, database=database)
    for i in range(entries):
        log.append(actor=ACTORS[i % len(ACTORS)], action="search", source="10.0.0.7",
                   details={"query": f"nghị quyết {i}", "filters": {"year_from": 2000 + i}})
    log.close()
    return key


def _tamper(tmp_path: Path, database: str | None, *sql: str) -> None:
    db = open_database(database if database is not None else tmp_path / AUDIT_FILE)
    try:
        with db.transaction():
            for statement in sql:
                db.execute(statement)
    finally:
        db.close()


def test_a_trail_is_created_appended_and_read_back(tmp_path: Path, database: str | None) -> None:
    assert not trail_exists(tmp_path / AUDIT_FILE, database=database)
    assert not has_entries(tmp_path / AUDIT_FILE, database=database)
    with pytest.raises(AuditLogMissing):  # reading never creates it
        AuditLog(tmp_path / AUDIT_FILE, None, create=False, database=database)
    key = _log(tmp_path, database)
    assert trail_exists(tmp_path / AUDIT_FILE, database=database) and has_entries(tmp_path / AUDIT_FILE,
                                                                                 database=database)
    assert (tmp_path / AUDIT_FILE).exists() == (database is None)  # PostgreSQL: no SQLite file beside the archive
    log = AuditLog(tmp_path / AUDIT_FILE, key, create=False, database=database)
    try:
        entries = list(log.entries())
        assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
        assert [e.actor for e in log.entries(actor="lan")] == ["lan", "lan"]
        assert [e.seq for e in log.entries(newest_first=True, limit=2)] == [6, 5]
        assert [e.seq for e in log.entries(since=entries[2].at, until=entries[3].at)] == [3, 4]
        assert entries[0].details == {"query": "nghị quyết 0", "filters": {"year_from": 2000}}
        head = log.head()
        assert head is not None and head.seq == 6 and head.last == entries[-1].hash == log.hash_at(6)
        result = log.verify()
        assert result.ok and result.entries == 6 and result.anchors == 6  # one anchor-file line per append
    finally:
        log.close()


@pytest.mark.parametrize("how", list(TAMPERING))
def test_every_kind_of_tampering_is_found(tmp_path: Path, database: str | None, how: str) -> None:
    key = _log(tmp_path, database)
    log = AuditLog(tmp_path / AUDIT_FILE, key, database=database)
    assert log.verify().ok
    log.close()
    _tamper(tmp_path, database, *TAMPERING[how])
    log = AuditLog(tmp_path / AUDIT_FILE, key, database=database)
    result = log.verify()
    log.close()
    assert not result.ok, how


def _append_many(path: str, database: str | None, key: bytes, actor: str, count: int) -> None:
    log = AuditLog(Path(path), key, database=database)
    try:
        for n in range(count):
            log.append(actor=actor, action="search", details={"n": n})
    finally:
        log.close()


def test_appenders_in_several_processes_extend_one_valid_chain(tmp_path: Path, database: str | None) -> None:
    key = load_or_create_key(tmp_path / KEY_FILE)
    AuditLog(tmp_path / AUDIT_FILE, key, database=database).close()  # created once, as a first run would
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(tmp_path / AUDIT_FILE), database, key, actor, 30))
               for actor in ("may-a", "may-b", "may-c")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    log = AuditLog(tmp_path / AUDIT_FILE, key, create=False, database=database)
    try:
        result = log.verify()
        entries = list(log.entries())
    finally:
        log.close()
    assert result.ok, result.problems
    assert [e.seq for e in entries] == list(range(1, 91))
    for actor in ("may-a", "may-b", "may-c"):  # every process's appends, each in its own order
        assert [e.details["n"] for e in entries if e.actor == actor] == list(range(30))
    assert result.anchors == 90  # every append's anchor line, none torn


def test_sohoa_audit_verify_reads_the_configured_trail(tmp_path: Path, database: str | None) -> None:
    settings = Settings(archive=tmp_path / "kho", database_url=SecretStr(database) if database else None)
    for n in range(3):
        record(settings, "search", details={"query": f"q{n}"}, actor="lan")
    result = verify_audit(settings)
    assert result.ok and result.entries == 3, result.problems
    assert (settings.archive_path() / AUDIT_FILE).exists() == (database is None)
    assert (settings.archive_path() / ANCHOR_FILE).stat().st_size > 0  # the anchor stays beside the archive
    db = open_database(database if database is not None else settings.archive_path() / AUDIT_FILE)
    try:
        db.execute("UPDATE audit_entries SET actor = 'ai-do' WHERE seq = 2")
    finally:
        db.close()
    tampered = verify_audit(settings)
    assert not tampered.ok and {p["kind"] for p in tampered.problems} >= {"modified"}


def test_dropped_tables_are_found(tmp_path: Path, database: str | None) -> None:
    settings = Settings(archive=tmp_path / "kho", database_url=SecretStr(database) if database else None)
    record(settings, "search", details={"query": "q"}, actor="lan")
    target = database if database is not None else settings.archive_path() / AUDIT_FILE
    db = open_database(target)
    try:
        db.execute("DROP TABLE audit_head")
        assert {p["kind"] for p in verify_audit(settings).problems} >= {"dropped"}
        db.execute("DROP TABLE audit_entries")
        db.execute("DROP TABLE audit_store_anchor")
    finally:
        db.close()
    wiped = verify_audit(settings)  # SQLite: tables gone from the file; PostgreSQL: no trail in the database
    assert not wiped.ok and {p["kind"] for p in wiped.problems} & {"dropped", "missing"}
    fixes = {str(p.get("fix")) for p in wiped.problems}  # the fix-it hint names where the trail is restored from
    assert all(("pg_dump" in fix) == (database is not None) for fix in fixes), fixes
    assert trail_exists(settings.archive_path() / AUDIT_FILE, database=database)  # the anchor file remains


def test_a_process_that_only_builds_services_knows_where_the_trail_lives(postgres: PostgresServer,
                                                                          tmp_path: Path) -> None:
    """A worker that never appended still checks corrections read from the store against the trail in
    PostgreSQL (``AuditedCorrections`` only knows the archive's folder): building the services notes the URL."""
    from flows import audit_anchor
    from flows.wiring import build_services
    from schemas.settings import Settings

    url = postgres.create_database(f"svc_{tmp_path.name}".lower())
    archive = tmp_path / "archive"
    settings = Settings(archive=archive, database_url=url, search_index="elasticsearch",  # type: ignore[arg-type]
                        es_url="http://127.0.0.1:9")
    audit_anchor.TRAIL_DATABASES.pop(archive.resolve(), None)
    services = build_services(settings)
    try:
        assert audit_anchor.database_of(archive) == url
    finally:
        services.close()
def test_a_host_without_its_own_anchor_file_relies_on_the_store_anchor_only_for_a_shared_trail(
    tmp_path: Path, database: str | None
) -> None:
    """With the trail in PostgreSQL every host appends to one chain and anchors its appends in its own
    ``audit.anchor``: a host that never appended has no file, which is no sign of tampering when the store's
    anchor vouches for the chain (and that anchor still catches a chain cut back). In one SQLite archive the anchor
    file sits beside the trail: its absence is a deleted anchor file, store anchor or not."""
    host_a, host_b = tmp_path / "host-a", tmp_path / "host-b"
    host_a.mkdir()
    host_b.mkdir()
    key = _log(host_a, database)  # host A appended: its anchor file, the chain's head
    writer = AuditLog(host_a / AUDIT_FILE, key, create=False, database=database)
    head = writer.head()
    writer.close()
    assert head is not None and (host_a / ANCHOR_FILE).stat().st_size > 0
    store_anchor = dataclasses.replace(head, source="kho s3://sohoa (audit/anchor.json)", line=None)

    def verify_on_host_b(*anchors: object) -> set[str]:
        log = AuditLog(host_a / AUDIT_FILE, key, create=False, anchor=host_b / ANCHOR_FILE,
                       database=database)  # host B: the same trail, its own (absent) anchor file
        try:
            return {str(p["kind"]) for p in log.verify(anchors).problems}  # type: ignore[arg-type]
        finally:
            log.close()

    assert verify_on_host_b() == {"anchor"}  # nothing outside the database vouches for the chain: said, both
    assert verify_on_host_b(store_anchor) == (set() if database else {"anchor"})
    _tamper(host_a, database, "DELETE FROM audit_entries WHERE seq > 4")  # the chain cut back (head too)
    _tamper(host_a, database, "DELETE FROM audit_head")
    assert "truncated" in verify_on_host_b(store_anchor)
    assert not (host_b / ANCHOR_FILE).exists()  # verifying wrote nothing
