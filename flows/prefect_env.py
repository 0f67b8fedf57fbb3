"""Prefect settings for offline, embedded use. Must run before ``prefect`` is imported.

With no ``PREFECT_API_URL`` Prefect starts a temporary local API server (SQLite under ``PREFECT_HOME``); with
one set (``prefect server start`` or docker-compose) flows report there instead. Telemetry is off: classified
material lives on isolated machines.
"""

from __future__ import annotations

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


def configure_prefect(prefect_home: Path, *, verbose: bool = False) -> None:
    """Set Prefect's environment (without overriding what the operator set)."""
    for key, value in OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    home = Path(os.environ.setdefault("PREFECT_HOME", str(prefect_home.expanduser())))
    home.mkdir(parents=True, exist_ok=True)
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")


def uses_local_api() -> bool:
    """True when flows will start Prefect's temporary local API (no server configured)."""
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()
