"""Hits on the scan in a real browser (issue 22, part 2): headless Chromium (``/usr/bin/chromium`` through
Playwright) against a real uvicorn server over a copy of the digitised sample archive, at 1366 px and on a 390-px
phone.

Searches without diacritics, opens the first hit, and checks that the boxes are drawn over the page image where
the hOCR words are (each box's rect inside the image's rect, at its percentage of the image), that they stay
aligned after zooming, and that "Kết quả tiếp" / "Kết quả trước" step through every hit, on to the second page
and back. The page must fit the screen (``test_web_browser.check_fits``); full-page screenshots ``hits-1366.png``
and ``hits-390.png`` go to the artifacts dir. Skipped without Chromium/Playwright, a failure in CI.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests import test_web_browser as web
from tests.test_web_browser import SCREENS, LiveServer, artifacts_dir, check_fits, log_in

live_server = web.live_server  # the module's own server over its own copy of the sample archive
chromium = web.chromium

QUERY = "ke hoach chuyen doi so"

# Each hit box's rect and the image's rect, and the box's percentages as drawn.
_BOXES_JS = """() => {
  const img = document.getElementById('page-image').getBoundingClientRect();
  return {image: {x: img.x, y: img.y, width: img.width, height: img.height},
          boxes: [...document.querySelectorAll('rect.hit-box')].map(r => {
            const b = r.getBoundingClientRect();
            return {id: r.id, current: r.classList.contains('current'), x: b.x, y: b.y, width: b.width,
                    height: b.height, px: parseFloat(r.getAttribute('x')), py: parseFloat(r.getAttribute('y'))};
          })};
}"""


def check_boxes(page: Any) -> dict[str, Any]:
    """The hit boxes are visible over the page image, each inside it at its percentage; returns the layout."""
    page.wait_for_function("document.getElementById('page-image').complete "
                           "&& document.getElementById('page-image').naturalWidth > 0")
    layout = page.evaluate(_BOXES_JS)
    image, boxes = layout["image"], layout["boxes"]
    assert boxes, "no hit box drawn"
    assert image["width"] > 100 and image["height"] > 100
    for box in boxes:
        assert box["width"] > 0 and box["height"] > 0, box
        assert image["x"] - 1 <= box["x"] and box["x"] + box["width"] <= image["x"] + image["width"] + 1, box
        assert image["y"] - 1 <= box["y"] and box["y"] + box["height"] <= image["y"] + image["height"] + 1, box
        # where the hOCR puts the word, in percent of the page = of the image
        assert abs(box["x"] - image["x"] - box["px"] * image["width"] / 100) <= 1.5, box
        assert abs(box["y"] - image["y"] - box["py"] * image["height"] / 100) <= 1.5, box
    assert sum(b["current"] for b in boxes) == 1
    assert page.locator("rect.hit-box.current").first.is_visible()
    return layout


def _position(page: Any) -> tuple[int, int]:
    m = re.fullmatch(r"Kết quả (\d+)/(\d+)", page.inner_text("#hit-pos").strip())
    assert m, page.inner_text("#hit-pos")
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("screen", list(SCREENS))
def test_hits_on_the_scan_in_chromium(live_server: LiveServer, chromium: Any, screen: str) -> None:
    base = live_server.url
    width = int(SCREENS[screen]["viewport"]["width"])
    doc_id = live_server.ids["kh_02.tif"]
    outside: list[str] = []
    errors: list[str] = []
    context = chromium.new_context(locale="vi-VN", **SCREENS[screen])
    try:
        page = context.new_page()
        page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base}/search")
        log_in(page, base, web.ADMIN, web.ADMIN_PASSWORD)

        # search without diacritics, open the first hit: its page with the first hit, the boxes over the image
        page.fill("input[name=q]", QUERY)
        page.press("input[name=q]", "Enter")
        page.wait_for_url("**/search?q=ke+hoach+chuyen+doi+so*")
        page.locator(".hit a.title").first.click()
        page.wait_for_url(f"{base}/documents/{doc_id}?q=*")
        assert "Trang 1/2" in page.inner_text(".toolbar")
        first = check_boxes(page)
        number, total = _position(page)
        assert number == 1 and total > len(first["boxes"])  # more hits on page 2
        check_fits(page, width, ["#page-image", "#hit-next", "#hit-pos", "rect.hit-box.current", ".page-list"],
                   artifacts_dir() / f"hits-{screen}.png")

        # zoom: the boxes stay on their words
        page.click("button[data-zoom=in]")
        zoomed = check_boxes(page)
        assert zoomed["image"]["width"] > first["image"]["width"] * 1.2
        page.click("button[data-zoom=fit]")

        # "Kết quả tiếp" through every hit of page 1 (within the page: no reload), on to page 2 (a new page)
        on_page_one = len(first["boxes"])
        page.evaluate("window.__samePage = true")
        for expected in range(2, on_page_one + 2):
            page.click("#hit-next")
            page.wait_for_load_state("load")
            assert _position(page) == (expected, total)
            layout = check_boxes(page)
            current = next(b for b in layout["boxes"] if b["current"])
            if expected <= on_page_one:
                assert f"page=1&hit={expected}#hit-{expected}" in page.url and current["id"] == f"hit-{expected}"
                assert page.evaluate("window.__samePage === true")  # stepped without reloading the page
            else:
                assert "page=2" in page.url and "Trang 2/2" in page.inner_text(".toolbar")
                assert current["id"] == "hit-1"
                assert page.evaluate("window.__samePage === undefined")  # the next page with hits was loaded
        assert page.locator("#hit-next[href]").count() == 0  # the last hit: nothing after it
        page.screenshot(path=str(artifacts_dir() / f"hits-page2-{screen}.png"), full_page=True)

        # "Kết quả trước" back to the last hit of page 1
        page.click("#hit-prev")
        page.wait_for_load_state("load")
        assert "page=1" in page.url and _position(page) == (on_page_one, total)
        assert next(b for b in check_boxes(page)["boxes"] if b["current"])["id"] == f"hit-{on_page_one}"
        assert errors == []
    finally:
        context.close()
    assert outside == [], f"the browser left the app: {outside}"


def test_hit_links_work_without_javascript(live_server: LiveServer, chromium: Any) -> None:
    """Without JavaScript the boxes are there (drawn by the server) and each link loads the page at the hit."""
    base, doc_id = live_server.url, live_server.ids["kh_02.tif"]
    context = chromium.new_context(locale="vi-VN", java_script_enabled=False, **SCREENS["390"])
    try:
        page = context.new_page()
        page.goto(f"{base}/search")
        log_in(page, base, web.ADMIN, web.ADMIN_PASSWORD)
        page.goto(f"{base}/documents/{doc_id}?q=ke+hoach+chuyen+doi+so")
        assert page.locator("rect.hit-box").count() > 2 and page.locator("#hit-1.current").count() == 1
        page.click("#hit-next")
        page.wait_for_url("**page=1&hit=2#hit-2")
        assert page.locator("#hit-2.current").count() == 1 and _position(page)[0] == 2
        page.click("#hit-prev")
        page.wait_for_url("**page=1&hit=1#hit-1")
        assert page.locator("#hit-1.current").count() == 1 and page.locator("#hit-prev[href]").count() == 0
    finally:
        context.close()
