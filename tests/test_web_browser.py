"""The web app in a real browser: headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright) against
a real uvicorn server on 127.0.0.1, over a copy of the digitised sample archive.

Logs in, searches without diacritics, opens a document (page image, zoom, page navigation), downloads its PDF/A,
corrects a field in the review queue and finds the corrected value by search. Every request the browser makes
must go to the app itself (no CDN, no fonts, no telemetry). Screenshots go to ``$SOHOA_TEST_ARTIFACTS`` or
``tests/artifacts/web``.

Skipped on a developer machine without Chromium or Playwright; in CI (``CI`` set) their absence is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flows.web import add_user, create_app
from flows.web.config import WebSettings
from schemas.settings import Settings
from tests.conftest import DigitisedArchive

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--no-first-run", "--disable-dev-shm-usage"]
PASSWORD = "mat-khau-luu-tru-vien"


def _require_browser() -> Any:
    """The Playwright sync API, or a skip (a failure in CI) naming what is missing."""
    missing = []
    sync_api: Any = None
    try:
        from playwright import sync_api
    except ImportError:
        missing.append("the playwright package (pip install playwright; never `playwright install`)")
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if missing:
        reason = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_api


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("SOHOA_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts") / "web"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class LiveServer:
    url: str
    ids: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def live_server(digitised: DigitisedArchive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    _require_browser()
    import uvicorn

    root = tmp_path_factory.mktemp("web-browser") / "archive"
    shutil.copytree(digitised.archive, root)
    settings = Settings(archive=root)
    add_user(settings, "luutru", PASSWORD, "archivist", clearance=1)
    app = create_app(settings, WebSettings())
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    report = digitised.report["documents"]
    assert isinstance(report, list)
    ids = {str(d["source"]): str(d["id"]) for d in report if d["id"]}
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", ids=ids)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_staff_and_archivist_journey_in_chromium(live_server: LiveServer) -> None:
    sync_api = _require_browser()
    shots = artifacts_dir()
    base = live_server.url
    outside: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN",
                                          accept_downloads=True)
            page = context.new_page()
            page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            # log in (the search page sends us to the form and back)
            page.goto(f"{base}/search")
            assert "/login" in page.url
            page.fill("input[name=username]", "luutru")
            page.fill("input[name=password]", PASSWORD)
            page.click("form[action='/login'] button[type=submit]")
            page.wait_for_url(f"{base}/search*")
            page.screenshot(path=str(shots / "01-after-login.png"))

            # search without diacritics
            page.fill("input[name=q]", "ke hoach chuyen doi so")
            page.press("input[name=q]", "Enter")
            page.wait_for_url("**/search?q=ke+hoach+chuyen+doi+so*")
            first = page.locator(".hit").first
            assert "Kế hoạch số 84-KH/TU" in " ".join(first.locator("a.title").inner_text().split())
            assert first.locator(".snippet mark").count() > 0
            assert page.locator(".facets").inner_text().count("Loại văn bản") == 1
            page.screenshot(path=str(shots / "02-search.png"), full_page=True)

            # open the document: page image, OCR text with the query marked, zoom, page navigation
            first.locator("a.title").click()
            doc_id = live_server.ids["kh_02.tif"]
            page.wait_for_url(f"{base}/documents/{doc_id}*")
            image = page.locator("#page-image")
            image.wait_for()
            page.wait_for_function("document.getElementById('page-image').complete")
            assert page.evaluate("document.getElementById('page-image').naturalWidth") > 1000
            assert page.locator("#page-text mark").count() > 0
            assert "Số văn bản" in page.inner_text(".doc-details")
            before = image.bounding_box()
            page.click("button[data-zoom=in]")
            after = image.bounding_box()
            assert before and after and after["width"] > before["width"] * 1.2
            page.screenshot(path=str(shots / "03-document.png"))
            page.click("a[rel=next]")
            page.wait_for_url("**page=2*")
            assert "Trang 2/2" in page.inner_text(".toolbar")
            page.wait_for_function("document.getElementById('page-image').naturalWidth > 0")

            # download the PDF/A
            with page.expect_download() as download_info:
                page.click("#download-pdf")
            download = download_info.value
            pdf = Path(download.path()).read_bytes()
            assert pdf.startswith(b"%PDF")
            (shots / "downloaded.pdf").write_bytes(pdf)

            # correct a field in the review queue
            page.click("nav >> text=Soát xét")
            page.wait_for_url(f"{base}/review")
            page.screenshot(path=str(shots / "04-review-queue.png"), full_page=True)
            secret_id = live_server.ids["bc_03.pdf"]
            page.click(f"a[href='/review/{secret_id}']")
            page.wait_for_url(f"{base}/review/{secret_id}")
            page.fill("textarea[name=md_subject]", "kết quả rà soát quy hoạch cán bộ nữ huyện Hòa Vang")
            page.check("input[name=reviewed]")
            page.click("form.edit-form button[type=submit]")
            page.wait_for_url(f"{base}/review/{secret_id}?saved=2")
            assert "Đã lưu 2 thay đổi" in page.inner_text("main")
            assert "Hòa Vang" in page.inner_text("table.history")
            page.screenshot(path=str(shots / "05-corrected.png"), full_page=True)

            # ... and find the corrected value by search, without diacritics
            page.goto(f"{base}/search?q=huyen+hoa+vang")
            hits = page.locator(".hit")
            assert hits.count() == 1
            assert "Hòa Vang" in hits.first.inner_text()
            page.screenshot(path=str(shots / "06-search-corrected.png"), full_page=True)
            assert errors == []
        finally:
            browser.close()
    assert outside == [], f"the browser left the app: {outside}"
