"""Search at archive scale (issue 21 part 4): a bulk-built index of ``--pages`` synthetic pages (default 1,000,000),
every query kind with and without facets, 1 and 4 clients, and the web search page's server time.

    python tests/bench/bench_search_scale.py [--pages 1000000] [--clients 4] [--queries-per-kind 100]
                                             [--dir TMP] [--keep] [--reuse] [--web-rounds 2] [--facet-cache]
                                             [--warm-facets]
                                             [--json OUT]

(``make bench-search-1m``; ``python tests/bench/bench_search.py --pages 1000000 --bulk`` runs this too.)

Pages come from ``bench_search.Generator`` (the same synthetic archive as ``make bench-search``). They are
indexed the way ``sohoa reindex`` writes them (``SqliteSearchIndex.replace_all``: one transaction, 256 documents
a statement batch, FTS5 segments merged at the end): one transaction per document, as ``bench_search.py``
measures at 100,000 pages, would take hours at a million. Reported: bulk pages/s (generation time taken out),
index size on disk; then per query kind p50/p95 wall ms AND p50/p95 CPU ms of the searching thread
(``time.thread_time``): on a shared 2-core machine wall times carry other people's load, the CPU time much
less; the load average is printed beside. The web part serves ``interfaces.web.create_app`` on an archive
whose catalog database is this index (as ``bench_web.py`` drives it: TestClient, server time measured by an
ASGI wrapper), logged in as an archivist cleared for every level, and sends each query kind to ``GET /search``
(the page always counts facets), plus the same queries narrowed by a facet link (``type=...``).

``--reuse`` keeps a built index of the same ``--pages``/``--seed`` found in ``--dir`` (a run that only measures
queries); ``--keep`` leaves it there (default: removed: a million pages take several GB).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

from bench_search import (  # noqa: E402
    DEFAULT_CORPUS,
    DF_SAMPLE_DOCS,
    KINDS,
    Generator,
    bulk_cpu_note,
    bulk_index_pages,
    load_vocabulary,
    make_queries,
    peak_rss_mb,
)

from schemas.text import fold  # noqa: E402

CODE_SAMPLE_DOCS = 20_000  # numbers looked up are drawn from the first documents generated


def build(work: Path, vocab: Any, pages: int, seed: int, reuse: bool, processes: int | None = None,
          entries: Path | None = None) -> dict[str, Any]:
    """The bulk-built index in ``work`` (``catalog.sqlite``), and its numbers (reused if asked and present)."""
    done = work / "built.json"
    if reuse and done.is_file():
        numbers = json.loads(done.read_text())
        if numbers.get("pages") == pages and numbers.get("seed") == seed:
            print(f"reusing the index built in {work}", file=sys.stderr, flush=True)
            return dict(numbers)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    print(f"indexing {pages} pages in bulk into {work} ...", file=sys.stderr, flush=True)
    cpu0 = time.process_time()
    numbers = bulk_index_pages(work, Generator(vocab, seed), pages, processes, entries)
    numbers["process_cpu_s"] = round(time.process_time() - cpu0, 1)  # generation included
    numbers["index_bytes"] = sum(p.stat().st_size for p in work.glob("catalog.sqlite*"))
    numbers["seed"] = seed
    done.write_text(json.dumps(numbers))
    return numbers


def sample(vocab: Any, seed: int) -> tuple[list[str], Counter[str]]:
    """Numbers of indexed documents and word document frequencies, from the first documents generated (the
    generator is deterministic: the index holds them)."""
    codes: list[str] = []
    doc_freq: Counter[str] = Counter()
    for n, doc in enumerate(Generator(vocab, seed).documents(CODE_SAMPLE_DOCS * 3)):
        if n >= CODE_SAMPLE_DOCS:
            break
        codes.append(doc.code)
        if n < DF_SAMPLE_DOCS:
            doc_freq.update(set(re.findall(r"\w+", fold(" ".join(p.text for p in doc.manifest.pages)))))
    return codes, doc_freq


def _cut(values: list[float]) -> tuple[float, float]:
    xs = sorted(values)
    return round(statistics.median(xs), 2), round(xs[min(len(xs) - 1, int(0.95 * len(xs)))], 2)


def run_queries(path: Path, queries: dict[str, list[str]], clients: int, facets: bool) -> dict[str, Any]:
    """Every query through one ``SqliteSearchIndex`` shared by ``clients`` threads: wall and thread CPU ms."""
    from schemas.search import SearchRequest
    from storage.search_sqlite import SqliteSearchIndex

    index = SqliteSearchIndex(path)
    items = [(kind, q) for kind, qs in queries.items() for q in qs]
    random.Random(3).shuffle(items)
    work: queue.Queue[tuple[str, str] | None] = queue.Queue()
    for item in [*items, *([None] * clients)]:
        work.put(item)
    wall: dict[str, list[float]] = {k: [] for k in queries}
    cpu: dict[str, list[float]] = {k: [] for k in queries}
    lock, start = threading.Lock(), threading.Barrier(clients)

    def client() -> None:
        for q in ("dang", '"cong tac"', "15-NQ/TU"):  # warm this thread's connection (and the facet columns)
            index.search(SearchRequest(query=q, limit=10, clearance=3, facets=facets))
        start.wait()
        while (item := work.get()) is not None:
            kind, q = item
            t0, c0 = time.perf_counter(), time.thread_time()
            index.search(SearchRequest(query=q, limit=10, clearance=3, facets=facets))
            dt, dc = (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000
            with lock:
                wall[kind].append(dt)
                cpu[kind].append(dc)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    index.close()
    kinds = {k: {"n": len(wall[k]), "wall_p50_p95_ms": _cut(wall[k]), "cpu_p50_p95_ms": _cut(cpu[k]),
                 "example": queries[k][0]} for k in queries if wall[k]}
    return {"clients": clients, "facets": facets, "queries": len(items), "qps": round(len(items) / elapsed, 1),
            "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2), "kinds": kinds}


def run_web(archive: Path, queries: dict[str, list[str]], rounds: int) -> dict[str, Any]:
    """The search page's server time per query kind, over this index (see the module's docstring)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from bench_web import PASSWORD, USER, Timed, login

    from interfaces.web import add_user, create_app
    from interfaces.web.config import WebSettings
    from schemas.settings import Settings

    settings = Settings(archive=archive)
    add_user(settings, USER, PASSWORD, "archivist", clearance=3)
    timed = Timed(create_app(settings, WebSettings()))
    types = ["Nghị quyết", "Báo cáo", "Công văn", "Kế hoạch"]
    sent = [(kind, [("q", q)]) for kind, qs in queries.items() for q in qs]
    sent += [("filtered", [("q", q), ("type", types[n % len(types)])]) for n, q in enumerate(queries["common1"])]
    sent += [("browse", [("q", "")])] * 5
    times: dict[str, list[float]] = {}
    cpu: list[float] = []  # process CPU during the request (one client: little else runs in this process)
    load0 = os.getloadavg()[0]
    with TestClient(timed) as client:  # type: ignore[arg-type]
        login(client)
        for round_no in range(rounds + 1):  # round 0 warms up
            for kind, params in sent:
                c0 = time.process_time()
                answer = client.get("/search", params=params)
                spent = (time.process_time() - c0) * 1000
                if answer.status_code != 200:
                    raise SystemExit(f"/search {params}: {answer.status_code}")
                if round_no:
                    times.setdefault(kind, []).append(timed.last * 1000)
                    cpu.append(spent)
    every = [t for ts in times.values() for t in ts]
    return {"requests": len(every), "all_p50_p95_ms": _cut(every), "cpu_p50_p95_ms": _cut(cpu),
            "load_before": round(load0, 2),
            "load_after": round(os.getloadavg()[0], 2),
            "by_kind": {k: {"n": len(v), "p50_p95_ms": _cut(v)} for k, v in times.items()}}


