"""Markdown summaries of batch runs, published as Prefect artifacts (one per batch, one per nightly run)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from flows.batches.status import STATE_LABELS, DocumentStatus
from schemas.settings import NightWindow
from storage.batches import BatchRecord, BatchSummary


def _cell(text: object) -> str:
    return re.sub(r"\s+", " ", str(text)).replace("|", "\\|")


def batch_markdown(record: BatchRecord, statuses: Iterable[DocumentStatus]) -> str:
    s = record.summary or BatchSummary()
    lines = [f"# Lô {record.id}: {STATE_LABELS[record.state]}", "",
             f"- Thư mục: `{record.folder}`" + (f", hồ sơ {record.file_code}" if record.file_code else ""),
             f"- Văn bản: {s.documents} — {s.done} xong, {s.needs_review} cần xem lại, {s.failed} lỗi, "
             f"{s.pending} chưa xử lý ({s.skipped} đã có trong kho, bỏ qua)",
             f"- {s.pages} trang trong {s.elapsed_s:.0f} s ({s.pages_per_minute:.1f} trang/phút)"]
    if s.stopped == "window":
        lines.append("- Dừng nhận văn bản mới vì hết khung giờ đêm; phần còn lại chạy đêm sau")
    elif s.stopped == "cancel":
        lines.append("- Đã hủy theo yêu cầu")
    if record.error:
        lines.append(f"- Lỗi: {_cell(record.error)}")
    failed = [d for d in statuses if d.status == "failed"]
    if failed:
        lines += ["", "| Văn bản lỗi | Lý do |", "|---|---|"]
        lines += [f"| `{_cell(d.source)}` | {_cell(d.error)} |" for d in failed[:200]]
    return "\n".join(lines)


def night_markdown(ran: list[BatchRecord], window: NightWindow, at: str) -> str:
    lines = [f"# Số hóa ban đêm ({window}): {len(ran)} lô", "", f"Kết thúc lúc {at}."]
    if ran:
        lines += ["", "| Lô | Trạng thái | Xong | Cần xem lại | Lỗi | Chưa xử lý | Trang | Trang/phút |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in ran:
            s = r.summary or BatchSummary()
            lines.append(f"| {r.id} (`{_cell(r.name)}`) | {STATE_LABELS[r.state]} | {s.done} | {s.needs_review} | "
                         f"{s.failed} | {s.pending} | {s.pages} | {s.pages_per_minute:.1f} |")
    return "\n".join(lines)

