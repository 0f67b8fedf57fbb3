"""A worker process of the shared work queue, for ``tests/test_work_queue.py``'s multi-process test.

    python -m tests.tools.queue_worker TARGET BATCH_ID NAME LOG OFFSET_FILE [--hang-at N] [--pause-after N MARKER]

``TARGET``: a ``postgresql://`` URL or the registry's SQLite file. The worker claims documents of the running batch
``BATCH_ID`` one by one and completes them, appending ``NAME SOURCE`` to ``LOG`` for each completion the queue
accepted. Its clock is the system clock plus the seconds in ``OFFSET_FILE`` (read at every step), so the test
expires another worker's leases by writing a large offset, without waiting.

- ``--hang-at N``: on its N-th claim, write ``LOG.NAME.holding`` (the source it holds) and hang, holding the claim,
  until it is killed;
- ``--pause-after N MARKER``: after N completions, wait until the file ``MARKER`` exists (so another worker surely
  gets its claims before this one runs out of documents).

When nothing is claimable it waits while another worker holds a live claim, and exits once the queue is settled.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from storage.batches import BatchRegistry
from storage.db import is_database_url, open_database

LEASE_S = 60.0
POLL_S = 0.02


def _now(offset_file: Path) -> float:
    text = offset_file.read_text(encoding="utf-8").strip() if offset_file.exists() else ""
    return time.time() + (float(text) if text else 0.0)


def _wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(POLL_S)


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("target", "batch_id", "name", "log", "offset_file"):
        parser.add_argument(name)
    parser.add_argument("--hang-at", type=int, default=0)
    parser.add_argument("--pause-after", nargs=2, default=None)
    args = parser.parse_args()
    target = args.target
    registry = BatchRegistry(open_database(target) if is_database_url(target) else Path(target))
    log, offset_file = Path(args.log), Path(args.offset_file)
    claims = completions = 0
    while True:
        now = _now(offset_file)
        claim = registry.queue.claim(args.batch_id, worker=args.name, now_s=now, until_s=now + LEASE_S)
        if claim is None:
            if registry.queue.state(args.batch_id, worker=args.name, now_s=_now(offset_file)).settled:
                break
            time.sleep(POLL_S)  # another worker holds a live claim: it may die and its claim come back
            continue
        claims += 1
        if claims == args.hang_at:
            holding = Path(f"{log}.{args.name}.holding")
            holding.with_suffix(".tmp").write_text(claim.source, encoding="utf-8")
            holding.with_suffix(".tmp").rename(holding)
            while True:  # holds the claim until SIGKILL
                time.sleep(1.0)
        if registry.queue.complete(args.batch_id, claim.source, worker=args.name):
            with log.open("a", encoding="utf-8") as out:
                out.write(f"{args.name} {claim.source}\n")
            completions += 1
        if args.pause_after is not None and completions == int(args.pause_after[0]):
            _wait_for(Path(args.pause_after[1]))
    registry.close()


if __name__ == "__main__":
    main()
