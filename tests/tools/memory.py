"""Peak resident memory of a process tree, per process (issue 21, part 3: memory that fits small machines).

``TreeMemory(pid)`` samples ``/proc`` every ``interval`` seconds while the process runs and keeps, for the process
and each of its descendants, the highest ``VmHWM`` (the kernel's own peak-RSS high-water mark, so a peak between
two samples is not lost as long as the process is still alive at the next sample). Each process is named by what
it runs: ``worker`` (the root, a ``sohoa`` process), ``tesseract`` (the CLI engine's child), ``prefect-api``
(Prefect's temporary local API server), ``poppler`` (PDF rendering), else its program's name. A fork that has not
yet exec'd (same command line as its parent) is not counted: its pages are its parent's.

Linux only (``/proc``). Used by ``tests/bench/bench_memory.py`` and ``tests/test_memory_a3.py``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:  # the process ended meanwhile
        return ""


def _parents() -> dict[int, int]:
    """pid → parent pid of every process visible now."""
    out: dict[int, int] = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        stat = _read(PROC / entry.name / "stat")
        if stat:  # "pid (comm) state ppid ...": comm may hold spaces and parentheses
            out[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def _hwm_kb(pid: int) -> int:
    for line in _read(PROC / str(pid) / "status").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _cmdline(pid: int) -> list[str]:
    return [part for part in _read(PROC / str(pid) / "cmdline").split("\0") if part]


def kind_of(cmdline: list[str], *, root: bool) -> str:
    """What a process of the tree is, from its command line."""
    if root:
        return "worker"
    program = Path(cmdline[0]).name if cmdline else "?"
    text = " ".join(cmdline)
    if program == "tesseract":
        return "tesseract"
    if "uvicorn" in text or "prefect" in text:
        return "prefect-api"
    if program in ("pdftoppm", "pdftocairo", "pdfinfo"):
        return "poppler"
    return program


@dataclass
class TreeMemory:
    """Peak RSS (MB) per process of the tree rooted at ``pid``, sampled until ``stop()``."""

    pid: int
    interval: float = 0.05
    peaks_kb: dict[int, int] = field(default_factory=dict)
    kinds: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TreeMemory:
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def sample(self) -> None:
        parents = _parents()
        tree = {self.pid}
        grew = True
        while grew:
            new = {p for p, pp in parents.items() if pp in tree and p not in tree}
            tree |= new
            grew = bool(new)
        root_cmd = _cmdline(self.pid)
        for pid in tree:
            cmd = _cmdline(pid)
            if pid != self.pid and cmd == root_cmd:  # forked, not yet exec'd: the parent's pages
                continue
            hwm = _hwm_kb(pid)
            if hwm > self.peaks_kb.get(pid, 0):
                self.peaks_kb[pid] = hwm
                self.kinds[pid] = kind_of(cmd, root=pid == self.pid)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def peak_mb(self, kind: str) -> float:
        """The largest peak among the processes of ``kind`` (0 when none ran)."""
        return max((kb / 1024 for pid, kb in self.peaks_kb.items() if self.kinds.get(pid) == kind), default=0.0)

    def by_kind(self) -> dict[str, float]:
        """Largest peak per kind of process, in MB."""
        out: dict[str, float] = {}
        for pid, kb in self.peaks_kb.items():
            kind = self.kinds[pid]
            out[kind] = max(out.get(kind, 0.0), kb / 1024)
        return out
