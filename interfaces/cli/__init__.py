"""``sohoa`` command line (Vietnamese messages). JSON output is the stable contract for scripts.

Exit codes: 0 success; 1 unexpected error; 2 wrong usage; 3 batch finished but some documents failed;
4 configuration (archive, batch folder); 5 a required tool is missing; 6 document or batch not found;
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

from flows.access import Levels, Principal, Rule, access_rule, level_of_metadata, local_operator
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


@access_rule(Rule.OPERATOR)
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
    _audit(settings, args, "batch.digitise", str(batch.resolve()), {"file_code": args.file_code})
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


@access_rule(Rule.LISTING)
def cmd_register(args: argparse.Namespace) -> int:
    from flows.intake import quarantine_entries, register_entries, visible_records, write_register
    from flows.wiring import build_object_store

    settings = _settings(args)
    principal = principal_of(settings, args)
    _audit(settings, args, "register.view" if not args.out else "register.export", args.out or "",
           {"quarantine": args.quarantine})
    store = build_object_store(settings)
    levels = _catalog_levels(settings)
    if args.quarantine:
        entries = visible_records(principal, quarantine_entries(store), levels)
        if args.json:
            _print_json({"quarantine": entries})
            return EXIT_OK
        print(f"{len(entries)} văn bản bị giữ lại khi tiếp nhận" if entries else "Không có văn bản nào bị giữ lại.")
        for e in entries:
            state = f" (đã phê duyệt, số hóa {e['released_at']})" if e.get("released_at") else ""
            print(f"  {e['at']}  [{e['doc_id']}] {e['source']} — {e.get('classification')}: {e['reason']}{state}")
        return EXIT_OK
    entries = visible_records(principal, register_entries(store), levels)
    if args.out:
        write_register(entries, Path(args.out))
        sys.stderr.write(f"Đã xuất sổ quản lý sao, chụp ({len(entries)} mục) vào {args.out}\n")
        return EXIT_OK
    if args.json:
        _print_json({"register": entries})
        return EXIT_OK
    print(f"Sổ quản lý sao, chụp: {len(entries)} mục" if entries else "Sổ quản lý sao, chụp chưa có mục nào.")
    for e in entries:
        print(f"  {e['stt']:>4}. {e['at']}  {e.get('code') or '(không số)'}  {e.get('classification')}  "
              f"{e.get('pages')} trang  phê duyệt: {e.get('approval_ref') or 'CHƯA CÓ'}  [{e['doc_id']}] {e['source']}")
    return EXIT_OK


@access_rule(Rule.DOCUMENT)
def cmd_show(args: argparse.Namespace) -> int:
    from flows.queries import show_document

    settings = _settings(args)
    clearance = principal_of(settings, args).clearance
    _audit(settings, args, "document.view", args.id, {"json": bool(args.json)})
    data = show_document(settings, args.id, clearance=clearance)
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


@access_rule(Rule.SEARCH)
def cmd_search(args: argparse.Namespace) -> int:
    from flows.queries import search_archive
    from schemas.search import SearchFilters

    filters = SearchFilters(
        type_name=args.type or [], organ_name=args.organ or [], classification=args.classification or [],
        batch=args.batch or [], file_code=args.file_code or [], year_from=args.year_from, year_to=args.year_to,
        date_from=args.date_from, date_to=args.date_to,
    )
    settings = _settings(args)
    clearance = principal_of(settings, args).clearance
    _audit(settings, args, "search", "", {"query": args.query, "filters": filters.model_dump(mode="json",
                                                                                            exclude_defaults=True),
                                          "sort": args.sort, "offset": args.offset})
    result = search_archive(settings, args.query, limit=args.limit, offset=args.offset, filters=filters,
                            sort=args.sort, facets=args.facets, clearance=clearance)
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


@access_rule(Rule.LISTING)
def cmd_export_packages(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from flows.package import export_for

    settings = _settings(args)
    principal = principal_of(settings, args)  # packages hold only what this reader may see
    _audit(settings, args, "export.package", args.package, {"query": args.query, "batch": args.batch})
    report = export_for(settings, principal, Path(args.package), query=args.query, batch=args.batch,
                        now=datetime.now(UTC), by_file_code=args.by_file_code, replace=args.replace)
    if args.json:
        _print_json(report.model_dump(mode="json"))
    written = sum(p.status == "written" for p in report.packages)
    unchanged = sum(p.status == "unchanged" for p in report.packages)
    sys.stderr.write(f"Gói lưu trữ (AIP) trong {args.package}: {written} gói mới, {unchanged} gói không đổi, "
                     f"{report.documents} văn bản, {report.bytes / 1e6:.1f} MB\n")
    for p in report.problems:
        sys.stderr.write(f"  LỖI  {p.package} {p.file or ''}: {p.detail}\n")
    return EXIT_OK if report.ok else EXIT_PRESERVATION_PROBLEMS


@access_rule(Rule.LISTING)
def cmd_export(args: argparse.Namespace) -> int:
    if args.package:
        return cmd_export_packages(args)
    from flows.export import export_archive, format_of

    out = Path(args.out)
    fmt = format_of(out, args.format)
    if fmt is None:
        sys.stderr.write("Lỗi: không rõ định dạng xuất — dùng --format xlsx|csv hoặc tệp .xlsx/.csv\n")
        return EXIT_USAGE
    settings = _settings(args)
    principal = principal_of(settings, args)  # the table holds only what this reader may see
    _audit(settings, args, "export.table", str(out), {"format": fmt, "query": args.query, "batch": args.batch})
    rows = export_archive(settings, out, fmt=fmt, query=args.query, batch=args.batch, principal=principal)
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


@access_rule(Rule.OPERATOR)
def cmd_verify(args: argparse.Namespace) -> int:
    from flows.fixity import verify_store
    from flows.wiring import CATALOG_FILE
    from storage.catalog import SqliteCatalog

    settings = _settings(args)
    if args.sample is not None and args.sample < 1:
        raise ConfigError("--sample phải là số nguyên dương", fix="vd. --sample 100")
    _audit(settings, args, "verify", args.store or "", {"sample": args.sample})
    store = _store_of(args, settings)
    catalog_path = settings.archive_path() / CATALOG_FILE
    catalog = SqliteCatalog(catalog_path) if not args.store and catalog_path.exists() else None
    try:
        report = verify_store(store, catalog=catalog, sample=args.sample, seal_missing=args.seal_missing,
                              external=_external_index(settings) if catalog is not None else None,
                              audit_archive=None if args.store else settings.archive_path())
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


@access_rule(Rule.OPERATOR)
def cmd_backup(args: argparse.Namespace) -> int:
    from flows.preservation import backup_store
    from flows.wiring import build_object_store, store_from_spec

    settings = _settings(args)
    _audit(settings, args, "backup", args.to)  # a backup copies every document, classified ones included
    source = build_object_store(settings)
    target = store_from_spec(args.to, settings)
    if target.describe() == source.describe():
        raise ConfigError("Kho đích trùng với kho nguồn", fix="chọn --to ở một ổ đĩa hoặc máy chủ khác")
    from flows.corrections import migrate_legacy

    migrate_legacy(settings, source)  # corrections an earlier version kept in web.sqlite3 travel with the backup
    report = backup_store(source, target, audit_archive=settings.archive_path())
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


@access_rule(Rule.OPERATOR)
def cmd_reindex(args: argparse.Namespace) -> int:
    from flows.corrections import migrate_legacy, rebuild_index
    from flows.wiring import CATALOG_FILE
    from storage.catalog import SqliteCatalog

    settings = _settings(args)
    _audit(settings, args, "reindex", getattr(args, "store", None) or "")  # before the catalog is (re)built
    store = _store_of(args, settings)
    root = settings.archive_path()
    root.mkdir(parents=True, exist_ok=True)
    if not getattr(args, "store", None):  # the archive's own store: corrections kept in web.sqlite3 move there
        migrate_legacy(settings, store)
    catalog = SqliteCatalog(root / CATALOG_FILE)
    try:  # the manifests with the archivists' corrections (kept in the store, checked against the archive's
        # audit trail: a correction it recorded that the store lost leaves the document out) applied, in one go
        report = rebuild_index(store, catalog, _external_index(settings), archive=root)
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


def _batch_settings(args: argparse.Namespace) -> Settings:
    """Settings of a ``sohoa batch`` command; Prefect's environment is set before ``flows.batches`` imports it."""
    from flows.prefect_env import configure_prefect

    settings = _settings(args)
    configure_prefect(settings.prefect_home, verbose=getattr(args, "verbose", False))
    return settings


