"""End-to-end throughput of ``sohoa digitise`` against raw ``tesseract -l vie`` on the same pages.

    python tests/bench/bench_digitise.py BATCH_DIR [--workers N] [--copies K] [--repeat R]

1. Every page of the batch is decoded with sohoa's own loader and written as PNG (at the scan's resolution).
2. Raw tesseract (``-l vie --oem 1 --psm 3``, text output) reads those PNGs, N processes at once with
   ``OMP_THREAD_LIMIT=1`` — the best a script around the raw tool does on this machine.
3. ``sohoa digitise`` runs on the batch into a fresh archive (a subprocess, N workers), timed from the
   command's start to its end: Prefect's local API start, preprocessing, OCR, PDF/A, storage and indexing.
``--copies K`` benchmarks a K-times larger batch: K copies of every document, each copy's bytes made distinct
by a marker appended after the file's end (decoders ignore it; sohoa's content ids differ), so the same pages
are read K times by both sides. ``--repeat R`` alternates raw and sohoa runs R times (a fresh archive each
time) and reports medians: on these shared machines one run of either varies by ±10 %.
Prints pages/min for both, the ratio, sohoa's own processing rate (without the fixed start-up cost), and the
peak resident memory of the largest child process (the sohoa process).

OCR engines side by side (``--engines``, by default both, on batches without ``--copies``): for each engine
(``SOHOA_OCR_ENGINE``) ``sohoa digitise`` runs once more into a fresh archive and the bench prints its pages/min,
its CPU seconds per page (the whole process tree: cleaning, OCR, re-reads, PDF/A, Prefect) and, when the batch is
a scored corpus (``--corpus``, default: the batch's parent when it holds ``manifest.jsonl``), the page CER and
body CER from the corpus's ``score.py``; then each engine alone (``recognize`` on the raw pages, one at a time):
CPU seconds per page. ``--docs N`` keeps the first N documents of the batch (a short run).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pipeline.load import discover_documents, iter_pages

ENGINES = ("tesseract-cli", "tesserocr")


def replicate(batch: Path, out: Path, copies: int) -> Path:
    """``copies`` distinct-content copies of every document of ``batch`` under ``out``."""
    out.mkdir()
    for k in range(1, copies + 1):
        for doc in discover_documents(batch):
            target = out / f"c{k}_{doc.source}"
            if doc.kind == "folder":
                target.mkdir()
                pairs = [(p, target / p.name) for p in doc.files]
            else:
                pairs = [(doc.files[0], target)]
            for src, dst in pairs:
                dst.write_bytes(src.read_bytes() + f"\n%sohoa-bench-copy-{k}\n".encode())
    return out


def extract_pages(batch: Path, out: Path) -> list[tuple[Path, int]]:
    pages: list[tuple[Path, int]] = []
    for doc in discover_documents(batch):
        try:
            for page in iter_pages(doc):
                path = out / f"{len(pages):05d}.png"
                cv2.imwrite(str(path), page.image)
                pages.append((path, page.dpi))
        except Exception as exc:  # bad documents are skipped by both sides
            print(f"skip {doc.source}: {exc}")
    return pages


def raw_tesseract(pages: list[tuple[Path, int]], workers: int) -> float:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def one(item: tuple[Path, int]) -> None:
        path, dpi = item
        subprocess.run(["tesseract", str(path), str(path.with_suffix("")), "-l", "vie", "--oem", "1",
                        "--psm", "3", "--dpi", str(dpi), "txt"], env=env, capture_output=True, check=True)

    start = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, pages))
    return time.monotonic() - start


def run_sohoa(batch: Path, archive: Path, workers: int, env: dict[str, str] | None = None
              ) -> tuple[float, dict[str, object]]:
    report = archive.parent / f"{archive.name}-report.json"
    sohoa = Path(sys.executable).with_name("sohoa")
    cmd = [str(sohoa), "digitise", str(batch), "--archive", str(archive), "--report", str(report),
           "--workers", str(workers), "--quiet"]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    elapsed = time.monotonic() - start
    if proc.returncode not in (0, 3):
        sys.exit(f"sohoa digitise failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed, json.loads(report.read_text(encoding="utf-8"))


def subset(batch: Path, out: Path, docs: int, corpus: Path | None) -> tuple[Path, Path | None]:
    """The first ``docs`` documents of ``batch`` (copied under ``out``) and, for a corpus, its manifest cut to them."""
    chosen = discover_documents(batch)[:docs]
    (out / "batch").mkdir(parents=True)
    for doc in chosen:  # copies: the intake refuses symbolic links
        source, target = batch / doc.source, out / "batch" / doc.source
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    if corpus is None:
        return out / "batch", None
    sources = {doc.source for doc in chosen}
    lines = (corpus / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line)["doc_source"] in sources]
    (out / "corpus").mkdir()
    (out / "corpus" / "manifest.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")
    for name in ("gt", "meta"):
        (out / "corpus" / name).symlink_to(corpus / name)
    (out / "corpus" / "batch").symlink_to(out / "batch")
    return out / "batch", out / "corpus"


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def score_script(corpus: Path) -> Path | None:
    """The corpus's ``score.py`` (beside the corpus folder, as in ``../shared/corpus``)."""
    return next((p for p in (corpus / "score.py", corpus.parent / "score.py") if p.exists()), None)


