"""Issue 16, finding 10: four eyes for lowering secrecy, and clearance is a boundary for admins too.

A real archive (one open and one Mật copy of a page, digitised through the CLI), the real web app through FastAPI's
TestClient and the real accounts database. Lowering a classification from the review form becomes a pending
request that only a second admin cleared for the document applies; an admin can neither mint a credential for an
account cleared above them, nor grant a clearance above their own, nor raise their own alone; the admin audit page
shows an admin nothing about documents above their clearance, nor what users cleared above them searched for."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from flows import approvals
from flows.accounts import accounts_of
from flows.audit import WITHHELD
from interfaces.cli import main
from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from schemas.settings import Settings
from tests.fixtures import generate_sample as gen

pytestmark = pytest.mark.slow
PASSWORD = "mat-khau-bon-mat"
QUERY = "kinh te bien"
# name: (role, clearance)
USERS = {"staff0": ("staff", 0), "arch": ("archivist", 1), "admin0": ("admin", 0), "admin1": ("admin", 1),
         "admin1b": ("admin", 1), "admin3": ("admin", 3)}


@pytest.fixture(scope="module")
def base_archive(prefect_api: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("four-eyes")
    batch = root / "batch"
    for doc in (gen.classified_copy("mo.png", None, 21), gen.classified_copy("mat.png", "Mật", 22)):
        gen.save(doc, gen.degrade(doc, gen.render(doc)), batch)
    (batch / "batch.toml").write_text('approval_ref = "9-QĐ/VPTU"\napproved_by = "Trần Thị Hoa"\n', encoding="utf-8")
    report = root / "r.json"
    assert main(["digitise", str(batch), "--archive", str(root / "a"), "--report", str(report), "--quiet"]) == 0
    ids = {d["source"].split(".")[0]: d["id"] for d in json.loads(report.read_text(encoding="utf-8"))["documents"]}
    settings = Settings(archive=root / "a")
    for name, (role, clearance) in USERS.items():
        add_user(settings, name, PASSWORD, role, clearance=clearance)  # the local operator: the bootstrap
    return root / "a", ids


@pytest.fixture
def archive(base_archive: tuple[Path, dict[str, str]], tmp_path: Path) -> tuple[Settings, dict[str, str]]:
    """A fresh copy for each test (they change classifications and accounts)."""
    root, ids = base_archive
    shutil.copytree(root, tmp_path / "a")
    return Settings(archive=tmp_path / "a"), ids


def _login(app: object, name: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    response = client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token.group(1)},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def _csrf(client: TestClient, page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).text)
    assert match
    return match.group(1)


def _post(client: TestClient, path: str, page: str = "/admin", **data: str) -> int:
    return client.post(path, data={"csrf_token": _csrf(client, page), **data}, follow_redirects=False).status_code


def _lower(client: TestClient, doc_id: str, **fields: str) -> int:
    """Post the review form with the classification removed (giải mật) and any other fields."""
    page = f"/review/{doc_id}"
    data = {"md_classification": "", **{f"md_{k}": v for k, v in fields.items()}}
    return _post(client, page, page, **data)


def _hits(client: TestClient) -> set[str]:
    return {h["id"] for h in client.get("/api/search", params={"q": QUERY, "limit": 50}).json()["hits"]}


def _held(settings: Settings) -> list[approvals.ApprovalRequest]:
    return approvals.pending(accounts_of(settings).db)


def test_lowering_a_classification_waits_for_a_second_cleared_admin(archive: tuple[Settings, dict[str, str]]) -> None:
    settings, ids = archive
    app = create_app(settings, WebSettings())
    staff0, arch = _login(app, "staff0"), _login(app, "arch")
    mat, mo = ids["mat"], ids["mo"]
    assert staff0.get(f"/documents/{mat}").status_code == 404 and mat not in _hits(staff0)

    # an archivist's form post lowering Mật → open: the subject is corrected, the classification is held
    assert _lower(arch, mat, subject="trích yếu đã soát lại") == 303
    assert staff0.get(f"/documents/{mat}").status_code == 404 and mat not in _hits(staff0)
    assert arch.get(f"/api/documents/{mat}").json()["metadata"]["subject"] == "trích yếu đã soát lại"
    assert arch.get(f"/api/documents/{mat}").json()["metadata"]["classification"] == "Mật"
    [first] = _held(settings)
    assert (first.kind, first.target, first.requested_by) == ("declassify", mat, "arch")
    assert first.payload["before"] == "Mật" and first.payload["after"] is None
    assert "chờ một quản trị viên khác phê duyệt" in arch.get(f"/review/{mat}").text
    assert arch.post(f"/admin/approvals/{first.id}/approve", data={"csrf_token": "x"}).status_code == 403

    # an admin without clearance for the document neither sees the request nor can approve it
    admin0 = _login(app, "admin0")
    assert mat not in admin0.get("/admin").text
    assert _post(admin0, f"/admin/approvals/{first.id}/approve") == 400
    assert staff0.get(f"/documents/{mat}").status_code == 404
    assert _post(admin0, f"/admin/approvals/{first.id}/reject") == 400
    assert [r.id for r in _held(settings)] == [first.id]

    # CSRF-checked like every admin form
    admin1 = _login(app, "admin1")
    assert admin1.post(f"/admin/approvals/{first.id}/approve", data={"csrf_token": "sai"}).status_code == 403
    assert f'id="request-{first.id}"' in admin1.get("/admin").text
    assert _post(admin1, f"/admin/approvals/{first.id}/reject") == 303
    assert _held(settings) == [] and staff0.get(f"/documents/{mat}").status_code == 404

    # the requester cannot approve their own request, even as a cleared admin
    assert _lower(admin1, mat) == 303
    [second] = _held(settings)
    assert second.requested_by == "admin1"
    assert _post(admin1, f"/admin/approvals/{second.id}/approve") == 400
    assert staff0.get(f"/documents/{mat}").status_code == 404

    # a second cleared admin approves: only now is the correction applied (and findable)
    admin1b = _login(app, "admin1b")
    assert _post(admin1b, f"/admin/approvals/{second.id}/approve") == 303
    assert staff0.get(f"/documents/{mat}").status_code == 200 and mat in _hits(staff0)
    done = approvals.get(accounts_of(settings).db, second.id)
    assert done is not None and (done.state, done.decided_by) == ("approved", "admin1b")
    assert _post(admin1b, f"/admin/approvals/{second.id}/approve") == 400  # applied once

    # raising a classification is immediate (fail closed)
    page = f"/review/{mo}"
    assert _post(arch, page, page, md_classification="Mật") == 303
    assert staff0.get(f"/documents/{mo}").status_code == 404 and _held(settings) == []

    from flows.audit import open_audit

    log = open_audit(settings)
    try:
        steps = [(e.actor, e.action, e.target) for e in log.entries() if e.action.startswith("approval.")]
    finally:
        log.close()
    assert steps == [("arch", "approval.request", mat), ("admin1", "approval.reject", mat),
                     ("admin1", "approval.request", mat), ("admin1b", "approval.approve", mat)]


def test_an_admin_is_bounded_by_their_own_clearance(archive: tuple[Settings, dict[str, str]]) -> None:
    settings, _ = archive
    app = create_app(settings, WebSettings())
    accounts = accounts_of(settings)
    admin0 = _login(app, "admin0")

    def tokens() -> int:
        with sqlite3.connect(settings.archive_path() / "web.sqlite3") as conn:
            return int(conn.execute("SELECT count(*) FROM api_tokens").fetchone()[0])

    # no credential for an account cleared above oneself: refused outright, nothing pending
    before = tokens()
    minted = admin0.post("/admin/users/admin3/tokens", data={"csrf_token": _csrf(admin0, "/admin"), "label": "x"})
    assert minted.status_code == 400 and "sohoa_" not in minted.text
    assert tokens() == before and _held(settings) == []
    assert _post(admin0, "/admin/users/admin3/password", password="mat-khau-chiem-quyen") == 400
    assert _login(app, "admin3")  # the password did not change

    # no clearance above one's own, to others or to a new account
    assert _post(admin0, "/admin/users/staff0", role="staff", clearance="2", active="on") == 400
    assert _post(admin0, "/admin/users", username="moi", password="tai-khoan-moi-1", role="staff", clearance="1") == 400
    staff0 = accounts.find_user("staff0")
    assert staff0 is not None and staff0.clearance == 0 and accounts.find_user("moi") is None

    # raising one's own clearance waits for a second admin cleared for the level asked
    assert _post(admin0, "/admin/users/admin0", role="admin", clearance="3", active="on") == 303
    me = accounts.find_user("admin0")
    assert me is not None and me.clearance == 0
    [raise_own] = _held(settings)
    assert (raise_own.kind, raise_own.target, raise_own.level) == ("account", "admin0", 3)
    assert _post(admin0, f"/admin/approvals/{raise_own.id}/approve") == 400  # not one's own
    assert _post(_login(app, "admin1"), f"/admin/approvals/{raise_own.id}/approve") == 400  # not cleared for 3
    me = accounts.find_user("admin0")
    assert me is not None and me.clearance == 0
    assert _post(_login(app, "admin3"), f"/admin/approvals/{raise_own.id}/approve") == 303
    me = accounts.find_user("admin0")
    assert me is not None and me.clearance == 3

    # a token for another account (within one's clearance) works only once a second admin approves it
    admin1 = _login(app, "admin1")
    page = admin1.post("/admin/users/staff0/tokens", data={"csrf_token": _csrf(admin1, "/admin"), "label": "máy"})
    token = re.search(r'id="new-token">([^<]+)<', page.text)
    assert page.status_code == 200 and token
    bearer = {"Authorization": f"Bearer {token.group(1)}"}
    assert TestClient(app).get("/api/me", headers=bearer).status_code == 401
    [held_token] = _held(settings)
    assert held_token.kind == "token" and "token_hash" not in held_token.summary
    assert _post(_login(app, "admin1b"), f"/admin/approvals/{held_token.id}/approve") == 303
    assert TestClient(app).get("/api/me", headers=bearer).json()["username"] == "staff0"


def test_admin_audit_page_stays_within_the_admin_clearance(archive: tuple[Settings, dict[str, str]]) -> None:
    settings, ids = archive
    app = create_app(settings, WebSettings())
    mat, mo = ids["mat"], ids["mo"]
    arch = _login(app, "arch")
    staff0 = _login(app, "staff0")
    assert arch.get("/search", params={"q": "quy hoach can bo mat rieng"}).status_code == 200
    assert arch.get(f"/documents/{mat}").status_code == 200
    assert arch.get(f"/documents/{mat}/original/1").status_code == 200  # the file name goes into the trail
    assert staff0.get("/search", params={"q": "tra cuu cong khai"}).status_code == 200
    assert staff0.get(f"/documents/{mo}").status_code == 200
    assert staff0.get(f"/documents/{mat}").status_code == 404  # a probe of a hidden id

    cleared = _login(app, "admin3").get("/admin/audit").text
    assert mat in cleared and "mat.png" in cleared and "quy hoach can bo mat rieng" in cleared  # all there

    page = _login(app, "admin0").get("/admin/audit")
    assert page.status_code == 200
    assert mat not in page.text and "mat.png" not in page.text
    assert "quy hoach can bo mat rieng" not in page.text
    assert "tra cuu cong khai" in page.text and mo in page.text  # what the admin may see is still there
    assert json.dumps(WITHHELD)[1:-1] in page.text  # arch's query is withheld, the entry itself is not dropped


# --- review follow-up: an approver never controls the requester's credentials; clearance grants and demoting a
# higher-cleared admin wait for a second admin ----------------------------------------------------------------------

def _requests(settings: Settings, kind: str) -> list[approvals.ApprovalRequest]:
    return [r for r in _held(settings) if r.kind == kind]


def _hidden(app: object, doc_id: str) -> bool:
    return _login(app, "staff0").get(f"/documents/{doc_id}").status_code == 404


def test_an_admin_cannot_approve_through_an_account_they_created(archive: tuple[Settings, dict[str, str]]) -> None:
    """HIGH: admin3 creates an archivist cleared for 3 (they chose its password), lowers a classification as it,
    then approves the request as admin3. Now the clearance needs a second admin, and the creator of the
    requester's credentials cannot approve the requester's requests."""
    settings, ids = archive
    add_user(settings, "admin3b", PASSWORD, "admin", clearance=3)  # the local operator: a second admin cleared 3
    app = create_app(settings, WebSettings())
    accounts = accounts_of(settings)
    mat = ids["mat"]
    admin3 = _login(app, "admin3")

    assert _post(admin3, "/admin/users", username="puppet", password=PASSWORD, role="archivist", clearance="3") == 303
    assert accounts.find_user("puppet") is None  # a classified clearance: not alone
    [created] = _requests(settings, "create")
    assert (created.target, created.level, created.requested_by) == ("puppet", 3, "admin3")
    assert _post(admin3, f"/admin/approvals/{created.id}/approve") == 400  # not one's own
    assert _post(_login(app, "admin1"), f"/admin/approvals/{created.id}/approve") == 400  # not cleared for 3
    assert _post(_login(app, "admin3b"), f"/admin/approvals/{created.id}/approve") == 303
    puppet = accounts.find_user("puppet")
    assert puppet is not None and (puppet.role, puppet.clearance) == ("archivist", 3)

    assert _lower(_login(app, "puppet"), mat) == 303
    [held] = _requests(settings, "declassify")
    assert held.requested_by == "puppet"
    refused = admin3.post(f"/admin/approvals/{held.id}/approve", data={"csrf_token": _csrf(admin3, "/admin")})
    assert refused.status_code == 400 and "kiểm soát" in refused.text
    assert _hidden(app, mat) and [r.id for r in _held(settings)] == [held.id]
    assert _post(_login(app, "admin3b"), f"/admin/approvals/{held.id}/approve") == 303
    assert not _hidden(app, mat)
    assert accounts.credential_holders("puppet") == {"admin3"}


def test_an_admin_cannot_approve_for_an_account_whose_password_they_reset(
        archive: tuple[Settings, dict[str, str]]) -> None:
    """HIGH, second way: resetting a non-admin's password is immediate, so the admin knows it from then on."""
    settings, ids = archive
    app = create_app(settings, WebSettings())
    mat = ids["mat"]
    admin1 = _login(app, "admin1")
    assert _post(admin1, "/admin/users/arch/password", password="mat-khau-do-quan-tri-dat") == 303  # immediate
    arch = TestClient(app)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', arch.get("/login").text)
    assert csrf
    assert arch.post("/login", data={"username": "arch", "password": "mat-khau-do-quan-tri-dat",
                                     "csrf_token": csrf.group(1)}, follow_redirects=False).status_code == 303
    assert _lower(arch, mat) == 303
    [held] = _held(settings)
    assert _post(admin1, f"/admin/approvals/{held.id}/approve") == 400
    assert _hidden(app, mat)
    assert _post(_login(app, "admin1b"), f"/admin/approvals/{held.id}/approve") == 303
    assert not _hidden(app, mat)
    holders = accounts_of(settings).credential_holders("arch")
    assert "admin1" in holders and any(h.startswith("cli:") for h in holders)  # created by the local operator