def _when_label(schedule: str, settings: Settings) -> str:
    if schedule == "now":
        return "chạy ngay"
    if schedule == "tonight":
        return f"chạy đêm nay trong khung giờ {settings.night_window}"
    return f"theo lịch cron «{schedule}» ({settings.timezone}), trong khung giờ {settings.night_window}"


def _run_batch_now(settings: Settings, batch_id: str, args: argparse.Namespace) -> int:
    """Digitise a queued batch in this process with the live progress bar; print it; exit code of its outcome."""
    from flows.batches import run_now
    from flows.wiring import close_all, services_for

    services = services_for(settings)
    stop = threading.Event()
    bar = None
    if sys.stderr.isatty() and not args.json:
        bar = threading.Thread(target=_live_progress, args=(stop, services.progress.render), daemon=True)
        bar.start()
    try:
        record = run_now(settings, batch_id)
    except KeyboardInterrupt:
        sys.stderr.write(f"\nĐã dừng lô {batch_id} theo yêu cầu: các văn bản đã xong được giữ nguyên. "
                         f"Chạy tiếp: sohoa batch retry {batch_id}\n")
        return 130
    finally:
        stop.set()
        if bar is not None:
            bar.join()
            sys.stderr.write("\r" + services.progress.render() + "\n")
        close_all()
    _print_batch_outcome(settings, record.id, args)
    if record.error:
        return 1
    return EXIT_SOME_FAILED if record.summary is not None and record.summary.failed else EXIT_OK


