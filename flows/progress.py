"""Thread-safe progress counters for a running batch, rendered by the CLI as a live bar."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Progress:
    docs_total: int = 0
    pages_total: int = 0
    docs_finished: int = 0
    pages_finished: int = 0
    pages_skipped: int = 0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self, docs: int, pages: int) -> None:
        with self._lock:
            self.docs_total, self.pages_total = docs, pages
            self.docs_finished = self.pages_finished = self.pages_skipped = 0
            self.started = time.monotonic()

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