def test_an_admin_cannot_approve_for_an_account_whose_token_they_minted(
        archive: tuple[Settings, dict[str, str]]) -> None:
    """The minting admin holds the token of the account (shown to them only): they control it, even after
    revoking the token once the request is made."""
    settings, ids = archive
    app = create_app(settings, WebSettings())
    mat = ids["mat"]
    admin1, admin1b = _login(app, "admin1"), _login(app, "admin1b")
    page = admin1.post("/admin/users/arch/tokens", data={"csrf_token": _csrf(admin1, "/admin"), "label": "máy"})
    assert page.status_code == 200
    [minted] = _held(settings)
    assert _post(admin1b, f"/admin/approvals/{minted.id}/approve") == 303
    assert _lower(_login(app, "arch"), mat) == 303
    [held] = _held(settings)
    assert _post(admin1, f"/admin/approvals/{held.id}/approve") == 400
    [token] = accounts_of(settings).tokens("arch")
    assert _post(admin1, f"/admin/users/arch/tokens/{token.key}/revoke") == 303
    assert _post(admin1, f"/admin/approvals/{held.id}/approve") == 400  # who held it when the request was made
    assert _hidden(app, mat)
    assert _post(admin1b, f"/admin/approvals/{held.id}/approve") == 303
    assert not _hidden(app, mat)


