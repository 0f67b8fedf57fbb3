"""``sohoa user add|passwd``: accounts of the web app (role, clearance, password, API key)."""

from __future__ import annotations

import argparse
import sys

from flows.access import Rule, access_rule
from interfaces.cli.common import ARCHIVE_HELP, audit_action, settings_of
from schemas.errors import ConfigError, ExitCode


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass("Mật khẩu: ")
    if getpass.getpass("Nhập lại mật khẩu: ") != first:
        raise ConfigError("Hai lần nhập mật khẩu không khớp", fix="chạy lại lệnh")
    return first


@access_rule(Rule.NO_DOCUMENT_DATA)
def cmd_user_add(args: argparse.Namespace) -> ExitCode:
    from flows.accounts import AccountError, add_user

    settings = settings_of(args)
    try:
        new = add_user(settings, args.name, _read_password(args), args.role, clearance=args.clearance,
                       api_token=args.token)
    except AccountError as exc:
        raise ConfigError(str(exc), fix="chọn tên khác, hoặc mật khẩu từ 12 ký tự, không phổ biến, "
                                          "không chứa tên tài khoản") from exc
    audit_action(settings, args, "user.create", new.username, {"role": new.role, "clearance": new.clearance})
    print(f"Đã tạo tài khoản {new.username} ({new.role}, mức mật {new.clearance})")
    if new.token:
        print(f"Khóa API (chỉ hiện một lần): {new.token}")
    return ExitCode.OK


@access_rule(Rule.NO_DOCUMENT_DATA)
def cmd_user_passwd(args: argparse.Namespace) -> ExitCode:
    from flows.accounts import AccountError, set_password

    settings = settings_of(args)
    try:
        set_password(settings, args.name, _read_password(args))
    except AccountError as exc:
        raise ConfigError(str(exc), fix="kiểm tra tên tài khoản; mật khẩu từ 12 ký tự, không phổ biến, "
                                          "không chứa tên tài khoản") from exc
    audit_action(settings, args, "user.password", args.name)
    print(f"Đã đặt lại mật khẩu cho {args.name}")
    return ExitCode.OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    us = sub.add_parser("user", help="tài khoản của ứng dụng web (vai trò, mức mật)")
    us_sub = us.add_subparsers(dest="user_command", required=True)
    ua = us_sub.add_parser("add", help="tạo tài khoản")
    ua.add_argument("name", metavar="TÊN")
    ua.add_argument("--role", choices=["staff", "archivist", "admin"], default="staff")
    ua.add_argument("--clearance", type=int, choices=[0, 1, 2, 3], default=0,
                    help="mức mật được xem: 0 thường, 1 Mật, 2 Tối mật, 3 Tuyệt mật")
    ua.add_argument("--token", action="store_true", help="tạo thêm khóa API (in ra một lần)")
    up = us_sub.add_parser("passwd", help="đặt lại mật khẩu")
    up.add_argument("name", metavar="TÊN")
    for parser, func in ((ua, cmd_user_add), (up, cmd_user_passwd)):
        parser.add_argument("--archive", help=ARCHIVE_HELP)
        parser.add_argument("--password-stdin", action="store_true", help="đọc mật khẩu từ dòng đầu của stdin")
        parser.set_defaults(func=func)
