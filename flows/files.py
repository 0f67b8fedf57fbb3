"""Hồ sơ and phông: the archive as it is filed (phông → hồ sơ → văn bản, TT 05/2025), as a principal may see it.

A document is filed in a hồ sơ by its ``file_code`` (mã hồ sơ) and ``sequence`` (số thứ tự): set at intake from
the batch (``batch.toml``, ``--file-code``), changed by an archivist's correction (``file_document``: fields
``file_code`` / ``sequence`` of ``flows.corrections``, audited, versioned and re-indexed like any other). A hồ sơ's
TT 05 fields (tiêu đề, phông, thời gian, thời hạn bảo quản, ngôn ngữ, ghi chú) are its record
(``storage.files``), created by an archivist; a hồ sơ without a record takes its phông and title from the batch
that brought its documents (the batch registry).

**The clearance rule** (``flows.access``): everything shown is computed from the documents the principal may
see, and from nothing else.

* A document above the principal's clearance is left out of every list, count, page total and year range; the
  documents they may see are numbered anew (STT 1, 2, ... in số thứ tự order), so a gap never hints at a hidden one.
* A hồ sơ EXISTS for the principal when an archivist created its record, or when at least one document they may
  see is filed in it. A hồ sơ known only from documents above their clearance does not exist: it is in no list,
  and its page is the same 404 as a code nobody ever used.
* A hồ sơ record is not itself classified: its own fields are shown as the archivist typed them (an archivist
  must not type a hidden document's data into an open hồ sơ's title or note). Dates the record leaves empty are
  derived from the visible documents only.
* A phông exists for the principal when it holds at least one hồ sơ that exists for them.
* Filing a document (in or out) first loads it through the policy: a document above the archivist's clearance
  is "not found", exactly like a missing id. A new document takes the number after the last VISIBLE one (never a
  number derived from hidden documents: the number is in the document's correction history).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from flows.access import (
    TOP_LEVEL,
    Principal,
    catalog_levels,
    level_of_metadata,
    visible_items,
    visible_reasons,
    visible_status,
)
from flows.corrections import CorrectionsUnreadable, corrected, edits_of
from flows.queries import open_catalog
from flows.review import DocumentView
from flows.wiring import build_object_store, open_batch_registry, open_file_records
from schemas.document import DocumentManifest
from schemas.errors import NotFoundError
from schemas.settings import Settings
from storage.catalog import Catalog, CatalogEntry
from storage.files import FileRecord
from storage.layout import pdfa_name
from storage.objects import ObjectMissing

log = logging.getLogger("sohoa.files")

NO_FONDS = "-"  # the URL key of the phông of hồ sơ for which no phông was recorded
NO_FONDS_LABEL = "Chưa xác định phông"


def file_not_found() -> NotFoundError:
    return NotFoundError("Không tìm thấy hồ sơ", fix="kiểm tra lại mã hồ sơ")


def fonds_not_found() -> NotFoundError:
    return NotFoundError("Không tìm thấy phông lưu trữ", fix="kiểm tra lại tên phông")


@dataclass(frozen=True)
class FiledDocument:
    """A document of a hồ sơ as the principal sees it: its catalog entry (reasons and status as they may read
    them), its STT among the visible documents and its pages within the hồ sơ (tờ số, visible pages only)."""

    entry: CatalogEntry
    stt: int
    first_page: int
    last_page: int


@dataclass
class FileView:
    """One hồ sơ as a principal sees it."""

    file_code: str
    record: FileRecord | None
    title: str | None
    fonds: str | None
    documents: list[FiledDocument] = field(default_factory=list)

    @property
    def fonds_key(self) -> str:
        return self.fonds or NO_FONDS

    @property
    def pages(self) -> int:
        return sum(d.entry.pages for d in self.documents)

    def _dates(self) -> list[str]:
        return sorted(str(d) for d in (doc.entry.metadata.get("issued_date") for doc in self.documents)
                      if isinstance(d, str) and d[:4].isdigit())

    @property
    def start(self) -> str | None:
        """Thời gian bắt đầu: the record's, else the earliest date of a visible document."""
        dates = self._dates()
        return (self.record.start_date if self.record and self.record.start_date else None) or \
            (dates[0] if dates else None)

    @property
    def end(self) -> str | None:
        dates = self._dates()
        return (self.record.end_date if self.record and self.record.end_date else None) or \
            (dates[-1] if dates else None)

    @property
    def years(self) -> str:
        """``1998–2001`` (or one year), from ``start`` and ``end``; empty when neither is known."""
        first, last = (self.start or "")[:4], (self.end or "")[:4]
        if not first and not last:
            return ""
        return first if first == last or not last else (last if not first else f"{first}–{last}")


