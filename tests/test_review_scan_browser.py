"""Review beside the scan in a real browser (headless Chromium via Playwright, as ``tests/test_web_browser.py``):
the review form with its evidence crops, doubtful lines and the scan at 1366 px and on a 390-px phone
(``review-beside-1366.png``, ``review-beside-390.png``), a keyboard-only walk through one document, and the
walk-through of a whole review queue before (the old form, with the mouse) and after (the keys), whose counts are
printed and written to ``review-walk.json`` (wall time printed, never asserted).

Skipped on a developer machine without Chromium or Playwright; in CI their absence is a failure.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from schemas.settings import Settings
from tests import test_web_browser as web_browser
from tests.conftest import DigitisedArchive
from tests.test_web_browser import PASSWORD, SCREENS, LiveServer, artifacts_dir, check_fits, log_in, serving

live_server = web_browser.live_server  # the same fixtures, for this module: a server over its own archive copy
chromium = web_browser.chromium

# every image of the page loaded (lazy ones made eager first): the crops are really served
_LOAD_IMAGES_JS = """() => { for (const i of document.images) i.loading = 'eager'; }"""
_IMAGES_DONE_JS = """() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"""


def _load_images(page: Any) -> None:
    page.evaluate(_LOAD_IMAGES_JS)
    page.wait_for_function(_IMAGES_DONE_JS)


def _queue(page: Any, base: str) -> list[str]:
    page.goto(f"{base}/review")
    hrefs = page.eval_on_selector_all("table.queue td[data-label='Văn bản'] a", "els => els.map(e => e.pathname)")
    return [h.rsplit("/", 1)[1] for h in hrefs]


@pytest.mark.parametrize("screen", list(SCREENS))
def test_review_beside_the_scan_fits_desktop_and_phone(live_server: LiveServer, chromium: Any, screen: str) -> None:
    base, width = live_server.url, int(SCREENS[screen]["viewport"]["width"])
    errors: list[str] = []
    outside: list[str] = []
    context = chromium.new_context(locale="vi-VN", **SCREENS[screen])
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))
        page.goto(f"{base}/login")
        log_in(page, base, "luutru", PASSWORD)
        doc_id = live_server.ids["bc_03.pdf"]
        page.goto(f"{base}/review/{doc_id}")
        _load_images(page)
        assert page.locator(".edit-form img.evidence").count() >= 4
        assert page.locator(".doubtful input.line-text").count() >= 1
        check_fits(page, width, ["#field-code_number img.evidence", "input[name=md_code_number]",
                                 ".doubtful img.line-crop", ".doubtful input.line-text", ".line-form button",
                                 ".review-scan img", "#next-doc", "form.edit-form button[type=submit]",
                                 "#review-keys summary"],
                   artifacts_dir() / f"review-beside-{screen}.png")
        form, scan = page.locator(".review-main").bounding_box(), page.locator(".review-scan").bounding_box()
        assert form and scan
        if width >= 1200:  # the scan beside the form; on a phone below it
            assert scan["x"] >= form["x"] + form["width"] - 1 and scan["y"] < form["y"] + form["height"]
        else:
            assert scan["y"] >= form["y"] + form["height"] - 1
        assert errors == []
    finally:
        context.close()
    assert outside == []


def test_keyboard_only_walk_through_one_document(live_server: LiveServer, chromium: Any) -> None:
    """No mouse from the queue on: n opens the first document, j/k step through the fields (the current one is
    marked), Enter accepts a field, a doubtful line is corrected and saved with Enter, a accepts the document (saved
    as reviewed) and opens the next one."""
    base = live_server.url
    errors: list[str] = []
    context = chromium.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN")
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{base}/login")
        log_in(page, base, "luutru", PASSWORD)
        queue = _queue(page, base)
        assert queue
        keys = page.keyboard
        keys.press("n")
        page.wait_for_url(f"{base}/review/{queue[0]}")
        doc_id = queue[0]
        focused = "document.activeElement.name"
        keys.press("j")
        assert page.evaluate(focused) == "md_code_number"
        assert page.locator("#field-code_number.current").count() == 1
        keys.press("Enter")  # accept the field as read: on to the next
        assert page.evaluate(focused) == "md_code_notation"
        keys.press("Escape")
        keys.press("k")  # from outside a field: the last one (the least sure line of the list, or the last field)
        if page.locator(".doubtful input.line-text").count():
            assert page.evaluate("document.activeElement.classList.contains('line-text')")
            keys.press("k")
            keys.press("j")  # back and forth: the same line again
            line = page.evaluate("document.activeElement.closest('li').id")
            keys.press("Control+a")
            keys.type("Dòng sửa bằng bàn phím")
            keys.press("Enter")  # a changed line: saved
            page.wait_for_url(f"{base}/review/{doc_id}?saved=1*")
            assert page.locator(f"#{line} input.line-text").input_value() == "Dòng sửa bằng bàn phím"
            assert "Dòng sửa bằng bàn phím" in page.inner_text("table.history")
        keys.press("a")  # accept the document: saved as reviewed, then the next one
        page.wait_for_url(lambda url: url != f"{base}/review/{doc_id}" and "saved" not in url)
        rest = _queue(page, base)
        assert doc_id not in rest and rest == queue[1:]
        page.goto(f"{base}/documents/{doc_id}")
        assert "Đã soát xét" in page.inner_text("#history")
        assert errors == []
    finally:
        context.close()


@contextmanager
def serve_copy(source: Path, root: Path) -> Iterator[str]:
    """A uvicorn server on 127.0.0.1 over a fresh copy of the digitised archive ``source`` (copied to ``root``),
    with an archivist ``doan`` cleared for every level."""
    shutil.copytree(source, root, ignore=shutil.ignore_patterns("web.sqlite3*"))
    settings = Settings(archive=root)
    add_user(settings, "doan", PASSWORD, "archivist", clearance=3)
    with serving(create_app(settings, WebSettings())) as url:
        yield url


def _walk_before(page: Any, base: str, counts: dict[str, int]) -> None:
    """The old form, with the mouse: open the document from the queue, open its scan (the document page) and come
    back, tick "reviewed", save, back to the queue."""
    page.click("table.queue td[data-label='Văn bản'] a")
    page.wait_for_url(f"{base}/review/*")
    page.click(".crumbs a[href^='/documents/']")
    page.wait_for_url(f"{base}/documents/*")
    page.go_back()
    page.check("input[name=reviewed]")
    page.click("form.edit-form button[type=submit]")
    page.wait_for_url("**saved=*")
    page.click("nav >> text=Soát xét")
    page.wait_for_url(f"{base}/review")
    counts["clicks"] += 6
    counts["page_loads"] += 5
    counts["steps"] += 6


def _walk_after(page: Any, base: str, counts: dict[str, int]) -> None:
    """The keys, beside the scan: j through every field (its crop beside it), Esc to leave the last one, a to
    accept and open the next document."""
    current = page.url
    fields = page.locator(".edit-form .kf").count()
    for _ in range(fields):
        page.keyboard.press("j")
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    page.wait_for_url(lambda url: url != current)
    counts["keys"] += fields + 2
    counts["page_loads"] += 1
    counts["steps"] += fields + 2


def walk_queue(browser: Any, source: Path, root: Path, how: str) -> dict[str, float]:
    """Walk the whole review queue of a copy of ``source`` the old way (``how="before"``: the mouse) or the new
    (``"after"``: the keys); the counts per document and the wall time (a measurement, never asserted)."""
    counts = {"documents": 0, "clicks": 0, "keys": 0, "page_loads": 0, "steps": 0}
    with serve_copy(source, root) as base:
        context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="vi-VN")
        try:
            page = context.new_page()
            page.goto(f"{base}/login")
            log_in(page, base, "doan", PASSWORD)
            queue = _queue(page, base)
            assert queue, "the review queue is empty"
            started = time.perf_counter()
            if how == "after":
                page.keyboard.press("n")
                page.wait_for_url(f"{base}/review/{queue[0]}")
                counts["keys"] += 1
                counts["steps"] += 1
            for _ in queue:
                (_walk_before if how == "before" else _walk_after)(page, base, counts)
                counts["documents"] += 1
            elapsed = time.perf_counter() - started
            assert _queue(page, base) == []  # every document of the queue reviewed
        finally:
            context.close()
    n = counts["documents"]
    return {**counts, "actions_per_document": round((counts["clicks"] + counts["keys"]) / n, 2),
            "mouse_clicks_per_document": round(counts["clicks"] / n, 2),
            "page_loads_per_document": round(counts["page_loads"] / n, 2),
            "seconds_per_document": round(elapsed / n, 3)}


def report_walk(results: dict[str, dict[str, float]], where: str) -> None:
    print(f"\nreview queue walk ({where}):")
    for name, row in results.items():
        print(f"  {name:6} documents={row['documents']} actions/doc={row['actions_per_document']} "
              f"mouse clicks/doc={row['mouse_clicks_per_document']} page loads/doc={row['page_loads_per_document']} "
              f"scripted steps={row['steps']} wall s/doc={row['seconds_per_document']}")


def test_review_queue_walk_before_and_after(digitised: DigitisedArchive, chromium: Any, tmp_path: Path) -> None:
    """The same review queue walked twice on fresh copies: the old way and the new; the numbers are printed."""
    results = {how: walk_queue(chromium, digitised.archive, tmp_path / how / "archive", how)
               for how in ("before", "after")}
    report_walk(results, "sample archive")
    (artifacts_dir() / "review-walk.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    assert results["after"]["mouse_clicks_per_document"] == 0  # the new walk never needs the mouse
    assert results["before"]["documents"] == results["after"]["documents"]
