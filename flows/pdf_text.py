"""A page-text correction regenerates that page's text layer in the PDF/A (issue 22).

The machine PDF/A (``documents/<id>/<name>.pdf``, listed in ``document.json``) never changes. After a correction
that touches a page's text (``page.N``), a NEW PDF/A is written: the machine one with the text layer of every page
whose corrected text differs from the machine reading rebuilt from the corrected text laid over the page's hOCR
(``pipeline.text_layer``); images, other pages and the PDF/A-2b identification are kept. It is stored write-once at
``documents/<id>/corrected/<nnnnnn>/<name>.pdf`` (``nnnnnn``: the correction version whose text it carries), and a
sealed write-once record (``audit/corrections/<id>/<nnnnnn>.pdfa.json``) names its key, SHA-256 and size and the
machine PDF/A it was made from. ``sohoa verify`` checks the file against its record (``fixity_files``).

Readers (``with_current_pdfa``: the web's download and page images, the API, ``sohoa show``, exports) get the
newest regenerated PDF/A whose version is not newer than the corrections they read; the provenance names the
machine one (``pdfa_corrected``).

Synchronous: ``refresh`` runs in the review flow right after the correction is written and recorded, inside the
writers' lock. A failure never loses the correction: it stands, a warning is logged, and the next correction or
the next re-apply of the corrections (the web app's start, a pending re-index: ``flows.correction_index``) writes
the missing PDF/A (``ensure_current``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pikepdf

from flows.correction_records import Edit
from ocr_models.hocr import words_from_hocr
from pipeline.text_layer import media_size, place_words, replace_text_layers, text_font, text_layer
from schemas.document import DocumentManifest, StoredFile
from schemas.fixity import FixityProblem
from schemas.ocr import OcrWord
from storage.layout import (
    corrected_pdfa_key,
    corrections_prefix,
    pdfa_record_key,
    pdfa_record_of,
    prefix_of,
)
from storage.objects import ObjectMissing, ObjectStore

log = logging.getLogger("sohoa.pdf_text")

_MAX_HOCR_BYTES = 32 * 2**20


class PdfaRecordUnreadable(ValueError):
    """A regenerated PDF/A's record is damaged (its seal does not match) or not where it belongs."""


@dataclass(frozen=True)
class PdfaRecord:
    """The record of one regenerated PDF/A (write-once, sealed)."""

    doc_id: str
    version: int  # the correction whose text it carries
    key: str  # within the document's prefix
    sha256: str
    size: int  # bytes
    machine_key: str  # the machine PDF/A it was made from (within the prefix), unchanged
    machine_sha256: str
    pages: list[int] = field(default_factory=list)  # the pages whose text layer was regenerated
    skipped: int = 0  # characters left out (outside the BMP: no code in the text layer's font)
    at: str = ""

    def to_bytes(self) -> bytes:
        body = asdict(self)
        return (json.dumps(body | {"seal": _seal(body)}, ensure_ascii=False, indent=1) + "\n").encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes, *, key: str) -> PdfaRecord:
        try:
            raw = json.loads(data.decode("utf-8"))
            seal = raw.pop("seal")
            record = cls(**raw)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PdfaRecordUnreadable(f"{key}: không đọc được") from exc
        if seal != _seal(asdict(record)) or pdfa_record_of(key) != (record.doc_id, record.version):
            raise PdfaRecordUnreadable(f"{key}: hỏng hoặc không thuộc vị trí của nó trong kho")
        if PurePosixPath(record.key).parts[:1] != ("corrected",) or ".." in PurePosixPath(record.key).parts:
            raise PdfaRecordUnreadable(f"{key}: khóa tệp không hợp lệ")
        return record

    def stored(self) -> StoredFile:
        return StoredFile(key=self.key, sha256=self.sha256, bytes=self.size, role="pdfa", media_type="application/pdf")


def _seal(body: dict[str, object]) -> str:
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def records(store: ObjectStore, doc_id: str) -> list[PdfaRecord]:
    """The document's regenerated PDF/A records, oldest first (``PdfaRecordUnreadable`` for a damaged one)."""
    out = []
    for key in sorted(store.list(corrections_prefix(doc_id))):
        where = pdfa_record_of(key)
        if where is not None and where[0] == doc_id:
            out.append(PdfaRecord.from_bytes(store.get_bytes(key), key=key))
    return out


def page_version(edits: Sequence[Edit]) -> int:
    """The newest correction version that changed a page's text (0: none)."""
    return max((e.id for e in edits if e.field.startswith("page.")), default=0)


def _machine_pdfa(manifest: DocumentManifest) -> StoredFile | None:
    return next((f for f in manifest.files if f.role == "pdfa"), None)


def current(store: ObjectStore, doc_id: str, up_to: int) -> PdfaRecord | None:
    """The newest readable record of a PDF/A regenerated for a correction no newer than ``up_to``."""
    try:
        found = [r for r in records(store, doc_id) if r.version <= up_to]
    except (PdfaRecordUnreadable, ObjectMissing) as exc:  # reported by sohoa verify; the machine PDF/A is served
        log.warning("document %s: regenerated PDF/A not used (%s)", doc_id, exc)
        return None
    return found[-1] if found else None


