"""The process environment of Prefect, Dask and the child processes sohoa starts: the one module besides
``schemas.settings`` that reads or sets environment variables (Prefect's and Dask's own, not sohoa's).

Prefect reads its settings from the environment (``PREFECT_*``), so the values it must see are set here, from
``Settings``, before ``prefect`` is imported (``configure_prefect``). With no ``PREFECT_API_URL`` Prefect starts a
temporary local API server (SQLite under ``PREFECT_HOME``); with one set (``prefect server start`` or
docker-compose) flows report there instead. Telemetry is off: classified material lives on isolated machines.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

OFFLINE_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_UI_ENABLED": "false",
}
API_URL = "PREFECT_API_URL"
STARTUP_TIMEOUT = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


def limit_ocr_threads() -> None:
    """One OpenMP thread per tesseract (sohoa runs pages in parallel itself), unless the operator set it."""
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")


def configure_prefect(prefect_home: Path, *, verbose: bool = False) -> None:
    """Set Prefect's environment (without overriding what the operator set)."""
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    home = Path(os.environ.setdefault("PREFECT_HOME", str(prefect_home.expanduser())))
    home.mkdir(parents=True, exist_ok=True)
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    limit_ocr_threads()


def configured_api_url() -> str | None:
    """The Prefect server flows report to (``PREFECT_API_URL``), None in embedded mode. A cheap check that does not
    import Prefect (its profiles are read by ``uses_local_api``)."""
    return os.environ.get(API_URL) or None


def use_api_url(url: str) -> None:
    """Point this process and its children at the Prefect server ``url``."""
    os.environ[API_URL] = url


def startup_timeout_s() -> float:
    """How long a Prefect server sohoa starts may take to answer."""
    return float(os.environ.get(STARTUP_TIMEOUT, OFFLINE_DEFAULTS[STARTUP_TIMEOUT]))


def child_environment(**extra: str) -> dict[str, str]:
    """The environment of a Prefect server sohoa starts: this process's, with ``extra``, without ``PREFECT_API_URL``
    (the child is the server)."""
    env = {**os.environ, **extra}
    env.pop(API_URL, None)
    return env


def quiet_dask_logging() -> None:
    """Dask logs every connection at INFO: it logs at Prefect's level, here and in the worker processes it starts."""
    level = os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING").upper()
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", level.lower())
    logging.getLogger("distributed").setLevel(level)


def uses_local_api() -> bool:
    """True when flows will start Prefect's temporary local API (no server configured)."""
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()
