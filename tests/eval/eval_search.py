"""Search relevance on the development corpus: recall@5 and MRR per query kind, and the accent-twin check.

    python tests/eval/eval_search.py ARCHIVE REPORT [--queries FILE] [--corpus DIR] [-k 5] [--json]

ARCHIVE holds the dev corpus digitised with ``sohoa digitise ../shared/corpus/dev/batch --archive ARCHIVE
--report REPORT``. Each query of ``tests/eval/search_queries.json`` goes through ``flows.queries.search_archive``
(the code path of ``sohoa search``); the archive ids of its hits are mapped back to corpus document names through
the report (``documents[].source``) and the corpus ``manifest.jsonl`` (``doc_source`` → ``doc_id``).

Metrics, over the top k (default 5) hits:
- ``recall@k``: relevant documents found / min(relevant, k) (a query with 7 relevant documents is fully served by 5);
- ``hit@k``: share of queries with at least one relevant document in the top k (what ``score.py search`` calls
  recall@k);
- ``MRR``: mean of 1 / rank of the first relevant document (0 when none is in the top k).
Twin check: for every ``unaccented`` query, its top k must contain every relevant document its accented twin has
in its top k.

Filter queries (``"filters": {...}``) are passed as ``search_archive(..., filters=...)`` when that keyword exists;
until then they are listed as not supported and left out of the totals. This is a measurement: exit code 0.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from flows.queries import search_archive  # noqa: E402
from schemas.settings import Settings  # noqa: E402

DEFAULT_QUERIES = Path(__file__).resolve().parent / "search_queries.json"
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "dev"
KIND_ORDER = ("accented", "unaccented", "phrase", "number", "name", "filter")


def load_queries(path: Path) -> list[dict]:
    data = json.loads(path.read_text(encoding="utf-8"))
    queries = data["queries"] if isinstance(data, dict) else data
    ids = [q["id"] for q in queries]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise SystemExit(f"duplicate query ids in {path}: {sorted(dupes)}")
    return queries


def id_to_name(report: Path, corpus: Path | None) -> dict[str, str]:
    """Archive document id → corpus document name (``doc_id``; the source's stem without a corpus manifest)."""
    rep = json.loads(report.read_text(encoding="utf-8"))
    source_to_name: dict[str, str] = {}
    manifest = corpus / "manifest.jsonl" if corpus else None
    if manifest and manifest.is_file():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                source_to_name[row["doc_source"].rstrip("/")] = row["doc_id"]
    out: dict[str, str] = {}
    for doc in rep["documents"]:
        if doc.get("id"):
            source = doc["source"].rstrip("/")
            out[doc["id"]] = source_to_name.get(source, Path(source).stem)
    return out


def accepts_filters() -> bool:
    return "filters" in inspect.signature(search_archive).parameters


def run_query(settings: Settings, q: dict, k: int, names: dict[str, str], with_filters: bool) -> list[dict]:
    kwargs: dict[str, object] = {"limit": k}
    if with_filters and q.get("filters"):
        kwargs["filters"] = q["filters"]
    result = search_archive(settings, q["query"], **kwargs)  # type: ignore[arg-type]
    return [
        {"doc": names.get(h.id, h.id), "source": h.source, "score": h.score,
         "code": "-".join(str(v) for v in (h.metadata.get("code_number"), h.metadata.get("code_notation")) if v),
         "subject": h.metadata.get("subject")}
        for h in result.hits[:k]
    ]


def score(expect: list[str], got: list[str], k: int) -> dict[str, float]:
    want = set(expect)
    top = got[:k]
    found = [d for d in top if d in want]
    rank = next((i + 1 for i, d in enumerate(top) if d in want), None)
    return {
        "recall": len(set(found)) / max(1, min(len(want), k)),
        "hit": 1.0 if rank else 0.0,
        "rr": 1.0 / rank if rank else 0.0,
        "rank": float(rank or 0),
    }


def summarise(rows: list[dict]) -> dict[str, float]:
    n = len(rows)
    return {
        "n": n,
        "recall": sum(r["recall"] for r in rows) / n if n else 0.0,
        "hit": sum(r["hit"] for r in rows) / n if n else 0.0,
        "mrr": sum(r["rr"] for r in rows) / n if n else 0.0,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("archive", type=Path)
    ap.add_argument("report", type=Path, help="JSON report of `sohoa digitise` that filled ARCHIVE")
    ap.add_argument("--queries", type=Path, default=DEFAULT_QUERIES)
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus folder with manifest.jsonl")
    ap.add_argument("-k", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="machine output (JSON on stdout)")
    args = ap.parse_args()

    if not (args.archive / "catalog.sqlite").is_file() or not args.report.is_file():
        print(f"need an archive ({args.archive}/catalog.sqlite) and its digitise report ({args.report})",
              file=sys.stderr)
        return 0
    settings = Settings(archive=args.archive)  # type: ignore[call-arg]
    names = id_to_name(args.report, args.corpus if args.corpus.is_dir() else None)
    queries = load_queries(args.queries)
    filters_ok = accepts_filters()
    k = args.k

    results: dict[str, dict] = {}
    unsupported: list[dict] = []
    for q in queries:
        if q.get("filters") and not filters_ok:
            unsupported.append(q)
            continue
        hits = run_query(settings, q, k, names, filters_ok)
        got = [h["doc"] for h in hits]
        results[q["id"]] = {"query": q, "hits": hits, **score(q["expect"], got, k)}

    by_kind: dict[str, list[dict]] = defaultdict(list)
    for r in results.values():
        by_kind[r["query"]["kind"]].append(r)
    kinds = sorted(by_kind, key=lambda s: (KIND_ORDER.index(s) if s in KIND_ORDER else len(KIND_ORDER), s))
    summary = {kind: summarise(by_kind[kind]) for kind in kinds}
    summary["TOTAL"] = summarise(list(results.values()))

    twins = []
    for r in results.values():
        q = r["query"]
        if q["kind"] != "unaccented" or not q.get("twin"):
            continue
        twin = results.get(q["twin"])
        if twin is None:
            twins.append({"id": q["id"], "twin": q["twin"], "ok": False, "missing": ["<twin not run>"]})
            continue
        want = set(twin["query"]["expect"])
        twin_rel = [h["doc"] for h in twin["hits"] if h["doc"] in want]
        mine = {h["doc"] for h in r["hits"]}
        missing = [d for d in twin_rel if d not in mine]
        twins.append({"id": q["id"], "twin": q["twin"], "ok": not missing, "missing": missing})

    failing = [r for r in results.values() if r["recall"] < 1.0 or r["rr"] < 1.0]

    if args.json:
        out = {
            "k": k,
            "filters_supported": filters_ok,
            "kinds": summary,
            "twins": {"checked": len(twins), "ok": sum(t["ok"] for t in twins),
                      "failing": [t for t in twins if not t["ok"]]},
            "unsupported": [{"id": q["id"], "query": q["query"], "filters": q["filters"]} for q in unsupported],
            "queries": [
                {"id": r["query"]["id"], "kind": r["query"]["kind"], "query": r["query"]["query"],
                 "filters": r["query"].get("filters"), "expect": r["query"]["expect"],
                 "got": [h["doc"] for h in r["hits"]], "recall": r["recall"], "rr": r["rr"]}
                for r in results.values()
            ],
        }
        json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
        print()
        return 0

    print(f"{len(queries)} queries from {args.queries}, archive {args.archive}, top {k}")
    print(f"{'kind':<12} {'n':>3}  {'recall@' + str(k):>9}  {'hit@' + str(k):>6}  {'MRR':>6}")
    for kind, s in summary.items():
        if kind == "TOTAL":
            print("-" * 44)
        print(f"{kind:<12} {s['n']:>3}  {s['recall']:>9.3f}  {s['hit']:>6.3f}  {s['mrr']:>6.3f}")
    if unsupported:
        print(f"\nfilter queries: not supported yet (search_archive has no `filters` keyword): "
              f"{len(unsupported)} left out of the totals: {', '.join(q['id'] for q in unsupported)}")
    ok = sum(t["ok"] for t in twins)
    print(f"\ntwin check (unaccented top-{k} ⊇ accented twin's relevant top-{k}): {ok}/{len(twins)} ok")
    for t in twins:
        if not t["ok"]:
            print(f"  {t['id']} (twin {t['twin']}): missing {t['missing']}")
    if failing:
        print(f"\nqueries below recall 1 or MRR 1 ({len(failing)}):")
    for r in failing:
        q = r["query"]
        flt = f" filters={json.dumps(q['filters'], ensure_ascii=False)}" if q.get("filters") else ""
        print(f"  {q['id']} [{q['kind']}] {q['query']!r}{flt}: recall {r['recall']:.2f}, first relevant at "
              f"{int(r['rank']) or 'none'}; expect {q['expect']}")
        for i, h in enumerate(r["hits"], 1):
            mark = "*" if h["doc"] in q["expect"] else " "
            print(f"     {mark}{i}. {h['doc']:<10} {h['score']:>8.3f}  {h['code']:<14} {h['subject'] or ''}")
        if not r["hits"]:
            print("     (no hits)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
