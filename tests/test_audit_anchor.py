"""The audit trail cannot be erased quietly: ``sohoa audit verify`` exits 7 when the trail of an archive was wiped
(every row, head included), its tables dropped, its database or its key deleted, or the database replaced by an
older copy; verifying never creates a key, and appending does not mint a new key for a trail that exists.

The anchors: ``ARCHIVE/audit.anchor`` (a line per append) and ``audit/anchor.json`` in the object store (written
with every fixity run and backup, and every ``SOHOA_AUDIT_ANCHOR_EVERY`` appends or ``_EVERY_S`` seconds). A wiped
trail never starts a new chain by itself (``sohoa audit init --incident`` does, recorded); a trail younger than the
archive, and a deleted store anchor, are found."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from flows.audit import ANCHOR_FILE, AUDIT_FILE, KEY_FILE, STORE_ANCHOR
from interfaces.cli import main
from tests.conftest import DigitisedArchive

DB_FILES = (AUDIT_FILE, AUDIT_FILE + "-wal", AUDIT_FILE + "-shm")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _verify(capsys: pytest.CaptureFixture[str], archive: Path, *extra: str) -> tuple[int, dict[str, object], str]:
    code, out, err = _run(capsys, "audit", "verify", "--archive", str(archive), "--json", *extra)
    return code, json.loads(out), err


def _kinds(report: dict[str, object]) -> set[str]:
    problems = report["problems"]
    assert isinstance(problems, list)
    return {str(p["kind"]) for p in problems}


def _sql(db: Path, *statements: str) -> None:
    con = sqlite3.connect(db)
    with con:
        for statement in statements:
            con.execute(statement)
    con.close()


@pytest.fixture
def archive(digitised: DigitisedArchive, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A copy of the digitised sample archive with its trail (the digitisation, then a search and a view)."""
    root = tmp_path / "archive"
    shutil.copytree(digitised.archive, root, ignore=shutil.ignore_patterns("work"))
    assert (root / "objects" / STORE_ANCHOR).exists()  # the digitisation's first entry anchored it in the store
    assert _run(capsys, "search", "ke hoach", "--archive", str(root))[0] == 0
    assert _run(capsys, "search", "nghi quyet", "--archive", str(root))[0] == 0
    code, report, _ = _verify(capsys, root)
    assert code == 0 and report["ok"] and report["entries"] >= 3, report  # type: ignore[operator]
    return root


WIPES: dict[str, tuple[str, ...]] = {
    "delete every row and the head": ("DELETE FROM audit_entries", "DELETE FROM audit_head"),
    "drop the tables": ("DROP TABLE audit_entries", "DROP TABLE audit_head"),
    "drop the chain table": ("DROP TABLE audit_entries",),
}


@pytest.mark.parametrize("how", list(WIPES))
def test_a_wiped_trail_is_found(archive: Path, capsys: pytest.CaptureFixture[str], how: str) -> None:
    _sql(archive / AUDIT_FILE, *WIPES[how])
    code, report, err = _verify(capsys, archive)
    assert code == 7 and not report["ok"] and report["entries"] == 0, report
    assert "wiped" in _kinds(report)  # the catalog has documents: digitising them was recorded
    assert "truncated" in _kinds(report)  # and the anchor file remembers how long the chain was
    assert "BỊ CAN THIỆP" in err and "Cách xử lý" in err
    if how.startswith("drop"):
        assert "dropped" in _kinds(report)


def test_a_wiped_trail_is_found_by_its_anchor_without_documents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "archive"  # no documents: only the anchors know the trail had entries
    for name in ("lan", "minh"):
        monkeypatch.setattr("sys.stdin", io.StringIO("mat-khau-du-dai\n"))
        assert _run(capsys, "user", "add", name, "--password-stdin", "--archive", str(root))[0] == 0
    assert len((root / ANCHOR_FILE).read_text().splitlines()) == 2  # one anchor line per entry
    assert _verify(capsys, root)[0] == 0
    _sql(root / AUDIT_FILE, "DELETE FROM audit_entries", "DELETE FROM audit_head")
    code, report, _ = _verify(capsys, root)
    assert code == 7 and _kinds(report) == {"truncated"}, report