def with_current_pdfa(store: ObjectStore, manifest: DocumentManifest, edits: Sequence[Edit]) -> DocumentManifest:
    """``manifest`` (corrected) with its PDF/A the newest regenerated one, the machine one named in provenance."""
    machine = _machine_pdfa(manifest)
    upto = page_version(edits)
    newest = current(store, manifest.id, upto) if machine is not None and upto else None
    if machine is None or newest is None:
        return manifest
    files = [newest.stored() if f is machine else f for f in manifest.files]
    provenance = manifest.provenance | {"pdfa_corrected": {
        "key": newest.key, "sha256": newest.sha256, "correction": newest.version, "pages": newest.pages,
        "machine_key": machine.key, "machine_sha256": machine.sha256}}
    return manifest.model_copy(update={"files": files, "provenance": provenance})


def _hocr(store: ObjectStore, doc_id: str, number: int) -> tuple[list[OcrWord], tuple[int, int]]:
    data = store.get_bytes(f"{prefix_of(doc_id)}pages/{number:04d}.hocr")
    if len(data) > _MAX_HOCR_BYTES:
        raise ValueError(f"hOCR of page {number}: {len(data)} bytes")
    return words_from_hocr(data.decode("utf-8"))


def regenerate(store: ObjectStore, machine: DocumentManifest, corrected: DocumentManifest, version: int
               ) -> PdfaRecord | None:
    """Write the PDF/A of ``corrected`` (the machine PDF/A with the text layers of its corrected pages rebuilt) for
    correction ``version``, and its record; ``None`` when the document has no PDF/A."""
    pdfa = _machine_pdfa(machine)
    if pdfa is None:
        return None
    before = {p.number: p.text for p in machine.pages}
    changed = [p for p in corrected.pages if p.text != before.get(p.number)]
    prefix = prefix_of(machine.id)
    with tempfile.TemporaryDirectory(prefix="sohoa-pdftext-") as tmp:
        source, out = Path(tmp) / "machine.pdf", Path(tmp) / "corrected.pdf"
        store.get_file(prefix + pdfa.key, source)
        if hashlib.sha256(source.read_bytes()).hexdigest() != pdfa.sha256:
            raise ValueError(f"{pdfa.key}: SHA-256 khác bản kê (chạy sohoa verify)")
        layers, skipped = {}, 0
        with pikepdf.open(source) as pdf:
            for page in changed:
                words, size = _hocr(store, machine.id, page.number)
                target = pdf.pages[page.number - 1]
                layer = text_layer(place_words(words, page.text, size), size, media_size(target), text_font(target))
                layers[page.number], skipped = layer.content, skipped + layer.skipped
        replace_text_layers(source, out, layers)
        data = out.read_bytes()
        key = corrected_pdfa_key(version, PurePosixPath(pdfa.key).name)
        digest = hashlib.sha256(data).hexdigest()
        store.put_file(prefix + key, out, digest)
    if skipped:
        log.warning("document %s: %d characters outside the BMP left out of the text layer", machine.id, skipped)
    record = PdfaRecord(doc_id=machine.id, version=version, key=key, sha256=digest, size=len(data),
                        machine_key=pdfa.key, machine_sha256=pdfa.sha256, pages=sorted(layers), skipped=skipped,
                        at=datetime.now(UTC).isoformat(timespec="seconds"))
    store.put_bytes(pdfa_record_key(machine.id, version), record.to_bytes())
    return record


def ensure_current(store: ObjectStore, machine: DocumentManifest, corrected: DocumentManifest,
                   edits: Sequence[Edit]) -> PdfaRecord | None:
    """Regenerate the PDF/A when the newest page-text correction has none yet; the current record (or ``None``)."""
    version = page_version(edits)
    if not version:
        return None
    existing = [r for r in records(store, machine.id) if r.version == version]
    return existing[0] if existing else regenerate(store, machine, corrected, version)


def refresh(store: ObjectStore, machine: DocumentManifest, corrected: DocumentManifest,
            edits: Sequence[Edit]) -> PdfaRecord | None:
    """``ensure_current``; a failure is logged (the correction stands; a later call regenerates)."""
    try:
        return ensure_current(store, machine, corrected, edits)
    except Exception as exc:  # never lose the correction over its PDF/A
        log.warning("document %s: text layer of the PDF/A not regenerated (%s: %s); the next correction or "
                    "re-apply retries", machine.id, type(exc).__name__, exc)
        return None


def fixity_files(store: ObjectStore, doc_id: str) -> tuple[list[StoredFile], list[FixityProblem]]:
    """The regenerated PDF/A files of the document as their records list them, for ``sohoa verify``; a damaged
    record is a problem."""
    files, problems = [], []
    for key in sorted(store.list(corrections_prefix(doc_id))):
        if pdfa_record_of(key) is None:
            continue
        try:
            files.append(PdfaRecord.from_bytes(store.get_bytes(key), key=key).stored())
        except (PdfaRecordUnreadable, ObjectMissing) as exc:
            problems.append(FixityProblem(kind="unreadable", key=key, document=doc_id, detail=str(exc)))
    return files, problems
