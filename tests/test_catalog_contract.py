"""The catalog (storage/catalog.py) and the hồ sơ records (storage/files.py) keep one contract on SQLite (the embedded
default, ``ARCHIVE/catalog.sqlite``) and on a real PostgreSQL (``SOHOA_DATABASE_URL``): every test runs on both."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.document import DocumentManifest, PageRecord
from schemas.metadata import DocumentMetadata
from schemas.reasons import ReasonCode, reason
from storage.catalog import Catalog, SqliteCatalog, catalog_exists
from storage.db import open_database
from storage.files import DatabaseFileRecords, FileRecord
from tests.tools.postgres import PostgresServer

IDENTITY: dict[str, object] = {"organ_name": "Thành ủy Đà Nẵng", "type_name": "Nghị quyết", "code_number": "15",
                               "code_notation": "NQ/TU", "issued_date": "2020-02-01"}


def _manifest(doc_id: str, *, batch: str = "b", source: str | None = None,
              created_at: str = "2026-01-01T00:00:00+00:00", file_code: str | None = None,
              sequence: int | None = None, status: str = "done", **md: object) -> DocumentManifest:
    return DocumentManifest(
        id=doc_id, sha256=doc_id * 4, source=source or f"{doc_id}.tif", batch=batch, status=status,  # type: ignore[arg-type]
        created_at=created_at,
        review_reasons=[reason(ReasonCode.PAGE_UNREADABLE, page=1)] if status == "needs_review" else [],
        pages=[PageRecord(number=1, text="NGHỊ QUYẾT", confidence=0.9, width=10, height=10, dpi=300, words=1)],
        metadata=DocumentMetadata(**md), files=[], provenance={},  # type: ignore[arg-type]
        file_code=file_code, sequence=sequence,
    )


def _key(doc_id: str) -> str:
    return f"documents/{doc_id}/document.json"


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a catalog lives: a fresh SQLite file, or a fresh database of the session's PostgreSQL cluster."""
    if request.param == "sqlite":
        return tmp_path / "catalog.sqlite"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"cat_{tmp_path.name[-24:].lower()}")


@pytest.fixture()
def catalog(target: Path | str) -> Iterator[Catalog]:
    cat = Catalog(target)
    try:
        yield cat
    finally:
        cat.close()


def test_commit_get_and_replace_keep_every_field(catalog: Catalog) -> None:
    md = IDENTITY | {"subject": "Về chuyển đổi số 50% hồ sơ?"}  # '%' and '?' pass through both drivers
    catalog.commit_document(_manifest("aaa", status="needs_review", file_code="H.1", sequence=2, **md), _key("aaa"))
    got = catalog.get("aaa")
    assert got is not None
    assert (got.id, got.sha256, got.source, got.batch, got.status, got.pages) == \
        ("aaa", "aaa" * 4, "aaa.tif", "b", "needs_review", 1)
    assert got.metadata["subject"] == "Về chuyển đổi số 50% hồ sơ?" and got.metadata["organ_name"] == "Thành ủy Đà Nẵng"
    assert got.review_reasons == [reason(ReasonCode.PAGE_UNREADABLE, page=1)]
    assert (got.manifest_key, got.file_code, got.sequence) == (_key("aaa"), "H.1", 2)
    catalog.commit_document(_manifest("aaa", status="done", **md), _key("aaa"))  # the same id: replaced
    again = catalog.get("aaa")
    assert again is not None and again.status == "done" and again.file_code is None and again.review_reasons == []
    assert catalog.count() == 1 and catalog.get("zzz") is None


def test_entries_batches_and_filed_are_ordered(catalog: Catalog) -> None:
    catalog.commit_document(_manifest("c1", batch="lo-2", source="b.tif", file_code="H.2", sequence=1), _key("c1"))
    catalog.commit_document(_manifest("c2", batch="lo-1", source="z.tif", file_code="H.1", sequence=2), _key("c2"))
    catalog.commit_document(_manifest("c3", batch="lo-1", source="a.tif", file_code="H.1", sequence=1), _key("c3"))
    catalog.commit_document(_manifest("c4", batch="lo-2", source="a.tif"), _key("c4"))
    assert [e.id for e in catalog.entries()] == ["c3", "c2", "c4", "c1"]
    assert [e.id for e in catalog.entries(batch="lo-2")] == ["c4", "c1"]
    assert catalog.entries(batch="khac") == []
    assert catalog.batches() == ["lo-1", "lo-2"]
    assert [e.id for e in catalog.filed()] == ["c3", "c2", "c1"]
    assert [e.id for e in catalog.filed("H.1")] == ["c3", "c2"]
    assert catalog.count() == 4


