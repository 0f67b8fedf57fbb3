"""The embedded index behind the catalog: SqliteCatalog writes (through SqliteIndexWriter), SqliteSearchIndex reads
the same database.

The query semantics are the contract suite's (tests/test_search_contract.py); this file checks what is
particular to SQLite: one transaction for the catalog row and the index rows, replacing rows, the migration of
an archive indexed by the older layout, and no index rows at all when the search index is Elasticsearch.
"""

import json
import sqlite3
from pathlib import Path

import pytest

from schemas.document import DocumentManifest, PageRecord
from schemas.metadata import DocumentMetadata
from schemas.search import SearchRequest
from storage.catalog import SqliteCatalog
from storage.search_sqlite import SqliteIndexWriter, SqliteSearchIndex, make_snippet


def _manifest(doc_id: str, text: str, **md: object) -> DocumentManifest:
    return DocumentManifest(
        id=doc_id, sha256=doc_id * 4, source=f"{doc_id}.tif", batch="b", status="done",
        created_at="2026-01-01T00:00:00+00:00",
        pages=[PageRecord(number=1, text=text, confidence=0.9, width=10, height=10, dpi=300, words=1)],
        metadata=DocumentMetadata(**md), files=[], provenance={},  # type: ignore[arg-type]
    )


DOCS = [
    _manifest("aaa", "NGHỊ QUYẾT về công tác văn thư, lưu trữ của Đảng bộ thành phố Đà Nẵng",
              code_number="15", code_notation="NQ/TU", subject="về công tác văn thư, lưu trữ",
              issued_date="2020-03-05"),
    _manifest("bbb", "BÁO CÁO kết quả đào tạo cán bộ. Căn cứ Nghị quyết số 15-NQ/TU ngày 1-2-2020",
              code_number="115", code_notation="BC/TU", subject="kết quả đào tạo cán bộ"),
    _manifest("ccc", "Kế hoạch hòa giải ở cơ sở; thủy lợi", code_number="7", code_notation="KH/TU",
              classification="Mật"),
]


@pytest.fixture()
def catalog(tmp_path: Path) -> SqliteCatalog:
    cat = SqliteCatalog(tmp_path / "catalog.sqlite", indexer=SqliteIndexWriter())
    for m in DOCS:
        cat.commit_document(m, f"documents/{m.id}/document.json")
    return cat


@pytest.fixture()
def index(catalog: SqliteCatalog) -> SqliteSearchIndex:
    return SqliteSearchIndex(catalog.path)


def ids(index: SqliteSearchIndex, q: str, clearance: int = 3) -> list[str]:
    return [h.id for h in index.search(SearchRequest(query=q, clearance=clearance, limit=10)).hits]


def test_catalogued_documents_are_searchable(index: SqliteSearchIndex) -> None:
    assert ids(index, "cong tac van thu luu tru") == ["aaa"]
    assert ids(index, "dang bo thanh pho da nang") == ["aaa"]
    assert ids(index, "hoà giải") == ids(index, "hòa giải") == ["ccc"]
    assert ids(index, "thuỷ lợi", clearance=0) == []  # ccc is Mật
    assert ids(index, "15-NQ/TU")[0] == "aaa" and ids(index, "115-BC/TU") == ["bbb"]
    hit = index.search(SearchRequest(query="dao tao can bo", limit=1)).hits[0]
    assert hit.metadata["code_notation"] == "BC/TU" and hit.source == "bbb.tif"
    assert index.ids() == {"aaa", "bbb", "ccc"}


def test_recommitting_a_document_replaces_its_rows(catalog: SqliteCatalog, index: SqliteSearchIndex) -> None:
    catalog.commit_document(_manifest("ccc", "Kế hoạch trồng cây xanh", code_number="7", code_notation="KH/TU"),
                            "documents/ccc/document.json")
    assert ids(index, "hoa giai") == []
    assert ids(index, "trong cay xanh", clearance=0) == ["ccc"]  # no longer Mật: its rows moved
    assert catalog.count() == 3
    conn = sqlite3.connect(catalog.path)
    assert conn.execute("SELECT count(*) FROM search_docs").fetchone()[0] == 3
    assert conn.execute("SELECT count(*) FROM search_text").fetchone()[0] == 3


