"""Reading the archive: ``sohoa show ID``, ``sohoa search QUERY``, ``sohoa export`` (table or AIP packages)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from flows.access import Rule, access_rule
from interfaces.cli.common import ARCHIVE_HELP, add_actor_option, audit_action, principal_of, print_json, settings_of
from schemas.errors import ExitCode


@access_rule(Rule.DOCUMENT)
def cmd_show(args: argparse.Namespace) -> ExitCode:
    from flows.queries import show_document

    settings = settings_of(args)
    principal = principal_of(settings, args)
    audit_action(settings, args, "document.view", args.id, {"json": bool(args.json)})
    data = show_document(settings, args.id, principal)
    if args.json:
        print_json(data)
        return ExitCode.OK
    md = data["metadata"]
    assert isinstance(md, dict)
    print(f"Mã: {data['id']}   Nguồn: {data['source']}   Trạng thái: {data['status']}")
    labels = {"code_number": "Số", "code_notation": "Ký hiệu", "type_name": "Loại", "issued_date": "Ngày",
              "organ_name": "Cơ quan ban hành", "subject": "Trích yếu", "signer": "Người ký",
              "classification": "Độ mật", "urgency": "Độ khẩn", "page_count": "Số trang",
              "digital_signature": "Chữ ký số"}
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
    return ExitCode.OK


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
def cmd_search(args: argparse.Namespace) -> ExitCode:
    from flows.queries import search_archive
    from schemas.search import SearchFilters

    filters = SearchFilters(
        type_name=args.type or [], organ_name=args.organ or [], classification=args.classification or [],
        batch=args.batch or [], file_code=args.file_code or [], year_from=args.year_from, year_to=args.year_to,
        date_from=args.date_from, date_to=args.date_to,
    )
    settings = settings_of(args)
    clearance = principal_of(settings, args).clearance
    audit_action(settings, args, "search", "", {"query": args.query, "filters": filters.model_dump(mode="json",
                                                                                            exclude_defaults=True),
                                          "sort": args.sort, "offset": args.offset})
    result = search_archive(settings, args.query, limit=args.limit, offset=args.offset, filters=filters,
                            sort=args.sort, facets=args.facets, clearance=clearance)
    if args.json:
        print_json(result.model_dump(mode="json"))
        return ExitCode.OK
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
    return ExitCode.OK


@access_rule(Rule.LISTING)
def cmd_export_packages(args: argparse.Namespace) -> ExitCode:
    from datetime import UTC, datetime

    from flows.package import export_for

    settings = settings_of(args)
    principal = principal_of(settings, args)  # packages hold only what this reader may see
    audit_action(settings, args, "export.package", args.package, {"query": args.query, "batch": args.batch})
    report = export_for(settings, principal, Path(args.package), query=args.query, batch=args.batch,
                        now=datetime.now(UTC), by_file_code=args.by_file_code, replace=args.replace)
    if args.json:
        print_json(report.model_dump(mode="json"))
    written = sum(p.status == "written" for p in report.packages)
    unchanged = sum(p.status == "unchanged" for p in report.packages)
    sys.stderr.write(f"Gói lưu trữ (AIP) trong {args.package}: {written} gói mới, {unchanged} gói không đổi, "
                     f"{report.documents} văn bản, {report.bytes / 1e6:.1f} MB\n")
    for p in report.problems:
        sys.stderr.write(f"  LỖI  {p.package} {p.file or ''}: {p.detail}\n")
    return ExitCode.OK if report.ok else ExitCode.PRESERVATION_PROBLEMS


@access_rule(Rule.LISTING)
def cmd_export_muc_luc(args: argparse.Namespace) -> ExitCode:
    from flows.muc_luc import export_muc_luc

    out = Path(args.out)
    if (args.format or out.suffix.lstrip(".")).lower() != "xlsx":
        sys.stderr.write("Lỗi: mục lục hồ sơ chỉ xuất ra Excel — dùng --out TỆP.xlsx\n")
        return ExitCode.USAGE
    settings = settings_of(args)
    principal = principal_of(settings, args)  # the mục lục holds only what this reader may see
    audit_action(settings, args, "export.muc_luc", str(out), {"file_code": args.muc_luc})
    view = export_muc_luc(settings, args.muc_luc, out, principal=principal)
    sys.stderr.write(f"Đã xuất mục lục hồ sơ {view.file_code} ({len(view.documents)} văn bản) vào {out}\n")
    return ExitCode.OK


@access_rule(Rule.LISTING)
def cmd_export(args: argparse.Namespace) -> ExitCode:
    if args.muc_luc is not None and args.package:
        sys.stderr.write("Lỗi: --muc-luc dùng với --out TỆP.xlsx, không dùng với --package\n")
        return ExitCode.USAGE
    if args.package:
        return cmd_export_packages(args)
    if args.muc_luc is not None:
        return cmd_export_muc_luc(args)
    from flows.export import export_archive, format_of

    out = Path(args.out)
    fmt = format_of(out, args.format)
    if fmt is None:
        sys.stderr.write("Lỗi: không rõ định dạng xuất — dùng --format xlsx|csv hoặc tệp .xlsx/.csv\n")
        return ExitCode.USAGE
    settings = settings_of(args)
    principal = principal_of(settings, args)  # the table holds only what this reader may see
    audit_action(settings, args, "export.table", str(out), {"format": fmt, "query": args.query, "batch": args.batch})
    rows = export_archive(settings, out, fmt=fmt, query=args.query, batch=args.batch, principal=principal)
    scope = f"khớp với «{args.query}»" if args.query else "trong kho"
    if args.batch:
        scope += f", lô {args.batch}"
    sys.stderr.write(f"Đã xuất {rows} văn bản {scope} vào {out} ({fmt.upper()})\n")
    return ExitCode.OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    _register_show(sub)
    _register_search(sub)
    _register_export(sub)


def _register_show(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    s = sub.add_parser("show", help="xem một văn bản đã số hóa")
    s.add_argument("id", metavar="ID")
    s.add_argument("--archive", help=ARCHIVE_HELP)
    s.add_argument("--json", action="store_true", help="xuất JSON")
    s.set_defaults(func=cmd_show)
    add_actor_option(s)


def _register_search(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    q = sub.add_parser("search", help="tìm kiếm (gõ có dấu hoặc không dấu)")
    q.add_argument("query", metavar="QUERY", nargs="?", default="",
                   help="từ khóa, \"cụm từ\" hoặc số/ký hiệu (15-NQ/TU); bỏ trống: mọi văn bản (lọc bằng tùy chọn)")
    q.add_argument("--archive", help=ARCHIVE_HELP)
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
    add_actor_option(q)


def _register_export(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    e = sub.add_parser("export", help="xuất bảng thông tin văn bản (TT 05/2025) ra Excel/CSV, hoặc gói lưu trữ")
    what = e.add_mutually_exclusive_group(required=True)
    what.add_argument("--out", metavar="FILE", help="tệp kết quả (.xlsx hoặc .csv)")
    what.add_argument("--package", metavar="DIR",
                      help="xuất gói lưu trữ (E-ARK AIP: METS, EAD, PREMIS, SHA-256, PDF/A) vào thư mục này")
    e.add_argument("--muc-luc", metavar="MÃ_HỒ_SƠ",
                   help="với --out TỆP.xlsx: mục lục hồ sơ và mục lục văn bản của hồ sơ này (TT 05/2025)")
    e.add_argument("--by-file-code", action="store_true", help="với --package: một gói cho mỗi hồ sơ")
    e.add_argument("--replace", action="store_true", help="với --package: thay gói cũ có nội dung khác")
    e.add_argument("--json", action="store_true", help="với --package: xuất báo cáo JSON")
    e.add_argument("--format", choices=["xlsx", "csv"], help="định dạng (mặc định: theo đuôi tệp --out)")
    e.add_argument("--query", metavar="Q", help="chỉ xuất các văn bản khớp với câu tìm kiếm này")
    e.add_argument("--batch", metavar="NAME", help="chỉ xuất các văn bản của lô này")
    e.add_argument("--archive", help=ARCHIVE_HELP)
    e.set_defaults(func=cmd_export)
    add_actor_option(e)
