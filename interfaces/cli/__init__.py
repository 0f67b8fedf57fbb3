"""``sohoa`` command line (Vietnamese messages). JSON output is the stable contract for scripts.

One module per command group, each registering its sub-parsers and holding their handlers:

    digitise    sohoa digitise
    documents   sohoa show | search | export
    integrity   sohoa verify | backup | reindex
    batches     sohoa batch add|list|show|retry|cancel, sohoa serve
    records     sohoa register
    status      sohoa status
    web         sohoa web
    accounts    sohoa user add|passwd
    audit       sohoa audit verify|init|export|list
    common      settings, JSON output, whom a command acts for, its audit record; progress: the live progress line

Exit codes: ``schemas.errors.ExitCode``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from interfaces.cli import accounts, audit, batches, digitise, documents, integrity, records, status, web
from interfaces.cli.common import principal_of, settings_of
from schemas.errors import ExitCode, NotFoundError, SohoaError
from storage.objects import StoreAccessDenied, StoreUnavailable

COMMAND_GROUPS = (digitise, documents, integrity, batches, records, web, accounts, audit, status)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sohoa", description="Số hóa, nhận dạng chữ và tra cứu tài liệu lưu trữ.")
    sub = p.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "as_user", None):  # acting for an account: it must exist and be active (else exit 4)
            principal_of(settings_of(args), args)
        return int(args.func(args))
    except SohoaError as exc:
        sys.stderr.write(f"Lỗi: {exc}\n")
        return exc.exit_code
    except (StoreUnavailable, StoreAccessDenied) as exc:
        sys.stderr.write(f"Lỗi: {exc}\n")
        return ExitCode.CONFIG
    except KeyboardInterrupt:
        sys.stderr.write("\nĐã dừng theo yêu cầu. Chạy lại lệnh để tiếp tục: phần đã xong được giữ nguyên.\n")
        return ExitCode.INTERRUPTED


def entrypoint() -> None:
    from flows.prefect_env import limit_ocr_threads

    limit_ocr_threads()
    # the catalog, the index and the audit trail hold classified text: nothing an archive run creates is readable
    # by other users of the machine (owner read-write, the service group read-only)
    os.umask(0o027)
    sys.exit(int(main()))


__all__ = ["NotFoundError", "build_parser", "entrypoint", "main"]
