"""Peak memory per worker process of ``sohoa digitise`` (issue 21, part 3: ≤ 600 MB per worker process).

    python tests/bench/bench_memory.py [BATCH ...] [--a3] [--workers 1,2] [--engines tesseract-cli,tesserocr]
                                       [--a3-formats png,tif,pdf] [--docs N] [--json OUT]

For every batch (default: ``../shared/corpus/dev/batch`` when present, else the bundled sample), every engine
(``SOHOA_OCR_ENGINE``) and every worker count (``SOHOA_WORKERS``: with the threads runner all workers of a run
live in one process), ``sohoa digitise`` runs into a fresh archive while ``tests/tools/memory.py`` samples the
process tree: printed are the peak RSS of the worker process (the ``sohoa`` process itself: Python, OpenCV, the
pages in flight and, with ``tesserocr``, tesseract), of the largest tesseract child (``tesseract-cli`` only), of
Prefect's temporary local API server and of poppler, plus ``wait4``'s figure for the whole tree (it also counts
the pages a forked child shares with its parent before it execs — the Prefect server is started with a pre-exec
hook — so it may exceed every real process: read the per-process columns).
``--a3`` adds a batch of three 600-dpi A3 pages (PNG, TIFF and an image PDF; ``tests/fixtures/a3_pages.py``),
generated in a temporary folder. ``--docs N`` keeps the first N documents of each batch (copied, never linked).
A one-page run's figures repeat within 1 MB; a batch's vary with how many pages were in flight when.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.load import discover_documents  # noqa: E402
from tests.fixtures.a3_pages import write_a3_batch  # noqa: E402
from tests.tools.memory import TreeMemory  # noqa: E402

SOHOA = Path(sys.executable).with_name("sohoa")
DEV = ROOT.parent / "shared" / "corpus" / "dev" / "batch"
SAMPLE = ROOT / "tests" / "fixtures" / "sample_batch"
ENGINES = ("tesseract-cli", "tesserocr")
KINDS = ("worker", "tesseract", "prefect-api", "poppler")


def digitise(batch: Path, archive: Path, *, workers: int, engine: str, extra: dict[str, str] | None = None
             ) -> dict[str, object]:
    """One ``sohoa digitise`` run, sampled; its peaks per kind of process (MB), pages, exit and wall time."""
    report = archive.parent / f"{archive.name}-report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOHOA_")}
    env |= {"OMP_THREAD_LIMIT": "1", "SOHOA_WORKERS": str(workers), "SOHOA_OCR_ENGINE": engine,
            "SOHOA_SECRET_WITHOUT_APPROVAL": "review", "PREFECT_HOME": str(archive.parent / "prefect"),
            **(extra or {})}
    cmd = [str(SOHOA), "digitise", str(batch), "--archive", str(archive), "--report", str(report),
           "--workers", str(workers), "--quiet"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    memory = TreeMemory(proc.pid).start()
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    memory.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 3):
        sys.exit(f"sohoa digitise failed ({proc.returncode}): {stderr.decode('utf-8', 'replace')[-2000:]}")
    data = json.loads(report.read_text(encoding="utf-8"))
    peaks = memory.by_kind()
    return {"batch": str(batch), "engine": engine, "workers": workers, "pages": data["pages_processed"],
            "exit": proc.returncode, "wall_s": round(time.monotonic() - started, 1),
            "largest_mb": round(usage.ru_maxrss / 1024, 1),
            **{f"{kind}_mb": round(peaks.get(kind, 0.0), 1) for kind in KINDS}}


def first_docs(batch: Path, out: Path, docs: int) -> Path:
    """The first ``docs`` documents of ``batch``, copied under ``out`` (the intake refuses symbolic links)."""
    out.mkdir(parents=True)
    for doc in discover_documents(batch)[:docs]:
        source = batch / doc.source
        if source.is_dir():
            shutil.copytree(source, out / doc.source)
        else:
            shutil.copy2(source, out / doc.source)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("batches", nargs="*", type=Path)
    ap.add_argument("--a3", action="store_true", help="add a batch of 600-dpi A3 pages (PNG, TIFF, PDF)")
    ap.add_argument("--workers", default="1,2", help="worker counts, comma-separated (default 1,2)")
    ap.add_argument("--engines", default=",".join(ENGINES), help="OCR engines, comma-separated")
    ap.add_argument("--a3-formats", default="png,tif,pdf", help="formats of the A3 batch (default png,tif,pdf)")
    ap.add_argument("--docs", type=int, default=0, help="only the first N documents of each batch")
    ap.add_argument("--json", type=Path, help="write the rows as JSON")
    args = ap.parse_args()
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="sohoa-memory-") as tmp:
        root = Path(tmp)
        sources = list(args.batches) or ([DEV] if DEV.is_dir() else [SAMPLE])
        labels = [f"{b.resolve().parent.parent.name}/{b.name}" for b in sources]
        batches = sources
        if args.docs:
            batches = [first_docs(b, root / f"subset{i}", args.docs) for i, b in enumerate(sources)]
            labels = [f"{label}[:{args.docs}]" for label in labels]
        if args.a3:
            write_a3_batch(root / "a3", tuple(f for f in args.a3_formats.split(",") if f))
            batches, labels = [*batches, root / "a3"], [*labels, "a3-600dpi"]
        run = 0
        for batch, label in zip(batches, labels, strict=True):
            for engine in [e for e in args.engines.split(",") if e]:
                for workers in [int(w) for w in args.workers.split(",") if w]:
                    run += 1
                    row = digitise(batch, root / f"archive{run}", workers=workers, engine=engine)
                    rows.append({"label": label, **row})
                    print(json.dumps(rows[-1]), flush=True)
    print("peak RSS in MB (VmHWM per process; worker = the sohoa process, all its worker threads)")
    print(f"{'batch':<24}{'engine':<15}{'workers':>8}{'pages':>6}{'worker':>8}{'tesseract':>10}"
          f"{'prefect-api':>12}{'poppler':>8}{'wait4':>8}")
    for r in rows:
        print(f"{str(r['label'])[:23]:<24}{r['engine']:<15}{r['workers']:>8}{r['pages']:>6}{r['worker_mb']:>8.0f}"
              f"{r['tesseract_mb']:>10.0f}{r['prefect-api_mb']:>12.0f}{r['poppler_mb']:>8.0f}{r['largest_mb']:>8.0f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
