"""Scale-out on one machine (issue 21, part 5): one batch through ``sohoa digitise`` on the Dask task runner with
1 and then 2 single-threaded workers, and what that says about sizing a night.

    python tests/bench/bench_dask.py [BATCH_DIR] [--copies K] [--workers 1,2] [--night-pages N] [--hours H]

BATCH_DIR defaults to the dev corpus (``../shared/corpus/dev/batch``), else the bundled sample; ``--copies K``
makes it K times larger (distinct-content copies of every document, as ``bench_digitise.py --copies``), so the
fixed costs (Prefect's local API, the LocalCluster's start, each worker's first import of sohoa) weigh less.
Each run: ``SOHOA_TASK_RUNNER=dask``, ``--workers N`` (a LocalCluster of N single-threaded worker processes),
``OMP_THREAD_LIMIT=1``, a fresh archive; one unmeasured run first (Prefect's database, bytecode, the page cache).

Prints per run: wall seconds, pages digitised, pages/min, the CPU seconds of the whole process tree (sohoa, the
Dask scheduler and workers, tesseract, the Prefect API; ``RUSAGE_CHILDREN``) and per page, and the load before;
then the ratio of the last run to the first (wall pages/min; the issue asks 2 workers >= 1.7 x 1), pages/hour
per core from the CPU seconds per page (what one core digitises when nothing else runs), and how many
single-threaded workers (cores) a night of ``--night-pages`` pages in ``--hours`` hours needs at that rate.
Wall figures swing on shared machines: read them with the load printed beside them.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_digitise import children_cpu_s, replicate, run_sohoa

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT.parent / "shared" / "corpus" / "dev" / "batch"
SAMPLE = ROOT / "tests" / "fixtures" / "sample_batch"


def one_run(batch: Path, archive: Path, workers: int) -> dict[str, float]:
    load = os.getloadavg()[0]
    cpu = children_cpu_s()
    env = {"SOHOA_TASK_RUNNER": "dask", "SOHOA_WORKERS": str(workers), "OMP_THREAD_LIMIT": "1"}
    wall, report = run_sohoa(batch, archive, workers, env)
    cpu = children_cpu_s() - cpu
    pages = int(report["pages_processed"])  # type: ignore[call-overload]
    return {"workers": workers, "wall_s": wall, "pages": pages, "ppm": 60 * pages / wall, "cpu_s": cpu,
            "cpu_per_page": cpu / max(1, pages), "load": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("batch", type=Path, nargs="?", default=DEV if DEV.exists() else SAMPLE)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--workers", default="1,2", help="worker counts to run, in order")
    ap.add_argument("--night-pages", type=int, default=100_000)
    ap.add_argument("--hours", type=float, default=8.0)
    args = ap.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        root = Path(tmp)
        batch = replicate(args.batch.resolve(), root / "batch", args.copies) if args.copies > 1 else args.batch
        print(f"batch {args.batch} x{args.copies}; warm-up run (not measured) ...", flush=True)
        one_run(args.batch, root / "warm-up", max(counts))
        runs = []
        for n in counts:
            run = one_run(batch, root / f"archive-{n}", n)
            runs.append(run)
            print(f"{n} worker(s): {run['wall_s']:.1f} s, {run['pages']} pages, {run['ppm']:.1f} pages/min, "
                  f"CPU {run['cpu_s']:.1f} s ({run['cpu_per_page']:.2f} s/page), load before {run['load']:.2f}",
                  flush=True)
    first, last = runs[0], runs[-1]
    print(f"\n{last['workers']} vs {first['workers']} worker(s): {last['ppm'] / first['ppm']:.2f} x pages/min "
          f"(wall; CPU per page {last['cpu_per_page'] / first['cpu_per_page']:.2f} x)")
    per_core = 3600 / first["cpu_per_page"]
    need = math.ceil(args.night_pages / (per_core * args.hours))
    print(f"sizing: {per_core:.0f} pages/hour per core (from {first['workers']} worker's CPU s/page, the whole "
          f"process tree); a night of {args.night_pages:,} pages in {args.hours:g} h needs {need} single-threaded "
          f"workers (cores), at {100 * args.night_pages / (need * per_core * args.hours):.0f} % of them")


if __name__ == "__main__":
    main()
