"""Search load benchmark: index synthetic pages, then latency per query kind under concurrent clients.

    python tests/bench/bench_search.py [--pages 100000] [--clients 4] [--queries-per-kind 200] [--dir TMP]
                                       [--corpus ../shared/corpus/dev] [--engine fts5|tantivy] [--seed 7]

Pages are generated from the vocabulary of the development corpus's ground-truth page texts (``gt/*.gt.txt``):
a word-bigram (Markov) walk gives body text of 300-500 words a page, documents have 1-5 pages, a first page
carries a realistic header (organ, ``Số N-XX/YY``, place and date, type, trích yếu), a last page the signature
block, and the body cites other documents (numbers, dates) and people, so numbers and names are spread over the
index like in a real archive. Metadata (type, number/notation, date, organ, subject, signer, classification)
is synthetic, drawn from the corpus's ``meta/*.json`` values.

``--engine fts5`` (default) indexes through the search port, ``SqliteSearchIndex.upsert`` (one transaction per
document, as ``sohoa digitise`` commits), and queries through ``SqliteSearchIndex.search`` (a ``SearchRequest``:
top 10 with snippets, ``--clearance``, ``--facets``); the client threads share one index object, which gives
every thread its own SQLite connection, like separate reader processes. ``--engine tantivy`` (needs
``pip install tantivy``) indexes the same pages into a tantivy index with the same folding and column weights,
for comparison only (code at the end of this file).

Reports: indexing pages/s (time inside the engine's write calls; generation excluded and shown apart), index
size, then p50/p95/p99 ms and mean hit count per query kind with N concurrent clients, throughput, peak RSS.
``--pages 2000`` is a quick check (seconds). ``--pages 1000000 --bulk`` (or ``make bench-search-1m``): the
archive-scale run of ``bench_search_scale.py`` (bulk indexing only; facets on and off; the web search page).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from schemas.document import DocumentManifest, PageRecord  # noqa: E402
from schemas.metadata import DocumentMetadata  # noqa: E402
from schemas.query import parse_query  # noqa: E402
from schemas.text import fold, nfc  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "dev"
KINDS = ("common1", "rare1", "three_words", "accented", "phrase", "number", "or_heavy")
KIND_HELP = {
    "common1": "one very common word, unaccented (dang, cong, tac ...)",
    "rare1": "one of the 100 rarest words of the index (document frequency over its first 2,000 documents)",
    "three_words": "three consecutive words of a sentence, unaccented",
    "accented": "two or three consecutive words with diacritics",
    "phrase": "a quoted phrase of two to four words",
    "number": "number lookup N-XX/YY of an indexed document",
    "or_heavy": "five common words + one typo: AND finds nothing, OR fallback over common words",
}
_WORD = re.compile(r"^\w+$")


# ----------------------------------------------------------------------------------------------- vocabulary


@dataclass
class Vocabulary:
    succ: dict[str, tuple[str, ...]]  # word (as written, with punctuation) -> next words seen in the corpus
    starts: tuple[str, ...]  # words that start a sentence or a line
    lines: list[str]  # ground-truth lines (for phrase-like queries)
    counts: Counter[str]  # folded token counts
    types: list[tuple[str, str]]  # (type_name, abbreviation)
    organs: list[tuple[str, list[str], str]]  # (organ_name, header lines, notation suffix)
    subjects: list[str]
    families: list[str]
    middles: list[str]
    givens: list[str]
    authorities: list[tuple[str, str]]  # (authority, signer_title)
    recipients: list[str] = field(default_factory=list)


def load_vocabulary(corpus: Path) -> Vocabulary:
    gt_files = sorted((corpus / "gt").glob("*.gt.txt"))
    metas = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((corpus / "meta").glob("*.json"))]
    if not gt_files or not metas:
        raise SystemExit(f"no ground truth under {corpus} (need gt/*.gt.txt and meta/*.json): pass --corpus DIR")
    succ: dict[str, list[str]] = {}
    starts: list[str] = []
    lines: list[str] = []
    counts: Counter[str] = Counter()
    for path in gt_files:
        text = nfc(path.read_text(encoding="utf-8"))
        page_lines = [ln.strip() for ln in text.splitlines() if len(ln.split()) >= 4]
        lines += page_lines
        words = " ".join(page_lines).split()
        counts.update(re.findall(r"\w+", fold(" ".join(page_lines))))
        for i, w in enumerate(words):
            if i == 0 or words[i - 1][-1:] in ".;:" or (w[:1].isupper() and words[i - 1][-1:] == ","):
                starts.append(w)
            if i + 1 < len(words):
                succ.setdefault(w, []).append(words[i + 1])
    types = sorted({(m["type_name"], m["type_abbr"]) for m in metas if m.get("type_name") and m.get("type_abbr")})
    organs_d: dict[str, tuple[str, list[str], str]] = {}
    for m in metas:
        if m.get("organ_name") and m.get("code_notation") and "/" in m["code_notation"]:
            organs_d[m["organ_name"]] = (m["organ_name"], m.get("organ_lines") or [m["organ_name"]],
                                         m["code_notation"].split("/", 1)[1])
    names = [m["signer"].split() for m in metas if m.get("signer") and len(m["signer"].split()) >= 3]
    return Vocabulary(
        succ={w: tuple(v) for w, v in succ.items()},
        starts=tuple(starts),
        lines=lines,
        counts=counts,
        types=types,
        organs=sorted(organs_d.values()),
        subjects=sorted({m["subject"] for m in metas if m.get("subject")}),
        families=sorted({n[0] for n in names}),
        middles=sorted({" ".join(n[1:-1]) for n in names}),
        givens=sorted({n[-1] for n in names}),
        authorities=sorted({(m.get("authority") or "", m.get("signer_title") or "") for m in metas}),
        recipients=sorted({r for m in metas for r in (m.get("recipients") or [])}),
    )


# ----------------------------------------------------------------------------------------------- generator

CLASSIFICATIONS = (None,) * 8 + ("Mật", "Mật", "Tối mật")


@dataclass
class SynthDoc:
    manifest: DocumentManifest
    code: str  # "N-XX/YY"


class Generator:
    def __init__(self, vocab: Vocabulary, seed: int) -> None:
        self.v = vocab
        self.rng = random.Random(seed)

    def words(self, n: int) -> list[str]:
        rnd, succ, starts = self.rng.random, self.v.succ, self.v.starts
        out: list[str] = []
        w = starts[int(rnd() * len(starts))]
        while len(out) < n:
            out.append(w)
            nxt = succ.get(w)
            restart = not nxt or rnd() < 0.03
            w = starts[int(rnd() * len(starts))] if restart else nxt[int(rnd() * len(nxt))]
        return out

    def person(self) -> str:
        r = self.rng
        return f"{r.choice(self.v.families)} {r.choice(self.v.middles)} {r.choice(self.v.givens)}"

    def citation(self) -> str:
        r = self.rng
        name, abbr = r.choice(self.v.types)
        organ = r.choice(self.v.organs)
        return (f"{name} số {r.randint(1, 2000)}-{abbr}/{organ[2]}, ngày {r.randint(1, 28):02d}/{r.randint(1, 12)}/"
                f"{r.randint(1975, 2024)} của {organ[0]}")

    def body(self, n_words: int) -> str:
        words = self.words(n_words)
        r = self.rng
        for _ in range(r.randint(0, 2)):  # cite documents and people inside the running text
            words.insert(r.randint(0, len(words)), r.choice((self.citation(), self.person() + ",")))
        out, i = [], 0
        while i < len(words):
            step = r.randint(11, 16)
            out.append(" ".join(words[i:i + step]))
            i += step
        return "\n".join(out)

    def subject(self) -> str:
        r = self.rng
        if r.random() < 0.5:
            return r.choice(self.v.subjects)
        return "về " + " ".join(self.words(r.randint(6, 14))).rstrip(",.;:")

    def document(self, serial: int) -> SynthDoc:
        r = self.rng
        type_name, abbr = r.choice(self.v.types)
        organ_name, organ_lines, suffix = r.choice(self.v.organs)
        number = r.randint(1, 2000)
        notation = f"{abbr}/{suffix}"
        year, month, day = r.randint(1975, 2024), r.randint(1, 12), r.randint(1, 28)
        subject = self.subject()
        authority, title = r.choice(self.v.authorities)
        signer = self.person()
        n_pages = r.choice((1, 1, 2, 2, 2, 3, 3, 4, 5))
        pages = []
        for p in range(1, n_pages + 1):
            parts = []
            if p == 1:
                parts += [*organ_lines, "*", f"Số {number}-{notation}", "ĐẢNG CỘNG SẢN VIỆT NAM",
                          f"Đà Nẵng, ngày {day:02d} tháng {month} năm {year}", type_name.upper(), subject]
            parts.append(self.body(r.randint(300, 500)))
            if p == n_pages:
                parts += ["Nơi nhận:", *(f"- {x}," for x in r.sample(self.v.recipients, 3)), authority, title,
                          signer]
            text = "\n".join(parts)
            pages.append(PageRecord(number=p, text=text, confidence=0.93, width=2480, height=3508, dpi=300,
                                    words=len(text.split())))
        md = DocumentMetadata(
            code_number=str(number), code_notation=notation, type_name=type_name, type_code=None,
            issued_date=f"{year:04d}-{month:02d}-{day:02d}", place="Đà Nẵng", organ_name=organ_name,
            organ_lines=organ_lines, subject=subject, authority=authority, signer=signer, signer_title=title,
            classification=r.choice(CLASSIFICATIONS), urgency=None, recipients=[], page_count=n_pages,
        )
        digest = hashlib.sha256(f"synthetic-{serial}".encode()).hexdigest()
        manifest = DocumentManifest(
            id=digest[:20], sha256=digest, source=f"synth_{serial:06d}", batch=f"synth-{serial // 1000:03d}",
            status="done", created_at="2026-01-01T00:00:00+00:00", pages=pages, metadata=md, files=[],
            provenance={"generator": "tests/bench/bench_search.py"},
        )
        return SynthDoc(manifest=manifest, code=f"{number}-{notation}")

    def documents(self, pages: int) -> Iterator[SynthDoc]:
        done, serial = 0, 0
        while done < pages:
            doc = self.document(serial)
            serial += 1
            if done + len(doc.manifest.pages) > pages:  # trim the last document to hit the page count exactly
                doc.manifest.pages = doc.manifest.pages[: pages - done]
            done += len(doc.manifest.pages)
            yield doc


# ----------------------------------------------------------------------------------------------- queries


def make_queries(vocab: Vocabulary, codes: list[str], doc_freq: Counter[str], per_kind: int,
                 seed: int) -> dict[str, list[str]]:
    """Query texts per kind. ``doc_freq``: folded word -> documents containing it, over a sample of the index."""
    r = random.Random(seed + 1)
    alpha = [(t, c) for t, c in vocab.counts.most_common() if t.isalpha() and len(t) >= 2]
    common = [t for t, _ in alpha[:60]]
    by_df = sorted((c, t) for t, c in doc_freq.items() if t.isalpha() and len(t) >= 3)
    rare = [t for _, t in by_df[:100]] or [t for t, _ in alpha[-50:]]
    known = set(vocab.counts)
    runs = [[w for w in ln.split() if _WORD.match(w)] for ln in vocab.lines]
    runs = [run for run in runs if len(run) >= 4]

    def slice_of(n: int) -> list[str]:
        run = r.choice(runs)
        i = r.randint(0, len(run) - n)
        return run[i:i + n]

    def typo() -> str:
        while True:
            w = r.choice(common) + r.choice("qwxz")
            if w not in known:
                return w

    out: dict[str, list[str]] = {k: [] for k in KINDS}
    for _ in range(per_kind):
        out["common1"].append(r.choice(common))
        out["rare1"].append(r.choice(rare))
        out["three_words"].append(" ".join(fold(w) for w in slice_of(3)))
        out["accented"].append(" ".join(slice_of(r.randint(2, 3))))
        out["phrase"].append('"' + " ".join(slice_of(r.randint(2, 4))) + '"')
        out["number"].append(r.choice(codes) if codes else "15-NQ/TU")
        words = [*r.sample(common, 5), typo()]
        r.shuffle(words)
        out["or_heavy"].append(" ".join(words))
    return out


# ----------------------------------------------------------------------------------------------- engines


class Fts5Engine:
    """The product's embedded backend through the search port: ``storage.search_sqlite.SqliteSearchIndex``."""

    name = "fts5"

    def __init__(self, directory: Path, *, clearance: int = 3, facets: bool = False, compact: bool = True) -> None:
        from storage.search_sqlite import SqliteSearchIndex

        self.path = directory / "catalog.sqlite"
        self._cls = SqliteSearchIndex
        self.writer = SqliteSearchIndex(self.path)
        self.clearance, self.facets, self.compact = clearance, facets, compact
        self._reader: SqliteSearchIndex | None = None
        self._reader_lock = threading.Lock()

    def add(self, manifest: DocumentManifest) -> None:
        from storage.search_index import entry_of

        self.writer.upsert([entry_of(manifest)])  # one transaction per document, as `sohoa digitise` commits

    def finish(self) -> None:
        if self.compact:  # as a digitisation run ends (flows.digitise.compact_search_index)
            from storage.search_sqlite import compact

            compact(self.writer._conn, self.writer._lock)
        self.writer.close()

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob("catalog.sqlite*"))

    def searcher(self) -> tuple[Callable[[str], int], Callable[[], None]]:
        from schemas.search import SearchRequest

        with self._reader_lock:  # one index object shared by every client thread (one connection per thread)
            if self._reader is None:
                self._reader = self._cls(self.path)
            index = self._reader

        def run(q: str) -> int:
            return index.search(SearchRequest(query=q, limit=10, clearance=self.clearance, facets=self.facets)).total

        return run, lambda: None