@dataclass(frozen=True)
class FondsView:
    key: str  # URL key: the phông's name, or NO_FONDS
    name: str
    files: list[FileView]

    @property
    def documents(self) -> int:
        return sum(len(f.documents) for f in self.files)


def fonds_label(name: str | None) -> str:
    return name or NO_FONDS_LABEL


# --- reading ---------------------------------------------------------------------------------------------------
def ensure_filing(settings: Settings, catalog: Catalog) -> None:
    """Fill the hồ sơ columns of catalog rows written before they existed, from the stored manifests with their
    corrections (once per archive; ``sohoa reindex`` does the same)."""
    if not catalog.filing_pending():
        return
    store = build_object_store(settings)
    filing: list[tuple[str, str | None, int | None]] = []
    for entry in catalog.entries():
        try:
            machine = DocumentManifest.model_validate_json(store.get_bytes(entry.manifest_key))
            manifest = corrected(machine, edits_of(store, entry.id, archive=settings.archive_path()))
        except (ObjectMissing, CorrectionsUnreadable, ValueError) as exc:
            log.warning("hồ sơ of %s unknown: %s", entry.id, exc)
            filing.append((entry.id, None, None))  # filed nowhere rather than guessed
            continue
        filing.append((entry.id, manifest.file_code, manifest.sequence))
    catalog.fill_filing(filing)


def visible_filed(settings: Settings, catalog: Catalog, principal: Principal,
                  file_code: str | None = None) -> list[CatalogEntry]:
    """Every catalogued document filed in a hồ sơ (``file_code``: in that one) that ``principal`` may see, with
    the review reasons and status they may read (``flows.access``)."""
    ensure_filing(settings, catalog)
    filed = catalog.filed(file_code)
    shown = visible_items(principal, filed, lambda e: level_of_metadata(e.metadata))
    levels = catalog_levels(catalog)
    out = []
    for entry in shown:
        reasons = visible_reasons(principal, entry.review_reasons, levels)
        out.append(dataclasses.replace(entry, review_reasons=reasons,
                                       status=visible_status(entry.status, entry.review_reasons, reasons)))
    return out


def _number(entries: Iterable[CatalogEntry]) -> list[FiledDocument]:
    """The visible documents of one hồ sơ in số thứ tự order (then id), numbered anew, with their tờ số."""
    ordered = sorted(entries, key=lambda e: (e.sequence is None, e.sequence or 0, e.id))
    out, page = [], 1
    for stt, entry in enumerate(ordered, 1):
        out.append(FiledDocument(entry=entry, stt=stt, first_page=page, last_page=page + max(entry.pages, 1) - 1))
        page += max(entry.pages, 1)
    return out


def _batch_defaults(settings: Settings) -> dict[str, tuple[str | None, str | None]]:
    """file_code → (fonds, title) of the latest batch registered with that hồ sơ code."""
    registry = open_batch_registry(settings)
    try:
        records = sorted(registry.batches(), key=lambda r: r.created_at)
    finally:
        registry.close()
    out: dict[str, tuple[str | None, str | None]] = {}
    for r in records:
        if r.file_code:
            fonds, title = out.get(r.file_code, (None, None))
            out[r.file_code] = (r.fonds or fonds, r.title or title)
    return out


def archive_files(settings: Settings, principal: Principal, file_code: str | None = None) -> list[FileView]:
    """Every hồ sơ that exists for ``principal`` (see the module's rule), by mã hồ sơ (``file_code``: that one
    only, when it exists for them)."""
    catalog = open_catalog(settings)
    try:
        filed = visible_filed(settings, catalog, principal, file_code)
    finally:
        catalog.close()
    records_db = open_file_records(settings)
    try:
        every = records_db.all() if file_code is None else [r for r in [records_db.get(file_code)] if r is not None]
        records = {r.file_code: r for r in every}
    finally:
        records_db.close()
    by_code: dict[str, list[CatalogEntry]] = defaultdict(list)
    for entry in filed:
        by_code[str(entry.file_code)].append(entry)
    defaults = _batch_defaults(settings) if set(by_code) - set(records) else {}
    views = []
    for code in sorted(set(by_code) | set(records)):
        record = records.get(code)
        fonds, title = defaults.get(code, (None, None))
        if record is not None:
            fonds, title = record.fonds, record.title
        views.append(FileView(file_code=code, record=record, title=title, fonds=fonds,
                              documents=_number(by_code.get(code, []))))
    return views