def test_an_admin_cannot_approve_their_own_request_through_an_admin_they_created(
        archive: tuple[Settings, dict[str, str]]) -> None:
    """The other way round: the creator of an approver's credentials may log in as the approver."""
    settings, ids = archive
    add_user(settings, "admin3b", PASSWORD, "admin", clearance=3)
    app = create_app(settings, WebSettings())
    mat = ids["mat"]
    admin3 = _login(app, "admin3")
    assert _post(admin3, "/admin/users", username="kiemsoat", password=PASSWORD, role="admin", clearance="1") == 303
    [created] = _held(settings)
    assert _post(_login(app, "admin3b"), f"/admin/approvals/{created.id}/approve") == 303
    assert _lower(admin3, mat) == 303
    [held] = _held(settings)
    assert _post(_login(app, "kiemsoat"), f"/admin/approvals/{held.id}/approve") == 400
    assert _hidden(app, mat)
    assert _post(_login(app, "admin1"), f"/admin/approvals/{held.id}/approve") == 303
    assert not _hidden(app, mat)


def test_granting_a_classified_clearance_waits_for_a_second_cleared_admin(
        archive: tuple[Settings, dict[str, str]]) -> None:
    settings, _ = archive
    app = create_app(settings, WebSettings())
    accounts = accounts_of(settings)
    admin1, admin1b = _login(app, "admin1"), _login(app, "admin1b")

    def clearance(name: str) -> int:
        user = accounts.find_user(name)
        assert user is not None
        return user.clearance

    # raising another account to a classified level
    assert _post(admin1, "/admin/users/staff0", role="staff", clearance="1", active="on") == 303
    assert clearance("staff0") == 0
    [raised] = _held(settings)
    assert (raised.kind, raised.target, raised.level) == ("account", "staff0", 1)
    assert _post(_login(app, "admin0"), f"/admin/approvals/{raised.id}/approve") == 400  # not cleared for 1
    assert _post(admin1b, f"/admin/approvals/{raised.id}/approve") == 303
    assert clearance("staff0") == 1

    # a new account with a classified clearance; an unclassified one is still immediate
    assert _post(admin1, "/admin/users", username="moi", password="tai-khoan-moi-1", role="staff", clearance="1") == 303
    assert accounts.find_user("moi") is None
    assert _post(admin1, "/admin/users", username="moi0", password="tai-khoan-moi-1", role="staff",
                 clearance="0") == 303
    assert accounts.find_user("moi0") is not None
    [created] = _held(settings)
    assert (created.kind, created.target, created.level) == ("create", "moi", 1)
    assert "Tạo tài khoản" in created.summary and "quản trị" not in created.summary
    assert _post(admin1b, f"/admin/approvals/{created.id}/approve") == 303
    assert clearance("moi") == 1
    assert accounts.credential_holders("moi") == {"admin1"}  # who chose the password, not who approved

    # locking a cleared non-admin is immediate; unlocking it grants the clearance again
    assert _post(admin1, "/admin/users/arch", role="archivist", clearance="1") == 303
    arch = accounts.find_user("arch")
    assert arch is not None and not arch.active and _held(settings) == []
    assert _post(admin1, "/admin/users/arch", role="archivist", clearance="1", active="on") == 303
    arch = accounts.find_user("arch")
    assert arch is not None and not arch.active
    [unlock] = _held(settings)
    assert _post(admin1b, f"/admin/approvals/{unlock.id}/approve") == 303
    arch = accounts.find_user("arch")
    assert arch is not None and arch.active

    # the local operator's bootstrap stays immediate (and is recorded as such)
    add_user(settings, "cli3", PASSWORD, "archivist", clearance=3)
    assert clearance("cli3") == 3
    [holder] = accounts.credential_holders("cli3")
    assert holder.startswith("cli:")