def score_cer(script: Path, corpus: Path, archive: Path, report: Path) -> tuple[float, float | None]:
    """Page CER and body CER of a digitised corpus (the corpus's own ``score.py``)."""
    out = archive.parent / f"{archive.name}-score.json"
    subprocess.run([sys.executable, str(script), "ocr", str(corpus), "--archive", str(archive), "--report",
                    str(report), "--sohoa", str(Path(sys.executable).with_name("sohoa")), "--json", str(out)],
                   check=True, capture_output=True, text=True)
    total = json.loads(out.read_text(encoding="utf-8"))["total"]
    return float(total["CER"]), total["body_CER"]


def compare_engines(batch: Path, root: Path, workers: int, engines: list[str],
                    scoring: tuple[Path, Path] | None, pages: list[tuple[Path, int]]) -> None:
    """Each engine end to end (pages/min, CPU s/page, CER) and alone on the raw pages (CPU s/page)."""
    from flows.wiring import build_engine
    from schemas.settings import Settings

    rows = []
    for engine in engines:
        archive = root / f"engine-{engine}"
        cpu = children_cpu_s()
        wall, report = run_sohoa(batch, archive, workers, {"SOHOA_OCR_ENGINE": engine})
        cpu = children_cpu_s() - cpu
        processed = int(report["pages_processed"])  # type: ignore[call-overload]
        report_path = archive.parent / f"{archive.name}-report.json"
        cer, body = score_cer(*scoring, archive, report_path) if scoring else (float("nan"), None)
        ocr = build_engine(Settings(ocr_engine=engine))  # type: ignore[arg-type]
        alone_cpu = time.process_time() + children_cpu_s()
        for path, dpi in pages:
            ocr.recognize(path, dpi=dpi, number=1)
        alone_cpu = time.process_time() + children_cpu_s() - alone_cpu
        rows.append((engine, processed, 60 * processed / wall, float(report["pages_per_minute"]),  # type: ignore[arg-type]
                     cpu / max(1, processed), cer, body, alone_cpu / max(1, len(pages))))
        print(f"engine {engine}: {wall:.1f} s, {processed} pages", flush=True)
    print("pages/min: end to end (processing only, without the fixed start-up); CPU s/page: the whole sohoa "
          "process tree, start-up included; alone: the engine's recognize on the raw pages, nothing else")
    print(f"{'engine':<15}{'pages':>6}{'pages/min':>11}{'(processing)':>14}{'CPU s/page':>12}{'CER %':>8}"
          f"{'body CER %':>12}{'alone CPU s/page':>18}")
    for engine, processed, ppm, processing, cpu_page, cer, body, alone in rows:
        body_text = "-" if body is None else f"{100 * body:.2f}"
        print(f"{engine:<15}{processed:>6}{ppm:>11.1f}{processing:>14.1f}{cpu_page:>12.2f}{100 * cer:>8.2f}"
              f"{body_text:>12}{alone:>18.2f}")


