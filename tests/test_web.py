"""The web app (``interfaces.web``) through FastAPI's TestClient on a copy of the digitised sample archive: login,
CSRF, throttling, clearance (a classified document is "not found"), accent-insensitive search, versioned
corrections that reach the search index at once, API tokens, admin pages, offline API docs."""

from __future__ import annotations

import hashlib
import re
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette's note about httpx2, printed at import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from flows.corrections import edits_of
from flows.wiring import build_object_store
from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from schemas.settings import Settings
from tests.conftest import DigitisedArchive

PASSWORDS = {"staff": "mat-khau-can-bo", "arch": "kho-luu-tru-tang-ba", "admin": "quan-tri-he-thong-so"}


@dataclass
class WebArchive:
    settings: Settings
    root: Path
    ids: dict[str, str]  # source -> document id
    staff_token: str


@pytest.fixture(scope="module")
def web_archive(digitised: DigitisedArchive, tmp_path_factory: pytest.TempPathFactory) -> WebArchive:
    root = tmp_path_factory.mktemp("web") / "archive"
    shutil.copytree(digitised.archive, root)
    settings = Settings(archive=root)
    staff = add_user(settings, "staff", PASSWORDS["staff"], "staff", api_token=True)
    add_user(settings, "arch", PASSWORDS["arch"], "archivist", clearance=1)
    add_user(settings, "admin", PASSWORDS["admin"], "admin", clearance=3)  # an admin grants up to their own level
    report = digitised.report["documents"]
    assert isinstance(report, list)
    ids = {str(d["source"]): str(d["id"]) for d in report if d["id"]}
    assert staff.token
    return WebArchive(settings=settings, root=root, ids=ids, staff_token=staff.token)


@pytest.fixture(scope="module")
def app_client(web_archive: WebArchive) -> Iterator[TestClient]:
    with TestClient(create_app(web_archive.settings, WebSettings())) as client:
        yield client


def _client(app_client: TestClient) -> TestClient:
    """A client of the same app with its own cookie jar (another browser)."""
    return TestClient(app_client.app)


def _login_token(client: TestClient) -> str:
    page = client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def login(client: TestClient, username: str, password: str | None = None) -> TestClient:
    token = _login_token(client)
    response = client.post("/login", data={"username": username, "password": password or PASSWORDS[username],
                                           "csrf_token": token, "next": "/search"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def csrf_of(client: TestClient, page: str = "/search") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).text)
    assert match
    return match.group(1)


def hit_ids(html: str) -> list[str]:
    return re.findall(r'href="/documents/([A-Za-z0-9_-]+)[?"]', html)