def test_remove_and_rebuild(catalog: Catalog) -> None:
    for doc_id in ("r1", "r2", "r3"):
        catalog.commit_document(_manifest(doc_id), _key(doc_id))
    catalog.remove_document("r2")
    assert [e.id for e in catalog.entries()] == ["r1", "r3"]
    catalog.remove_document("r2")  # nothing there: no error
    fresh = [(_manifest("n1", batch="moi"), _key("n1")), (_manifest("n2", batch="moi"), _key("n2"))]
    assert catalog.rebuild(fresh) == 2
    assert [e.id for e in catalog.entries()] == ["n1", "n2"] and catalog.batches() == ["moi"]
    assert catalog.rebuild([]) == 0 and catalog.count() == 0


def test_a_failed_rebuild_keeps_the_old_catalog(catalog: Catalog) -> None:
    catalog.commit_document(_manifest("old"), _key("old"))

    def documents() -> Iterator[tuple[DocumentManifest, str]]:
        yield _manifest("new"), _key("new")
        raise OSError("store unreachable")

    with pytest.raises(OSError):
        catalog.rebuild(documents())
    assert [e.id for e in catalog.entries()] == ["old"]


def test_digitised_since(catalog: Catalog) -> None:
    catalog.commit_document(_manifest("d1", created_at="2026-03-01T10:00:00+00:00"), _key("d1"))
    catalog.commit_document(_manifest("d2", created_at="2026-03-02T10:00:00+00:00"), _key("d2"))
    catalog.commit_document(_manifest("d0", created_at="2026-02-01T10:00:00+00:00"), _key("d0"))
    got = catalog.digitised_since("2026-03-01T10:00:00+00:00")
    assert [(e.id, when) for e, when in got] == [("d1", "2026-03-01T10:00:00+00:00"),
                                                 ("d2", "2026-03-02T10:00:00+00:00")]
    assert catalog.digitised_since("2027-01-01T00:00:00+00:00") == []


def test_same_identity_is_found_folded_and_only_whole(catalog: Catalog) -> None:
    catalog.commit_document(_manifest("aaa", **IDENTITY), _key("aaa"))
    catalog.commit_document(_manifest("bbb", **(IDENTITY | {"code_number": "16"})), _key("bbb"))
    catalog.commit_document(_manifest("ccc", **(IDENTITY | {"organ_name": None})), _key("ccc"))
    other = DocumentMetadata(**(IDENTITY | {"organ_name": "THÀNH UỶ  ĐÀ NẴNG", "type_name": "NGHI QUYET",
                                            "code_notation": "nq/tu"}))  # type: ignore[arg-type]
    assert [e.id for e in catalog.find_same_identity(other)] == ["aaa"]
    assert catalog.find_same_identity(other, exclude_id="aaa") == []
    assert catalog.find_same_identity(DocumentMetadata(**(IDENTITY | {"organ_name": None}))) == []  # type: ignore[arg-type]
    assert catalog.find_same_identity(DocumentMetadata(**(IDENTITY | {"issued_date": "2020-02-02"}))) == []  # type: ignore[arg-type]


def test_claims_are_seen_by_another_connection(target: Path | str, catalog: Catalog) -> None:
    """Two processes (or hosts) digitising at once: a document still in flight on one is seen by the other."""
    catalog.commit_document(_manifest("aaa", **IDENTITY), _key("aaa"))
    md = DocumentMetadata(**(IDENTITY | {"code_number": "99"}))  # type: ignore[arg-type]
    other = Catalog(target)
    try:
        assert catalog.claim_identity("x1", "lo/x1.pdf", md) == []
        assert other.claim_identity("x2", "lo/x2.pdf", md) == [("x1", "lo/x1.pdf")]
        assert catalog.claim_identity("x1", "lo/x1.pdf", md) == [("x2", "lo/x2.pdf")]  # a retry sees the other
        assert other.claim_identity("ddd", "ddd.tif", DocumentMetadata(**IDENTITY)) == [("aaa", "aaa.tif")]  # type: ignore[arg-type]
        assert catalog.claim_identity("p1", "p1.tif", DocumentMetadata(**(IDENTITY | {"organ_name": None}))) == []  # type: ignore[arg-type]
        catalog.remove_document("x1")  # its claim goes with it
        assert other.claim_identity("x3", "lo/x3.pdf", md) == [("x2", "lo/x2.pdf")]
        catalog.rebuild([])  # a rebuilt catalog starts without claims
        assert other.claim_identity("x4", "lo/x4.pdf", md) == []
    finally:
        other.close()


