"""Batch registry, ``sohoa batch`` and the nightly window: real registry, real catalog, real tesseract, real Prefect.

The window logic is pure and checked on its own; the nightly flow gets a clock that closes the window once the first
document is in the catalog, so "no new document after the window closes" is observed on a real run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from interfaces.cli import main
from schemas.reasons import ReasonCode, reason
from schemas.settings import NightWindow, Settings
from storage.batches import BatchRecord, BatchRegistry, BatchSummary
from storage.catalog import SqliteCatalog
from storage.search_sqlite import segment_counts
from tests.conftest import SAMPLE_BATCH, add_bad_files, catalogued

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NIGHT = NightWindow.parse("22:00-06:00")


def at(hour: int, minute: int = 0, day: int = 27) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


# --- the window and schedules: pure -------------------------------------------------------------------------------


@pytest.mark.parametrize(("moment", "open_"), [
    (at(21, 59), False), (at(22, 0), True), (at(23, 59), True), (at(0, 0, day=28), True), (at(5, 59), True),
    (at(6, 0), False), (at(12, 0), False),
    (datetime(2026, 11, 27, 15, 30, tzinfo=UTC), True),  # 22:30 in Hà Nội: read on the archive's clock
    (datetime(2026, 11, 27, 23, 30, tzinfo=UTC), False),  # 06:30 next morning there
])
def test_window_across_midnight(moment: datetime, open_: bool) -> None:
    from flows.batches import window_open

    assert window_open(NIGHT, moment, "Asia/Ho_Chi_Minh") is open_


def test_window_parsing_and_other_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    day = NightWindow.parse("9:00 - 17:30")
    assert str(day) == "09:00-17:30" and day.contains(time(9)) and not day.contains(time(17, 30))
    assert not day.contains(time(3))
    assert NightWindow.parse("00:00-24:00").contains(time(13, 7))  # start == end: all day
    assert NightWindow.parse("22:00-24:00").contains(time(23, 59)) and not NightWindow.parse("22:00-24:00").contains(
        time(0, 0))
    for bad in ("22-06", "25:00-06:00", "22:00-06:61", "24:30-06:00", "tonight", ""):
        with pytest.raises(ValueError):
            NightWindow.parse(bad)
    monkeypatch.setenv("SOHOA_NIGHT_WINDOW", "23:30-04:00")
    assert Settings().night_window == NightWindow(start=time(23, 30), end=time(4, 0))
    monkeypatch.setenv("SOHOA_NIGHT_WINDOW", "đêm")
    with pytest.raises(ValueError, match="khung giờ đêm"):
        Settings()
    monkeypatch.delenv("SOHOA_NIGHT_WINDOW")
    assert str(Settings().night_window) == "22:00-06:00"


def test_nightly_cron_runs_only_in_the_window() -> None:
    from flows.batches import nightly_cron

    assert nightly_cron(NIGHT) == "*/15 0-5,22-23 * * *"
    assert nightly_cron(NightWindow.parse("22:10-05:50")) == "10-59/15 0-5,22-23 * * *"
    assert nightly_cron(NightWindow.parse("01:00-03:00")) == "*/15 1-2 * * *"
    assert nightly_cron(NightWindow.parse("00:00-00:00")) == "*/15 * * * *"


def test_schedules_and_due_batches() -> None:
    from flows.batches import is_due, next_fire, parse_schedule
    from schemas.errors import ConfigError

    assert parse_schedule(" Tonight ") == "tonight" and parse_schedule("0  23 * * 5") == "0 23 * * 5"
    for bad in ("soon", "0 23 * *", "0 0 23 * * 5", "61 * * * *"):
        with pytest.raises(ConfigError):
            parse_schedule(bad)
    assert next_fire("0 23 * * 5", at(21)) == at(23)  # 2026-11-27 is a Friday
    assert next_fire("0 23 * * 5", at(23)) == datetime(2026, 12, 4, 23, tzinfo=TZ)  # strictly after

    def record(schedule: str, state: str, due: datetime | None = None, runner: str | None = None) -> BatchRecord:
        return BatchRecord(id="lo-x", folder="/x", schedule=schedule, state=state,  # type: ignore[arg-type]
                           created_at=at(9).isoformat(), next_due_at=due.isoformat() if due else None, runner=runner)

    def due(r: BatchRecord, now: datetime) -> bool:
        return is_due(r, now, NIGHT, "Asia/Ho_Chi_Minh")

    tonight = record("tonight", "queued")
    assert due(tonight, at(22, 15)) and due(tonight, at(3, day=28)) and not due(tonight, at(21, 45))
    assert due(record("tonight", "partial"), at(23)) and not due(record("tonight", "done"), at(23))
    assert not due(record("tonight", "cancelled"), at(23)) and not due(record("tonight", "failed"), at(23))
    friday = record("0 23 * * 5", "queued", due=at(23))
    assert not due(friday, at(22, 30)) and due(friday, at(23)) and due(friday, at(2, day=28))
    assert not due(record("0 12 * * *", "queued", due=at(12)), at(12, 30))  # due, but outside the window
    assert due(record("0 12 * * *", "queued", due=at(12)), at(22))  # so the night takes it
    assert due(record("0 23 * * 5", "done", due=at(23)), at(23, 30))  # cron batches recur
    assert not due(record("0 23 * * 5", "done", due=at(23, day=28)), at(23, 30))
    running = record("tonight", "running", runner="host:1")
    assert due(running, at(23)) and not due(running, at(12))  # in the window: join its queue (or take it over)


# --- the registry -------------------------------------------------------------------------------------------------


def test_registry_lives_beside_an_existing_catalog_and_arbitrates_races(tmp_path: Path) -> None:
    db = tmp_path / "catalog.sqlite"
    SqliteCatalog(db).close()  # an archive from before the registry
    with BatchRegistry(db) as registry:
        record = BatchRecord(id="lo-20261127-ab12", folder=str(tmp_path), schedule="tonight", state="queued",
                             created_at=at(9).isoformat())
        assert registry.add(record) and not registry.add(record)  # ids are unique
        assert registry.add(record.model_copy(update={"id": "lo-20261127-cd34", "created_at": at(8).isoformat()}))
        assert [r.id for r in registry.batches()] == ["lo-20261127-ab12", "lo-20261127-cd34"]  # creation order
        assert registry.claim(record.id, runner="h:1", now=at(22).isoformat(), from_states=("queued",))
        assert not registry.claim(record.id, runner="h:2", now=at(22).isoformat(), from_states=("queued",))
        assert not registry.cancel(record.id, now=at(22).isoformat(), from_states=("queued",))
        assert registry.request_cancel(record.id) and registry.cancel_requested(record.id)
        registry.record_outcome(record.id, "a.tif", doc_id=None, now=at(22).isoformat(),
                                failure=reason(ReasonCode.DOCUMENT_REJECTED, detail="a.tif: tệp rỗng"))
        registry.record_outcome(record.id, "a.tif", doc_id="abc", now=at(23).isoformat())
        assert registry.outcomes(record.id)["a.tif"].doc_id == "abc"
        assert not registry.finish(record.id, runner="h:2", state="done", summary=BatchSummary(),
                                   now=at(23).isoformat(), next_due_at=None)  # not its run
        assert registry.finish(record.id, runner="h:1", state="cancelled", summary=BatchSummary(documents=1),
                               now=at(23).isoformat(), next_due_at=None)
        done = registry.get(record.id)
        assert done is not None and done.state == "cancelled" and not done.cancel_requested
        assert done.summary == BatchSummary(documents=1) and done.runner is None
        assert registry.claim(record.id, runner="h:3", now=at(23).isoformat(), from_states=(),
                              stale_runner=None) is False
        assert registry.acquire_lease("nightly", holder="h:1", now=at(22).isoformat())
        assert not registry.acquire_lease("nightly", holder="h:2", now=at(22).isoformat())
        assert registry.acquire_lease("nightly", holder="h:2", now=at(22).isoformat(), stale_holder="h:1")
    catalog = SqliteCatalog(db)  # the catalog still opens, and a rebuild leaves the registry alone
    catalog.rebuild([])
    catalog.close()
    with BatchRegistry(db) as registry:
        assert len(registry.batches()) == 2


# --- sohoa batch: real runs ---------------------------------------------------------------------------------------


@dataclass
class SampleRun:
    archive: Path
    batch: Path
    code: int
    data: dict[str, object]


@pytest.fixture(scope="module")
def sample_run(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> SampleRun:
    """``sohoa batch add --when now`` on the bundled sample batch, once for the module."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("batches")
    batch = root / "lo-mau"
    shutil.copytree(SAMPLE_BATCH, batch)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["batch", "add", str(batch), "--archive", str(root / "archive"), "--json"])
    return SampleRun(archive=root / "archive", batch=batch, code=code, data=json.loads(out.getvalue()))


