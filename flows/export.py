"""Export the TT 05/2025 document-metadata table (Excel or CSV) for the archive, one batch, or a search.

``build_table`` is pure (catalog entries in, header + rows out); ``write_csv`` / ``write_xlsx`` write it;
``export_archive`` picks the entries (all, a batch, the hits of a query) and writes the file atomically.
Columns follow the order of the TT 05/2025 document fields, with Vietnamese headers naming the TT 05 field.
Fields sohoa cannot know (mã định danh, mã lưu trữ need the archive's agency and file codes) stay empty for
the archivist to fill in.

What is exported is what the exporting principal may see (``flows.access``): rows of documents above their
clearance are left out, and a review reason naming such a document (a possible duplicate) is left out of the
"Ghi chú" of the documents they may see. Every text cell is written as text, never as a formula
(``flows.cells.neutralise_formula``; in XLSX also as a string cell): a corrected subject ``=HYPERLINK(...)``
stays the text the archivist typed.
"""

from __future__ import annotations

import csv
import dataclasses
import getpass
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from flows.access import Principal, visible_reasons, visible_status
from flows.cells import neutralise_formula
from flows.queries import catalog_levels, open_catalog, search_archive
from schemas.errors import ConfigError, NotFoundError
from schemas.metadata import CLASSIFICATIONS
from schemas.reasons import describe_all
from schemas.search import SearchFilters
from schemas.settings import Settings
from storage.catalog import Catalog, CatalogEntry

Format = Literal["csv", "xlsx"]
Cell = str | int | date | None

HEADERS: tuple[str, ...] = (
    "Mã định danh văn bản (docId)",
    "Mã lưu trữ (docCode)",
    "Số văn bản (codeNumber)",
    "Ký hiệu văn bản (codeNotation)",
    "Tên loại văn bản (typeName)",
    "Mã tên loại (typeName)",
    "Ngày, tháng, năm văn bản (issuedDate)",
    "Tên cơ quan, tổ chức ban hành (organName)",
    "Trích yếu nội dung (subject)",
    "Ngôn ngữ (language)",
    "Số trang (numberOfPage)",
    "Người ký",
    "Chức vụ người ký",
    "Độ mật",
    "Chế độ sử dụng (mode)",
    "Độ khẩn",
    "Nơi nhận",
    "Mức độ tin cậy (confidenceLevel)",
    "Trạng thái",
    "Ghi chú (description)",
    "Tệp nguồn",
    "Mã sohoa",
)
LANGUAGE = "Tiếng Việt"
CONFIDENCE_LEVEL = "02 - Số hóa"
MODE_PUBLIC, MODE_SECRET = "01 - Công khai", "03 - Mật"
STATUS_LABELS = {"done": "Hoàn thành", "needs_review": "Cần xem lại"}
EXPORT_LOG = "export-log.jsonl"
DATE_COLUMN = HEADERS.index("Ngày, tháng, năm văn bản (issuedDate)")


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: list[list[Cell]]


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _date(value: object) -> date | str | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return text


def _row(entry: CatalogEntry) -> list[Cell]:
    md = entry.metadata
    classification = _text(md.get("classification"))
    recipients = md.get("recipients")
    pages = md.get("page_count")
    return [
        None,  # docId: assigned from the agency's identifier code, unknown to sohoa
        None,  # docCode: fileCode + sequence, set when the document is filed (hồ sơ)
        _text(md.get("code_number")),
        _text(md.get("code_notation")),
        _text(md.get("type_name")),
        _text(md.get("type_code")),
        _date(md.get("issued_date")),
        _text(md.get("organ_name")),
        _text(md.get("subject")),
        LANGUAGE,
        pages if isinstance(pages, int) else entry.pages,
        _text(md.get("signer")),
        _text(md.get("signer_title")),
        classification,
        MODE_SECRET if classification in CLASSIFICATIONS else MODE_PUBLIC,
        _text(md.get("urgency")),
        "; ".join(str(r) for r in recipients) if isinstance(recipients, list) and recipients else None,
        CONFIDENCE_LEVEL,
        STATUS_LABELS.get(entry.status, entry.status),
        "; ".join(describe_all(entry.review_reasons)) or None,  # an edge: the codes in Vietnamese
        entry.source,
        entry.id,
    ]


def build_table(entries: Iterable[CatalogEntry]) -> Table:
    """The TT 05 metadata table of ``entries``, in the given order."""
    return Table(HEADERS, [_row(e) for e in entries])


def _csv_cell(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, date):
        return cell.strftime("%d/%m/%Y")
    if isinstance(cell, int):
        return str(cell)
    return neutralise_formula(str(cell))