def _seen_before(catalog: Catalog, md: DocumentMetadata) -> None:
    """An identity claimed before by a document since removed: its lock row exists, no claim is left."""
    assert catalog.claim_identity("seed", "seed.tif", md) == []
    catalog.remove_document("seed")


@pytest.mark.parametrize("seen", [False, True], ids=["new-identity", "known-identity"])
def test_a_claim_waits_for_a_racing_claim_of_the_same_identity(target: Path | str, catalog: Catalog,
                                                                seen: bool) -> None:
    """While one connection's claim is not yet committed, another's claim of the same identity waits for it and
    then sees it (without the lock it would read no claim and both would pass as originals)."""
    md = DocumentMetadata(**(IDENTITY | {"code_number": "77"}))  # type: ignore[arg-type]
    if seen:
        _seen_before(catalog, md)
    other = Catalog(target)
    result: list[list[tuple[str, str]]] = []
    racer = threading.Thread(target=lambda: result.append(other.claim_identity("y2", "y2.tif", md)))
    try:
        with catalog._db.transaction():  # the first claim's transaction, held open
            assert catalog.claim_identity("y1", "y1.tif", md) == []
            racer.start()
            racer.join(timeout=1.0)
            assert racer.is_alive() and result == []  # waiting on the identity's lock, not reading past it
        racer.join()
        assert result == [[("y1", "y1.tif")]]
    finally:
        racer.join()
        other.close()