def _print_batch_outcome(settings: Settings, batch_id: str, args: argparse.Namespace) -> None:
    from flows.batches import STATE_LABELS, batch_details

    data = batch_details(settings, batch_id, principal_of(settings, args))
    if args.json:
        _print_json(data)
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
def cmd_batch_add(args: argparse.Namespace) -> int:
    settings = _batch_settings(args)
    from flows.batches import add_batch

    def check_tools(schedule: str) -> None:
        if schedule == "now":  # a missing tesseract or model stops here, before the batch is recorded
            from flows.wiring import services_for

            _ = services_for(settings).engine.probe

    record = add_batch(settings, Path(args.dir), when=args.when, file_code=args.file_code, fonds=args.fonds,
                       title=args.title, before_register=check_tools)
    _audit(settings, args, "batch.add", record.id, {"folder": str(record.folder), "when": record.schedule})
    sys.stderr.write(f"Đã thêm lô {record.id}: {record.folder} — {_when_label(record.schedule, settings)}\n")
    if record.schedule == "now":
        return _run_batch_now(settings, record.id, args)
    if record.next_due_at and record.schedule != "tonight":
        sys.stderr.write(f"Lần chạy tới: từ {record.next_due_at}\n")
    sys.stderr.write("Các lô chờ được chạy bởi `sohoa serve` (lượt số hóa ban đêm).\n")
    if args.json:
        from flows.batches import batch_details

        _print_json(batch_details(settings, record.id, principal_of(settings, args)))
    return EXIT_OK


_DETAIL_KEYS = ("progress", "documents", "failures", "needs_review", "folder_missing")


