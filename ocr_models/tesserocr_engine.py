"""Tesseract in-process through ``tesserocr``: the ``OcrEngine`` adapter with no process per page.

Each worker thread holds its own ``PyTessBaseAPI`` (the model is loaded once per thread and reused for every page;
an API must never be shared between threads). Measured on this machine (PLATFORM.md, "Tesseract in-process"):
the resolution must be given (``SetSourceResolution``, or ``user_defined_dpi`` for a file) or tesseract estimates
it and a page costs 1.6–1.8× the command's time; the wheel's own tessdata path is not Debian's, so the model
folder is always passed.

A page is read with ``ProcessPages`` on the image file and the PDF renderer on (``textonly_pdf``): one recognition
gives the text-only PDF layer the PDF/A needs, and the words, lines and confidences are then read from the same
results with the result iterator. In-process, tesseract's stderr cannot be told apart per page: the page's
``warnings`` carry only what the results show (``empty_page``); the command adapter also reports
``poor_diacritics``.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

from ocr_models.engine import OcrTimeout
from ocr_models.hocr import page_of_words
from ocr_models.tesseract import (
    TesseractProbe,
    check_models,
    probe_tesseract,
    tesseract_provenance,
    upright_rotation,
)
from ocr_models.tools import page_warnings
from schemas.errors import OcrError, ToolMissingError
from schemas.ocr import OcrWord, PageReading
from schemas.text import clean_ocr_text

log = logging.getLogger("sohoa.tesseract")

DEBIAN_TESSDATA = Path("/usr/share/tesseract-ocr/5/tessdata")
MIN_ORIENTATION_CONFIDENCE = 1.0  # as the command adapter: below it the guess is a coin toss, the page is kept
_FIX = "cài đặt: pip install tesserocr (gói kèm tesseract 5.5) và apt-get install -y tesseract-ocr-vie"


def _tesserocr() -> Any:
    try:
        import tesserocr
    except ImportError as exc:
        raise ToolMissingError(f"Không nạp được tesserocr: {exc}", fix=_FIX) from exc
    return tesserocr


def words_of(api: Any) -> list[OcrWord]:
    """The recognised words in reading order, with line and block indices (as the hOCR of the same page)."""
    tesserocr = _tesserocr()
    ril = tesserocr.RIL
    words: list[OcrWord] = []
    iterator = api.GetIterator()
    if iterator is None:
        return words
    line = block = -1
    iterator.Begin()
    while True:
        if iterator.IsAtBeginningOf(ril.BLOCK):
            block += 1
        if iterator.IsAtBeginningOf(ril.TEXTLINE):
            line += 1
        empty = iterator.Empty(ril.WORD)  # on no text (an image block, an empty page): nothing to read there
        text = "" if empty else clean_ocr_text(iterator.GetUTF8Text(ril.WORD) or "").strip()
        box = None if empty else iterator.BoundingBox(ril.WORD)
        if text and box is not None:
            confidence = min(1.0, max(0.0, iterator.Confidence(ril.WORD) / 100.0))
            words.append(OcrWord(text=text, box=tuple(box), confidence=confidence, line=line, block=block))
        if not iterator.Next(ril.WORD):
            return words


@dataclass
class TesserocrEngine:
    """``OcrEngine`` backed by libtesseract in this process (``Settings.ocr_engine = "tesserocr"``)."""

    lang: str = "vie"
    psm: int = 3
    oem: int = 1
    tessdata_dir: Path | None = None  # None: the system tesseract's folder, else Debian's
    timeout_s: float = 300.0
    extra_config: dict[str, str] = field(default_factory=dict)
    user_words: Path | None = None
    user_patterns: Path | None = None
    cmd: str = "tesseract"  # only to find the system's tessdata folder when none is given
    name: str = "tesserocr"
    _local: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    @cached_property
    def model_dir(self) -> Path:
        if self.tessdata_dir is not None:
            return self.tessdata_dir
        try:
            return probe_tesseract(self.cmd).tessdata_dir
        except ToolMissingError:
            return DEBIAN_TESSDATA

    @cached_property
    def probe(self) -> TesseractProbe:
        tesserocr = _tesserocr()
        banner = tesserocr.tesseract_version()
        _, langs = tesserocr.get_languages(f"{self.model_dir}/")
        lepto = next((ln.strip() for ln in banner.splitlines() if "leptonica" in ln), "")
        found = TesseractProbe(version=banner.split()[1] if len(banner.split()) > 1 else "", leptonica=lepto,
                               tessdata_dir=self.model_dir, languages=tuple(sorted(langs)))
        check_models(found, self.lang)
        return found

    def languages(self) -> tuple[str, ...]:
        _ = self.probe
        return tuple(self.lang.split("+"))

    def _variables(self) -> dict[str, str]:
        variables = {"tessedit_create_pdf": "1", "textonly_pdf": "1", **self.extra_config}
        if self.user_words:
            variables["user_words_file"] = str(self.user_words)
        if self.user_patterns:
            variables["user_patterns_file"] = str(self.user_patterns)
        return variables

    def _api(self) -> Any:
        """This thread's API, the model loaded on first use."""
        api = getattr(self._local, "api", None)
        if api is None:
            _ = self.probe
            tesserocr = _tesserocr()
            try:
                api = tesserocr.PyTessBaseAPI(path=f"{self.model_dir}/", lang=self.lang, oem=self.oem, psm=self.psm,
                                              variables=self._variables())
            except RuntimeError as exc:
                raise ToolMissingError(f"Không nạp được mô hình {self.lang} từ {self.model_dir}: {exc}",
                                       fix=_FIX) from exc
            self._local.api = api
        return api

    def _osd_api(self) -> Any | None:
        """This thread's orientation API (``osd`` model), or None when the model is missing."""
        if not hasattr(self._local, "osd"):
            tesserocr = _tesserocr()
            try:
                self._local.osd = tesserocr.PyTessBaseAPI(path=f"{self.model_dir}/", lang="osd",
                                                          psm=tesserocr.PSM.OSD_ONLY)
            except RuntimeError as exc:
                log.warning("không nạp được mô hình osd: %s", exc)
                self._local.osd = None
        return self._local.osd  # type: ignore[no-any-return]

    def recognize(self, image_path: Path, *, dpi: int, number: int) -> PageReading:
        api = self._api()
        api.SetPageSegMode(self.psm)
        api.SetVariable("user_defined_dpi", str(dpi))  # ProcessPages reads the file: give its resolution
        with tempfile.TemporaryDirectory(prefix=f"{image_path.stem}.", dir=image_path.parent) as scratch:
            out_base = Path(scratch) / "page"
            started = time.monotonic()
            done = api.ProcessPages(str(out_base), str(image_path), timeout=self._timeout_ms(self.timeout_s))
            if not done:
                self._raise_failure(started, self.timeout_s, f"trên {image_path.name}")
            text_pdf = out_base.with_suffix(".pdf")
            if not text_pdf.exists():
                raise OcrError(f"tesserocr không ghi được lớp chữ PDF cho {image_path.name}")
            pdf_bytes = text_pdf.read_bytes()
        words = words_of(api)
        page = page_of_words(words, number=number, dpi=dpi, size=_image_size(image_path))
        page.warnings = page_warnings("", words=len(words))
        api.Clear()
        return PageReading(page=page, text_pdf=pdf_bytes)

    def read_lines(self, images: list[Path], *, dpi: int) -> list[list[OcrWord]]:
        if not images:
            return []
        from PIL import Image

        api = self._api()
        api.SetPageSegMode(_tesserocr().PSM.SINGLE_LINE)
        started = time.monotonic()
        read: list[list[OcrWord]] = []
        try:
            for path in images:
                left = self.timeout_s - (time.monotonic() - started)
                if left <= 0:
                    raise OcrTimeout(f"tesserocr quá {self.timeout_s:.0f} s khi đọc lại dòng của {images[0].name}")
                with Image.open(path) as image:
                    api.SetImage(image)
                api.SetSourceResolution(dpi)
                if not api.Recognize(timeout=self._timeout_ms(left)):
                    self._raise_failure(started, self.timeout_s, f"khi đọc lại dòng của {images[0].name}")
                read.append(words_of(api))
        finally:
            api.Clear()
            api.SetPageSegMode(self.psm)
        return read

    def detect_orientation(self, image_path: Path, *, dpi: int) -> int:
        from PIL import Image

        osd = self._osd_api()
        if osd is None:
            return 0
        with Image.open(image_path) as image:
            osd.SetImage(image)
        osd.SetSourceResolution(dpi)
        found = osd.DetectOrientationScript()
        osd.Clear()
        if not found or float(found.get("orient_conf", 0.0)) < MIN_ORIENTATION_CONFIDENCE:
            return 0
        # orient_deg: how far the image is turned clockwise; turning it back is the rest of the circle
        return upright_rotation(360 - int(found["orient_deg"]))

    def provenance(self) -> dict[str, object]:
        return tesseract_provenance(self, self.probe, tesserocr=getattr(_tesserocr(), "__version__", ""))

    @staticmethod
    def _timeout_ms(seconds: float) -> int:
        return max(1, int(seconds * 1000))

    @staticmethod
    def _raise_failure(started: float, timeout_s: float, what: str) -> NoReturn:
        """A ``False`` from tesseract: a time-out when the time is (nearly) spent, else a failure."""
        if time.monotonic() - started >= 0.9 * timeout_s:
            raise OcrTimeout(f"tesserocr quá {timeout_s:.0f} s {what}")
        raise OcrError(f"tesserocr lỗi {what}")


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as image:
        return image.size
