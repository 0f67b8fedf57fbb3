"""The audit trail: CLI actions are recorded, and every kind of tampering is found by ``sohoa audit verify``."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from flows.audit import ANCHOR_FILE, AUDIT_FILE, KEY_FILE, STORE_ANCHOR, cli_actor, open_audit
from flows.cells import neutralise_formula
from interfaces.cli import main
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
    "non-ascii head mac": ("UPDATE audit_head SET mac = 'đ'",),  # reported, not a crash of the comparison
    "non-text hash": ("UPDATE audit_entries SET hash = 5 WHERE seq = 2",),
    "delete every row and the head": ("DELETE FROM audit_entries", "DELETE FROM audit_head"),  # the anchor file
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
    """A copy of the digitised sample archive with a new trail (its first entry, ``audit.init``, records why) and
    one web account created by the CLI."""
    archive = tmp_path / "archive"
    shutil.copytree(digitised.archive, archive)
    for leftover in (AUDIT_FILE, AUDIT_FILE + "-wal", AUDIT_FILE + "-shm", ANCHOR_FILE, "web.sqlite3",
                     "objects/" + STORE_ANCHOR):  # the whole trail of the digitisation, anchors included
        (archive / leftover).unlink(missing_ok=True)
    # a wiped trail never starts a new chain by itself (tests/test_audit_anchor.py): only a recorded re-initialisation
    assert _run(capsys, "audit", "init", "--incident", "bản sao kiểm thử", "--archive", str(archive))[0] == 0
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
    assert [e["action"] for e in entries] == ["audit.view", "export.table", "document.view", "search", "user.create",
                                              "audit.init"]  # reading the trail is recorded too
    by_action = {e["action"]: e for e in entries}
    assert by_action["user.create"]["target"] == "lan" and by_action["user.create"]["details"]["clearance"] == 0
    assert by_action["search"]["actor"] == "lan"
    assert by_action["search"]["details"]["query"] == "ke hoach"
    assert by_action["search"]["details"]["filters"] == {"year_from": 2020}
    assert by_action["search"]["source"].startswith("cli@")
    assert by_action["document.view"]["target"] == doc_id
    assert by_action["export.table"]["target"] == str(out_csv)
    assert [e["seq"] for e in entries] == [6, 5, 4, 3, 2, 1]

    code, out = _run(capsys, "audit", "verify", "--archive", str(archive), "--json")
    assert code == 0 and json.loads(out) == {"ok": True, "entries": 6, "problems": []}

    exported = tmp_path / "nhat-ky.csv"
    assert _run(capsys, "audit", "export", "--archive", str(archive), "--out", str(exported),
                "--action", "search")[0] == 0
    rows = list(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8-sig"))))
    assert [r["action"] for r in rows] == ["search"] and json.loads(rows[0]["details"])["query"] == "ke hoach"

    _tamper(archive / AUDIT_FILE, "UPDATE audit_entries SET actor = 'minh' WHERE action = 'document.view'")
    code, out = _run(capsys, "audit", "verify", "--archive", str(archive), "--json")
    report = json.loads(out)
    assert code == 7 and not report["ok"] and report["problems"][0]["seq"] == 4


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


# --- what the trail shows cannot be turned against its readers ------------------------------------------------

# A failed-login name that, printed raw, ends its line and forges an innocent-looking entry, clears the terminal
# line (ESC [2K) and returns the cursor (CR) to overwrite what came before.
FORGED = "lan\n     99  2020-01-01 00:00:00  admin        cli@may-chu          logout           \x1b[2K\rok\u2028x"
FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
            " =1+1", "\uff1d1+1"]


def _failed_web_logins(archive: Path, *names: str) -> None:
    """Failed logins through the real web app: the login form records ``actor=username[:100]``."""
    import re
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from interfaces.web import create_app
    from interfaces.web.config import WebSettings

    with TestClient(create_app(Settings(archive=archive), WebSettings())) as client:
        for name in names:
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
            assert token
            response = client.post("/login", data={"username": name, "password": "khong-dung", "next": "/search",
                                                   "csrf_token": token.group(1)}, follow_redirects=False)
            assert response.status_code in (401, 429), response.text


def test_control_characters_in_a_login_name_cannot_forge_lines_in_audit_list(
    digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _archive_with_user(digitised, tmp_path, capsys, monkeypatch)
    _failed_web_logins(archive, FORGED)
    assert _run(capsys, "audit", "verify", "--archive", str(archive))[0] == 0  # escaped values are what is hashed
    # an entry written raw (by a version that did not escape on the way in) is shown escaped as well
    raw = sqlite3.connect(archive / AUDIT_FILE)
    with raw:
        raw.execute("INSERT INTO audit_entries VALUES (99, '2030-01-01T00:00:00+00:00', ?, 'web:1.2.3.4', "
                    "'login.failed', ?, '{\"q\": \"a\\nb\"}', '', '')", (FORGED, "\x1b]0;title\x07"))
    raw.close()

    code, out = _run(capsys, "audit", "list", "--archive", str(archive))
    lines = [line for line in out.splitlines() if " audit.view " not in line]  # the reading itself is recorded
    assert code == 0 and len(lines) == 4, out  # audit.init, user.create, login.failed, the raw entry: a line each
    assert not any(ch in out for ch in "\x1b\r\x07\u2028"), out
    assert sum("logout" in line for line in lines) == 2  # the would-be forged entry stays inside both lines
    assert all(line.lstrip().split()[0] in {"1", "2", "3", "99"} for line in lines)
    assert "lan\\x0a" in lines[1] and "\\x1b[2K\\x0dok\\u2028x" in lines[1]

    code, out = _run(capsys, "audit", "list", "--archive", str(archive), "--json", "--action", "login.failed")
    stored = [e["actor"] for e in json.loads(out)["entries"] if e["seq"] != 99]
    assert stored == [FORGED.replace("\n", "\\x0a").replace("\x1b", "\\x1b").replace("\r", "\\x0d")
                      .replace("\u2028", "\\u2028")]  # stored escaped: no reader of the trail gets the raw bytes


def test_formulas_in_a_login_name_are_neutralised_in_the_csv_export(
    digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _archive_with_user(digitised, tmp_path, capsys, monkeypatch)
    _failed_web_logins(archive, *FORMULAS)
    out = tmp_path / "nhat-ky.txt"  # not .csv: the format comes from --format
    assert _run(capsys, "audit", "export", "--archive", str(archive), "--out", str(out), "--format", "csv")[0] == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    failed = [r for r in rows if r["action"].startswith("login.")]
    stored = [r["actor"] for r in failed]
    assert len(failed) == len(FORMULAS)
    assert all(actor.startswith("'") for actor in stored), stored  # text in Excel and LibreOffice, never a formula
    assert stored[0] == "'" + FORMULAS[0]
    ordinary = next(r for r in rows if r["action"] == "user.create")
    assert (ordinary["actor"], ordinary["target"]) == (cli_actor(), "lan")  # ordinary cells are left as they are
    assert json.loads(ordinary["details"]) == {"role": "staff", "clearance": 0}
    assert all(not cell.startswith(tuple("=+-@\t\r")) for r in rows for cell in r.values()), rows

    jsonl = tmp_path / "nhat-ky.jsonl"  # JSON lines keep the exact value (no spreadsheet reads them)
    assert _run(capsys, "audit", "export", "--archive", str(archive), "--out", str(jsonl))[0] == 0
    actors = [json.loads(line)["actor"] for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert FORMULAS[0] in actors


@pytest.mark.parametrize(("value", "expected"), [
    ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("  =1", "'  =1"), ("\uff1d1", "'\uff1d1"), ("lan", "lan"),
    ("Nghị quyết 15-NQ/TU", "Nghị quyết 15-NQ/TU"), ("", ""), ("2025-01-01T00:00:00", "2025-01-01T00:00:00"),
    ('{"query": "=1"}', '{"query": "=1"}'),
])
def test_neutralise_formula(value: str, expected: str) -> None:
    assert neutralise_formula(value) == expected