@access_rule(Rule.LISTING)
def cmd_batch_list(args: argparse.Namespace) -> int:
    settings = _batch_settings(args)
    from flows.batches import STATE_LABELS, visible_batches
    from storage.batches import BatchRecord

    principal = principal_of(settings, args)
    _audit(settings, args, "batch.list", "")
    views = visible_batches(settings, principal)
    if args.json:
        _print_json({"batches": [{k: v for k, v in b.items() if k not in _DETAIL_KEYS} for b in views]})
        return EXIT_OK
    if not views:
        print("Chưa có lô nào. Thêm lô bằng `sohoa batch add THƯ_MỤC`.")
        return EXIT_OK
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
    return EXIT_OK


@access_rule(Rule.LISTING)
def cmd_batch_show(args: argparse.Namespace) -> int:
    settings = _batch_settings(args)
    from flows.batches import DOC_LABELS, STATE_LABELS, batch_details

    principal = principal_of(settings, args)
    _audit(settings, args, "batch.view", args.id)
    data = batch_details(settings, args.id, principal)
    if args.json:
        _print_json(data)
        return EXIT_OK
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
    return EXIT_OK


@access_rule(Rule.LISTING)
def cmd_batch_retry(args: argparse.Namespace) -> int:
    settings = _batch_settings(args)
    from flows.batches import retry_batch, runs_now

    _audit(settings, args, "batch.retry", args.id, {"failed_only": args.failed_only, "when": args.when})
    record, scope = retry_batch(settings, args.id, failed_only=args.failed_only, when=args.when)
    if scope == 0:
        sys.stderr.write(f"Lô {record.id} không có văn bản lỗi nào để chạy lại.\n")
        if args.json:
            from flows.batches import batch_details

            _print_json(batch_details(settings, record.id, principal_of(settings, args)))
        return EXIT_OK
    what = f"{scope} văn bản lỗi" if args.failed_only else f"{scope} văn bản (văn bản đã có trong kho được bỏ qua)"
    if runs_now(record, args.when):
        sys.stderr.write(f"Chạy lại lô {record.id}: {what}\n")
        return _run_batch_now(settings, record.id, args)
    sys.stderr.write(f"Đã xếp lại lô {record.id}: {what} — chạy ở lượt số hóa ban đêm tới "
                     f"(khung giờ {settings.night_window}, `sohoa serve`).\n")
    if args.json:
        from flows.batches import batch_details

        _print_json(batch_details(settings, record.id, principal_of(settings, args)))
    return EXIT_OK


@access_rule(Rule.LISTING)
def cmd_batch_cancel(args: argparse.Namespace) -> int:
    settings = _batch_settings(args)
    from flows.batches import STATE_LABELS, batch_details, cancel_batch

    _audit(settings, args, "batch.cancel", args.id)
    record, outcome = cancel_batch(settings, args.id)
    if outcome == "cancelled":
        sys.stderr.write(f"Đã hủy lô {record.id}.\n")
    elif outcome == "requested":
        sys.stderr.write(f"Đã yêu cầu dừng lô {record.id}: không bắt đầu văn bản mới; các văn bản đang xử lý "
                         "sẽ hoàn tất.\n")
    else:
        sys.stderr.write(f"Lô {record.id} đã kết thúc ({STATE_LABELS[record.state]}): không có gì để hủy.\n")
    if args.json:
        _print_json(batch_details(settings, record.id, principal_of(settings, args)))
    return EXIT_OK