def test_a_failed_commit_leaves_neither_catalog_row_nor_index_rows(catalog: SqliteCatalog,
                                                                   index: SqliteSearchIndex) -> None:
    class Boom(Exception):
        pass

    def explode(*_: object) -> None:
        raise Boom

    conn = catalog.sqlite_connection
    assert conn is not None
    conn.create_function("explode", 0, explode)
    conn.execute("CREATE TEMP TRIGGER t AFTER INSERT ON search_text BEGIN SELECT explode(); END")
    with pytest.raises(sqlite3.OperationalError):
        catalog.commit_document(_manifest("ddd", "Thông báo chuyển đổi số"), "documents/ddd/document.json")
    assert catalog.get("ddd") is None and ids(index, "chuyen doi so") == []
    conn.execute("DROP TRIGGER t")
    catalog.commit_document(_manifest("ddd", "Thông báo chuyển đổi số"), "documents/ddd/document.json")
    assert catalog.get("ddd") is not None and ids(index, "chuyen doi so") == ["ddd"]


def test_rebuild_replaces_catalog_and_index_together(catalog: SqliteCatalog, index: SqliteSearchIndex) -> None:
    assert catalog.rebuild([(DOCS[0], "documents/aaa/document.json")]) == 1
    assert catalog.count() == 1 and index.ids() == {"aaa"}
    assert ids(index, "dao tao can bo") == [] and ids(index, "cong tac van thu") == ["aaa"]


@pytest.mark.parametrize("q", ['"', "AND OR NOT", "* ^ ( ) : -", "\x00\x01", "a" * 10_000, "NEAR(a b)", "'; DROP",
                               "{code}: x", "exact : hòa", "NQ/", '"a" AND "b'])
def test_hostile_queries_never_raise(index: SqliteSearchIndex, q: str) -> None:
    result = index.search(SearchRequest(query=q, facets=True))
    assert result.total >= len(result.hits) >= 0


def _old_layout(path: Path) -> None:
    """A catalog database as layout 2 wrote it: fts + doc_text beside the catalog's documents."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE documents (id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, source TEXT NOT NULL,
            batch TEXT NOT NULL, status TEXT NOT NULL, pages INTEGER NOT NULL, metadata TEXT NOT NULL,
            review_reasons TEXT NOT NULL, manifest_key TEXT NOT NULL, updated_at TEXT NOT NULL);
        CREATE VIRTUAL TABLE fts USING fts5(id UNINDEXED, code, title, body,
            tokenize = 'unicode61 remove_diacritics 2');
        CREATE TABLE doc_text (id TEXT PRIMARY KEY, text TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1'), ('search_layout', '2');
    """)
    for m in DOCS:
        md = m.metadata.model_dump(mode="json", exclude={"evidence"})
        text = "\n\n".join(p.text for p in m.pages)
        conn.execute("INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)",
                     (m.id, m.sha256, m.source, m.batch, m.status, 1, json.dumps(md, ensure_ascii=False), "[]",
                      f"documents/{m.id}/document.json", "2026-01-01T00:00:00+00:00"))
        rowid = conn.execute("INSERT INTO doc_text(id, text) VALUES (?,?)", (m.id, text)).lastrowid
        conn.execute("INSERT INTO fts(rowid, id, code, title, body) VALUES (?,?,?,?,?)", (rowid, m.id, "", "", text))
    conn.close()


@pytest.mark.parametrize("opener", ["catalog", "index"])
def test_an_archive_of_the_older_layout_is_migrated_on_open(tmp_path: Path, opener: str) -> None:
    path = tmp_path / "catalog.sqlite"
    _old_layout(path)
    if opener == "catalog":
        SqliteCatalog(path, indexer=SqliteIndexWriter()).close()
    index = SqliteSearchIndex(path)
    assert index.ids() == {"aaa", "bbb", "ccc"}
    assert ids(index, "cong tac van thu luu tru") == ["aaa"]
    assert ids(index, "15-NQ/TU")[0] == "aaa"
    assert ids(index, "hòa giải", clearance=0) == [] and ids(index, "hòa giải", clearance=1) == ["ccc"]
    hit = index.search(SearchRequest(query="dao tao", limit=1)).hits[0]
    assert hit.source == "bbb.tif" and hit.metadata["code_number"] == "115"
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "fts" not in tables and "doc_text" not in tables
    index.close()
    assert SqliteCatalog(path).count() == 3  # the catalog itself is untouched


