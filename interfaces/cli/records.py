"""``sohoa register``: the copy register of classified documents (sổ quản lý sao, chụp) and the quarantine list."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.access import Levels, Principal, Rule, access_rule, level_of_metadata
from interfaces.cli.common import ARCHIVE_HELP, audit_action, principal_of, print_json, settings_of
from schemas.errors import ExitCode
from schemas.reasons import codes_json, describe_all
from schemas.settings import Settings


@access_rule(Rule.LISTING)
def cmd_register(args: argparse.Namespace) -> ExitCode:
    from flows.intake import quarantine_entries, register_entries, visible_records, write_register
    from flows.wiring import build_object_store

    settings = settings_of(args)
    principal = principal_of(settings, args)
    audit_action(settings, args, "register.view" if not args.out else "register.export", args.out or "",
           {"quarantine": args.quarantine, **({"requests": True} if args.requests else {})})
    if args.requests:
        return _requests_register(settings, principal, args)
    store = build_object_store(settings)
    levels = _catalog_levels(settings)
    if args.quarantine:
        entries = [_held_view(e) for e in visible_records(principal, quarantine_entries(store), levels)]
        if args.json:
            print_json({"quarantine": entries})
            return ExitCode.OK
        print(f"{len(entries)} văn bản bị giữ lại khi tiếp nhận" if entries else "Không có văn bản nào bị giữ lại.")
        for e in entries:
            state = f"{e['state']}, số hóa {e['released_at']}" if e.get("released_at") else e["state"]
            print(f"  {e['at']}  [{e['doc_id']}] {e['source']} — {e.get('classification')}: {e['reason']} ({state})")
        return ExitCode.OK
    entries = visible_records(principal, register_entries(store), levels)
    if args.out:
        write_register(entries, Path(args.out))
        sys.stderr.write(f"Đã xuất sổ quản lý sao, chụp ({len(entries)} mục) vào {args.out}\n")
        return ExitCode.OK
    if args.json:
        print_json({"register": entries})
        return ExitCode.OK
    print(f"Sổ quản lý sao, chụp: {len(entries)} mục" if entries else "Sổ quản lý sao, chụp chưa có mục nào.")
    for e in entries:
        print(f"  {e['stt']:>4}. {e['at']}  {e.get('code') or '(không số)'}  {e.get('classification')}  "
              f"{e.get('pages')} trang  phê duyệt: {e.get('approval_ref') or 'CHƯA CÓ'}  [{e['doc_id']}] {e['source']}")
    return ExitCode.OK


def _requests_register(settings: Settings, principal: Principal, args: argparse.Namespace) -> ExitCode:
    """``register --requests``: the access requests (``flows.access_register``), filtered like the other registers."""
    from datetime import UTC, datetime

    from flows.access_register import register_rows, visible_requests, write_requests_register
    from flows.access_requests import all_requests
    from flows.wiring import open_accounts_db

    now = datetime.now(UTC)
    requests = visible_requests(principal, all_requests(open_accounts_db(settings)), _catalog_levels(settings))
    rows = register_rows(requests, now)
    if args.out:
        write_requests_register(rows, Path(args.out))
        sys.stderr.write(f"Đã xuất sổ theo dõi yêu cầu khai thác ({len(rows)} mục) vào {args.out}\n")
        return ExitCode.OK
    if args.json:
        print_json({"requests": rows})
        return ExitCode.OK
    print(f"Sổ theo dõi yêu cầu khai thác: {len(rows)} mục" if rows else "Chưa có yêu cầu khai thác nào.")
    for r in rows:
        expiry = f", hết hạn {r['expires_at']}" if r["expires_at"] else ""
        print(f"  {r['stt']:>4}. {r['requested_at']}  {r['requester']}: {r['reference'] or r['doc_ref']} — "
              f"{r['purpose']}  → {r['decision']}{' (' + str(r['approver']) + expiry + ')' if r['approver'] else ''}")
    return ExitCode.OK


def _held_view(entry: dict[str, object]) -> dict[str, object]:
    """A quarantine record as shown: why it was held in Vietnamese (``reason``, as always) and as codes."""
    from flows.intake import held_reasons

    held = held_reasons(entry)
    shown = {k: v for k, v in entry.items() if k not in ("reason", "reasons")}
    return {**shown, "reason": "; ".join(describe_all(held)), "reason_codes": codes_json(held)}


def _catalog_levels(settings: Settings) -> Levels | None:
    """Documents' current secrecy levels (the catalog holds the corrected metadata), read once into memory."""
    from flows.wiring import open_existing_catalog

    catalog = open_existing_catalog(settings)
    if catalog is None:
        return None
    try:
        known = {e.id: level_of_metadata(e.metadata) for e in catalog.entries()}
    finally:
        catalog.close()
    return known.get


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rg = sub.add_parser("register", help="sổ quản lý sao, chụp tài liệu mật; --quarantine: tài liệu bị giữ lại")
    rg.add_argument("--archive", help=ARCHIVE_HELP)
    rg.add_argument("--quarantine", action="store_true", help="danh sách tài liệu bị giữ lại khi tiếp nhận")
    rg.add_argument("--requests", action="store_true",
                    help="sổ theo dõi yêu cầu khai thác tài liệu (phiếu yêu cầu, quyết định, thời hạn)")
    rg.add_argument("--out", help="xuất sổ ra tệp .xlsx hoặc .csv")
    rg.add_argument("--json", action="store_true", help="in kết quả dạng JSON")
    rg.add_argument("--as", dest="as_user", metavar="NGƯỜI_DÙNG", help="người thực hiện (ghi nhật ký kiểm soát)")
    rg.set_defaults(func=cmd_register)