def test_demoting_an_admin_cleared_above_oneself_waits_for_a_second_admin(
        archive: tuple[Settings, dict[str, str]]) -> None:
    """LOW: a clearance-0 admin could remove every approver cleared above them alone."""
    settings, _ = archive
    app = create_app(settings, WebSettings())
    accounts = accounts_of(settings)
    admin0 = _login(app, "admin0")

    def state(name: str) -> tuple[str, int, bool]:
        user = accounts.find_user(name)
        assert user is not None
        return user.role, user.clearance, user.active

    assert _post(admin0, "/admin/users/admin3", role="staff", clearance="3", active="on") == 303  # demote
    assert _post(admin0, "/admin/users/admin1", role="admin", clearance="1") == 303  # deactivate
    assert _post(admin0, "/admin/users/admin1b", role="admin", clearance="0", active="on") == 303  # lower clearance
    assert state("admin3") == ("admin", 3, True)
    assert state("admin1") == ("admin", 1, True) and state("admin1b") == ("admin", 1, True)
    held = {r.target: r for r in _held(settings)}
    assert set(held) == {"admin3", "admin1", "admin1b"}
    assert (held["admin3"].kind, held["admin3"].level, held["admin1"].level) == ("account", 3, 1)
    assert _post(_login(app, "admin1b"), f"/admin/approvals/{held['admin3'].id}/approve") == 400  # not cleared for 3
    assert _post(_login(app, "admin1b"), f"/admin/approvals/{held['admin1'].id}/approve") == 303
    assert state("admin1") == ("admin", 1, False) and state("admin3") == ("admin", 3, True)

    # deactivating a non-admin (a compromised account) stays immediate, whatever its clearance
    assert _post(admin0, "/admin/users/arch", role="archivist", clearance="1") == 303
    assert state("arch") == ("archivist", 1, False)
    # an admin cleared at or below oneself: now also waits (a demoted admin's password could then be reset alone)
    assert _post(_login(app, "admin3"), "/admin/users/admin0", role="staff", clearance="0", active="on") == 303
    assert state("admin0") == ("admin", 0, True)
    [demote] = [r for r in _held(settings) if r.target == "admin0"]
    assert _post(_login(app, "admin1b"), f"/admin/approvals/{demote.id}/approve") == 303
    assert state("admin0") == ("staff", 0, True)


