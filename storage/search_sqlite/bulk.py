"""Bulk writes (``sohoa reindex``, a restore): the documents' rows are prepared (NFC, folding, exact words,
word pairs, JSON: Python, about half the work) in other processes while this one writes them to SQLite (FTS5's
own work, in C). On two cores a rebuild runs about 1.6x faster than preparing and writing in turn.

``PreparePool(processes)`` is a ``write.Preparer``: it maps ``write.prepare_rows`` over the batches in order,
with at most ``AHEAD`` batches a process in flight (the entries are read as they are needed: a rebuild streams
its documents, and never holds them all). The first ``HERE_FIRST`` batches are prepared here, in this process:
a small rebuild starts no process at all. Processes are started by ``spawn`` (a fork of a process with threads
may copy a held lock) and ended with the rebuild. A batch that fails in a process fails the rebuild (its
transaction is rolled back: nothing half-written), with the process's error."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice

from schemas.search import IndexEntry
from storage.search_sqlite.write import DocRows, prepare_rows

AHEAD = 4  # batches in flight per process (each 256 documents: a few MB pickled)
HERE_FIRST = 8  # batches prepared in this process before any other process is started
MAX_AUTO_PROCESSES = 4


def auto_processes() -> int:
    """Processes that prepare rows when none are set: this machine's cores (at most ``MAX_AUTO_PROCESSES``)."""
    return max(1, min(MAX_AUTO_PROCESSES, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))


class PreparePool:
    """A ``write.Preparer`` that prepares in ``processes`` other processes (1: here, in this process)."""

    def __init__(self, processes: int | None = None) -> None:
        self.processes = processes or auto_processes()

    def __call__(self, batches: Iterable[list[IndexEntry]]) -> Iterator[list[DocRows]]:
        batches = iter(batches)
        for batch in islice(batches, HERE_FIRST if self.processes > 1 else None):
            yield prepare_rows(batch)
        if self.processes <= 1:
            return
        first = next(batches, None)
        if first is None:
            return
        with ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield from _in_order(pool, first, batches, self.processes * AHEAD)


def _in_order(pool: ProcessPoolExecutor, first: list[IndexEntry], rest: Iterator[list[IndexEntry]],
              window: int) -> Iterator[list[DocRows]]:
    """The prepared rows of ``first`` and ``rest``, in order, with at most ``window`` batches submitted ahead."""
    pending: deque[Future[list[DocRows]]] = deque([pool.submit(prepare_rows, first)])
    try:
        for batch in rest:
            pending.append(pool.submit(prepare_rows, batch))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:  # the rebuild failed or stopped: what is left is not written
            future.cancel()