def test_pages_need_login(app_client: TestClient) -> None:
    client = _client(app_client)
    response = client.get("/search?q=ke+hoach", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fsearch%3Fq%3Dke%2Bhoach"
    assert client.get("/api/search", params={"q": "ke hoach"}).status_code == 401


def test_login_sets_safe_cookie_and_wrong_password_fails(app_client: TestClient) -> None:
    client = _client(app_client)
    token = _login_token(client)
    wrong = client.post("/login", data={"username": "staff", "password": "sai-mat-khau", "csrf_token": token})
    assert wrong.status_code == 401
    assert "Tên đăng nhập hoặc mật khẩu không đúng" in wrong.text
    token = _login_token(client)
    ok = client.post("/login", data={"username": "STAFF ", "password": PASSWORDS["staff"], "csrf_token": token,
                                     "next": "//evil.example/x"}, follow_redirects=False)
    assert ok.status_code == 303
    assert ok.headers["location"] == "/search"  # never an off-site redirect
    cookie = ok.headers["set-cookie"].lower()
    assert "sohoa_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def test_login_rate_limited_per_address_and_account(web_archive: WebArchive, app_client: TestClient) -> None:
    add_user(web_archive.settings, "bi-khoa", "mat-khau-dung-1", "staff")
    client = _client(app_client)
    for _ in range(5):
        token = _login_token(client)
        response = client.post("/login", data={"username": "bi-khoa", "password": "doan-mo", "csrf_token": token})
        assert response.status_code == 401
    token = _login_token(client)
    blocked = client.post("/login", data={"username": "bi-khoa", "password": "mat-khau-dung-1", "csrf_token": token})
    assert blocked.status_code == 429  # even the right password: the account is locked for this address
    assert "quá nhiều lần" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0
    login(_client(app_client), "staff")  # other accounts are not affected


def test_csrf_rejected(web_archive: WebArchive, app_client: TestClient) -> None:
    client = _client(app_client)
    client.get("/login")
    no_token = client.post("/login", data={"username": "staff", "password": PASSWORDS["staff"]})
    assert no_token.status_code == 403
    forged = client.post("/login", data={"username": "staff", "password": PASSWORDS["staff"], "csrf_token": "x"})
    assert forged.status_code == 403

    login(client, "arch")
    doc_id = web_archive.ids["nq_01.png"]
    response = client.post(f"/review/{doc_id}", data={"md_subject": "giả mạo", "csrf_token": "sai"})
    assert response.status_code == 403
    assert client.post("/logout", data={}).status_code == 403
    assert edits_of(build_object_store(web_archive.settings), doc_id) == []  # nothing corrected
    assert client.get("/search").status_code == 200  # still logged in
    logout = client.post("/logout", data={"csrf_token": csrf_of(client)}, follow_redirects=False)
    assert logout.status_code == 303
    assert client.get("/search", follow_redirects=False).status_code == 303


def test_search_without_diacritics(web_archive: WebArchive, app_client: TestClient) -> None:
    client = login(_client(app_client), "staff")
    page = client.get("/search", params={"q": "ke hoach chuyen doi so"})
    assert page.status_code == 200
    ids = hit_ids(page.text)
    assert ids[0] == web_archive.ids["kh_02.tif"]
    assert "<mark>" in page.text and "Kế hoạch" in page.text
    number = client.get("/search", params={"q": "84-KH/TU"})
    assert hit_ids(number.text)[0] == web_archive.ids["kh_02.tif"]
    facet = client.get("/search", params={"q": "", "type": "Kế hoạch"})
    assert hit_ids(facet.text) == [web_archive.ids["kh_02.tif"]]
    doc = client.get(f"/documents/{web_archive.ids['kh_02.tif']}", params={"q": "chuyen doi so"})
    assert doc.status_code == 200
    assert "<mark>chuyển</mark>" in doc.text  # the page text keeps its diacritics, the folded query marks it


def test_classified_document_is_not_found_below_clearance(web_archive: WebArchive, app_client: TestClient) -> None:
    secret = web_archive.ids["bc_03.pdf"]  # "Mật": level 1
    staff = login(_client(app_client), "staff")
    assert secret not in hit_ids(staff.get("/search", params={"q": "quy hoach can bo nu"}).text)
    assert "Mật" not in staff.get("/search", params={"q": ""}).text.split('class="facets"')[1].split("</aside>")[0]
    missing = staff.get("/documents/0000000000000000dead")
    forbidden = staff.get(f"/documents/{secret}")
    assert missing.status_code == forbidden.status_code == 404
    assert missing.text == forbidden.text  # indistinguishable
    for path in (f"/documents/{secret}/pdf", f"/documents/{secret}/pages/1/image", f"/documents/{secret}/original/1",
                 f"/api/documents/{secret}"):
        assert staff.get(path).status_code == 404, path
    api = staff.get("/api/search", params={"q": "quy hoach can bo nu"}).json()
    assert secret not in [h["id"] for h in api["hits"]]

    archivist = login(_client(app_client), "arch")  # clearance 1
    assert secret in hit_ids(archivist.get("/search", params={"q": "quy hoach can bo nu"}).text)
    assert archivist.get(f"/documents/{secret}").status_code == 200


def test_files_by_number_only(web_archive: WebArchive, app_client: TestClient) -> None:
    doc_id = web_archive.ids["kh_02.tif"]
    staff = login(_client(app_client), "staff")
    pdf = staff.get(f"/documents/{doc_id}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    image = staff.get(f"/documents/{doc_id}/pages/2/image")
    assert image.status_code == 200 and image.content[:3] == b"\xff\xd8\xff"
    for bad in (f"/documents/{doc_id}/pages/0/image", f"/documents/{doc_id}/pages/3/image",
                "/documents/..%2F..%2Fcatalog.sqlite/pdf", "/documents/%2e%2e/pdf", f"/documents/{doc_id}/original/9"):
        assert staff.get(bad).status_code in (403, 404, 422), bad
    assert staff.get(f"/documents/{doc_id}/original/1").status_code == 403  # originals: archivists only
    archivist = login(_client(app_client), "arch")
    original = archivist.get(f"/documents/{doc_id}/original/1")
    assert original.status_code == 200
    assert hashlib.sha256(original.content).hexdigest().startswith(doc_id[:16])


def test_review_edit_is_versioned_and_reindexed(web_archive: WebArchive, app_client: TestClient) -> None:
    doc_id = web_archive.ids["bc_03.pdf"]  # needs review (a doubtful page), classified "Mật"
    manifest = web_archive.root / "objects" / "documents" / doc_id / "document.json"
    stored = manifest.read_bytes()
    client = login(_client(app_client), "arch")
    queue = client.get("/review")
    assert f"/review/{doc_id}" in queue.text and "cần soát lại" in queue.text
    assert login(_client(app_client), "staff").get("/review").status_code == 403

    form = client.get(f"/review/{doc_id}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert csrf
    new_subject = "kết quả rà soát quy hoạch cán bộ nữ tại Hòa Vang nhiệm kỳ 2025 - 2030"
    bad = client.post(f"/review/{doc_id}", data={"csrf_token": csrf.group(1), "md_issued_date": "18/11/2022"})
    assert bad.status_code == 400 and "NNNN-TT-NN" in bad.text
    saved = client.post(f"/review/{doc_id}", data={"csrf_token": csrf.group(1), "md_subject": new_subject,
                                                   "md_signer": "Phan Thị Mỹ Hạnh", "reviewed": "on"},
                        follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/review/{doc_id}?saved=2"  # subject and status; the signer is unchanged

    rows = edits_of(build_object_store(web_archive.settings), doc_id)  # versioned records in the object store
    assert [r.field for r in rows] == ["metadata.subject", "status"]
    assert str(rows[0].before).startswith("kết quả rà soát, bổ sung quy hoạch") and "Hòa Vang" in str(rows[0].after)
    assert (rows[1].before, rows[1].after, rows[1].username, rows[1].id) == ("needs_review", "done", "arch", 1)
    assert manifest.read_bytes() == stored  # the machine extraction is never overwritten

    found = client.get("/search", params={"q": "hoa vang"})
    assert hit_ids(found.text) == [doc_id]  # findable by the corrected value at once
    assert f"/review/{doc_id}" not in client.get("/review").text  # reviewed: out of the queue
    api = client.get(f"/api/documents/{doc_id}").json()
    assert api["metadata"]["subject"] == new_subject and api["status"] == "done"
    assert [c["field"] for c in api["corrections"]] == ["metadata.subject", "status"]
    page = client.get(f"/review/{doc_id}")
    assert "Hòa Vang" in page.text and "Lịch sử chỉnh sửa" in page.text
    stale = client.post(f"/review/{doc_id}", data={"csrf_token": csrf.group(1), "version": "0",
                                                   "md_subject": "bản cũ"})
    assert stale.status_code == 400 and "người khác" in stale.text  # a stale form never undoes a correction

    # a page's text is corrected the same way, and a restart (catalog rebuilt elsewhere) keeps the corrections
    client.post(f"/review/{doc_id}", data={"csrf_token": csrf.group(1), "page_2": "Trang đã soát: Ngũ Hành Sơn"})
    from interfaces.web.review import reindex_document
    from interfaces.web.service import WebState
    from schemas.document import DocumentManifest

    state = WebState.build(web_archive.settings, WebSettings())
    reindex_document(state, DocumentManifest.model_validate_json(stored), f"documents/{doc_id}/document.json")
    assert hit_ids(client.get("/search", params={"q": "ngu hanh son"}).text) == []
    with TestClient(create_app(web_archive.settings, WebSettings())) as restarted:
        login(restarted, "arch")
        assert hit_ids(restarted.get("/search", params={"q": "ngu hanh son"}).text) == [doc_id]
        assert hit_ids(restarted.get("/search", params={"q": "hoa vang"}).text) == [doc_id]


def test_api_token(web_archive: WebArchive, app_client: TestClient) -> None:
    client = _client(app_client)
    headers = {"Authorization": f"Bearer {web_archive.staff_token}"}
    wrong = {"Authorization": "Bearer sohoa_sai"}
    assert client.get("/api/search", params={"q": "x"}, headers=wrong).status_code == 401
    me = client.get("/api/me", headers=headers).json()
    assert me == {"username": "staff", "role": "staff", "clearance": 0}
    result = client.get("/api/search", params={"q": "nghi quyet kinh te bien", "facets": "true"}, headers=headers)
    assert result.status_code == 200
    body = result.json()
    assert body["hits"][0]["id"] == web_archive.ids["nq_01.png"]
    assert {f["value"] for f in body["facets"]["classification"]} <= {"Thường"}
    doc = client.get(f"/api/documents/{web_archive.ids['nq_01.png']}", headers=headers).json()
    assert doc["metadata"]["code_number"] == "27" and doc["originals"] == []  # staff: no originals
    assert client.get(doc["pdf"], headers=headers).content.startswith(b"%PDF")


def test_admin_manages_accounts(web_archive: WebArchive, app_client: TestClient) -> None:
    assert login(_client(app_client), "arch").get("/admin").status_code == 403
    admin = login(_client(app_client), "admin")
    csrf = csrf_of(admin, "/admin")
    created = admin.post("/admin/users", data={"csrf_token": csrf, "username": "moi", "password": "tai-khoan-moi-1",
                                               "role": "staff", "clearance": "0"}, follow_redirects=False)
    assert created.status_code == 303
    newcomer = login(_client(app_client), "moi", "tai-khoan-moi-1")
    assert newcomer.get("/search").status_code == 200
    short = admin.post("/admin/users/moi/password", data={"csrf_token": csrf, "password": "ngan"})
    assert short.status_code == 400 and "ít nhất 12" in short.text
    admin.post("/admin/users/moi/password", data={"csrf_token": csrf, "password": "tai-khoan-moi-2"})
    assert newcomer.get("/search", follow_redirects=False).status_code == 303  # the reset ended its sessions
    login(_client(app_client), "moi", "tai-khoan-moi-2")
    # the admin chose moi's password: they may not ask to raise it nor for a token of it (tests/test_four_eyes.py)
    raised = admin.post("/admin/users/moi", data={"csrf_token": csrf, "role": "archivist", "clearance": "2",
                                                  "active": "on"})
    assert raised.status_code == 400 and "nắm thông tin đăng nhập" in raised.text
    last_admin = admin.post("/admin/users/admin", data={"csrf_token": csrf, "role": "staff", "clearance": "0",
                                                        "active": "on"})
    assert last_admin.status_code == 400  # never lock the archive out of its admin page
    assert admin.post("/admin/users/moi/tokens", data={"csrf_token": csrf, "label": "x"}).status_code == 400
    # another admin asks; the classified clearance and a token for another account apply once a third admin (not
    # holding moi's credentials) approves them (four eyes: tests/test_four_eyes.py)
    add_user(web_archive.settings, "admin2", PASSWORDS["admin"], "admin", clearance=3)
    add_user(web_archive.settings, "admin3", PASSWORDS["admin"], "admin", clearance=3)
    asker = login(_client(app_client), "admin2", PASSWORDS["admin"])
    asker.post("/admin/users/moi", data={"csrf_token": csrf_of(asker, "/admin"), "role": "archivist",
                                         "clearance": "2", "active": "on"})
    page = asker.post("/admin/users/moi/tokens", data={"csrf_token": csrf_of(asker, "/admin"), "label": "máy quét"})
    token = re.search(r'id="new-token">([^<]+)<', page.text)
    assert token
    second = login(_client(app_client), "admin3", PASSWORDS["admin"])
    held = re.findall(r'action="/admin/approvals/(\d+)/approve"', second.get("/admin").text)
    assert len(held) == 2
    for request_id in held:
        approved = second.post(f"/admin/approvals/{request_id}/approve", data={"csrf_token": csrf_of(second, "/admin")},
                               follow_redirects=False)
        assert approved.status_code == 303
    me = _client(app_client).get("/api/me", headers={"Authorization": f"Bearer {token.group(1)}"}).json()
    assert me == {"username": "moi", "role": "archivist", "clearance": 2}


def test_first_admin_from_environment(tmp_path: Path, web_archive: WebArchive) -> None:
    settings = Settings(archive=tmp_path / "empty")
    web = WebSettings(admin_password="mat-khau-khoi-tao")  # type: ignore[arg-type]
    with TestClient(create_app(settings, web)) as client:
        login(client, "admin", "mat-khau-khoi-tao")
        assert client.get("/admin").status_code == 200


def test_api_docs_are_offline(app_client: TestClient) -> None:
    client = login(_client(app_client), "staff")  # the docs and the spec need a login (tests/test_web_hardening.py)
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert re.findall(r'(?:src|href)="(https?:)?//', docs.text) == []
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/api/search", "/api/documents/{doc_id}"} <= set(spec["paths"])
    assert "default-src 'self'" in client.get("/login").headers["content-security-policy"]


def test_every_web_action_is_in_the_audit_trail(web_archive: WebArchive, app_client: TestClient) -> None:
    from flows.audit import open_audit

    log = open_audit(web_archive.settings)
    start = max((e.seq for e in log.entries(newest_first=True, limit=1)), default=0)
    client = _client(app_client)
    token = _login_token(client)
    client.post("/login", data={"username": "staff", "password": "sai-mat-khau", "csrf_token": token,
                                "next": "/search"}, follow_redirects=False)
    login(client, "staff")
    doc = web_archive.ids["nq_01.png"]
    assert client.get("/search", params={"q": "ke hoach chuyen doi so"}).status_code == 200
    assert client.get(f"/documents/{doc}").status_code == 200
    assert client.get(f"/documents/{doc}/pages/1/image").status_code == 200
    assert client.get(f"/documents/{doc}/pdf").status_code == 200
    api = {"Authorization": f"Bearer {web_archive.staff_token}"}
    assert client.get("/api/search", params={"q": "nghi quyet"}, headers=api).status_code == 200
    entries = [e for e in log.entries() if e.seq > start]
    assert [(e.actor, e.action) for e in entries] == [
        ("staff", "login.failed"), ("staff", "login"), ("staff", "search"), ("staff", "document.view"),
        ("staff", "page.image"), ("staff", "download.pdf"), ("staff", "search")]
    assert all(e.source.startswith("web:") for e in entries)
    assert entries[2].details["query"] == "ke hoach chuyen doi so" and entries[3].target == doc
    assert entries[-1].details["api"] is True
    assert log.verify().ok
    log.close()
    admin = login(_client(app_client), "admin")
    page = admin.get("/admin/audit", params={"actor": "staff", "action": "login.failed"})
    assert page.status_code == 200 and "Chuỗi băm nguyên vẹn" in page.text and "login.failed" in page.text
    assert _client(app_client).get("/admin/audit", follow_redirects=False).status_code == 303  # login first
    assert login(_client(app_client), "staff").get("/admin/audit").status_code in (403, 404)


def test_batches_page_registers_lists_and_cancels(web_archive: WebArchive, tmp_path: Path) -> None:
    from tests.conftest import SAMPLE_BATCH

    root = tmp_path / "lo"
    shutil.copytree(SAMPLE_BATCH, root / "ho-so-2024")
    (root / "ho-so-2025").mkdir()
    app = create_app(web_archive.settings, WebSettings(web_batch_root=root))
    arch = login(TestClient(app), "arch")
    page = arch.get("/batches")
    assert page.status_code == 200 and 'value="ho-so-2024"' in page.text
    csrf = csrf_of(arch, "/batches")
    outside = arch.post("/batches", data={"csrf_token": csrf, "folder": "../../etc", "when": "tonight"})
    assert outside.status_code == 400  # only a listed folder name is accepted
    no_token = arch.post("/batches", data={"folder": "ho-so-2024", "when": "tonight"})
    assert no_token.status_code in (400, 403)
    added = arch.post("/batches", data={"csrf_token": csrf, "folder": "ho-so-2024", "when": "tonight",
                                        "file_code": "H49.64.33.2024.01"}, follow_redirects=False)
    assert added.status_code == 303
    listing = arch.get("/batches").text
    batch_id = re.search(r'href="/batches/([^"]+)"', listing)
    assert batch_id and "chờ chạy" in listing
    detail = arch.get(f"/batches/{batch_id.group(1)}")
    assert detail.status_code == 200 and "nq_01.png" in detail.text and 'http-equiv="refresh"' in detail.text
    cancelled = arch.post(f"/batches/{batch_id.group(1)}/cancel", data={"csrf_token": csrf}, follow_redirects=False)
    assert cancelled.status_code == 303 and "đã hủy" in arch.get("/batches").text.lower()
    assert arch.get("/batches/khong-co").status_code == 404
    assert login(TestClient(app), "staff").get("/batches").status_code in (403, 404)  # archivists only