def test_add_now_digitises_the_sample_batch_and_records_it(sample_run: SampleRun,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    data, archive = sample_run.data, str(sample_run.archive)
    assert sample_run.code == 0, data
    assert data["state"] == "done" and data["schedule"] == "now" and str(data["id"]).startswith("lo-2")
    summary = data["summary"]
    assert isinstance(summary, dict)
    assert summary["documents"] == 5 and summary["done"] + summary["needs_review"] == 5
    assert summary["failed"] == 0 and summary["pending"] == 0 and summary["pages"] == 8
    assert summary["pages_per_minute"] > 0
    assert data["folder"] == str(sample_run.batch.resolve()) and catalogued(sample_run.archive) == 5
    assert datetime.fromisoformat(str(data["finished_at"])).utcoffset().total_seconds() == 7 * 3600  # type: ignore[union-attr]
    conn = sqlite3.connect(f"file:{sample_run.archive / 'catalog.sqlite'}?mode=ro", uri=True)
    try:  # the run merged the search index it wrote one document at a time
        assert set(segment_counts(conn).values()) == {1}
    finally:
        conn.close()

    code, shown = cli_json(capsys, "batch", "show", str(data["id"]), "--archive", archive)
    assert code == 0 and shown["progress"] == {"documents": 5, "finished": 5, "done": summary["done"],
                                               "needs_review": summary["needs_review"], "failed": 0, "pending": 0,
                                               "quarantined": 0, "percent": 100.0}
    docs = shown["documents"]
    assert isinstance(docs, list) and [d["source"] for d in docs] == ["bc_03.pdf", "cv_04", "kh_02.tif",
                                                                      "nq_01.png", "qd_05.jpg"]
    assert all(d["id"] and d["status"] in ("done", "needs_review") for d in docs)
    code, listed = cli_json(capsys, "batch", "list", "--archive", archive)
    assert code == 0 and data["id"] in [b["id"] for b in listed["batches"]]  # type: ignore[attr-defined]
    assert main(["batch", "show", str(data["id"]), "--archive", archive]) == 0
    assert "5/5 văn bản" in capsys.readouterr().out

    # the same folder again: everything is archived, so nothing is redone and no flow starts
    code, again = cli_json(capsys, "batch", "add", str(sample_run.batch), "--archive", archive)
    assert code == 0 and again["id"] != data["id"] and again["state"] == "done"
    assert again["summary"]["skipped"] == 5 and again["summary"]["pages"] == 0  # type: ignore[index]


def test_tonight_queues_cancel_and_usage_errors(sample_run: SampleRun, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    archive = str(sample_run.archive)
    code, queued = cli_json(capsys, "batch", "add", str(sample_run.batch), "--when", "tonight", "--archive", archive,
                            "--file-code", "H49.64.33.2001.160", "--fonds", "Phông Thành ủy", "--title", "Lô thử")
    assert code == 0 and queued["state"] == "queued" and queued["schedule"] == "tonight"
    assert (queued["file_code"], queued["fonds"], queued["title"]) == ("H49.64.33.2001.160", "Phông Thành ủy",
                                                                       "Lô thử")
    assert queued["progress"]["documents"] == 5  # type: ignore[index]
    assert main(["batch", "add", str(sample_run.batch), "--when", "tonight", "--archive", archive]) == 4
    assert "đã có lô" in capsys.readouterr().err  # one waiting batch per folder
    code, cancelled = cli_json(capsys, "batch", "cancel", str(queued["id"]), "--archive", archive)
    assert code == 0 and cancelled["state"] == "cancelled"
    assert main(["batch", "cancel", str(queued["id"]), "--archive", archive]) == 0
    assert "không có gì để hủy" in capsys.readouterr().err

    empty = tmp_path / "rong"
    empty.mkdir()
    (empty / "batch.toml").write_text('file_code = "H1.2"\n', encoding="utf-8")
    for argv, exit_code, words in [
        (["batch", "add", str(tmp_path / "khong-co")], 4, "Không tìm thấy thư mục lô"),
        (["batch", "add", str(empty)], 4, "không có văn bản nào"),
        (["batch", "add", str(sample_run.batch), "--when", "mai"], 4, "Lịch chạy không hợp lệ"),
        (["batch", "show", "lo-00000000-0000"], 6, "sohoa batch list"),
        (["batch", "retry", "lo-00000000-0000"], 6, "Không có lô"),
        (["batch", "cancel", "lo-00000000-0000"], 6, "Không có lô"),
    ]:
        assert main([*argv, "--archive", archive]) == exit_code, argv
        assert words in capsys.readouterr().err


def test_retry_failed_only_reruns_just_the_broken_document(sample_run: SampleRun, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    archive = str(sample_run.archive)
    batch = tmp_path / "lo-hong"
    batch.mkdir()
    shutil.copy(SAMPLE_BATCH / "nq_01.png", batch / "nq_01.png")  # archived already (by the sample run)
    (batch / "trang.tif").write_bytes(b"")  # broken: an empty scan
    code, first = cli_json(capsys, "batch", "add", str(batch), "--archive", archive)
    assert code == 3 and first["state"] == "failed"
    assert first["failures"] == [{"source": "trang.tif", "error": "trang.tif: tệp rỗng (0 byte) — quét lại hoặc "
                                                                  "sao chép lại tệp"}]
    batch_id = str(first["id"])
    assert main(["batch", "show", batch_id, "--archive", archive]) == 0
    assert "trang.tif: tệp rỗng (0 byte)" in capsys.readouterr().out

    Image.open(SAMPLE_BATCH / "qd_05.jpg").save(batch / "trang.tif")  # the page scanned again
    code, retried = cli_json(capsys, "batch", "retry", batch_id, "--failed-only", "--archive", archive)
    assert code == 0, retried
    summary = retried["summary"]
    assert retried["state"] == "done" and retried["failures"] == [] and retried["only_sources"] is None
    assert isinstance(summary, dict) and summary["pages"] == 1 and summary["skipped"] == 0  # nq_01 not even looked at
    assert summary["done"] + summary["needs_review"] == 2
    assert main(["batch", "retry", batch_id, "--failed-only", "--archive", archive]) == 0
    assert "không có văn bản lỗi" in capsys.readouterr().err  # nothing queued


# --- the nightly flow ---------------------------------------------------------------------------------------------


@pytest.fixture
def one_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SOHOA_WORKERS", "1")
    monkeypatch.delenv("SOHOA_NIGHT_WINDOW", raising=False)
    yield


def latest_artifact(key: str) -> str:
    from prefect.client.orchestration import get_client

    async def read() -> str:
        async with get_client() as client:
            found = await client.read_latest_artifacts()
            return next(str(a.data) for a in found if a.key == key)

    return asyncio.run(read())


def test_night_window_closing_mid_batch_leaves_the_rest_for_the_next_night(
    prefect_api: None, one_worker: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from flows.batches import nightly_digitisation

    archive = tmp_path / "archive"
    batch = tmp_path / "lo-dem"
    batch.mkdir()
    shutil.copy(SAMPLE_BATCH / "nq_01.png", batch / "a_nq.png")
    shutil.copy(SAMPLE_BATCH / "qd_05.jpg", batch / "b_qd.jpg")
    add_bad_files(batch)  # c..: four broken files, after the two pages in name order
    code, queued = cli_json(capsys, "batch", "add", str(batch), "--when", "tonight", "--archive", str(archive))
    assert code == 0 and queued["state"] == "queued"

    assert nightly_digitisation(str(archive), clock=lambda: at(14)) == []  # daytime: nothing starts

    def clock() -> datetime:  # the window closes as soon as the first document is in the catalog
        return at(23) if catalogued(archive) == 0 else at(6, 1, day=28)

    (night,) = nightly_digitisation(str(archive), clock=clock)
    assert night.id == queued["id"] and night.state == "partial" and night.summary is not None
    # workers=1 → two documents in flight; the third waited for a free slot, by then the window had closed
    assert night.summary.stopped == "window" and night.summary.pending == 4
    assert night.summary.done + night.summary.needs_review == 2 and night.summary.failed == 0
    assert catalogued(archive) == 2
    code, shown = cli_json(capsys, "batch", "show", night.id, "--archive", str(archive))
    assert [d["status"] for d in shown["documents"]][-4:] == ["pending"] * 4  # type: ignore[index]
    assert "hết khung giờ đêm" in latest_artifact(night.id)

    monkeypatch.setenv("SOHOA_NIGHT_WINDOW", "00:00-00:00")  # the next night, on the real clock: all day open
    (second,) = nightly_digitisation(str(archive))
    assert second.state == "failed" and second.summary is not None  # the four broken files
    assert second.summary.skipped == 2 and second.summary.pending == 0 and second.summary.failed == 4
    assert night.id in latest_artifact("nightly-digitisation")
    assert "locked.pdf" in latest_artifact(night.id)  # the failures and their reasons
    assert nightly_digitisation(str(archive)) == []  # nothing due any more


def test_cancel_of_a_running_batch_starts_no_new_document(
    prefect_api: None, one_worker: None, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from flows.batches import cancel_batch, nightly_digitisation
    from flows.scheduled import deployments

    archive = tmp_path / "archive"
    batch = tmp_path / "lo-huy"
    batch.mkdir()
    add_bad_files(batch)  # four documents that fail fast: the test is about what starts, not OCR
    code, queued = cli_json(capsys, "batch", "add", str(batch), "--when", "0 23 * * *", "--archive", str(archive))
    assert code == 0 and queued["state"] == "queued"
    settings = Settings(archive=archive)
    fires = datetime.fromisoformat(str(queued["next_due_at"]))
    assert fires.hour == 23 and fires > datetime.now(TZ)
    requests: list[str] = []

    run_time = fires + timedelta(minutes=30)

    def clock() -> datetime:  # an operator cancels while the first two documents are being processed
        with BatchRegistry(archive / "catalog.sqlite") as registry:
            if registry.outcomes(str(queued["id"])) and not requests:
                # the operator's clock is the run's (a lease is judged on one clock)
                requests.append(cancel_batch(settings, str(queued["id"]), clock=lambda: run_time)[1])
        return run_time

    assert nightly_digitisation(str(archive), clock=lambda: fires - timedelta(minutes=30)) == []  # not yet
    (run,) = nightly_digitisation(str(archive), clock=clock)
    assert requests == ["requested"]
    assert run.state == "cancelled" and run.summary is not None and run.summary.stopped == "cancel"
    assert run.summary.failed == 2 and run.summary.pending == 2  # two in flight finished, no new one started
    later = fires + timedelta(days=1, minutes=5)
    assert nightly_digitisation(str(archive), clock=lambda: later) == []  # a cancelled cron batch stays off

    code, retried = cli_json(capsys, "batch", "retry", run.id, "--failed-only", "--archive", str(archive))
    assert code == 0 and retried["state"] == "queued" and len(retried["only_sources"]) == 2  # type: ignore[arg-type]

    names = {d.name: d for d in deployments(settings)}
    nightly = names["nightly-digitisation"]
    assert nightly.parameters == {"archive": str(archive.resolve())}
    assert nightly.schedules[0].schedule.cron == "*/15 0-5,22-23 * * *"
    assert nightly.schedules[0].schedule.timezone == "Asia/Ho_Chi_Minh"
