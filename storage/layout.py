"""Where a document's objects live in the store (the archive layout contract).

    documents/<id>/original/<file>            the scan, byte for byte (a folder document keeps its folder);
                                              immutable; <id> is derived from the content's SHA-256
    documents/<id>/document.pdf               two-layer PDF/A-2b, or <mã hồ sơ>.<số thứ tự>.pdf (TT 05 name)
                                              when the batch gives a hồ sơ code
    documents/<id>/pages/<nnnn>.hocr|.txt     per-page OCR (hOCR with word boxes, plain text)
    documents/<id>/document.json.sha256       the manifest's SHA-256 (hex), written just before it
    documents/<id>/document.json              the manifest: checksums, metadata, provenance (written last)
    audit/fixity/<timestamp>.json             reports of `sohoa verify`
    audit/copy-register/<id>.json             the copy/photo register (sổ quản lý sao, chụp): one entry per
                                              classified document digitised
    audit/quarantine/<id>.json                documents stopped at intake (Tuyệt mật, or secret without approval)
    audit/corrections/<id>/<nnnnnn>.json      archivists' corrections of a document, one object per saved
                                              correction, numbered from 000001 (its version); write-once
                                              (``flows.corrections``): applied over the manifest, which stays the
                                              machine reading
    documents/<id>/corrected/<nnnnnn>/<name>.pdf  the PDF/A with the text layers of the pages corrected up to
                                              correction <nnnnnn> regenerated (``flows.pdf_text``); write-once;
                                              the machine PDF/A above stays as it was
    audit/corrections/<id>/<nnnnnn>.pdfa.json its record: key, SHA-256, size, the machine PDF/A it was made from;
                                              write-once; ``sohoa verify`` checks the file against it
"""

from __future__ import annotations

import hashlib

DOCUMENTS = "documents/"
MANIFEST = "document.json"
MANIFEST_SEAL = "document.json.sha256"
PDFA = "document.pdf"
FIXITY_REPORTS = "audit/fixity/"
COPY_REGISTER = "audit/copy-register/"
QUARANTINE = "audit/quarantine/"
CORRECTIONS = "audit/corrections/"


def prefix_of(doc_id: str) -> str:
    return f"{DOCUMENTS}{doc_id}/"


def manifest_key(doc_id: str) -> str:
    return prefix_of(doc_id) + MANIFEST


def seal_key(doc_id: str) -> str:
    return prefix_of(doc_id) + MANIFEST_SEAL


def seal_of(manifest_body: bytes) -> bytes:
    """The content of ``document.json.sha256`` for a manifest's bytes."""
    return (hashlib.sha256(manifest_body).hexdigest() + "\n").encode("ascii")


def doc_id_of(key: str) -> str | None:
    """The document id of a key under ``documents/``, else ``None``."""
    if not key.startswith(DOCUMENTS):
        return None
    rest = key[len(DOCUMENTS):]
    return rest.split("/", 1)[0] if "/" in rest else None


def pdfa_name(file_code: str | None, sequence: int | None) -> str:
    """The PDF/A's name: TT 05 ``<mã hồ sơ>.<số thứ tự>.pdf`` when the batch gives a hồ sơ code."""
    if file_code and sequence:
        return f"{file_code}.{sequence}.pdf"
    return PDFA


def corrections_prefix(doc_id: str) -> str:
    return f"{CORRECTIONS}{doc_id}/"


def correction_key(doc_id: str, version: int) -> str:
    return f"{corrections_prefix(doc_id)}{version:06d}.json"


def correction_of(key: str) -> tuple[str, int] | None:
    """(document id, version) of a key under ``audit/corrections/``, else ``None``."""
    if not key.startswith(CORRECTIONS):
        return None
    parts = key[len(CORRECTIONS):].split("/")
    if len(parts) != 2 or not parts[1].endswith(".json") or not parts[1][:-5].isdigit():
        return None
    return parts[0], int(parts[1][:-5])


PDFA_RECORD_SUFFIX = ".pdfa.json"
CORRECTED_PDFA = "corrected/"


def corrected_pdfa_key(version: int, name: str) -> str:
    """The key, within the document's prefix, of the PDF/A regenerated for correction ``version``."""
    return f"{CORRECTED_PDFA}{version:06d}/{name}"


def pdfa_record_key(doc_id: str, version: int) -> str:
    return f"{corrections_prefix(doc_id)}{version:06d}{PDFA_RECORD_SUFFIX}"


def pdfa_record_of(key: str) -> tuple[str, int] | None:
    """(document id, version) of a regenerated PDF/A's record under ``audit/corrections/``, else ``None``."""
    if not key.startswith(CORRECTIONS) or not key.endswith(PDFA_RECORD_SUFFIX):
        return None
    parts = key[len(CORRECTIONS):-len(PDFA_RECORD_SUFFIX)].split("/")
    if len(parts) != 2 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def is_immutable(key: str) -> bool:
    """Originals are written once: a later put with different bytes is refused. So are corrections (a version,
    once written, is never changed: a new correction is a new version), and so are the PDF/A files regenerated
    after a correction and their records."""
    return (key.startswith(DOCUMENTS) and ("/original/" in key or f"/{CORRECTED_PDFA}" in key)) \
        or correction_of(key) is not None or pdfa_record_of(key) is not None