def show(result: dict[str, Any]) -> None:
    b = result["indexing_bulk"]
    print(f"\nbulk indexing (as `sohoa reindex`): {b['pages']} pages / {b['documents']} documents in {b['engine_s']} s"
          f" = {b['pages_per_s']:.0f} pages/s; index {b['index_bytes'] / 1e9:.2f} GB on disk")
    if "cpu_s" in b:
        print(f"  {bulk_cpu_note(b)}")
    print("wall and thread-CPU ms (p50/p95); the machine is shared: wall times carry others' load, see 'load'")
    for run in result["search"]:
        print(f"\n{run['clients']} client(s), facets {'on' if run['facets'] else 'off'}"
              f"{' (again: common words kept)' if run.get('warm') else ''}: {run['qps']} queries/s, "
              f"load {run['load_before']} -> {run['load_after']}")
        print(f"  {'kind':<12} {'wall p50':>9} {'wall p95':>9} {'cpu p50':>8} {'cpu p95':>8}  example")
        for kind, k in run["kinds"].items():
            (w50, w95), (c50, c95) = k["wall_p50_p95_ms"], k["cpu_p50_p95_ms"]
            print(f"  {kind:<12} {w50:>9.1f} {w95:>9.1f} {c50:>8.1f} {c95:>8.1f}  {k['example']}")
    web = result.get("web")
    if web:
        p50, p95 = web["all_p50_p95_ms"]
        c50, c95 = web["cpu_p50_p95_ms"]
        print(f"\nweb search page (server time, facets always on): {web['requests']} requests, p50 {p50:.1f} ms, "
              f"p95 {p95:.1f} ms; process CPU per request p50 {c50:.1f} ms, p95 {c95:.1f} ms (TestClient's share "
              f"included); load {web['load_before']} -> {web['load_after']}")
        for kind, k in web["by_kind"].items():
            print(f"  {kind:<12} n {k['n']:>4}  p50 {k['p50_p95_ms'][0]:>7.1f}  p95 {k['p50_p95_ms'][1]:>7.1f}")
    print(f"\npeak RSS {result['peak_rss_mb']:.0f} MB; cpus {os.cpu_count()}; match sets kept: "
          f"{result.get('kept_sets', [0, 0])[0]} ({result.get('kept_sets', [0, 0])[1] / 1e6:.1f} MB)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--pages", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--queries-per-kind", type=int, default=100)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="leave the index in --dir")
    ap.add_argument("--reuse", action="store_true", help="reuse an index of the same --pages/--seed in --dir")
    ap.add_argument("--web-rounds", type=int, default=2, help="0: skip the web page")
    ap.add_argument("--web-only", action="store_true", help="measure the web page only")
    ap.add_argument("--facet-cache", action="store_true",
                    help="keep the facet counts of identical requests (as the product does); off by default, so "
                         "every request with facets pays for its counts (the web rounds repeat the same queries)")
    ap.add_argument("--warm-facets", action="store_true",
                    help="after the cold 4-client run with facets, run it again: the match sets of common words "
                         "(storage/search_sqlite/termsets.py) are kept by then, as in a web app that has served "
                         "those words before (the counts of identical requests stay off unless --facet-cache)")
    ap.add_argument("--index-processes", type=int, default=None,
                    help="processes preparing rows in the bulk build (SOHOA_INDEX_PROCESSES; default: as sohoa)")
    ap.add_argument("--entries", type=Path,
                    help="the generated documents (JSON lines): kept, and reused when present (same --pages/--seed)")
    ap.add_argument("--build-only", action="store_true", help="build (or reuse) the index, print, and stop")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if not args.facet_cache:
        from storage.search_sqlite import facets as facet_module

        facet_module.RESULTS_KEPT = 0
    vocab = load_vocabulary(args.corpus)
    base = args.dir or Path(tempfile.mkdtemp(prefix="sohoa-bench-scale-"))
    work = base / f"scale-{args.pages}"
    try:
        indexing = build(work, vocab, args.pages, args.seed, args.reuse, args.index_processes, args.entries)
        if args.build_only:
            print(json.dumps(indexing))
            return 0
        codes, doc_freq = sample(vocab, args.seed)
        queries = make_queries(vocab, codes, doc_freq, args.queries_per_kind, args.seed)
        few = {k: qs[: max(1, args.queries_per_kind // 4)] for k, qs in queries.items()}
        runs = []
        for facets in (() if args.web_only else (False, True)):
            for clients, qs in ((args.clients, queries), (1, few)):
                print(f"querying: {clients} client(s), facets {facets}", file=sys.stderr, flush=True)
                runs.append(run_queries(work / "catalog.sqlite", qs, clients, facets))
                if facets and args.warm_facets and clients == args.clients:
                    print(f"querying again (sets kept): {clients} client(s)", file=sys.stderr, flush=True)
                    runs.append({**run_queries(work / "catalog.sqlite", qs, clients, facets), "warm": True})
        web = None
        if args.web_rounds:
            print("the web search page", file=sys.stderr, flush=True)
            web = run_web(work, {k: qs[:10] for k, qs in queries.items()}, args.web_rounds)
    finally:
        if not (args.keep and args.dir):
            shutil.rmtree(work if args.dir else base, ignore_errors=True)
    from storage.search_sqlite.facets import FacetColumns

    kept = [c.terms.held() for c in FacetColumns._registry.values()]
    result = {"kinds": list(KINDS), "indexing_bulk": indexing, "search": runs, "web": web,
              "kept_sets": [sum(k[0] for k in kept), sum(k[1] for k in kept)],
              "peak_rss_mb": round(peak_rss_mb(), 1)}
    show(result)
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
