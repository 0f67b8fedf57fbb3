"""Two ``sohoa batch run`` processes started at once on one archive share its batch through the work queue: each
document is claimed once and digitised once, and the batch's outcome is recorded once — with the registry in the
archive's SQLite catalog file, and in a real PostgreSQL (``SOHOA_DATABASE_URL``). Real processes, real OCR.

How the documents split between the two depends on which Prefect starts first (often the first process does all
five): what is asserted is what must hold whatever the timing. The second test is deterministic: a ``sohoa batch
run`` joins the run another host opened, takes over the document that host's dead worker claimed, digitises the
rest and records the batch's outcome. That claims of concurrent workers are disjoint is shown in
``tests/test_work_queue.py``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interfaces.cli import main
from schemas.errors import ExitCode
from storage.batches import BatchRegistry
from storage.db import open_database
from tests.conftest import SAMPLE_BATCH, add_bad_files, catalogued
from tests.tools.es_proxy import EsHeaderProxy
from tests.tools.postgres import PostgresServer

SOHOA = Path(sys.executable).with_name("sohoa")


def _shared_database(name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                     env: dict[str, str]) -> str:
    """A PostgreSQL database for the shared stores, and the Elasticsearch stand-in a catalog there needs (its
    header proxy for the `sohoa` processes, which cannot be patched like this one): set in ``env`` and here."""
    server: PostgresServer = request.getfixturevalue("postgres")
    osmem = request.getfixturevalue("osmem")
    url = server.create_database(name)
    proxy = EsHeaderProxy(osmem.url)
    proxy.__enter__()
    request.addfinalizer(lambda: proxy.__exit__(None, None, None))
    shared = {"SOHOA_DATABASE_URL": url, "SOHOA_SEARCH_INDEX": "elasticsearch", "SOHOA_ES_INDEX": name}
    env |= shared | {"SOHOA_ES_URL": proxy.url}
    for key, value in (shared | {"SOHOA_ES_URL": osmem.url}).items():
        monkeypatch.setenv(key, value)
    return url


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_batch_run_processes_started_at_once_do_each_document_once(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "SOHOA_"))}
    env |= {"SOHOA_OBJECT_STORE": "directory", "SOHOA_WORKERS": "1"}
    url = None
    if backend == "postgres":
        url = _shared_database(f"workers_{hashlib.sha1(str(tmp_path).encode()).hexdigest()[:16]}", request,
                               monkeypatch, env)
    archive, batch = tmp_path / "archive", tmp_path / "lo-chung"
    batch.mkdir()
    shutil.copy(SAMPLE_BATCH / "nq_01.png", batch / "a_nq.png")
    add_bad_files(batch)  # four documents that fail fast
    assert main(["batch", "add", str(batch), "--when", "tonight", "--archive", str(archive), "--json"]) == 0
    batch_id = str(json.loads(capsys.readouterr().out)["id"])

    runs = [subprocess.Popen([str(SOHOA), "batch", "run", batch_id, "--archive", str(archive), "--json"],
                             env={**env, "PREFECT_HOME": str(tmp_path / f"prefect-{i}")}, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    codes = [run.returncode for run in runs]
    # both ran their share (3: some of its documents failed; 0: a joiner whose own documents all succeeded), or one
    # came when the batch had ended (4: nothing to run); which one depends on who claims what, never on the outcome
    assert ExitCode.SOME_FAILED in codes and set(codes) <= {0, ExitCode.SOME_FAILED, ExitCode.CONFIG}, outputs
    views = [json.loads(out) for (out, _err), code in zip(outputs, codes, strict=True) if code != ExitCode.CONFIG]
    assert all(view["id"] == batch_id for view in views)  # the batch's outcome is read from the registry below

    target = open_database(url) if url else archive / "catalog.sqlite"
    with BatchRegistry(target) as registry:
        record = registry.get(batch_id)
        assert record is not None and record.state == "failed" and record.summary is not None
        assert (record.summary.done + record.summary.needs_review, record.summary.failed) == (1, 4)
        assert record.summary.pending == 0 and record.summary.pages == 1
        attempts = registry.queue.attempts(batch_id)
        assert sorted(attempts) == sorted(p.name for p in batch.iterdir())
        assert set(attempts.values()) == {1}  # no document was claimed twice
        assert len(registry.queue.finished_by(batch_id)) == 5
    assert catalogued(archive, url) == 1


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_batch_run_joins_another_hosts_run_takes_over_its_dead_claim_and_records_the_outcome(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_URL", "SOHOA_"))}
    env |= {"SOHOA_OBJECT_STORE": "directory", "SOHOA_WORKERS": "1", "PREFECT_HOME": str(tmp_path / "prefect")}
    url = None
    if backend == "postgres":
        url = _shared_database(f"join_{hashlib.sha1(str(tmp_path).encode()).hexdigest()[:16]}", request,
                               monkeypatch, env)
    archive, batch = tmp_path / "archive", tmp_path / "lo-chung"
    batch.mkdir()
    shutil.copy(SAMPLE_BATCH / "nq_01.png", batch / "a_nq.png")
    add_bad_files(batch)
    assert main(["batch", "add", str(batch), "--when", "tonight", "--archive", str(archive), "--json"]) == 0
    batch_id = str(json.loads(capsys.readouterr().out)["id"])
    sources = sorted(p.name for p in batch.iterdir())
    # another host opened the run (its lease lives for ten minutes) and claimed the first document, then died:
    # its claim's lease has already run out
    now = time.time()
    with BatchRegistry(open_database(url) if url else archive / "catalog.sqlite") as registry:
        assert registry.claim(batch_id, runner="host-b:dead", now="t", from_states=("queued",), lease_until=now + 600)
        registry.queue.enqueue(batch_id, sources)
        held = registry.queue.claim(batch_id, worker="host-b:dead", now_s=now, until_s=now - 1)
        assert held is not None and held.source == "a_nq.png"

    run = subprocess.run([str(SOHOA), "batch", "run", batch_id, "--archive", str(archive), "--json"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == ExitCode.SOME_FAILED, run.stderr[-3000:]  # the four broken files
    assert json.loads(run.stdout)["state"] == "failed"
    with BatchRegistry(open_database(url) if url else archive / "catalog.sqlite") as registry:
        record = registry.get(batch_id)
        assert record is not None and record.state == "failed" and record.summary is not None
        assert (record.summary.done + record.summary.needs_review, record.summary.failed) == (1, 4)
        assert record.summary.pages == 1 and record.runner is None  # the joiner recorded the host's run
        assert registry.queue.attempts(batch_id) == {s: 2 if s == "a_nq.png" else 1 for s in sources}
        workers = set(registry.queue.finished_by(batch_id).values())
        assert len(workers) == 1 and "host-b:dead" not in workers  # all done by the joining process
    assert catalogued(archive, url) == 1
