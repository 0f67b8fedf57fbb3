"""Time the cross-reference work of one document page (``flows.citations``): resolving the citations of the
Báo cáo 23-BC/TU and listing the citers of the Nghị quyết 15-NQ/TU, at clearance 0 and 1, on the cross-reference
batch (``tests/fixtures/generate_xref.py``) digitised into ARCHIVE with its report REPORT:

    .venv/bin/python -c "from pathlib import Path; from tests.fixtures.generate_xref import write_batch; \\
        write_batch(Path('/tmp/xref/batch'))"
    .venv/bin/sohoa digitise /tmp/xref/batch --archive /tmp/xref/a --report /tmp/xref/r.json --quiet
    .venv/bin/python tests/bench/bench_xref.py /tmp/xref/a /tmp/xref/r.json
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from flows.access import Principal, local_operator
from flows.citations import cited_by, find_citations, resolve
from flows.review import load_document
from flows.wiring import build_object_store
from schemas.settings import Settings

RUNS = 50


def main(argv: list[str]) -> int:
    archive, report = Path(argv[1]), Path(argv[2])
    ids = {Path(d["source"]).stem: d["id"] for d in json.loads(report.read_text(encoding="utf-8"))["documents"]}
    settings = Settings(archive=archive)
    store = build_object_store(settings)
    citing = load_document(settings, store, ids["bc23"], local_operator("bench")).manifest
    cited = load_document(settings, store, ids["nq15"], local_operator("bench")).manifest
    citations = find_citations(citing.pages[0].text)
    for level in (0, 1):
        reader = Principal("bench", "staff", level)
        resolving, listing = [], []
        for _ in range(RUNS):
            start = time.perf_counter()
            resolve(settings, citations, level)
            resolving.append(time.perf_counter() - start)
            start = time.perf_counter()
            cited_by(settings, store, cited, reader)
            listing.append(time.perf_counter() - start)
        print(f"clearance {level}: resolve {len(citations)} citations p50 {statistics.median(resolving) * 1000:.1f} ms,"
              f" cited_by p50 {statistics.median(listing) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
