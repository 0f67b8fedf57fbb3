"""``sohoa digitise BATCH_DIR``: digitise one batch folder (or S3 inbox prefix ``s3://…``) in this process."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from flows.access import Rule, access_rule
from interfaces.cli.common import ARCHIVE_HELP, add_actor_option, audit_action, settings_of
from interfaces.cli.progress import progress_line
from schemas.document import BatchReport
from schemas.errors import ConfigError, ExitCode


@access_rule(Rule.OPERATOR)
def cmd_digitise(args: argparse.Namespace) -> ExitCode:
    settings = settings_of(args)
    from flows.inbox import batch_label, is_inbox

    batch: Path | str = args.batch_dir if is_inbox(args.batch_dir) else Path(args.batch_dir)
    if isinstance(batch, Path) and not batch.is_dir():
        raise ConfigError(f"Không tìm thấy thư mục lô: {batch}",
                          fix="kiểm tra lại đường dẫn BATCH_DIR (một thư mục, hoặc s3://BUCKET/THƯ_MỤC/)")
    from flows.intake import check_batch

    check_batch(batch, args.file_code, settings, where="--file-code")  # a broken batch.toml, a missing prefix...
    from flows.prefect_env import configure_prefect

    configure_prefect(settings.prefect_home, verbose=args.verbose)
    from flows.run import run_digitise
    from flows.wiring import close_all, services_for

    services = services_for(settings)
    _ = services.engine.languages()  # a missing tesseract or model stops here, before any work
    audit_action(settings, args, "batch.digitise", batch_label(batch), {"file_code": args.file_code})
    progress = services.progress
    try:
        with progress_line(progress.render, shown=not args.quiet):
            report = run_digitise(batch, settings, file_code=args.file_code)
    finally:
        close_all()
    from flows.progress import process_started_at
    from flows.run_log import record_run

    # pages/min of hand runs, for `sohoa status` and the dashboard; the start-up milestones (first page in OCR...)
    record_run(settings.archive_path(), report, started_at=process_started_at(), progress=progress)
    if args.report:
        Path(args.report).write_text(json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n",
                                     encoding="utf-8")
    if not args.quiet:
        _print_summary(report)
    return ExitCode.SOME_FAILED if any(d.status == "failed" for d in report.documents) else ExitCode.OK


def _print_summary(report: BatchReport) -> None:
    docs = report.documents
    done = sum(d.status == "done" for d in docs)
    review = sum(d.status == "needs_review" for d in docs)
    failed = [d for d in docs if d.status == "failed"]
    skipped = sum(d.skipped for d in docs)
    out = sys.stderr
    held = [d for d in docs if d.status == "quarantined"]
    out.write(f"Lô {report.batch}: {len(docs)} văn bản — {done} xong, {review} cần xem lại, {len(failed)} lỗi")
    out.write(f", {len(held)} bị giữ lại (cách ly)" if held else "")
    out.write(f" ({skipped} đã có sẵn trong kho, bỏ qua)\n" if skipped else "\n")
    out.write(f"Đã xử lý {report.pages_processed} trang trong {report.elapsed_s:.1f} s "
              f"({report.pages_per_minute:.1f} trang/phút)\n")
    for d in docs:
        if d.status == "needs_review" and not d.skipped:
            out.write(f"  cần xem lại  {d.source}: {'; '.join(d.review_reasons)}\n")
    for d in failed:
        out.write(f"  LỖI  {d.source}: {d.error}\n")
    for d in held:
        out.write(f"  CÁCH LY  {d.source}: {'; '.join(d.review_reasons)}\n")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser("digitise", aliases=["digitize"], help="số hóa một lô tài liệu quét")
    d.add_argument("batch_dir", metavar="BATCH_DIR", help="thư mục lô, hoặc s3://BUCKET/THƯ_MỤC/ (hộp thư S3)")
    d.add_argument("--archive", help=ARCHIVE_HELP)
    d.add_argument("--report", help="ghi báo cáo JSON vào tệp này")
    d.add_argument("--workers", type=int, help="số tiến trình OCR song song (mặc định: số nhân CPU)")
    d.add_argument("--file-code", metavar="MÃ_HỒ_SƠ",
                   help="mã hồ sơ (TT 05): PDF/A được đặt tên <mã hồ sơ>.<số thứ tự>.pdf (mặc định: batch.toml)")
    d.add_argument("--quiet", action="store_true", help="không in tiến độ và tóm tắt")
    d.add_argument("--verbose", action="store_true", help="in nhật ký chi tiết của Prefect")
    add_actor_option(d)
    d.set_defaults(func=cmd_digitise)