def test_an_existing_accounts_database_gains_the_credential_columns(tmp_path: Path) -> None:
    from flows.accounts import Accounts
    from storage.accounts_db import WebDb

    path = tmp_path / "web.sqlite3"
    with sqlite3.connect(path) as conn:  # the schema before the credential columns
        conn.executescript("""
            CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
                role TEXT NOT NULL, clearance INTEGER NOT NULL DEFAULT 0, active INTEGER NOT NULL DEFAULT 1,
                created_at TEXT NOT NULL);
            CREATE TABLE api_tokens (token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, label TEXT NOT NULL,
                created_at TEXT NOT NULL, last_used TEXT);
            INSERT INTO users(username, password_hash, role, clearance, active, created_at)
                VALUES ('cu', 'x', 'staff', 1, 1, '2024-01-01T00:00:00+00:00');
            INSERT INTO api_tokens VALUES ('abc', 1, 'cũ', '2024-01-01T00:00:00+00:00', NULL);
        """)
    conn.close()
    for _ in range(2):  # idempotent
        accounts = Accounts(WebDb(path))
    with sqlite3.connect(path) as conn:
        users = {r[1] for r in conn.execute("PRAGMA table_info(users)")}
        tokens = {r[1] for r in conn.execute("PRAGMA table_info(api_tokens)")}
    conn.close()
    assert {"created_by", "password_set_by"} <= users and "created_by" in tokens
    old = accounts.find_user("cu")
    assert old is not None and old.clearance == 1
    assert accounts.credential_holders("cu") == set()  # unknown for accounts made before
    accounts.create_token("cu", "mới")
    assert len(accounts.tokens("cu")) == 2


