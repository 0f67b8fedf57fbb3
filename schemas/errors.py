"""Exit codes, and errors with exit codes and fix-it messages (Vietnamese, user-facing).

    SohoaError                    exit 1   base class; never raised directly
    ├── ConfigError               exit 4   bad settings or archive location
    ├── ToolMissingError          exit 5   tesseract/poppler/ghostscript missing or too old
    ├── DocumentError             (per document; recorded as a failed document, never ends a batch)
    │   ├── UnsupportedFileError  unknown extension or not a readable page image/PDF
    │   ├── EncryptedPdfError     PDF needs a password
    │   └── LimitExceededError    a resource limit (pixels, pages, bytes, decode time, memory) was breached
    ├── OcrError                  exit 1   the OCR engine failed on a page (the document fails, the batch goes on)
    │   └── OcrTimeout (ocr_models.engine)   the engine ran over its time limit on a page
    └── NotFoundError             exit 6   no such document id in the archive
Errors of the archive's preservation state (exit 7) live beside the use cases that find them:
``flows.audit.AuditTrailError``, ``flows.corrections.CorrectionsUnreadable``/``ReindexPending``,
``flows.scheduled.FixityProblemsFound``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """Every exit status of ``sohoa``. Scripts depend on the numbers: never change one."""

    OK = 0
    ERROR = 1  # unexpected error, or a batch that could not run at all
    USAGE = 2  # wrong usage (as argparse)
    SOME_FAILED = 3  # the batch finished but some documents failed
    CONFIG = 4  # configuration: archive, batch folder, account, store unreachable or refused
    TOOL_MISSING = 5  # a required tool (tesseract, its models, poppler, ghostscript) is missing or too old
    NOT_FOUND = 6  # document or batch not found
    PRESERVATION_PROBLEMS = 7  # verify found missing/changed/unexpected objects, backup or reindex skipped some,
    # the audit trail or a document's corrections are damaged
    INTERRUPTED = 130  # stopped by Ctrl+C (128 + SIGINT, as shells report it)


class SohoaError(Exception):
    exit_code: ClassVar[ExitCode] = ExitCode.ERROR

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} — {self.fix}" if self.fix else self.message


class ConfigError(SohoaError):
    exit_code = ExitCode.CONFIG


class ToolMissingError(SohoaError):
    exit_code = ExitCode.TOOL_MISSING


class NotFoundError(SohoaError):
    exit_code = ExitCode.NOT_FOUND


class DocumentError(SohoaError):
    """A problem with one document: the document fails, the batch goes on."""


class UnsupportedFileError(DocumentError):
    pass


class EncryptedPdfError(DocumentError):
    pass


class LimitExceededError(DocumentError):
    """One document breaks a resource limit (``Settings.max_*``, ``decode_timeout_s``): it fails, the batch goes on."""


class OcrError(SohoaError):
    """The OCR engine failed on a page (it exited with an error or wrote no output): the document fails
    (``flows.document`` reports it with the document's name), the batch goes on."""

