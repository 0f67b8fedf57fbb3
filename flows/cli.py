"""``sohoa`` command line (Vietnamese messages). JSON output is the stable contract for scripts.

Exit codes: 0 success; 1 unexpected error; 2 wrong usage; 3 batch finished but some documents failed;
4 configuration (archive, batch folder); 5 a required tool is missing; 6 document not found;
7 preservation problems (verify found missing/changed/unexpected objects, backup or reindex skipped some).
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
from schemas.errors import (
    EXIT_OK,
    EXIT_PRESERVATION_PROBLEMS,
    EXIT_SOME_FAILED,
    ConfigError,
    NotFoundError,
    SohoaError,
)
from schemas.fixity import FixityProblem
from schemas.settings import Settings
from storage.objects import ObjectStore, StoreAccessDenied, StoreUnavailable
from storage.search_index import SearchIndex

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
    from pipeline.load import check_file_code, read_batch_info

    check_file_code(args.file_code, where="--file-code")
    read_batch_info(batch)  # a broken batch.toml stops here, before any work
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
        report = run_digitise(batch, settings, file_code=args.file_code)
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


def _iso_date(text: str) -> object:
    from datetime import date

    return date.fromisoformat(text)


_FACET_LABELS = {"type_name": "Loại văn bản", "year": "Năm", "organ_name": "Cơ quan ban hành",
                 "classification": "Độ mật", "batch": "Lô", "file_code": "Hồ sơ"}


def cmd_search(args: argparse.Namespace) -> int:
    from flows.queries import search_archive
    from schemas.search import SearchFilters

    filters = SearchFilters(
        type_name=args.type or [], organ_name=args.organ or [], classification=args.classification or [],
        batch=args.batch or [], file_code=args.file_code or [], year_from=args.year_from, year_to=args.year_to,
        date_from=args.date_from, date_to=args.date_to,
    )
    result = search_archive(_settings(args), args.query, limit=args.limit, offset=args.offset, filters=filters,
                            sort=args.sort, facets=args.facets)
    if args.json:
        _print_json(result.model_dump(mode="json"))
        return EXIT_OK
    count = f"{result.total}" if result.total_exact else f"khoảng {result.total}"
    print(f"{count} văn bản khớp với «{args.query}»" if args.query.strip() else f"{count} văn bản")
    for rank, hit in enumerate(result.hits, args.offset + 1):
        md = hit.metadata
        code = "-".join(str(v) for v in (md.get("code_number"), md.get("code_notation")) if v)
        print(f"\n{rank}. [{hit.id}] {hit.source}  {md.get('type_name') or ''} {code} {md.get('issued_date') or ''}")
        if md.get("subject"):
            print(f"   {md['subject']}")
        print(f"   {_highlight(hit.snippet, hit.highlights)}")
    for name, values in result.facets.items():
        if values:
            counts = ", ".join(f"{v.value} ({v.count})" for v in values)
            print(f"\n{_FACET_LABELS.get(name, name)}: {counts}")
    return EXIT_OK


def cmd_export_packages(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from flows.fixity import fixity_history
    from flows.package import export_packages, fixity_events_from_history, load_manifests
    from flows.queries import search_archive
    from flows.wiring import build_object_store

    settings = _settings(args)
    store = build_object_store(settings)
    ids = None
    if args.query:
        ids = [h.id for h in search_archive(settings, args.query, limit=1000).hits]
    manifests = [m for m in load_manifests(store, ids) if args.batch is None or m.batch == args.batch]
    report = export_packages(store, manifests, Path(args.package), now=datetime.now(UTC),
                             by_file_code=args.by_file_code, replace=args.replace,
                             fixity_events=fixity_events_from_history(fixity_history(store)))
    if args.json:
        _print_json(report.model_dump(mode="json"))
    written = sum(p.status == "written" for p in report.packages)
    unchanged = sum(p.status == "unchanged" for p in report.packages)
    sys.stderr.write(f"Gói lưu trữ (AIP) trong {args.package}: {written} gói mới, {unchanged} gói không đổi, "
                     f"{report.documents} văn bản, {report.bytes / 1e6:.1f} MB\n")
    for p in report.problems:
        sys.stderr.write(f"  LỖI  {p.package} {p.file or ''}: {p.detail}\n")
    return EXIT_OK if report.ok else EXIT_PRESERVATION_PROBLEMS


def cmd_export(args: argparse.Namespace) -> int:
    if args.package:
        return cmd_export_packages(args)
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


_PROBLEM_LABELS = {"missing": "THIẾU", "changed": "BỊ THAY ĐỔI", "unexpected": "THỪA", "unreadable": "HỎNG",
                   "not_indexed": "CHƯA CHỈ MỤC", "orphan_index": "CHỈ MỤC MỒ CÔI"}


def _print_problems(problems: Sequence[FixityProblem]) -> None:
    for p in problems[:200]:
        detail = f" — {p.detail}" if p.detail else ""
        sys.stderr.write(f"  {_PROBLEM_LABELS[p.kind]}  {p.key}{detail}\n")
    if len(problems) > 200:
        sys.stderr.write(f"  … và {len(problems) - 200} vấn đề khác (xem --json)\n")


def _store_of(args: argparse.Namespace, settings: Settings) -> ObjectStore:
    from flows.wiring import build_object_store, store_from_spec

    spec = getattr(args, "store", None)
    return store_from_spec(spec, settings) if spec else build_object_store(settings)


def _external_index(settings: Settings) -> SearchIndex | None:
    """Elasticsearch when it is the archive's search index (the embedded index lives in the catalog)."""
    from flows.wiring import build_search_index

    return build_search_index(settings) if settings.search_index == "elasticsearch" else None


