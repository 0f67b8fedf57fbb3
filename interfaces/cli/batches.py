"""Queued batches: ``sohoa batch add|list|show|run|retry|cancel`` and ``sohoa serve`` (the scheduled runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.access import Rule, access_rule
from interfaces.cli.common import ARCHIVE_HELP, add_actor_option, audit_action, principal_of, print_json, settings_of
from interfaces.cli.progress import progress_line
from schemas.errors import ExitCode
from schemas.settings import Settings


def _batch_settings(args: argparse.Namespace) -> Settings:
    """Settings of a ``sohoa batch`` command; Prefect's environment is set before ``flows.batches`` imports it."""
    from flows.prefect_env import configure_prefect

    settings = settings_of(args)
    configure_prefect(settings.prefect_home, verbose=getattr(args, "verbose", False))
    return settings


def _when_label(schedule: str, settings: Settings) -> str:
    if schedule == "now":
        return "chạy ngay"
    if schedule == "tonight":
        return f"chạy đêm nay trong khung giờ {settings.night_window}"
    return f"theo lịch cron «{schedule}» ({settings.timezone}), trong khung giờ {settings.night_window}"


def _run_batch_now(settings: Settings, batch_id: str, args: argparse.Namespace) -> ExitCode:
    """Digitise a queued batch in this process with the live progress bar; print it; exit code of its outcome."""
    from flows.batches import run_now
    from flows.wiring import close_all, services_for

    services = services_for(settings)
    try:
        with progress_line(services.progress.render, shown=not args.json):
            record = run_now(settings, batch_id)
    except KeyboardInterrupt:
        sys.stderr.write(f"\nĐã dừng lô {batch_id} theo yêu cầu: các văn bản đã xong được giữ nguyên. "
                         f"Chạy tiếp: sohoa batch retry {batch_id}\n")
        return ExitCode.INTERRUPTED
    finally:
        close_all()
    _print_batch_outcome(settings, record.id, args)
    if record.error:
        return ExitCode.ERROR
    return ExitCode.SOME_FAILED if record.summary is not None and record.summary.failed else ExitCode.OK


def _print_batch_outcome(settings: Settings, batch_id: str, args: argparse.Namespace) -> None:
    from flows.batches import STATE_LABELS, batch_details

    data = batch_details(settings, batch_id, principal_of(settings, args))
    if args.json:
        print_json(data)
    summary = data["summary"] or {}
    assert isinstance(summary, dict)
    out = sys.stderr
    out.write(f"Lô {data['id']} ({data['name']}): {STATE_LABELS[str(data['state'])]} — {summary.get('documents', 0)} "
              f"văn bản: {summary.get('done', 0)} xong, {summary.get('needs_review', 0)} cần xem lại, "
              f"{summary.get('failed', 0)} lỗi, {summary.get('pending', 0)} chưa xử lý"
              f" ({summary.get('skipped', 0)} đã có sẵn trong kho, bỏ qua)\n")
    out.write(f"Đã xử lý {summary.get('pages', 0)} trang trong {summary.get('elapsed_s', 0.0):.1f} s "
              f"({summary.get('pages_per_minute', 0.0):.1f} trang/phút)\n")
    if data.get("error"):
        out.write(f"  LỖI  {data['error']}\n")
    failures = data["failures"]
    assert isinstance(failures, list)
    for failure in failures:
        out.write(f"  LỖI  {failure['source']}: {failure['error']}\n")
    if failures:
        out.write(f"Sửa các tệp lỗi rồi chạy `sohoa batch retry {data['id']} --failed-only`.\n")


@access_rule(Rule.LISTING)
def cmd_batch_add(args: argparse.Namespace) -> ExitCode:
    settings = _batch_settings(args)
    from flows.batches import add_batch

    def check_tools(schedule: str) -> None:
        if schedule == "now":  # a missing tesseract or model stops here, before the batch is recorded
            from flows.wiring import services_for

            _ = services_for(settings).engine.languages()

    from flows.inbox import is_inbox

    source: Path | str = args.dir if is_inbox(args.dir) else Path(args.dir)  # a folder, or s3://BUCKET/PREFIX/
    record = add_batch(settings, source, when=args.when, file_code=args.file_code, fonds=args.fonds,
                       title=args.title, before_register=check_tools)
    audit_action(settings, args, "batch.add", record.id, {"folder": str(record.folder), "when": record.schedule})
    sys.stderr.write(f"Đã thêm lô {record.id}: {record.folder} — {_when_label(record.schedule, settings)}\n")
    if record.schedule == "now":
        return _run_batch_now(settings, record.id, args)
    if record.next_due_at and record.schedule != "tonight":
        sys.stderr.write(f"Lần chạy tới: từ {record.next_due_at}\n")
    sys.stderr.write("Các lô chờ được chạy bởi `sohoa serve` (lượt số hóa ban đêm).\n")
    if args.json:
        from flows.batches import batch_details

        print_json(batch_details(settings, record.id, principal_of(settings, args)))
    return ExitCode.OK


