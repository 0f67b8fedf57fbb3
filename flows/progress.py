"""Thread-safe progress counters for a running batch, rendered by the CLI as a live bar, and the run's start-up
milestones (``Progress.mark``): when the first page entered cleaning and OCR, when Prefect was ready... kept in the
run log (``flows.run_log``) as seconds after the command started (``process_started_at``)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Progress:
    docs_total: int = 0
    pages_total: int = 0
    docs_finished: int = 0
    pages_finished: int = 0
    pages_skipped: int = 0
    started: float = field(default_factory=time.monotonic)
    milestones: dict[str, float] = field(default_factory=dict)  # name -> first time it happened (epoch seconds)
    milestones_cpu: dict[str, float] = field(default_factory=dict)  # name -> this process's CPU seconds by then
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _marked: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def start(self, docs: int, pages: int) -> None:
        with self._lock:
            self.docs_total, self.pages_total = docs, pages
            self.docs_finished = self.pages_finished = self.pages_skipped = 0
            self.started = time.monotonic()
        with self._marked:
            self.milestones, self.milestones_cpu = {}, {}

    def mark(self, name: str) -> None:
        """Record the first time ``name`` happens in this run (a later one is ignored): ``page_started`` (a page's
        cleaning began), ``ocr_started`` (a page was handed to the OCR engine), ``page_read``, ``prefect_ready``..."""
        now, cpu = time.time(), time.process_time()
        with self._marked:
            if name not in self.milestones:
                self.milestones[name], self.milestones_cpu[name] = now, cpu
            self._marked.notify_all()

    def wait_for(self, name: str, timeout: float) -> bool:
        """True once ``name`` has happened; False when ``timeout`` seconds passed first."""
        with self._marked:
            return self._marked.wait_for(lambda: name in self.milestones, timeout)

    def set_totals(self, docs: int, pages: int) -> None:
        with self._lock:
            self.docs_total, self.pages_total = docs, pages

    def page_done(self) -> None:
        with self._lock:
            self.pages_finished += 1

    def document_done(self, *, skipped_pages: int = 0) -> None:
        with self._lock:
            self.docs_finished += 1
            self.pages_skipped += skipped_pages

    def pages_per_minute(self) -> float:
        elapsed = time.monotonic() - self.started
        return 60.0 * self.pages_finished / elapsed if elapsed > 0 else 0.0

    def render(self, width: int = 24) -> str:
        with self._lock:
            done = self.pages_finished + self.pages_skipped
            total = max(1, self.pages_total)
            frac = min(1.0, done / total)
            rate = self.pages_per_minute()
            left = max(0, self.pages_total - done)
            eta = f"{int(60 * left / rate) // 60:d}:{int(60 * left / rate) % 60:02d}" if rate > 0 else "--:--"
            bar = "█" * int(frac * width) + "░" * (width - int(frac * width))
            return (
                f"{bar} {frac:4.0%}  văn bản {self.docs_finished}/{self.docs_total}  "
                f"trang {done}/{self.pages_total}  {rate:5.1f} trang/phút  còn lại {eta}"
            )


def process_started_at() -> float:
    """When this process started (epoch seconds), from the kernel's record (Linux: 10 ms resolution); elsewhere
    when this module was first imported."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started_since_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 (starttime), 1-based after ")"
        return time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - started_since_boot)
    except (OSError, ValueError, IndexError, AttributeError):
        return _IMPORTED


_IMPORTED = time.time()
