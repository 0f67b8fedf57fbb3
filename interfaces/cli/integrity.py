"""Keeping the archive whole: ``sohoa verify`` (fixity), ``sohoa backup``, ``sohoa reindex``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flows.access import Rule, access_rule
from interfaces.cli.common import ARCHIVE_HELP, audit_action, print_json, settings_of
from schemas.errors import ConfigError, ExitCode
from schemas.fixity import FixityProblem
from schemas.settings import Settings
from storage.objects import ObjectStore
from storage.search_index import SearchIndex

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
def cmd_verify(args: argparse.Namespace) -> ExitCode:
    from flows.fixity import verify_store
    from flows.wiring import open_existing_catalog

    settings = settings_of(args)
    if args.sample is not None and args.sample < 1:
        raise ConfigError("--sample phải là số nguyên dương", fix="vd. --sample 100")
    audit_action(settings, args, "verify", args.store or "", {"sample": args.sample})
    store = _store_of(args, settings)
    catalog = open_existing_catalog(settings) if not args.store else None
    try:
        report = verify_store(store, catalog=catalog, sample=args.sample, seal_missing=args.seal_missing,
                              external=_external_index(settings) if catalog is not None else None,
                              audit_archive=None if args.store else settings.archive_path())
    finally:
        if catalog is not None:
            catalog.close()
    if args.json:
        print_json(report.model_dump(mode="json"))
    scope = f"{report.documents_checked} văn bản chọn ngẫu nhiên" if args.sample else \
        f"toàn bộ {report.documents_checked} văn bản"
    sys.stderr.write(f"Kiểm tra toàn vẹn {store.describe()}: {scope}, {report.objects_checked} đối tượng, "
                     f"{report.bytes_checked / 1e6:.1f} MB — ")
    if report.ok:
        sys.stderr.write("không có vấn đề.\n")
        return ExitCode.OK
    sys.stderr.write(f"{len(report.problems)} vấn đề:\n")
    _print_problems(report.problems)
    sys.stderr.write("Khôi phục từ bản sao lưu (sohoa backup) các đối tượng thiếu hoặc bị thay đổi; "
                     "chạy sohoa reindex nếu chỉ mục lệch với kho.\n")
    return ExitCode.PRESERVATION_PROBLEMS


@access_rule(Rule.OPERATOR)
def cmd_backup(args: argparse.Namespace) -> ExitCode:
    from flows.preservation import backup_store
    from flows.wiring import build_object_store, store_from_spec

    settings = settings_of(args)
    audit_action(settings, args, "backup", args.to)  # a backup copies every document, classified ones included
    source = build_object_store(settings)
    target = store_from_spec(args.to, settings)
    if target.describe() == source.describe():
        raise ConfigError("Kho đích trùng với kho nguồn", fix="chọn --to ở một ổ đĩa hoặc máy chủ khác")
    from flows.corrections import migrate_legacy
    from flows.database_backup import dump_database

    dump = dump_database(settings, target)  # SOHOA_DATABASE_URL: the shared database first (exit 4/5 if it fails)
    migrate_legacy(settings, source)  # corrections an earlier version kept in web.sqlite3 travel with the backup
    report = backup_store(source, target, audit_archive=settings.archive_path())
    report.database_dump = dump
    from flows.backup_log import record_backup

    record_backup(settings.archive_path(), report)  # the last backup, for `sohoa status` and the dashboard
    if args.json:
        print_json(report.model_dump(mode="json"))
    sys.stderr.write(f"Sao lưu {source.describe()} → {target.describe()}: {report.objects_seen} đối tượng, "
                     f"đã chép {report.objects_copied} ({report.bytes_copied / 1e6:.1f} MB)\n")
    if dump is not None:
        sys.stderr.write(f"Cơ sở dữ liệu: {dump.key} ({dump.bytes / 1e6:.1f} MB, pg_dump)\n")
    if report.ok:
        return ExitCode.OK
    sys.stderr.write(f"{len(report.problems)} đối tượng không sao lưu được:\n")
    _print_problems(report.problems)
    sys.stderr.write("Chạy sohoa verify để xem tình trạng kho nguồn.\n")
    return ExitCode.PRESERVATION_PROBLEMS


@access_rule(Rule.OPERATOR)
def cmd_reindex(args: argparse.Namespace) -> ExitCode:
    from flows.corrections import migrate_legacy, rebuild_index
    from flows.wiring import open_catalog

    settings = settings_of(args)
    audit_action(settings, args, "reindex", getattr(args, "store", None) or "")  # before the catalog is (re)built
    store = _store_of(args, settings)
    root = settings.archive_path()
    root.mkdir(parents=True, exist_ok=True)
    if not getattr(args, "store", None):  # the archive's own store: corrections kept in web.sqlite3 move there
        migrate_legacy(settings, store)
    catalog = open_catalog(settings)
    try:  # the manifests with the archivists' corrections (kept in the store, checked against the archive's
        # audit trail: a correction it recorded that the store lost leaves the document out) applied, in one go
        report = rebuild_index(store, catalog, _external_index(settings), archive=root)
    finally:
        catalog.close()
    if args.json:
        print_json(report.model_dump(mode="json"))
    sys.stderr.write(f"Đã dựng lại chỉ mục từ {store.describe()}: {report.documents_indexed} văn bản "
                     f"trong {report.elapsed_s:.1f} s\n")
    if report.problems:
        sys.stderr.write(f"{len(report.problems)} văn bản không đưa vào chỉ mục:\n")
        _print_problems(report.problems)
        return ExitCode.PRESERVATION_PROBLEMS
    return ExitCode.OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    store_help = "kiểm tra kho khác: thư mục kho lưu trữ (vd. bản sao lưu) hoặc s3://BUCKET/THƯ_MỤC"
    v = sub.add_parser("verify", help="kiểm tra toàn vẹn (SHA-256) mọi đối tượng trong kho")
    v.add_argument("--sample", type=int, metavar="N", help="chỉ kiểm tra N văn bản chọn ngẫu nhiên")
    v.add_argument("--store", metavar="KHO", help=store_help)
    v.add_argument("--seal-missing", action="store_true",
                   help="kho cũ: niêm phong (ghi document.json.sha256) các văn bản còn nguyên vẹn chưa có mã kiểm tra")
    v.add_argument("--archive", help=ARCHIVE_HELP)
    v.add_argument("--json", action="store_true", help="xuất báo cáo JSON")
    v.set_defaults(func=cmd_verify)

    b = sub.add_parser("backup", help="sao lưu gia tăng kho sang một kho thứ hai (thư mục hoặc S3)")
    b.add_argument("--to", required=True, metavar="ĐÍCH", help="thư mục đích hoặc s3://BUCKET/THƯ_MỤC")
    b.add_argument("--archive", help=ARCHIVE_HELP)
    b.add_argument("--json", action="store_true", help="xuất báo cáo JSON")
    b.set_defaults(func=cmd_backup)

    r = sub.add_parser("reindex", help="dựng lại danh mục và chỉ mục tìm kiếm từ kho đối tượng")
    r.add_argument("--store", metavar="KHO", help="dựng từ kho khác (vd. bản sao lưu): thư mục hoặc s3://…")
    r.add_argument("--archive", help=ARCHIVE_HELP)
    r.add_argument("--json", action="store_true", help="xuất báo cáo JSON")
    r.set_defaults(func=cmd_reindex)