def test_snippet_window_and_highlights_keep_the_original_text() -> None:
    text = "Mở đầu. " + "x " * 300 + "Về CÔNG TÁC văn thư và công tác lưu trữ. " + "y " * 300
    snippet, marks = make_snippet(text, {"cong", "tac", "luu"})
    assert [snippet[s:e] for s, e in marks] == ["CÔNG", "TÁC", "công", "tác", "lưu"]
    assert snippet.startswith("…") and snippet.endswith("…")
    assert make_snippet("Không có gì", {"cong"}) == ("Không có gì", [])


def test_an_earlier_layout_of_the_index_tables_is_rebuilt_from_them(tmp_path: Path) -> None:
    from tests.test_search_contract import CORPUS

    path = tmp_path / "index.sqlite"
    index = SqliteSearchIndex(path)
    index.upsert(CORPUS)
    index.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TABLE search_head")  # as an earlier layout would lack a table
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'search_layout'")
    conn.close()
    index = SqliteSearchIndex(path)
    assert index.ids() == {e.id for e in CORPUS}
    assert ids(index, "15-NQ/TU")[0] == "nq15" and ids(index, "kho vu khi", clearance=0) == []
    faceted = index.search(SearchRequest(query="", facets=True))
    assert {f.value: f.count for f in faceted.facets["file_code"]} == {"H49.1": 2}  # kept from the rows
    index.close()


def test_snippet_of_a_long_text_reads_past_its_start_only_when_needed() -> None:
    late = "Mở đầu " + "x " * 3000 + "về công tác văn thư " + "y " * 100
    snippet, marks = make_snippet(late, {"cong", "tac"})
    assert [snippet[s:e] for s, e in marks] == ["công", "tác"]  # nothing at the start: the whole text is read
    early = "Công tác văn thư " + "x " * 3000 + "công tác"
    snippet, marks = make_snippet(early, {"cong", "tac"})
    assert snippet.startswith("Công tác") and [snippet[s:e] for s, e in marks] == ["Công", "tác"]
    partial = "Công văn " + "x " * 3000 + "về công tác văn thư"
    snippet, marks = make_snippet(partial, {"cong", "tac"})
    assert [snippet[s:e] for s, e in marks] == ["Công"]  # the start holds a token: the long rest is not read


def test_the_intermediate_layout_with_metadata_in_search_docs_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('search_layout', '3');
        CREATE TABLE search_docs (docid INTEGER PRIMARY KEY, id TEXT, source TEXT, batch TEXT, file_code TEXT,
            status TEXT, issued_date TEXT, year INTEGER, level INTEGER, type_name TEXT, organ_name TEXT,
            classification TEXT, code_key TEXT, metadata TEXT);
        CREATE TABLE search_text (docid INTEGER PRIMARY KEY, text TEXT);
    """)
    md = json.dumps({"code_number": "15", "code_notation": "NQ/TU", "classification": None}, ensure_ascii=False)
    conn.execute("INSERT INTO search_docs VALUES (4, 'aaa', 'aaa.tif', 'b', 'H1', 'done', NULL, NULL, 0, NULL, NULL,"
                 " 'Thường', '15 nq tu', ?)", (md,))
    conn.execute("INSERT INTO search_text VALUES (4, 'Nghị quyết số 15-NQ/TU về công tác văn thư')")
    conn.close()
    index = SqliteSearchIndex(path)
    assert ids(index, "cong tac van thu", clearance=0) == ["aaa"] and ids(index, "15-NQ/TU") == ["aaa"]
    index.close()


def test_no_query_browses_but_a_query_without_words_finds_nothing(index: SqliteSearchIndex) -> None:
    assert index.search(SearchRequest(query="  ", clearance=3)).total == 3
    assert index.search(SearchRequest(query="", clearance=0)).total == 2
    for q in ("***", '"""', "_", "(((", "\u200b"):
        assert index.search(SearchRequest(query=q, facets=True)).total == 0, q
    assert ids(index, "cong _ tac") == ["aaa"]  # "_" is no word


