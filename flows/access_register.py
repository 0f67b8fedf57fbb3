"""The register of access requests (sổ theo dõi yêu cầu khai thác): ``sohoa register --requests``.

One row per request: date, requester, what they asked (their own text), purpose, decision, approver, expiry.
Filtered by the one access policy like the other registers (``flows.intake.visible_records``): only archivists
and admins (and the local operator) read it; an entry needs the requester's clearance at the time (what their text
may carry) and, once granted, the granted document's current level (``register_level``); a restricted reader's
register is numbered anew, so no gap tells that entries were left out.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

from flows.access import TOP_LEVEL, Levels, Principal, visible_items
from flows.access_requests import AccessRequest
from flows.cells import neutralise_formula

COLUMNS = (("requested_at", "Ngày yêu cầu"), ("requester", "Người yêu cầu"), ("reference", "Số, ký hiệu yêu cầu"),
           ("doc_ref", "Mã văn bản nêu trong yêu cầu"), ("purpose", "Mục đích khai thác"), ("decision", "Quyết định"),
           ("approver", "Người phê duyệt"), ("decided_at", "Ngày quyết định"), ("doc_id", "Văn bản được khai thác"),
           ("expires_at", "Hết hạn"), ("reason", "Lý do từ chối"))
HEADERS = ("STT", *(label for _, label in COLUMNS))


def register_level(request: AccessRequest, levels: Levels | None) -> int:
    """The clearance an entry needs (module docstring); a granted document no longer catalogued: the top level."""
    level = request.requester_clearance
    if request.doc_id is not None:
        found = levels(request.doc_id) if levels is not None else None
        level = max(level, TOP_LEVEL if found is None else found)
    return level


def visible_requests(principal: Principal, requests: list[AccessRequest],
                     levels: Levels | None) -> list[AccessRequest]:
    if not principal.has_role("archivist"):
        return []
    if principal.operator:
        return list(requests)
    return visible_items(principal, requests, lambda r: register_level(r, levels))


def register_rows(requests: list[AccessRequest], now: datetime) -> list[dict[str, object]]:
    return [{"stt": n, "requested_at": r.requested_at, "requester": r.requester, "reference": r.reference,
             "doc_ref": r.doc_ref, "purpose": r.purpose, "decision": r.status_label(now),
             "approver": r.decided_by or "", "decided_at": r.decided_at or "", "doc_id": r.doc_id or "",
             "expires_at": r.expires_at or "", "reason": r.note} for n, r in enumerate(requests, 1)]


def write_requests_register(rows: list[dict[str, object]], out: Path) -> None:
    """The register as XLSX or CSV (UTF-8 with BOM), Vietnamese headers; no cell is ever a formula."""
    table = [[neutralise_formula(v) if isinstance(v, str) else v for v in
              (row["stt"], *(row.get(key, "") for key, _ in COLUMNS))] for row in rows]
    if out.suffix.lower() == ".xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = "So yeu cau khai thac"
        sheet.append(list(HEADERS))
        for values in table:
            sheet.append(values)
        for cells in sheet.iter_rows(min_row=2):
            for cell in cells:
                if isinstance(cell.value, str):
                    cell.data_type = "s"
        book.save(out)
        return
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(HEADERS)
    writer.writerows(table)
    out.write_text("\ufeff" + buf.getvalue(), encoding="utf-8")
