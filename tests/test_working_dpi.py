"""Pages scanned finer than ``SOHOA_MAX_WORKING_DPI`` (default 300) are reduced to it as they are decoded
(issue 21, part 3: memory that fits small machines); pages at or below it are decoded exactly as before."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from flows.document import MemoryBudget, _SlotAndBytes
from pipeline.load import DEFAULT_LIMITS, Limits, discover_documents, iter_pages
from schemas.errors import LimitExceededError
from schemas.settings import Settings

NO_CAP = Limits(max_working_dpi=0)


def _text_page(size: tuple[int, int] = (1200, 1600)) -> np.ndarray:
    """An RGB page with black text strokes and a red block (so colour survives the reduction)."""
    page = np.full((size[1], size[0], 3), 250, np.uint8)
    for row in range(100, size[1] - 100, 60):
        cv2.putText(page, "Nghi quyet 15-NQ/TU", (80, row), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (0, 0, 0), 3)
    page[40:90, size[0] - 200:size[0] - 60] = (220, 30, 30)
    return page


def _only_page(folder: Path, limits: Limits = DEFAULT_LIMITS) -> tuple[np.ndarray, int]:
    (doc,) = discover_documents(folder)
    (page,) = list(iter_pages(doc, limits=limits))
    return page.image, page.dpi


@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg"])
def test_a_600_dpi_page_is_worked_on_at_300_dpi(tmp_path: Path, suffix: str) -> None:
    rgb = _text_page()
    Image.fromarray(rgb).save(tmp_path / f"p{suffix}", dpi=(600, 600))
    image, dpi = _only_page(tmp_path)
    assert dpi == 300 and image.shape == (800, 600, 3)
    full, full_dpi = _only_page(tmp_path, NO_CAP)
    assert full_dpi == 600 and full.shape == (1600, 1200, 3)
    expected = cv2.resize(full, (600, 800), interpolation=cv2.INTER_AREA)  # an area average of the full scan
    assert float(np.mean(np.abs(image.astype(np.int16) - expected))) < 4.0
    assert tuple(int(v) for v in image[32, 535]) == pytest.approx((30, 30, 220), abs=12)  # red stays red, as BGR


def test_a_page_at_or_below_the_cap_is_decoded_unchanged(tmp_path: Path) -> None:
    rgb = _text_page((600, 800))
    Image.fromarray(rgb).save(tmp_path / "p.png", dpi=(300, 300))
    image, dpi = _only_page(tmp_path)
    assert dpi == 300 and np.array_equal(image, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_a_page_without_a_declared_resolution_is_never_reduced(tmp_path: Path) -> None:
    """An estimated resolution is a guess (an A3 page at 300 dpi reads as 424 dpi from its width)."""
    Image.fromarray(_text_page((3508, 4961))).save(tmp_path / "a3.png")
    image, dpi = _only_page(tmp_path)
    assert image.shape == (4961, 3508, 3) and dpi == 424


def test_a_bilevel_600_dpi_scan_is_averaged_not_decimated(tmp_path: Path) -> None:
    grey = cv2.cvtColor(_text_page(), cv2.COLOR_RGB2GRAY)
    Image.fromarray(grey).point(lambda v: 255 if v > 128 else 0).convert("1").save(tmp_path / "b.tif", dpi=(600, 600))
    image, dpi = _only_page(tmp_path)
    assert dpi == 300 and image.shape == (800, 600, 3)
    assert np.count_nonzero((image[..., 0] > 0) & (image[..., 0] < 255)) > 1000  # stroke edges became grey


def test_an_exif_turned_600_dpi_jpeg_keeps_its_turned_shape(tmp_path: Path) -> None:
    img = Image.fromarray(_text_page())
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    img.save(tmp_path / "phone.jpg", dpi=(600, 600), exif=exif)
    image, dpi = _only_page(tmp_path)
    assert dpi == 300 and image.shape == (600, 800, 3)


def test_a_scanners_600_dpi_pdf_page_is_taken_at_300_dpi(tmp_path: Path) -> None:
    Image.fromarray(_text_page()).save(tmp_path / "scan.pdf", resolution=600.0)
    image, dpi = _only_page(tmp_path)
    assert dpi == 300 and image.shape == (800, 600, 3)


def test_the_setting_reaches_the_loader() -> None:
    from flows.document import limits_of

    assert limits_of(Settings()).max_working_dpi == 300
    assert limits_of(Settings(max_working_dpi=0)).max_working_dpi == 0


def test_a_page_waits_for_a_slot_before_it_is_decoded(tmp_path: Path) -> None:
    """The slot is taken at admission, before decoding: a page blocked on it holds no pixels yet."""
    Image.fromarray(_text_page((200, 300))).save(tmp_path / "a.png", dpi=(300, 300))
    (doc,) = discover_documents(tmp_path)

    class Services:  # what _SlotAndBytes reads
        page_slots = threading.BoundedSemaphore(1)
        settings = Settings(max_memory_mb=64)

    services = Services()
    admission = _SlotAndBytes(services)  # type: ignore[arg-type]
    services.page_slots.acquire()  # the only slot is taken by another page
    decoded: list[object] = []
    loader = threading.Thread(target=lambda: decoded.extend(iter_pages(doc, budget=admission)), daemon=True)
    loader.start()
    loader.join(timeout=0.5)
    assert loader.is_alive() and not decoded  # waiting for the slot, nothing decoded
    services.page_slots.release()
    loader.join(timeout=30)
    assert len(decoded) == 1
    admission.release(decoded[0].admitted)  # type: ignore[attr-defined]
    services.page_slots.acquire(blocking=False)  # the slot came back


def test_a_page_too_large_for_the_memory_budget_gives_its_slot_back(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(_text_page((2000, 2000))).save(buf, format="PNG", dpi=(300, 300))
    (tmp_path / "big.png").write_bytes(buf.getvalue())
    (doc,) = discover_documents(tmp_path)

    class Services:
        page_slots = threading.BoundedSemaphore(1)
        settings = Settings()

    services = Services()
    admission = _SlotAndBytes(services)  # type: ignore[arg-type]
    admission.bytes = MemoryBudget(1000)  # 2000 × 2000 × 16 B never fits
    with pytest.raises(LimitExceededError):
        list(iter_pages(doc, budget=admission))
    assert services.page_slots.acquire(blocking=False)  # released when the page was refused


@pytest.mark.parametrize("size", [(1200, 1600), (40, 9921)])  # a factor 2 exactly; a 600-dpi A3 page's height
def test_a_page_reduced_band_by_band_is_the_whole_page_box_filter(monkeypatch: pytest.MonkeyPatch,
                                                                   size: tuple[int, int]) -> None:
    """``pipeline.pixels`` reduces a band of rows at a time (memory); the result is PIL's whole-page reduction."""
    import pipeline.pixels as pixels

    monkeypatch.setattr(pixels, "BAND_PIXELS", 2000)  # many bands, each a few rows
    rgb = np.random.default_rng(7).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = (size[0] // 2, round(size[1] / 2))
    whole = np.asarray(Image.fromarray(rgb).resize(out, Image.Resampling.BOX))
    banded = pixels.reduced_bgr(Image.fromarray(rgb), out)
    assert np.array_equal(banded, cv2.cvtColor(whole, cv2.COLOR_RGB2BGR))
    grey = Image.fromarray(rgb[..., 1])
    assert np.array_equal(pixels.reduced_bgr(grey, out)[..., 0], np.asarray(grey.resize(out, Image.Resampling.BOX)))


def test_a_page_reduced_as_it_is_decoded_is_admitted_by_its_decode_and_working_size(tmp_path: Path) -> None:
    """Not by 16 bytes for each pixel of the scan: a 600-dpi page worked on at 300 dpi never holds a full-size BGR
    copy (``pipeline.load.DECODE_BYTES_PER_PIXEL``), so a budget too small for the old estimate admits it."""
    from pipeline.load import BYTES_PER_PIXEL, DECODE_BYTES_PER_PIXEL

    Image.fromarray(_text_page()).save(tmp_path / "p.png", dpi=(600, 600))
    (doc,) = discover_documents(tmp_path)
    full, working = 1200 * 1600, 600 * 800
    expected = max(full * DECODE_BYTES_PER_PIXEL, working * BYTES_PER_PIXEL)
    assert expected < full * BYTES_PER_PIXEL
    budget = MemoryBudget(expected)
    (page,) = list(iter_pages(doc, budget=budget))
    assert page.admitted == expected and budget.used == expected and page.image.shape == (800, 600, 3)
    (unreduced,) = list(iter_pages(doc, limits=NO_CAP, budget=MemoryBudget(full * BYTES_PER_PIXEL)))
    assert unreduced.admitted == full * BYTES_PER_PIXEL  # worked on at 600 dpi: as before
