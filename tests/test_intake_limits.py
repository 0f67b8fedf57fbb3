"""Issue 18: no single file can stop a batch. Resource limits are checked from headers, before decoding; every
fault inside one document fails that document with a reason naming the file; the batch goes on and is reported."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pikepdf
import pytest
from PIL import Image

from flows.digitise import page_total
from flows.document import MemoryBudget, digitise_document, memory_budget, prefetch_pages
from flows.wiring import build_services
from pipeline.load import Limits, count_pages, discover_documents, iter_pages
from schemas.errors import DocumentError, LimitExceededError, UnsupportedFileError
from schemas.settings import Settings
from tests.conftest import SAMPLE_BATCH
from tests.fuzz.hostile import lying_png


def _page(path: Path, size: tuple[int, int] = (300, 420), **kw: Any) -> None:
    Image.fromarray(np.full((size[1], size[0], 3), 230, np.uint8)).save(path, **kw)


@pytest.mark.slow
def test_bomb_png_fails_alone_rest_of_batch_done_exit_3_report_written(prefect_api: None, tmp_path: Path) -> None:
    """The regression: a PNG declaring 40,000 × 40,000 pixels stopped the whole run (exit 1, no report)."""
    from interfaces.cli import main

    batch = tmp_path / "batch"
    batch.mkdir()
    for name in ("nq_01.png", "qd_05.jpg"):
        shutil.copy(SAMPLE_BATCH / name, batch / name)
    (batch / "bom.png").write_bytes(lying_png(40_000, 40_000))
    report = tmp_path / "report.json"
    code = main(["digitise", str(batch), "--archive", str(tmp_path / "archive"), "--report", str(report),
                 "--workers", "1", "--quiet"])
    assert code == 3
    docs = {d["source"]: d for d in json.loads(report.read_text(encoding="utf-8"))["documents"]}
    assert set(docs) == {"bom.png", "nq_01.png", "qd_05.jpg"}
    bomb = docs["bom.png"]
    assert bomb["status"] == "failed" and "bom.png" in bomb["error"] and "giới hạn" in bomb["error"]
    assert {docs[n]["status"] for n in ("nq_01.png", "qd_05.jpg")} <= {"done", "needs_review"}
    assert main(["verify", "--archive", str(tmp_path / "archive")]) == 0


def test_limits_are_checked_from_headers_before_decoding(tmp_path: Path) -> None:
    (tmp_path / "bom.png").write_bytes(lying_png(40_000, 40_000))  # PIL's own bomb check (> 2 × its maximum)
    (tmp_path / "big.png").write_bytes(lying_png(20_000, 11_000))  # 220 MP: over our 200 MP, under PIL's
    (tmp_path / "zero.png").write_bytes(lying_png(0, 0))
    (tmp_path / "thin.png").write_bytes(lying_png(100_000, 1))
    docs = {d.source: d for d in discover_documents(tmp_path)}
    for name in ("bom.png", "big.png"):
        with pytest.raises(LimitExceededError, match=name):
            count_pages(docs[name])
    for name in ("zero.png", "thin.png"):
        with pytest.raises(UnsupportedFileError, match=name):
            count_pages(docs[name])
    assert page_total(list(docs.values())) == 0  # progress totals never raise


def test_pages_file_size_and_pdf_render_size_limits(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((64, 48), v, np.uint8)) for v in range(5)]
    frames[0].save(tmp_path / "five.tif", save_all=True, append_images=frames[1:])
    with pikepdf.new() as pdf:
        pdf.add_blank_page(page_size=(14_400, 14_400))  # 200 × 200 inches: 3.6 GP at 300 dpi
        pdf.save(tmp_path / "poster.pdf")
    _page(tmp_path / "heavy.png")
    docs = {d.source: d for d in discover_documents(tmp_path)}
    with pytest.raises(LimitExceededError, match=r"five.tif: 5 trang"):
        count_pages(docs["five.tif"], Limits(max_pages=4))
    with pytest.raises(LimitExceededError, match=r"heavy.png: tệp"):
        count_pages(docs["heavy.png"], Limits(max_file_bytes=(tmp_path / "heavy.png").stat().st_size - 1))
    with pytest.raises(LimitExceededError, match=r"poster.pdf \(trang 1\).*triệu điểm ảnh"):
        list(iter_pages(docs["poster.pdf"]))


def test_entries_that_are_not_regular_files_are_failed_documents_never_read(tmp_path: Path) -> None:
    batch = tmp_path / "batch"
    batch.mkdir()
    _page(batch / "real.png")
    _page(tmp_path / "outside.png")
    os.mkfifo(batch / "pipe.png")  # opening it for reading would block forever
    (batch / "out-link.png").symlink_to(tmp_path / "outside.png")
    (batch / "in-link.png").symlink_to(batch / "real.png")
    (batch / "dangling.png").symlink_to(batch / "gone.png")
    (batch / os.fsdecode(b"bad-\xff.png")).write_bytes((batch / "real.png").read_bytes())
    docs = {d.source: d for d in discover_documents(batch)}
    assert set(docs) == {"real.png", "pipe.png", "out-link.png", "in-link.png", "dangling.png", "bad-\ufffd.png"}
    assert count_pages(docs["real.png"]) == 1
    for name, reason in (("pipe.png", "không phải tệp thường"), ("out-link.png", "liên kết"),
                         ("in-link.png", "liên kết"), ("dangling.png", "liên kết"),
                         ("bad-\ufffd.png", "UTF-8")):
        with pytest.raises(UnsupportedFileError, match=reason):
            count_pages(docs[name])


def test_every_pil_mode_loads_as_bgr(tmp_path: Path) -> None:
    grey = np.tile(np.arange(0, 250, 5, dtype=np.uint8), (40, 1))
    base = Image.fromarray(grey).convert("RGB")
    images = {
        "m1.png": base.convert("1"), "mL.png": base.convert("L"), "mP.png": base.convert("P"),
        "mRGBA.png": base.convert("RGBA"), "mCMYK.tif": base.convert("CMYK"), "mLAB.tif": base.convert("LAB"),
        "mI16.png": Image.fromarray(grey.astype(np.uint16) * 257), "mF.tif": Image.fromarray(grey.astype(np.float32)),
    }
    for name, img in images.items():
        img.save(tmp_path / name)
    for doc in discover_documents(tmp_path):
        (page,) = list(iter_pages(doc))
        assert page.image.dtype == np.uint8 and page.image.shape == (40, 50, 3), doc.source


def test_memory_budget_admits_pages_and_refuses_one_that_never_fits(tmp_path: Path) -> None:
    _page(tmp_path / "a.png", size=(200, 300))
    (doc,) = discover_documents(tmp_path)
    budget = MemoryBudget(200 * 300 * 16)  # exactly one such page
    (page,) = list(iter_pages(doc, budget=budget))
    assert page.admitted == 200 * 300 * 16 and budget.used == page.admitted
    budget.release(page.admitted)
    small = MemoryBudget(200 * 300 * 16 - 1)
    with pytest.raises(LimitExceededError, match=r"a.png.*bộ nhớ"):
        list(iter_pages(doc, budget=small))
    assert small.used == 0


def test_prefetch_and_document_survive_a_bomb_and_a_fifo(tmp_path: Path) -> None:
    """The prefetch thread and the document task: the bomb escaped from both before issue 18."""
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "bom.png").write_bytes(lying_png(40_000, 40_000))
    os.mkfifo(batch / "pipe.png")
    services = build_services(Settings(archive=tmp_path / "archive", workers=1))
    try:
        docs = discover_documents(batch)
        prefetch_pages(docs, services, max_pages=10)
        assert not services.prefetched
        results = {r.source: r for r in (digitise_document(d, "batch", services) for d in docs)}
        assert results["bom.png"].status == "failed" and "bom.png" in (results["bom.png"].error or "")
        assert results["pipe.png"].status == "failed" and "pipe.png" in (results["pipe.png"].error or "")
        assert memory_budget(services.settings).used == 0
        assert not any(services.work_dir.iterdir())
    finally:
        services.close()


@pytest.mark.slow
def test_ocr_timeout_on_page_1_holds_the_document_its_secrecy_unknown(tmp_path: Path) -> None:
    """Page 1 that tesseract cannot finish in SOHOA_PAGE_TIMEOUT_S (real tesseract, killed by the timeout): its
    secrecy mark was never read, so the document is held at intake like an unreadable stamp (fail closed) —
    nothing stored or catalogued, the reason names the timeout."""
    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(SAMPLE_BATCH / "nq_01.png", batch / "nq_01.png")
    services = build_services(Settings(archive=tmp_path / "archive", workers=1, page_timeout_s=0.05))
    try:
        (doc,) = discover_documents(batch)
        result = digitise_document(doc, "batch", services)
        assert result.status == "quarantined", result
        assert any("quá thời gian" in r for r in result.review_reasons)
        assert services.catalog.get(result.id or "") is None
    finally:
        services.close()


def test_ocr_timeout_on_a_later_page_keeps_it_as_an_image_with_a_review_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later page whose OCR times out (the engine's timeout, raised for page 2 only): the document is stored,
    that page has no text, the document is in the review queue with the reason."""
    from ocr_models.tesseract import OcrTimeout

    folder = tmp_path / "batch" / "vb"
    folder.mkdir(parents=True)
    shutil.copy(SAMPLE_BATCH / "nq_01.png", folder / "p1.png")
    shutil.copy(SAMPLE_BATCH / "nq_01.png", folder / "p2.png")
    services = build_services(Settings(archive=tmp_path / "archive", workers=1))
    engine = services.engine
    plain = engine.recognize

    def recognize(image: Path, *args: Any, **kwargs: Any) -> Any:
        if image.name.startswith("p0002"):
            raise OcrTimeout(f"{image.name}: quá thời gian")
        return plain(image, *args, **kwargs)

    monkeypatch.setattr(engine, "recognize", recognize)
    try:
        (doc,) = discover_documents(tmp_path / "batch")
        result = digitise_document(doc, "batch", services)
        assert result.status == "needs_review" and result.pages == 2, result
        assert any("trang 2" in r and "quá thời gian" in r for r in result.review_reasons)
        entry = services.catalog.get(result.id or "")
        assert entry is not None and entry.pages == 2
    finally:
        services.close()


