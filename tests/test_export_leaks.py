"""Exports speak only of what their reader may see (issue 16: findings 2, 3, 4 and 7, export part).

An archive holds the same one-page resolution four times: Mật, Tối mật and Tuyệt mật copies (approved for
photographing), digitised first, then an open copy, which the duplicate check flags as a possible duplicate of
the three (its review reasons name their ids and file names). Real OCR through the CLI, real files.

- ``sohoa export --package DIR --as USER``: no package of a document above the user's clearance, and no file of
  any package (EAD, PREMIS, METS, the copy of ``document.json``) naming one; packages page through every hit.
- ``sohoa export --out x.csv|x.xlsx --as USER``: the open document's "Ghi chú" names no classified duplicate.
- Estimated totals (embedded index, > ``COUNT_EXACT`` matches): a restricted caller's total does not depend on
  the classified documents; on Elasticsearch the total comes from the clearance-filtered query.
- Formula injection: a subject ``=HYPERLINK(...)`` is text in CSV and XLSX, never a live formula.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from flows import export
from flows.accounts import add_user
from flows.wiring import build_object_store
from interfaces.cli import main
from schemas.document import DocumentManifest, PageRecord
from schemas.metadata import DocumentMetadata
from schemas.reasons import stored_reasons
from schemas.search import SearchRequest
from schemas.settings import Settings
from storage import search_sqlite
from storage.catalog import SqliteCatalog
from storage.layout import manifest_key
from storage.search_index import SearchIndex
from storage.search_sqlite import SqliteIndexWriter, SqliteSearchIndex
from tests.fixtures import generate_sample as gen
from tests.test_search_contract import BACKENDS, entry

PASSWORD = "mat-khau-kiem-thu"
USERS = {"none": 0, "mat": 1, "toimat": 2}
QUERY = "kinh te bien"
COPIES = {  # key: (file name, classification, seed); the classified ones are digitised first
    "mat": ("ban-mat.png", "Mật", 12),
    "toimat": ("ban-toi-mat.png", "Tối mật", 13),
    "tuyetmat": ("ban-tuyet-mat.png", "Tuyệt mật", 14),
    "mo": ("van-ban-mo.png", None, 11),
}
LEVEL = {"mo": 0, "mat": 1, "toimat": 2, "tuyetmat": 3}


@dataclasses.dataclass(frozen=True)
class Archive:
    root: Path
    ids: dict[str, str]  # key -> document id
    sources: dict[str, str]  # key -> source (file name)

    def hidden(self, clearance: int) -> list[str]:
        return [k for k, lv in LEVEL.items() if lv > clearance]

    def names(self, key: str) -> tuple[str, str]:
        return self.ids[key], self.sources[key]


def _digitise(batch: Path, archive: Path, report: Path) -> list[dict[str, object]]:
    assert main(["digitise", str(batch), "--archive", str(archive), "--report", str(report), "--quiet"]) == 0
    documents = json.loads(report.read_text(encoding="utf-8"))["documents"]
    assert isinstance(documents, list)
    return documents


@pytest.fixture(scope="module")
def archive(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> Archive:
    root = tmp_path_factory.mktemp("export-leaks")
    classified, open_batch = root / "lo-1", root / "lo-2"
    for source, classification, seed in COPIES.values():
        doc = gen.classified_copy(source, classification, seed)
        gen.save(doc, gen.degrade(doc, gen.render(doc)), open_batch if classification is None else classified)
    (classified / "batch.toml").write_text('approval_ref = "9-QĐ/VPTU"\napproved_by = "Trần Thị Hoa"\n'
                                           'top_secret_approval_ref = "3-QĐ/TU"\n', encoding="utf-8")
    store = root / "a"
    documents = _digitise(classified, store, root / "r1.json") + _digitise(open_batch, store, root / "r2.json")
    by_source = {str(d["source"]): d for d in documents}
    ids = {key: str(by_source[source]["id"]) for key, (source, _, _) in COPIES.items()}
    settings = Settings(archive=store)
    for name, level in USERS.items():
        add_user(settings, name, PASSWORD, "archivist", clearance=level, api_token=False)
    result = Archive(store, ids, {key: source for key, (source, _, _) in COPIES.items()})
    # the case under test: the open copy's review reasons name the three classified copies
    reasons = by_source[COPIES["mo"][0]]["review_reasons"]
    assert isinstance(reasons, list)
    codes = stored_reasons(by_source[COPIES["mo"][0]]["review_reason_codes"])
    assert {r.document_id for r in codes} >= {ids["mat"], ids["toimat"], ids["tuyetmat"]}, reasons
    assert all(ids[k] in " ".join(reasons) for k in ("mat", "toimat", "tuyetmat"))  # the wording names them too
    return result


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _naming(files: dict[str, bytes], needles: list[str]) -> list[tuple[str, str]]:
    """(file, needle) for every file whose path or content holds a needle."""
    return [(path, n) for path, data in files.items() for n in needles
            if n in path or n.encode("utf-8") in data]


def _package_manifests(folder: Path) -> dict[str, DocumentManifest]:
    return {m.id: m for m in (DocumentManifest.model_validate_json(p.read_bytes())
                              for p in folder.glob("*/metadata/other/sohoa/*.json"))}


# --- finding 2 and "packages speak only of what the reader may see" ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("query", [None, QUERY])
@pytest.mark.parametrize("user", ["none", "mat"])
def test_package_export_as_a_user_holds_and_names_nothing_above_clearance(
    archive: Archive, user: str, query: str | None, tmp_path: Path
) -> None:
    clearance = USERS[user]
    out = tmp_path / "goi"
    command = ["export", "--package", str(out), "--archive", str(archive.root), "--as", user]
    assert main(command + (["--query", query] if query else [])) == 0
    visible = {archive.ids[k] for k, lv in LEVEL.items() if lv <= clearance}
    assert {p.name for p in out.iterdir()} == visible  # one package per document the user may see, no other
    hidden = [n for k in archive.hidden(clearance) for n in archive.names(k)]
    assert _naming(_files(out), hidden) == []  # no file (EAD, PREMIS, METS, document.json...) names them
    manifests = _package_manifests(out)
    assert set(manifests) == visible
    shown = {r.document_id for r in manifests[archive.ids["mo"]].review_reasons}
    assert shown == {archive.ids[k] for k in ("mat",) if LEVEL[k] <= clearance}  # what the user may read stays
    ead = (out / archive.ids["mo"] / "metadata/descriptive/ead.xml").read_text(encoding="utf-8")
    assert all(archive.ids[k] in ead for k in ("mat",) if LEVEL[k] <= clearance)


@pytest.mark.slow
def test_operator_package_export_is_the_whole_archive_as_stored(archive: Archive, tmp_path: Path) -> None:
    out = tmp_path / "goi"
    assert main(["export", "--package", str(out), "--archive", str(archive.root)]) == 0
    assert {p.name for p in out.iterdir()} == set(archive.ids.values())
    store = build_object_store(Settings(archive=archive.root))
    for doc_id, manifest in _package_manifests(out).items():  # the stored document.json, byte for byte
        copy = out / doc_id / "metadata/other/sohoa" / f"{doc_id}.json"
        assert copy.read_bytes() == store.get_bytes(manifest_key(doc_id))
        if doc_id == archive.ids["mo"]:
            assert {r.document_id for r in manifest.review_reasons} >= {archive.ids[k] for k in
                                                                          ("mat", "toimat", "tuyetmat")}


@pytest.mark.slow
def test_package_export_pages_through_every_hit(archive: Archive, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The index answers a page at a time (at most 1,000 hits a request; here 2): every page is read."""
    page = 2
    plain = SqliteSearchIndex.search

    def paged(self: SqliteSearchIndex, request: SearchRequest) -> object:
        return plain(self, request.model_copy(update={"limit": min(request.limit, page)}))

    monkeypatch.setattr(SqliteSearchIndex, "search", paged)
    monkeypatch.setattr(export, "EXPORT_PAGE", page)
    out = tmp_path / "goi"
    assert main(["export", "--package", str(out), "--archive", str(archive.root), "--query", QUERY]) == 0
    assert {p.name for p in out.iterdir()} == set(archive.ids.values())  # 4 hits, 2 pages
    table = tmp_path / "bang.csv"
    assert main(["export", "--out", str(table), "--archive", str(archive.root), "--query", QUERY]) == 0
    rows = list(csv.reader(io.StringIO(table.read_text(encoding="utf-8-sig"))))
    assert {r[export.HEADERS.index("Mã sohoa")] for r in rows[1:]} == set(archive.ids.values())


