"""Web app latency on the development corpus: the search page and the document page, server time.

    python tests/bench/bench_web.py [--archive A] [--rounds 3] [--queries tests/eval/search_queries.json]
                                    [--batch ../shared/corpus/dev/batch] [--json OUT]

ARCHIVE holds the dev corpus digitised with ``sohoa digitise ../shared/corpus/dev/batch --archive A --report R``;
it is copied into a temporary folder first (the app writes ``web.sqlite3`` and the audit trail into its archive),
so the original is never touched. Without ``--archive`` the batch is digitised into a temporary folder (~2 min).

The app (``interfaces.web.create_app``) runs in this process behind FastAPI's TestClient, logged in as an archivist
cleared for every level. Each query of ``search_queries.json`` (86: accented, unaccented, phrase, number, name,
filter) goes through ``GET /search?q=...`` exactly as the search form sends it, filters as the facet links do
(``type``, ``year``, ``organ``, ``classification``, ``batch``; a date range within one year becomes ``year``,
a wider one is dropped: the page has no date-range filter); the page computes its facets every time. Then the
document page of each query's first hit is opened the way a click on the hit does (``/documents/ID?q=...``).
One warm-up round, then ``--rounds`` measured rounds.

Two times per request:
- ``app``: from the moment the ASGI app is called until it has sent the last byte of its answer (a plain ASGI
  wrapper around the app, outside it: the app's code is unchanged) — the server time;
- ``client``: around ``client.get`` (adds TestClient's in-process transport and cookie handling, 1-2 ms).
Printed: p50/p95/p99 ms overall and per query kind, the document page's, the page image's (first request for
each document's page 1, then cached), the share of queries with hits, and the load average (the machine may be
shared: repeat and compare medians). A measurement: exit code 0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

with warnings.catch_warnings():  # starlette's note about httpx, printed at import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from interfaces.web import add_user, create_app  # noqa: E402
from interfaces.web.config import WebSettings  # noqa: E402
from schemas.settings import Settings  # noqa: E402

DEFAULT_QUERIES = ROOT / "tests" / "eval" / "search_queries.json"
DEFAULT_BATCH = ROOT.parent / "shared" / "corpus" / "dev" / "batch"
KIND_ORDER = ("accented", "unaccented", "phrase", "number", "name", "filter")
USER, PASSWORD = f"bench-{os.getpid()}", "mat-khau-do-hieu-nang"  # a name no copied archive already holds
HIT_RE = re.compile(r'<a class="title" href="/documents/([A-Za-z0-9_-]+)[?"]')
FILTER_PARAMS = {"type_name": "type", "organ": "organ", "classification": "classification", "batch": "batch",
                 "year": "year"}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Timed:
    """An ASGI wrapper recording how long the app takes to answer each HTTP request (seconds, in ``last``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.last = time.perf_counter() - started

        await self.app(scope, receive, timed_send)


def search_params(query: dict[str, Any]) -> tuple[list[tuple[str, str]], str]:
    """The query string the search page sends for a query of the set, and a note on what could not be sent."""
    params = [("q", str(query.get("query", "")))]
    note = ""
    filters = dict(query.get("filters") or {})
    date_from, date_to = str(filters.pop("date_from", "")), str(filters.pop("date_to", ""))
    if date_from or date_to:
        if date_from[:4] and date_from[:4] == date_to[:4]:
            filters.setdefault("year", date_from[:4])
        else:
            note = f"date range {date_from or '…'}..{date_to or '…'} dropped (no such filter on the page)"
    for name, value in filters.items():
        params.append((FILTER_PARAMS[name] if name in FILTER_PARAMS else str(name), str(value)))
    return params, note


def percentiles(values_s: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values_s)
    if len(ms) == 1:
        return {"n": 1, "p50": ms[0], "p95": ms[0], "p99": ms[0], "max": ms[0]}
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"n": len(ms), "p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": ms[-1]}


def digitise(batch: Path, into: Path) -> Path:
    archive = into / "archive"
    sohoa = Path(sys.executable).parent / "sohoa"
    command = [str(sohoa) if sohoa.exists() else "sohoa", "digitise", str(batch), "--archive", str(archive),
               "--report", str(into / "report.json"), "--quiet"]
    print(f"digitising {batch} (a couple of minutes) ...", flush=True)
    code = subprocess.run(command, check=False).returncode
    if code not in (0, 3):  # 3: finished, some documents failed
        raise SystemExit(f"sohoa digitise failed with exit code {code}")
    return archive


def login(client: TestClient) -> None:
    form = client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert match, "no login form"
    answer = client.post("/login", data={"username": USER, "password": PASSWORD, "csrf_token": match.group(1),
                                         "next": "/search"}, follow_redirects=False)
    if answer.status_code != 303:
        raise SystemExit(f"login failed: {answer.status_code}")