def make_engine(name: str, directory: Path, *, snippets: bool = True, clearance: int = 3, facets: bool = False,
                compact: bool = True) -> Fts5Engine | TantivyEngine:
    if name == "tantivy":
        return TantivyEngine(directory, snippets=snippets)
    return Fts5Engine(directory, clearance=clearance, facets=facets, compact=compact)


# ----------------------------------------------------------------------------------------------- runs


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


DF_SAMPLE_DOCS = 2000


def index_pages(engine: Fts5Engine | TantivyEngine, gen: Generator, pages: int
                ) -> tuple[dict, list[str], Counter[str]]:
    """Index ``pages`` generated pages; returns the numbers, the codes indexed and word document frequencies
    over the first documents (to pick rare words that really are rare in this index)."""
    codes: list[str] = []
    doc_freq: Counter[str] = Counter()
    t_engine = t_gen = 0.0
    done = docs = 0
    step = max(1, pages // 10)
    next_report = step
    slice_start_engine, slice_start_pages = 0.0, 0
    it = gen.documents(pages)
    while True:
        t0 = time.perf_counter()
        doc = next(it, None)
        t1 = time.perf_counter()
        t_gen += t1 - t0
        if doc is None:
            break
        engine.add(doc.manifest)
        t_engine += time.perf_counter() - t1
        codes.append(doc.code)
        if docs < DF_SAMPLE_DOCS:
            doc_freq.update(set(re.findall(r"\w+", fold(" ".join(p.text for p in doc.manifest.pages)))))
        done += len(doc.manifest.pages)
        docs += 1
        if done >= next_report or done == pages:
            rate = (done - slice_start_pages) / max(1e-9, t_engine - slice_start_engine)
            print(f"  indexed {done:>7} pages ({docs} docs): {done / max(1e-9, t_engine):7.0f} pages/s overall, "
                  f"{rate:7.0f} pages/s in the last slice", file=sys.stderr, flush=True)
            slice_start_engine, slice_start_pages = t_engine, done
            next_report += step
    t0 = time.perf_counter()
    engine.finish()
    t_finish = time.perf_counter() - t0
    t_engine += t_finish
    return {
        "pages": done,
        "documents": docs,
        "engine_s": round(t_engine, 2),
        "finish_s": round(t_finish, 2),
        "generate_s": round(t_gen, 2),
        "pages_per_s": round(done / max(1e-9, t_engine), 1),
        "index_bytes": engine.size_bytes(),
    }, codes, doc_freq


def bulk_index_pages(directory: Path, gen: Generator, pages: int, processes: int | None = None,
                     entries_file: Path | None = None) -> dict:
    """The same pages indexed as ``sohoa reindex`` writes them (``SqliteSearchIndex.replace_all``: batches of 256
    documents, rows prepared in ``processes`` other processes (``storage/search_sqlite/bulk.py``; None: as the
    product chooses), one transaction, the index merged at the end), into a fresh index in ``directory``.
    The documents are generated first, into a file of index entries (JSON lines, removed after); indexing reads
    them from it, so everything the rebuild does (reading and parsing included) is in the time, and nothing of
    the generator. ``entries_file``: that file is kept, and reused when it is there (written for the same
    generator and pages: the caller's word). Reported: wall time, pages/s, and CPU time of this process and of
    the preparing processes."""
    from schemas.search import IndexEntry
    from storage.search_index import entry_of
    from storage.search_sqlite import SqliteSearchIndex

    directory.mkdir(parents=True, exist_ok=True)
    source = entries_file or directory / "entries.jsonl"
    t0 = time.perf_counter()
    if not source.is_file():
        with source.open("w", encoding="utf-8") as out:
            for doc in gen.documents(pages):
                out.write(entry_of(doc.manifest).model_dump_json() + "\n")
    t_gen = time.perf_counter() - t0

    def entries() -> Iterator[IndexEntry]:
        with source.open(encoding="utf-8") as lines:
            for line in lines:
                yield IndexEntry.model_validate_json(line)

    index = SqliteSearchIndex(directory / "catalog.sqlite", index_processes=processes)
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    count = index.replace_all(entries())
    t_index = time.perf_counter() - t0
    own_s, children_s = (_cpu(resource.getrusage(resource.RUSAGE_SELF)) - _cpu(own),
                         _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)) - _cpu(children))
    index.close()
    if entries_file is None:
        source.unlink()
    return {"pages": pages, "documents": count, "engine_s": round(t_index, 2), "generate_s": round(t_gen, 2),
            "pages_per_s": round(pages / max(1e-9, t_index), 1), "cpu_s": round(own_s, 2),
            "prepare_cpu_s": round(children_s, 2), "processes": index._bulk.processes,
            "load": [round(v, 2) for v in os.getloadavg()]}