# --- finding 3 -----------------------------------------------------------------------------------------------


def _xlsx_cells(path: Path) -> list[list[object]]:
    ws = load_workbook(path).active
    assert ws is not None
    return [list(r) for r in ws.iter_rows(values_only=True)]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("user", ["none", "mat", "toimat"])
def test_table_row_of_the_open_copy_names_no_classified_duplicate(
    archive: Archive, user: str, fmt: str, tmp_path: Path
) -> None:
    clearance = USERS[user]
    out = tmp_path / f"bang.{fmt}"
    assert main(["export", "--out", str(out), "--archive", str(archive.root), "--as", user]) == 0
    if fmt == "csv":
        rows: list[list[object]] = [list(r) for r in csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig")))]
    else:
        rows = _xlsx_cells(out)
    body = {str(r[export.HEADERS.index("Mã sohoa")]): r for r in rows[1:]}
    assert set(body) == {archive.ids[k] for k, lv in LEVEL.items() if lv <= clearance}
    text = "\n".join(str(c) for r in rows for c in r if c is not None)
    hidden = [n for k in archive.hidden(clearance) for n in archive.names(k)]
    assert [n for n in hidden if n in text] == []
    note = str(body[archive.ids["mo"]][export.HEADERS.index("Ghi chú (description)")] or "")
    for key in ("mat", "toimat"):  # the duplicates the user may see are still named
        assert (archive.ids[key] in note) == (LEVEL[key] <= clearance)


# --- finding 4 -----------------------------------------------------------------------------------------------


MARKS = (None, "Mật", "Tối mật", "Tuyệt mật")


def _corpus() -> list[tuple[int, object]]:
    """(secrecy level, index entry), in indexing order: 80 open documents, three in four holding the query's
    words; between them, and after the last, classified ones of every level, most holding the words too."""
    out: list[tuple[int, object]] = []
    for n in range(80):
        words = "phát triển kinh tế biển" if n % 4 else "công tác văn thư"
        out.append((0, entry(f"mo{n:03d}", f"Nghị quyết số {n} về {words} Đà Nẵng")))
        for k in range(n % 4):
            text = "Phương án kinh tế biển và quốc phòng" if (n + k) % 5 else "Phương án phòng thủ"
            out.append((k + 1, entry(f"mat{n:03d}{k}", text, classification=MARKS[k + 1])))
    out += [(1 + n % 3, entry(f"sau{n:03d}", "Báo cáo kinh tế biển", classification=MARKS[1 + n % 3]))
            for n in range(40)]
    return out


@pytest.fixture(params=sorted(BACKENDS))
def indexes(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[Callable[[int], SearchIndex]]:
    """``make(level)``: an index of the documents up to that secrecy level, indexed a few at a time in the same
    order (docids grow). The embedded index counts exactly up to 5 matches only and takes every word for common
    (what more than 1,000 matches of common words do at full scale)."""
    monkeypatch.setattr(search_sqlite.query, "COUNT_EXACT", 5)
    monkeypatch.setattr(search_sqlite.query, "RANK_DF", 3)
    made: list[SearchIndex] = []

    def make(level: int) -> SearchIndex:
        index = BACKENDS[request.param](tmp_path / f"upto{level}", request)
        entries = [e for lv, e in _corpus() if lv <= level]
        for start in range(0, len(entries), 7):
            index.upsert(entries[start:start + 7])  # type: ignore[arg-type]
        made.append(index)
        return index

    yield make
    for index in made:
        index.close()


@pytest.mark.parametrize("query", [QUERY, "kinh te"])
def test_restricted_totals_do_not_depend_on_classified_documents(
    indexes: Callable[[int], SearchIndex], query: str, request: pytest.FixtureRequest
) -> None:
    """A user's total over the whole archive is the total over an archive holding only what they may see."""
    everything = indexes(3)
    for clearance in (0, 1, 2):
        alone = indexes(clearance).search(SearchRequest(query=query, clearance=clearance, limit=3))
        among = everything.search(SearchRequest(query=query, clearance=clearance, limit=3))
        assert (among.total, among.total_exact) == (alone.total, alone.total_exact), clearance
        if "sqlite" in request.node.callspec.id:
            assert not among.total_exact  # the case reaches the estimate


# --- finding 7 (export part) ---------------------------------------------------------------------------------

FORMULAS = {
    "subject": '=HYPERLINK("http://evil.example/x","Bấm vào đây")',
    "signer": "+84 905 000 000",
    "organ_name": "-2+3",
    "code_notation": "@SUM(A1:A9)",
    "signer_title": "\t=1+1",
}
COLUMNS = {"subject": "Trích yếu nội dung (subject)", "signer": "Người ký",
           "organ_name": "Tên cơ quan, tổ chức ban hành (organName)", "code_notation": "Ký hiệu văn bản (codeNotation)",
           "signer_title": "Chức vụ người ký"}


@pytest.fixture()
def formula_archive(tmp_path: Path) -> Path:
    root = tmp_path / "kho"
    catalog = SqliteCatalog(root / "catalog.sqlite", indexer=SqliteIndexWriter())
    metadata = DocumentMetadata(type_name="Nghị quyết", issued_date="2020-02-01", page_count=1, **FORMULAS)
    catalog.commit_document(DocumentManifest(
        id="fff", sha256="f" * 64, source="=cmd|' /C calc'!A0.tif", batch="lo-1", status="done",
        created_at="2026-01-01T00:00:00+00:00",
        pages=[PageRecord(number=1, text="nghị quyết", confidence=0.9, width=10, height=10, dpi=300, words=2)],
        metadata=metadata, files=[], provenance={}), "documents/fff/document.json")
    catalog.close()
    return root


def test_formula_cells_are_text_in_csv(formula_archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "bang.csv"
    assert main(["export", "--archive", str(formula_archive), "--out", str(out)]) == 0
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    row = rows[1]
    for key, header in COLUMNS.items():
        assert row[export.HEADERS.index(header)] == "'" + FORMULAS[key].strip(), key  # cells are trimmed
    assert row[export.HEADERS.index("Tệp nguồn")] == "'=cmd|' /C calc'!A0.tif"
    for cell in (c for r in rows for c in r):
        assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), cell


def test_formula_cells_are_text_in_xlsx(formula_archive: Path, tmp_path: Path) -> None:
    out = tmp_path / "bang.xlsx"
    assert main(["export", "--archive", str(formula_archive), "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as z:
        sheets = [z.read(n).decode("utf-8") for n in z.namelist() if n.startswith("xl/worksheets/")]
    assert sheets and not any("<f>" in s or "<f " in s for s in sheets)  # no formula anywhere
    ws = load_workbook(out).active
    assert ws is not None
    row = [c for c in ws[2]]
    for key, header in COLUMNS.items():
        cell = row[export.HEADERS.index(header)]
        assert cell.data_type == "s" and cell.value == "'" + FORMULAS[key].strip(), key
    assert row[export.HEADERS.index("Ngày, tháng, năm văn bản (issuedDate)")].is_date  # real values stay real
