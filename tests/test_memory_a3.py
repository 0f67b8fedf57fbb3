"""A 600-dpi A3 page digitised by one worker process stays under 800 MB (issue 21, part 3).

A real ``sohoa digitise`` subprocess (``SOHOA_WORKERS=1``, both OCR engines) on a generated 600-dpi A3 scan
(``tests/fixtures/a3_pages.py``: 7016 × 9921 px, the sample resolution enlarged); ``tests/tools/memory.py`` samples
the kernel's peak-RSS mark (VmHWM) of the worker process and of its tesseract children. Measured (2026-12-07):
≈ 1005 MB before the working-resolution cap (page worked on at 600 dpi), ≈ 630–640 MB after it, with either
engine; the issue's target of 600 MB is not reached yet, so the bound is a regression guard with margin (a page
worked on at 600 dpi again fails it). The measured peaks are printed (``-s``). The page is read at 300 dpi.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.text import fold
from tests.fixtures.a3_pages import write_a3_batch
from tests.tools.memory import TreeMemory

SOHOA = Path(sys.executable).with_name("sohoa")
WORKER_BOUND_MB = 800  # target 600 (issue 21.3); see the module docstring


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["tesseract-cli", "tesserocr"])
def test_a_600_dpi_a3_page_stays_under_800_mb_in_one_worker(tmp_path: Path, engine: str) -> None:
    write_a3_batch(tmp_path / "batch", formats=("png",))
    archive, report = tmp_path / "archive", tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOHOA_", "PREFECT_API_URL"))}
    env |= {"OMP_THREAD_LIMIT": "1", "SOHOA_WORKERS": "1", "SOHOA_OCR_ENGINE": engine,
            "PREFECT_HOME": str(tmp_path / "prefect")}
    proc = subprocess.Popen([str(SOHOA), "digitise", str(tmp_path / "batch"), "--archive", str(archive),
                             "--report", str(report), "--workers", "1", "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    memory = TreeMemory(proc.pid).start()
    try:
        _, stderr = proc.communicate(timeout=900)
    finally:
        memory.stop()
    assert proc.returncode == 0, stderr.decode("utf-8", "replace")[-2000:]
    (doc,) = json.loads(report.read_text(encoding="utf-8"))["documents"]
    assert doc["status"] in ("done", "needs_review") and doc["pages"] == 1
    peaks = memory.by_kind()
    print(f"\n600-dpi A3, {engine}, 1 worker: peak RSS MB {peaks}")
    assert peaks["worker"] > 100  # the sampler saw the process (a bound that cannot fail tests nothing)
    assert peaks["worker"] < WORKER_BOUND_MB
    manifest = next(archive.rglob("document.json"))
    page = json.loads(manifest.read_text(encoding="utf-8"))["pages"][0]
    assert page["dpi"] == 300 and page["preprocessing"]["input_dpi"] == 300
    text = fold(page["text"])
    assert "nghi quyet" in text and "kinh te bien" in text
