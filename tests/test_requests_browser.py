"""Access requests in a real browser (headless Chromium via Playwright, ``tests.test_web_browser``'s helpers)
against a real uvicorn server over a copy of the digitised sample archive (its Mật document ``bc_03.pdf``).

At 1366 px and on a 390-px phone: a staff member without clearance fills in the request form, gets the
confirmation, sees the request pending on their own list; an archivist cleared for Mật sees it on the approvers'
list with the resolved document and grants it; the requester's list then offers the document, which opens.
Every page must fit (``check_fits``); full-page screenshots ``request-<screen>.png``, ``request-sent-<screen>.png``,
``requests-own-<screen>.png``, ``requests-approve-<screen>.png``, ``requests-granted-<screen>.png``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from schemas.settings import Settings
from tests.conftest import DigitisedArchive
from tests.test_web_browser import (
    SCREENS,
    LiveServer,
    _require_browser,
    artifacts_dir,
    check_fits,
    launched_chromium,
    log_in,
    serving,
)

PASSWORD = "mat-khau-yeu-cau-khai-thac"


@pytest.fixture(scope="module")
def server(digitised: DigitisedArchive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    _require_browser()
    root = tmp_path_factory.mktemp("requests-browser") / "archive"
    shutil.copytree(digitised.archive, root)
    settings = Settings(archive=root)
    for screen in SCREENS:  # one requester per screen: a grant made at one width must not open it at the other
        add_user(settings, f"nhanvien{screen}", PASSWORD, "staff", clearance=0)
    add_user(settings, "pheduyet", PASSWORD, "archivist", clearance=1)
    report = digitised.report["documents"]
    assert isinstance(report, list)
    with serving(create_app(settings, WebSettings()), "uvicorn-requests") as url:
        yield LiveServer(url=url, ids={str(d["source"]): str(d["id"]) for d in report if d["id"]})


@pytest.fixture(scope="module")
def browser(server: LiveServer) -> Iterator[Any]:
    with launched_chromium() as chromium:
        yield chromium


@pytest.mark.parametrize("screen", list(SCREENS))
def test_request_form_and_lists_fit_and_work(server: LiveServer, browser: Any, screen: str) -> None:
    shots, base = artifacts_dir(), server.url
    width = int(SCREENS[screen]["viewport"]["width"])
    secret = server.ids["bc_03.pdf"]
    purpose = f"Đối chiếu khi soạn báo cáo ({screen})"
    requester = browser.new_context(locale="vi-VN", **SCREENS[screen])
    approver = browser.new_context(locale="vi-VN", **SCREENS[screen])
    try:
        page = requester.new_page()
        page.goto(f"{base}/login")
        log_in(page, base, f"nhanvien{screen}", PASSWORD)
        assert page.request.get(f"{base}/documents/{secret}").status == 404
        page.goto(f"{base}/requests/new")
        check_fits(page, width, ["#reference", "#doc_ref", "#purpose", "#request-form button[type=submit]"],
                   shots / f"request-{screen}.png")
        page.fill("#reference", "Công văn được dẫn chiếu trong báo cáo")
        page.fill("#doc_ref", secret)
        page.fill("#purpose", purpose)
        page.click("#request-form button[type=submit]")
        page.wait_for_url(f"{base}/requests/sent")
        check_fits(page, width, ["#request-sent", "a[href='/requests']"], shots / f"request-sent-{screen}.png")
        page.goto(f"{base}/requests")
        row = page.locator("#own-requests tr", has_text=purpose)
        assert "Đang chờ phê duyệt" in row.inner_text()
        check_fits(page, width, ["#own-requests td"], shots / f"requests-own-{screen}.png")

        other = approver.new_page()
        other.goto(f"{base}/login")
        log_in(other, base, "pheduyet", PASSWORD)
        other.goto(f"{base}/requests/approve")
        item = other.locator("#pending-requests tr", has_text=purpose)
        assert item.locator(f"input[name=doc_id][value='{secret}']").count() == 1
        check_fits(other, width, ["#pending-requests form.grant button", "#pending-requests input[name=days]",
                                  "#pending-requests form.refuse input[name=reason]"],
                   shots / f"requests-approve-{screen}.png")
        item.locator("form.grant button[type=submit]").click()
        other.wait_for_selector("p.notice")
        assert f"Đã cho phép nhanvien{screen}" in other.locator("p.notice").inner_text()

        page.goto(f"{base}/requests")
        row = page.locator("#own-requests tr", has_text=purpose)
        assert "Đã cho phép" in row.inner_text()
        check_fits(page, width, ["#own-requests td a[href^='/documents/']"], shots / f"requests-granted-{screen}.png")
        row.locator("a[href^='/documents/']").click()
        page.wait_for_url(f"{base}/documents/{secret}")
        assert page.locator("#granted-note").is_visible()
    finally:
        requester.close()
        approver.close()
