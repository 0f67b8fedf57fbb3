"""The live progress line on stderr while a batch runs (``sohoa digitise``, ``sohoa batch add|retry``)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def _redraw(stop: threading.Event, render: Callable[[], str]) -> None:
    while not stop.wait(0.5):
        sys.stderr.write("\r" + render() + " ")
        sys.stderr.flush()


@contextmanager
def progress_line(render: Callable[[], str], *, shown: bool) -> Iterator[None]:
    """Redraw ``render()`` on stderr twice a second while the block runs (when ``shown`` and stderr is a
    terminal), then write its final state on a line of its own."""
    if not (shown and sys.stderr.isatty()):
        yield
        return
    stop = threading.Event()
    bar = threading.Thread(target=_redraw, args=(stop, render), daemon=True)
    bar.start()
    try:
        yield
    finally:
        stop.set()
        bar.join()
        sys.stderr.write("\r" + render() + "\n")
