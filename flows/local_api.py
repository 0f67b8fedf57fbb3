"""Prefect's temporary local API, started by sohoa itself at the very start of a run.

Prefect starts the same server on its own when no ``PREFECT_API_URL`` is set, but only once a flow begins, and
the client imports the whole server package to do so (~4 CPU-seconds). Here the server process (the same
uvicorn command as Prefect's ``SubprocessASGIServer``) boots while the first pages are already being OCR'd, and
the flow is pointed at it with ``temporary_settings``. The process is stopped when the run ends.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from types import TracebackType

from flows.prefect_env import child_environment
from schemas.errors import ConfigError


def die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent dies, even by ``kill -9``, so a
    crashed run leaves no server behind (no-op elsewhere)."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPrefectApi:
    """``with LocalPrefectApi() as api: ... api.wait_ready() ... api.url``"""

    def __init__(self, *, startup_timeout_s: float = 180.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalPrefectApi:
        env = child_environment(PREFECT_UI_ENABLED="0", PREFECT__SERVER_EPHEMERAL="1", PREFECT__SERVER_FINAL="1")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent,
        )
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise ConfigError(f"Máy chủ Prefect cục bộ dừng đột ngột (mã {self._process.returncode})",
                                  fix="chạy lại với --verbose, hoặc đặt PREFECT_API_URL tới một máy chủ Prefect")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise ConfigError(f"Máy chủ Prefect cục bộ không khởi động trong {self.startup_timeout_s:.0f} s",
                          fix="tăng PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS hoặc đặt PREFECT_API_URL")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