# --- review follow-up: credential holders are a history; no admin is demoted alone; a holder never widens the
# account it holds -------------------------------------------------------------------------------------------------

def _password_login(app: object, name: str, password: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert csrf
    response = client.post("/login", data={"username": name, "password": password, "csrf_token": csrf.group(1)},
                           follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def test_an_admin_cannot_take_over_another_admin_by_demoting_resetting_and_restoring_it(
        archive: tuple[Settings, dict[str, str]]) -> None:
    """HIGH (outside review): admin3 demoted admin3b alone, reset the (now archivist's) password alone, had it made
    admin again by admin3c, changed its password as admin3b (no longer recorded as a holder), then approved their
    own declassification as admin3b."""
    settings, ids = archive
    for name in ("admin3b", "admin3c", "admin3d"):
        add_user(settings, name, PASSWORD, "admin", clearance=3)
    app = create_app(settings, WebSettings())
    accounts = accounts_of(settings)
    mat = ids["mat"]
    admin3, admin3c = _login(app, "admin3"), _login(app, "admin3c")

    def role(name: str) -> str:
        user = accounts.find_user(name)
        assert user is not None
        return user.role

    # 1. demoting an equally cleared admin is no longer immediate
    assert _post(admin3, "/admin/users/admin3b", role="archivist", clearance="3", active="on") == 303
    assert role("admin3b") == "admin"
    [demote] = _requests(settings, "account")
    assert (demote.target, demote.requested_by, demote.level) == ("admin3b", "admin3", 3)
    assert _post(admin3c, f"/admin/approvals/{demote.id}/approve") == 303  # say a second admin agrees
    assert role("admin3b") == "archivist"

    # 2. resetting a non-admin's password is immediate: admin3 now holds admin3b's credentials
    new_password = "mat-khau-admin3-da-dat"
    assert _post(admin3, "/admin/users/admin3b/password", password=new_password) == 303
    assert "admin3" in accounts.credential_holders("admin3b")

    # 3. a holder may not ask to raise the account again; an approver holding it may not approve a raise
    refused = admin3.post("/admin/users/admin3b", data={"csrf_token": _csrf(admin3, "/admin"), "role": "admin",
                                                        "clearance": "3", "active": "on"})
    assert refused.status_code == 400 and "nắm thông tin đăng nhập của tài khoản này" in refused.text
    minted = admin3.post("/admin/users/admin3b/tokens", data={"csrf_token": _csrf(admin3, "/admin"), "label": "x"})
    assert minted.status_code == 400 and "sohoa_" not in minted.text
    assert _held(settings) == [] and role("admin3b") == "archivist"
    assert _post(admin3c, "/admin/users/admin3b", role="admin", clearance="3", active="on") == 303
    [restore] = _requests(settings, "account")
    assert _post(admin3, f"/admin/approvals/{restore.id}/approve") == 400  # holds the target's credentials
    assert role("admin3b") == "archivist"
    assert _post(_login(app, "admin3d"), f"/admin/approvals/{restore.id}/approve") == 303  # an unrelated admin
    assert role("admin3b") == "admin"

    # 4. admin3, logged in as admin3b, changes its password: admin3 stays a holder (history, not the last setter)
    puppet = _password_login(app, "admin3b", new_password)
    assert _post(puppet, "/admin/users/admin3b/password", password="mat-khau-tu-doi-lai") == 303
    holders = accounts.credential_holders("admin3b")
    assert {"admin3", "admin3b"} <= holders and any(h.startswith("cli:") for h in holders)

    # 5. so "admin3b" cannot approve admin3's declassification
    assert _lower(admin3, mat) == 303
    [held] = _requests(settings, "declassify")
    puppet = _password_login(app, "admin3b", "mat-khau-tu-doi-lai")
    refused = puppet.post(f"/admin/approvals/{held.id}/approve", data={"csrf_token": _csrf(puppet, "/admin")})
    assert refused.status_code == 400 and "kiểm soát" in refused.text
    assert _hidden(app, mat)
    assert _post(admin3c, f"/admin/approvals/{held.id}/approve") == 303
    assert not _hidden(app, mat)


def test_a_self_changed_password_does_not_end_the_control_of_who_reset_it(
        archive: tuple[Settings, dict[str, str]]) -> None:
    """The state of step 4, made directly: admin1 reset arch's and staff0's passwords, both then changed them."""
    settings, ids = archive
    app = create_app(settings, WebSettings())
    accounts = accounts_of(settings)
    mat = ids["mat"]
    admin1 = _login(app, "admin1")
    for name in ("arch", "staff0"):
        assert _post(admin1, f"/admin/users/{name}/password", password="mat-khau-admin1-da-dat") == 303
        user = accounts.find_user(name)
        assert user is not None
        accounts.set_password(name, "mat-khau-tu-doi-lai", by=user)  # the user's own change
        with sqlite3.connect(settings.archive_path() / "web.sqlite3") as conn:
            last = conn.execute("SELECT password_set_by FROM users WHERE username = ?", (name,)).fetchone()[0]
        conn.close()
        assert last == name and {"admin1", name} <= accounts.credential_holders(name)

    # arch, made an admin by the local operator, cannot approve admin1's request
    accounts.update_user("arch", role="admin", clearance=1, active=True)
    assert _lower(admin1, mat) == 303
    [held] = _requests(settings, "declassify")
    arch = _password_login(app, "arch", "mat-khau-tu-doi-lai")
    assert _post(arch, f"/admin/approvals/{held.id}/approve") == 400
    assert [r.id for r in _held(settings)] == [held.id]

    # admin1 cannot ask to raise staff0 (clearance, role) nor for a token of it
    for form in ({"role": "staff", "clearance": "1", "active": "on"}, {"role": "admin", "clearance": "0",
                                                                        "active": "on"}):
        refused = admin1.post("/admin/users/staff0", data={"csrf_token": _csrf(admin1, "/admin"), **form})
        assert refused.status_code == 400 and "nắm thông tin đăng nhập" in refused.text
    assert admin1.post("/admin/users/staff0/tokens", data={"csrf_token": _csrf(admin1, "/admin"),
                                                           "label": "x"}).status_code == 400
    assert _requests(settings, "account") == [] and _requests(settings, "token") == []
    # nor approve another admin's request raising it
    assert _post(_login(app, "admin1b"), "/admin/users/staff0", role="staff", clearance="1", active="on") == 303
    [raised] = _requests(settings, "account")
    assert _post(admin1, f"/admin/approvals/{raised.id}/approve") == 400
    staff0 = accounts.find_user("staff0")
    assert staff0 is not None and staff0.clearance == 0
    assert _post(_login(app, "admin3"), f"/admin/approvals/{raised.id}/approve") == 303
    staff0 = accounts.find_user("staff0")
    assert staff0 is not None and staff0.clearance == 1
    # narrowing stays open to a holder: locking a non-admin is immediate
    assert _post(admin1, "/admin/users/staff0", role="staff", clearance="1") == 303
    staff0 = accounts.find_user("staff0")
    assert staff0 is not None and not staff0.active


def test_a_request_made_before_the_requester_held_the_account_is_cancelled(
        archive: tuple[Settings, dict[str, str]]) -> None:
    settings, _ = archive
    app = create_app(settings, WebSettings())
    accounts = accounts_of(settings)
    admin1 = _login(app, "admin1")
    assert _post(admin1, "/admin/users/staff0", role="staff", clearance="1", active="on") == 303
    [raised] = _requests(settings, "account")
    assert _post(admin1, "/admin/users/staff0/password", password="mat-khau-admin1-da-dat") == 303  # immediate
    assert _post(_login(app, "admin1b"), f"/admin/approvals/{raised.id}/approve") == 400
    staff0 = accounts.find_user("staff0")
    assert staff0 is not None and staff0.clearance == 0
    done = approvals.get(accounts.db, raised.id)
    assert done is not None and done.state == "cancelled"


def test_the_credential_history_is_filled_from_the_recorded_columns(tmp_path: Path) -> None:
    from flows.accounts import Accounts
    from storage.accounts_db import WebDb

    path = tmp_path / "web.sqlite3"
    with sqlite3.connect(path) as conn:  # the schema with the credential columns, before the history
        conn.executescript("""
            CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
                role TEXT NOT NULL, clearance INTEGER NOT NULL DEFAULT 0, active INTEGER NOT NULL DEFAULT 1,
                created_at TEXT NOT NULL, created_by TEXT, password_set_by TEXT);
            CREATE TABLE api_tokens (token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, label TEXT NOT NULL,
                created_at TEXT NOT NULL, last_used TEXT, created_by TEXT);
            INSERT INTO users(username, password_hash, role, clearance, active, created_at, created_by,
                password_set_by) VALUES ('cu', 'x', 'admin', 1, 1, '2024-01-01T00:00:00+00:00', 'cli:root', 'ai');
            INSERT INTO api_tokens VALUES ('abc', 1, 'cũ', '2024-01-01T00:00:00+00:00', NULL, 'khac');
        """)
    conn.close()
    for _ in range(2):  # filled once
        accounts = Accounts(WebDb(path))
    assert accounts.credential_holders("cu") == {"cli:root", "ai", "khac"}
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM credential_holders").fetchone()[0] == 3
    conn.close()
    accounts.set_password_hash("cu", "y", set_by="cu")  # a self-change adds, removes no one
    accounts.revoke_token("cu", "abc".ljust(12, "0")[:12])
    assert accounts.credential_holders("cu") == {"cli:root", "ai", "khac", "cu"}
