"""``sohoa backup`` with ``SOHOA_DATABASE_URL``: a ``pg_dump --format=custom`` of the shared database goes into the
backup (``database/<time>.dump`` and its seal ``….sha256``; a directory or a real S3 bucket), read back by
``pg_restore`` from the session's real PostgreSQL cluster, checked by ``sohoa verify``; the password reaches pg_dump
only through its environment; a missing or failing pg_dump stops the backup with its exit code and a Vietnamese
fix-it message. With SQLite files (no URL) a backup writes no dump."""

from __future__ import annotations

import json
import stat
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from flows.database_backup import DUMPS, split_password
from flows.wiring import store_from_spec
from interfaces.cli import main
from schemas.checksums import sha256_file
from schemas.settings import Settings
from storage.objects import DirectoryObjectStore
from tests.test_preservation_s3 import use_s3
from tests.tools.postgres import PostgresServer
from tests.tools.seaweed import SeaweedServer

ROW = "Nghị quyết số 15-NQ/TU — Thành ủy Đà Nẵng"


def _database(postgres: PostgresServer, name: str) -> str:
    url = postgres.create_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE marker (body text NOT NULL)")
        conn.execute("INSERT INTO marker (body) VALUES (%s)", (ROW,))
    return url


def _backup(capsys: pytest.CaptureFixture[str], archive: Path, target: Path | str
            ) -> tuple[int, dict[str, object], str]:
    capsys.readouterr()
    code = main(["backup", "--archive", str(archive), "--to", str(target), "--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else {}), captured.err


def _pg(program: str, postgres: PostgresServer) -> str:
    return str(postgres.bin_dir / program)


def test_backup_writes_a_pg_dump_that_pg_restore_reads(
    postgres: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _database(postgres, f"bk_{tmp_path.name}".lower())
    monkeypatch.setenv("SOHOA_DATABASE_URL", url)
    monkeypatch.setenv("SOHOA_PG_DUMP", _pg("pg_dump", postgres))
    archive, target = tmp_path / "archive", tmp_path / "backup"
    code, report, err = _backup(capsys, archive, target)
    assert code == 0, err
    dump = report["database_dump"]
    assert isinstance(dump, dict) and str(dump["key"]).startswith(DUMPS) and str(dump["key"]).endswith(".dump")
    store = DirectoryObjectStore(target / "objects")
    key = str(dump["key"])
    assert list(store.list(DUMPS)) == [key, key + ".sha256"]  # the dump and its seal
    path = target / "objects" / key
    assert sha256_file(path) == dump["sha256"] == store.get_bytes(key + ".sha256").decode("ascii")
    assert path.stat().st_size == dump["bytes"] and f"Cơ sở dữ liệu: {dump['key']}" in err

    listing = subprocess.run([_pg("pg_restore", postgres), "--list", str(path)], capture_output=True, text=True)
    assert listing.returncode == 0 and "TABLE public marker" in listing.stdout, listing.stderr
    restored = postgres.create_database(f"rs_{tmp_path.name}".lower())  # and the data comes back
    done = subprocess.run([_pg("pg_restore", postgres), "--no-owner", f"--dbname={restored}", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(restored) as conn:
        assert conn.execute("SELECT body FROM marker").fetchall() == [(ROW,)]
    # a sealed dump is part of the layout, not "unexpected"
    assert main(["verify", "--store", str(target), "--archive", str(archive)]) == 0
    log = [json.loads(line) for line in (archive / "backup-log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert log[-1]["database_dump"] == dump["key"]

    code, second, err = _backup(capsys, archive, target)  # every backup dumps again, beside the earlier dumps
    assert code == 0 and second["database_dump"]["key"] != dump["key"]  # type: ignore[index]
    assert len(list(store.list(DUMPS))) == 4


def test_verify_finds_a_changed_unsealed_or_lost_dump(
    postgres: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOHOA_DATABASE_URL", _database(postgres, f"vf_{tmp_path.name}".lower()))
    monkeypatch.setenv("SOHOA_PG_DUMP", _pg("pg_dump", postgres))
    target = tmp_path / "backup"
    keys = []
    for _ in range(3):
        code, report, err = _backup(capsys, tmp_path / "archive", target)
        assert code == 0, err
        keys.append(str(report["database_dump"]["key"]))  # type: ignore[index]
    objects = target / "objects"
    data = bytearray((objects / keys[0]).read_bytes())
    data[len(data) // 2] ^= 0x01
    (objects / keys[0]).write_bytes(bytes(data))
    (objects / (keys[1] + ".sha256")).unlink()
    (objects / keys[2]).unlink()
    (objects / "database" / "notes.txt").write_text("không thuộc bản sao nào", encoding="utf-8")
    capsys.readouterr()
    assert main(["verify", "--store", str(target), "--archive", str(tmp_path / "archive"), "--json"]) == 7
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert {(p["kind"], p["key"]) for p in problems} == {
        ("changed", keys[0]), ("missing", keys[1] + ".sha256"), ("missing", keys[2]),
        ("unexpected", "database/notes.txt")}


def test_the_password_reaches_pg_dump_only_through_its_environment(
    postgres: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _database(postgres, f"pw_{tmp_path.name}".lower())
    secret = "Mật-khẩu/ p@ss:42"  # the test cluster trusts local connections: any password is accepted
    from urllib.parse import quote

    with_password = url.replace("//sohoa@", f"//sohoa:{quote(secret, safe='')}@")
    assert split_password(with_password)[1] == secret
    spy = tmp_path / "pg_dump"  # records its arguments and PGPASSWORD, then runs the real pg_dump
    spy.write_text("#!/bin/sh\n"
                   f"printf '%s\\n' \"$@\" > '{tmp_path}/argv'\n"
                   f"printf '%s' \"$PGPASSWORD\" > '{tmp_path}/pgpassword'\n"
                   f"exec '{_pg('pg_dump', postgres)}' \"$@\"\n", encoding="utf-8")
    spy.chmod(spy.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("SOHOA_DATABASE_URL", with_password)
    monkeypatch.setenv("SOHOA_PG_DUMP", str(spy))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    code, report, err = _backup(capsys, tmp_path / "archive", tmp_path / "backup")
    assert code == 0 and report["database_dump"], err
    argv = (tmp_path / "argv").read_text(encoding="utf-8")
    assert "--format=custom" in argv.splitlines() and f"dbname=pw_{tmp_path.name}".lower() in argv
    assert secret not in argv and quote(secret, safe="") not in argv and "password=" not in argv
    assert (tmp_path / "pgpassword").read_text(encoding="utf-8") == secret


def test_a_missing_pg_dump_stops_the_backup_before_any_copy(
    postgres: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOHOA_DATABASE_URL", _database(postgres, f"nd_{tmp_path.name}".lower()))
    monkeypatch.setenv("SOHOA_PG_DUMP", str(tmp_path / "no-such" / "pg_dump"))
    code, _, err = _backup(capsys, tmp_path / "archive", tmp_path / "backup")
    assert code == 5
    assert "Không tìm thấy chương trình pg_dump" in err and "apt-get install postgresql-client" in err
    assert not (tmp_path / "backup" / "objects" / "database").exists()


def test_a_failing_pg_dump_stops_the_backup_with_its_error(
    postgres: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOHOA_DATABASE_URL", _database(postgres, f"fail_{tmp_path.name}".lower()))
    failing = tmp_path / "pg_dump"  # a pg_dump that cannot dump (as for a lost connection or a refused role)
    failing.write_text("#!/bin/sh\necho 'pg_dump: error: query failed: permission denied for table marker' >&2\n"
                       "exit 1\n")
    failing.chmod(0o755)
    monkeypatch.setenv("SOHOA_PG_DUMP", str(failing))
    code, _, err = _backup(capsys, tmp_path / "archive", tmp_path / "backup")
    assert code == 4
    assert "pg_dump không sao lưu được cơ sở dữ liệu" in err and "permission denied" in err
    assert "kiểm tra SOHOA_DATABASE_URL" in err
    assert not (tmp_path / "backup" / "objects" / "database").exists()


def test_an_unreachable_database_stops_the_backup_before_anything(
    postgres: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOHOA_DATABASE_URL", postgres.url(f"absent_{tmp_path.name}".lower()))  # never created
    monkeypatch.setenv("SOHOA_PG_DUMP", _pg("pg_dump", postgres))
    code, _, err = _backup(capsys, tmp_path / "archive", tmp_path / "backup")
    assert code == 4
    assert "Không kết nối được cơ sở dữ liệu PostgreSQL" in err and "does not exist" in err
    assert "kiểm tra SOHOA_DATABASE_URL" in err and "Traceback" not in err
    assert not (tmp_path / "backup" / "objects").exists()


def test_without_a_database_url_a_backup_writes_no_dump(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOHOA_DATABASE_URL", raising=False)
    monkeypatch.setenv("SOHOA_PG_DUMP", str(tmp_path / "no-such" / "pg_dump"))  # never looked for
    code, report, err = _backup(capsys, tmp_path / "archive", tmp_path / "backup")
    assert code == 0 and report["database_dump"] is None, err
    assert not (tmp_path / "backup" / "objects" / "database").exists()


def test_a_dump_goes_to_an_s3_backup_and_verifies_there(
    postgres: PostgresServer, seaweed: SeaweedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = f"pg-{uuid.uuid4().hex[:8]}"
    use_s3(monkeypatch, seaweed, prefix)
    monkeypatch.setenv("SOHOA_OBJECT_STORE", "directory")  # source: the embedded archive; target: the bucket
    monkeypatch.setenv("SOHOA_DATABASE_URL", _database(postgres, f"s3_{tmp_path.name}".lower()))
    monkeypatch.setenv("SOHOA_PG_DUMP", _pg("pg_dump", postgres))
    spec = f"s3://sohoa/{prefix}"
    code, report, err = _backup(capsys, tmp_path / "archive", spec)
    assert code == 0, err
    key = str(report["database_dump"]["key"])  # type: ignore[index]
    store = store_from_spec(spec, Settings())
    assert list(store.list(DUMPS)) == [key, key + ".sha256"]
    copy = tmp_path / "copy.dump"
    store.get_file(key, copy)
    listing = subprocess.run([_pg("pg_restore", postgres), "--list", str(copy)], capture_output=True, text=True)
    assert listing.returncode == 0 and "TABLE public marker" in listing.stdout, listing.stderr
    assert main(["verify", "--store", spec, "--archive", str(tmp_path / "archive")]) == 0
    store.delete(key + ".sha256")
    assert main(["verify", "--store", spec, "--archive", str(tmp_path / "archive")]) == 7
