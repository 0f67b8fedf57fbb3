"""Review beside the scan: what an archivist does per document of a review queue, before and after.

    python tests/bench/bench_review_walk.py --archive A [--json OUT]

ARCHIVE holds a digitised batch (e.g. the dev corpus: ``sohoa digitise ../shared/corpus/dev/batch --archive A
--report R``). It is copied twice (never written). Over each copy a uvicorn server on 127.0.0.1 is driven by
Debian's headless Chromium (Playwright) through the WHOLE review queue, as an archivist cleared for every level:

- ``before``: the old form, with the mouse: open the document from the queue, open its scan (the document page,
  the old form had none) and come back, tick "đã soát xét", save, back to the queue (6 clicks, 5 page loads);
- ``after``: the form beside the scan, keys only: ``n`` opens the first document, ``j`` through every field (each
  with its evidence crop beside it), ``Esc``, ``a`` accepts it and opens the next (1 page load).

Printed per walk: documents, actions (clicks + keys) per document, mouse clicks, page loads, scripted steps and
the wall time per document (a measurement on a shared 2-core machine: repeat and compare; never asserted). Neither
walk corrects a value: both only check and accept, so the counts compare the same task. Exit code 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.test_review_scan_browser import report_walk, walk_queue
from tests.test_web_browser import CHROMIUM, CHROMIUM_FLAGS


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, required=True, help="a digitised archive (copied, never written)")
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    args = parser.parse_args()
    if not (args.archive / "catalog.sqlite").exists():
        raise SystemExit(f"{args.archive}: not a digitised archive (no catalog.sqlite)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="review-walk-") as work, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            results = {how: walk_queue(browser, args.archive, Path(work) / how, how) for how in ("before", "after")}
        finally:
            browser.close()
    report_walk(results, str(args.archive))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