def write_csv(table: Table, path: Path) -> None:
    """UTF-8 with BOM (Excel then reads Vietnamese correctly), comma separated, dates dd/mm/yyyy."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(table.headers)
        writer.writerows([_csv_cell(c) for c in row] for row in table.rows)


def write_xlsx(table: Table, path: Path) -> None:
    """One sheet, bold frozen header row, real date cells shown dd/mm/yyyy."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Văn bản"
    ws.append(list(table.headers))
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in table.rows:
        ws.append([neutralise_formula(c) if isinstance(c, str) else c for c in row])
    for cells in ws.iter_rows(min_row=2):
        for cell in cells:
            if isinstance(cell.value, str):
                cell.data_type = "s"  # openpyxl takes a string starting with "=" for a formula: text it is
    for (cell,) in ws.iter_rows(min_row=2, min_col=DATE_COLUMN + 1, max_col=DATE_COLUMN + 1):
        if isinstance(cell.value, date):
            cell.number_format = "DD/MM/YYYY"
    for idx, header in enumerate(table.headers, 1):
        ws.column_dimensions[ws.cell(row=1, column=idx).column_letter].width = min(50, max(12, len(header) // 2 + 4))
    ws.freeze_panes = "A2"
    wb.save(path)


EXPORT_PAGE = 1000
MAX_EXPORT_MATCHES = 100_000  # the deepest a search pages (SearchRequest.offset)


def matching_ids(settings: Settings, query: str, *, principal: Principal, batch: str | None = None) -> list[str]:
    """The ids of every document matching ``query`` that ``principal`` may see (the clearance is applied inside
    the index), best first: read a page (``EXPORT_PAGE``) at a time to the last one, as deep as a search pages
    (``MAX_EXPORT_MATCHES``); a large total may be an estimate, so the pages, not the total, say when to stop."""
    filters = SearchFilters(batch=[batch] if batch is not None else [])
    ids: list[str] = []
    while True:
        result = search_archive(settings, query, limit=EXPORT_PAGE, offset=len(ids), filters=filters,
                                clearance=principal.clearance)
        ids += [hit.id for hit in result.hits]
        if len(result.hits) < EXPORT_PAGE or len(ids) >= MAX_EXPORT_MATCHES:
            break
    return list(dict.fromkeys(ids))


def _select(settings: Settings, catalog: Catalog, *, query: str | None, batch: str | None,
            principal: Principal) -> list[CatalogEntry]:
    """The catalog entries to export, as ``principal`` may see them: documents above their clearance left out,
    review reasons naming such a document withheld (``flows.access``)."""
    missing = NotFoundError(f"Không có lô «{batch}» trong kho", fix="kiểm tra tên lô (tên thư mục đã số hóa)")
    if batch is not None and (batch not in catalog.batches() or not any(
            principal.may_see(e.metadata.get("classification")) for e in catalog.entries(batch=batch))):
        raise missing  # a batch of documents the reader may not see is a batch that does not exist
    if query is None:
        found = catalog.entries(batch=batch)
    else:
        found = [e for e in (catalog.get(i) for i in matching_ids(settings, query, principal=principal, batch=batch))
                 if e is not None and (batch is None or e.batch == batch)]
    levels = catalog_levels(catalog)
    shown = [(e, visible_reasons(principal, e.review_reasons, levels)) for e in found
             if principal.may_see(e.metadata.get("classification"))]
    return [dataclasses.replace(e, review_reasons=reasons, status=visible_status(e.status, e.review_reasons, reasons))
            for e, reasons in shown]


def export_archive(
    settings: Settings, out: Path, *, fmt: Format, query: str | None = None, batch: str | None = None,
    clearance: int = 3, principal: Principal | None = None,
) -> int:
    """Write the metadata table of the selected documents to ``out`` (atomically); returns the row count.

    ``principal``: who exports (``flows.access``; the CLI's ``--as USER``): only the documents they may see, and
    of those only the review reasons they may read. Without one, a reader of ``clearance`` (0 open ...
    3 Tuyệt mật)."""
    if not out.parent.is_dir():
        raise ConfigError(f"Không có thư mục {out.parent}", fix="tạo thư mục trước hoặc chọn --out khác")
    reader = principal or Principal(name="", role="staff", clearance=clearance)
    catalog = open_catalog(settings)
    try:
        table = build_table(_select(settings, catalog, query=query, batch=batch, principal=reader))
    finally:
        catalog.close()
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        (write_xlsx if fmt == "xlsx" else write_csv)(table, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    classified = sum(row[HEADERS.index("Chế độ sử dụng (mode)")] == MODE_SECRET for row in table.rows)
    record: dict[str, object] = {"out": str(out.resolve()), "format": fmt, "query": query, "batch": batch,
                                 "documents": len(table.rows), "classified": classified}
    if principal is not None and not principal.operator:
        record["as"] = principal.name  # the account the export was made for (``--as USER``)
    _log_export(settings.archive_path(), record)
    return len(table.rows)


def _log_export(root: Path, record: dict[str, object]) -> None:
    """Append who exported what to ``<archive>/export-log.jsonl`` (exports of classified material must be
    traceable to a person)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        user = f"uid {os.getuid()}"
    record = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "user": user} | record
    with (root / EXPORT_LOG).open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")


def format_of(out: Path, fmt: str | None) -> Format | None:
    """The requested format, else the one named by ``out``'s extension; ``None`` when neither says."""
    choice = (fmt or out.suffix.lstrip(".")).lower()
    if choice == "csv":
        return "csv"
    if choice == "xlsx":
        return "xlsx"
    return None


__all__: Sequence[str] = ("HEADERS", "Table", "build_table", "export_archive", "format_of", "matching_ids",
                          "write_csv", "write_xlsx")
