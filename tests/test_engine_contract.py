"""The OCR engine contract (``ocr_models.engine.OcrEngine``), run against every adapter with real tesseract and
the real Vietnamese model on a rendered Vietnamese page. A new engine is added by passing this suite."""

from __future__ import annotations

import re
import stat
import subprocess
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pikepdf
import pytest
from PIL import Image, ImageDraw

from flows.wiring import build_engine
from ocr_models.engine import OcrEngine, OcrTimeout
from ocr_models.hocr import hocr_from_page, words_from_hocr
from ocr_models.tesseract import TesseractEngine
from ocr_models.tools import OcrWarning, tesseract_warnings
from pipeline.quality import DOUBTFUL_WORD_CONFIDENCE
from schemas.errors import OcrError, SohoaError
from schemas.settings import Settings
from tests.fixtures.generate_sample import font

ENGINES = ["tesseract-cli", "tesserocr"]
DPI = 300
LINES = [
    ("b", "ĐẢNG CỘNG SẢN VIỆT NAM"),
    ("r", "Số 27-NQ/TU"),
    ("b", "NGHỊ QUYẾT"),
    ("r", "về phát triển kinh tế biển đến năm 2030"),
    ("r", "Thành ủy quyết nghị những nội dung sau đây"),
]
SIZE = (1800, 1000)  # 6 × 3.3 inches at 300 dpi


def _render(lines: list[tuple[str, str]]) -> np.ndarray:
    image = Image.new("L", SIZE, 255)
    draw = ImageDraw.Draw(image)
    for i, (style, text) in enumerate(lines):
        draw.text((150, 120 + 150 * i), text, font=font(style, 50), fill=0)
    return np.asarray(image)


@pytest.fixture(scope="module")
def page_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "page.pgm"
    cv2.imwrite(str(path), _render(LINES))
    return path


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> OcrEngine:
    return build_engine(Settings(ocr_engine=request.param))


@pytest.fixture(scope="module")
def reading(engine: OcrEngine, page_image: Path) -> object:
    return engine.recognize(page_image, dpi=DPI, number=3)


def _turned(page_image: Path, turn: int, tmp_path: Path) -> Path:
    path = tmp_path / f"turned{turn}.pgm"
    cv2.imwrite(str(path), cv2.rotate(cv2.imread(str(page_image), cv2.IMREAD_GRAYSCALE), turn))
    return path


def test_words_have_boxes_inside_the_page_and_confidences_in_range(engine: OcrEngine, reading: object) -> None:
    page = reading.page  # type: ignore[attr-defined]
    assert (page.number, page.width, page.height, page.dpi) == (3, SIZE[0], SIZE[1], DPI)
    assert len(page.words) >= 25
    for word in page.words:
        x0, y0, x1, y1 = word.box
        assert 0 <= x0 < x1 <= page.width and 0 <= y0 < y1 <= page.height, word
        assert 0.0 <= word.confidence <= 1.0
    assert 0.8 < page.confidence <= 1.0  # a clean page is read with confidence
    assert page.warnings == []


def test_text_is_nfc_vietnamese_in_lines(engine: OcrEngine, reading: object) -> None:
    page = reading.page  # type: ignore[attr-defined]
    assert unicodedata.is_normalized("NFC", page.text) and "\u00d0" not in page.text
    assert all(unicodedata.is_normalized("NFC", w.text) for w in page.words)
    lines = [" ".join(w.text for w in line) for line in page.lines()]
    assert lines == [text for _, text in LINES]
    assert page.text.split("\n") == lines or page.text.replace("\n\n", "\n").split("\n") == lines
    assert [w.line for w in page.words] == sorted(w.line for w in page.words)  # engine reading order


def test_text_layer_is_a_one_page_searchable_pdf_of_the_page_geometry(reading: object, tmp_path: Path) -> None:
    pdf_path = tmp_path / "layer.pdf"
    pdf_path.write_bytes(reading.text_pdf)  # type: ignore[attr-defined]
    with pikepdf.open(pdf_path) as pdf:
        assert len(pdf.pages) == 1
        box = [float(v) for v in pdf.pages[0].mediabox]
        assert box[2] - box[0] == pytest.approx(SIZE[0] * 72 / DPI, abs=0.5)
        assert box[3] - box[1] == pytest.approx(SIZE[1] * 72 / DPI, abs=0.5)
        assert not pdf.pages[0].images  # text only: the flow draws the page image under it
    text = subprocess.run(["pdftotext", str(pdf_path), "-"], capture_output=True, text=True, check=True).stdout
    assert "VIỆT NAM" in unicodedata.normalize("NFC", text) and "27-NQ/TU" in text


def test_hocr_is_written_from_the_page_and_reads_back_the_same_words(reading: object) -> None:
    page = reading.page  # type: ignore[attr-defined]
    words, size = words_from_hocr(hocr_from_page(page))
    assert size == (page.width, page.height)
    assert [(w.text, w.box, w.line, w.block) for w in words] == [(w.text, w.box, w.line, w.block) for w in page.words]
    assert all(abs(a.confidence - b.confidence) <= 0.005 for a, b in zip(words, page.words, strict=True))


