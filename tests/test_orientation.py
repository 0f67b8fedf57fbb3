"""Pages scanned upside down or sideways are turned upright before they are read (real tesseract)."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from flows.document import _process_page
from flows.wiring import build_services
from ocr_models.tesseract import parse_orientation
from pipeline.load import LoadedPage, discover_documents, iter_pages
from schemas.settings import Settings
from schemas.text import fold
from tests.conftest import SAMPLE_BATCH

OSD = """Page number: 0
Orientation in degrees: {deg}
Rotate: {rot}
Orientation confidence: {conf}
Script: Latin
Script confidence: 3.10
"""


def test_parse_orientation_reads_the_rotation() -> None:
    assert parse_orientation(OSD.format(deg=180, rot=180, conf=8.5)) == 180
    assert parse_orientation(OSD.format(deg=270, rot=90, conf=4.2)) == 90
    assert parse_orientation(OSD.format(deg=90, rot=270, conf=4.2)) == 270
    assert parse_orientation(OSD.format(deg=0, rot=0, conf=12.0)) == 0


def test_parse_orientation_never_turns_on_a_guess() -> None:
    assert parse_orientation(OSD.format(deg=180, rot=180, conf=0.3)) == 0  # unsure
    assert parse_orientation("") == 0  # too few characters: tesseract prints nothing
    assert parse_orientation("Rotate: 45\nOrientation confidence: 9\n") == 0


def _sample_page() -> LoadedPage:
    doc = next(d for d in discover_documents(SAMPLE_BATCH) if d.source == "nq_01.png")
    return next(iter_pages(doc))


@pytest.mark.slow
@pytest.mark.parametrize(("turn", "engine"), [
    (cv2.ROTATE_180, "tesseract-cli"), (cv2.ROTATE_90_CLOCKWISE, "tesseract-cli"),
    (cv2.ROTATE_90_CLOCKWISE, "tesserocr")])
def test_rotated_page_is_read_upright(tmp_path: Path, turn: int, engine: str) -> None:
    upright = _sample_page()
    page = LoadedPage(upright.number, cv2.rotate(upright.image, turn), upright.dpi)
    services = build_services(Settings(archive=tmp_path / "archive", workers=1, ocr_engine=engine))  # type: ignore[arg-type]
    work = tmp_path / "work"
    work.mkdir()
    try:
        services.page_slots.acquire()  # _process_page releases the slot of the page it was given
        out = _process_page(page, work, services)
    finally:
        services.close()
    assert out.steps.get("rotated_deg") in (90, 180, 270)
    assert out.ocr.confidence > 0.8
    assert "kinh te bien" in fold(out.ocr.text)
    assert out.ocr.width < out.ocr.height  # portrait again: the page layer is turned too
    image = cv2.imread(str(out.image_jpeg))
    assert image.shape[0] > image.shape[1]


def test_tessdata_dir_without_renderer_configs_is_refused_with_a_fix(tmp_path: Path) -> None:
    """A custom model folder must carry tesseract's configs/ and pdf.ttf, or no hOCR/PDF layer is written."""
    from ocr_models.tesseract import TesseractEngine
    from schemas.errors import ToolMissingError

    system = TesseractEngine().probe.tessdata_dir
    (tmp_path / "vie.traineddata").symlink_to(system / "vie.traineddata")
    with pytest.raises(ToolMissingError) as info:
        _ = TesseractEngine(tessdata_dir=tmp_path).probe
    assert "configs/hocr" in str(info.value) and "pdf.ttf" in str(info.value) and info.value.exit_code == 5
    (tmp_path / "configs").symlink_to(system / "configs")
    (tmp_path / "pdf.ttf").symlink_to(system / "pdf.ttf")
    assert TesseractEngine(tessdata_dir=tmp_path).probe.tessdata_dir == tmp_path
