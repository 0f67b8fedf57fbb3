"""A fixed sample of the fuzzed intake (issue 18; ``make fuzz`` runs 300+): 40 hostile entries, two of every kind,
through a real ``sohoa digitise`` subprocess. The batch finishes with exit 0 or 3 and a report listing every entry
exactly once, each bad entry ``failed`` with a reason naming it (readable ones done or needing review), within the
hang limit and under the memory bound; ``sohoa verify`` is clean afterwards."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.fuzz.hostile import FUZZ_ENV, KINDS, generate
from tests.fuzz.run_fuzz import BASELINE_MB, SOHOA, run_batch, sohoa_env


@pytest.mark.slow
def test_forty_hostile_entries_one_batch_finishes_reported_and_verified(tmp_path: Path) -> None:
    kinds = list(KINDS)
    entries = generate(2026, 2 * len(kinds), tmp_path / "batch", kinds=kinds)
    assert len(entries) >= 40 and {e.kind for e in entries} == set(kinds)
    env = sohoa_env(tmp_path / "prefect")
    archive = tmp_path / "archive"
    outcome = run_batch(tmp_path / "batch", entries, archive, env)
    assert not outcome.problems, "\n".join(outcome.problems)
    assert outcome.statuses["failed"] >= 20 and outcome.statuses["done"] + outcome.statuses["needs_review"] >= 4
    assert outcome.peak_rss_mb < BASELINE_MB + int(FUZZ_ENV["SOHOA_MAX_MEMORY_MB"])
    verify = subprocess.run([str(SOHOA), "verify", "--archive", str(archive)], env=env, capture_output=True,
                            text=True, timeout=300)
    assert verify.returncode == 0, verify.stderr[-2000:]