@pytest.mark.parametrize(("turn", "expected"), [(cv2.ROTATE_90_COUNTERCLOCKWISE, 90), (cv2.ROTATE_180, 180),
                                                (cv2.ROTATE_90_CLOCKWISE, 270)])
def test_orientation_of_a_turned_page(engine: OcrEngine, page_image: Path, tmp_path: Path, turn: int,
                                      expected: int) -> None:
    """The clockwise rotation that makes the page upright (what ``flows.page_ocr`` applies)."""
    assert engine.detect_orientation(_turned(page_image, turn, tmp_path), dpi=DPI) == expected


def test_an_upright_or_blank_page_is_not_turned(engine: OcrEngine, page_image: Path, tmp_path: Path) -> None:
    assert engine.detect_orientation(page_image, dpi=DPI) == 0
    blank = tmp_path / "blank.pgm"
    cv2.imwrite(str(blank), np.full((1000, 800), 255, np.uint8))
    assert engine.detect_orientation(blank, dpi=DPI) == 0


def test_cut_out_lines_are_read_one_by_one(engine: OcrEngine, tmp_path: Path) -> None:
    images = []
    for i, (style, text) in enumerate([LINES[1], LINES[0]]):
        face = font(style, 50)
        image = Image.new("L", (80 + round(face.getlength(text)), 100), 255)
        ImageDraw.Draw(image).text((40, 20), text, font=face, fill=0)
        images.append(tmp_path / f"line{i}.pgm")
        image.save(images[-1])
    blank = tmp_path / "blank.pgm"
    Image.fromarray(np.full((100, 400), 255, np.uint8)).save(blank)
    read = engine.read_lines([*images, blank], dpi=DPI)
    assert [" ".join(w.text for w in words) for words in read[:2]] == [LINES[1][1], LINES[0][1]]
    # nothing to read: no word as much as trusted (tesseract 5.5 reads a blank line as a '¬' at 0.52, 5.3 lower)
    assert len(read) == 3 and all(w.confidence < DOUBTFUL_WORD_CONFIDENCE for w in read[2])
    assert engine.read_lines([], dpi=DPI) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blank.pgm", "line0.pgm", "line1.pgm"]  # no scratch


def test_a_blank_page_reads_empty_with_a_warning(engine: OcrEngine, tmp_path: Path) -> None:
    blank = tmp_path / "blank.pgm"
    cv2.imwrite(str(blank), np.full((1000, 800), 255, np.uint8))
    reading = engine.recognize(blank, dpi=DPI, number=1)
    assert reading.page.words == [] and reading.page.text == ""
    assert OcrWarning.EMPTY_PAGE in reading.page.warnings
    with pikepdf.open(__import__("io").BytesIO(reading.text_pdf)) as pdf:
        assert len(pdf.pages) == 1


def test_version_languages_and_provenance(engine: OcrEngine) -> None:
    assert engine.languages() == ("vie",)
    prov = engine.provenance()
    assert prov["adapter"] == engine.name and prov["engine"] == "tesseract"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", str(prov["version"])), prov["version"]
    models = prov["models"]
    assert isinstance(models, dict) and re.fullmatch(r"[0-9a-f]{64}", models["vie"]["sha256"])
    params = prov["parameters"]
    assert isinstance(params, dict) and params["lang"] == "vie" and params["psm"] == 3 and params["oem"] == 1
    assert params["user_words"]["file"] == "vie.user-words"  # the vocabulary is in use in every adapter


def test_a_page_over_the_time_limit_raises_the_error_tree_timeout(page_image: Path, request: pytest.FixtureRequest,
                                                                  engine: OcrEngine) -> None:
    slow = build_engine(Settings(ocr_engine=engine.name, page_timeout_s=0.01))
    with pytest.raises(OcrTimeout) as info:
        slow.recognize(page_image, dpi=DPI, number=1)
    assert isinstance(info.value, OcrError) and isinstance(info.value, SohoaError)
    assert sorted(p.name for p in page_image.parent.iterdir()) == ["page.pgm"]  # no scratch left


# --- tesseract's stderr warnings become signals on the page -----------------------------------------------------


def test_tesseract_stderr_lines_become_warning_codes() -> None:
    stderr = ("Estimating resolution as 301\nDetected 112 diacritics\nlots of diacritics - possibly poor OCR\n"
              "Empty page!!\nlots of diacritics - possibly poor OCR\n")
    assert tesseract_warnings(stderr) == [OcrWarning.POOR_DIACRITICS, OcrWarning.EMPTY_PAGE]
    assert tesseract_warnings("Estimating resolution as 301\nDetected 3 diacritics\n") == []


