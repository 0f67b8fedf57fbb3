"""Errors with exit codes and fix-it messages (Vietnamese, user-facing).

    SohoaError                    exit 1   base class; never raised directly
    ├── ConfigError               exit 4   bad settings or archive location
    ├── ToolMissingError          exit 5   tesseract/poppler/ghostscript missing or too old
    ├── DocumentError             (per document; recorded as a failed document, never ends a batch)
    │   ├── UnsupportedFileError  unknown extension or not a readable page image/PDF
    │   ├── EncryptedPdfError     PDF needs a password
    │   └── LimitExceededError    a resource limit (pixels, pages, bytes, decode time, memory) was breached
    └── NotFoundError             exit 6   no such document id in the archive
Exit code 3 means "the batch finished but some documents failed"; exit code 7 means "the preservation check
found problems" (``sohoa verify``/``backup``/``reindex``; see interfaces.cli).
"""

from __future__ import annotations


class SohoaError(Exception):
    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} — {self.fix}" if self.fix else self.message


class ConfigError(SohoaError):
    exit_code = 4


class ToolMissingError(SohoaError):
    exit_code = 5


class NotFoundError(SohoaError):
    exit_code = 6


class DocumentError(SohoaError):
    """A problem with one document: the document fails, the batch goes on."""


class UnsupportedFileError(DocumentError):
    pass


class EncryptedPdfError(DocumentError):
    pass


class LimitExceededError(DocumentError):
    """One document breaks a resource limit (``Settings.max_*``, ``decode_timeout_s``): it fails, the batch goes on."""


EXIT_OK = 0
EXIT_SOME_FAILED = 3
EXIT_PRESERVATION_PROBLEMS = 7
