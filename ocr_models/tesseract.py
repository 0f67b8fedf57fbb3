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

from schemas.checksums import sha256_file
from schemas.errors import ToolMissingError
from schemas.ocr import OcrOutputs

log = logging.getLogger("sohoa.tesseract")

_LANGS_DIR_RE = re.compile(r'"(.+?)"')
_ROTATE_RE = re.compile(r"^Rotate:\s*(\d+)", re.MULTILINE)
_ORIENT_CONF_RE = re.compile(r"^Orientation confidence:\s*([\d.]+)", re.MULTILINE)
MIN_ORIENTATION_CONFIDENCE = 1.0  # below this tesseract's orientation guess is a coin toss: keep the page


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

    def _args(self, image_path: Path, out_base: Path, dpi: int) -> list[str]:
        args = [self.cmd, str(image_path), str(out_base), "-l", self.lang, "--oem", str(self.oem)]
        args += ["--psm", str(self.psm), "--dpi", str(dpi)]
        if self.tessdata_dir:
            args += ["--tessdata-dir", str(self.tessdata_dir)]
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
        return {
            "engine": "tesseract",
            "version": p.version,
            "leptonica": p.leptonica,
            "models": models,
            "parameters": {"lang": self.lang, "oem": self.oem, "psm": self.psm, **self.extra_config},
            "env": {"OMP_THREAD_LIMIT": "1"},
        }


def parse_orientation(osd: str) -> int:
    """Clockwise rotation to apply, from ``tesseract --psm 0`` output (0 when absent or unsure)."""
    rotate, conf = _ROTATE_RE.search(osd), _ORIENT_CONF_RE.search(osd)
    if not rotate or not conf or float(conf.group(1)) < MIN_ORIENTATION_CONFIDENCE:
        return 0
    angle = int(rotate.group(1)) % 360
    return angle if angle in (90, 180, 270) else 0