_DETAIL_KEYS = ("progress", "documents", "failures", "needs_review", "folder_missing")


@access_rule(Rule.LISTING)
def cmd_batch_list(args: argparse.Namespace) -> ExitCode:
    settings = _batch_settings(args)
    from flows.batches import STATE_LABELS, visible_batches
    from storage.batches import BatchRecord

    principal = principal_of(settings, args)
    audit_action(settings, args, "batch.list", "")
    views = visible_batches(settings, principal)
    if args.json:
        print_json({"batches": [{k: v for k, v in b.items() if k not in _DETAIL_KEYS} for b in views]})
        return ExitCode.OK
    if not views:
        print("Chưa có lô nào. Thêm lô bằng `sohoa batch add THƯ_MỤC`.")
        return ExitCode.OK
    records = [BatchRecord.model_validate({k: v for k, v in b.items() if k in BatchRecord.model_fields})
               for b in views]
    print(f"{'Mã lô':<18} {'Trạng thái':<11} {'Lịch':<14} {'Văn bản':<22} {'Tạo lúc':<17} Thư mục")
    for r in records:
        s = r.summary
        docs = (f"{s.done + s.needs_review}/{s.documents}" + (f", {s.failed} lỗi" if s.failed else "")) if s else "—"
        state = STATE_LABELS[r.state] + ("*" if r.cancel_requested else "")
        print(f"{r.id:<18} {state:<11} {r.schedule[:14]:<14} {docs:<22} {r.created_at[:16].replace('T', ' '):<17} "
              f"{r.folder}")
    if any(r.cancel_requested for r in records):
        print("* đã yêu cầu hủy: không bắt đầu văn bản mới")
    return ExitCode.OK


@access_rule(Rule.LISTING)
def cmd_batch_show(args: argparse.Namespace) -> ExitCode:
    settings = _batch_settings(args)
    from flows.batches import DOC_LABELS, STATE_LABELS, batch_details

    principal = principal_of(settings, args)
    audit_action(settings, args, "batch.view", args.id)
    data = batch_details(settings, args.id, principal)
    if args.json:
        print_json(data)
        return ExitCode.OK
    progress, summary, docs = data["progress"], data["summary"], data["documents"]
    assert isinstance(progress, dict) and isinstance(docs, list)
    print(f"Lô {data['id']} — {STATE_LABELS[str(data['state'])]}"
          + (" (đã yêu cầu hủy)" if data["cancel_requested"] else "")
          + (" (tiến trình chạy lô đã dừng đột ngột: `sohoa batch retry`)" if data["interrupted"] else ""))
    print(f"  Thư mục: {data['folder']}" + ("  (KHÔNG CÒN)" if data["folder_missing"] else ""))
    for key, label in (("file_code", "Hồ sơ"), ("fonds", "Phông"), ("title", "Tiêu đề")):
        if data.get(key):
            print(f"  {label}: {data[key]}")
    print(f"  Lịch: {_when_label(str(data['schedule']), settings)}; tạo lúc {data['created_at']}")
    if data.get("started_at"):
        print(f"  Lần chạy gần nhất: {data['started_at']} → {data.get('finished_at') or 'đang chạy'}")
    if data.get("next_due_at") and data["state"] != "running":
        print(f"  Chạy lại từ: {data['next_due_at']}")
    print(f"  Tiến độ: {progress['finished']}/{progress['documents']} văn bản ({progress['percent']:.0f}%) — "
          f"{progress['done']} xong, {progress['needs_review']} cần xem lại, {progress['failed']} lỗi, "
          f"{progress['pending']} chưa xử lý")
    if isinstance(summary, dict):
        print(f"  Kết quả lần chạy gần nhất: {summary['pages']} trang, {summary['pages_per_minute']:.1f} trang/phút "
              f"({summary['elapsed_s']:.0f} s)" + {"window": "; dừng vì hết khung giờ đêm",
                                                     "cancel": "; đã hủy"}.get(str(summary["stopped"]), ""))
    if data.get("error"):
        print(f"  LỖI: {data['error']}")
    for d in docs:
        line = f"    {DOC_LABELS[d['status']]:<12} {d['source']}"
        if d["id"]:
            line += f"  [{d['id']}]"
        if d["status"] == "failed":
            line += f": {d['error']}"
        elif d["status"] == "needs_review":
            line += f": {'; '.join(d['review_reasons'])}"
        print(line)
    return ExitCode.OK


