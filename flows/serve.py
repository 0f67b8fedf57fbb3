"""``sohoa serve``: run the scheduled deployments (``flows.scheduled``) until stopped, or register them in a
work pool.

With ``PREFECT_API_URL`` set (docker-compose, a shared Prefect server) the deployments register there. Without
it, sohoa starts its own ``prefect server start`` (scheduler on, UI on 127.0.0.1 only, analytics off; data under
``prefect_home``) and stops it on exit, so one machine runs its schedules with no other set-up.

With a work pool (``--work-pool NAME`` / ``SOHOA_WORK_POOL``) nothing runs here: the same deployments (schedules,
parameters) are applied to that Prefect ``process`` work pool (created if missing) with entrypoints by module
(``flows.scheduled.fixity_audit``), and ``serve`` exits. Any ``prefect worker start --pool NAME --type process`` on
a machine with sohoa installed then runs them, importing the flows from the installed package (no code is copied).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from flows.local_api import die_with_parent, free_port
from flows.prefect_env import child_environment, configure_prefect, configured_api_url, startup_timeout_s, use_api_url
from schemas.errors import ConfigError
from schemas.settings import Settings


def start_server(port: int, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen[bytes]:
    """``prefect server start`` on 127.0.0.1:``port`` (environment: ``env``, default ours, without
    ``PREFECT_API_URL``). The server runs in its own session (a Ctrl+C reaches ``serve``, which stops it in order)
    and gets SIGTERM when its parent dies, even by ``kill -9``, so it never outlives it."""
    env = child_environment() if env is None else {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    return subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port),
         "--analytics-off", "--scheduler", "--ui"],
        env=env, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent, **popen,
    )


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ConfigError(f"Máy chủ Prefect dừng đột ngột (mã {process.returncode})",
                              fix="chạy `prefect server start` để xem lỗi, hoặc đặt PREFECT_API_URL")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise ConfigError(f"Máy chủ Prefect không khởi động trong {timeout_s:.0f} s", fix="đặt PREFECT_API_URL")


def run_serve(settings: Settings, *, verbose: bool = False) -> None:
    configure_prefect(settings.prefect_home, verbose=verbose)
    server = None
    url = configured_api_url()
    if not url:
        port = free_port()
        server = start_server(port)
        url = f"http://127.0.0.1:{port}/api"
        wait_ready(url, server, startup_timeout_s())
        use_api_url(url)
        sys.stderr.write(f"Giao diện Prefect: http://127.0.0.1:{port}\n")
    try:
        from prefect import serve
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from flows.scheduled import deployments

        # Prefect reads its settings once, when first imported (the CLI imports it before this): the URL set above
        # is given explicitly, else the runner may start a temporary server of its own (seen in a stack dump)
        with temporary_settings(updates={PREFECT_API_URL: url}):
            serve(*deployments(settings), print_starting_message=verbose)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


@dataclass(frozen=True)
class Registered:
    """One deployment applied to a work pool."""

    name: str  # flow/deployment
    entrypoint: str
    schedules: list[str]  # "cron (timezone)"
    parameters: dict[str, Any]


def register_work_pool(settings: Settings, pool: str) -> list[Registered]:
    """Create the ``process`` work pool ``pool`` if missing and apply ``flows.scheduled.deployments(settings)`` to
    it (creating or updating them) on the Prefect server at ``PREFECT_API_URL``; returns what was registered."""
    url = configured_api_url()
    if not url:
        raise ConfigError("`sohoa serve --work-pool` cần một máy chủ Prefect dùng chung",
                          fix="đặt PREFECT_API_URL (vd. http://prefect-server:4200/api) rồi chạy lại")
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.workers.process import ProcessWorker

    from flows.scheduled import deployments

    with temporary_settings(updates={PREFECT_API_URL: url}):  # see run_serve: settings were read at import
        with get_client(sync_client=True) as client:
            try:
                existing = client.read_work_pool(pool)
            except ObjectNotFound:
                try:
                    client.create_work_pool(WorkPoolCreate(
                        name=pool, type=ProcessWorker.type,
                        base_job_template=ProcessWorker.get_default_base_job_template(),
                        description="sohoa: kiểm tra toàn vẹn, số hóa ban đêm (sohoa serve --work-pool)"))
                except ObjectAlreadyExists:  # a worker (or another deploy) created it meanwhile
                    existing = client.read_work_pool(pool)
                else:
                    existing = None
            if existing is not None and existing.type != ProcessWorker.type:
                raise ConfigError(f"Hàng đợi công việc {pool!r} thuộc loại {existing.type!r}, không phải 'process'",
                                  fix="chọn tên khác với --work-pool, hoặc xóa hàng đợi đó (prefect work-pool delete)")
        registered = []
        for deployment in deployments(settings, by_module=True):
            deployment.apply(work_pool_name=pool)
            registered.append(Registered(
                name=f"{deployment.flow_name}/{deployment.name}", entrypoint=str(deployment.entrypoint),
                schedules=[f"{s.schedule.cron} ({s.schedule.timezone})" for s in deployment.schedules],
                parameters=dict(deployment.parameters)))
    return registered
