"""Tesseract as a command: the ``OcrEngine`` adapter that runs one tesseract process per page.

One run per page writes both the hOCR (read here into the page's words) and a text-only PDF page (the invisible
text layer of the PDF/A), so every page is recognised exactly once. Every run goes through
``ocr_models.tools.run_tool`` (``OMP_THREAD_LIMIT=1``, a time limit); tesseract's stderr warnings become the page's
``warnings``. The probe and the vocabulary files are shared with the in-process adapter
(``ocr_models.tesserocr_engine``).
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

from ocr_models.engine import OcrTimeout
from ocr_models.hocr import page_from_hocr, split_hocr_pages, words_from_hocr
from ocr_models.tools import INSTALL_FIX, page_warnings, run_tool
from schemas.checksums import sha256_file
from schemas.errors import OcrError, ToolMissingError
from schemas.ocr import OcrWord, PageReading

log = logging.getLogger("sohoa.tesseract")

__all__ = ["USER_PATTERNS", "USER_WORDS", "OcrTimeout", "TesseractEngine", "TesseractProbe", "parse_orientation",
           "probe_tesseract"]

_LANGS_DIR_RE = re.compile(r'"(.+?)"')
_VERSION_RE = re.compile(r"tesseract\s+v?(\S+)")
_ROTATE_RE = re.compile(r"^Rotate:\s*(\d+)", re.MULTILINE)
_ORIENT_CONF_RE = re.compile(r"^Orientation confidence:\s*([\d.]+)", re.MULTILINE)
MIN_ORIENTATION_CONFIDENCE = 1.0  # below this tesseract's orientation guess is a coin toss: keep the page
PROBE_TIMEOUT_S = 30.0

VOCABULARY_DIR = Path(__file__).resolve().parent / "vocabulary"
USER_WORDS = VOCABULARY_DIR / "vie.user-words"  # administrative words of Party and state documents
USER_PATTERNS = VOCABULARY_DIR / "vie.user-patterns"  # shapes of number-symbols (15-NQ/TU, 123/QĐ-UBND)

RENDERER_FILES = ("configs/hocr", "configs/pdf", "pdf.ttf")  # what the hocr and pdf outputs need in tessdata


@dataclass(frozen=True)
class TesseractProbe:
    """What is installed: version, tessdata folder, languages."""

    version: str
    leptonica: str
    tessdata_dir: Path
    languages: tuple[str, ...]


def probe_tesseract(cmd: str = "tesseract", tessdata_dir: Path | None = None) -> TesseractProbe:
    """Find tesseract and its models, or raise ``ToolMissingError`` with the install command."""
    try:
        raw = run_tool([cmd, "--version"], timeout_s=PROBE_TIMEOUT_S, what="(phiên bản)")
        args = [cmd, "--list-langs"] + (["--tessdata-dir", str(tessdata_dir)] if tessdata_dir else [])
        listed = run_tool(args, timeout_s=PROBE_TIMEOUT_S, what="(danh sách ngôn ngữ)")
    except OcrTimeout as exc:
        raise ToolMissingError(f"Không chạy được tesseract ({cmd}): {exc}", fix=INSTALL_FIX) from exc
    if raw.returncode != 0 or listed.returncode != 0:
        raise ToolMissingError(f"Không chạy được tesseract ({cmd}): {(raw.stderr or listed.stderr)[-300:]}",
                               fix=INSTALL_FIX)
    banner = raw.stdout or raw.stderr  # tesseract 3 printed its version on stderr
    version = _VERSION_RE.search(banner)
    lepto = next((ln.strip() for ln in banner.splitlines() if "leptonica" in ln), "")
    listing = listed.stdout
    m = _LANGS_DIR_RE.search(listing.splitlines()[0] if listing else "")
    folder = Path(m.group(1)) if m else (tessdata_dir or Path())
    langs = tuple(ln.strip() for ln in listing.splitlines()[1:] if ln.strip())
    return TesseractProbe(version=version.group(1) if version else "", leptonica=lepto, tessdata_dir=folder,
                          languages=langs)


def check_models(found: TesseractProbe, lang: str) -> None:
    """``ToolMissingError`` when a language model or the hOCR/PDF renderer files are missing from tessdata."""
    missing = [code for code in lang.split("+") if code not in found.languages]
    if missing:
        raise ToolMissingError(f"Thiếu mô hình ngôn ngữ tesseract: {', '.join(missing)}",
                               fix="cài đặt: apt-get install -y tesseract-ocr-vie")
    lacking = [name for name in RENDERER_FILES if not (found.tessdata_dir / name).exists()]
    if lacking:
        raise ToolMissingError(
            f"Thư mục tessdata {found.tessdata_dir} thiếu {', '.join(lacking)} (cần để xuất hOCR và lớp chữ PDF)",
            fix="sao chép configs/ và pdf.ttf từ /usr/share/tesseract-ocr/5/tessdata vào thư mục đó",
        )


def model_provenance(tessdata_dir: Path, lang: str) -> dict[str, object]:
    """File, SHA-256 and size of each language model in use."""
    models: dict[str, object] = {}
    for code in lang.split("+"):
        path = tessdata_dir / f"{code}.traineddata"
        if path.exists():
            models[code] = {"file": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size}
    return models


def vocabulary_provenance(user_words: Path | None, user_patterns: Path | None) -> dict[str, object]:
    return {kind: {"file": path.name, "sha256": sha256_file(path)}
            for kind, path in (("user_words", user_words), ("user_patterns", user_patterns)) if path is not None}


class TesseractSettings(Protocol):
    """What both tesseract adapters record of how they read."""

    name: str
    lang: str
    oem: int
    psm: int
    user_words: Path | None
    user_patterns: Path | None
    extra_config: dict[str, str]


def tesseract_provenance(engine: TesseractSettings, probe: TesseractProbe, **extra: object) -> dict[str, object]:
    """A tesseract adapter's provenance: versions, model hashes, parameters (with ``extra`` facts of the adapter)."""
    return {
        "engine": "tesseract",
        "adapter": engine.name,
        "version": probe.version,
        "leptonica": probe.leptonica,
        **extra,
        "models": model_provenance(probe.tessdata_dir, engine.lang),
        "parameters": {"lang": engine.lang, "oem": engine.oem, "psm": engine.psm, "reread_psm": 7,
                       **vocabulary_provenance(engine.user_words, engine.user_patterns), **engine.extra_config},
        "env": {"OMP_THREAD_LIMIT": "1"},
    }