@access_rule(Rule.LISTING)
def cmd_batch_retry(args: argparse.Namespace) -> ExitCode:
    settings = _batch_settings(args)
    from flows.batches import retry_batch, runs_now

    audit_action(settings, args, "batch.retry", args.id, {"failed_only": args.failed_only, "when": args.when})
    record, scope = retry_batch(settings, args.id, failed_only=args.failed_only, when=args.when)
    if scope == 0:
        sys.stderr.write(f"Lô {record.id} không có văn bản lỗi nào để chạy lại.\n")
        if args.json:
            from flows.batches import batch_details

            print_json(batch_details(settings, record.id, principal_of(settings, args)))
        return ExitCode.OK
    # how many documents the batch holds is the operator's to know: an account may be cleared for fewer of them
    count = f"{scope} " if principal_of(settings, args).operator else ""
    what = f"{count}văn bản lỗi" if args.failed_only else f"{count}văn bản (văn bản đã có trong kho được bỏ qua)"
    if runs_now(record, args.when):
        sys.stderr.write(f"Chạy lại lô {record.id}: {what}\n")
        return _run_batch_now(settings, record.id, args)
    sys.stderr.write(f"Đã xếp lại lô {record.id}: {what} — chạy ở lượt số hóa ban đêm tới "
                     f"(khung giờ {settings.night_window}, `sohoa serve`).\n")
    if args.json:
        from flows.batches import batch_details

        print_json(batch_details(settings, record.id, principal_of(settings, args)))
    return ExitCode.OK


@access_rule(Rule.LISTING)
def cmd_batch_run(args: argparse.Namespace) -> ExitCode:
    """Digitise a registered batch now in this process, whatever its schedule: it opens the batch's run, or joins
    the run under way in another process or on another host (they share its documents: each is done once)."""
    settings = _batch_settings(args)
    audit_action(settings, args, "batch.run", args.id)
    sys.stderr.write(f"Chạy lô {args.id} (cùng các tiến trình khác đang chạy lô này, nếu có)\n")
    return _run_batch_now(settings, args.id, args)


@access_rule(Rule.LISTING)
def cmd_batch_cancel(args: argparse.Namespace) -> ExitCode:
    settings = _batch_settings(args)
    from flows.batches import STATE_LABELS, batch_details, cancel_batch

    audit_action(settings, args, "batch.cancel", args.id)
    record, outcome = cancel_batch(settings, args.id)
    if outcome == "cancelled":
        sys.stderr.write(f"Đã hủy lô {record.id}.\n")
    elif outcome == "requested":
        sys.stderr.write(f"Đã yêu cầu dừng lô {record.id}: không bắt đầu văn bản mới; các văn bản đang xử lý "
                         "sẽ hoàn tất.\n")
    else:
        sys.stderr.write(f"Lô {record.id} đã kết thúc ({STATE_LABELS[record.state]}): không có gì để hủy.\n")
    if args.json:
        print_json(batch_details(settings, record.id, principal_of(settings, args)))
    return ExitCode.OK


@access_rule(Rule.OPERATOR)
def cmd_serve(args: argparse.Namespace) -> ExitCode:
    from flows.serve import run_serve

    settings = settings_of(args)
    from flows.prefect_env import configure_prefect

    configure_prefect(settings.prefect_home, verbose=args.verbose)  # before flows.batches imports Prefect
    from flows.batches import nightly_cron

    pool = args.work_pool or settings.work_pool
    if pool:  # one-shot: register the deployments in the work pool; the pool's workers run them
        from flows.serve import register_work_pool

        registered = register_work_pool(settings, pool)
        for item in registered:
            params = ", ".join(f"{k}={v}" for k, v in item.parameters.items())
            sys.stdout.write(f"Đã đăng ký {item.name} vào hàng đợi công việc «{pool}»: lịch "
                             f"{'; '.join(item.schedules)}; tham số {params}; mã {item.entrypoint}\n")
        sys.stderr.write(f"Các lượt chạy do worker thực hiện: `prefect worker start --pool {pool} --type process` "
                         f"(trên máy có cài sohoa, cùng PREFECT_API_URL và các biến SOHOA_*).\n")
        return ExitCode.OK
    night = settings.night_window
    sys.stderr.write(f"Chạy lịch định kỳ ({settings.timezone}): kiểm tra toàn vẹn «{settings.fixity_cron}»; "
                     f"số hóa các lô chờ trong khung giờ {night} «{nightly_cron(night)}». Dừng bằng Ctrl+C.\n")
    run_serve(settings, verbose=args.verbose)
    return ExitCode.OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    _register_batch(sub)
    _register_serve(sub)


