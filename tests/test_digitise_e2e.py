"""End to end on real components: tesseract (vie), a real temporary Prefect API, real files, SQLite FTS5."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pikepdf
import pytest
from ocrmypdf.pdfa import file_claims_pdfa

from interfaces.cli import main
from schemas.text import fold
from tests.conftest import BAD_FILES, DigitisedArchive, sample_expected

pytestmark = pytest.mark.slow


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    capsys.readouterr()
    assert main(list(args)) == 0
    return dict(json.loads(capsys.readouterr().out))


def docs_by_source(d: DigitisedArchive) -> dict[str, dict[str, object]]:
    return {doc["source"]: doc for doc in d.report["documents"]}  # type: ignore[index, union-attr]


def test_good_documents_finish_and_broken_ones_fail_with_reasons(digitised: DigitisedArchive) -> None:
    assert digitised.exit_code == 3  # finished, some failed
    docs = docs_by_source(digitised)
    for exp in sample_expected():
        got = docs[str(exp["source"])]
        assert got["status"] in ("done", "needs_review"), got
        assert got["pages"] == exp["pages"]
        assert got["error"] is None and isinstance(got["id"], str)
    for name in BAD_FILES:
        got = docs[name]
        assert got["status"] == "failed"
        assert name in str(got["error"])
    assert "rỗng" in str(docs["empty.tif"]["error"])
    assert "cắt cụt" in str(docs["truncated.jpg"]["error"])
    assert "không phải tệp ảnh" in str(docs["text-as-image.tif"]["error"])
    assert "mật khẩu" in str(docs["locked.pdf"]["error"])
    assert float(digitised.report["pages_per_minute"]) > 0  # type: ignore[arg-type]


def test_show_returns_every_page_with_text_and_confidence(
    digitised: DigitisedArchive, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = docs_by_source(digitised)
    for exp in sample_expected():
        doc_id = str(docs[str(exp["source"])]["id"])
        shown = cli_json(capsys, "show", doc_id, "--archive", str(digitised.archive), "--json")
        pages = shown["pages"]
        assert isinstance(pages, list) and [p["number"] for p in pages] == list(range(1, int(exp["pages"]) + 1))
        assert all(0.5 < p["confidence"] <= 1.0 and len(p["text"]) > 200 for p in pages)
        full = fold(" ".join(p["text"] for p in pages))
        assert fold(f"{exp['code_number']}-{exp['code_notation']}") in full
        assert fold(str(exp["subject"]))[-25:] in full  # the end of the trích yếu is read right
        md = shown["metadata"]
        assert isinstance(md, dict) and md["page_count"] == exp["pages"]
        assert shown["sha256"] and shown["source"] == exp["source"]


def test_unaccented_subject_search_finds_each_document_in_top_3(
    digitised: DigitisedArchive, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = docs_by_source(digitised)
    for exp in sample_expected():
        query = str(exp["subject_query"])
        assert query == fold(query)  # typed without diacritics
        result = cli_json(capsys, "search", query, "--archive", str(digitised.archive), "--limit", "3", "--json")
        ids = [h["id"] for h in result["hits"]]  # type: ignore[union-attr]
        assert docs[str(exp["source"])]["id"] in ids, (query, result)
        top = result["hits"][0]  # type: ignore[index]
        assert any(fold(top["snippet"][s:e]) in query.split() for s, e in top["highlights"])


def test_number_lookup_ranks_the_document_first(
    digitised: DigitisedArchive, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = docs_by_source(digitised)
    for exp in sample_expected():
        number = f"{exp['code_number']}-{exp['code_notation']}"
        result = cli_json(capsys, "search", number, "--archive", str(digitised.archive), "--json")
        assert result["hits"][0]["id"] == docs[str(exp["source"])]["id"], (number, result)  # type: ignore[index]


def test_the_run_leaves_the_search_index_merged(digitised: DigitisedArchive) -> None:
    """A run that added documents (one commit each) merges the embedded index's segments at its end."""
    from storage.search_sqlite import segment_counts

    conn = sqlite3.connect(f"file:{digitised.archive / 'catalog.sqlite'}?mode=ro", uri=True)
    try:
        segments = segment_counts(conn)
        pending = conn.execute("SELECT count(*) FROM search_pairs_pending").fetchone()[0]
    finally:
        conn.close()
    assert segments == {"search_fts": 1, "search_head": 1, "search_pairs": 1} and pending == 0


def test_pdfa_is_two_layer_and_originals_are_unchanged(
    digitised: DigitisedArchive, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = docs_by_source(digitised)
    exp = next(e for e in sample_expected() if e["pages"] == 2 and str(e["source"]).endswith(".pdf"))
    shown = cli_json(capsys, "show", str(docs[str(exp["source"])]["id"]), "--archive", str(digitised.archive),
                     "--json")
    files = shown["files"]
    assert isinstance(files, dict)
    pdf_path = Path(files["pdfa"])
    assert file_claims_pdfa(pdf_path)["conformance"] == "PDF/A-2b"
    with pikepdf.open(pdf_path) as pdf:
        assert len(pdf.pages) == 2
        for page in pdf.pages:
            assert len(page.images) == 1  # the visible layer
            assert "/GlyphLessFont" in str(page.Resources.Font.keys()) or page.Resources.Font  # the text layer
    text = subprocess.run(["pdftotext", str(pdf_path), "-"], capture_output=True, text=True, check=True).stdout
    assert fold(str(exp["code_number"])) in fold(text) and len(text) > 500
    (original,) = files["original"]
    source = digitised.batch / str(exp["source"])
    assert hashlib.sha256(Path(original).read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
    manifest = json.loads(Path(files["manifest"]).read_text(encoding="utf-8"))
    for f in manifest["files"]:
        stored = Path(files["manifest"]).parent / f["key"]
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == f["sha256"]
    ocr = manifest["provenance"]["ocr"]
    assert ocr["engine"] == "tesseract" and ocr["version"] and ocr["models"]["vie"]["sha256"]


def _objects(archive: Path) -> dict[str, int]:
    root = archive / "objects" / "documents"
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_second_run_adds_nothing_and_skips_everything(digitised: DigitisedArchive, tmp_path: Path) -> None:
    before = _objects(digitised.archive)
    report = tmp_path / "again.json"
    code = main(["digitise", str(digitised.batch), "--archive", str(digitised.archive), "--report", str(report),
                 "--quiet"])
    assert code == 3
    again = json.loads(report.read_text(encoding="utf-8"))
    assert again["pages_processed"] == 0
    assert all(d["skipped"] for d in again["documents"] if d["status"] != "failed")
    assert _objects(digitised.archive) == before


def test_lost_catalog_is_rebuilt_from_stored_manifests_without_new_ocr(
    digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crash after storing but before cataloguing: the next run finishes from the manifest."""
    archive = tmp_path / "archive"
    shutil.copytree(digitised.archive / "objects", archive / "objects")
    report = tmp_path / "resume.json"
    code = main(["digitise", str(digitised.batch), "--archive", str(archive), "--report", str(report), "--quiet"])
    assert code == 3
    resumed = json.loads(report.read_text(encoding="utf-8"))
    assert resumed["pages_processed"] == 0
    exp = sample_expected()[0]
    result = cli_json(capsys, "search", str(exp["subject_query"]), "--archive", str(archive), "--json")
    assert result["total"] >= 1


def test_show_unknown_id_exits_6(digitised: DigitisedArchive) -> None:
    assert main(["show", "0000000000", "--archive", str(digitised.archive), "--json"]) == 6