def cmd_verify(args: argparse.Namespace) -> int:
    from flows.fixity import verify_store
    from flows.wiring import CATALOG_FILE
    from storage.catalog import SqliteCatalog

    settings = _settings(args)
    if args.sample is not None and args.sample < 1:
        raise ConfigError("--sample phải là số nguyên dương", fix="vd. --sample 100")
    store = _store_of(args, settings)
    catalog_path = settings.archive_path() / CATALOG_FILE
    catalog = SqliteCatalog(catalog_path) if not args.store and catalog_path.exists() else None
    try:
        report = verify_store(store, catalog=catalog, sample=args.sample, seal_missing=args.seal_missing,
                              external=_external_index(settings) if catalog is not None else None)
    finally:
        if catalog is not None:
            catalog.close()
    if args.json:
        _print_json(report.model_dump(mode="json"))
    scope = f"{report.documents_checked} văn bản chọn ngẫu nhiên" if args.sample else \
        f"toàn bộ {report.documents_checked} văn bản"
    sys.stderr.write(f"Kiểm tra toàn vẹn {store.describe()}: {scope}, {report.objects_checked} đối tượng, "
                     f"{report.bytes_checked / 1e6:.1f} MB — ")
    if report.ok:
        sys.stderr.write("không có vấn đề.\n")
        return EXIT_OK
    sys.stderr.write(f"{len(report.problems)} vấn đề:\n")
    _print_problems(report.problems)
    sys.stderr.write("Khôi phục từ bản sao lưu (sohoa backup) các đối tượng thiếu hoặc bị thay đổi; "
                     "chạy sohoa reindex nếu chỉ mục lệch với kho.\n")
    return EXIT_PRESERVATION_PROBLEMS


def cmd_backup(args: argparse.Namespace) -> int:
    from flows.preservation import backup_store
    from flows.wiring import build_object_store, store_from_spec

    settings = _settings(args)
    source = build_object_store(settings)
    target = store_from_spec(args.to, settings)
    if target.describe() == source.describe():
        raise ConfigError("Kho đích trùng với kho nguồn", fix="chọn --to ở một ổ đĩa hoặc máy chủ khác")
    report = backup_store(source, target)
    if args.json:
        _print_json(report.model_dump(mode="json"))
    sys.stderr.write(f"Sao lưu {source.describe()} → {target.describe()}: {report.objects_seen} đối tượng, "
                     f"đã chép {report.objects_copied} ({report.bytes_copied / 1e6:.1f} MB)\n")
    if report.ok:
        return EXIT_OK
    sys.stderr.write(f"{len(report.problems)} đối tượng không sao lưu được:\n")
    _print_problems(report.problems)
    sys.stderr.write("Chạy sohoa verify để xem tình trạng kho nguồn.\n")
    return EXIT_PRESERVATION_PROBLEMS


