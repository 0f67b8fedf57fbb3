"""docker-compose.yml without a Docker engine (none runs here): its structure is checked as YAML (services, pinned
images, health checks, start order, PostgreSQL for sohoa and for Prefect's server, secrets only from .env), Debian's
``docker-compose config`` parses it (installed by ``make deps``; skipped outside CI without it), and the PostgreSQL
init script the stack mounts is run against the session's real PostgreSQL cluster (roles, databases, rights,
Prefect's pg_trgm as a non-superuser)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from schemas.settings import Settings
from tests.tools.postgres import PostgresServer

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "init-databases.sh"
SOHOA_SERVICES = ("deploy", "worker", "web")
REQUIRED = re.compile(r"\$\{([A-Z_]+):\?[^}]*\}")
PINNED = re.compile(r"^[a-z0-9./_-]+:(?!latest$)[A-Za-z0-9._-]*\d[A-Za-z0-9._-]*$")


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")))


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (service.get("environment") or {}).items()}


def test_every_service_is_pinned_healthy_and_started_in_order() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "prefect-server", "deploy", "worker", "web", "minio", "elasticsearch"}
    for name, service in services.items():
        assert PINNED.match(service["image"]), (name, service["image"])  # an exact tag, never latest
        if name != "deploy":  # the one-shot job has nothing to check
            assert service.get("healthcheck", {}).get("test"), name
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services and condition == {"condition": "service_healthy"}, (name, dependency)
            assert services[dependency].get("healthcheck"), (name, dependency)
    assert services["postgres"]["image"].startswith("postgres:15.") and "bookworm" in services["postgres"]["image"]
    for name in ("prefect-server", *SOHOA_SERVICES):
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}, name


def test_postgres_service_has_a_volume_a_tcp_health_check_and_no_literal_password() -> None:
    compose = _compose()
    pg = compose["services"]["postgres"]
    assert "pg-data" in compose["volumes"] and "pg-data:/var/lib/postgresql/data" in pg["volumes"]
    assert pg["healthcheck"]["test"][:3] == ["CMD", "pg_isready", "-h"]  # TCP: not the init-time socket server
    mounts = [v.split(":") for v in pg["volumes"] if v.startswith("./")]
    assert [(ROOT / m[0]).resolve() for m in mounts] == [INIT_SCRIPT]
    assert mounts[0][1].startswith("/docker-entrypoint-initdb.d/") and mounts[0][2] == "ro"
    assert os.access(INIT_SCRIPT, os.X_OK)
    assert all(p.startswith("127.0.0.1:") for s in compose["services"].values() for p in s.get("ports", []))


def test_prefect_server_and_sohoa_services_point_at_postgres() -> None:
    services = _compose()["services"]
    prefect_db = _env(services["prefect-server"])["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert re.fullmatch(r"postgresql\+asyncpg://prefect:\$\{PREFECT_DB_PASSWORD:\?[^}]+\}@postgres:5432/prefect",
                        prefect_db), prefect_db
    auth = r"\$\{PREFECT_API_AUTH_STRING:\?[^}]+\}"
    assert re.fullmatch(auth, _env(services["prefect-server"])["PREFECT_SERVER_API_AUTH_STRING"])
    for name in SOHOA_SERVICES:
        env = _env(services[name])
        assert re.fullmatch(auth, env["PREFECT_API_AUTH_STRING"]), name  # the API is never open
        assert re.fullmatch(r"postgresql://sohoa:\$\{SOHOA_DB_PASSWORD:\?[^}]+\}@postgres:5432/sohoa",
                            env["SOHOA_DATABASE_URL"]), (name, env.get("SOHOA_DATABASE_URL"))
        known = {f"SOHOA_{field.upper()}" for field in Settings.model_fields}
        assert {k for k in env if k.startswith("SOHOA_")} <= known, (name, set(env) - known)


def test_secrets_come_from_env_and_env_example_names_them_all() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for service in _compose()["services"].values():
        for key, value in _env(service).items():
            if re.search(r"PASSWORD|SECRET|AUTH", key) or ("://" in value and "@" in value):
                assert REQUIRED.search(value), (key, value)  # never a literal secret in the file
    example = {line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
               if "=" in line and not line.startswith("#")}
    assert set(REQUIRED.findall(text)) <= example, set(REQUIRED.findall(text)) - example
    assert {"POSTGRES_PASSWORD", "SOHOA_DB_PASSWORD", "PREFECT_DB_PASSWORD", "PREFECT_API_AUTH_STRING"} <= example


def test_the_sohoa_image_has_pg_dump_for_backups() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"apt-get install[^&]*\bpostgresql-client\b", dockerfile)


def test_docker_compose_config_parses_the_file(tmp_path: Path) -> None:
    if shutil.which("docker-compose") is None:  # `make deps` installs Debian's (no Docker engine needed for this)
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed: run `make deps`")
        pytest.skip("Debian's docker-compose is not installed (`make deps`)")
    env_file = tmp_path / ".env"  # .env.example, with the values it leaves for the operator filled in
    env_file.write_text("".join(line + ("x" * 16 if line.endswith("=") else "") + "\n"
                                for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()), encoding="utf-8")
    done = subprocess.run(["docker-compose", "--env-file", str(env_file), "-f", str(COMPOSE), "config", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")})
    assert done.returncode == 0, done.stderr


def test_postgres_init_script_makes_owned_databases_for_unprivileged_roles(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    tag = re.sub(r"[^a-z0-9]", "", tmp_path.name.lower())[-20:]
    names = {"SOHOA_DB_USER": f"s_{tag}", "SOHOA_DB_NAME": f"sdb_{tag}",
             "PREFECT_DB_USER": f"p_{tag}", "PREFECT_DB_NAME": f"pdb_{tag}"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | names | {
        "POSTGRES_USER": "sohoa", "POSTGRES_DB": "postgres", "PGHOST": "127.0.0.1", "PGPORT": str(postgres.port),
        "SOHOA_DB_PASSWORD": "sohoa-pw-" + tag, "PREFECT_DB_PASSWORD": "prefect-pw-" + tag,
        "PATH": f"{postgres.bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "pw-" not in done.stdout + done.stderr
    with psycopg.connect(postgres.url()) as admin:
        roles = dict(admin.execute("SELECT rolname, rolsuper OR rolcreatedb OR rolcreaterole FROM pg_roles "
                                   "WHERE rolname = ANY(%s)", ([names["SOHOA_DB_USER"], names["PREFECT_DB_USER"]],)
                                   ).fetchall())
        owners = dict(admin.execute("SELECT d.datname, r.rolname FROM pg_database d JOIN pg_roles r "
                                    "ON r.oid = d.datdba WHERE d.datname = ANY(%s)",
                                    ([names["SOHOA_DB_NAME"], names["PREFECT_DB_NAME"]],)).fetchall())
        hashed = admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                               (names["SOHOA_DB_USER"],)).fetchone()
    assert roles == {names["SOHOA_DB_USER"]: False, names["PREFECT_DB_USER"]: False}
    assert owners == {names["SOHOA_DB_NAME"]: names["SOHOA_DB_USER"],
                      names["PREFECT_DB_NAME"]: names["PREFECT_DB_USER"]}
    assert hashed is not None and str(hashed[0]).startswith("SCRAM-SHA-256$")
    prefect_url = postgres.url(names["PREFECT_DB_NAME"]).replace("//sohoa@", f"//{names['PREFECT_DB_USER']}@")
    with psycopg.connect(prefect_url, autocommit=True) as conn:  # what Prefect's first migration does
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        conn.execute("CREATE TABLE t (x text)")
    sohoa_url = postgres.url(names["SOHOA_DB_NAME"]).replace("//sohoa@", f"//{names['SOHOA_DB_USER']}@")
    with psycopg.connect(sohoa_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x text)")
    with pytest.raises(psycopg.OperationalError, match="permission denied"):  # each role only its own database
        psycopg.connect(prefect_url.replace(f"//{names['PREFECT_DB_USER']}@", f"//{names['SOHOA_DB_USER']}@"))