def bench_input(args: argparse.Namespace, root: Path) -> tuple[Path, tuple[Path, Path] | None]:
    """The batch to run (``--docs``: its first documents) and, for a scored corpus, (score.py, corpus)."""
    corpus = args.corpus
    if corpus is None and (args.batch.resolve().parent / "manifest.jsonl").exists():
        corpus = args.batch.resolve().parent
    script = score_script(corpus) if corpus is not None else None
    if args.docs:
        batch, cut = subset(args.batch.resolve(), root / "subset", args.docs, corpus if script else None)
        return batch, (script, cut) if script and cut else None
    return args.batch, (script, corpus) if script and corpus else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("batch", type=Path)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--s3", action="store_true",
                    help="also digitise into an S3 store (a local SeaweedFS) and compare its wall time")
    ap.add_argument("--engines", default=None,
                    help=f"OCR engines to compare, comma-separated (default: {','.join(ENGINES)} without --copies)")
    ap.add_argument("--engines-only", action="store_true", help="only the engine comparison (no raw/sohoa runs)")
    ap.add_argument("--corpus", type=Path, default=None,
                    help="scored corpus of the batch (default: the batch's parent when it has manifest.jsonl)")
    ap.add_argument("--docs", type=int, default=0, help="only the first N documents of the batch")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sohoa-bench-") as tmp:
        root = Path(tmp)
        (root / "pages").mkdir()
        source, scoring = bench_input(args, root)
        pages = extract_pages(source, root / "pages") * args.copies
        n = len(pages)
        batch = replicate(source, root / "batch", args.copies) if args.copies > 1 else source
        engines = [e for e in (args.engines or (",".join(ENGINES) if args.copies == 1 else "")).split(",") if e]
        if args.engines_only:
            compare_engines(batch, root, args.workers, engines, scoring, pages)
            return
        raw_runs, sohoa_runs, s3_runs = [], [], []
        server = None
        if args.s3:
            from tests.tools.seaweed import SeaweedServer

            server = SeaweedServer(root / "seaweed").start()
        try:
            for r in range(args.repeat):
                raw_runs.append(raw_tesseract(pages, args.workers))
                sohoa_runs.append(run_sohoa(batch, root / f"archive{r}", args.workers))
                print(f"run {r + 1}: raw {raw_runs[-1]:.1f} s, sohoa {sohoa_runs[-1][0]:.1f} s, "
                      f"ratio {raw_runs[-1] / sohoa_runs[-1][0]:.2f}", flush=True)
                if server is not None:
                    env = {"SOHOA_OBJECT_STORE": "s3", "SOHOA_S3_ENDPOINT": server.endpoint,
                           "SOHOA_S3_ACCESS_KEY": server.access_key, "SOHOA_S3_SECRET_KEY": server.secret_key,
                           "SOHOA_S3_BUCKET": "bench", "SOHOA_S3_PREFIX": f"run{r}"}
                    s3_runs.append(run_sohoa(batch, root / f"s3archive{r}", args.workers, env)[0])
                    print(f"run {r + 1}: sohoa into S3 {s3_runs[-1]:.1f} s "
                          f"(directory store {sohoa_runs[-1][0]:.1f} s)", flush=True)
        finally:
            if server is not None:
                server.stop()
        raw_s = statistics.median(raw_runs)
        sohoa_s, report = sorted(sohoa_runs, key=lambda run: run[0])[len(sohoa_runs) // 2]
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if engines:
            compare_engines(batch, root, args.workers, engines, scoring, pages)
    processed = int(report["pages_processed"])  # type: ignore[call-overload]
    raw_ppm = 60 * n / raw_s
    e2e_ppm = 60 * processed / sohoa_s
    print(f"batch: {args.batch} x{args.copies}  pages: {n}  workers: {args.workers}")
    print(f"medians of {args.repeat} run(s):")
    print(f"raw tesseract : {raw_s:7.1f} s  {raw_ppm:6.1f} pages/min")
    print(f"sohoa digitise: {sohoa_s:7.1f} s  {e2e_ppm:6.1f} pages/min end to end "
          f"(processing only: {report['pages_per_minute']} pages/min in {report['elapsed_s']} s)")
    print(f"ratio end-to-end / raw: {e2e_ppm / raw_ppm:.2f}   "
          f"ratio processing / raw: {float(report['pages_per_minute']) / raw_ppm:.2f}")  # type: ignore[arg-type]
    print(f"peak RSS of one child process (largest): {peak_mb:.0f} MB")
    if s3_runs:
        s3_s = statistics.median(s3_runs)
        print(f"object store: directory {sohoa_s:.1f} s, S3 (SeaweedFS) {s3_s:.1f} s — "
              f"S3 costs {100 * (s3_s / sohoa_s - 1):+.1f} % wall time")


if __name__ == "__main__":
    main()
