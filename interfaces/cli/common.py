"""What every ``sohoa`` command shares: its settings, JSON output, whom it acts for, its audit record."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flows.access import Principal, local_operator
from schemas.errors import ConfigError
from schemas.settings import Settings

ARCHIVE_HELP = "thư mục kho lưu trữ (mặc định: $SOHOA_ARCHIVE hoặc ./archive)"


def add_actor_option(parser: argparse.ArgumentParser) -> None:
    """``--as USER`` of the commands that read or change documents: whose view, who ran them."""
    parser.add_argument("--as", dest="as_user", metavar="NGƯỜI_DÙNG",
                        help="người thực hiện, ghi vào nhật ký kiểm soát (mặc định: người dùng hệ điều hành)")


def settings_of(args: argparse.Namespace) -> Settings:
    """The environment's settings with the command's ``--archive`` and ``--workers``."""
    overrides: dict[str, object] = {}
    if getattr(args, "archive", None):
        overrides["archive"] = Path(args.archive)
    if getattr(args, "workers", None):
        overrides["workers"] = args.workers
    return Settings(**overrides)  # type: ignore[arg-type]


def print_json(data: object) -> None:
    """The stable contract for scripts: UTF-8 JSON on stdout, Vietnamese left unescaped."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def principal_of(settings: Settings, args: argparse.Namespace) -> Principal:
    """Who the command acts for (``flows.access``): the account named by ``--as USER`` (its role and clearance),
    else the local operator, who sees every level."""
    from flows.audit import cli_actor

    name = getattr(args, "as_user", None)
    if not name:
        return local_operator(cli_actor())
    from flows.accounts import accounts_of

    user = accounts_of(settings).find_user(name)
    if user is None or not user.active:
        raise ConfigError(f"Không có tài khoản đang hoạt động «{name}» trong kho {settings.archive_path()}",
                          fix="tạo bằng `sohoa user add TÊN --role staff` hoặc bỏ --as")
    return user.principal


def audit_action(settings: Settings, args: argparse.Namespace, action: str, target: str,
                 details: dict[str, object] | None = None) -> None:
    """Record a CLI action in the archive's audit trail before it is carried out."""
    from flows.audit import cli_actor, record

    record(settings, action, target, actor=cli_actor(getattr(args, "as_user", None)), details=details)
