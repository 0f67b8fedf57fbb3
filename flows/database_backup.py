"""The shared database in every backup: ``sohoa backup`` with ``SOHOA_DATABASE_URL`` set writes a
``pg_dump --format=custom`` of it into the backup's store, as ``database/<UTC time>.dump``, verified on the way in
(``ObjectStore.put_file``) and sealed like a manifest: its SHA-256 goes to ``<key>.sha256`` beside it (the directory
store keeps no checksum of its own), which ``sohoa verify`` checks (``dump_problems``). The objects are the record
of the documents, but accounts, access grants, the batch queue and the audit trail live only in the database:
without a dump a backup could not bring them back. Restore with ``pg_restore --clean --if-exists --dbname=… FILE``.

The password never appears on a command line (``ps`` shows those to every user of the host): it is taken out of the
URL and given to ``pg_dump`` in its environment (``PGPASSWORD``); ``--no-password`` keeps it from ever prompting.
The dump runs before the objects are copied, so a broken database connection stops the backup at once.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from flows.prefect_env import child_environment
from schemas.checksums import sha256_file
from schemas.errors import ConfigError, ToolMissingError
from schemas.fixity import DatabaseDump, FixityProblem
from schemas.settings import Settings
from storage.db import redact_password
from storage.objects import ObjectMissing, ObjectStore

DUMPS = "database/"  # the store's folder for database dumps (not part of any document)
DUMP_SUFFIX = ".dump"
SEAL_SUFFIX = ".sha256"
_INSTALL_HINT = ("cài gói postgresql-client (apt-get install postgresql-client) cùng phiên bản chính với máy chủ "
                 "PostgreSQL, hoặc đặt SOHOA_PG_DUMP tới đường dẫn của pg_dump, rồi chạy lại sohoa backup")


def dump_key(at: datetime) -> str:
    return f"{DUMPS}{at.astimezone(UTC):%Y%m%dT%H%M%S.%fZ}{DUMP_SUFFIX}"


def require_pg_dump(settings: Settings) -> str:
    """The ``pg_dump`` program to run (``SOHOA_PG_DUMP``, default found on PATH), else ``ToolMissingError``."""
    found = shutil.which(settings.pg_dump)
    if found is None:
        raise ToolMissingError(f"Không tìm thấy chương trình pg_dump ({settings.pg_dump}) để sao lưu cơ sở dữ liệu",
                               fix=_INSTALL_HINT)
    return found


def split_password(url: str) -> tuple[str, str | None]:
    """A libpq connection string without the password, and the password (None when the URL has none)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(url)
    except psycopg.Error as exc:  # libpq quotes the password (or the whole URL) it cannot parse
        raise ConfigError(f"SOHOA_DATABASE_URL không đọc được: {redact_password(str(exc).strip(), url)}",
                          fix="sửa SOHOA_DATABASE_URL (ký tự đặc biệt trong mật khẩu viết dạng %XX, vd. % là %25)"
                          ) from None
    password = params.pop("password", None)
    return make_conninfo("", **params), None if password is None else str(password)


def _run_pg_dump(program: str, url: str, out: Path) -> None:
    conninfo, password = split_password(url)
    env = child_environment(**({"PGPASSWORD": password} if password else {}))
    done = subprocess.run([program, "--format=custom", "--no-password", f"--file={out}", f"--dbname={conninfo}"],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip()
        if password:
            detail = detail.replace(password, "***")
        raise ConfigError(f"pg_dump không sao lưu được cơ sở dữ liệu (mã {done.returncode}): {detail[-800:]}",
                          fix="kiểm tra SOHOA_DATABASE_URL (máy chủ, người dùng, mật khẩu) và rằng pg_dump có phiên "
                              "bản chính không thấp hơn máy chủ PostgreSQL, rồi chạy lại sohoa backup")


def dump_database(settings: Settings, target: ObjectStore) -> DatabaseDump | None:
    """Dump the database of ``settings.database_url`` into ``target``; None when the archive uses SQLite files
    (they live in the archive folder, not in the store)."""
    if settings.database_url is None:
        return None
    program = require_pg_dump(settings)
    key = dump_key(datetime.now(UTC))
    with tempfile.TemporaryDirectory(prefix="sohoa-pgdump-") as tmp:
        out = Path(tmp) / "database.dump"
        _run_pg_dump(program, settings.database_url.get_secret_value(), out)
        sha256 = sha256_file(out)
        size = out.stat().st_size
        target.put_file(key, out, sha256)
    target.put_bytes(key + SEAL_SUFFIX, sha256.encode("ascii"))  # the seal last: a dump without one is unfinished
    return DatabaseDump(key=key, sha256=sha256, bytes=size)


def dump_problems(store: ObjectStore, keys: list[str]) -> list[FixityProblem]:
    """The database dumps among ``keys`` (a store's ``database/`` objects) that no longer match their seal, have
    none, or are gone while their seal is there; and any other object there (unexpected)."""
    present = set(keys)
    out: list[FixityProblem] = []
    for key in sorted(k for k in keys if k.endswith(DUMP_SUFFIX)):
        try:
            sealed = store.get_bytes(key + SEAL_SUFFIX).decode("ascii", "replace").strip()
            actual = store.sha256(key)
        except ObjectMissing:
            out.append(FixityProblem(kind="missing", key=key + SEAL_SUFFIX,
                                     detail="bản sao cơ sở dữ liệu chưa niêm phong (sao lưu bị dừng giữa chừng?)"))
            continue
        if sealed != actual:
            out.append(FixityProblem(kind="changed", key=key,
                                     detail="bản sao cơ sở dữ liệu (pg_dump) không khớp mã kiểm tra — dùng bản khác"))
    out += [FixityProblem(kind="missing", key=k[: -len(SEAL_SUFFIX)], detail="mất bản sao cơ sở dữ liệu")
            for k in sorted(present) if k.endswith(DUMP_SUFFIX + SEAL_SUFFIX) and k[: -len(SEAL_SUFFIX)] not in present]
    out += [FixityProblem(kind="unexpected", key=k, detail="ngoài cấu trúc kho")
            for k in sorted(present) if not k.endswith((DUMP_SUFFIX, DUMP_SUFFIX + SEAL_SUFFIX))]
    return out
