"""The web database (storage/accounts_db.py: accounts, sessions, tokens, login failures, credential holders, the
legacy corrections table, approval and access requests) behaves the same on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from flows import access_requests
from flows.account_rules import AccountError
from flows.accounts import Accounts, LoginThrottled, hash_password
from flows.approval_requests import HOLDERS, close_request, insert_request, pending, request_by_id
from flows.wiring import open_accounts_db
from schemas.errors import ConfigError
from schemas.settings import Settings
from storage.accounts_db import WebDb
from storage.db import IntegrityError
from tests.tools.postgres import PostgresServer

PASSWORD = "Mật khẩu đủ dài 2024!"


def database_target(request: pytest.FixtureRequest, tmp_path: Path, prefix: str) -> Path | str:
    """A fresh web database: the SQLite file in ``tmp_path``, or a database of its own on the test cluster."""
    if request.param == "sqlite":
        return tmp_path / "web.sqlite3"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database(f"{prefix}_{tmp_path.name[-24:].lower()}")


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    return database_target(request, tmp_path, "web")


@pytest.fixture
def db(target: Path | str) -> Iterator[WebDb]:
    web = WebDb(target)
    try:
        yield web
    finally:
        web.close()


@pytest.fixture
def accounts(db: WebDb) -> Accounts:
    return Accounts(db, attempts=3, account_attempts=5, address_attempts=10)


def test_the_backend_is_the_one_configured(target: Path | str, db: WebDb) -> None:
    assert db.dialect == ("sqlite" if isinstance(target, Path) else "postgres")
    if isinstance(target, Path):
        assert target.is_file()  # the same file name as ever
    WebDb(target).close()  # opening it again (an existing database) changes nothing
    assert Accounts(db).count() == 0


def test_accounts_create_find_update_and_refuse_a_duplicate(accounts: Accounts) -> None:
    admin = accounts.create_user("quantri", PASSWORD, "admin", clearance=3, recorded_by="cli:root")
    staff = accounts.create_user("nhanvien", PASSWORD, "staff", clearance=1, recorded_by="cli:root")
    assert staff.id != admin.id and staff.role == "staff" and staff.clearance == 1 and staff.active
    assert [u.username for u in accounts.list_users()] == ["nhanvien", "quantri"]
    with pytest.raises(AccountError, match="đã tồn tại"):
        accounts.create_user("nhanvien", PASSWORD, "staff")
    with pytest.raises(AccountError, match="đã tồn tại"):  # the database's unique key, past the earlier check
        accounts.create_user_hashed("nhanvien", hash_password(PASSWORD), "staff", clearance=0)
    changed = accounts.update_user("nhanvien", role="archivist", clearance=2, active=True)
    assert (changed.role, changed.clearance) == ("archivist", 2)
    with pytest.raises(AccountError, match="cuối cùng"):
        accounts.update_user("quantri", role="staff", clearance=3, active=True)
    assert accounts.credential_holders("nhanvien") == {"cli:root"}
    assert accounts.count() == 2


def test_a_broken_constraint_is_one_error_on_both_backends(db: WebDb) -> None:
    with db.transaction() as conn:
        conn.execute("INSERT INTO users(username, password_hash, role, created_at) VALUES (?,?,?,?)",
                     ("a", "x", "staff", "2026-01-01"))
    with pytest.raises(IntegrityError), db.transaction() as conn:
        conn.execute("INSERT INTO users(username, password_hash, role, created_at) VALUES (?,?,?,?)",
                     ("b", "x", "nobody", "2026-01-01"))  # the role CHECK
    with db.connect() as conn:  # the failed transaction left nothing, and the connection still works
        assert [r[0] for r in conn.execute("SELECT username FROM users")] == ["a"]


def test_login_failures_lock_out_and_a_success_clears_them(accounts: Accounts) -> None:
    accounts.create_user("bientap", PASSWORD, "archivist")
    assert accounts.authenticate("bientap", "sai mật khẩu", "10.0.0.1") is None
    assert accounts.authenticate("bientap", PASSWORD, "10.0.0.1") is not None  # clears this address's failures
    for _ in range(3):
        assert accounts.authenticate("bientap", "sai mật khẩu", "10.0.0.2") is None
    with pytest.raises(LoginThrottled) as throttled:
        accounts.authenticate("bientap", PASSWORD, "10.0.0.2")  # refused before the password is even checked
    assert throttled.value.retry_after_s >= 1
    user = accounts.authenticate("bientap", PASSWORD, "10.0.0.3")  # another address is not locked out
    assert user is not None and user.username == "bientap"


def test_sessions_live_end_and_die_with_a_password_reset(accounts: Accounts) -> None:
    user = accounts.create_user("docgia", PASSWORD, "staff")
    token, csrf = accounts.create_session(user)
    found = accounts.session_user(token)
    assert found is not None and found[0].username == "docgia" and found[1] == csrf
    other, _ = accounts.create_session(user)
    accounts.end_session(token)
    assert accounts.session_user(token) is None and accounts.session_user(other) is not None
    accounts.set_password("docgia", PASSWORD + "x", recorded_by="cli:root")
    assert accounts.session_user(other) is None
    assert accounts.session_user("không có") is None


def test_api_tokens_work_until_revoked(accounts: Accounts) -> None:
    accounts.create_user("maykhach", PASSWORD, "staff", clearance=2)
    token = accounts.create_token("maykhach", "máy quét", recorded_by="cli:root")
    user = accounts.token_user(token)
    assert user is not None and user.username == "maykhach" and user.clearance == 2
    [info] = accounts.tokens("maykhach")
    assert info.label == "máy quét" and info.last_used is not None
    accounts.revoke_token("maykhach", info.key)
    assert accounts.token_user(token) is None and accounts.tokens("maykhach") == []
    assert accounts.credential_holders("maykhach") == {"cli:root"}  # a revoked token's holder stays recorded


def test_a_lowered_clearance_is_what_the_next_request_sees(accounts: Accounts) -> None:
    user = accounts.create_user("canbo", PASSWORD, "archivist", clearance=3)
    token, _ = accounts.create_session(user)
    accounts.update_user("canbo", role="archivist", clearance=0, active=True)
    found = accounts.session_user(token)
    assert found is not None and found[0].clearance == 0
    accounts.update_user("canbo", role="archivist", clearance=0, active=False)
    assert accounts.session_user(token) is None  # a locked account's sessions end


def test_legacy_corrections_are_versions_in_order(db: WebDb) -> None:
    with db.transaction() as conn:
        for n, after in enumerate(("Nghị quyết", "Nghị quyết số 15", "Nghị quyết số 15-NQ/TU")):
            conn.execute("INSERT INTO edits(doc_id, field, before, after, username, at) VALUES (?,?,?,?,?,?)",
                         ("d1", "subject", "" if n == 0 else "x", after, "bientap", f"2026-01-0{n + 1}"))
        edit_id = conn.execute("INSERT INTO edits(doc_id, field, before, after, username, at) VALUES (?,?,?,?,?,?)",
                               ("d2", "subject", "", "khác", "bientap", "2026-01-04")).lastrowid
    with db.connect() as conn:
        history = conn.execute("SELECT id, after FROM edits WHERE doc_id = ? ORDER BY id", ("d1",)).fetchall()
    assert [after for _, after in history] == ["Nghị quyết", "Nghị quyết số 15", "Nghị quyết số 15-NQ/TU"]
    assert edit_id is not None and edit_id > max(i for i, _ in history)


def test_approval_requests_open_and_close_once(accounts: Accounts) -> None:
    accounts.create_user("qt1", PASSWORD, "admin", clearance=3, recorded_by="cli:root")
    with accounts.db.transaction() as conn:
        first = insert_request(conn, "declassify", "d1", {"before": "Mật", "after": "Thường"}, 1, "qt1")
        second = insert_request(conn, "password", "qt1", {"password_hash": "h"}, 3, "qt1")
    assert second > first
    assert [r.id for r in pending(accounts.db)] == [first, second]
    with accounts.db.connect() as conn:
        request = request_by_id(conn, first)
        assert request is not None and request.payload[HOLDERS] == ["cli:root"]
        assert close_request(conn, request, "approved", "qt2")
        assert not close_request(conn, request, "rejected", "qt3")  # decided once: the second decision is refused
        decided = request_by_id(conn, first)
    assert decided is not None and (decided.state, decided.decided_by) == ("approved", "qt2")
    assert [r.id for r in pending(accounts.db)] == [second]


def test_access_requests_submit_refuse_and_grants(accounts: Accounts) -> None:
    asker = accounts.create_user("hoi", PASSWORD, "staff", clearance=0)
    approver = accounts.create_user("duyet", PASSWORD, "archivist", clearance=2)
    now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    first = access_requests.submit(accounts.db, asker, "15-NQ/TU", "", "Nghiên cứu lịch sử", now)
    second = access_requests.submit(accounts.db, asker, "16-NQ/TU", "", "Viết sách", now)
    assert [r.id for r in access_requests.own_requests(accounts.db, "hoi")] == [second, first]
    assert [r.id for r in access_requests.pending_for(accounts.db, approver)] == [first, second]
    refused = access_requests.refuse(accounts.db, approver, first, "Không đủ căn cứ", now)
    assert (refused.state, refused.note, refused.decided_by) == ("refused", "Không đủ căn cứ", "duyet")
    with pytest.raises(access_requests.AccessRequestError):
        access_requests.refuse(accounts.db, approver, first, "lần hai", now)
    with accounts.db.connect() as conn:  # what ``grant`` writes once the document is resolved in the catalog
        conn.execute("UPDATE access_requests SET state = 'granted', decided_by = ?, doc_id = ?, expires_at = ? "
                     "WHERE id = ?", ("duyet", "doc-1", (now + timedelta(days=3)).isoformat(timespec="seconds"),
                                      second))
    levels = {"doc-1": 2}.get
    assert access_requests.active_grants(accounts.db, "hoi", now, levels) == {"doc-1"}
    assert access_requests.active_grants(accounts.db, "hoi", now + timedelta(days=4), levels) == frozenset()
    assert access_requests.active_grants(accounts.db, "hoi", now, {"doc-1": 3}.get) == frozenset()


def _submit_many(target: str, count: int, results: multiprocessing.Queue[str]) -> None:  # type: ignore[type-arg]
    db = WebDb(target)
    asker = Accounts(db).find_user("hoi")
    assert asker is not None
    now = datetime(2026, 12, 7, tzinfo=UTC)
    for n in range(count):
        try:
            access_requests.submit(db, asker, f"{n}-NQ/TU", "", "Nghiên cứu", now)
            results.put("ok")
        except access_requests.AccessRequestError:
            results.put("refused")
    db.close()


def test_the_cap_on_pending_requests_holds_for_writers_on_several_hosts(target: Path | str, db: WebDb) -> None:
    """Four processes (as four hosts would) submit at once: the count-then-insert runs under the one write lock,
    so exactly ``MAX_PENDING`` are accepted."""
    Accounts(db).create_user("hoi", PASSWORD, "staff")
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[str] = context.Queue()  # type: ignore[assignment]
    workers = [context.Process(target=_submit_many, args=(str(target), 10, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in range(40)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert outcomes.count("ok") == access_requests.MAX_PENDING
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM access_requests WHERE state = 'pending'").fetchone()[0] == 20


def test_one_setting_switches_where_the_accounts_live(tmp_path: Path, postgres: PostgresServer) -> None:
    url = SecretStr(postgres.create_database(f"switch_{tmp_path.name[-24:].lower()}"))
    host_a = open_accounts_db(Settings(archive=tmp_path / "may-a", database_url=url))
    host_b = open_accounts_db(Settings(archive=tmp_path / "may-b", database_url=url))
    embedded = open_accounts_db(Settings(archive=tmp_path / "may-c"))
    try:
        assert (host_a.dialect, embedded.dialect) == ("postgres", "sqlite")
        Accounts(host_a).create_user("chung", PASSWORD, "staff")
        found = Accounts(host_b).find_user("chung")  # another host sees the same accounts
        assert found is not None and found.username == "chung"
        assert Accounts(embedded).find_user("chung") is None
        assert not (tmp_path / "may-a" / "web.sqlite3").exists() and (tmp_path / "may-c" / "web.sqlite3").is_file()
    finally:
        for db in (host_a, host_b, embedded):
            db.close()


def test_an_unreachable_database_is_a_config_error_without_the_password(tmp_path: Path) -> None:
    settings = Settings(archive=tmp_path / "kho", database_url=SecretStr("postgresql://sohoa:bi-mat@127.0.0.1:1/x"))
    with pytest.raises(ConfigError) as error:
        open_accounts_db(settings)
    assert "bi-mat" not in str(error.value) and "SOHOA_DATABASE_URL" in str(error.value.fix)