def bulk_cpu_note(bulk: dict) -> str:
    """CPU of a bulk build (``bulk_index_pages``), for its printed line."""
    return (f"CPU {bulk['cpu_s']} s here + {bulk['prepare_cpu_s']} s in {bulk['processes'] - 1 or 0} preparing "
            f"process(es) (reading the entries included; generating them apart: {bulk['generate_s']} s), load "
            f"before {bulk['load']}")


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def run_queries(engine: Fts5Engine | TantivyEngine, queries: dict[str, list[str]], clients: int) -> dict:
    work: queue.Queue[tuple[str, str] | None] = queue.Queue()
    items = [(kind, q) for kind, qs in queries.items() for q in qs]
    random.Random(3).shuffle(items)
    for item in items:
        work.put(item)
    for _ in range(clients):
        work.put(None)
    lat: dict[str, list[float]] = {k: [] for k in queries}
    totals: dict[str, list[int]] = {k: [] for k in queries}
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)
    # every client warms its own connection first, then all start together

    def client() -> None:
        run, close = engine.searcher()
        try:
            for q in ("dang", '"cong tac"', "15-NQ/TU"):  # warm this connection's caches
                run(q)
            start.wait()
            while (item := work.get()) is not None:
                kind, q = item
                t0 = time.perf_counter()
                try:
                    n = run(q)
                except Exception as exc:  # a benchmark reports, it does not stop
                    with lock:
                        errors.append(f"{kind} {q!r}: {exc}")
                    continue
                dt = (time.perf_counter() - t0) * 1000
                with lock:
                    lat[kind].append(dt)
                    totals[kind].append(n)
        finally:
            close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    kinds = {}
    for kind, xs in lat.items():
        if not xs:
            continue
        xs.sort()
        kinds[kind] = {
            "n": len(xs),
            "p50_ms": round(statistics.median(xs), 2),
            "p95_ms": round(xs[min(len(xs) - 1, int(0.95 * len(xs)))], 2),
            "p99_ms": round(xs[min(len(xs) - 1, int(0.99 * len(xs)))], 2),
            "max_ms": round(xs[-1], 2),
            "mean_hits": round(sum(totals[kind]) / len(totals[kind]), 1),
            "example": queries[kind][0],
        }
    return {"clients": clients, "queries": len(items), "wall_s": round(wall, 2),
            "qps": round(len(items) / max(1e-9, wall), 1), "kinds": kinds, "errors": errors[:10]}


