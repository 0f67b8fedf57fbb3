"""Tesseract adapter: the only place that runs tesseract.

One run per page writes both the hOCR (words, boxes, confidences) and a text-only PDF page (the invisible
text layer of the PDF/A), so every page is recognised exactly once. ``OMP_THREAD_LIMIT=1`` is forced for every
process: parallelism comes from running several pages at once (see PLATFORM.md: OpenMP threads with concurrent
tesseracts made pages 10–50× slower).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pytesseract

from ocr_models.hocr import split_hocr_pages, words_from_hocr
from schemas.checksums import sha256_file
from schemas.errors import ToolMissingError
from schemas.ocr import OcrOutputs, OcrWord

log = logging.getLogger("sohoa.tesseract")

_LANGS_DIR_RE = re.compile(r'"(.+?)"')
_ROTATE_RE = re.compile(r"^Rotate:\s*(\d+)", re.MULTILINE)
_ORIENT_CONF_RE = re.compile(r"^Orientation confidence:\s*([\d.]+)", re.MULTILINE)
MIN_ORIENTATION_CONFIDENCE = 1.0  # below this tesseract's orientation guess is a coin toss: keep the page


VOCABULARY_DIR = Path(__file__).resolve().parent / "vocabulary"
USER_WORDS = VOCABULARY_DIR / "vie.user-words"  # administrative words of Party and state documents
USER_PATTERNS = VOCABULARY_DIR / "vie.user-patterns"  # shapes of number-symbols (15-NQ/TU, 123/QĐ-UBND)

RENDERER_FILES = ("configs/hocr", "configs/pdf", "pdf.ttf")  # what the hocr and pdf outputs need in tessdata


class OcrTimeout(Exception):
    """Tesseract exceeded its time budget on one page."""


@dataclass(frozen=True)
class TesseractProbe:
    """What is installed: version, tessdata folder, languages."""

    version: str
    leptonica: str
    tessdata_dir: Path
    languages: tuple[str, ...]


def probe_tesseract(cmd: str = "tesseract", tessdata_dir: Path | None = None) -> TesseractProbe:
    """Find tesseract and its models, or raise ``ToolMissingError`` with the install command."""
    fix = "cài đặt: apt-get install -y tesseract-ocr tesseract-ocr-vie (hoặc chạy make demo)"
    try:
        pytesseract.pytesseract.tesseract_cmd = cmd
        version = str(pytesseract.get_tesseract_version())
        raw = subprocess.run([cmd, "--version"], capture_output=True, text=True, check=True).stdout
        args = [cmd, "--list-langs"] + (["--tessdata-dir", str(tessdata_dir)] if tessdata_dir else [])
        listing = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError, pytesseract.TesseractNotFoundError) as exc:
        raise ToolMissingError(f"Không chạy được tesseract ({cmd}): {exc}", fix=fix) from exc
    lepto = next((ln.strip() for ln in raw.splitlines() if "leptonica" in ln), "")
    m = _LANGS_DIR_RE.search(listing.splitlines()[0] if listing else "")
    folder = Path(m.group(1)) if m else (tessdata_dir or Path())
    langs = tuple(ln.strip() for ln in listing.splitlines()[1:] if ln.strip())
    return TesseractProbe(version=version, leptonica=lepto, tessdata_dir=folder, languages=langs)


@dataclass
class TesseractEngine:
    """``OcrEngine`` backed by the tesseract command line."""

    lang: str = "vie"
    psm: int = 3
    oem: int = 1
    cmd: str = "tesseract"
    tessdata_dir: Path | None = None
    timeout_s: float = 300.0
    extra_config: dict[str, str] = field(default_factory=dict)
    user_words: Path | None = None  # one word per line, favoured by the recogniser (``--user-words``)
    user_patterns: Path | None = None  # number-symbol shapes such as ``\d\d-\A\A/\A\A`` (``--user-patterns``)

    @cached_property
    def probe(self) -> TesseractProbe:
        found = probe_tesseract(self.cmd, self.tessdata_dir)
        missing = [lang for lang in self.lang.split("+") if lang not in found.languages]
        if missing:
            raise ToolMissingError(
                f"Thiếu mô hình ngôn ngữ tesseract: {', '.join(missing)}",
                fix="cài đặt: apt-get install -y tesseract-ocr-vie",
            )
        lacking = [name for name in RENDERER_FILES if not (found.tessdata_dir / name).exists()]
        if lacking:
            raise ToolMissingError(
                f"Thư mục tessdata {found.tessdata_dir} thiếu {', '.join(lacking)} (cần để xuất hOCR và lớp chữ PDF)",
                fix="sao chép configs/ và pdf.ttf từ /usr/share/tesseract-ocr/5/tessdata vào thư mục đó",
            )
        return found

    def _model_args(self) -> list[str]:
        args = ["-l", self.lang, "--oem", str(self.oem)]
        if self.tessdata_dir:
            args += ["--tessdata-dir", str(self.tessdata_dir)]
        if self.user_words:
            args += ["--user-words", str(self.user_words)]
        if self.user_patterns:
            args += ["--user-patterns", str(self.user_patterns)]
        return args

    def _args(self, image_path: Path, out_base: Path, dpi: int) -> list[str]:
        args = [self.cmd, str(image_path), str(out_base), *self._model_args()]
        args += ["--psm", str(self.psm), "--dpi", str(dpi)]
        config = {"textonly_pdf": "1", **self.extra_config}
        for key, value in config.items():
            args += ["-c", f"{key}={value}"]
        return [*args, "hocr", "pdf"]

    def recognize(self, image_path: Path, *, dpi: int, out_base: Path) -> OcrOutputs:
        _ = self.probe  # fail early and clearly if tesseract or the model is missing
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        args = self._args(image_path, out_base, dpi)
        try:
            proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=self.timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise OcrTimeout(f"tesseract quá {self.timeout_s:.0f} s trên {image_path.name}") from exc
        if proc.returncode != 0:
            raise RuntimeError(f"tesseract lỗi (mã {proc.returncode}) trên {image_path.name}: {proc.stderr[-400:]}")
        for line in proc.stderr.splitlines():
            if line.strip() and not line.startswith(("Estimating resolution", "Detected")):
                log.debug("tesseract %s: %s", image_path.name, line)
        outputs = OcrOutputs(hocr=out_base.with_suffix(".hocr"), text_pdf=out_base.with_suffix(".pdf"))
        if not (outputs.hocr.exists() and outputs.text_pdf.exists()):
            raise RuntimeError(f"tesseract không ghi được hOCR/PDF cho {image_path.name}: {proc.stderr[-400:]}")
        return outputs

    def read_lines(self, images: list[Path], *, dpi: int, out_base: Path) -> list[list[OcrWord]]:
        """Read each image as one text line (``--psm 7``), all in one tesseract run (the model loads once).

        Returns the words of each image in order (boxes in that image's pixels); ``[]`` for an image where
        nothing was read. Used to re-read lines the page pass was unsure of, cut out of the page.
        """
        if not images:
            return []
        _ = self.probe
        listing = out_base.with_suffix(".lines.txt")
        listing.write_text("".join(f"{path}\n" for path in images), encoding="utf-8")
        args = [self.cmd, str(listing), str(out_base), *self._model_args(), "--psm", "7", "--dpi", str(dpi)]
        for key, value in self.extra_config.items():
            args += ["-c", f"{key}={value}"]
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        try:
            proc = subprocess.run([*args, "hocr"], capture_output=True, text=True, env=env,
                                  timeout=self.timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise OcrTimeout(f"tesseract quá {self.timeout_s:.0f} s khi đọc lại dòng của {out_base.name}") from exc
        finally:
            listing.unlink(missing_ok=True)
        hocr = out_base.with_suffix(".hocr")
        if proc.returncode != 0 or not hocr.exists():
            raise RuntimeError(f"tesseract lỗi (mã {proc.returncode}) khi đọc lại dòng: {proc.stderr[-400:]}")
        pages = split_hocr_pages(hocr.read_text(encoding="utf-8"))
        hocr.unlink(missing_ok=True)
        words = [words_from_hocr(page)[0] for page in pages]
        return (words + [[] for _ in images])[: len(images)]

    def detect_orientation(self, image_path: Path) -> int:
        """Clockwise rotation (0, 90, 180 or 270 degrees) that makes the page upright (tesseract OSD).

        0 when the page is upright, when OSD finds too little text or is unsure, or when the ``osd`` model is
        missing: a page is never turned on a guess.
        """
        args = [self.cmd, str(image_path), "-", "--psm", "0", "-l", "osd"]
        if self.tessdata_dir:
            args += ["--tessdata-dir", str(self.tessdata_dir)]
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        try:
            proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=self.timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("không xác định được hướng trang %s: %s", image_path.name, exc)
            return 0
        return parse_orientation(proc.stdout)

    def provenance(self) -> dict[str, object]:
        p = self.probe
        models = {}
        for lang in self.lang.split("+"):
            path = p.tessdata_dir / f"{lang}.traineddata"
            if path.exists():
                models[lang] = {"file": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size}
        vocabulary = {
            kind: {"file": path.name, "sha256": sha256_file(path)}
            for kind, path in (("user_words", self.user_words), ("user_patterns", self.user_patterns))
            if path is not None
        }
        return {
            "engine": "tesseract",
            "version": p.version,
            "leptonica": p.leptonica,
            "models": models,
            "parameters": {"lang": self.lang, "oem": self.oem, "psm": self.psm, "reread_psm": 7,
                           **vocabulary, **self.extra_config},
            "env": {"OMP_THREAD_LIMIT": "1"},
        }


def parse_orientation(osd: str) -> int:
    """Clockwise rotation to apply, from ``tesseract --psm 0`` output (0 when absent or unsure)."""
    rotate, conf = _ROTATE_RE.search(osd), _ORIENT_CONF_RE.search(osd)
    if not rotate or not conf or float(conf.group(1)) < MIN_ORIENTATION_CONFIDENCE:
        return 0
    angle = int(rotate.group(1)) % 360
    return angle if angle in (90, 180, 270) else 0