def test_document_error_types_are_document_errors() -> None:
    assert issubclass(LimitExceededError, DocumentError)


@pytest.mark.slow
def test_reindex_skips_a_corrupt_manifest_and_verify_reports_an_unreadable_object(tmp_path: Path) -> None:
    """``sohoa reindex``: a corrupt manifest is reported and skipped, the rest rebuilds. ``verify``: an object the
    store cannot read (a permission error, simulated by the store: tests run as root) is a finding, not a crash."""
    from flows.fixity import verify_store
    from interfaces.cli import main
    from storage.layout import manifest_key, prefix_of, seal_key, seal_of
    from storage.objects import DirectoryObjectStore

    batch = tmp_path / "batch"
    batch.mkdir()
    for name in ("nq_01.png", "qd_05.jpg"):
        shutil.copy(SAMPLE_BATCH / name, batch / name)
    archive = tmp_path / "archive"
    services = build_services(Settings(archive=archive, workers=1))
    try:
        results = [digitise_document(d, "batch", services) for d in discover_documents(batch)]
        store = services.store
    finally:
        services.close()
    assert all(r.status in ("done", "needs_review") for r in results)
    broken, intact = (r.id or "" for r in results)
    body = b'{"id": "' + broken.encode() + b'", "pages": [trunc'
    store.put_bytes(seal_key(broken), seal_of(body))  # sealed garbage: not a changed manifest, an unreadable one
    store.put_bytes(manifest_key(broken), body)
    assert main(["reindex", "--archive", str(archive)]) == 7
    from storage.catalog import SqliteCatalog

    catalog = SqliteCatalog(archive / "catalog.sqlite")
    try:
        assert [e.id for e in catalog.entries()] == [intact]

        class Unreadable(DirectoryObjectStore):
            def sha256(self, key: str) -> str:
                if key.startswith(prefix_of(intact) + "pages/"):
                    raise PermissionError(13, "Permission denied", key)
                return super().sha256(key)

        report = verify_store(Unreadable(archive / "objects"), catalog=catalog, keep_report=False)
    finally:
        catalog.close()
    kinds = {(p.kind, p.document) for p in report.problems}
    assert ("unreadable", intact) in kinds and ("unreadable", broken) in kinds
    assert report.documents_checked == 2


def test_a_scanners_pdf_page_is_its_embedded_scan_admitted_by_the_budget() -> None:
    doc = next(d for d in discover_documents(SAMPLE_BATCH) if d.source == "bc_03.pdf")
    budget = MemoryBudget(2**31)
    pages = list(iter_pages(doc, budget=budget))
    assert pages and all(p.dpi == 200 and p.admitted == p.image.shape[0] * p.image.shape[1] * 16 for p in pages)
    assert budget.used == sum(p.admitted for p in pages)