def snippet_cost_ms(vocab: Vocabulary, seed: int) -> float:
    """Milliseconds of ``storage.search_sqlite.make_snippet`` for one hit (pure Python, holds the GIL): the
    share of a result page's latency that is the same whatever the engine."""
    from storage.search_sqlite import make_snippet

    texts = [nfc("\n\n".join(p.text for p in d.manifest.pages)) for d in Generator(vocab, seed + 2).documents(200)]
    t0 = time.perf_counter()
    for text in texts:
        make_snippet(text, {"cong", "tac"})
    return (time.perf_counter() - t0) * 1000 / len(texts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--pages", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--queries-per-kind", type=int, default=200)
    ap.add_argument("--dir", type=Path, help="work folder (kept); default: a temporary folder, removed")
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus with gt/*.gt.txt and meta/*.json")
    ap.add_argument("--engine", choices=("fts5", "tantivy"), default="fts5")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-snippets", action="store_true",
                    help="tantivy only: rank and count, no stored text or snippet (engine cost alone)")
    ap.add_argument("--clearance", type=int, default=3, choices=range(4),
                    help="fts5: the searching user's clearance (3 sees every document; lower ones filter)")
    ap.add_argument("--facets", action="store_true", help="fts5: every query also counts the facets")
    ap.add_argument("--no-compact", action="store_true",
                    help="fts5: leave the index's segments as one commit per document left them (by default they "
                         "are merged after indexing, in the indexing time, as a digitisation run ends)")
    ap.add_argument("--no-bulk", action="store_true",
                    help="fts5: skip indexing the same pages again in bulk (as `sohoa reindex` does)")
    ap.add_argument("--json", help="also write the numbers to this file")
    ap.add_argument("--bulk", action="store_true",
                    help="fts5: index in bulk only and measure queries with and without facets, on 1 and 4 "
                         "clients, and the web search page (bench_search_scale.py; for --pages 1000000: one "
                         "transaction per document would take hours)")
    args = ap.parse_args()
    if args.bulk:
        from bench_search_scale import main as scale_main

        return scale_main(["--pages", str(args.pages), "--clients", str(args.clients),
                           "--queries-per-kind", str(args.queries_per_kind), "--corpus", str(args.corpus),
                           "--seed", str(args.seed), *(["--dir", str(args.dir)] if args.dir else []),
                           *(["--json", args.json] if args.json else [])])

    if not (args.corpus / "gt").is_dir():
        print(f"corpus not found: {args.corpus} (needs gt/*.gt.txt and meta/*.json); pass --corpus DIR",
              file=sys.stderr)
        return 2
    vocab = load_vocabulary(args.corpus)
    tmp = None
    if args.dir:
        work = args.dir / f"bench-search-{args.engine}-{args.pages}"
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
    else:
        tmp = tempfile.mkdtemp(prefix="sohoa-bench-search-")
        work = Path(tmp)
    try:
        print(f"engine {args.engine}: indexing {args.pages} synthetic pages into {work} "
              f"({len(vocab.succ)} word forms from {args.corpus})", file=sys.stderr, flush=True)
        engine = make_engine(args.engine, work, snippets=not args.no_snippets, clearance=args.clearance,
                             facets=args.facets, compact=not args.no_compact)
        indexing, codes, doc_freq = index_pages(engine, Generator(vocab, args.seed), args.pages)
        queries = make_queries(vocab, codes, doc_freq, args.queries_per_kind, args.seed)
        print(f"querying: {args.queries_per_kind} queries x {len(KINDS)} kinds, {args.clients} clients",
              file=sys.stderr, flush=True)
        search = run_queries(engine, queries, args.clients)
        single_n = max(1, args.queries_per_kind // 4)
        print(f"querying: {single_n} queries x {len(KINDS)} kinds, 1 client (engine cost without contention)",
              file=sys.stderr, flush=True)
        single = run_queries(engine, {k: qs[:single_n] for k, qs in queries.items()}, 1)
        bulk = None
        if args.engine == "fts5" and not args.no_bulk:
            print("indexing the same pages in bulk, as `sohoa reindex` does", file=sys.stderr, flush=True)
            (work / "bulk").mkdir()
            bulk = bulk_index_pages(work / "bulk", Generator(vocab, args.seed), args.pages)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    snippet_ms = snippet_cost_ms(vocab, args.seed)
    result = {"engine": args.engine, "cpus": os.cpu_count(), "indexing": indexing, "search": search,
              "search_1_client": single, "indexing_bulk": bulk, "snippet_ms_per_hit": round(snippet_ms, 2),
              "peak_rss_mb": round(peak_rss_mb(), 1)}

    ix = indexing
    snip = " (no snippets)" if args.no_snippets and args.engine == "tantivy" else ""
    print(f"\nengine: {args.engine}{snip}   cpus: {os.cpu_count()}")
    per_doc = " one transaction per document, as `sohoa digitise` commits," if args.engine == "fts5" else ""
    print(f"indexing:{per_doc} {ix['pages']} pages / {ix['documents']} documents in {ix['engine_s']} s "
          f"= {ix['pages_per_s']:.0f} pages/s (generation {ix['generate_s']} s apart, final commit/merge "
          f"{ix['finish_s']} s), index {ix['index_bytes'] / 1e6:.0f} MB")
    if bulk:
        print(f"indexing in bulk, as `sohoa reindex` writes: {bulk['pages']} pages / {bulk['documents']} documents "
              f"in {bulk['engine_s']} s = {bulk['pages_per_s']:.0f} pages/s, {bulk_cpu_note(bulk)}")
    print(f"search: {search['queries']} queries, {search['clients']} concurrent clients, {search['qps']} queries/s")
    print(f"{'kind':<12} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'hits':>8} "
          f"{'1-client p50/p95':>17}  example")
    for kind, k in search["kinds"].items():
        one = single["kinds"].get(kind, {})
        solo = f"{one.get('p50_ms', 0):.2f}/{one.get('p95_ms', 0):.2f}"
        print(f"{kind:<12} {k['p50_ms']:>8.2f} {k['p95_ms']:>8.2f} {k['p99_ms']:>8.2f} {k['max_ms']:>8.2f} "
              f"{k['mean_hits']:>8.0f} {solo:>17}  {k['example']}")
    for err in search["errors"]:
        print(f"  error: {err}")
    print(f"snippets: make_snippet costs {snippet_ms:.2f} ms per hit in Python (x10 hits a result page), "
          "part of every kind's latency whatever the engine")
    print(f"peak RSS: {result['peak_rss_mb']:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


# ----------------------------------------------------------------------------------------------- tantivy
# Comparison only: the same pages, the same folding (schemas.text.fold, done in Python before indexing, so the
# index holds folded text like FTS5's), the same columns and weights (code 10, title 4, body 1 via field
# boosts), AND then OR fallback, top 10 with the stored original text for a snippet. One writer, one commit at
# the end (tantivy commits are costly; batching is its normal use).


class TantivyEngine:
    name = "tantivy"

    def __init__(self, directory: Path, *, snippets: bool = True) -> None:
        self.snippets = snippets
        try:
            import tantivy
        except ImportError as exc:
            raise SystemExit("--engine tantivy needs `pip install tantivy` in the venv") from exc
        self.t = tantivy
        self.path = directory / "tantivy"
        self.path.mkdir(parents=True, exist_ok=True)
        sb = tantivy.SchemaBuilder()
        sb.add_text_field("id", stored=True, tokenizer_name="raw")
        for name in ("code", "title", "body"):
            sb.add_text_field(name, stored=False, tokenizer_name="default", index_option="position")
        sb.add_text_field("text", stored=True, index_option="basic", tokenizer_name="raw")
        self.schema = sb.build()
        self.index = tantivy.Index(self.schema, path=str(self.path))
        self.writer = self.index.writer(heap_size=256_000_000, num_threads=1)

    def add(self, manifest: DocumentManifest) -> None:
        md = manifest.metadata
        text = nfc("\n\n".join(p.text for p in manifest.pages))
        code = f"{md.code_number or ''}-{md.code_notation or ''}" if (md.code_number or md.code_notation) else ""
        title = " ".join(str(v) for v in (md.type_name, md.subject, md.organ_name) if v)
        self.writer.add_document(self.t.Document(id=manifest.id, code=fold(code), title=fold(title),
                                                 body=fold(text), text=text))

    def finish(self) -> None:
        self.writer.commit()
        self.writer.wait_merging_threads()
        self.index.reload()

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def _query(self, parsed: object, any_term: bool) -> object:
        t = self.t
        fields = (("code", 10.0), ("title", 4.0), ("body", 1.0))
        items = []
        for term in parsed.terms:  # type: ignore[attr-defined]
            per_field = [(t.Occur.Should, t.Query.boost_query(t.Query.term_query(self.schema, f, term), w))
                         for f, w in fields]
            items.append(t.Query.boolean_query(per_field))
        for phrase in parsed.phrases:  # type: ignore[attr-defined]
            if len(phrase) == 1:
                per_field = [(t.Occur.Should, t.Query.boost_query(t.Query.term_query(self.schema, f, phrase[0]), w))
                             for f, w in fields]
            else:
                per_field = [(t.Occur.Should, t.Query.boost_query(t.Query.phrase_query(self.schema, f, phrase), w))
                             for f, w in fields]
            items.append(t.Query.boolean_query(per_field))
        occur = t.Occur.Should if any_term else t.Occur.Must
        return t.Query.boolean_query([(occur, q) for q in items])

    def searcher(self) -> tuple[Callable[[str], int], Callable[[], None]]:
        from storage.search_sqlite import make_snippet

        index = self.t.Index.open(str(self.path))
        searcher = index.searcher()

        def run(q: str) -> int:
            parsed = parse_query(q)
            if parsed.empty:
                return 0
            query = self._query(parsed, any_term=False)
            total = searcher.search(query, limit=10, count=True)
            if total.count == 0 and len(parsed.terms) + len(parsed.phrases) > 1:
                total = searcher.search(self._query(parsed, any_term=True), limit=10, count=True)
            if not self.snippets:
                return int(total.count or 0)
            wanted = parsed.all_tokens()
            for _score, address in total.hits:  # a result page: stored text and the same snippet code as FTS5's
                make_snippet(searcher.doc(address)["text"][0], wanted)
            return int(total.count or 0)

        return run, lambda: None


if __name__ == "__main__":
    sys.exit(main())