@access_rule(Rule.OPERATOR)
def cmd_serve(args: argparse.Namespace) -> int:
    from flows.serve import run_serve

    settings = _settings(args)
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
        return EXIT_OK
    night = settings.night_window
    sys.stderr.write(f"Chạy lịch định kỳ ({settings.timezone}): kiểm tra toàn vẹn «{settings.fixity_cron}»; "
                     f"số hóa các lô chờ trong khung giờ {night} «{nightly_cron(night)}». Dừng bằng Ctrl+C.\n")
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

    lot = sub.add_parser("batch", help="quản lý các lô số hóa: thêm, xếp lịch (đêm nay, cron), xem, chạy lại, hủy")
    lot_sub = lot.add_subparsers(dest="batch_command", required=True)
    la = lot_sub.add_parser("add", help="thêm một thư mục lô: chạy ngay, đêm nay hoặc theo lịch cron")
    la.add_argument("dir", metavar="DIR")
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
    lc = lot_sub.add_parser("cancel", help="hủy lô đang chờ; lô đang chạy: không bắt đầu văn bản mới")
    lc.add_argument("id", metavar="ID")
    lot_commands.append((lc, cmd_batch_cancel))
    for parser, func in lot_commands:
        parser.add_argument("--archive", help=archive_help)
        parser.add_argument("--json", action="store_true", help="xuất JSON")
        if func in (cmd_batch_add, cmd_batch_retry):
            parser.add_argument("--workers", type=int, help="số tiến trình OCR song song (mặc định: số nhân CPU)")
            parser.add_argument("--verbose", action="store_true", help="in nhật ký chi tiết của Prefect")
        parser.set_defaults(func=func)

    sv = sub.add_parser("serve", help="chạy các việc theo lịch (kiểm tra toàn vẹn, số hóa ban đêm) qua Prefect")
    sv.add_argument("--archive", help=archive_help)
    sv.add_argument("--verbose", action="store_true", help="in nhật ký chi tiết của Prefect")
    sv.add_argument("--work-pool", metavar="TÊN",
                    help="chỉ đăng ký các việc theo lịch vào hàng đợi công việc (work pool) Prefect loại process "
                         "rồi thoát; worker `prefect worker start --pool TÊN` chạy chúng (mặc định: SOHOA_WORK_POOL)")
    sv.set_defaults(func=cmd_serve)

    rg = sub.add_parser("register", help="sổ quản lý sao, chụp tài liệu mật; --quarantine: tài liệu bị giữ lại")
    rg.add_argument("--archive", help=archive_help)
    rg.add_argument("--quarantine", action="store_true", help="danh sách tài liệu bị giữ lại khi tiếp nhận")
    rg.add_argument("--out", help="xuất sổ ra tệp .xlsx hoặc .csv")
    rg.add_argument("--json", action="store_true", help="in kết quả dạng JSON")
    rg.add_argument("--as", dest="as_user", metavar="NGƯỜI_DÙNG", help="người thực hiện (ghi nhật ký kiểm soát)")
    rg.set_defaults(func=cmd_register)

    w = sub.add_parser("web", help="chạy ứng dụng web tra cứu và soát xét")
    w.add_argument("--archive", help=archive_help)
    w.add_argument("--host", default="127.0.0.1", help="địa chỉ lắng nghe (mặc định 127.0.0.1)")
    w.add_argument("--port", type=int, default=8000)
    w.set_defaults(func=cmd_web)

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
        parser.add_argument("--archive", help=archive_help)
        parser.add_argument("--password-stdin", action="store_true", help="đọc mật khẩu từ dòng đầu của stdin")
        parser.set_defaults(func=func)

    au = sub.add_parser("audit", help="nhật ký kiểm soát (ai làm gì, khi nào, từ đâu): kiểm tra, xem, xuất")
    au_sub = au.add_subparsers(dest="audit_command", required=True)
    av = au_sub.add_parser("verify", help="kiểm tra chuỗi băm: phát hiện mục bị sửa, chèn, xóa hoặc đổi chỗ")
    av.add_argument("--archive", help=archive_help)
    av.add_argument("--json", action="store_true", help="in kết quả dạng JSON")
    av.add_argument("--store", action="append", metavar="THƯ_MỤC|s3://BUCKET/PREFIX",
                    help="so thêm với bản ghi neo trong kho này (bản sao lưu); có thể lặp lại")
    av.set_defaults(func=cmd_audit_verify)
    ai = au_sub.add_parser("init", help="khởi tạo lại nhật ký sau sự cố đã xác nhận (nhật ký cũ mất, không khôi phục "
                                        "được): chuỗi mới, khóa mới, mục đầu tiên ghi sự cố")
    ai.add_argument("--incident", required=True, metavar="SỰ_CỐ", help="số biên bản và mô tả sự cố (ghi vào nhật ký)")
    ai.add_argument("--archive", help=archive_help)
    ai.set_defaults(func=cmd_audit_init)
    for name, helptext, func in (("export", "xuất nhật ký cho thanh tra, kiểm tra (JSON lines hoặc CSV)",
                                  cmd_audit_export),
                                 ("list", "xem các mục mới nhất", cmd_audit_list)):
        a = au_sub.add_parser(name, help=helptext)
        a.add_argument("--archive", help=archive_help)
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

    for parser in (d, s, q, e, la, lr, lc, ll, ls):  # commands that read or change documents: whose view, who ran them
        parser.add_argument("--as", dest="as_user", metavar="NGƯỜI_DÙNG",
                            help="người thực hiện, ghi vào nhật ký kiểm soát (mặc định: người dùng hệ điều hành)")
    return p


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


