"""``sohoa status``: operations at a glance (pages per night, pages/min of recent runs, review backlog and
failures by reason, the last fixity audit and backup), the figures of the web dashboard (``flows.status``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows.access import Rule, access_rule
from interfaces.cli.common import ARCHIVE_HELP, add_actor_option, audit_action, principal_of, print_json, settings_of
from schemas.errors import ExitCode
from schemas.reasons import code_label

if TYPE_CHECKING:
    from flows.status import ArchiveStatus, NightPages


@access_rule(Rule.LISTING)
def cmd_status(args: argparse.Namespace) -> ExitCode:
    from flows.status import archive_status, require_viewer
    from flows.wiring import open_archive_catalog

    settings = settings_of(args)
    principal = principal_of(settings, args)
    open_archive_catalog(settings).close()  # no archive there: exit 6, nothing created
    audit_action(settings, args, "status.view", "", {"json": bool(args.json)})  # an attempt is recorded too
    require_viewer(principal)  # a role below archivist: exit 4
    status = archive_status(settings, principal)
    if args.json:
        data = status.model_dump(mode="json")
        for key in ("review_reasons", "failure_reasons", "held_reasons"):  # the wording next to the codes
            for item in data[key]:
                item["label"] = code_label(item["code"])
        print_json(data)
        return ExitCode.OK
    when = _local_time(status.timezone)
    _print_nights(status.nights, status.pages_last_nights)
    print(f"Văn bản trong kho: {status.documents}")
    if status.runs:
        print("Tốc độ các lần chạy gần đây:")
        for run in status.runs:
            print(f"  {when(run.finished_at)}  {run.batch_id or run.name + ' (sohoa digitise)'}  {run.pages} trang, "
                  f"{run.pages_per_minute:.1f} trang/phút")
    for title, total, reasons in (("Cần soát xét", status.review_backlog, status.review_reasons),
                                  ("Lỗi chưa xử lý", status.failures, status.failure_reasons),
                                  ("Bị giữ lại khi tiếp nhận", status.held, status.held_reasons)):
        print(f"{title}: {total} văn bản")
        for item in reasons:
            print(f"  {item.documents:>5}  {code_label(item.code)}")
    _print_preservation(status, when)
    return ExitCode.OK


def _local_time(timezone: str) -> Callable[[str], str]:
    """An ISO time as ``dd/mm/yyyy hh:mm`` in the archive's time zone (as the web pages show it)."""
    try:
        zone: ZoneInfo | None = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = None

    def shown(value: str) -> str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        return (moment.astimezone(zone) if zone is not None and moment.tzinfo else moment).strftime("%d/%m/%Y %H:%M")

    return shown


def _print_nights(nights: list[NightPages], total: int) -> None:
    print(f"Số trang số hóa {len(nights)} đêm gần nhất: {total}")
    for night in nights:
        if night.pages:
            day = date.fromisoformat(night.night)
            print(f"  đêm {day:%d/%m/%Y}: {night.pages} trang ({night.documents} văn bản)")


def _print_preservation(status: ArchiveStatus, when: Callable[[str], str]) -> None:
    fixity, backup = status.fixity, status.backup
    if fixity is None:
        print("Kiểm tra toàn vẹn: chưa chạy lần nào (sohoa verify)")
    else:
        scope = ("kiểm tra mẫu" + (f" {fixity.sample} văn bản" if fixity.sample else "")) if fixity.sampled \
            else "toàn bộ kho"
        outcome = "không có vấn đề" if not fixity.problems else f"{fixity.problems} vấn đề"
        print(f"Kiểm tra toàn vẹn gần nhất: {when(fixity.finished_at)} ({scope}), {fixity.documents_checked} văn bản, "
              f"{outcome}")
    if backup is None:
        print("Sao lưu: chưa có lần sao lưu nào được ghi lại (sohoa backup)")
    else:
        outcome = "đầy đủ" if not backup.problems else f"{backup.problems} văn bản không sao lưu được"
        print(f"Sao lưu gần nhất: {when(backup.finished_at)} → {backup.target}, {outcome}")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    st = sub.add_parser("status", help="tình hình vận hành: trang số hóa mỗi đêm, tốc độ, tồn đọng, toàn vẹn, sao lưu")
    st.add_argument("--archive", help=ARCHIVE_HELP)
    st.add_argument("--json", action="store_true", help="in kết quả dạng JSON")
    add_actor_option(st)
    st.set_defaults(func=cmd_status)
