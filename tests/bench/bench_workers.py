"""Throughput of one vs two Prefect process workers sharing a batch through the work queue (issue 23).

    python tests/bench/bench_workers.py [BATCH_DIR] [--docs N] [--copies K]

The production stack of ``tests/test_production_stack.py``, started without Docker: a throw-away PostgreSQL cluster
(sohoa's database and the Prefect server's), SeaweedFS as S3, the Elasticsearch stand-in (osmem, behind the
header proxy), ``prefect server start`` on PostgreSQL; then, for 1 and then 2 workers, a fresh database, bucket
prefix and index: the batch is registered (``sohoa batch add --when tonight``), N ``prefect worker start --limit 1``
come up (each its own archive folder, ``SOHOA_HOST_ID``, TMPDIR), N flow runs of the nightly deployment are
started at once, and the clock runs until the batch has ended. ``SOHOA_WORKERS=1`` per worker and
``OMP_THREAD_LIMIT=1``: each worker is one CPU-bound pipeline, so 2 workers on 2 cores should come close to 2×.

Prints, per run: wall seconds (a worker's poll picked up the first flow run → batch ended; the pick-up wait, up to
the workers' polling interval, printed beside it), pages, pages/min, and the CPU seconds of
the workers' whole process trees (flow runs, tesseract; from ``RUSAGE_CHILDREN`` once the workers are stopped) and
of the whole machine (the servers — PostgreSQL, the Prefect server, SeaweedFS, the search stand-in — share the
same two cores here, unlike a real deployment); then the wall ratio and the CPU ratio. On a shared machine the
wall ratio is noisy (other engineers' jobs take cores); CPU seconds per page show whether the work itself grew
(queue, leases, two Prefect flow-run processes).
Default batch: the dev corpus (``../shared/corpus/dev/batch``), else the bundled sample; ``--docs N`` keeps the
first N documents (copied to a read-only folder); ``--copies K`` makes the batch K times larger (distinct-content
copies of every document, as ``bench_digitise.py --copies``): the workers' start (Prefect flow-run process,
imports, the opener's planning) and the last document's tail are fixed costs a 40-page batch does not amortise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.bench_digitise import replicate  # noqa: E402
from tests.test_production_stack import (  # noqa: E402
    AUTH,
    POOL,
    Night,
    batch_state,
    host_settings,
    read_only,
    shared_settings,
    sohoa,
)
from tests.tools.es_proxy import EsHeaderProxy  # noqa: E402
from tests.tools.postgres import PostgresServer  # noqa: E402
from tests.tools.prefect_server import PrefectServer, PrefectWorkers  # noqa: E402
from tests.tools.seaweed import SeaweedServer  # noqa: E402

DEV_BATCH = ROOT.parent / "shared" / "corpus" / "dev" / "batch"
SAMPLE = ROOT / "tests" / "fixtures" / "sample_batch"


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


PREFECT_POLLING = {"PREFECT_WORKER_QUERY_SECONDS": "10", "PREFECT_WORKER_PREFETCH_SECONDS": "10"}  # the defaults


def machine_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (every process: workers, the servers, anything else)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def one_run(n: int, env: dict[str, Any], server: PrefectServer, batch: Path, root: Path) -> dict[str, float]:
    """The batch digitised by ``n`` workers on a fresh database, prefix and index; its figures."""
    postgres, seaweed, proxy = env["postgres"], env["seaweed"], env["proxy"]
    tag = f"bench-{n}w-{int(time.time())}"
    key = root / tag / "audit.key"  # a new trail, a new key
    db_url = postgres.create_database(tag.replace("-", "_"))
    shared = shared_settings(db_url, seaweed, proxy.url, tag, key)
    shared["SOHOA_LEASE_S"] = "30"
    shared["SOHOA_SECRET_WITHOUT_APPROVAL"] = "review"  # the corpus has classified pages and no approval: read them
    hosts = root / tag
    office = host_settings(shared, hosts, "office")
    api = {"PREFECT_API_URL": server.api_url, "PREFECT_API_AUTH_STRING": AUTH}
    for args in (["serve", "--work-pool", POOL], ["batch", "add", str(batch), "--when", "tonight", "--json"]):
        done = sohoa(office | api, hosts / "office", *args)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
    batch_id = str(json.loads(done.stdout)["id"])
    cpu_before, machine_before = children_cpu_s(), machine_cpu_s()
    with PrefectWorkers(server.api_url, POOL, hosts, auth_string=AUTH) as workers:
        for i in range(n):  # polling the server as a deployed worker does (Prefect's default: every 10 s)
            workers.start(f"host-{i}", host_settings(shared, hosts, f"host-{i}") | PREFECT_POLLING, limit=1)
        time.sleep(8)  # the workers are up and polling before the clock starts (their start is not the work)
        night = Night(server)
        triggered = time.monotonic()
        for _ in range(n):
            night.trigger()
        while not any(night.state(run.id) != "SCHEDULED" for run in night.runs):  # picked up: a worker's poll
            time.sleep(0.2)
        started = time.monotonic()
        while batch_state(db_url, batch_id) in ("queued", "running"):
            if time.monotonic() - started > 3600:
                raise SystemExit(f"{n} worker(s): the batch did not end within an hour")
            time.sleep(0.5)
        wall, pickup = time.monotonic() - started, started - triggered
        workers.stop_all()
    cpu = children_cpu_s() - cpu_before
    machine = machine_cpu_s() - machine_before
    state = batch_state(db_url, batch_id)
    import psycopg

    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT summary FROM batches WHERE id = %s", (batch_id,)).fetchone()
    pages = int(json.loads(row[0])["pages"]) if row and row[0] else 0
    print(f"{n} worker(s): {state}, {pages} pages in {wall:.1f} s wall = {pages / wall * 60:.1f} pages/min "
          f"(+ {pickup:.1f} s until a worker's poll picked the first flow run up); "
          f"workers' CPU {cpu:.1f} s ({cpu / max(pages, 1):.2f} s/page); the whole machine's CPU {machine:.1f} s "
          f"(servers and the rest: {machine - cpu:.1f} s; {machine / wall:.2f} of {os.cpu_count()} cores busy)",
          flush=True)
    return {"wall": wall, "pages": pages, "cpu": cpu, "machine": machine}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("batch", nargs="?", type=Path, default=DEV_BATCH if DEV_BATCH.is_dir() else SAMPLE)
    parser.add_argument("--docs", type=int, default=None, help="keep the first N documents")
    parser.add_argument("--copies", type=int, default=1,
                        help="a K-times larger batch: K distinct-content copies of every document (a night's size)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        root = Path(tmp)
        chosen = root / "chosen"
        chosen.mkdir()
        items = sorted(p for p in args.batch.iterdir() if not p.name.startswith("."))
        docs = [p for p in items if p.suffix != ".toml"][: args.docs] + [p for p in items if p.suffix == ".toml"]
        for p in docs:
            (shutil.copytree if p.is_dir() else shutil.copy)(p, chosen / p.name)
        batch = root / "share" / "batch"
        batch.parent.mkdir()
        if args.copies > 1:
            replicate(chosen, batch, args.copies)
        else:
            chosen.rename(batch)
        with PostgresServer() as postgres, SeaweedServer(root / "seaweed") as seaweed, read_only(batch):
            from osmem_server import OsmemServer

            osmem = OsmemServer.start(japanese=False, addr="127.0.0.1:0", startup_timeout=60.0)
            try:
                with EsHeaderProxy(osmem.url) as proxy, \
                        PrefectServer(postgres.create_database("prefect_bench"), root / "server",
                                      auth_string=AUTH) as server:
                    env = {"postgres": postgres, "seaweed": seaweed, "proxy": proxy}
                    one = one_run(1, env, server, batch, root)
                    two = one_run(2, env, server, batch, root)
            finally:
                osmem.close()
    print(f"2 workers vs 1: wall {one['wall'] / two['wall']:.2f}× faster; CPU per page "
          f"{two['cpu'] / max(two['pages'], 1):.2f} s vs {one['cpu'] / max(one['pages'], 1):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
