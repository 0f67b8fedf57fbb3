"""Time, schedules and the nightly window of batches, and the liveness of a batch run.

A batch's schedule is ``now``, ``tonight`` or a 5-field cron expression in ``SOHOA_TIMEZONE`` (Prefect's own cron
engine reads it). The nightly deployment fires every ``NIGHTLY_EVERY_MIN`` minutes inside the window
(``nightly_cron``). A worker is ``host:token`` (a random token per process: ``this_runner``); a running batch is
alive while its run lease (``BatchRecord.lease_until``, renewed by its workers' heartbeats) has not run out. A batch
whose lease ran out is stale (``stale_runner``) and may be taken over, on any host: no process id is ever looked at.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable
from datetime import datetime
from datetime import time as dtime
from zoneinfo import ZoneInfo

from schemas.errors import ConfigError
from schemas.settings import NightWindow
from storage.batches import BatchRecord

Clock = Callable[[], datetime]  # returns an aware datetime

NIGHTLY_EVERY_MIN = 15
_WHEN_FIX = 'dùng --when now, --when tonight hoặc một biểu thức cron 5 trường, vd. --when "0 22 * * 6"'


# --- time, schedules and the window: pure functions --------------------------------------------------------------


def system_clock(timezone: str) -> Clock:
    tz = ZoneInfo(timezone)
    return lambda: datetime.now(tz)


def iso(moment: datetime, timezone: str) -> str:
    """An aware time as ISO 8601 in the archive's time zone (``2026-11-27T22:00:05+07:00``)."""
    return moment.astimezone(ZoneInfo(timezone)).isoformat(timespec="seconds")


def parse_schedule(text: str) -> str:
    """``now``, ``tonight`` or a valid 5-field cron expression (normalised spacing); ConfigError otherwise."""
    value = " ".join(text.strip().split())
    if value.lower() in ("now", "tonight"):
        return value.lower()
    from prefect._vendor.croniter import croniter  # the cron engine Prefect's own schedules use

    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise ConfigError(f"Lịch chạy không hợp lệ: {text!r}", fix=_WHEN_FIX)
    return value


def next_fire(cron: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` (aware) at which ``cron`` fires, in ``after``'s time zone."""
    from prefect._vendor.croniter import croniter

    fire = croniter(cron, after).get_next(datetime)
    assert isinstance(fire, datetime)
    return fire


def window_open(window: NightWindow, now: datetime, timezone: str) -> bool:
    """Whether ``now`` (aware) falls inside the nightly window, read on the archive's local clock."""
    return window.contains(now.astimezone(ZoneInfo(timezone)).time())


def is_due(record: BatchRecord, now: datetime, window: NightWindow, timezone: str) -> bool:
    """Whether a nightly run at ``now`` should take ``record`` (the window must be open).

    Queued and partial batches are due (not before their ``next_due_at``); so are cron batches that finished
    (done or failed) once their cron has fired again; and running batches: a worker joins their queue (or takes
    the run over when its lease has run out).
    """
    if not window_open(window, now, timezone):
        return False
    if record.state == "running":
        return True
    recurring = record.schedule not in ("now", "tonight") and record.state in ("done", "failed")
    if record.state not in ("queued", "partial") and not recurring:
        return False
    return record.next_due_at is None or datetime.fromisoformat(record.next_due_at) <= now


def nightly_cron(window: NightWindow, every_min: int = NIGHTLY_EVERY_MIN) -> str:
    """The cron of the nightly deployment: every ``every_min`` minutes from the window's start, only in the hours
    that hold at least one such time inside the window (``22:00-06:00`` → ``*/15 0-5,22-23 * * *``)."""
    first = window.start.minute % every_min
    minutes = list(range(first, 60, every_min))
    hours = sorted({h for h in range(24) for m in minutes if window.contains(dtime(h, m))})
    minute_field = f"*/{every_min}" if first == 0 else f"{first}-59/{every_min}"
    return f"{minute_field} {_ranges(hours) if len(hours) < 24 else '*'} * * *"


def _ranges(values: list[int]) -> str:
    parts: list[str] = []
    for v in values:
        if parts and int(parts[-1].split("-")[-1]) == v - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{v}"
        else:
            parts.append(str(v))
    return ",".join(parts)


# --- runners --------------------------------------------------------------------------------------------------------


_TOKEN = secrets.token_hex(6)  # this process, among the workers of every host


def this_runner(host: str | None = None) -> str:
    """This process as a worker of the shared queue: ``host:token`` (never a process id: pids mean nothing on
    another machine, and are reused). ``host``: ``Settings.host_id`` (``SOHOA_HOST_ID``); default the hostname."""
    return f"{host or socket.gethostname()}:{_TOKEN}"


def lease_expired(record: BatchRecord, now: datetime | None = None) -> bool:
    """Whether ``record`` is running under a run lease that has run out at ``now`` (default: the system clock).
    A running batch without a lease was left by a version before leases: nobody renews it, so it has run out."""
    if record.state != "running":
        return False
    moment = now.timestamp() if now is not None else datetime.now().timestamp()
    return record.lease_until is None or record.lease_until < moment


def stale_runner(record: BatchRecord, now: datetime | None = None) -> str | None:
    """The runner of a batch left ``running`` by workers that are gone (its lease ran out; else None)."""
    if lease_expired(record, now):
        return record.runner or ""
    return None