def test_removing_a_document_takes_its_catalog_row_and_index_rows_together(catalog: SqliteCatalog,
                                                                           index: SqliteSearchIndex) -> None:
    catalog.remove_document("aaa")
    assert catalog.get("aaa") is None and index.ids() == {"bbb", "ccc"} and ids(index, "cong tac van thu") == []
    conn = sqlite3.connect(catalog.path)
    assert conn.execute("SELECT count(*) FROM search_text").fetchone()[0] == 2


def _fts_rows(path: Path) -> dict[str, int]:
    """Rows of every table of the embedded index in the database at ``path`` (absent tables left out): of the
    plain tables, and of each FTS5 table's segment index (``<table>_idx``: empty while no row was written)."""
    conn = sqlite3.connect(path)
    tables = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name LIKE 'search%'"))
    virtual = [t for t, sql in tables.items() if str(sql).upper().startswith("CREATE VIRTUAL")]
    shadow = tuple(f"{t}_{part}" for t in virtual for part in ("data", "idx", "docsize", "config", "content"))
    counted = {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
               for t in [*(t for t in tables if t not in virtual and t not in shadow), *(f"{t}_idx" for t in virtual)]}
    conn.close()
    return counted


def test_a_catalog_without_an_index_writer_writes_no_index_rows(tmp_path: Path) -> None:
    """Metadata only (Elasticsearch is the search index, or a reader): commits, rebuilds and removals never
    touch the embedded index's tables; a rebuild leaves an existing embedded index as it was."""
    path = tmp_path / "catalog.sqlite"
    catalog = SqliteCatalog(path)
    for m in DOCS:
        catalog.commit_document(m, f"documents/{m.id}/document.json")
    catalog.remove_document("bbb")
    assert catalog.rebuild([(m, f"documents/{m.id}/document.json") for m in DOCS]) == 3
    assert catalog.compact_search() == 0
    assert catalog.count() == 3 and _fts_rows(path) == {}
    catalog.close()
    index = SqliteSearchIndex(path)  # an embedded index beside it (an archive that changed backend) stays apart
    index.upsert([])
    catalog = SqliteCatalog(path)
    catalog.commit_document(DOCS[0], "documents/aaa/document.json")
    assert set(_fts_rows(path).values()) == {0} and index.ids() == set()
    catalog.close()
    index.close()


def test_with_elasticsearch_selected_the_catalog_writes_no_fts_rows(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The composition root picks the index once: with ``search_index=elasticsearch`` the catalog of every
    write path (a digitisation run's, a correction's re-index and hiding, ``sohoa reindex``) has no index writer,
    so the archive's database holds no full-text rows; with the embedded index it writes them in its commit."""
    from flows.correction_index import hide_document, reindex_document
    from flows.wiring import CATALOG_FILE, build_services, catalog_indexer, open_catalog
    from schemas.settings import Settings

    class NoElasticsearch(Exception):
        pass

    es = Settings(archive=tmp_path / "es", search_index="elasticsearch")
    assert catalog_indexer(es) is None
    services = build_services(es)  # a digitisation run's (the client connects lazily: no server needed here)
    assert services.catalog.indexer is None and services.external_index is not None
    services.close()
    catalog = open_catalog(es)
    assert catalog.indexer is None
    for m in DOCS:
        catalog.commit_document(m, f"documents/{m.id}/document.json")
    catalog.close()
    path = es.archive_path() / CATALOG_FILE
    assert _fts_rows(path) == {}

    def unreachable(_: Settings) -> object:  # the Elasticsearch side of these is not what this test looks at
        raise NoElasticsearch

    monkeypatch.setattr("flows.correction_index.build_search_index", unreachable)
    with pytest.raises(NoElasticsearch):
        reindex_document(es, DOCS[0], "documents/aaa/document.json")
    with pytest.raises(NoElasticsearch):
        hide_document(es, "bbb")  # the catalog row still goes
    reader = SqliteCatalog(path)
    assert reader.get("bbb") is None and reader.count() == 2
    reader.close()
    assert _fts_rows(path) == {}

    embedded = Settings(archive=tmp_path / "fts", search_index="sqlite")
    catalog = open_catalog(embedded)
    assert isinstance(catalog.indexer, SqliteIndexWriter)
    catalog.commit_document(DOCS[0], "documents/aaa/document.json")
    catalog.close()
    assert _fts_rows(embedded.archive_path() / CATALOG_FILE)["search_docs"] == 1