def _catalog_levels(settings: Settings) -> Levels | None:
    """Documents' current secrecy levels (the catalog holds the corrected metadata), read once into memory."""
    from flows.wiring import CATALOG_FILE
    from storage.catalog import SqliteCatalog

    path = settings.archive_path() / CATALOG_FILE
    if not path.exists():
        return None
    catalog = SqliteCatalog(path)
    try:
        known = {e.id: level_of_metadata(e.metadata) for e in catalog.entries()}
    finally:
        catalog.close()
    return known.get


@access_rule(Rule.NO_DOCUMENT_DATA)
def cmd_web(args: argparse.Namespace) -> int:
    from interfaces.web import run_web

    run_web(_settings(args), host=args.host, port=args.port)
    return EXIT_OK


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    import getpass

    first = getpass.getpass("Mật khẩu: ")
    if getpass.getpass("Nhập lại mật khẩu: ") != first:
        raise ConfigError("Hai lần nhập mật khẩu không khớp", fix="chạy lại lệnh")
    return first


@access_rule(Rule.NO_DOCUMENT_DATA)
def cmd_user_add(args: argparse.Namespace) -> int:
    from flows.accounts import AccountError, add_user

    settings = _settings(args)
    try:
        new = add_user(settings, args.name, _read_password(args), args.role, clearance=args.clearance,
                       api_token=args.token)
    except AccountError as exc:
        raise ConfigError(str(exc), fix="chọn tên khác, hoặc mật khẩu từ 12 ký tự, không phổ biến, "
                                          "không chứa tên tài khoản") from exc
    _audit(settings, args, "user.create", new.username, {"role": new.role, "clearance": new.clearance})
    print(f"Đã tạo tài khoản {new.username} ({new.role}, mức mật {new.clearance})")
    if new.token:
        print(f"Khóa API (chỉ hiện một lần): {new.token}")
    return EXIT_OK


@access_rule(Rule.NO_DOCUMENT_DATA)
def cmd_user_passwd(args: argparse.Namespace) -> int:
    from flows.accounts import AccountError, set_password

    settings = _settings(args)
    try:
        set_password(settings, args.name, _read_password(args))
    except AccountError as exc:
        raise ConfigError(str(exc), fix="kiểm tra tên tài khoản; mật khẩu từ 12 ký tự, không phổ biến, "
                                          "không chứa tên tài khoản") from exc
    _audit(settings, args, "user.password", args.name)
    print(f"Đã đặt lại mật khẩu cho {args.name}")
    return EXIT_OK


def _audit(settings: Settings, args: argparse.Namespace, action: str, target: str,
           details: dict[str, object] | None = None) -> None:
    """Record a CLI action in the archive's audit trail before it is carried out."""
    from flows.audit import cli_actor, record

    record(settings, action, target, actor=cli_actor(getattr(args, "as_user", None)), details=details)


