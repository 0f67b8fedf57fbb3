"""``sohoa audit verify|init|export|list``: the audit trail (who did what, when, from where)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.access import Principal, Rule, access_rule
from interfaces.cli.common import ARCHIVE_HELP, audit_action, principal_of, print_json, settings_of
from schemas.errors import ExitCode, SohoaError
from schemas.settings import Settings


@access_rule(Rule.AUDIT)
def cmd_audit_verify(args: argparse.Namespace) -> ExitCode:
    from flows.audit import verify_audit
    from flows.wiring import store_from_spec

    settings = settings_of(args)
    result = verify_audit(settings, [store_from_spec(spec, settings) for spec in args.store or []])
    if args.json:
        print_json({"ok": result.ok, "entries": result.entries, "problems": result.problems})
    if result.ok:
        sys.stderr.write(f"Nhật ký kiểm soát nguyên vẹn: {result.entries} mục, chuỗi băm khớp"
                         f"{f', khớp {result.anchors} bản ghi neo' if result.anchors else ''}\n")
        return ExitCode.OK
    sys.stderr.write(f"Nhật ký kiểm soát BỊ CAN THIỆP: {len(result.problems)} vấn đề trong {result.entries} mục\n")
    fixes: list[str] = []
    for problem in result.problems[:100]:
        where = f"mục {problem['seq']}" if problem["seq"] is not None else \
            "đầu chuỗi" if problem["kind"] in ("head", "truncated") else "nhật ký"
        sys.stderr.write(f"  {where}: {problem['detail']}\n")
        if problem.get("fix") and problem["fix"] not in fixes:
            fixes.append(str(problem["fix"]))
    for fix in fixes:
        sys.stderr.write(f"Cách xử lý: {fix}\n")
    return ExitCode.PRESERVATION_PROBLEMS


@access_rule(Rule.OPERATOR)
def cmd_audit_init(args: argparse.Namespace) -> ExitCode:
    from flows.audit import cli_actor, init_trail

    settings = settings_of(args)
    entry = init_trail(settings, args.incident, actor=cli_actor())

    def listed(name: str, sep: str) -> str:
        value = entry.details.get(name)
        return sep.join(str(v) for v in value) if isinstance(value, list) and value else "không có"

    sys.stderr.write(f"Đã khởi tạo lại nhật ký kiểm soát: khóa mới, mục 1 ghi sự cố. Nhật ký và khóa cũ được để "
                     f"riêng: {listed('set_aside', ', ')}. Dấu vết của nhật ký cũ: {listed('evidence', '; ')}.\n")
    return ExitCode.OK


@access_rule(Rule.AUDIT)
def cmd_audit_export(args: argparse.Namespace) -> ExitCode:
    from flows.audit import export_entries, readable_entries, write_export

    settings = settings_of(args)
    principal = principal_of(settings, args)
    audit_action(settings, args, "audit.export", args.out or "-", {"from": args.date_from, "to": args.date_to})
    entries = readable_entries(settings, principal, since=args.date_from, until=args.date_to, actor=args.actor,
                               action=args.action)
    fmt = args.format or ("csv" if args.out and args.out.endswith(".csv") else "jsonl")
    write_export(export_entries(entries, fmt), Path(args.out) if args.out else None)
    sys.stderr.write(f"Đã xuất {len(entries)} mục nhật ký kiểm soát ({fmt})\n")
    return ExitCode.OK


def _audit_view(settings: Settings, args: argparse.Namespace, principal: Principal) -> None:
    """Record a reading of the trail; when the trail cannot record (a missing key, a wiped trail), the local
    operator may still read it to investigate, an account may not."""
    try:
        audit_action(settings, args, "audit.view", "", {"actor": args.actor, "action": args.action})
    except SohoaError as exc:
        if not principal.operator:
            raise
        sys.stderr.write(f"Cảnh báo: không ghi được nhật ký kiểm soát ({exc}); vẫn hiển thị cho người vận hành.\n")


@access_rule(Rule.AUDIT)
def cmd_audit_list(args: argparse.Namespace) -> ExitCode:
    from flows.audit import list_line, readable_entries

    settings = settings_of(args)
    principal = principal_of(settings, args)
    _audit_view(settings, args, principal)
    entries = readable_entries(settings, principal, actor=args.actor, action=args.action,
                               since=args.date_from, until=args.date_to, limit=args.limit, newest_first=True)
    if args.json:
        print_json({"entries": [e.as_dict() for e in entries]})
        return ExitCode.OK
    for e in entries:
        print(list_line(e))  # control characters shown as escapes: a value cannot forge a line
    return ExitCode.OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    au = sub.add_parser("audit", help="nhật ký kiểm soát (ai làm gì, khi nào, từ đâu): kiểm tra, xem, xuất")
    au_sub = au.add_subparsers(dest="audit_command", required=True)
    av = au_sub.add_parser("verify", help="kiểm tra chuỗi băm: phát hiện mục bị sửa, chèn, xóa hoặc đổi chỗ")
    av.add_argument("--archive", help=ARCHIVE_HELP)
    av.add_argument("--json", action="store_true", help="in kết quả dạng JSON")
    av.add_argument("--store", action="append", metavar="THƯ_MỤC|s3://BUCKET/PREFIX",
                    help="so thêm với bản ghi neo trong kho này (bản sao lưu); có thể lặp lại")
    av.set_defaults(func=cmd_audit_verify)
    ai = au_sub.add_parser("init", help="khởi tạo lại nhật ký sau sự cố đã xác nhận (nhật ký cũ mất, không khôi phục "
                                        "được): chuỗi mới, khóa mới, mục đầu tiên ghi sự cố")
    ai.add_argument("--incident", required=True, metavar="SỰ_CỐ", help="số biên bản và mô tả sự cố (ghi vào nhật ký)")
    ai.add_argument("--archive", help=ARCHIVE_HELP)
    ai.set_defaults(func=cmd_audit_init)
    for name, helptext, func in (("export", "xuất nhật ký cho thanh tra, kiểm tra (JSON lines hoặc CSV)",
                                  cmd_audit_export),
                                 ("list", "xem các mục mới nhất", cmd_audit_list)):
        a = au_sub.add_parser(name, help=helptext)
        a.add_argument("--archive", help=ARCHIVE_HELP)
        a.add_argument("--from", dest="date_from", metavar="NGÀY", help="từ ngày/giờ (ISO, giờ UTC)")
        a.add_argument("--to", dest="date_to", metavar="NGÀY", help="đến ngày/giờ (ISO, giờ UTC; cả ngày đó)")
        a.add_argument("--actor", help="chỉ của người dùng này")
        a.add_argument("--action", help="chỉ hành động này (search, document.view, export.table, ...)")
        a.add_argument("--as", dest="as_user", metavar="NGƯỜI_DÙNG",
                       help="xem như tài khoản quản trị này (chỉ mục trong mức mật của họ); ghi nhật ký dưới tên này")
        if name == "export":
            a.add_argument("--out", help="tệp đích (.jsonl hoặc .csv; mặc định: in ra màn hình)")
            a.add_argument("--format", choices=["jsonl", "csv"])
        else:
            a.add_argument("--limit", type=int, default=50)
            a.add_argument("--json", action="store_true", help="in kết quả dạng JSON")
        a.set_defaults(func=func)