def run(archive: Path, queries: list[dict[str, Any]], rounds: int) -> dict[str, Any]:
    settings = Settings(archive=archive)
    add_user(settings, USER, PASSWORD, "archivist", clearance=3)
    started = time.perf_counter()
    app = create_app(settings, WebSettings())
    startup_s = time.perf_counter() - started
    timed = Timed(app)
    search_app: dict[str, list[float]] = defaultdict(list)
    search_client: dict[str, list[float]] = defaultdict(list)
    doc_app: list[float] = []
    doc_client: list[float] = []
    with_hits: dict[str, str] = {}
    notes: dict[str, str] = {}
    with TestClient(timed) as client:  # type: ignore[arg-type]
        login(client)
        for round_no in range(rounds + 1):  # round 0 warms up: not counted
            for query in queries:
                params, note = search_params(query)
                if note:
                    notes[query["id"]] = note
                began = time.perf_counter()
                answer = client.get("/search", params=params)
                elapsed = time.perf_counter() - began
                if answer.status_code != 200:
                    raise SystemExit(f"{query['id']}: /search answered {answer.status_code}")
                hit = HIT_RE.search(answer.text)
                if round_no == 0:
                    if hit:
                        with_hits[query["id"]] = hit.group(1)
                    continue
                search_app[query["kind"]].append(timed.last)
                search_client[query["kind"]].append(elapsed)
                if hit:
                    began = time.perf_counter()
                    page = client.get(f"/documents/{hit.group(1)}", params={"q": params[0][1]})
                    elapsed = time.perf_counter() - began
                    if page.status_code != 200:
                        raise SystemExit(f"{query['id']}: the document page answered {page.status_code}")
                    doc_app.append(timed.last)
                    doc_client.append(elapsed)
        image_cold: list[float] = []
        image_warm: list[float] = []
        for doc_id in sorted(set(with_hits.values())):  # the image the document page shows, rendered then cached
            for into in (image_cold, image_warm):
                answer = client.get(f"/documents/{doc_id}/pages/1/image")
                if answer.status_code != 200:
                    raise SystemExit(f"{doc_id}: the page image answered {answer.status_code}")
                into.append(timed.last)
    every_app = [v for values in search_app.values() for v in values]
    every_client = [v for values in search_client.values() for v in values]
    return {
        "archive_documents": _documents(archive), "queries": len(queries), "rounds": rounds,
        "queries_with_hits": len(with_hits),
        "queries_without_hits": [q["id"] for q in queries if q["id"] not in with_hits],
        "app_startup_s": round(startup_s, 3),
        "search": {"app": percentiles(every_app), "client": percentiles(every_client),
                   "by_kind": {kind: {"app": percentiles(search_app[kind]), "client": percentiles(search_client[kind])}
                               for kind in KIND_ORDER if search_app.get(kind)}},
        "document": {"app": percentiles(doc_app), "client": percentiles(doc_client)} if doc_app else {},
        "page_image": {"first": percentiles(image_cold), "cached": percentiles(image_warm)} if image_cold else {},
        "notes": notes,
    }


def _documents(archive: Path) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{archive / 'catalog.sqlite'}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])


def _row(label: str, stats: dict[str, float]) -> str:
    return (f"{label:<22}{stats['n']:>5}  {stats['p50']:>7.1f} {stats['p95']:>7.1f} {stats['p99']:>7.1f} "
            f"{stats['max']:>7.1f}")


def show(result: dict[str, Any]) -> None:
    print(f"\narchive: {result['archive_documents']} documents; {result['queries']} queries × {result['rounds']} "
          f"rounds (after a warm-up round); {result['queries_with_hits']} queries with hits; "
          f"app start-up {result['app_startup_s'] * 1000:.0f} ms")
    if result["queries_without_hits"]:
        print(f"without hits: {', '.join(result['queries_without_hits'])}")
    for label, key in (("server time (app)", "app"), ("round trip (TestClient)", "client")):
        print(f"\n{label}, ms      n      p50     p95     p99     max")
        print(_row("search, all", result["search"][key]))
        for kind, stats in result["search"]["by_kind"].items():
            print(_row(f"  {kind}", stats[key]))
        if result["document"]:
            print(_row("document page", result["document"][key]))
    if result["page_image"]:
        print("\npage 1 image of each document found (server time, ms; not part of the document page's time)")
        print(_row("first request", result["page_image"]["first"]))
        print(_row("cached", result["page_image"]["cached"]))
    for query_id, note in result["notes"].items():
        print(f"note: {query_id}: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, help="a digitised dev-corpus archive (copied, never written)")
    parser.add_argument("--batch", type=Path, default=DEFAULT_BATCH, help="digitised when --archive is not given")
    parser.add_argument("--queries", type=Path, default=DEFAULT_QUERIES)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    data = json.loads(args.queries.read_text(encoding="utf-8"))
    queries = list(data["queries"] if isinstance(data, dict) else data)
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        work = Path(tmp)
        if args.archive:
            if not (args.archive / "catalog.sqlite").is_file():
                raise SystemExit(f"{args.archive}: not a digitised archive (no catalog.sqlite)")
            archive = work / "archive"
            shutil.copytree(args.archive, archive)
        else:
            archive = digitise(args.batch, work)
        load_before = os.getloadavg()
        result = run(archive, queries, args.rounds)
        load_after = os.getloadavg()
    result["load_average"] = {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]}
    show(result)
    print(f"load average (1, 5, 15 min): before {result['load_average']['before']}, "
          f"after {result['load_average']['after']} on {os.cpu_count()} cores")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
