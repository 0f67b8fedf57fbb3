"""Mục lục of one hồ sơ as an XLSX workbook (TT 05/2025 layout): sheet "Mục lục hồ sơ" (the hồ sơ's row) and
sheet "Mục lục văn bản" (its documents in số thứ tự order), for ``sohoa export --muc-luc`` and the hồ sơ page.

Only what the exporting principal may see (``flows.files``: documents above their clearance are left out of the
rows, the counts, the page numbers and the dates; the documents are numbered anew). Every text cell is written
as text, never as a formula (``flows.cells.neutralise_formula``, string cells).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from flows.access import Principal
from flows.cells import neutralise_formula
from flows.export import _log_export
from flows.files import FileView, file_view
from schemas.errors import ConfigError
from schemas.settings import Settings

Cell = str | int | date | None

FILE_SHEET = "Mục lục hồ sơ"
DOCUMENT_SHEET = "Mục lục văn bản"
FILE_HEADERS: tuple[str, ...] = ("STT", "Mã hồ sơ", "Tiêu đề hồ sơ", "Thời gian bắt đầu", "Thời gian kết thúc",
                                 "Thời hạn bảo quản", "Số lượng tờ/văn bản", "Ghi chú")
DOCUMENT_HEADERS: tuple[str, ...] = ("STT", "Số, ký hiệu văn bản", "Ngày tháng năm văn bản",
                                     "Tác giả văn bản (cơ quan ban hành)", "Trích yếu nội dung", "Tờ số/Số trang",
                                     "Ghi chú")


@dataclass(frozen=True)
class MucLuc:
    file_rows: list[list[Cell]]
    document_rows: list[list[Cell]]


def _date(value: object) -> date | str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return value


def _text(value: object) -> str | None:
    return None if value is None or value == "" else " ".join(str(value).split())


def number_notation(metadata: dict[str, object]) -> str | None:
    """``15-NQ/TU`` from số and ký hiệu (either alone when the other is unknown)."""
    parts = [str(v) for v in (metadata.get("code_number"), metadata.get("code_notation")) if v]
    return "-".join(parts) or None


def pages_label(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def build_muc_luc(view: FileView) -> MucLuc:
    """The two tables of one hồ sơ as ``view`` shows it (pure)."""
    record = view.record
    count = f"{view.pages} trang / {len(view.documents)} văn bản"
    file_row: list[Cell] = [1, view.file_code, _text(view.title), _date(view.start), _date(view.end),
                            _text(record.maintenance if record else None), count,
                            _text(record.note if record else None)]
    rows: list[list[Cell]] = []
    for doc in view.documents:
        md = doc.entry.metadata
        notes = [str(md["classification"])] if md.get("classification") else []
        if md.get("type_name"):
            notes.insert(0, str(md["type_name"]))
        rows.append([doc.stt, number_notation(md), _date(md.get("issued_date")), _text(md.get("organ_name")),
                     _text(md.get("subject")), pages_label(doc.first_page, doc.last_page), "; ".join(notes) or None])
    return MucLuc(file_rows=[file_row], document_rows=rows)


def write_muc_luc(table: MucLuc, path: Path | io.BytesIO) -> None:
    """Both sheets: bold frozen header row, dates shown dd/mm/yyyy, text cells as strings."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    first = wb.active
    assert first is not None
    first.title = FILE_SHEET
    second = wb.create_sheet(DOCUMENT_SHEET)
    for ws, headers, rows in ((first, FILE_HEADERS, table.file_rows), (second, DOCUMENT_HEADERS, table.document_rows)):
        ws.append(list(headers))
        for cell in ws[1]:
            cell.font = Font(bold=True)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for row in rows:
            ws.append([neutralise_formula(c) if isinstance(c, str) else c for c in row])
        for cells in ws.iter_rows(min_row=2):
            for cell in cells:
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # never a formula
                elif isinstance(cell.value, date):
                    cell.number_format = "DD/MM/YYYY"
        for idx, header in enumerate(headers, 1):
            width = 40 if "Trích yếu" in header or "Tiêu đề" in header else max(8, min(30, len(header) + 2))
            ws.column_dimensions[ws.cell(row=1, column=idx).column_letter].width = width
        ws.freeze_panes = "A2"
    wb.save(path)


def export_muc_luc(settings: Settings, file_code: str, out: Path, *, principal: Principal) -> FileView:
    """Write the mục lục of hồ sơ ``file_code`` as ``principal`` may see it to ``out`` (atomically), log the
    export (``export-log.jsonl``); ``NotFoundError`` when the hồ sơ does not exist for them."""
    if not out.parent.is_dir():
        raise ConfigError(f"Không có thư mục {out.parent}", fix="tạo thư mục trước hoặc chọn --out khác")
    view = file_view(settings, principal, file_code)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        write_muc_luc(build_muc_luc(view), tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    record: dict[str, object] = {"out": str(out.resolve()), "format": "xlsx", "muc_luc": file_code}
    _log(settings, principal, view, record)
    return view


def muc_luc_bytes(settings: Settings, file_code: str, *, principal: Principal, where: str) -> tuple[FileView, bytes]:
    """The mục lục workbook of hồ sơ ``file_code`` as ``principal`` may see it (the web's download), logged like
    the CLI's export with ``where`` (e.g. ``web``) as its destination."""
    view = file_view(settings, principal, file_code)
    buffer = io.BytesIO()
    write_muc_luc(build_muc_luc(view), buffer)
    _log(settings, principal, view, {"out": where, "format": "xlsx", "muc_luc": file_code})
    return view, buffer.getvalue()


def _log(settings: Settings, principal: Principal, view: FileView, record: dict[str, object]) -> None:
    record |= {"documents": len(view.documents),
               "classified": sum(bool(d.entry.metadata.get("classification")) for d in view.documents)}
    if not principal.operator:
        record["as"] = principal.name
    _log_export(settings.archive_path(), record)


__all__: Sequence[str] = ("DOCUMENT_HEADERS", "DOCUMENT_SHEET", "FILE_HEADERS", "FILE_SHEET", "build_muc_luc",
                          "export_muc_luc", "muc_luc_bytes", "write_muc_luc")
