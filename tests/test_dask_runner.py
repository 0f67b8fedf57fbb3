"""Document tasks on Dask (``SOHOA_TASK_RUNNER=dask``): a real LocalCluster of two worker processes, started by the
flow's Dask task runner, digitises the sample batch through ``sohoa digitise``; every document ends up exactly once
in the store, the catalog and the search index, and the tasks really ran in both worker processes, each with its
own services. The registry path (``sohoa batch add --when now``) runs its documents on Dask too, and a document
digitised by a worker on another machine is catalogued by the flow's machine from the shared store."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from interfaces.cli import main
from tests.conftest import SAMPLE_BATCH, add_bad_files, catalogued


def worker_facts(dask_worker: Any) -> dict[str, object]:
    """Run inside each Dask worker process: who it is, how many tasks it ran, which archives it built services for."""
    from flows import wiring

    return {"pid": os.getpid(), "executed": dask_worker.state.executed_count,
            "archives": sorted(str(services.root) for services in wiring._registry.values())}


@pytest.fixture
def recorded_clusters(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every LocalCluster the Dask task runner starts: its arguments and, just before it closes, its workers' facts."""
    import distributed
    from distributed.core import Status

    clusters: list[dict[str, Any]] = []

    class RecordingCluster(distributed.LocalCluster):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            clusters.append({"kwargs": kwargs, "workers": None})
            super().__init__(*args, **kwargs)
            clusters[-1]["scheduler"] = self.scheduler_address

        def close(self, *args: Any, **kwargs: Any) -> Any:
            entry = next(c for c in clusters if c["scheduler"] == self.scheduler_address)
            if self.status == Status.running and entry["workers"] is None:
                with distributed.Client(self, set_as_default=False) as client:
                    entry["workers"] = list(client.run(worker_facts).values())
            return super().close(*args, **kwargs)

    monkeypatch.setattr(distributed, "LocalCluster", RecordingCluster)
    monkeypatch.setenv("SOHOA_TASK_RUNNER", "dask")
    monkeypatch.setenv("SOHOA_WORKERS", "2")
    monkeypatch.delenv("SOHOA_DASK_ADDRESS", raising=False)
    return clusters


def pid_gone(pid: int, wait_s: float = 15.0) -> bool:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def ids(db: Path, table: str) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return sorted(row[0] for row in conn.execute(f"SELECT id FROM {table}"))


@pytest.mark.slow
def test_two_worker_local_cluster_digitises_the_sample_batch_exactly_once(
    prefect_api: None, recorded_clusters: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from flows.digitise import dask_cluster_kwargs, received
    from flows.wiring import close_all, services_for
    from schemas.settings import Settings

    batch, archive, report_path = tmp_path / "lo-dask", tmp_path / "archive", tmp_path / "report.json"
    shutil.copytree(SAMPLE_BATCH, batch)
    started = time.monotonic()
    code = main(["digitise", str(batch), "--archive", str(archive), "--report", str(report_path), "--quiet"])
    elapsed = time.monotonic() - started
    report = json.loads(report_path.read_text(encoding="utf-8"))
    docs = report["documents"]
    assert code == 0, docs
    assert len(docs) == 5 and {d["status"] for d in docs} <= {"done", "needs_review"}
    assert not any(d["skipped"] for d in docs) and report["pages_processed"] == 8

    # the runner started one LocalCluster as configured: 2 single-threaded worker processes on 127.0.0.1
    (cluster,) = recorded_clusters
    assert cluster["kwargs"] == dask_cluster_kwargs(Settings()) == {
        "n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None, "host": "127.0.0.1"}
    assert cluster["scheduler"].startswith("tcp://127.0.0.1:")
    # ... whose two worker processes (not this one) ran the five document tasks between them, each building its own
    # services for the archive
    workers = cluster["workers"]
    assert workers is not None and len(workers) == 2, workers
    pids = {w["pid"] for w in workers}
    assert len(pids) == 2 and os.getpid() not in pids
    assert sum(w["executed"] for w in workers) == 5 and all(w["executed"] >= 1 for w in workers), workers
    assert all(w["archives"] == [str(archive.resolve())] for w in workers), workers
    assert all(pid_gone(pid) for pid in pids), "Dask worker processes outlived the run"

    # every document exactly once: in the store, the catalog and the search index, all the same ids
    report_ids = sorted(d["id"] for d in docs)
    stored = sorted(p.name for p in (archive / "objects" / "documents").iterdir())
    assert stored == report_ids == ids(archive / "catalog.sqlite", "documents") == ids(archive / "catalog.sqlite",
                                                                                      "search_docs")
    assert len(set(report_ids)) == 5 and catalogued(archive) == 5
    capsys.readouterr()
    assert main(["verify", "--archive", str(archive), "--json"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert verified["problems"] == [] and sorted(verified["documents"]) == report_ids
    assert set(verified["documents"].values()) == {"pass"}
    assert main(["search", "phat trien kinh te bien", "--archive", str(archive), "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits and hits[0]["source"] == "nq_01.png"  # found without diacritics
    print(f"\nDask (2 worker processes): {report['pages_processed']} pages, {report['pages_per_minute']} pages/min, "
          f"sohoa digitise {elapsed:.1f} s in process")

    # a worker on another machine catalogues into its own disk: the flow's machine catalogues the document from the
    # shared object store; when it cannot see it there, the document fails with the reason
    other = tmp_path / "other-machine"
    shutil.copytree(archive / "objects", other / "objects")
    try:
        services = services_for(Settings(archive=other))
        from schemas.document import DocumentResult

        results = [received(DocumentResult.model_validate(d), services) for d in docs]
        assert [r.status for r in results] == [d["status"] for d in docs] and catalogued(other) == 5
        gone = DocumentResult(source="x.tif", id="0" * 20, status="done", pages=1)  # in no store this machine sees
        lost = received(gone, services)
        assert lost.status == "failed" and lost.error is not None and "SOHOA_OBJECT_STORE=s3" in lost.error
    finally:
        close_all()


@pytest.mark.slow
def test_registry_batches_run_their_documents_on_dask_too(
    prefect_api: None, recorded_clusters: list[dict[str, Any]], tmp_path: Path,
) -> None:
    """``sohoa batch add --when now`` (the flow the nightly run shares): documents on the Dask workers, at most
    workers + 1 in flight, failures recorded with their reasons."""
    batch, archive = tmp_path / "lo-hong", tmp_path / "archive"
    batch.mkdir()
    add_bad_files(batch)  # four documents that fail fast: this is about where they run, not OCR
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["batch", "add", str(batch), "--archive", str(archive), "--json"])
    data = json.loads(out.getvalue())
    assert code == 3 and data["state"] == "failed"
    assert sorted(f["source"] for f in data["failures"]) == sorted(["empty.tif", "truncated.jpg",
                                                                    "text-as-image.tif", "locked.pdf"])
    assert all(f["error"] and f["source"] in f["error"] for f in data["failures"])
    (cluster,) = recorded_clusters
    assert cluster["workers"] is not None and sum(w["executed"] for w in cluster["workers"]) == 4