@dataclass
class TesseractEngine:
    """``OcrEngine`` backed by the tesseract command line (``Settings.ocr_engine = "tesseract-cli"``)."""

    lang: str = "vie"
    psm: int = 3
    oem: int = 1
    cmd: str = "tesseract"
    tessdata_dir: Path | None = None
    timeout_s: float = 300.0
    extra_config: dict[str, str] = field(default_factory=dict)
    user_words: Path | None = None  # one word per line, favoured by the recogniser (``--user-words``)
    user_patterns: Path | None = None  # number-symbol shapes such as ``\d\d-\A\A/\A\A`` (``--user-patterns``)
    name: str = "tesseract-cli"

    @cached_property
    def probe(self) -> TesseractProbe:
        found = probe_tesseract(self.cmd, self.tessdata_dir)
        check_models(found, self.lang)
        return found

    def languages(self) -> tuple[str, ...]:
        _ = self.probe
        return tuple(self.lang.split("+"))

    def _model_args(self) -> list[str]:
        args = ["-l", self.lang, "--oem", str(self.oem)]
        if self.tessdata_dir:
            args += ["--tessdata-dir", str(self.tessdata_dir)]
        if self.user_words:
            args += ["--user-words", str(self.user_words)]
        if self.user_patterns:
            args += ["--user-patterns", str(self.user_patterns)]
        return args

    def _config_args(self, config: dict[str, str]) -> list[str]:
        return [arg for key, value in config.items() for arg in ("-c", f"{key}={value}")]

    def recognize(self, image_path: Path, *, dpi: int, number: int) -> PageReading:
        _ = self.probe  # fail early and clearly if tesseract or the model is missing
        with tempfile.TemporaryDirectory(prefix=f"{image_path.stem}.", dir=image_path.parent) as scratch:
            out_base = Path(scratch) / "page"
            args = [self.cmd, str(image_path), str(out_base), *self._model_args(), "--psm", str(self.psm),
                    "--dpi", str(dpi), *self._config_args({"textonly_pdf": "1", **self.extra_config}), "hocr", "pdf"]
            run = run_tool(args, timeout_s=self.timeout_s, what=f"trên {image_path.name}")
            hocr, text_pdf = out_base.with_suffix(".hocr"), out_base.with_suffix(".pdf")
            if run.returncode != 0 or not (hocr.exists() and text_pdf.exists()):
                raise OcrError(f"tesseract lỗi (mã {run.returncode}) trên {image_path.name}: {run.stderr[-400:]}")
            page = page_from_hocr(hocr.read_text(encoding="utf-8"), number=number, dpi=dpi)
            page.warnings = page_warnings(run.stderr, words=len(page.words))
            return PageReading(page=page, text_pdf=text_pdf.read_bytes())

    def read_lines(self, images: list[Path], *, dpi: int) -> list[list[OcrWord]]:
        """Read each image as one text line (``--psm 7``), all in one tesseract run (the model loads once).

        Returns the words of each image in order (boxes in that image's pixels); ``[]`` for an image where
        nothing was read. Used to re-read lines the page pass was unsure of, cut out of the page.
        """
        if not images:
            return []
        _ = self.probe
        with tempfile.TemporaryDirectory(prefix=f"{images[0].stem}.", dir=images[0].parent) as scratch:
            listing, out_base = Path(scratch) / "lines.txt", Path(scratch) / "lines"
            listing.write_text("".join(f"{path}\n" for path in images), encoding="utf-8")
            args = [self.cmd, str(listing), str(out_base), *self._model_args(), "--psm", "7", "--dpi", str(dpi),
                    *self._config_args(self.extra_config), "hocr"]
            run = run_tool(args, timeout_s=self.timeout_s, what=f"khi đọc lại dòng của {images[0].name}")
            hocr = out_base.with_suffix(".hocr")
            if run.returncode != 0 or not hocr.exists():
                raise OcrError(f"tesseract lỗi (mã {run.returncode}) khi đọc lại dòng: {run.stderr[-400:]}")
            pages = split_hocr_pages(hocr.read_text(encoding="utf-8"))
        words = [words_from_hocr(page)[0] for page in pages]
        return (words + [[] for _ in images])[: len(images)]

    def detect_orientation(self, image_path: Path, *, dpi: int) -> int:
        """Clockwise rotation (0, 90, 180 or 270 degrees) that makes the page upright (tesseract OSD).

        0 when the page is upright, when OSD finds too little text or is unsure, or when the ``osd`` model is
        missing: a page is never turned on a guess.
        """
        args = [self.cmd, str(image_path), "-", "--psm", "0", "-l", "osd"]  # OSD ignores --dpi
        if self.tessdata_dir:
            args += ["--tessdata-dir", str(self.tessdata_dir)]
        try:
            run = run_tool(args, timeout_s=self.timeout_s, what=f"khi xác định hướng trang {image_path.name}")
        except (OcrTimeout, ToolMissingError) as exc:
            log.warning("không xác định được hướng trang %s: %s", image_path.name, exc)
            return 0
        return parse_orientation(run.stdout)

    def provenance(self) -> dict[str, object]:
        return tesseract_provenance(self, self.probe)


def parse_orientation(osd: str) -> int:
    """Clockwise rotation to apply, from ``tesseract --psm 0`` output (0 when absent or unsure)."""
    rotate, conf = _ROTATE_RE.search(osd), _ORIENT_CONF_RE.search(osd)
    if not rotate or not conf or float(conf.group(1)) < MIN_ORIENTATION_CONFIDENCE:
        return 0
    return upright_rotation(int(rotate.group(1)))


def upright_rotation(angle: int) -> int:
    """``angle`` as one of the rotations the flow applies (90, 180, 270), else 0."""
    angle %= 360
    return angle if angle in (90, 180, 270) else 0
