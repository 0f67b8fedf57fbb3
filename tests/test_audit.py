"""The audit trail: CLI actions are recorded, and every kind of tampering is found by ``sohoa audit verify``."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from flows.audit import AUDIT_FILE, KEY_FILE, open_audit
from flows.cli import main
from schemas.settings import Settings
from storage.audit import AuditLog, load_or_create_key
from tests.conftest import DigitisedArchive

ACTORS = ["lan", "minh", "hoa", "lan", "tuan", "minh"]


def _log(tmp_path: Path, entries: int = 6) -> tuple[Path, bytes]:
    key = load_or_create_key(tmp_path / KEY_FILE)
    log = AuditLog(tmp_path / AUDIT_FILE, key)
    for i in range(entries):
        log.append(actor=ACTORS[i % len(ACTORS)], action="search", source="10.0.0.7",
                   details={"query": f"nghị quyết {i}", "filters": {"year_from": 2000 + i}})
    log.close()
    return tmp_path / AUDIT_FILE, key


def _tamper(db: Path, *sql: str) -> None:
    con = sqlite3.connect(db)
    with con:
        for statement in sql:
            con.execute(statement)
    con.close()


def _swap(seq_a: int, seq_b: int) -> tuple[str, ...]:
    return (f"UPDATE audit_entries SET seq = -1 WHERE seq = {seq_a}",
            f"UPDATE audit_entries SET seq = {seq_a} WHERE seq = {seq_b}",
            f"UPDATE audit_entries SET seq = {seq_b} WHERE seq = -1")


TAMPERING: dict[str, tuple[str, ...]] = {
    "edit details": ("UPDATE audit_entries SET details = '{\"query\": \"khác\"}' WHERE seq = 3",),
    "edit actor": ("UPDATE audit_entries SET actor = 'ai-do' WHERE seq = 1",),
    "edit time": ("UPDATE audit_entries SET at = '2020-01-01T00:00:00+00:00' WHERE seq = 5",),
    "delete middle": ("DELETE FROM audit_entries WHERE seq = 2",),
    "delete last": ("DELETE FROM audit_entries WHERE seq = 6",),
    "delete last and its head": ("DELETE FROM audit_entries WHERE seq = 6", "DELETE FROM audit_head"),
    "insert": ("INSERT INTO audit_entries SELECT 7, at, 'ke-gian', source, action, target, details, hash, hash "
               "FROM audit_entries WHERE seq = 6",),
    "reorder": _swap(2, 4),
    "renumber after delete": ("DELETE FROM audit_entries WHERE seq = 3",
                              "UPDATE audit_entries SET seq = seq - 1 WHERE seq > 3"),
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_every_kind_of_tampering_is_found(tmp_path: Path, how: str) -> None:
    db, key = _log(tmp_path)
    log = AuditLog(db, key)
    assert log.verify().ok and log.verify().entries == 6
    log.close()
    _tamper(db, *TAMPERING[how])
    log = AuditLog(db, key)
    result = log.verify()
    log.close()
    assert not result.ok, how


def test_a_chain_rebuilt_without_the_key_is_found(tmp_path: Path) -> None:
    db, _ = _log(tmp_path)
    forged = AuditLog(tmp_path / "forged.sqlite3", b"\x00" * 32)  # someone rewrites the log with their own key
    for entry in AuditLog(db, load_or_create_key(tmp_path / KEY_FILE)).entries():
        if entry.seq != 2:
            forged.append(actor=entry.actor, action=entry.action, source=entry.source, details=entry.details)
    forged.close()
    shutil.copy(tmp_path / "forged.sqlite3", db)
    (tmp_path / "forged.sqlite3-wal").unlink(missing_ok=True)
    result = AuditLog(db, load_or_create_key(tmp_path / KEY_FILE)).verify()
    assert not result.ok and {p["kind"] for p in result.problems} >= {"modified"}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


def _archive_with_user(digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch, name: str = "lan", clearance: str = "0") -> Path:
    """A copy of the digitised sample archive (no audit trail yet) with one web account created by the CLI."""
    archive = tmp_path / "archive"
    shutil.copytree(digitised.archive, archive)
    for leftover in (AUDIT_FILE, AUDIT_FILE + "-wal", AUDIT_FILE + "-shm", "web.sqlite3"):
        (archive / leftover).unlink(missing_ok=True)
    monkeypatch.setattr("sys.stdin", io.StringIO("mat-khau-du-dai\n"))
    assert _run(capsys, "user", "add", name, "--role", "staff", "--clearance", clearance, "--password-stdin",
                "--archive", str(archive))[0] == 0
    return archive


def test_cli_actions_are_recorded_verified_and_exported(
    digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _archive_with_user(digitised, tmp_path, capsys, monkeypatch)
    doc_id = next(d["id"] for d in digitised.report["documents"] if d["source"] != "bc_03.pdf")  # type: ignore[attr-defined]
    assert _run(capsys, "search", "ke hoach", "--archive", str(archive), "--as", "lan", "--year-from", "2020")[0] == 0
    assert _run(capsys, "show", str(doc_id), "--archive", str(archive), "--as", "lan")[0] == 0
    out_csv = tmp_path / "bang.csv"
    assert _run(capsys, "export", "--out", str(out_csv), "--archive", str(archive))[0] == 0

    code, out = _run(capsys, "audit", "list", "--archive", str(archive), "--json")
    entries = json.loads(out)["entries"]
    assert [e["action"] for e in entries] == ["export.table", "document.view", "search", "user.create"]
    by_action = {e["action"]: e for e in entries}
    assert by_action["user.create"]["target"] == "lan" and by_action["user.create"]["details"]["clearance"] == 0
    assert by_action["search"]["actor"] == "lan"
    assert by_action["search"]["details"]["query"] == "ke hoach"
    assert by_action["search"]["details"]["filters"] == {"year_from": 2020}
    assert by_action["search"]["source"].startswith("cli@")
    assert by_action["document.view"]["target"] == doc_id
    assert by_action["export.table"]["target"] == str(out_csv)
    assert [e["seq"] for e in entries] == [4, 3, 2, 1]

    code, out = _run(capsys, "audit", "verify", "--archive", str(archive), "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "entries": 4, "problems": []}

    exported = tmp_path / "nhat-ky.csv"
    assert _run(capsys, "audit", "export", "--archive", str(archive), "--out", str(exported),
                "--action", "search")[0] == 0
    rows = list(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8-sig"))))
    assert [r["action"] for r in rows] == ["search"] and json.loads(rows[0]["details"])["query"] == "ke hoach"

    _tamper(archive / AUDIT_FILE, "UPDATE audit_entries SET actor = 'minh' WHERE action = 'document.view'")
    code, out = _run(capsys, "audit", "verify", "--archive", str(archive), "--json")
    report = json.loads(out)
    assert code == 7 and not report["ok"] and report["problems"][0]["seq"] == 3


def test_cli_as_a_user_without_clearance_sees_no_classified_document(
    digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _archive_with_user(digitised, tmp_path, capsys, monkeypatch)
    secret = next(d for d in digitised.report["documents"] if d["source"] == "bc_03.pdf")  # type: ignore[attr-defined]
    query = "quy hoach can bo nu"
    code, out = _run(capsys, "search", query, "--archive", str(archive), "--json", "--facets")
    assert code == 0 and secret["id"] in [h["id"] for h in json.loads(out)["hits"]]  # the operator sees it
    code, out = _run(capsys, "search", query, "--archive", str(archive), "--json", "--facets", "--as", "lan")
    seen = json.loads(out)
    assert code == 0 and seen["hits"] == [] and seen["total"] == 0
    assert all(f["value"] != "Mật" for f in seen["facets"].get("classification", []))
    code, _ = _run(capsys, "show", secret["id"], "--archive", str(archive), "--as", "lan")
    hidden = capsys.readouterr()
    code_missing, _ = _run(capsys, "show", "khong-co-van-ban-nay", "--archive", str(archive), "--as", "lan")
    assert code == code_missing == 6
    table = tmp_path / "bang.csv"
    assert _run(capsys, "export", "--out", str(table), "--archive", str(archive), "--as", "lan")[0] == 0
    assert "312" not in table.read_text(encoding="utf-8-sig") and len(hidden.out) == 0
    assert _run(capsys, "search", query, "--archive", str(archive), "--as", "ai-do")[0] == 4  # no such account


def test_key_file_is_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(archive=tmp_path / "a", audit_key_file=tmp_path / "keys" / "audit.key")
    first = open_audit(settings)
    first.append(actor="lan", action="login")
    first.close()
    assert (tmp_path / "keys" / "audit.key").stat().st_mode & 0o777 == 0o600
    again = open_audit(settings)
    assert again.verify().ok and again.verify().entries == 1
    again.close()