def test_a_deleted_database_is_found(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in DB_FILES:
        (archive / name).unlink(missing_ok=True)
    code, report, _ = _verify(capsys, archive)
    assert code == 7 and "missing" in _kinds(report) and report["entries"] == 0
    assert not (archive / AUDIT_FILE).exists()  # verifying created nothing


def test_a_deleted_key_is_found_and_never_replaced(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = archive / KEY_FILE
    key.unlink()
    code, report, err = _verify(capsys, archive)
    assert code == 7 and "key" in _kinds(report) and not key.exists()
    assert "audit.key" in err and "không tạo khóa mới" in err
    assert report["entries"] >= 3  # type: ignore[operator]  # the chain is still read (links, sequence, anchors)
    # normal operation does not mint a key for a trail that exists: the action is not carried out
    code, out, err = _run(capsys, "search", "ke hoach", "--archive", str(archive))
    assert code == 7 and out == "" and "Mất khóa nhật ký kiểm soát" in err and not key.exists()
    assert _verify(capsys, archive)[0] == 7 and not key.exists()


def test_a_damaged_key_is_found(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (archive / KEY_FILE).write_text("")  # emptied
    code, report, _ = _verify(capsys, archive)
    assert code == 7 and "key" in _kinds(report)


def test_a_brand_new_archive_verifies_clean_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "moi"
    root.mkdir()
    code, report, _ = _verify(capsys, root)
    assert code == 0 and report == {"ok": True, "entries": 0, "problems": []}
    assert list(root.iterdir()) == []


def _snapshot(archive: Path, dest: Path, *names: str) -> None:
    dest.mkdir()
    for name in names:
        if (archive / name).exists():
            shutil.copy2(archive / name, dest / name)


def _restore(snapshot: Path, archive: Path, *names: str) -> None:
    for name in (*DB_FILES, *names):
        (archive / name).unlink(missing_ok=True)
        if (snapshot / name).exists():
            shutil.copy2(snapshot / name, archive / name)


def test_an_older_copy_of_the_database_is_found(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old"
    _snapshot(archive, old, *DB_FILES)
    assert _run(capsys, "search", "bao cao", "--archive", str(archive))[0] == 0  # recorded after the copy
    _restore(old, archive)  # the copy is a genuine earlier state: its chain and head are consistent
    code, report, _ = _verify(capsys, archive)
    assert code == 7 and _kinds(report) == {"truncated"}, report
    (archive / ANCHOR_FILE).unlink()  # hiding the anchors too: the head says the log was anchored
    code, report, _ = _verify(capsys, archive)
    assert code == 7 and _kinds(report) == {"anchor"}, report


def test_fixity_runs_and_backups_anchor_the_trail_in_the_stores(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old"
    _snapshot(archive, old, *DB_FILES, ANCHOR_FILE)
    assert _run(capsys, "search", "bao cao", "--archive", str(archive))[0] == 0
    assert _run(capsys, "verify", "--archive", str(archive))[0] == 0  # a fixity run anchors the head
    stored = json.loads((archive / "objects" / STORE_ANCHOR).read_text())
    code, report, _ = _verify(capsys, archive)
    assert code == 0 and stored["seq"] == report["entries"], (stored, report)

    backup = tmp_path / "backup"
    assert _run(capsys, "search", "ke hoach", "--archive", str(archive))[0] == 0
    assert _run(capsys, "backup", "--archive", str(archive), "--to", str(backup))[0] == 0
    entries = _verify(capsys, archive)[1]["entries"]
    for store in (archive / "objects", backup / "objects"):  # the backup anchors both stores
        assert json.loads((store / STORE_ANCHOR).read_text())["seq"] == entries

    # the database and the anchor file put back together as they were: locally consistent, older than the anchors
    _restore(old, archive, ANCHOR_FILE)
    code, report, _ = _verify(capsys, archive)
    assert code == 7 and _kinds(report) == {"truncated"}, report
    # a fixity run now keeps the anchor the chain no longer reaches, and so does the backup
    assert _run(capsys, "verify", "--archive", str(archive))[0] == 0
    assert json.loads((archive / "objects" / STORE_ANCHOR).read_text())["seq"] == entries
    shutil.rmtree(archive / "objects" / "audit")  # the archive's own store anchor removed as well...
    code, report, _ = _verify(capsys, archive)  # ...the trail still says a backup anchored it
    assert code == 7 and _kinds(report) == {"anchor"}, report
    assert _run(capsys, "backup", "--archive", str(archive), "--to", str(backup))[0] == 0
    assert json.loads((backup / "objects" / STORE_ANCHOR).read_text())["seq"] == entries
    code, report, _ = _verify(capsys, archive, "--store", str(backup))  # the backup's anchor still tells
    assert code == 7 and _kinds(report) == {"truncated"}, report


def test_an_anchor_that_was_tampered_with_is_found(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    anchor = archive / ANCHOR_FILE
    lines = anchor.read_text().splitlines()
    forged = json.loads(lines[-1]) | {"seq": 10_000}
    anchor.write_text("\n".join([*lines, json.dumps(forged), "khong phai json"]) + "\n")
    code, report, _ = _verify(capsys, archive)
    assert code == 7 and _kinds(report) == {"anchor"} and len(report["problems"]) == 2, report  # type: ignore[arg-type]


# --- a wipe cannot start a new chain; a rollback is caught against the store (review findings 1 and 2) ---------

LOCAL_TRAIL = (*DB_FILES, ANCHOR_FILE)


def _wipe(archive: Path, *, key: bool = False) -> None:
    """What someone without the key can do: delete the trail, its anchor file and the store anchor."""
    for name in (*LOCAL_TRAIL, *((KEY_FILE,) if key else ())):
        (archive / name).unlink(missing_ok=True)
    (archive / "objects" / STORE_ANCHOR).unlink(missing_ok=True)


@pytest.mark.parametrize("how", ["files deleted", "rows deleted"])
def test_a_wiped_trail_never_starts_a_new_chain(archive: Path, capsys: pytest.CaptureFixture[str], how: str) -> None:
    if how == "files deleted":
        _wipe(archive)
    else:
        _sql(archive / AUDIT_FILE, *WIPES["delete every row and the head"])
        (archive / ANCHOR_FILE).unlink()
        (archive / "objects" / STORE_ANCHOR).unlink(missing_ok=True)
    code, out, err = _run(capsys, "search", "x", "--archive", str(archive))
    assert code == 7 and out == "", err  # the action is not carried out
    assert "Nhật ký kiểm soát" in err and "sohoa audit init --incident" in err and "bản sao lưu" in err
    assert _run(capsys, "verify", "--archive", str(archive))[0] == 7  # nor a fixity run, which would re-anchor it
    assert not (archive / "objects" / STORE_ANCHOR).exists()
    code, report, _ = _verify(capsys, archive)
    assert code == 7 and report["entries"] == 0, report


def test_audit_init_starts_a_new_chain_for_a_confirmed_incident(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backup = tmp_path / "backup"
    assert _run(capsys, "backup", "--archive", str(archive), "--to", str(backup))[0] == 0  # anchors both stores
    _wipe(archive)
    with pytest.raises(SystemExit) as usage:  # the incident must be named
        main(["audit", "init", "--archive", str(archive)])
    assert usage.value.code == 2
    code, _, err = _run(capsys, "audit", "init", "--incident", "Biên bản 12/BB: mất nhật ký", "--archive",
                        str(archive))
    assert code == 0, err
    code, out, _ = _run(capsys, "audit", "list", "--archive", str(archive), "--json")
    first = json.loads(out)["entries"][-1]
    assert (first["seq"], first["action"]) == (1, "audit.init")
    assert first["details"]["incident"] == "Biên bản 12/BB: mất nhật ký" and first["details"]["evidence"]
    assert _run(capsys, "search", "ke hoach", "--archive", str(archive))[0] == 0  # recorded again
    code, report, _ = _verify(capsys, archive, "--store", str(backup))  # the old chain's anchors were superseded
    assert code == 0, report
    assert _run(capsys, "backup", "--archive", str(archive), "--to", str(backup))[0] == 0
    seq = _verify(capsys, archive)[1]["entries"]
    assert json.loads((backup / "objects" / STORE_ANCHOR).read_text())["seq"] == seq  # the backup re-anchored
    code, _, err = _run(capsys, "audit", "init", "--incident", "lần nữa", "--archive", str(archive))
    assert code == 4 and "đang có" in err  # never over a trail that has entries


def test_a_trail_younger_than_the_archive_is_found(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "verify", "--archive", str(archive))[0] == 0  # a fixity report in the store
    _wipe(archive, key=True)  # the key deleted too: a copy of the data without its trail may start one...
    assert _run(capsys, "search", "ke hoach", "--archive", str(archive))[0] == 0
    code, report, _ = _verify(capsys, archive)  # ...but it says it began after the archive's documents
    assert code == 7 and "late_start" in _kinds(report), report


def test_a_deleted_store_anchor_is_found(archive: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "verify", "--archive", str(archive))[0] == 0
    assert _verify(capsys, archive)[0] == 0
    (archive / "objects" / STORE_ANCHOR).unlink()
    code, report, _ = _verify(capsys, archive)
    assert code == 7 and _kinds(report) == {"anchor"}, report


def test_a_rollback_of_the_local_files_is_found_against_the_store(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from schemas.settings import Settings

    defaults = Settings()
    assert defaults.audit_anchor_every == 50 and defaults.audit_anchor_every_s == 300.0
    monkeypatch.setenv("SOHOA_AUDIT_ANCHOR_EVERY", "3")
    old = tmp_path / "old"
    _snapshot(archive, old, *DB_FILES, ANCHOR_FILE)
    for _ in range(4):  # reads only: no fixity run, no backup
        assert _run(capsys, "search", "bao cao", "--archive", str(archive))[0] == 0
    assert json.loads((archive / "objects" / STORE_ANCHOR).read_text())["seq"] > _sqlite_count(old / AUDIT_FILE)
    _restore(old, archive, ANCHOR_FILE)  # the database and its anchor file copied back
    code, report, _ = _verify(capsys, archive)
    assert code == 7 and "truncated" in _kinds(report), report


def _sqlite_count(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT count(*) FROM audit_entries").fetchone()[0])
    finally:
        con.close()