def archive_fonds(settings: Settings, principal: Principal) -> list[FondsView]:
    """Every phông that holds a hồ sơ existing for ``principal``, by name (the unnamed one last)."""
    groups: dict[str, list[FileView]] = defaultdict(list)
    for view in archive_files(settings, principal):
        groups[view.fonds_key].append(view)
    keys = sorted(groups, key=lambda k: (k == NO_FONDS, k))
    return [FondsView(key=k, name=fonds_label(None if k == NO_FONDS else k), files=groups[k]) for k in keys]


def fonds_view(settings: Settings, principal: Principal, key: str) -> FondsView:
    """One phông (``NotFoundError`` when no hồ sơ of it exists for ``principal``)."""
    found = next((f for f in archive_fonds(settings, principal) if f.key == key), None)
    if found is None:
        raise fonds_not_found()
    return found


def file_view(settings: Settings, principal: Principal, file_code: str) -> FileView:
    """One hồ sơ (``NotFoundError`` — the same for a hidden-only hồ sơ as for an unknown code)."""
    found = next((f for f in archive_files(settings, principal, file_code) if f.file_code == file_code), None)
    if found is None:
        raise file_not_found()
    return found


def filing_of(settings: Settings, manifest: DocumentManifest) -> FileView | None:
    """The hồ sơ of a document the principal may see — so it exists for them — for its breadcrumb (code, title,
    phông; no document list), or None when the document is filed nowhere."""
    code = manifest.file_code
    if not code:
        return None
    records_db = open_file_records(settings)
    try:
        record = records_db.get(code)
    finally:
        records_db.close()
    fonds, title = (record.fonds, record.title) if record else _batch_defaults(settings).get(code, (None, None))
    return FileView(file_code=code, record=record, title=title, fonds=fonds)


# --- a document's place in its hồ sơ, as a reader below full clearance may see it ------------------------------
def shown_filing(settings: Settings, principal: Principal, view: DocumentView) -> DocumentView:
    """``view`` (a document the principal may see, from ``flows.review.load_document``) with its số thứ tự as
    they may know it. The stored number counts every document of the hồ sơ, so beside the numbers of the other
    visible documents a gap would tell that a hidden one sits there: a reader below the top clearance is shown the
    document's STT among the documents THEY see (as on the hồ sơ page and in the mục lục), and the correction
    history of ``sequence`` without its values (for every such reader and document alike, so the withholding
    itself tells nothing). The local operator and a reader cleared for every level see the stored number."""
    if principal.operator or principal.clearance >= TOP_LEVEL:
        return view
    manifest = view.manifest
    stt = None
    if manifest.file_code:
        shown = next((f for f in archive_files(settings, principal, manifest.file_code)
                      if f.file_code == manifest.file_code), None)
        stt = next((d.stt for d in shown.documents if d.entry.id == manifest.id), None) if shown else None
    edits = [dataclasses.replace(e, before=None, after=None) if e.field == "sequence" else e for e in view.edits]
    return dataclasses.replace(view, manifest=manifest.model_copy(update={"sequence": stt}), edits=edits)


def shown_pdf_name(principal: Principal, view: DocumentView) -> str:
    """The PDF/A's file name for a view from ``shown_filing``: the stored name (``<mã hồ sơ>.<số thứ tự>.pdf`` at
    intake) unless that would show a reader below the top clearance a stored number they are not shown; then the
    name from what they see."""
    if view.pdfa is None:
        return ""
    stored = PurePosixPath(view.pdfa.key).name
    machine = view.machine
    restricted = not principal.operator and principal.clearance < TOP_LEVEL
    if restricted and machine.file_code and machine.sequence and view.manifest.sequence != machine.sequence \
            and stored == pdfa_name(machine.file_code, machine.sequence):
        return pdfa_name(view.manifest.file_code, view.manifest.sequence)
    return stored