@access_rule(Rule.AUDIT)
def cmd_audit_verify(args: argparse.Namespace) -> int:
    from flows.audit import verify_audit
    from flows.wiring import store_from_spec

    settings = _settings(args)
    result = verify_audit(settings, [store_from_spec(spec, settings) for spec in args.store or []])
    if args.json:
        _print_json({"ok": result.ok, "entries": result.entries, "problems": result.problems})
    if result.ok:
        sys.stderr.write(f"Nhật ký kiểm soát nguyên vẹn: {result.entries} mục, chuỗi băm khớp"
                         f"{f', khớp {result.anchors} bản ghi neo' if result.anchors else ''}\n")
        return EXIT_OK
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
    return EXIT_PRESERVATION_PROBLEMS


@access_rule(Rule.OPERATOR)
def cmd_audit_init(args: argparse.Namespace) -> int:
    from flows.audit import cli_actor, init_trail

    settings = _settings(args)
    entry = init_trail(settings, args.incident, actor=cli_actor())

    def listed(name: str, sep: str) -> str:
        value = entry.details.get(name)
        return sep.join(str(v) for v in value) if isinstance(value, list) and value else "không có"

    sys.stderr.write(f"Đã khởi tạo lại nhật ký kiểm soát: khóa mới, mục 1 ghi sự cố. Nhật ký và khóa cũ được để "
                     f"riêng: {listed('set_aside', ', ')}. Dấu vết của nhật ký cũ: {listed('evidence', '; ')}.\n")
    return EXIT_OK


@access_rule(Rule.AUDIT)
def cmd_audit_export(args: argparse.Namespace) -> int:
    from flows.audit import export_entries, readable_entries, write_export

    settings = _settings(args)
    principal = principal_of(settings, args)
    _audit(settings, args, "audit.export", args.out or "-", {"from": args.date_from, "to": args.date_to})
    entries = readable_entries(settings, principal, since=args.date_from, until=args.date_to, actor=args.actor,
                               action=args.action)
    fmt = args.format or ("csv" if args.out and args.out.endswith(".csv") else "jsonl")
    write_export(export_entries(entries, fmt), Path(args.out) if args.out else None)
    sys.stderr.write(f"Đã xuất {len(entries)} mục nhật ký kiểm soát ({fmt})\n")
    return EXIT_OK


def _audit_view(settings: Settings, args: argparse.Namespace, principal: Principal) -> None:
    """Record a reading of the trail; when the trail cannot record (a missing key, a wiped trail), the local
    operator may still read it to investigate, an account may not."""
    try:
        _audit(settings, args, "audit.view", "", {"actor": args.actor, "action": args.action})
    except SohoaError as exc:
        if not principal.operator:
            raise
        sys.stderr.write(f"Cảnh báo: không ghi được nhật ký kiểm soát ({exc}); vẫn hiển thị cho người vận hành.\n")


@access_rule(Rule.AUDIT)
def cmd_audit_list(args: argparse.Namespace) -> int:
    from flows.audit import list_line, readable_entries

    settings = _settings(args)
    principal = principal_of(settings, args)
    _audit_view(settings, args, principal)
    entries = readable_entries(settings, principal, actor=args.actor, action=args.action,
                               since=args.date_from, until=args.date_to, limit=args.limit, newest_first=True)
    if args.json:
        _print_json({"entries": [e.as_dict() for e in entries]})
        return EXIT_OK
    for e in entries:
        print(list_line(e))  # control characters shown as escapes: a value cannot forge a line
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "as_user", None):  # acting for an account: it must exist and be active (else exit 4)
            principal_of(_settings(args), args)
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
    # the catalog, the index and the audit trail hold classified text: nothing an archive run creates is readable
    # by other users of the machine (owner read-write, the service group read-only)
    os.umask(0o027)
    sys.exit(main())


__all__ = ["NotFoundError", "entrypoint", "main"]