def cmd_reindex(args: argparse.Namespace) -> int:
    from flows.preservation import rebuild_index
    from flows.wiring import CATALOG_FILE
    from storage.catalog import SqliteCatalog

    settings = _settings(args)
    store = _store_of(args, settings)
    root = settings.archive_path()
    root.mkdir(parents=True, exist_ok=True)
    catalog = SqliteCatalog(root / CATALOG_FILE)
    try:
        report = rebuild_index(store, catalog, _external_index(settings))
    finally:
        catalog.close()
    if args.json:
        _print_json(report.model_dump(mode="json"))
    sys.stderr.write(f"Đã dựng lại chỉ mục từ {store.describe()}: {report.documents_indexed} văn bản "
                     f"trong {report.elapsed_s:.1f} s\n")
    if report.problems:
        sys.stderr.write(f"{len(report.problems)} văn bản không đưa vào chỉ mục:\n")
        _print_problems(report.problems)
        return EXIT_PRESERVATION_PROBLEMS
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from flows.serve import run_serve

    settings = _settings(args)
    sys.stderr.write(f"Chạy lịch định kỳ: kiểm tra toàn vẹn «{settings.fixity_cron}» ({settings.timezone}). "
                     "Dừng bằng Ctrl+C.\n")
    run_serve(settings, verbose=args.verbose)
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
    d.add_argument("--file-code", metavar="MÃ_HỒ_SƠ",
                   help="mã hồ sơ (TT 05): PDF/A được đặt tên <mã hồ sơ>.<số thứ tự>.pdf (mặc định: batch.toml)")
    d.add_argument("--quiet", action="store_true", help="không in tiến độ và tóm tắt")
    d.add_argument("--verbose", action="store_true", help="in nhật ký chi tiết của Prefect")
    d.set_defaults(func=cmd_digitise)

    s = sub.add_parser("show", help="xem một văn bản đã số hóa")
    s.add_argument("id", metavar="ID")
    s.add_argument("--archive", help=archive_help)
    s.add_argument("--json", action="store_true", help="xuất JSON")
    s.set_defaults(func=cmd_show)

    q = sub.add_parser("search", help="tìm kiếm (gõ có dấu hoặc không dấu)")
    q.add_argument("query", metavar="QUERY", nargs="?", default="",
                   help="từ khóa, \"cụm từ\" hoặc số/ký hiệu (15-NQ/TU); bỏ trống: mọi văn bản (lọc bằng tùy chọn)")
    q.add_argument("--archive", help=archive_help)
    q.add_argument("--limit", type=int, default=10)
    q.add_argument("--offset", type=int, default=0)
    q.add_argument("--type", action="append", metavar="TÊN", help="loại văn bản, ví dụ «Nghị quyết» (lặp lại: hoặc)")
    q.add_argument("--organ", action="append", metavar="TÊN", help="cơ quan ban hành (lặp lại: hoặc)")
    q.add_argument("--classification", action="append", metavar="ĐỘ MẬT",
                   help="«Mật», «Tối mật», «Tuyệt mật» hoặc «Thường» (không mật)")
    q.add_argument("--batch", action="append", metavar="LÔ", help="lô số hóa (lặp lại: hoặc)")
    q.add_argument("--file-code", action="append", metavar="MÃ", help="mã hồ sơ (lặp lại: hoặc)")
    q.add_argument("--year-from", type=int, metavar="NĂM", help="ban hành từ năm")
    q.add_argument("--year-to", type=int, metavar="NĂM", help="ban hành đến năm")
    q.add_argument("--from", dest="date_from", type=_iso_date, metavar="YYYY-MM-DD", help="ban hành từ ngày")
    q.add_argument("--to", dest="date_to", type=_iso_date, metavar="YYYY-MM-DD", help="ban hành đến ngày")
    q.add_argument("--sort", choices=("relevance", "date_desc", "date_asc"), default="relevance",
                   help="thứ tự: phù hợp nhất (mặc định), mới nhất, cũ nhất")
    q.add_argument("--facets", action="store_true", help="đếm kết quả theo loại, năm, cơ quan, độ mật, lô, hồ sơ")
    q.add_argument("--json", action="store_true", help="xuất JSON")
    q.set_defaults(func=cmd_search)

    e = sub.add_parser("export", help="xuất bảng thông tin văn bản (TT 05/2025) ra Excel/CSV, hoặc gói lưu trữ")
    what = e.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", metavar="FILE", help="tệp kết quả (.xlsx hoặc .csv)")
    what.add_argument("--package", metavar="DIR",
                      help="xuất gói lưu trữ (E-ARK AIP: METS, EAD, PREMIS, SHA-256, PDF/A) vào thư mục này")
    e.add_argument("--by-file-code", action="store_true", help="với --package: một gói cho mỗi hồ sơ")
    e.add_argument("--replace", action="store_true", help="với --package: thay gói cũ có nội dung khác")
    e.add_argument("--json", action="store_true", help="với --package: xuất báo cáo JSON")
    e.add_argument("--format", choices=["xlsx", "csv"], help="định dạng (mặc định: theo đuôi tệp --out)")
    e.add_argument("--query", metavar="Q", help="chỉ xuất các văn bản khớp với câu tìm kiếm này")
    e.add_argument("--batch", metavar="NAME", help="chỉ xuất các văn bản của lô này")
    e.add_argument("--archive", help=archive_help)
    e.set_defaults(func=cmd_export)

    store_help = "kiểm tra kho khác: thư mục kho lưu trữ (vd. bản sao lưu) hoặc s3://BUCKET/THƯ_MỤC"
    v = sub.add_parser("verify", help="kiểm tra toàn vẹn (SHA-256) mọi đối tượng trong kho")
    v.add_argument("--sample", type=int, metavar="N", help="chỉ kiểm tra N văn bản chọn ngẫu nhiên")
    v.add_argument("--store", metavar="KHO", help=store_help)
    v.add_argument("--seal-missing", action="store_true",
                   help="kho cũ: niêm phong (ghi document.json.sha256) các văn bản còn nguyên vẹn chưa có mã kiểm tra")
    v.add_argument("--archive", help=archive_help)
    v.add_argument("--json", action="store_true", help="xuất báo cáo JSON")
    v.set_defaults(func=cmd_verify)

    b = sub.add_parser("backup", help="sao lưu gia tăng kho sang một kho thứ hai (thư mục hoặc S3)")
    b.add_argument("--to", required=True, metavar="ĐÍCH", help="thư mục đích hoặc s3://BUCKET/THƯ_MỤC")
    b.add_argument("--archive", help=archive_help)
    b.add_argument("--json", action="store_true", help="xuất báo cáo JSON")
    b.set_defaults(func=cmd_backup)

    r = sub.add_parser("reindex", help="dựng lại danh mục và chỉ mục tìm kiếm từ kho đối tượng")
    r.add_argument("--store", metavar="KHO", help="dựng từ kho khác (vd. bản sao lưu): thư mục hoặc s3://…")
    r.add_argument("--archive", help=archive_help)
    r.add_argument("--json", action="store_true", help="xuất báo cáo JSON")
    r.set_defaults(func=cmd_reindex)

    sv = sub.add_parser("serve", help="chạy các việc theo lịch (kiểm tra toàn vẹn định kỳ) qua Prefect")
    sv.add_argument("--archive", help=archive_help)
    sv.add_argument("--verbose", action="store_true", help="in nhật ký chi tiết của Prefect")
    sv.set_defaults(func=cmd_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SohoaError as exc:
        sys.stderr.write(f"Lỗi: {exc}\n")
        return exc.exit_code
    except (StoreUnavailable, StoreAccessDenied) as exc:
        sys.stderr.write(f"Lỗi: {exc}\n")
        return ConfigError.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\nĐã dừng theo yêu cầu. Chạy lại lệnh để tiếp tục: phần đã xong được giữ nguyên.\n")
        return 130


def entrypoint() -> None:
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    sys.exit(main())


__all__ = ["NotFoundError", "entrypoint", "main"]
