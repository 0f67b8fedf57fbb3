"""``sohoa web``: serve the web app. The only CLI module that reaches into ``interfaces.web`` (its server)."""

from __future__ import annotations

import argparse

from flows.access import Rule, access_rule
from interfaces.cli.common import ARCHIVE_HELP, settings_of
from schemas.errors import ExitCode


@access_rule(Rule.NO_DOCUMENT_DATA)
def cmd_web(args: argparse.Namespace) -> ExitCode:
    from interfaces.web.server import run_web  # the web app loads only for this command

    run_web(settings_of(args), host=args.host, port=args.port)
    return ExitCode.OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    w = sub.add_parser("web", help="chạy ứng dụng web tra cứu và soát xét")
    w.add_argument("--archive", help=ARCHIVE_HELP)
    w.add_argument("--host", default="127.0.0.1", help="địa chỉ lắng nghe (mặc định 127.0.0.1)")
    w.add_argument("--port", type=int, default=8000)
    w.set_defaults(func=cmd_web)
