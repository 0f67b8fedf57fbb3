"""Fuzzed intake (issue 18): hostile batches through the real ``sohoa digitise``, then ``sohoa verify``.

    python tests/fuzz/run_fuzz.py [--seed 18] [--cases 320] [--batch-size 40] [--work DIR] [--json OUT]

Each batch of ``tests/fuzz/hostile.py`` entries is digitised by a ``sohoa digitise`` subprocess into one shared
archive, under the limits of ``hostile.FUZZ_ENV``. Every time: exit 0 or 3, a report listing every entry exactly
once, each entry's outcome as expected (``failed`` with a reason naming it, or ``done``/``needs_review`` when it is
readable; ``quarantined`` with its reason when the intake read a secrecy mark on it), no run past the hang limit,
the run's peak RSS under the bound; at the end ``sohoa verify`` is clean.
Prints a summary (crashes, hangs, missing entries, wrong outcomes, peak RSS, slowest batch, slowest case) and exits
1 on any problem. The slowest case is timed by reading it (headers, then every page decoded) under the same limits.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.hostile import FUZZ_ENV, Entry, generate

SOHOA = Path(sys.executable).with_name("sohoa")
HANG_S = 900.0  # a batch running longer than this is a hang (40 cases under the limits take well under a minute)
BASELINE_MB = 700  # the sohoa process without pages: Python, OpenCV, Prefect client and its local API client
OK = {"done", "needs_review"}


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    wall_s: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)


def check_report(entries: list[Entry], report: dict[str, object]) -> list[str]:
    """Every entry listed exactly once, with the outcome it must have; a failure names the entry."""
    problems = []
    docs = report["documents"]
    assert isinstance(docs, list)
    seen = Counter(str(d["source"]) for d in docs)
    for entry in entries:
        if seen[entry.name] != 1:
            problems.append(f"{entry.name!r} ({entry.kind}) listed {seen[entry.name]} times")
    extra = set(seen) - {e.name for e in entries}
    problems += [f"unexpected entry {name!r}" for name in sorted(extra)]
    by_name = {str(d["source"]): d for d in docs}
    for entry in entries:
        doc = by_name.get(entry.name)
        if doc is None:
            continue
        status = str(doc["status"])
        if status == "failed":
            if not doc.get("error") or entry.name not in str(doc["error"]):
                problems.append(f"{entry.name!r} failed without a reason naming it: {doc.get('error')!r}")
            if entry.expect == "ok":
                problems.append(f"{entry.name!r} ({entry.kind}) is readable but failed: {doc.get('error')}")
        elif status in OK or status == "quarantined":  # held at intake (what it read looks like a secrecy mark)
            if entry.expect == "fail":
                problems.append(f"{entry.name!r} ({entry.kind}) must fail but is {status}")
            if status == "quarantined" and not doc.get("review_reasons"):
                problems.append(f"{entry.name!r} quarantined without a reason")
        else:
            problems.append(f"{entry.name!r}: unexpected status {status}")
    return problems


def sohoa_env(prefect_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "SOHOA_"))}
    return env | FUZZ_ENV | {"PREFECT_HOME": str(prefect_home), "SOHOA_OBJECT_STORE": "directory",
                             "OMP_THREAD_LIMIT": "1"}


def run_batch(batch: Path, entries: list[Entry], archive: Path, env: dict[str, str], workers: int = 2) -> Outcome:
    """One ``sohoa digitise`` of ``batch``; its exit, report and peak RSS (``wait4``: the largest process)."""
    outcome = Outcome()
    report_path = batch.parent / f"{batch.name}.report.json"
    cmd = [str(SOHOA), "digitise", str(batch), "--archive", str(archive), "--report", str(report_path),
           "--workers", str(workers), "--quiet"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    stderr: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr.append(proc.stderr.read() if proc.stderr else b""), daemon=True)
    reader.start()
    hung = threading.Event()

    def watchdog() -> None:
        if proc.poll() is None:
            hung.set()
            os.killpg(proc.pid, 9)

    timer = threading.Timer(HANG_S, watchdog)
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=10)
    outcome.wall_s = time.monotonic() - started
    outcome.peak_rss_mb = usage.ru_maxrss / 1024
    if hung.is_set():
        outcome.problems.append(f"{batch.name}: hang (killed after {HANG_S:.0f} s)")
        return outcome
    if proc.returncode not in (0, 3):
        tail = b"".join(stderr).decode("utf-8", "replace")[-1500:]
        outcome.problems.append(f"{batch.name}: crash, exit {proc.returncode}: {tail}")
    if not report_path.exists():
        outcome.problems.append(f"{batch.name}: no report written")
        return outcome
    report = json.loads(report_path.read_text(encoding="utf-8"))
    outcome.problems += [f"{batch.name}: {p}" for p in check_report(entries, report)]
    outcome.statuses.update(str(d["status"]) for d in report["documents"])
    return outcome


def time_cases(batch: Path) -> list[tuple[float, str]]:
    """Each entry read as the pipeline reads it (headers, then every page decoded) under the fuzz limits."""
    from pipeline.load import Limits, count_pages, discover_documents, iter_pages

    limits = Limits(max_page_pixels=int(FUZZ_ENV["SOHOA_MAX_PAGE_PIXELS"]),
                    max_pages=int(FUZZ_ENV["SOHOA_MAX_DOCUMENT_PAGES"]),
                    max_file_bytes=int(float(FUZZ_ENV["SOHOA_MAX_FILE_MB"]) * 2**20),
                    decode_timeout_s=float(FUZZ_ENV["SOHOA_DECODE_TIMEOUT_S"]))
    timings = []
    for doc in discover_documents(batch):
        started = time.monotonic()
        try:
            count_pages(doc, limits)
            for _ in iter_pages(doc, limits=limits):
                pass
        except Exception:
            pass
        timings.append((time.monotonic() - started, doc.source))
    return timings


def memory_probe(work: Path, *, pages: int = 4, workers: int = 2) -> dict[str, float]:
    """Peak RSS of ``sohoa digitise`` on ``pages`` legitimate pages just under the fuzz pixel limit (5400 × 7200,
    38.9 MP), with the fuzz memory budget and with a budget too large to bind: the bound must hold for the first."""
    import numpy as np
    from PIL import Image

    batch = work / "memory-batch"
    batch.mkdir(parents=True, exist_ok=True)
    for i in range(pages):
        data = np.full((7200, 5400, 3), 245, np.uint8)
        data[900 + 40 * i: 1000 + 40 * i, 500:4900] = 20  # a bar: every page differs
        Image.fromarray(data).save(batch / f"big{i}.png", dpi=(300, 300))
    entries = [Entry(name=f"big{i}.png", kind="big_page", expect="ok") for i in range(pages)]
    out: dict[str, float] = {}
    for label, budget in (("budget", FUZZ_ENV["SOHOA_MAX_MEMORY_MB"]), ("unbounded", "65536")):
        env = sohoa_env(work / "prefect") | {"SOHOA_MAX_MEMORY_MB": budget}
        outcome = run_batch(batch, entries, work / f"memory-archive-{label}", env, workers=workers)
        if outcome.problems:
            raise SystemExit("memory probe: " + "; ".join(outcome.problems))
        out[f"peak_rss_mb_{label}"] = round(outcome.peak_rss_mb, 1)
        out[f"wall_s_{label}"] = round(outcome.wall_s, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--cases", type=int, default=320)
    parser.add_argument("--batch-size", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="kept afterwards (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--memory-probe", action="store_true",
                        help="also measure peak RSS on 4 pages of 38.9 MP with and without the memory budget")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="sohoa-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    archive = work / "archive"
    env = sohoa_env(work / "prefect")
    problems: list[str] = []
    statuses: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    peak, slowest_batch, slowest_cases = 0.0, (0.0, ""), [(0.0, "")]
    bound_mb = BASELINE_MB + int(FUZZ_ENV["SOHOA_MAX_MEMORY_MB"])
    done = 0
    index = 0
    while done < args.cases:
        size = min(args.batch_size, args.cases - done)
        batch = work / f"batch-{index:03d}"
        entries = generate(args.seed * 1000 + index, size, batch)
        kinds.update(e.kind for e in entries)
        slowest_cases = sorted([*slowest_cases, *time_cases(batch)], reverse=True)[:3]
        outcome = run_batch(batch, entries, archive, env, workers=args.workers)
        problems += outcome.problems
        statuses.update(outcome.statuses)
        peak = max(peak, outcome.peak_rss_mb)
        slowest_batch = max(slowest_batch, (outcome.wall_s, batch.name))
        print(f"{batch.name}: {size} cases, {dict(outcome.statuses)}, {outcome.wall_s:.1f} s, "
              f"peak RSS {outcome.peak_rss_mb:.0f} MB, {len(outcome.problems)} problems", flush=True)
        done += size
        index += 1
    verify = subprocess.run([str(SOHOA), "verify", "--archive", str(archive)], env=env, capture_output=True,
                            text=True, timeout=HANG_S)
    if verify.returncode != 0:
        problems.append(f"verify: exit {verify.returncode}: {verify.stderr[-1500:]}")
    memory = memory_probe(work, workers=args.workers) if args.memory_probe else {}
    for value in [peak, memory.get("peak_rss_mb_budget", 0.0)]:
        if value > bound_mb:
            problems.append(f"peak RSS {value:.0f} MB over the bound {bound_mb} MB")
    summary = {
        "cases": done, "batches": index, "kinds": dict(kinds), "statuses": dict(statuses),
        "crashes": sum("crash" in p or "no report" in p for p in problems),
        "hangs": sum("hang" in p for p in problems),
        "missing_or_duplicate_entries": sum("listed" in p or "unexpected entry" in p for p in problems),
        "problems": problems, "peak_rss_mb": round(peak, 1), "rss_bound_mb": bound_mb,
        "slowest_batch": {"name": slowest_batch[1], "wall_s": round(slowest_batch[0], 1)},
        "slowest_cases": [{"source": n, "read_s": round(t, 3)} for t, n in slowest_cases],
        "verify_exit": verify.returncode, "memory_probe": memory, "work": str(work),
    }
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    if args.work is None and not problems:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
