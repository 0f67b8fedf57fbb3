"""Cross-references in a real browser (headless Chromium, as ``test_web_browser``) on a 1366-px screen and a 390-px
phone, over a live server on the digitised cross-reference batch: the citation in the Báo cáo's page text is a
visible link that leads to the cited Nghị quyết, whose "Được trích dẫn bởi" lists the Báo cáo and leads back.
Both pages must fit the screen (``test_web_browser.check_fits``); screenshots ``xref-1366.png``, ``xref-390.png``
(the citing page) and ``xref-cited-by-*.png`` (the cited one) go to the artifacts dir."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from interfaces.web import create_app
from interfaces.web.config import WebSettings
from tests.conftest import XrefArchive
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
from tests.test_xref_web import PASSWORD, copy_with_users


@pytest.fixture(scope="module")
def xref_server(xref_archive: XrefArchive, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    _require_browser()
    settings = copy_with_users(xref_archive.archive, tmp_path_factory.mktemp("xref-browser") / "archive")
    with serving(create_app(settings, WebSettings()), "uvicorn-xref") as url:
        yield LiveServer(url=url, ids=xref_archive.ids)


@pytest.fixture(scope="module")
def browser(xref_server: LiveServer) -> Iterator[Any]:
    with launched_chromium() as chromium:
        yield chromium


@pytest.mark.parametrize("screen", list(SCREENS))
def test_citation_link_leads_to_the_cited_document(xref_server: LiveServer, browser: Any, screen: str) -> None:
    base, ids = xref_server.url, xref_server.ids
    width = int(SCREENS[screen]["viewport"]["width"])
    shots = artifacts_dir()
    outside: list[str] = []
    errors: list[str] = []
    context = browser.new_context(locale="vi-VN", **SCREENS[screen])
    try:
        page = context.new_page()
        page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base}/login")
        log_in(page, base, "doc0", PASSWORD)

        page.goto(f"{base}/documents/{ids['bc23']}")
        link = page.locator("#page-text a.citation[data-cite=document]")
        assert link.count() == 1  # the dated 15-NQ/TU; the Mật 91-KH/TU and the missing 92-KH/TU are plain text
        assert " ".join(link.inner_text().split()) == "Nghị quyết số 15-NQ/TU ngày 12/3/2021"
        assert page.locator("#page-text a.citation[data-cite=search]").count() == 1
        link.scroll_into_view_if_needed()
        check_fits(page, width, ["#page-text a.citation[data-cite=document]", "#page-text", "#cited-by"],
                   shots / f"xref-{screen}.png")
        link.click()
        page.wait_for_url(f"{base}/documents/{ids['nq15']}")
        assert "cải cách hành chính giai đoạn 2021 - 2025" in page.locator("p.subject").inner_text()
        citer = page.locator(f"#cited-by a[href='/documents/{ids['bc23']}']")
        assert page.locator("#cited-by li").count() == 1 and citer.is_visible()
        citer.scroll_into_view_if_needed()
        check_fits(page, width, ["#cited-by a", "#page-text"], shots / f"xref-cited-by-{screen}.png")
        citer.click()
        page.wait_for_url(f"{base}/documents/{ids['bc23']}")
    finally:
        context.close()
    assert outside == [] and errors == []