def _register_batch(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    lot = sub.add_parser("batch", help="quản lý các lô số hóa: thêm, xếp lịch (đêm nay, cron), xem, chạy lại, hủy")
    lot_sub = lot.add_subparsers(dest="batch_command", required=True)
    la = lot_sub.add_parser("add", help="thêm một thư mục lô: chạy ngay, đêm nay hoặc theo lịch cron")
    la.add_argument("dir", metavar="DIR", help="thư mục lô, hoặc s3://BUCKET/THƯ_MỤC/ (hộp thư S3)")
    la.add_argument("--when", default="now", metavar="now|tonight|CRON",
                    help="now: chạy ngay (mặc định); tonight: trong khung giờ đêm ($SOHOA_NIGHT_WINDOW); "
                         "hoặc biểu thức cron 5 trường, vd. \"0 22 * * 6\"")
    la.add_argument("--file-code", metavar="MÃ_HỒ_SƠ", help="mã hồ sơ (TT 05; mặc định: batch.toml)")
    la.add_argument("--fonds", metavar="PHÔNG", help="phông lưu trữ (mặc định: batch.toml)")
    la.add_argument("--title", metavar="TIÊU_ĐỀ", help="tiêu đề lô/hồ sơ (mặc định: batch.toml)")
    lot_commands = [(la, cmd_batch_add)]
    ll = lot_sub.add_parser("list", help="danh sách các lô")
    lot_commands.append((ll, cmd_batch_list))
    ls = lot_sub.add_parser("show", help="tiến độ, trạng thái từng văn bản, lỗi và lý do")
    ls.add_argument("id", metavar="ID")
    lot_commands.append((ls, cmd_batch_show))
    lr = lot_sub.add_parser("retry", help="chạy lại một lô (văn bản đã có trong kho được bỏ qua)")
    lr.add_argument("id", metavar="ID")
    lr.add_argument("--failed-only", action="store_true", help="chỉ chạy lại các văn bản bị lỗi")
    lr.add_argument("--when", choices=("now", "tonight"), help="mặc định: theo lịch của lô (cron: lượt đêm tới)")
    lot_commands.append((lr, cmd_batch_retry))
    lu = lot_sub.add_parser("run", help="chạy ngay một lô đã thêm; nhiều máy/tiến trình cùng chạy thì chia nhau "
                                        "các văn bản")
    lu.add_argument("id", metavar="ID")
    lot_commands.append((lu, cmd_batch_run))
    lc = lot_sub.add_parser("cancel", help="hủy lô đang chờ; lô đang chạy: không bắt đầu văn bản mới")
    lc.add_argument("id", metavar="ID")
    lot_commands.append((lc, cmd_batch_cancel))
    for parser, func in lot_commands:
        parser.add_argument("--archive", help=ARCHIVE_HELP)
        parser.add_argument("--json", action="store_true", help="xuất JSON")
        if func in (cmd_batch_add, cmd_batch_retry, cmd_batch_run):
            parser.add_argument("--workers", type=int, help="số tiến trình OCR song song (mặc định: số nhân CPU)")
            parser.add_argument("--verbose", action="store_true", help="in nhật ký chi tiết của Prefect")
        parser.set_defaults(func=func)
        add_actor_option(parser)


def _register_serve(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sv = sub.add_parser("serve", help="chạy các việc theo lịch (kiểm tra toàn vẹn, số hóa ban đêm) qua Prefect")
    sv.add_argument("--archive", help=ARCHIVE_HELP)
    sv.add_argument("--verbose", action="store_true", help="in nhật ký chi tiết của Prefect")
    sv.add_argument("--work-pool", metavar="TÊN",
                    help="chỉ đăng ký các việc theo lịch vào hàng đợi công việc (work pool) Prefect loại process "
                         "rồi thoát; worker `prefect worker start --pool TÊN` chạy chúng (mặc định: SOHOA_WORK_POOL)")
    sv.set_defaults(func=cmd_serve)
