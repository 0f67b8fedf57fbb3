"""Where a document's objects live in the store (the archive layout contract).

    documents/<id>/original/<file>            the scan, byte for byte (a folder document keeps its folder)
    documents/<id>/document.pdf               two-layer PDF/A-2b
    documents/<id>/pages/<nnnn>.hocr|.txt     per-page OCR (hOCR with word boxes, plain text)
    documents/<id>/document.json              the manifest: checksums, metadata, provenance (written last)
"""

from __future__ import annotations

MANIFEST = "document.json"
PDFA = "document.pdf"


def prefix_of(doc_id: str) -> str:
    return f"documents/{doc_id}/"


def manifest_key(doc_id: str) -> str:
    return prefix_of(doc_id) + MANIFEST
