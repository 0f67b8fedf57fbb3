"""The one way ``ocr_models`` runs an external tool, and tesseract's warnings as review signals.

``run_tool`` runs a command with a time limit and ``OMP_THREAD_LIMIT=1`` (parallelism comes from running several
pages at once: PLATFORM.md measured OpenMP threads with concurrent tesseracts 10–50× slower). A time-out raises
``OcrTimeout``; a command that cannot start raises ``ToolMissingError``.

Tesseract reports doubts about a page only on stderr ("lots of diacritics - possibly poor OCR", "Empty page!!").
``tesseract_warnings`` turns those lines into ``OcrWarning`` codes on the page (``OcrPage.warnings``), which the
flow turns into review reasons.
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from enum import StrEnum

from ocr_models.engine import OcrTimeout
from schemas.errors import ToolMissingError

log = logging.getLogger("sohoa.tesseract")

TOOL_ENV = {"OMP_THREAD_LIMIT": "1"}
INSTALL_FIX = "cài đặt: apt-get install -y tesseract-ocr tesseract-ocr-vie (hoặc chạy make demo)"


class OcrWarning(StrEnum):
    """A doubt the engine reported about a page. Values are stored in provenance: never rename one."""

    POOR_DIACRITICS = "poor_diacritics"  # "lots of diacritics - possibly poor OCR"
    EMPTY_PAGE = "empty_page"  # "Empty page!!": no text found
    TOO_FEW_CHARACTERS = "too_few_characters"  # "Too few characters. Skipping this page" (orientation detection)
    IMAGE_TOO_SMALL = "image_too_small"  # "Image too small to scale!!"
    LINE_UNREADABLE = "line_unreadable"  # "Line cannot be recognized!!"


_WARNING_LINES = (
    ("lots of diacritics", OcrWarning.POOR_DIACRITICS),
    ("empty page", OcrWarning.EMPTY_PAGE),
    ("too few characters", OcrWarning.TOO_FEW_CHARACTERS),
    ("image too small to scale", OcrWarning.IMAGE_TOO_SMALL),
    ("line cannot be recognized", OcrWarning.LINE_UNREADABLE),
)


def tesseract_warnings(stderr: str) -> list[str]:
    """The ``OcrWarning`` codes in tesseract's stderr, each once, in the order first seen."""
    found: list[str] = []
    for line in stderr.lower().splitlines():
        for text, code in _WARNING_LINES:
            if text in line and code not in found:
                found.append(code.value)
    return found


def page_warnings(stderr: str, *, words: int) -> list[str]:
    """The page's warning codes: tesseract's stderr ones, and ``empty_page`` when no word was read (tesseract
    says "Empty page!!" only for some empty pages)."""
    found = tesseract_warnings(stderr)
    if not words and OcrWarning.EMPTY_PAGE not in found:
        found.append(OcrWarning.EMPTY_PAGE.value)
    return found


@dataclass(frozen=True)
class ToolRun:
    returncode: int
    stdout: str
    stderr: str


def run_tool(args: list[str], *, timeout_s: float, what: str) -> ToolRun:
    """Run ``args`` (text output) with ``OMP_THREAD_LIMIT=1`` and a time limit; ``what`` names the work in errors.

    ``OcrTimeout`` when it runs over ``timeout_s`` (the process is killed), ``ToolMissingError`` when it cannot be
    started. A non-zero exit is returned, not raised: the caller knows what its tool's failures mean."""
    try:
        proc = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **TOOL_ENV},
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OcrTimeout(f"{args[0]} quá {timeout_s:.0f} s {what}") from exc
    except OSError as exc:
        raise ToolMissingError(f"Không chạy được {args[0]}: {exc}", fix=INSTALL_FIX) from exc
    for line in proc.stderr.splitlines():
        if line.strip() and not line.startswith(("Estimating resolution", "Detected")):
            log.debug("%s %s: %s", args[0], what, line)
    return ToolRun(proc.returncode, proc.stdout, proc.stderr)