def test_two_connections_racing_for_identities_exactly_one_wins(target: Path | str) -> None:
    """Rounds of two connections claiming the same new identity at the same moment: in each, exactly one sees
    nothing (the original) and the other sees it."""
    cats = [Catalog(target), Catalog(target)]
    try:
        for round_no in range(8):
            md = DocumentMetadata(**(IDENTITY | {"code_number": f"{100 + round_no}"}))  # type: ignore[arg-type]
            if round_no % 2:  # a known identity (its lock row exists) as well as new ones
                _seen_before(cats[0], md)
            start = threading.Barrier(2)
            got: dict[str, list[tuple[str, str]]] = {}

            def claim(cat: Catalog, doc_id: str, md: DocumentMetadata = md, start: threading.Barrier = start,
                      got: dict[str, list[tuple[str, str]]] = got) -> None:
                start.wait()
                got[doc_id] = cat.claim_identity(doc_id, f"{doc_id}.tif", md)

            threads = [threading.Thread(target=claim, args=(cat, f"r{round_no}-{i}")) for i, cat in enumerate(cats)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            first, second = f"r{round_no}-0", f"r{round_no}-1"
            assert sorted(map(len, got.values())) == [0, 1], got
            winner = first if got[first] == [] else second
            loser = second if winner == first else first
            assert got[loser] == [(winner, f"{winner}.tif")]
    finally:
        for cat in cats:
            cat.close()


def test_concurrent_creators_do_not_fail(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Several processes starting at once on a new catalog (and its hồ sơ table): none fails, one schema results."""
    targets: list[Path | str] = [tmp_path / f"race{i}.sqlite" for i in range(3)]
    server: PostgresServer = request.getfixturevalue("postgres")
    targets += [server.create_database(f"race{i}_{tmp_path.name[-20:].lower()}") for i in range(3)]
    for where in targets:
        start = threading.Barrier(4)
        errors: list[BaseException] = []

        def open_one(where: Path | str = where, start: threading.Barrier = start,
                     errors: list[BaseException] = errors) -> None:
            start.wait()
            try:
                Catalog(where).close()
                DatabaseFileRecords(where).close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], (where, errors)
        cat = Catalog(where)
        try:
            cat.commit_document(_manifest("ok"), _key("ok"))
            assert cat.count() == 1
        finally:
            cat.close()


def test_catalog_exists_creates_nothing(target: Path | str) -> None:
    assert catalog_exists(target) is False
    assert catalog_exists(target) is False  # asking did not create it
    Catalog(target).close()
    assert catalog_exists(target) is True


def test_an_older_catalog_is_upgraded_and_its_filing_filled(target: Path | str) -> None:
    """A catalog of the first version (no hồ sơ columns, no digitised time): opened, it gains the columns, keeps
    its rows, marks them to be filed from the manifests, and takes new rows at once."""
    old = open_database(target)
    old.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    old.execute("CREATE TABLE documents (id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, source TEXT NOT NULL, "
                "batch TEXT NOT NULL, status TEXT NOT NULL, pages INTEGER NOT NULL, metadata TEXT NOT NULL, "
                "review_reasons TEXT NOT NULL, manifest_key TEXT NOT NULL, updated_at TEXT NOT NULL)")
    old.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
    old.execute("INSERT INTO documents VALUES ('old1', 'ab', 'cu.tif', 'lo-cu', 'done', 2, "
                "'{\"issued_date\": \"2020-02-01\"}', '[\"Trang 1: độ tin cậy thấp\"]', "
                "'documents/old1/document.json', '2025-05-05T05:05:05+00:00')")
    old.close()
    cat = Catalog(target)
    try:
        got = cat.get("old1")
        assert got is not None and got.file_code is None and got.sequence is None and got.pages == 2
        assert cat.filing_pending() is True
        assert [when for _, when in cat.digitised_since("2025-01-01")] == ["2025-05-05T05:05:05+00:00"]
        cat.fill_filing([("old1", "H.9", 3)])
        assert cat.filing_pending() is False
        filed = cat.get("old1")
        assert filed is not None and (filed.file_code, filed.sequence) == ("H.9", 3)
        cat.commit_document(_manifest("new1", file_code="H.9", sequence=1), _key("new1"))
        assert [e.id for e in cat.filed("H.9")] == ["new1", "old1"]
        assert cat.first_catalogued() == "2025-05-05T05:05:05+00:00"
    finally:
        cat.close()
    again = Catalog(target)  # opened again: nothing more to migrate, nothing marked
    try:
        assert again.filing_pending() is False and again.count() == 2
    finally:
        again.close()


def test_a_new_catalog_has_nothing_pending(catalog: Catalog) -> None:
    assert catalog.filing_pending() is False and catalog.count() == 0 and catalog.first_catalogued() is None
    assert catalog.entries() == [] and catalog.batches() == [] and catalog.filed() == []


def test_the_embedded_index_only_rides_a_sqlite_catalog(target: Path | str) -> None:
    from storage.search_sqlite import SqliteIndexWriter

    if isinstance(target, Path):
        cat = Catalog(target, indexer=SqliteIndexWriter())
        assert cat.sqlite_connection is not None and cat.path == target
        cat.close()
        return
    with pytest.raises(ValueError, match="SQLite"):
        Catalog(target, indexer=SqliteIndexWriter())
    cat = Catalog(target)
    try:
        assert cat.sqlite_connection is None and cat.path is None and cat.dialect == "postgres"
    finally:
        cat.close()


def test_the_old_name_is_the_same_class() -> None:
    assert SqliteCatalog is Catalog


# --- hồ sơ records ---------------------------------------------------------------------------------------------


def test_file_records_save_get_all_replace(target: Path | str) -> None:
    records = DatabaseFileRecords(target)
    try:
        assert records.get("H.1") is None and records.all() == []
        first = FileRecord(file_code="H.2", title="Hồ sơ Hội nghị 50% cán bộ?", fonds="Phông Thành ủy Đà Nẵng",
                           start_date="2020-01-01", end_date="2020-12-31", maintenance="01 - Vĩnh viễn",
                           language="Tiếng Việt", note="ghi chú", created_by="an", created_at="2026-01-01T00:00:00Z",
                           updated_by="an", updated_at="2026-01-01T00:00:00Z")
        records.save(first)
        records.save(FileRecord(file_code="H.1", title="Một hồ sơ khác"))
        assert records.get("H.2") == first
        assert [r.file_code for r in records.all()] == ["H.1", "H.2"]
        changed = first.model_copy(update={"title": "Tiêu đề mới", "note": None, "updated_by": "binh"})
        records.save(changed)
        assert records.get("H.2") == changed and len(records.all()) == 2
    finally:
        records.close()
    reopened = DatabaseFileRecords(target)  # kept, and lives beside the catalog's tables
    try:
        cat = Catalog(target)
        cat.close()
        assert [r.title for r in reopened.all()] == ["Một hồ sơ khác", "Tiêu đề mới"]
    finally:
        reopened.close()