def test_the_command_adapter_turns_a_stderr_warning_into_a_page_signal(page_image: Path, tmp_path: Path) -> None:
    """A tesseract that warns on stderr (the real one, wrapped): the page carries the warning code."""
    wrapper = tmp_path / "tesseract"
    wrapper.write_text('#!/bin/sh\ntesseract "$@"\ncode=$?\necho "lots of diacritics - possibly poor OCR" >&2\n'
                       "exit $code\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    reading = TesseractEngine(cmd=str(wrapper)).recognize(page_image, dpi=DPI, number=1)
    assert reading.page.warnings == [OcrWarning.POOR_DIACRITICS]
    assert len(reading.page.words) >= 25


def test_a_failing_tesseract_raises_an_ocr_error(page_image: Path, tmp_path: Path) -> None:
    wrapper = tmp_path / "tesseract"
    wrapper.write_text('#!/bin/sh\ncase "$1" in --*) exec tesseract "$@";; esac\necho "boom" >&2\nexit 1\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(OcrError, match="boom"):
        TesseractEngine(cmd=str(wrapper)).recognize(page_image, dpi=DPI, number=1)


def _warning_tesseract(tmp_path: Path) -> Path:
    wrapper = tmp_path / "bin" / "tesseract"
    wrapper.parent.mkdir()
    wrapper.write_text('#!/bin/sh\ntesseract "$@"\ncode=$?\n'
                       'case "$*" in *"--psm 3"*) echo "lots of diacritics - possibly poor OCR" >&2;; esac\n'
                       "exit $code\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


@pytest.mark.slow
def test_an_engine_warning_puts_the_document_in_review(tmp_path: Path) -> None:
    """The flow turns the page's warning into a review reason (code and Vietnamese wording) and keeps it in the
    page's provenance steps."""
    import shutil

    from flows.document import digitise_document, load_manifest
    from flows.wiring import build_services
    from pipeline.load import discover_documents
    from schemas.reasons import ReasonCode, describe
    from tests.conftest import SAMPLE_BATCH

    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(SAMPLE_BATCH / "nq_01.png", batch / "nq_01.png")
    settings = Settings(archive=tmp_path / "archive", workers=1, tesseract_cmd=str(_warning_tesseract(tmp_path)))
    services = build_services(settings)
    try:
        (doc,) = discover_documents(batch)
        result = digitise_document(doc, "batch", services)
        manifest = load_manifest(result.id or "", services)
    finally:
        services.close()
    assert result.status == "needs_review", result
    (warned,) = [r for r in result.review_reason_codes if r.code is ReasonCode.OCR_WARNING]
    assert warned.params == {"page": 1, "warning": "poor_diacritics"}
    assert describe(warned).startswith("trang 1: ") and "dấu" in describe(warned)
    assert manifest is not None and manifest.pages[0].preprocessing["ocr_warnings"] == ["poor_diacritics"]


def test_only_the_tool_helper_starts_processes_in_ocr_models() -> None:
    """Every external tool of ``ocr_models`` runs through ``ocr_models.tools.run_tool`` (time limit, stderr)."""
    import ast

    root = Path(__file__).resolve().parents[1] / "ocr_models"
    starting = set()
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] in ("subprocess", "pytesseract") for n in names):
                starting.add(path.name)
    assert starting == {"tools.py"}


@pytest.mark.slow
def test_a_document_read_in_process_is_a_searchable_two_layer_pdfa(tmp_path: Path) -> None:
    """The whole flow with ``SOHOA_OCR_ENGINE=tesserocr``: PDF/A-2b with the image and the engine's text layer,
    the stored hOCR written from the page, the adapter in the provenance."""
    import shutil

    from ocrmypdf.pdfa import file_claims_pdfa

    from flows.document import digitise_document, load_manifest
    from flows.wiring import build_services
    from pipeline.load import discover_documents
    from storage.layout import prefix_of
    from tests.conftest import SAMPLE_BATCH

    batch = tmp_path / "batch"
    batch.mkdir()
    shutil.copy(SAMPLE_BATCH / "nq_01.png", batch / "nq_01.png")
    services = build_services(Settings(archive=tmp_path / "archive", workers=1, ocr_engine="tesserocr"))
    try:
        (doc,) = discover_documents(batch)
        result = digitise_document(doc, "batch", services)
        manifest = load_manifest(result.id or "", services)
        assert manifest is not None and result.status in ("done", "needs_review"), result
        objects = {f.role: services.store.get_bytes(prefix_of(manifest.id) + f.key) for f in manifest.files}
    finally:
        services.close()
    pdf_path = tmp_path / "doc.pdf"
    pdf_path.write_bytes(objects["pdfa"])
    assert file_claims_pdfa(pdf_path)["conformance"] == "PDF/A-2b"
    with pikepdf.open(pdf_path) as pdf:
        assert len(pdf.pages) == 1 and len(pdf.pages[0].images) == 1 and pdf.pages[0].Resources.Font
    text = subprocess.run(["pdftotext", str(pdf_path), "-"], capture_output=True, text=True, check=True).stdout
    assert "27-NQ/TU" in text and len(text) > 500
    words, _ = words_from_hocr(objects["hocr"].decode("utf-8"))
    assert len(words) == manifest.pages[0].words and "sohoa (tesserocr)" in objects["hocr"].decode("utf-8")
    ocr = manifest.provenance["ocr"]
    assert isinstance(ocr, dict) and ocr["adapter"] == "tesserocr" and ocr["version"]
