"""Hồ sơ and phông (issue 22, part 1): the pages ``/phong``, ``/phong/{fonds}``, ``/ho-so/{file_code}``, the
document's breadcrumb, the mục lục XLSX (``sohoa export --muc-luc`` and the hồ sơ page's button), and the
archivists' hồ sơ records and filing (a correction of ``file_code``/``sequence``, re-indexed), over a copy of the
digitised sample archive. Its Mật report (bc_03, 2022) is filed with two open documents (2023, 2024): a reader
without clearance meets it in no list, count, page total or year range; filing it is "not found" for them.

Browser tests (Chromium, 1366 px and a 390-px phone) render the phông list, a phông, a hồ sơ and the hồ sơ form,
check they fit, and save ``phong-1366.png``, ``hoso-390.png`` ... under the artifacts dir."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from interfaces.cli import main
from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from schemas.settings import Settings
from tests.conftest import DigitisedArchive

pytestmark = pytest.mark.slow
PASSWORD = "mat-khau-ho-so-luu-tru"
CODE, OTHER = "H49.64.33.2001.160", "H49.64.33.2001.161"
FONDS = "Phông Thành ủy Đà Nẵng"
MISSING = "0000000000000000dead"


def login(app: object, name: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token.group(1)})
    return client


def csrf_of(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found, path
    return found.group(1)


def create_file(client: TestClient, code: str, title: str, fonds: str, **extra: str) -> None:
    answer = client.post("/ho-so-moi", data={"csrf_token": csrf_of(client, "/ho-so-moi"), "file_code": code,
                                             "title": title, "fonds": fonds, **extra}, follow_redirects=False)
    assert answer.status_code == 303, answer.text


def file_in(client: TestClient, code: str, doc_id: str, sequence: str = "") -> Any:
    return client.post(f"/ho-so/{code}/van-ban", data={"csrf_token": csrf_of(client, f"/ho-so/{code}"),
                                                       "doc_id": doc_id, "sequence": sequence},
                       follow_redirects=False)


def file_archive(settings: Settings, ids: dict[str, str]) -> None:
    """As an archivist cleared for every level: hồ sơ CODE (nq_01, bc_03 Mật, kh_02) and OTHER (cv_04, qd_05)."""
    add_user(settings, "luutru3", PASSWORD, "archivist", clearance=3)
    add_user(settings, "luutru0", PASSWORD, "archivist", clearance=0)
    add_user(settings, "xem0", PASSWORD, "staff", clearance=0)
    client = login(create_app(settings, WebSettings()), "luutru3")
    create_file(client, CODE, "Hồ sơ Hội nghị Ban Thường vụ năm 2023", FONDS, maintenance="01 - Vĩnh viễn",
                language="Tiếng Việt", note="Hồ sơ mẫu")
    create_file(client, OTHER, "Hồ sơ công văn, quyết định", FONDS)
    for source in ("nq_01.png", "bc_03.pdf", "kh_02.tif"):
        assert file_in(client, CODE, ids[source]).status_code == 303
    for source in ("cv_04", "qd_05.jpg"):
        assert file_in(client, OTHER, ids[source]).status_code == 303


@pytest.fixture(scope="module")
def filed(digitised: DigitisedArchive, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, str]]:
    root = tmp_path_factory.mktemp("ho-so") / "archive"
    shutil.copytree(digitised.archive, root)
    settings = Settings(archive=root)
    report = digitised.report["documents"]
    assert isinstance(report, list)
    ids = {str(d["source"]): str(d["id"]) for d in report if d["id"]}
    file_archive(settings, ids)
    return settings, ids


def _years(page: str) -> str:
    found = re.search(r'id="file-years">([^<]*)<', page)
    assert found
    return found.group(1)


def _catalog_years(settings: Settings, ids: list[str]) -> str:
    from flows.queries import open_catalog

    catalog = open_catalog(settings)
    try:
        years = sorted(str(catalog.get(i).metadata["issued_date"])[:4] for i in ids)  # type: ignore[union-attr]
    finally:
        catalog.close()
    return years[0] if years[0] == years[-1] else f"{years[0]}–{years[-1]}"


def test_pages_show_only_what_the_reader_may_see(filed: tuple[Settings, dict[str, str]]) -> None:
    settings, ids = filed
    secret = ids["bc_03.pdf"]
    app = create_app(settings, WebSettings())
    full, none = login(app, "luutru3"), login(app, "xem0")
    listing = none.get("/phong")
    assert listing.status_code == 200 and FONDS in listing.text
    fonds_page = none.get(re.search(r'href="(/phong/[^"]+)"', listing.text).group(1))  # type: ignore[union-attr]
    assert fonds_page.status_code == 200 and CODE in fonds_page.text and OTHER in fonds_page.text
    counts = re.findall(r'class="doc-count">(\d+)<', fonds_page.text)
    assert counts == ["2", "2"]  # CODE holds 3, one of them Mật
    assert re.findall(r'class="doc-count">(\d+)<', full.get(fonds_page.url.path).text) == ["3", "2"]
    page = none.get(f"/ho-so/{CODE}").text
    shown = re.findall(r'href="/documents/([A-Za-z0-9_-]+)"', page)
    assert shown == [ids["nq_01.png"], ids["kh_02.tif"]] and secret not in page
    assert re.findall(r'data-label="STT">(\d+)<', page) == ["1", "2"]  # numbered anew: no gap
    assert _years(page) == _catalog_years(settings, shown)
    assert "2 văn bản" in page
    cleared = full.get(f"/ho-so/{CODE}").text
    assert re.findall(r'href="/documents/([A-Za-z0-9_-]+)"', cleared) == [ids[s] for s in ("nq_01.png", "bc_03.pdf",
                                                                                          "kh_02.tif")]
    assert _years(cleared) == _catalog_years(settings, [ids[s] for s in ("nq_01.png", "bc_03.pdf", "kh_02.tif")])
    doc = none.get(f"/documents/{ids['kh_02.tif']}").text  # the breadcrumb: phông › hồ sơ
    assert f'href="/ho-so/{CODE}"' in doc and FONDS in doc
    missing = none.get("/ho-so/KHONG.CO")
    assert missing.status_code == 404 and none.get("/phong/Kh%C3%B4ng%20c%C3%B3").status_code == 404


def test_hidden_only_file_does_not_exist_below_clearance(filed: tuple[Settings, dict[str, str]],
                                                         tmp_path: Path) -> None:
    """A hồ sơ without a record whose only document is Mật: the same 404 as an unknown code, in no list."""
    from flows.accounts import accounts_of
    from flows.audit import open_audit
    from flows.review import Reviewer, apply_changes
    from flows.wiring import build_object_store, open_accounts_db

    settings, ids = filed
    root = tmp_path / "a"
    shutil.copytree(settings.archive, root, ignore=shutil.ignore_patterns("work"))
    copy = Settings(archive=root)
    user = accounts_of(copy).find_user("luutru3")
    assert user is not None
    log = open_audit(copy)
    try:
        reviewer = Reviewer(settings=copy, store=build_object_store(copy), db=open_accounts_db(copy), audit=log,
                            user=user)
        apply_changes(reviewer, ids["bc_03.pdf"], {"file_code": "AN.1", "sequence": 1})
    finally:
        log.close()
    app = create_app(copy, WebSettings())
    none, full = login(app, "xem0"), login(app, "luutru3")
    hidden, absent = none.get("/ho-so/AN.1"), none.get("/ho-so/AN.2")
    assert (hidden.status_code, hidden.content) == (absent.status_code, absent.content) and hidden.status_code == 404
    for path in ("/ho-so/{}/muc-luc.xlsx", "/ho-so/{}/sua"):
        one, two = none.get(path.format("AN.1")), none.get(path.format("AN.2"))
        assert (one.status_code, one.content) == (two.status_code, two.content)
    assert "AN.1" not in none.get("/phong/-").text and "AN.1" in full.get("/phong/-").text
    assert "AN.1" not in none.get("/phong").text
    assert full.get("/ho-so/AN.1").status_code == 200
    # once an archivist creates its record the hồ sơ exists for everyone, with no trace of the hidden document
    create_file(full, "AN.1", "Hồ sơ có hồ sơ gốc", "Phông riêng")
    page = none.get("/ho-so/AN.1")
    assert page.status_code == 200 and ids["bc_03.pdf"] not in page.text
    assert _years(page.text) == "—" and "0 văn bản, 0 trang" in page.text
    assert _years(full.get("/ho-so/AN.1").text) == _catalog_years(copy, [ids["bc_03.pdf"]])
    assert re.findall(r'class="doc-count">(\d+)<', none.get("/phong/Ph%C3%B4ng%20ri%C3%AAng").text) == ["0"]
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(none.get("/ho-so/AN.1/muc-luc.xlsx").content))
    assert book["Mục lục văn bản"].max_row == 1  # headers only
    assert [c.value for c in book["Mục lục hồ sơ"][2]][3:7] == [None, None, None, "0 trang / 0 văn bản"]


def test_muc_luc_export_cli_and_web(filed: tuple[Settings, dict[str, str]], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from openpyxl import load_workbook

    from flows.muc_luc import DOCUMENT_HEADERS, FILE_HEADERS

    settings, ids = filed
    where = ["--archive", str(settings.archive)]
    books = {}
    for who, extra in (("none", ["--as", "xem0"]), ("all", [])):
        out = tmp_path / f"muc-luc-{who}.xlsx"
        assert main(["export", "--muc-luc", CODE, "--out", str(out), *where, *extra]) == 0
        books[who] = load_workbook(out)
    for book in books.values():
        assert book.sheetnames == ["Mục lục hồ sơ", "Mục lục văn bản"]
        assert [c.value for c in book["Mục lục hồ sơ"][1]] == list(FILE_HEADERS)
        assert [c.value for c in book["Mục lục văn bản"][1]] == list(DOCUMENT_HEADERS)
    rows = {who: [[c.value for c in r] for r in b["Mục lục văn bản"].iter_rows(min_row=2)] for who, b in books.items()}
    assert [r[0] for r in rows["none"]] == [1, 2] and [r[0] for r in rows["all"]] == [1, 2, 3]
    assert rows["none"][0][1] == "27-NQ/TU" or rows["none"][0][1]  # số, ký hiệu as read
    assert [r[5] for r in rows["none"]] == ["1", "2-3"]  # tờ số over the visible pages only (1 + 2 pages)
    assert not any("Mật" in str(r[6]) for r in rows["none"]) and any("Mật" in str(r[6]) for r in rows["all"])
    head = {who: [c.value for c in b["Mục lục hồ sơ"][2]] for who, b in books.items()}
    assert head["none"][1] == CODE and head["none"][2] == "Hồ sơ Hội nghị Ban Thường vụ năm 2023"
    assert head["none"][5] == "01 - Vĩnh viễn" and head["none"][6] == "3 trang / 2 văn bản"
    assert head["all"][6] == "5 trang / 3 văn bản"
    assert str(head["none"][3])[:4] == _catalog_years(settings, [ids["nq_01.png"], ids["kh_02.tif"]])[:4]
    # the hồ sơ page's button: the same workbook for the same reader
    client = login(create_app(settings, WebSettings()), "xem0")
    answer = client.get(f"/ho-so/{CODE}/muc-luc.xlsx")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "private, no-store"
    web_book = load_workbook(io.BytesIO(answer.content))
    assert [[c.value for c in r] for r in web_book["Mục lục văn bản"].iter_rows(min_row=2)] == rows["none"]
    capsys.readouterr()
    assert main(["export", "--muc-luc", "KHONG.CO", "--out", str(tmp_path / "x.xlsx"), *where]) == 6
    assert main(["export", "--muc-luc", CODE, "--out", str(tmp_path / "x.csv"), *where]) == 2
    assert "Excel" in capsys.readouterr().err
    log = (settings.archive / "export-log.jsonl").read_text(encoding="utf-8")
    assert '"muc_luc": "H49.64.33.2001.160"' in log and '"as": "xem0"' in log


def test_filing_is_a_correction_reindexed_and_bounded_by_clearance(filed: tuple[Settings, dict[str, str]],
                                                                    tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    settings, ids = filed
    root = tmp_path / "a"
    shutil.copytree(settings.archive, root, ignore=shutil.ignore_patterns("work"))
    copy = Settings(archive=root)
    app = create_app(copy, WebSettings())
    low = login(app, "luutru0")
    # a hidden document cannot be filed or taken out: the same answer as a missing id
    hidden, absent = file_in(low, OTHER, ids["bc_03.pdf"]), file_in(low, OTHER, MISSING)
    assert hidden.status_code == 404 and (hidden.status_code, hidden.content) == (absent.status_code, absent.content)
    token = csrf_of(low, f"/ho-so/{CODE}")
    outs = [low.post(f"/ho-so/{CODE}/van-ban/{i}/bo", data={"csrf_token": token}) for i in (ids["bc_03.pdf"], MISSING)]
    assert outs[0].status_code == 404 and (outs[0].status_code, outs[0].content) == (outs[1].status_code,
                                                                                     outs[1].content)
    assert low.post(f"/ho-so/{CODE}/van-ban", data={"csrf_token": "sai", "doc_id": ids["nq_01.png"]}).status_code == 403
    assert login(app, "xem0").get("/ho-so-moi").status_code == 403  # staff: no records
    # move nq_01 from CODE to OTHER at the end: a correction, in the search index at once
    moved = ids["nq_01.png"]
    assert file_in(low, OTHER, moved).status_code == 303
    assert re.findall(r'href="/documents/([A-Za-z0-9_-]+)"', low.get(f"/ho-so/{OTHER}").text)[-1] == moved
    assert moved not in low.get(f"/ho-so/{CODE}").text
    capsys.readouterr()
    assert main(["search", "", "--file-code", OTHER, "--json", "--archive", str(root), "--as", "luutru0"]) == 0
    assert moved in capsys.readouterr().out
    assert main(["show", moved, "--json", "--archive", str(root)]) == 0
    history = json.loads(capsys.readouterr().out)["corrections"]
    assert {(c["field"], c["before"], c["after"]) for c in history[-2:]} == {("file_code", CODE, OTHER),
                                                                            ("sequence", 1, 3)}
    doc = low.get(f"/documents/{moved}").text
    assert "Mã hồ sơ" in doc and f'href="/ho-so/{OTHER}"' in doc  # history and breadcrumb
    token = csrf_of(low, f"/ho-so/{OTHER}")
    assert low.post(f"/ho-so/{OTHER}/van-ban/{moved}/bo", data={"csrf_token": token},
                    follow_redirects=False).status_code == 303
    assert moved not in low.get(f"/ho-so/{OTHER}").text
    bad = low.post("/ho-so-moi", data={"csrf_token": csrf_of(low, "/ho-so-moi"), "file_code": "X/1", "title": "t"})
    assert bad.status_code == 400 and "Mã hồ sơ không hợp lệ" in bad.text
    twice = low.post("/ho-so-moi", data={"csrf_token": csrf_of(low, "/ho-so-moi"), "file_code": CODE, "title": "t"})
    assert twice.status_code == 400 and "đã có" in twice.text
    edit = low.post(f"/ho-so/{CODE}/sua", data={"csrf_token": csrf_of(low, f"/ho-so/{CODE}/sua"),
                                                "title": "Tiêu đề mới", "fonds": FONDS, "start_date": "2023-01-01",
                                                "end_date": "2023-12-31"}, follow_redirects=False)
    assert edit.status_code == 303
    assert _years(low.get(f"/ho-so/{CODE}").text) == "2023"  # the record's dates, as the archivist typed them


# --- in a real browser ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(filed: tuple[Settings, dict[str, str]]) -> Iterator[str]:
    from tests.test_web_browser import _require_browser, serving

    _require_browser()
    settings, _ = filed
    with serving(create_app(settings, WebSettings()), "uvicorn-ho-so") as url:
        yield url


@pytest.mark.parametrize("screen", ["1366", "390"])
def test_file_pages_fit_desktop_and_phone(served: str, filed: tuple[Settings, dict[str, str]], screen: str) -> None:
    from tests.test_web_browser import CHROMIUM, CHROMIUM_FLAGS, SCREENS, _require_browser, artifacts_dir, check_fits

    sync_api = _require_browser()
    shots, base = artifacts_dir(), served
    width = int(SCREENS[screen]["viewport"]["width"])
    outside: list[str] = []
    with contextlib.ExitStack() as stack:
        playwright = sync_api.sync_playwright().start()
        stack.callback(playwright.stop)
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        stack.callback(browser.close)
        page = browser.new_context(locale="vi-VN", **SCREENS[screen]).new_page()
        page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "luutru3")
        page.fill("input[name=password]", PASSWORD)
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_url(f"{base}/search*")
        page.click("header.top a[href='/phong']")  # the header's link
        page.wait_for_url(f"{base}/phong")
        check_fits(page, width, ["#fonds-list a[href^='/phong/']"], shots / f"phong-{screen}.png")
        page.click("#fonds-list a[href^='/phong/']")
        check_fits(page, width, ["#files a[href^='/ho-so/']", "#files .years"], shots / f"phong-detail-{screen}.png")
        page.click(f"#files a[href='/ho-so/{CODE}']")
        page.wait_for_url(f"{base}/ho-so/{CODE}")
        assert page.locator("#file-documents a[href^='/documents/']").count() == 3
        check_fits(page, width, ["#muc-luc", "#edit-file", "#file-documents a[href^='/documents/']",
                                 "#file-in input[name=doc_id]", "#file-in button[type=submit]"],
                   shots / f"hoso-{screen}.png")
        with page.expect_download() as download:
            page.click("#muc-luc")
        assert download.value.suggested_filename == f"muc-luc-{CODE}.xlsx"
        page.click("#edit-file")
        page.wait_for_url(f"{base}/ho-so/{CODE}/sua")
        check_fits(page, width, ["#file-form input[name=title]", "#file-form select[name=maintenance]",
                                 "#file-form textarea[name=note]", "#file-form button[type=submit]"],
                   shots / f"hoso-edit-{screen}.png")
        page.click("#file-form button[type=submit]")  # saved unchanged: back on the hồ sơ with a notice
        page.wait_for_url(f"{base}/ho-so/{CODE}?done=saved")
        assert page.locator(".notice").is_visible()
    assert outside == []


def test_catalog_of_an_earlier_version_is_filled_from_the_corrections(filed: tuple[Settings, dict[str, str]],
                                                                       tmp_path: Path) -> None:
    """A catalog written before the hồ sơ columns: they are added, and filled once from the stored manifests with
    their corrections (the filing above is corrections only: the sample batch had no hồ sơ code)."""
    import sqlite3

    from flows.queries import open_catalog
    from storage.catalog import FILING_PENDING

    settings, ids = filed
    root = tmp_path / "a"
    shutil.copytree(settings.archive, root, ignore=shutil.ignore_patterns("work"))
    with sqlite3.connect(root / "catalog.sqlite") as conn:
        conn.execute("ALTER TABLE documents DROP COLUMN file_code")
        conn.execute("ALTER TABLE documents DROP COLUMN sequence")
    copy = Settings(archive=root)
    catalog = open_catalog(copy)
    try:
        assert catalog.filing_pending() and all(e.file_code is None for e in catalog.entries())
    finally:
        catalog.close()
    page = login(create_app(copy, WebSettings()), "luutru3").get(f"/ho-so/{CODE}").text
    assert re.findall(r'href="/documents/([A-Za-z0-9_-]+)"', page) == [ids[s] for s in ("nq_01.png", "bc_03.pdf",
                                                                                       "kh_02.tif")]
    with sqlite3.connect(root / "catalog.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM meta WHERE key = ?", (FILING_PENDING,)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM documents WHERE file_code = ?", (OTHER,)).fetchone()[0] == 2


def test_reindex_keeps_the_filing(filed: tuple[Settings, dict[str, str]], tmp_path: Path) -> None:
    """``sohoa reindex`` rebuilds the catalog from the manifests and their corrections: the filing stays."""
    settings, ids = filed
    root = tmp_path / "a"
    shutil.copytree(settings.archive, root, ignore=shutil.ignore_patterns("work"))
    assert main(["reindex", "--archive", str(root)]) == 0
    page = login(create_app(Settings(archive=root), WebSettings()), "xem0").get(f"/ho-so/{OTHER}").text
    assert re.findall(r'href="/documents/([A-Za-z0-9_-]+)"', page) == [ids["cv_04"], ids["qd_05.jpg"]]


def test_muc_luc_cells_are_never_formulas(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from flows.files import FiledDocument, FileView
    from flows.muc_luc import build_muc_luc, write_muc_luc
    from storage.catalog import CatalogEntry
    from storage.files import FileRecord

    entry = CatalogEntry(id="a" * 20, sha256="", source="x.png", batch="b", status="done", pages=3,
                         metadata={"subject": '=HYPERLINK("http://x","y")', "organ_name": "@ban", "code_number": "+1",
                                   "issued_date": "2001-02-03"},
                         review_reasons=[], manifest_key="k", file_code="F.1", sequence=4)
    view = FileView(file_code="F.1", record=FileRecord(file_code="F.1", title="-2+3", note="=1+1"), title="-2+3",
                    fonds=None, documents=[FiledDocument(entry=entry, stt=1, first_page=1, last_page=3)])
    write_muc_luc(build_muc_luc(view), tmp_path / "m.xlsx")
    book = load_workbook(tmp_path / "m.xlsx")
    cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row]
    assert all(c.data_type != "f" for c in cells)
    values = [c.value for c in book["Mục lục văn bản"][2]]
    assert values[1] == "'+1" and values[4] == "'=HYPERLINK(\"http://x\",\"y\")" and values[5] == "1-3"
    assert book["Mục lục hồ sơ"]["C2"].value == "'-2+3" and book["Mục lục hồ sơ"]["D2"].number_format == "DD/MM/YYYY"
