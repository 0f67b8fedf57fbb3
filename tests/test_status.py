"""Operations at a glance: ``flows.status`` over a real digitised archive, ``sohoa status`` (``--json`` shape, exit
codes, ``--as``), the ``/dashboard`` page (roles, figures) and the dashboard in Chromium at 1366 and 390 px.

The archive: a copy of the digitised sample batch (five documents, one Mật; four broken files that failed in a
``sohoa digitise`` run, which records its rate in ``run-log.jsonl`` but no failures), plus a registered batch run
at once (``sohoa batch add --when now``) holding a Mật copy of nq_01 (a possible duplicate of it), nq_01 itself
(skipped) and the four broken files again (failures recorded in the registry); then nq_01 is raised to Mật in the
review form and a second batch brings an open copy of it (as TIFF) whose possible duplicates are now all Mật.
Then ``sohoa verify`` and ``sohoa backup``. Expected figures are counted here from the catalog database directly,
not through ``flows.status``.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sqlite3
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from flows.access import Principal, local_operator
from flows.status import NIGHTS, archive_status, night_of
from interfaces.cli import main
from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from schemas.errors import ConfigError
from schemas.reasons import CODE_LABELS, ReasonCode
from schemas.settings import Settings
from tests.conftest import BAD_FILES, DigitisedArchive, add_bad_files
from tests.fixtures import generate_sample as gen

PASSWORD = "mat-khau-van-hanh-kho"
USERS = {"arch0": ("archivist", 0), "arch1": ("archivist", 1), "nhanvien": ("staff", 3)}


@dataclass
class StatusArchive:
    settings: Settings
    root: Path
    batch_id: str  # the run that OCR'd the Mật copy
    open_batch: str  # the later run of an open copy only


@pytest.fixture(scope="module")
def status_archive(digitised: DigitisedArchive, tmp_path_factory: pytest.TempPathFactory) -> StatusArchive:
    base = tmp_path_factory.mktemp("status")
    root = base / "archive"
    shutil.copytree(digitised.archive, root)
    (root / "backup-log.jsonl").unlink(missing_ok=True)  # backups other tests made of the shared archive
    settings = Settings(archive=root)
    for name, (role, clearance) in USERS.items():
        add_user(settings, name, PASSWORD, role, clearance=clearance)  # type: ignore[arg-type]
    lo2 = base / "lo2"  # a Mật copy of nq_01 (a possible duplicate of it), the open copy (nq_01 itself), 4 bad files
    _write(lo2, ("mo.png", None, 21), ("mat.png", "Mật", 22))
    add_bad_files(lo2)
    (lo2 / "batch.toml").write_text('approval_ref = "9-QĐ/VPTU"\napproved_by = "Trần Thị Hoa"\n', encoding="utf-8")
    batch_id = _add_now(root, lo2, expected=3)
    report = digitised.report["documents"]
    assert isinstance(report, list)
    nq_01 = next(str(d["id"]) for d in report if d["source"] == "nq_01.png")
    _raise_to_mat(settings, nq_01)
    lo3 = base / "lo3"  # an open copy (as TIFF: another document) whose possible duplicates are all Mật now
    _write(lo3, ("mo2.tif", None, 23))
    open_batch = _add_now(root, lo3, expected=0)
    assert main(["verify", "--archive", str(root)]) == 0
    assert main(["backup", "--archive", str(root), "--to", str(base / "sao-luu")]) == 0
    return StatusArchive(settings=settings, root=root, batch_id=batch_id, open_batch=open_batch)


def _write(folder: Path, *copies: tuple[str, str | None, int]) -> None:
    for copy in copies:
        doc = gen.classified_copy(*copy)
        gen.save(doc, gen.degrade(doc, gen.render(doc)), folder)


def _add_now(root: Path, folder: Path, *, expected: int) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["batch", "add", str(folder), "--when", "now", "--archive", str(root), "--json"]) == expected
    return str(json.loads(out.getvalue())["id"])


def _raise_to_mat(settings: Settings, doc_id: str) -> None:
    """An archivist raises the document to Mật in the review form (immediate: no second person needed)."""
    client = _login(create_app(settings, WebSettings()), "arch1")
    form = client.get(f"/review/{doc_id}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    version = re.search(r'name="version" value="(\d+)"', form.text)
    assert csrf and version
    saved = client.post(f"/review/{doc_id}", data={"csrf_token": csrf.group(1), "version": version.group(1),
                                                   "md_classification": "Mật"}, follow_redirects=False)
    assert saved.status_code == 303


def _rows(root: Path) -> list[dict[str, object]]:
    with sqlite3.connect(root / "catalog.sqlite") as conn:
        rows = conn.execute("SELECT id, status, pages, metadata, review_reasons FROM documents").fetchall()
    return [{"id": r[0], "status": r[1], "pages": r[2], "classification": json.loads(r[3]).get("classification"),
             "reasons": json.loads(r[4])} for r in rows]


def _expected(root: Path, clearance: int) -> dict[str, object]:
    """The figures a reader of ``clearance`` should get, counted from the catalog rows (open = level 0, Mật = 1)."""
    levels = {"": 0, None: 0, "Mật": 1, "Tối mật": 2}
    rows = _rows(root)
    level = {str(r["id"]): levels.get(r["classification"], 3) for r in rows}  # type: ignore[call-overload]
    seen = [r for r in rows if level[str(r["id"])] <= clearance]
    backlog: dict[str, int] = {}
    flagged = 0
    for r in seen:
        if r["status"] != "needs_review":
            continue
        codes = {str(x["code"]) for x in r["reasons"]  # type: ignore[attr-defined]
                 if not (x["code"] == "duplicate_of" and level.get(str(x["params"]["document_id"]), 3) > clearance)}
        if codes:
            flagged += 1
            for code in codes:
                backlog[code] = backlog.get(code, 0) + 1
    return {"documents": len(seen), "pages": sum(int(r["pages"]) for r in seen),  # type: ignore[call-overload]
            "review_backlog": flagged, "review_reasons": backlog}


def _principal(name: str) -> Principal:
    role, clearance = USERS[name]
    return Principal(name=name, role=role, clearance=clearance)  # type: ignore[arg-type]


def test_night_runs_noon_to_noon() -> None:
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    assert night_of(datetime(2026, 12, 7, 22, 30, tzinfo=zone), zone) == date(2026, 12, 7)
    assert night_of(datetime(2026, 12, 8, 5, 59, tzinfo=zone), zone) == date(2026, 12, 7)
    assert night_of(datetime(2026, 12, 8, 12, 0, tzinfo=zone), zone) == date(2026, 12, 8)
    assert night_of(datetime(2026, 12, 7, 17, 0, tzinfo=UTC), zone) == date(2026, 12, 7)  # 00:00 local, 8/12


def test_every_reason_code_has_a_label() -> None:
    assert set(CODE_LABELS) == set(ReasonCode)
    assert all(label and label == label.strip() for label in CODE_LABELS.values())


@pytest.mark.parametrize("who", ["operator", "arch0", "arch1"])
def test_figures_cover_only_what_the_reader_may_see(status_archive: StatusArchive, who: str) -> None:
    principal = local_operator("op") if who == "operator" else _principal(who)
    expected = _expected(status_archive.root, principal.clearance)
    status = archive_status(status_archive.settings, principal)
    assert status.documents == expected["documents"]
    assert len(status.nights) == NIGHTS
    zone = ZoneInfo(status_archive.settings.timezone)
    assert status.nights[-1].night == night_of(datetime.now(UTC), zone).isoformat()
    assert status.pages_last_nights == sum(n.pages for n in status.nights) == expected["pages"]  # all digitised now
    assert status.review_backlog == expected["review_backlog"]
    assert {r.code: r.documents for r in status.review_reasons} == expected["review_reasons"]
    # the four broken files of the registered batch (never read: level 0) failed, for every reader
    assert status.failures == len(BAD_FILES) == sum(r.documents for r in status.failure_reasons)
    assert status.held == 0
    # a run's rate is listed only for readers who may see every document of its batch (newest first): the open
    # copy's batch, the batch with the Mật copy, the `sohoa digitise` run of the sample (bc_03 is Mật; no batch id)
    cleared = principal.clearance >= 1
    shown = [status_archive.open_batch] + ([status_archive.batch_id, None] if cleared else [])
    assert [r.batch_id for r in status.runs] == shown
    assert [r.name for r in status.runs if r.batch_id is None] == (["batch"] if cleared else [])
    for run in status.runs:
        assert run.pages > 0 and run.pages_per_minute > 0
    assert status.fixity is not None and status.backup is not None
    assert status.fixity.documents_checked == expected["documents"] and status.fixity.problems == 0
    assert status.backup.problems == 0 and status.backup.target.endswith("sao-luu/objects")
    top = principal.clearance >= 3
    assert (status.fixity.objects_checked is not None) == top and (status.backup.objects_copied is not None) == top


def test_the_clearance_changes_the_figures(status_archive: StatusArchive) -> None:
    """The archive holds three Mật documents (bc_03, the Mật copy, nq_01 raised): a reader without clearance gets
    fewer documents and pages, and the open copy whose possible duplicates are all Mật is no backlog of theirs."""
    none, mat = (archive_status(status_archive.settings, _principal(n)) for n in ("arch0", "arch1"))
    assert none.documents == mat.documents - 3
    assert none.pages_last_nights < mat.pages_last_nights
    rows = {str(r["id"]): r for r in _rows(status_archive.root)}
    copy = next(r for r in rows.values() if r["classification"] is None and any(
        x["code"] == "duplicate_of" for x in r["reasons"]))  # type: ignore[attr-defined]
    others = {str(x["params"]["document_id"]) for x in copy["reasons"] if x["code"] == "duplicate_of"}  # type: ignore[attr-defined]
    assert others and all(rows[o]["classification"] == "Mật" for o in others)
    assert "duplicate_of" not in {r.code for r in none.review_reasons}
    assert "duplicate_of" in {r.code for r in mat.review_reasons}


def test_staff_gets_no_status(status_archive: StatusArchive) -> None:
    with pytest.raises(ConfigError):
        archive_status(status_archive.settings, _principal("nhanvien"))


def _status_json(root: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["status", "--archive", str(root), "--json", *extra])
    out = capsys.readouterr().out
    return code, (json.loads(out) if code == 0 else {})


def test_cli_json_shape_exit_codes_and_as(status_archive: StatusArchive, capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    root = status_archive.root
    code, data = _status_json(root, capsys=capsys)
    assert code == 0
    assert set(data) == {"generated_at", "timezone", "documents", "nights", "pages_last_nights", "review_backlog",
                         "review_reasons", "failures", "failure_reasons", "held", "held_reasons", "runs", "fixity",
                         "backup"}
    nights = data["nights"]
    assert isinstance(nights, list) and len(nights) == NIGHTS
    assert set(nights[0]) == {"night", "pages", "documents"}
    reasons = data["failure_reasons"]
    assert isinstance(reasons, list) and reasons
    assert all(set(r) == {"code", "documents", "label"} and r["label"] == CODE_LABELS[ReasonCode(r["code"])]
               for r in reasons)
    code, restricted = _status_json(root, "--as", "arch0", capsys=capsys)
    assert code == 0
    expected = archive_status(status_archive.settings, _principal("arch0")).model_dump(mode="json")
    for key in ("documents", "pages_last_nights", "review_backlog", "failures", "runs"):
        assert restricted[key] == expected[key], key
    assert restricted["documents"] != data["documents"]
    assert _status_json(root, "--as", "nhanvien", capsys=capsys)[0] == 4  # staff
    assert _status_json(root, "--as", "khong-co-ai", capsys=capsys)[0] == 4  # no such account
    assert _status_json(tmp_path / "khong-co-kho", capsys=capsys)[0] == 6  # no archive
    assert not (tmp_path / "khong-co-kho").exists()
    capsys.readouterr()
    assert main(["status", "--archive", str(root)]) == 0
    text = capsys.readouterr().out
    assert "Cần soát xét" in text and "Sao lưu gần nhất" in text and "Kiểm tra toàn vẹn gần nhất" in text
    from flows.audit import open_audit

    log = open_audit(status_archive.settings)
    try:
        viewed = {(e.actor, e.action) for e in log.entries()}
        assert {("arch0", "status.view"), ("nhanvien", "status.view")} <= viewed  # a refused attempt too
    finally:
        log.close()


def test_backup_log_keeps_the_latest_run(status_archive: StatusArchive, tmp_path: Path) -> None:
    from flows.backup_log import BACKUP_LOG, last_backup

    lines = (status_archive.root / BACKUP_LOG).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    entry = last_backup(status_archive.root)
    assert entry is not None and entry.objects_copied > 0 and entry.problem_documents == []
    copy = tmp_path / "a"
    copy.mkdir()
    (copy / BACKUP_LOG).write_text(lines[0] + "\nkhông phải JSON\n" + lines[0].replace(
        entry.finished_at, "2999-01-01T00:00:00+00:00") + "\n", encoding="utf-8")
    latest = last_backup(copy)
    assert latest is not None and latest.finished_at.startswith("2999")


def test_catalog_rows_without_a_digitised_time_fall_back(status_archive: StatusArchive, tmp_path: Path) -> None:
    """A catalog written before the ``digitised_at`` column: its rows count at the time they were catalogued."""
    root = tmp_path / "a"
    shutil.copytree(status_archive.root, root)
    with sqlite3.connect(root / "catalog.sqlite") as conn:
        conn.execute("UPDATE documents SET digitised_at = NULL, updated_at = '2000-01-01T00:00:00+00:00' "
                     "WHERE json_extract(metadata, '$.classification') IS NULL")
    status = archive_status(Settings(archive=root), _principal("arch0"))
    assert status.documents > 0 and status.pages_last_nights == 0  # every open document is dated 2000 now


def _login(app: object, name: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token.group(1)})
    return client


def _figure(page: str, fid: str) -> int:
    found = re.search(rf'id="{fid}"><strong>(\d+)</strong>', page)
    assert found, fid
    return int(found.group(1))


def test_dashboard_page_roles_and_figures(status_archive: StatusArchive) -> None:
    app = create_app(status_archive.settings, WebSettings())
    staff = _login(app, "nhanvien")
    answer = staff.get("/dashboard")
    assert answer.status_code == 403 and 'href="/dashboard"' not in staff.get("/search").text
    anonymous = TestClient(app).get("/dashboard", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    for name in ("arch0", "arch1"):
        client = _login(app, name)
        assert 'href="/dashboard"' in client.get("/search").text
        page = client.get("/dashboard")
        assert page.status_code == 200
        status = archive_status(status_archive.settings, _principal(name))
        assert len(re.findall(r'<rect class="bar', page.text)) == NIGHTS
        assert sum(int(p) for p in re.findall(r'data-pages="(\d+)"', page.text)) == status.pages_last_nights
        assert _figure(page.text, "fig-documents") == status.documents
        assert _figure(page.text, "fig-review") == status.review_backlog
        assert _figure(page.text, "fig-failures") == status.failures
        listed = {r.batch_id for r in status.runs}
        assert status_archive.open_batch in listed
        for batch_id in (status_archive.batch_id, status_archive.open_batch):
            assert (f'href="/batches/{batch_id}"' in page.text) == (batch_id in listed), (name, batch_id)
        for reason in status.failure_reasons:
            assert CODE_LABELS[ReasonCode(reason.code)] in page.text


def test_dashboard_in_chromium_fits_desktop_and_phone(status_archive: StatusArchive) -> None:
    """The dashboard reached from the header link, at 1366 px and on a 390-px phone: the SVG chart with one bar
    per night, tonight's bar drawn, the page fits (no horizontal scroll, controls inside, no text under 12 px),
    nothing requested outside the app. Screenshots ``dashboard-1366.png``, ``dashboard-390.png``."""
    from tests.test_web_browser import CHROMIUM, CHROMIUM_FLAGS, SCREENS, _require_browser, serving

    sync_api = _require_browser()
    with serving(create_app(status_archive.settings, WebSettings())) as base:
        playwright = sync_api.sync_playwright().start()
        try:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
            try:
                for screen, options in SCREENS.items():
                    _check_screen(browser, base, screen, options)
            finally:
                browser.close()
        finally:
            playwright.stop()


def _check_screen(browser: Any, base: str, screen: str, options: dict[str, Any]) -> None:
    from tests.test_web_browser import artifacts_dir, check_fits, log_in

    outside: list[str] = []
    errors: list[str] = []
    width = int(options["viewport"]["width"])
    context = browser.new_context(locale="vi-VN", **options)
    try:
        page = context.new_page()
        page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base}/login")
        log_in(page, base, "arch1", PASSWORD)
        page.click("nav >> text=Vận hành")
        page.wait_for_url(f"{base}/dashboard")
        bars = page.locator("svg#nights-chart rect.bar")
        assert bars.count() == NIGHTS
        check_fits(page, width, ["svg#nights-chart", "#fig-documents", "#fig-review", "#runs a[href^='/batches/']",
                                 "#failure-reasons td", "#fixity", "#backup"],
                   artifacts_dir() / f"dashboard-{screen}.png")
        chart = page.locator("svg#nights-chart").bounding_box()
        assert chart and chart["width"] > width * 0.6 and chart["height"] > 100
        pages = [int(bars.nth(i).get_attribute("data-pages")) for i in range(NIGHTS)]
        assert pages[0] == 0 and sum(pages) > 0  # nothing 30 nights ago; the archive's pages are recent
        tallest = bars.nth(pages.index(max(pages))).bounding_box()
        assert tallest and tallest["height"] > 0.8 * chart["height"]  # the busiest night fills the chart
        assert errors == []
    finally:
        context.close()
    assert outside == [], f"the browser left the app: {outside}"


def test_a_sampled_audit_gives_its_size_to_the_top_clearance_only(status_archive: StatusArchive,
                                                                  tmp_path: Path) -> None:
    """N documents sampled against the N' a reader sees of them would count the hidden ones in the sample."""
    root = tmp_path / "a"
    shutil.copytree(status_archive.root, root)
    assert main(["verify", "--sample", "3", "--archive", str(root)]) == 0
    settings = Settings(archive=root)
    operator, none = archive_status(settings, local_operator("op")), archive_status(settings, _principal("arch0"))
    assert operator.fixity is not None and none.fixity is not None
    assert operator.fixity.sampled and operator.fixity.sample == 3 and operator.fixity.documents_checked == 3
    assert none.fixity.sampled and none.fixity.sample is None and none.fixity.documents_checked <= 3
