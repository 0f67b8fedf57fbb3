"""``sohoa serve``: run the scheduled deployments (``flows.scheduled``) until stopped.

With ``PREFECT_API_URL`` set (docker-compose, a shared Prefect server) the deployments register there. Without
it, sohoa starts its own ``prefect server start`` (scheduler on, UI on 127.0.0.1 only, analytics off; data under
``prefect_home``) and stops it on exit, so one machine runs its schedules with no other set-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from flows.local_api import die_with_parent, free_port
from flows.prefect_env import configure_prefect
from schemas.errors import ConfigError
from schemas.settings import Settings


def _start_server(port: int) -> subprocess.Popen[bytes]:
    """The server runs in its own session (a Ctrl+C reaches ``serve``, which stops it in order) and gets SIGTERM
    when ``serve`` dies, even by ``kill -9``, so it never outlives it."""
    env = {**os.environ}
    env.pop("PREFECT_API_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port),
         "--analytics-off", "--scheduler", "--ui"],
        env=env, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent,
    )


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
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
    if not os.environ.get("PREFECT_API_URL"):
        port = free_port()
        server = _start_server(port)
        url = f"http://127.0.0.1:{port}/api"
        _wait_ready(url, server, float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")))
        os.environ["PREFECT_API_URL"] = url
        sys.stderr.write(f"Giao diện Prefect: http://127.0.0.1:{port}\n")
    try:
        from prefect import serve
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from flows.scheduled import deployments

        # Prefect reads its settings once, when first imported (the CLI imports it before this): the URL set above
        # is given explicitly, else the runner may start a temporary server of its own (seen in a stack dump)
        with temporary_settings(updates={PREFECT_API_URL: os.environ["PREFECT_API_URL"]}):
            serve(*deployments(settings), print_starting_message=verbose)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
