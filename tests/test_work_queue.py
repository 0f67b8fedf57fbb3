"""The shared work queue of batch runs (storage/work_queue.py) and the registry's run leases, on SQLite and on a real
PostgreSQL: claims in batch order, disjoint claims from two connections ("two hosts"), lease expiry and renewal,
exactly-once completion, cancel, a stale run recovered by its lease (never by a process id), and two OS processes,
one SIGKILLed while it holds a claim. Leases expire by advancing the clock the test passes in: nothing sleeps."""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flows.batches.running import BatchRun, await_held
from schemas.settings import Settings
from storage.batches import BatchRecord, BatchRegistry, BatchSummary
from storage.db import open_database
from tests.tools.postgres import PostgresServer

T0 = datetime(2026, 12, 7, 23, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")).timestamp()
LEASE = 120.0
REPO = Path(__file__).resolve().parent.parent

Opener = Callable[[], BatchRegistry]


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the registry lives: the SQLite file, or a fresh database of the session's PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "catalog.sqlite")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"queue_{hashlib.sha1(str(tmp_path).encode()).hexdigest()[:16]}")


@pytest.fixture
def connect(target: str) -> Iterator[Opener]:
    """Opens registries on the target, each with its own connection (as separate hosts would); closed at the end."""
    opened: list[BatchRegistry] = []

    def open_one() -> BatchRegistry:
        db = open_database(target if target.startswith("postgresql://") else Path(target))
        opened.append(BatchRegistry(db))
        return opened[-1]

    yield open_one
    for registry in opened:
        registry.close()


def running_batch(registry: BatchRegistry, sources: list[str], *, batch_id: str = "lo-20261207-aa01",
                  skipped: tuple[str, ...] = (), runner: str = "host-a:opener") -> str:
    """A batch opened at ``T0`` by ``runner`` with its queue filled."""
    assert registry.add(BatchRecord(id=batch_id, folder=f"/scans/{batch_id}", schedule="tonight", state="queued",
                                    created_at="2026-12-07T09:00:00+07:00"))
    assert registry.claim(batch_id, runner=runner, now="2026-12-07T23:00:00+07:00", from_states=("queued",),
                          expired_before=T0, lease_until=T0 + LEASE)
    assert registry.queue.claim(batch_id, worker="anyone", now_s=T0, until_s=T0 + LEASE) is None  # not ready yet
    registry.queue.enqueue(batch_id, sources, skipped=list(skipped))
    return batch_id


def test_claims_come_in_batch_order_and_a_finished_document_never_again(connect: Opener) -> None:
    registry = connect()
    batch = running_batch(registry, ["c.tif", "a.pdf", "b.jpg"], skipped=("z.png",))
    got = []
    for step in range(3):
        claim = registry.queue.claim(batch, worker="w1", now_s=T0 + step, until_s=T0 + step + LEASE)
        assert claim is not None and claim.attempts == 1
        got.append(claim.source)
    assert got == ["c.tif", "a.pdf", "b.jpg"]  # the order of the batch, not of the names
    assert registry.queue.claim(batch, worker="w1", now_s=T0, until_s=T0 + LEASE) is None
    assert registry.queue.complete(batch, "c.tif", worker="w1", pages=3)
    assert not registry.queue.complete(batch, "c.tif", worker="w1", pages=3)  # once
    assert registry.queue.complete(batch, "a.pdf", worker="w1", pages=2)
    state = registry.queue.state(batch, worker="w1", now_s=T0)
    assert state.claimable == 0 and state.finished == 3 and state.settled  # b.jpg is w1's own claim
    assert not registry.queue.state(batch, worker="w2", now_s=T0).settled  # for w2, w1 still works on b.jpg
    # a day later every lease has run out: only the unfinished document comes back
    claim = registry.queue.claim(batch, worker="w2", now_s=T0 + 86400, until_s=T0 + 86400 + LEASE)
    assert claim is not None and claim.source == "b.jpg" and claim.attempts == 2
    assert registry.queue.complete(batch, "b.jpg", worker="w2", pages=1)
    assert registry.queue.claim(batch, worker="w3", now_s=T0 + 86400 * 30, until_s=T0 + 86400 * 31) is None
    assert registry.queue.totals(batch) == (6, 1)  # pages of the three digitised, one skipped
    assert registry.queue.finished_by(batch) == {"c.tif": "w1", "a.pdf": "w1", "b.jpg": "w2", "z.png": None}
    assert registry.queue.unfinished(batch) == []
    # enqueue again (a run taken over is refilled): finished rows keep their state
    assert registry.queue.enqueue(batch, ["c.tif", "a.pdf", "b.jpg", "new.tif"]) == 1
    assert registry.queue.unfinished(batch) == ["new.tif"]


def test_two_hosts_claiming_at_once_get_disjoint_documents_covering_the_batch(connect: Opener) -> None:
    sources = [f"doc-{i:03d}.tif" for i in range(60)]
    batch = running_batch(connect(), sources)
    hosts = [connect(), connect()]  # two connections: two machines
    rounds = threading.Barrier(4, timeout=60)  # each round, the four workers claim at once, then complete
    done: dict[str, list[str]] = {}
    refused: list[str] = []

    def work(registry: BatchRegistry, worker: str) -> None:
        mine: list[str] = []
        rounds.wait()
        while (claim := registry.queue.claim(batch, worker=worker, now_s=T0, until_s=T0 + LEASE)) is not None:
            rounds.wait()
            if registry.queue.complete(batch, claim.source, worker=worker):
                mine.append(claim.source)
            else:
                refused.append(claim.source)
            rounds.wait()
        done[worker] = mine

    threads = [threading.Thread(target=work, args=(hosts[i % 2], f"host-{i % 2}:w{i}")) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [s for mine in done.values() for s in mine]
    assert refused == [] and sorted(every) == sources and len(set(every)) == len(every)
    assert [len(mine) for mine in done.values()] == [15] * 4  # one document per worker and round, none twice
    finished_by = hosts[0].queue.finished_by(batch)
    assert {s: w for w, mine in done.items() for s in mine} == finished_by


def test_an_expired_lease_is_taken_over_a_renewed_one_is_not(connect: Opener) -> None:
    a, b = connect(), connect()
    batch = running_batch(a, ["one.tif", "two.tif", "three.tif"])
    first = a.queue.claim(batch, worker="host-a:1", now_s=T0, until_s=T0 + LEASE)
    second = a.queue.claim(batch, worker="host-a:1", now_s=T0, until_s=T0 + LEASE)
    assert first is not None and second is not None
    assert a.queue.complete(batch, second.source, worker="host-a:1")
    assert a.queue.renew(batch, worker="host-a:1", until_s=T0 + 100 + LEASE) == 1  # heartbeat at T0+100
    later = b.queue.claim(batch, worker="host-b:1", now_s=T0 + 150, until_s=T0 + 150 + LEASE)
    assert later is not None and later.source == "three.tif"  # one.tif's lease was renewed: still a's
    assert b.queue.claim(batch, worker="host-b:1", now_s=T0 + 150, until_s=T0 + 150 + LEASE) is None
    assert not b.queue.state(batch, worker="host-b:1", now_s=T0 + 150).settled
    # host a stops beating (dead): at T0+221 its lease has run out and host b takes the document over
    taken = b.queue.claim(batch, worker="host-b:1", now_s=T0 + 221, until_s=T0 + 221 + LEASE)
    assert taken is not None and taken.source == "one.tif" and taken.attempts == 2
    assert a.queue.renew(batch, worker="host-a:1", until_s=T0 + 400) == 0  # a late heartbeat gets nothing back
    assert not a.queue.complete(batch, "one.tif", worker="host-a:1")  # nor can it finish b's document
    assert b.queue.complete(batch, "one.tif", worker="host-b:1")
    assert b.queue.complete(batch, "three.tif", worker="host-b:1")
    assert b.queue.finished_by(batch) == {"one.tif": "host-b:1", "two.tif": "host-a:1", "three.tif": "host-b:1"}
    assert b.queue.state(batch, worker="host-a:1", now_s=T0 + 221).settled


def test_cancel_stops_claims_and_a_finished_run_hands_out_nothing(connect: Opener) -> None:
    registry = connect()
    batch = running_batch(registry, ["a.tif", "b.tif", "c.tif"])
    claim = registry.queue.claim(batch, worker="w", now_s=T0, until_s=T0 + LEASE)
    assert claim is not None and registry.request_cancel(batch)
    assert registry.queue.claim(batch, worker="w", now_s=T0, until_s=T0 + LEASE) is None
    assert registry.queue.claim(batch, worker="other", now_s=T0 + 1e6, until_s=T0 + 2e6) is None
    assert registry.queue.complete(batch, claim.source, worker="w")  # what was in flight still finishes
    assert registry.queue.unfinished(batch) == ["b.tif", "c.tif"]
    assert registry.finish(batch, runner="host-a:opener", state="cancelled", summary=BatchSummary(), now="x",
                           next_due_at=None)
    assert registry.queue.claim(batch, worker="w", now_s=T0 + 1e6, until_s=T0 + 2e6) is None  # ended: nothing
    record = registry.get(batch)
    assert record is not None and record.state == "cancelled" and record.lease_until is None
    assert registry.queue.attempts(batch) == {"a.tif": 1, "b.tif": 0, "c.tif": 0}  # the run's record stays
    assert registry.requeue(batch, only_sources=None, next_due_at=None, from_states=("cancelled",))
    assert registry.claim(batch, runner="host-b:2", now="t", from_states=("queued",), lease_until=T0 + LEASE)
    assert registry.queue.attempts(batch) == {}  # a new run starts from an empty queue, not ready
    assert registry.queue.claim(batch, worker="w", now_s=T0, until_s=T0 + LEASE) is None


def test_a_stale_run_is_recovered_by_lease_expiry_never_by_process_id(connect: Opener) -> None:
    from flows.batches.schedule import lease_expired, stale_runner

    a, b = connect(), connect()
    here = socket.gethostname()
    dead_pid = f"{here}:{2**22 + 17}"  # a runner string naming a process of this machine that does not exist
    batch = running_batch(a, ["a.tif", "b.tif"], runner=dead_pid)
    assert a.queue.claim(batch, worker=dead_pid, now_s=T0, until_s=T0 + LEASE) is not None
    record = b.get(batch)
    assert record is not None and record.lease_until == T0 + LEASE
    at = datetime.fromtimestamp(T0 + 60, tz=ZoneInfo("UTC"))
    assert not lease_expired(record, at) and stale_runner(record, at) is None  # its "pid" is dead: irrelevant
    assert not b.claim(batch, runner="host-b:x", now="t", from_states=(), expired_before=T0 + 60,
                       lease_until=T0 + 60 + LEASE)  # the run is alive: host b may only join it
    assert not b.cancel(batch, now="t", from_states=("queued",), expired_before=T0 + 60)
    alive_pid = b.get(batch).model_copy(update={"runner": f"{here}:{os.getpid()}"})  # type: ignore[union-attr]
    later = at + timedelta(seconds=LEASE)
    assert lease_expired(alive_pid, later) and stale_runner(alive_pid, later) == alive_pid.runner  # pid alive: stale
    assert b.claim(batch, runner="host-b:x", now="t", from_states=(), expired_before=later.timestamp(),
                   lease_until=later.timestamp() + LEASE)  # taken over: same queue, new run lease
    taken = b.get(batch)
    assert taken is not None and taken.runner == "host-b:x" and taken.lease_until == later.timestamp() + LEASE
    claims = {c.source: c.attempts for c in (b.queue.claim(batch, worker="host-b:x", now_s=later.timestamp(),
                                                            until_s=later.timestamp() + LEASE) for _ in range(2))
              if c is not None}
    assert claims == {"a.tif": 2, "b.tif": 1}  # the dead worker's document is handed out again
    assert b.queue.renew(batch, worker="host-b:x", until_s=later.timestamp() + 2 * LEASE) == 2
    renewed = b.get(batch)
    assert renewed is not None and renewed.lease_until == later.timestamp() + 2 * LEASE  # the heartbeat keeps it


def test_named_leases_expire_and_renew(connect: Opener) -> None:
    a, b = connect(), connect()
    assert a.acquire_lease("nightly:host-a", holder="host-a:1", now="t", expires_at=T0 + LEASE, now_s=T0)
    assert not b.acquire_lease("nightly:host-a", holder="host-a:2", now="t", expires_at=T0 + 60 + LEASE,
                               now_s=T0 + 60)
    assert b.lease_holder("nightly:host-a", now_s=T0 + 60) == "host-a:1"
    assert a.acquire_lease("nightly:host-a", holder="host-a:1", now="t", expires_at=T0 + 100 + LEASE,
                           now_s=T0 + 100)  # renewed by its holder
    assert not b.acquire_lease("nightly:host-a", holder="host-a:2", now="t", expires_at=T0 + 500, now_s=T0 + 150)
    assert b.lease_holder("nightly:host-a", now_s=T0 + 221) is None
    assert b.acquire_lease("nightly:host-a", holder="host-a:2", now="t", expires_at=T0 + 221 + LEASE,
                           now_s=T0 + 221)  # the first holder stopped renewing: its lease is void
    assert a.acquire_lease("nightly:host-b", holder="host-b:1", now="t", expires_at=T0 + LEASE, now_s=T0)
    a.release_lease("nightly:host-a", holder="host-a:1")  # not its lease any more: nothing happens
    assert a.lease_holder("nightly:host-a") == "host-a:2"


def test_a_registry_from_before_leases_opens_and_runs(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    with sqlite3.connect(path) as conn:  # the tables as versions before the queue made them
        conn.executescript("""
            CREATE TABLE batches (id TEXT PRIMARY KEY, folder TEXT NOT NULL, file_code TEXT, fonds TEXT, title TEXT,
                schedule TEXT NOT NULL, state TEXT NOT NULL, cancel_requested INTEGER NOT NULL DEFAULT 0,
                only_sources TEXT, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, next_due_at TEXT,
                runner TEXT, summary TEXT, error TEXT);
            CREATE TABLE batch_leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, acquired_at TEXT NOT NULL);
            INSERT INTO batches (id, folder, schedule, state, created_at, runner)
                VALUES ('lo-old', '/scans/old', 'tonight', 'running', '2026-11-01T09:00:00+07:00', 'oldhost:4242');
            INSERT INTO batch_leases VALUES ('nightly', 'oldhost:4242', '2026-11-01T22:00:00+07:00');
        """)
    conn.close()
    with BatchRegistry(path) as registry:
        old = registry.get("lo-old")
        assert old is not None and old.lease_until is None  # left running by an old version: nobody renews it
        assert registry.claim("lo-old", runner="h:new", now="t", from_states=(), expired_before=T0,
                              lease_until=T0 + LEASE)
        registry.queue.enqueue("lo-old", ["a.tif"])
        assert registry.queue.claim("lo-old", worker="h:new", now_s=T0, until_s=T0 + LEASE) is not None
        assert registry.acquire_lease("nightly", holder="h:new", now="t", stale_holder="oldhost:4242")
    with BatchRegistry(path) as registry:  # opening again changes nothing
        assert [r.id for r in registry.batches()] == ["lo-old"]


def test_two_processes_share_a_queue_and_one_killed_mid_claim_loses_only_its_lease(target: str,
                                                                                    tmp_path: Path) -> None:
    with BatchRegistry(open_database(target) if target.startswith("postgresql://") else Path(target)) as registry:
        sources = [f"doc-{i:02d}.tif" for i in range(24)]
        batch = running_batch(registry, sources)
    log, offset, go = tmp_path / "done.log", tmp_path / "offset", tmp_path / "a-holds"
    offset.write_text("0", encoding="utf-8")
    base = [sys.executable, "-m", "tests.tools.queue_worker", target, batch]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # A completes two documents and hangs on its third claim; B pauses after five until A holds that claim
    a = subprocess.Popen([*base, "A", str(log), str(offset), "--hang-at", "3"], cwd=REPO, env=env)
    b = subprocess.Popen([*base, "B", str(log), str(offset), "--pause-after", "5", str(go)], cwd=REPO, env=env)
    try:
        holding = Path(f"{log}.A.holding")
        deadline = time.monotonic() + 120
        while not holding.exists() and a.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert holding.exists(), "worker A never held a claim"
        a.kill()  # SIGKILL while it holds its claim
        assert a.wait(timeout=60) == -9
        offset.write_text(str(10 * 60.0), encoding="utf-8")  # B's clock moves past A's lease
        go.write_text("", encoding="utf-8")
        assert b.wait(timeout=120) == 0
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    lines = [line.split() for line in log.read_text(encoding="utf-8").splitlines()]
    done = [source for _worker, source in lines]
    assert sorted(done) == sources and len(set(done)) == len(done)  # every document exactly once
    held = holding.read_text(encoding="utf-8")
    assert [w for w, s in lines if s == held] == ["B"]  # A's claimed document was taken over by B
    assert {w for w, _s in lines} == {"A", "B"} and sum(w == "A" for w, _s in lines) == 2
    with BatchRegistry(open_database(target) if target.startswith("postgresql://") else Path(target)) as registry:
        finished = registry.queue.finished_by(batch)
        assert sorted(finished) == sources and finished[held] == "B"
        assert registry.queue.claim(batch, worker="C", now_s=time.time() + 1e6, until_s=time.time() + 2e6) is None


def test_the_flows_join_a_live_run_and_take_over_one_whose_lease_ran_out(target: str, tmp_path: Path) -> None:
    from flows.batches.running import claimed_run
    from flows.batches.schedule import this_runner
    from flows.wiring import close_all, open_batch_registry
    from schemas.settings import Settings

    url = target if target.startswith("postgresql://") else None
    index = "elasticsearch" if url else "sqlite"  # a catalog in PostgreSQL needs a server index (never reached here)
    settings = Settings(archive=tmp_path / "archive", database_url=url, lease_s=LEASE,  # type: ignore[arg-type]
                        search_index=index, es_url="http://127.0.0.1:9")
    tz = ZoneInfo(settings.timezone)
    try:
        with open_batch_registry(settings) as registry:
            batch = running_batch(registry, ["a.tif"], runner="elsewhere:9f2c")  # its workers are on another host
            assert registry.queue.claim(batch, worker="elsewhere:9f2c", now_s=T0, until_s=T0 + LEASE) is not None
            joined = claimed_run(settings, registry, batch, lambda: datetime.fromtimestamp(T0 + 60, tz), window=None)
            assert joined is not None and not joined.opener and joined.record.runner == "elsewhere:9f2c"
            assert joined.claim() is None  # a.tif is still elsewhere's: its lease lives
            later = datetime.fromtimestamp(T0 + LEASE + 1, tz)  # nobody renewed: the run and a.tif are free
            taken = claimed_run(settings, registry, batch, lambda: later, window=None)
            assert taken is not None and taken.opener and taken.record.runner == this_runner()
            claim = taken.claim()
            assert claim is not None and claim.source == "a.tif" and claim.attempts == 2
    finally:
        close_all()


def test_two_processes_with_their_own_host_id_are_two_workers_of_one_run(target: str, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``SOHOA_HOST_ID`` names the worker (``HOST:token``): two workers on one machine playing two hosts join one
    run as two workers; without it both would be the run's opener (same hostname, same process token here)."""
    from flows.batches.running import claimed_run
    from flows.wiring import close_all, open_batch_registry
    from schemas.settings import Settings

    url = target if target.startswith("postgresql://") else None
    monkeypatch.setenv("SOHOA_HOST_ID", "may-quet-2")
    assert Settings().host_id == "may-quet-2"
    monkeypatch.delenv("SOHOA_HOST_ID")
    assert Settings().host_id == socket.gethostname()
    with pytest.raises(ValueError):
        Settings(host_id="may:2")  # the worker id is HOST:token
    one, two = (Settings(archive=tmp_path / name, database_url=url, lease_s=LEASE, host_id=name,  # type: ignore[arg-type]
                         search_index="elasticsearch" if url else "sqlite") for name in ("may-1", "may-2"))
    tz = ZoneInfo(one.timezone)
    try:
        with open_batch_registry(one) as registry:
            assert registry.add(BatchRecord(id="lo-hai-may", folder="/scans/lo", schedule="tonight", state="queued",
                                            created_at="2026-12-07T09:00:00+07:00"))
            first = claimed_run(one, registry, "lo-hai-may", lambda: datetime.fromtimestamp(T0, tz), window=None)
            assert first is not None and first.opener and first.runner.startswith("may-1:")
            registry.queue.enqueue("lo-hai-may", ["a.tif", "b.tif"])
            second = claimed_run(two, registry, "lo-hai-may", lambda: datetime.fromtimestamp(T0 + 1, tz),
                                 window=None)
            assert second is not None and not second.opener and second.runner.startswith("may-2:")
            a, b = first.claim(), second.claim()
            assert a is not None and b is not None and {a.source, b.source} == {"a.tif", "b.tif"}
    finally:
        close_all()


def test_the_registry_contract_holds_on_both_databases(connect: Opener) -> None:
    from schemas.reasons import ReasonCode, reason

    registry = connect()
    record = BatchRecord(id="lo-20261127-ab12", folder="/scans/a", schedule="tonight", state="queued",
                         created_at="2026-11-27T09:00:00+07:00", only_sources=["a.tif", "ả.tif"])
    assert registry.add(record) and not registry.add(record)  # ids are unique
    assert registry.add(record.model_copy(update={"id": "lo-20261127-cd34", "created_at": "2026-11-27T08:00:00+07:00",
                                                  "only_sources": None}))
    assert [r.id for r in registry.batches()] == ["lo-20261127-ab12", "lo-20261127-cd34"]  # creation order
    assert [r.id for r in registry.batches(states=("running",))] == []
    assert registry.get(record.id) == record and registry.get("lo-none") is None
    assert registry.claim(record.id, runner="h:1", now="t1", from_states=("queued",), lease_until=T0 + LEASE)
    assert not connect().claim(record.id, runner="h:2", now="t1", from_states=("queued",))  # one winner
    assert not registry.cancel(record.id, now="t1", from_states=("queued",))
    assert not registry.cancel_requested(record.id)
    assert registry.request_cancel(record.id) and registry.cancel_requested(record.id)
    registry.record_outcome(record.id, "a.tif", doc_id=None, now="t2",
                            failure=reason(ReasonCode.DOCUMENT_REJECTED, detail="a.tif: tệp rỗng"))
    registry.record_outcome(record.id, "ả.tif", doc_id="d2", now="t2", held=[reason(ReasonCode.UNKNOWN_FAILURE)])
    outcomes = registry.outcomes(record.id)
    assert outcomes["a.tif"].failure is not None and outcomes["ả.tif"].held and outcomes["ả.tif"].doc_id == "d2"
    registry.record_outcome(record.id, "a.tif", doc_id="abc", now="t3")  # the retry stored it
    stored = registry.outcomes(record.id)["a.tif"]
    assert stored.doc_id == "abc" and stored.failure is None
    assert not registry.finish(record.id, runner="h:2", state="done", summary=BatchSummary(), now="t3",
                               next_due_at=None)  # not its run
    assert registry.finish(record.id, runner="h:1", state="partial", summary=BatchSummary(documents=2, pending=1),
                           now="t3", next_due_at="2026-11-28T22:00:00+07:00", only_sources=["ả.tif"])
    done = connect().get(record.id)
    assert done is not None and done.state == "partial" and not done.cancel_requested and done.runner is None
    assert done.summary == BatchSummary(documents=2, pending=1) and done.only_sources == ["ả.tif"]
    assert done.next_due_at == "2026-11-28T22:00:00+07:00" and done.finished_at == "t3"
    assert registry.requeue(record.id, only_sources=None, next_due_at=None, from_states=("partial",))
    assert registry.cancel(record.id, now="t4", from_states=("queued",))
    assert not registry.requeue(record.id, only_sources=None, next_due_at=None, from_states=("queued",))
    assert registry.acquire_lease("nightly", holder="h:1", now="t")
    assert not registry.acquire_lease("nightly", holder="h:2", now="t")
    assert registry.acquire_lease("nightly", holder="h:2", now="t", stale_holder="h:1")
    assert registry.lease_holder("nightly") == "h:2"
    registry.release_lease("nightly", holder="h:2")
    assert registry.lease_holder("nightly") is None


def _run_of(registry: BatchRegistry, batch: str, clock: list[float], runner: str = "host-a:late") -> BatchRun:
    """A worker's run on the batch (no services: ``await_held`` reads only the queue), at the time in ``clock``."""
    settings = Settings(lease_s=LEASE)
    record = registry.get(batch)
    assert record is not None
    return BatchRun(record=record, registry=registry, settings=settings, services=None,  # type: ignore[arg-type]
                    clock=lambda: datetime.fromtimestamp(clock[0], tz=ZoneInfo("Asia/Ho_Chi_Minh")),
                    runner=runner, window=None, opener=False)


def test_a_worker_left_with_only_a_dead_hosts_claim_waits_for_its_lease_and_takes_it_over(connect: Opener) -> None:
    registry = connect()
    batch = running_batch(registry, ["a.pdf"])
    assert connect().queue.claim(batch, worker="host-b:dead", now_s=T0, until_s=T0 + LEASE) is not None
    clock = [T0 + 1]
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # host-b never renews: it is gone
        slept.append(seconds)
        clock[0] += seconds

    run = _run_of(registry, batch, clock)
    assert run.claim() is None  # held under a live lease
    assert await_held(run, sleep=sleep)  # waited until the lease ran out ...
    assert T0 + LEASE < clock[0] <= T0 + LEASE + 2 and max(slept) <= 1.0
    claim = run.claim()
    assert claim is not None and claim.source == "a.pdf" and claim.attempts == 2  # ... and takes the document over


def test_a_worker_stops_waiting_once_every_holder_renewed_or_finished(connect: Opener) -> None:
    registry, other = connect(), connect()
    batch = running_batch(registry, ["a.pdf", "b.pdf", "c.pdf"])
    for _ in range(2):
        assert other.queue.claim(batch, worker="host-b:alive", now_s=T0, until_s=T0 + LEASE) is not None
    assert registry.queue.claim(batch, worker="host-c:alive", now_s=T0, until_s=T0 + LEASE) is not None
    clock = [T0 + 1]
    beats = []

    def sleep(seconds: float) -> None:  # host-b's heartbeat comes, host-c finishes its document
        clock[0] += seconds
        if len(beats) < 2:
            beats.append(other.queue.renew(batch, worker="host-b:alive", until_s=clock[0] + LEASE))
        else:
            assert registry.queue.complete(batch, "c.pdf", worker="host-c:alive")

    run = _run_of(registry, batch, clock)
    assert not await_held(run, sleep=sleep)  # alive: they finish their documents and the last records the batch
    assert clock[0] < T0 + 10  # a few polls, not a lease
    assert registry.queue.claim(batch, worker="host-a:late", now_s=clock[0], until_s=clock[0] + LEASE) is None


def test_a_waiting_worker_stops_on_cancel_and_does_not_wait_when_nothing_is_held(connect: Opener) -> None:
    registry = connect()
    batch = running_batch(registry, ["a.pdf"])
    clock = [T0 + 1]

    def never(seconds: float) -> None:
        raise AssertionError("nothing is held: no waiting")

    assert not await_held(_run_of(registry, batch, clock), sleep=never)
    assert connect().queue.claim(batch, worker="host-b:alive", now_s=T0, until_s=T0 + LEASE) is not None

    def cancel(seconds: float) -> None:
        clock[0] += seconds
        assert registry.request_cancel(batch)

    assert not await_held(_run_of(registry, batch, clock), sleep=cancel)
    assert clock[0] < T0 + 3
