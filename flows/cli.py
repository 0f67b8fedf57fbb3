"""``sohoa`` command line (Vietnamese messages). JSON output is the stable contract for scripts.

Exit codes: 0 success; 1 unexpected error; 2 wrong usage; 3 batch finished but some documents failed;
4 configuration (archive, batch folder); 5 a required tool is missing; 6 document not found.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from schemas.document import BatchReport
from schemas.errors import EXIT_OK, EXIT_SOME_FAILED, ConfigError, NotFoundError, SohoaError
from schemas.settings import Settings

EXIT_USAGE = 2  # as argparse


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "archive", None):
        overrides["archive"] = Path(args.archive)
    if getattr(args, "workers", None):
        overrides["workers"] = args.workers
    return Settings(**overrides)  # type: ignore[arg-type]


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _live_progress(stop: threading.Event, render: object) -> None:
    assert callable(render)
    while not stop.wait(0.5):
        sys.stderr.write("\r" + render() + " ")
        sys.stderr.flush()


def cmd_digitise(args: argparse.Namespace) -> int:
    settings = _settings(args)
    batch = Path(args.batch_dir)
    if not batch.is_dir():
        raise ConfigError(f"Không tìm thấy thư mục lô: {batch}", fix="kiểm tra lại đường dẫn BATCH_DIR")
    from flows.prefect_env import configure_prefect

    configure_prefect(settings.prefect_home, verbose=args.verbose)
    from flows.run import run_digitise
    from flows.wiring import close_all, services_for

    services = services_for(settings)
    _ = services.engine.probe  # a missing tesseract or model stops here, before any work
    stop = threading.Event()
    bar = None
    if sys.stderr.isatty() and not args.quiet:
        bar = threading.Thread(target=_live_progress, args=(stop, services.progress.render), daemon=True)
        bar.start()
    try:
        report = run_digitise(batch, settings)
    finally:
        stop.set()
        if bar is not None:
            bar.join()
            sys.stderr.write("\r" + services.progress.render() + "\n")
        close_all()
    if args.report:
        Path(args.report).write_text(json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n",
                                     encoding="utf-8")
    if not args.quiet:
        _print_summary(report)
    return EXIT_SOME_FAILED if any(d.status == "failed" for d in report.documents) else EXIT_OK


def _print_summary(report: BatchReport) -> None:
    docs = report.documents
    done = sum(d.status == "done" for d in docs)
    review = sum(d.status == "needs_review" for d in docs)
    failed = [d for d in docs if d.status == "failed"]
    skipped = sum(d.skipped for d in docs)
    out = sys.stderr
    out.write(f"Lô {report.batch}: {len(docs)} văn bản — {done} xong, {review} cần xem lại, {len(failed)} lỗi")
    out.write(f" ({skipped} đã có sẵn trong kho, bỏ qua)\n" if skipped else "\n")
    out.write(f"Đã xử lý {report.pages_processed} trang trong {report.elapsed_s:.1f} s "
              f"({report.pages_per_minute:.1f} trang/phút)\n")
    for d in docs:
        if d.status == "needs_review" and not d.skipped:
            out.write(f"  cần xem lại  {d.source}: {'; '.join(d.review_reasons)}\n")
    for d in failed:
        out.write(f"  LỖI  {d.source}: {d.error}\n")


def cmd_show(args: argparse.Namespace) -> int:
    from flows.queries import show_document

    data = show_document(_settings(args), args.id)
    if args.json:
        _print_json(data)
        return EXIT_OK
    md = data["metadata"]
    assert isinstance(md, dict)
    print(f"Mã: {data['id']}   Nguồn: {data['source']}   Trạng thái: {data['status']}")
    labels = {"code_number": "Số", "code_notation": "Ký hiệu", "type_name": "Loại", "issued_date": "Ngày",
              "organ_name": "Cơ quan ban hành", "subject": "Trích yếu", "signer": "Người ký",
              "classification": "Độ mật", "urgency": "Độ khẩn", "page_count": "Số trang"}
    for key, label in labels.items():
        if md.get(key) not in (None, [], ""):
            print(f"  {label}: {md[key]}")
    files = data["files"]
    assert isinstance(files, dict)
    print(f"  PDF/A: {files.get('pdfa')}")
    pages = data["pages"]
    assert isinstance(pages, list)
    for page in pages:
        print(f"\n--- Trang {page['number']} (độ tin cậy {page['confidence']:.0%}) ---\n{page['text']}")
    return EXIT_OK


def _highlight(snippet: str, marks: Sequence[Sequence[int]]) -> str:
    if not sys.stdout.isatty():
        return snippet
    out, last = [], 0
    for start, end in marks:
        out += [snippet[last:start], "\033[1m", snippet[start:end], "\033[0m"]
        last = end
    return "".join(out) + snippet[last:]


def cmd_search(args: argparse.Namespace) -> int:
    from flows.queries import search_archive

    result = search_archive(_settings(args), args.query, limit=args.limit, offset=args.offset)
    if args.json:
        _print_json(result.model_dump(mode="json"))
        return EXIT_OK
    print(f"{result.total} văn bản khớp với «{args.query}»")
    for rank, hit in enumerate(result.hits, args.offset + 1):
        md = hit.metadata
        code = "-".join(str(v) for v in (md.get("code_number"), md.get("code_notation")) if v)
        print(f"\n{rank}. [{hit.id}] {hit.source}  {md.get('type_name') or ''} {code} {md.get('issued_date') or ''}")
        if md.get("subject"):
            print(f"   {md['subject']}")
        print(f"   {_highlight(hit.snippet, hit.highlights)}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from flows.export import export_archive, format_of

    out = Path(args.out)
    fmt = format_of(out, args.format)
    if fmt is None:
        sys.stderr.write("Lỗi: không rõ định dạng xuất — dùng --format xlsx|csv hoặc tệp .xlsx/.csv\n")
        return EXIT_USAGE
    rows = export_archive(_settings(args), out, fmt=fmt, query=args.query, batch=args.batch)
    scope = f"khớp với «{args.query}»" if args.query else "trong kho"
    if args.batch:
        scope += f", lô {args.batch}"
    sys.stderr.write(f"Đã xuất {rows} văn bản {scope} vào {out} ({fmt.upper()})\n")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sohoa", description="Số hóa, nhận dạng chữ và tra cứu tài liệu lưu trữ.")
    sub = p.add_subparsers(dest="command", required=True)
    archive_help = "thư mục kho lưu trữ (mặc định: $SOHOA_ARCHIVE hoặc ./archive)"

    d = sub.add_parser("digitise", aliases=["digitize"], help="số hóa một lô tài liệu quét")
    d.add_argument("batch_dir", metavar="BATCH_DIR")
    d.add_argument("--archive", help=archive_help)
    d.add_argument("--report", help="ghi báo cáo JSON vào tệp này")
    d.add_argument("--workers", type=int, help="số tiến trình OCR song song (mặc định: số nhân CPU)")
    d.add_argument("--quiet", action="store_true", help="không in tiến độ và tóm tắt")
    d.add_argument("--verbose", action="store_true", help="in nhật ký chi tiết của Prefect")
    d.set_defaults(func=cmd_digitise)

    s = sub.add_parser("show", help="xem một văn bản đã số hóa")
    s.add_argument("id", metavar="ID")
    s.add_argument("--archive", help=archive_help)
    s.add_argument("--json", action="store_true", help="xuất JSON")
    s.set_defaults(func=cmd_show)

    q = sub.add_parser("search", help="tìm kiếm (gõ có dấu hoặc không dấu)")
    q.add_argument("query", metavar="QUERY")
    q.add_argument("--archive", help=archive_help)
    q.add_argument("--limit", type=int, default=10)
    q.add_argument("--offset", type=int, default=0)
    q.add_argument("--json", action="store_true", help="xuất JSON")
    q.set_defaults(func=cmd_search)

    e = sub.add_parser("export", help="xuất bảng thông tin văn bản (TT 05/2025) ra Excel hoặc CSV")
    e.add_argument("--out", required=True, metavar="FILE", help="tệp kết quả (.xlsx hoặc .csv)")
    e.add_argument("--format", choices=["xlsx", "csv"], help="định dạng (mặc định: theo đuôi tệp --out)")
    e.add_argument("--query", metavar="Q", help="chỉ xuất các văn bản khớp với câu tìm kiếm này")
    e.add_argument("--batch", metavar="NAME", help="chỉ xuất các văn bản của lô này")
    e.add_argument("--archive", help=archive_help)
    e.set_defaults(func=cmd_export)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SohoaError as exc:
        sys.stderr.write(f"Lỗi: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\nĐã dừng theo yêu cầu. Chạy lại lệnh để tiếp tục: phần đã xong được giữ nguyên.\n")
        return 130


def entrypoint() -> None:
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    sys.exit(main())


__all__ = ["NotFoundError", "entrypoint", "main"]
