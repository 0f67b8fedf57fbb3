"""Start-up of ``sohoa digitise`` and a small batch end to end against its pages' OCR alone (issue 21, part 2).

    python tests/bench/bench_startup.py [BATCH_DIR] [--workers N] [--repeat R]

BATCH_DIR defaults to the bundled sample (``tests/fixtures/sample_batch``: 5 documents, 8 pages). One unmeasured
warm-up run of ``sohoa digitise`` first (Prefect's database, the page cache, Python's bytecode), then R times:

(a) start-up: from launching ``sohoa digitise BATCH --workers N --quiet`` (just before the subprocess is created)
    to the first page entering OCR — the run's ``ocr_started`` milestone in ``<archive>/run-log.jsonl``
    (``flows.progress.Progress.mark``: the moment the first cleaned page is handed to the OCR engine), and the
    sohoa process's own CPU seconds by then (``milestones_cpu_s``; the Prefect API child's not included);
(b) the batch end to end: from the same launch to the command's exit, into a fresh archive;
(b') the same documents through sohoa's own pipeline without Prefect (``digitise_document`` on the flow's thread
    count, a fresh process, no API, no Prefect import): what the orchestrator adds is b - b';
(c) the same pages in OCR alone, with the same parallelism (N at once, ``OMP_THREAD_LIMIT=1``): the RAW page images
    (decoded by sohoa's loader and written as PNG beforehand, not cleaned; nothing else counted) read by
    ``tesseract -l vie --oem 1 --psm 3 txt`` (the command, N processes at once), and by tesserocr in-process
    (sohoa's ``TesserocrEngine``, N threads, the model loaded once per thread before the clock starts).
Prints median and max of each, the ratio b/c (the OCR engine sohoa ran, ``SOHOA_OCR_ENGINE``, is the one compared;
the other is printed too), CPU seconds (sohoa's whole process tree from ``os.wait4``; the command's from its
processes; in-process from ``time.process_time``) and ``os.getloadavg()`` with every figure: wall clock on a shared
2-core machine swings, CPU time much less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "bench"))
from bench_digitise import extract_pages  # noqa: E402

SAMPLE = ROOT / "tests" / "fixtures" / "sample_batch"


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_sohoa(batch: Path, archive: Path, workers: int, code: Path | None = None) -> dict[str, float]:
    """One ``sohoa digitise`` into a fresh ``archive``: start-up, end-to-end wall and CPU of its process tree.
    ``code``: another checkout of sohoa to run instead (first on ``PYTHONPATH``; the same venv)."""
    sohoa = Path(sys.executable).with_name("sohoa")
    cmd = [str(sohoa), "digitise", str(batch), "--archive", str(archive), "--workers", str(workers), "--quiet",
           "--report", str(archive.parent / f"{archive.name}.json")]
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    if code is not None:
        env["PYTHONPATH"] = str(code.resolve())
    launched = time.time()
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    ended = time.time()
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code not in (0, 3):
        sys.exit(f"sohoa digitise failed ({code}): {err[-2000:].decode(errors='replace')}")
    entry = json.loads((archive / "run-log.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    started = datetime.fromisoformat(entry["started_at"]).timestamp()
    milestones = entry["milestones"]
    return {"startup": started + milestones["ocr_started"] - launched, "startup_own": milestones["ocr_started"],
            "startup_cpu": entry["milestones_cpu_s"]["ocr_started"],
            "wall": ended - launched, "cpu": usage.ru_utime + usage.ru_stime,
            "pages": float(entry["pages"]), **{f"m_{k}": v for k, v in milestones.items()}}


def pipeline_only(batch: Path, archive: Path, workers: int) -> None:
    """(In a child process) the batch through sohoa's own document pipeline with no orchestrator: every document
    by ``digitise_document`` on ``workers + 1`` threads (the flow's task runner) sharing the page pool, as a run
    does, then the index merge; no Prefect API, no Prefect import."""
    from flows.document import digitise_document
    from flows.inbox import batch_documents, batch_name
    from flows.wiring import close_all, services_for
    from schemas.settings import Settings
    from storage.search_sqlite import worth_compacting

    settings = Settings(archive=archive, workers=workers)
    services = services_for(settings)
    docs = batch_documents(batch, settings)
    with ThreadPoolExecutor(workers + 1) as pool:
        results = list(pool.map(lambda doc: digitise_document(doc, batch_name(batch), services), docs))
    added = sum(1 for r in results if not r.skipped and r.status != "failed")
    if worth_compacting(services.catalog.count(), added):
        services.catalog.compact_search()
    close_all()


def run_pipeline_only(batch: Path, archive: Path, workers: int) -> dict[str, float]:
    """``pipeline_only`` in a fresh process, timed from launch to exit; CPU of its process tree."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    launched = time.time()
    proc = subprocess.Popen([sys.executable, __file__, str(batch), "--pipeline-only", str(archive),
                             "--workers", str(workers)], env=env, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"pipeline-only run failed ({proc.returncode})")
    return {"wall": time.time() - launched, "cpu": usage.ru_utime + usage.ru_stime}


def raw_cli(pages: list[tuple[Path, int]], workers: int) -> dict[str, float]:
    """The command ``tesseract -l vie`` on every page, ``workers`` processes at once: wall and CPU."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    cpu = [0.0]
    lock = threading.Lock()

    def one(item: tuple[Path, int]) -> None:
        path, dpi = item
        proc = subprocess.Popen(["tesseract", str(path), str(path.with_suffix("")), "-l", "vie", "--oem", "1",
                                 "--psm", "3", "--dpi", str(dpi), "txt"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        with lock:
            cpu[0] += usage.ru_utime + usage.ru_stime

    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, pages))
    return {"wall": time.monotonic() - started, "cpu": cpu[0]}


def in_process(pages: list[tuple[Path, int]], workers: int) -> dict[str, float]:
    """sohoa's tesserocr engine alone on every page, ``workers`` threads (model loaded before the clock starts)."""
    from flows.wiring import build_engine
    from schemas.settings import Settings

    engine = build_engine(Settings(ocr_engine="tesserocr", workers=workers))
    barrier = threading.Barrier(workers + 1)
    queue = list(pages)
    lock = threading.Lock()

    def worker() -> None:
        engine.languages()
        warm = getattr(engine, "_api", None)
        if callable(warm):
            warm()
        barrier.wait()
        while True:
            with lock:
                if not queue:
                    return
                path, dpi = queue.pop(0)
            engine.recognize(path, dpi=dpi, number=1)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    barrier.wait()
    started, cpu = time.monotonic(), time.process_time()
    for t in threads:
        t.join()
    return {"wall": time.monotonic() - started, "cpu": time.process_time() - cpu}


def summary(name: str, runs: list[dict[str, float]], key: str, unit: str = "s") -> str:
    values = [r[key] for r in runs]
    return f"{name}: median {statistics.median(values):.2f} {unit}, max {max(values):.2f} {unit}"


def repeat(what: str, fn: Callable[[], dict[str, float]], times: int) -> list[dict[str, float]]:
    runs = []
    for k in range(times):
        run = fn()
        runs.append(run)
        figures = "  ".join(f"{key} {value:.2f}" for key, value in run.items())
        print(f"  {what} {k + 1}/{times}: {figures}  ({load()})", flush=True)
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("batch", type=Path, nargs="?", default=SAMPLE)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--against", type=Path, metavar="CHECKOUT",
                    help="also run another checkout's sohoa (same venv, e.g. a git worktree of main), its runs "
                         "alternating with this one's: (a) and (b) before/after under the same machine load")
    ap.add_argument("--pipeline-only", type=Path, metavar="ARCHIVE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.pipeline_only:
        pipeline_only(args.batch, args.pipeline_only, args.workers)
        return
    engine = os.environ.get("SOHOA_OCR_ENGINE", "tesseract-cli")
    with tempfile.TemporaryDirectory(prefix="sohoa-bench-startup-") as tmp:
        root = Path(tmp)
        (root / "pages").mkdir()
        pages = extract_pages(args.batch, root / "pages")
        print(f"{args.batch}: {len(pages)} pages, {args.workers} workers, engine {engine}; warm-up run "
              f"({load()})", flush=True)
        run_sohoa(args.batch, root / "warm-up", args.workers)
        sohoa, other = [], []
        for _ in range(args.repeat):
            sohoa += repeat("sohoa", lambda: run_sohoa(args.batch, root / f"a{time.monotonic_ns()}", args.workers), 1)
            if args.against:
                other += repeat(f"sohoa ({args.against})", lambda: run_sohoa(
                    args.batch, root / f"o{time.monotonic_ns()}", args.workers, args.against), 1)
        bare = repeat("pipeline without Prefect", lambda: run_pipeline_only(
            args.batch, root / f"p{time.monotonic_ns()}", args.workers), args.repeat)
        cli = repeat("raw tesseract command", lambda: raw_cli(pages, args.workers), args.repeat)
        tesserocr = repeat("tesserocr in-process", lambda: in_process(pages, args.workers), args.repeat)
    print(f"\n{len(pages)} pages, {args.workers} workers, {args.repeat} runs each ({load()} at the end)")
    print("(a) " + summary("start-up, launch to first page in OCR", sohoa, "startup")
          + "; " + summary("as the run log says, from the process's start", sohoa, "startup_own")
          + "; " + summary("sohoa's CPU by then (its own process)", sohoa, "startup_cpu"))
    print("(b) " + summary("batch end to end, wall", sohoa, "wall") + "; " + summary("CPU", sohoa, "cpu"))
    if other:
        print(f"    {args.against}: (a) " + summary("start-up", other, "startup") + "; "
              + summary("CPU by then", other, "startup_cpu") + "; (b) " + summary("end to end, wall", other, "wall")
              + "; " + summary("CPU", other, "cpu"))
    print("(b') " + summary("the same documents through sohoa's pipeline without Prefect, wall", bare, "wall")
          + "; " + summary("CPU", bare, "cpu"))
    print("(c) " + summary("raw tesseract command, wall", cli, "wall") + "; " + summary("CPU", cli, "cpu"))
    print("(c) " + summary("tesserocr in-process, wall", tesserocr, "wall") + "; "
          + summary("CPU", tesserocr, "cpu"))
    compared = tesserocr if engine == "tesserocr" else cli
    b, c = statistics.median(r["wall"] for r in sohoa), statistics.median(r["wall"] for r in compared)
    b_cpu, c_cpu = statistics.median(r["cpu"] for r in sohoa), statistics.median(r["cpu"] for r in compared)
    other = cli if compared is tesserocr else tesserocr
    b_bare = statistics.median(r["wall"] for r in bare)
    print(f"b/c (medians, engine {engine}): wall {b / c:.2f} (target <= 1.3), CPU {b_cpu / c_cpu:.2f}; against the "
          f"other engine: wall {b / statistics.median(r['wall'] for r in other):.2f}")
    print(f"b'/c (without Prefect): wall {b_bare / c:.2f}, CPU {statistics.median(r['cpu'] for r in bare) / c_cpu:.2f}")


if __name__ == "__main__":
    main()
