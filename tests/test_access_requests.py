"""Access requests (phiếu yêu cầu khai thác), end to end through the real web app and CLI over a real digitised
archive (open, Mật and Tối mật copies of one resolution, ``tests.test_leakage.base_archive``): request → grant →
read → expiry → no read; refusal; no self-approval; an approver below the document's level cannot grant; a grant
for document A does not open document B; searches, the REST API, originals and the review form are not widened;
every step audited; the register (``sohoa register --requests``) filtered by clearance and opened in openpyxl.

The clock is injected (``WebState.clock``): expiry is tested by moving it, never by waiting."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from flows import access_requests as ar
from interfaces.cli import main
from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from schemas.settings import Settings
from tests.test_leakage import PASSWORD, QUERY, _login, base_archive  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slow
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
REFERENCE = "Theo 27-NQ/TU ngày 14/3/2023 của Thành ủy"
USERS = {"nv": ("archivist", 0), "nv1": ("archivist", 1), "duyet1": ("archivist", 1), "duyet2": ("archivist", 2),
         "staff2": ("staff", 2)}


@dataclass
class Setup:
    settings: Settings
    ids: dict[str, str]
    clock: list[datetime]
    app: object

    def client(self, name: str) -> TestClient:
        return _login(self.app, name)


@pytest.fixture
def setup(base_archive: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[Setup]:  # noqa: F811
    root = tmp_path / "a"
    shutil.copytree(base_archive[0], root, ignore=shutil.ignore_patterns("work"))
    settings = Settings(archive=root)
    for name, (role, level) in USERS.items():
        add_user(settings, name, PASSWORD, role, clearance=level, api_token=False)  # type: ignore[arg-type]
    app = create_app(settings, WebSettings())
    clock = [START]
    app.state.web.clock = lambda: clock[0]
    yield Setup(settings, base_archive[1], clock, app)


def _csrf(client: TestClient, path: str = "/requests/new") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def ask(client: TestClient, reference: str = REFERENCE, doc_ref: str = "", purpose: str = "Nghiên cứu") -> object:
    return client.post("/requests", data={"csrf_token": _csrf(client), "reference": reference, "doc_ref": doc_ref,
                                          "purpose": purpose}, follow_redirects=False)


def pending_id(approver: TestClient) -> int:
    found = re.findall(r'id="request-(\d+)"', approver.get("/requests/approve").text)
    assert found, "no pending request shown"
    return int(found[-1])


def decide(client: TestClient, request_id: int, action: str, **data: object) -> str:
    """POST a grant or refusal; the page it leads to (its message)."""
    answer = client.post(f"/requests/{request_id}/{action}", data={"csrf_token": _csrf(client), **data},
                         follow_redirects=False)
    assert answer.status_code == 303
    return client.get(answer.headers["location"]).text


def reads(client: TestClient, doc_id: str) -> tuple[int, int, int]:
    return tuple(client.get(p.format(doc_id)).status_code  # type: ignore[return-value]
                 for p in ("/documents/{}", "/documents/{}/pages/1/image", "/documents/{}/pdf"))


def audit_rows(settings: Settings) -> list[tuple[str, str, str]]:
    from flows.audit import open_audit

    log = open_audit(settings)
    try:
        return [(e.actor, e.action, e.target) for e in log.entries()]
    finally:
        log.close()


def test_request_grant_read_expiry(setup: Setup) -> None:
    mat, toimat, mo = setup.ids["mat"], setup.ids["toimat"], setup.ids["mo"]
    nv, duyet2 = setup.client("nv"), setup.client("duyet2")
    total = nv.get("/api/search", params={"q": QUERY, "facets": "true"}).json()
    assert reads(nv, mat) == (404, 404, 404)
    sent = ask(nv, doc_ref=mat)
    assert sent.status_code == 303 and sent.headers["location"] == "/requests/sent"  # type: ignore[attr-defined]
    assert reads(nv, mat) == (404, 404, 404)  # nothing opens before a decision
    assert "Đang chờ phê duyệt" in nv.get("/requests").text

    listing = duyet2.get("/requests/approve").text
    assert REFERENCE in listing and "Nghiên cứu" in listing
    assert all(doc in listing for doc in (mo, mat, toimat))  # by its số/ký hiệu: every copy the approver may see
    request_id = pending_id(duyet2)
    page = decide(duyet2, request_id, "grant", doc_id=mat, days=7)
    assert "Đã cho phép nv" in page and f'id="request-{request_id}"' not in page  # decided: off the list

    assert reads(nv, mat) == (200, 200, 200)
    shown = nv.get(f"/documents/{mat}").text
    assert 'id="granted-note"' in shown and "/review/" not in shown and "/original/" not in shown
    assert reads(nv, toimat) == (404, 404, 404)  # a grant for A does not open B
    for path in (f"/api/documents/{mat}", f"/review/{mat}", f"/documents/{mat}/original/1"):
        assert nv.get(path).status_code == 404, path  # the REST API, the review form, originals: not widened
    assert nv.get("/api/search", params={"q": QUERY, "facets": "true"}).json() == total  # search not widened
    own = nv.get("/requests").text
    assert "Đã cho phép" in own and f'href="/documents/{mat}"' in own

    setup.clock[0] = START + timedelta(days=7, seconds=-1)
    assert reads(nv, mat) == (200, 200, 200)
    setup.clock[0] = START + timedelta(days=7)
    assert reads(nv, mat) == (404, 404, 404)  # expired: as if missing again
    assert "Đã hết hạn" in nv.get("/requests").text

    rows = audit_rows(setup.settings)
    assert ("nv", "access_request.create", f"request:{request_id}") in rows
    assert ("duyet2", "access_request.grant", mat) in rows
    uses = [r for r in rows if r[:2] == ("nv", "access_grant.use")]
    assert len(uses) == 7 and {r[2] for r in uses} == {mat}  # page, image, PDF twice while the grant ran; a page


def test_refusal_needs_a_reason_and_opens_nothing(setup: Setup) -> None:
    mat = setup.ids["mat"]
    nv, duyet1 = setup.client("nv"), setup.client("duyet1")
    ask(nv, doc_ref=mat, purpose="Viết báo cáo tổng kết")
    request_id = pending_id(duyet1)
    assert ar.NO_REASON in decide(duyet1, request_id, "refuse", reason="  ")
    assert "Đã từ chối yêu cầu của nv" in decide(duyet1, request_id, "refuse", reason="Không đúng phạm vi công việc")
    own = nv.get("/requests").text
    assert "Bị từ chối" in own and "Không đúng phạm vi công việc" in own
    assert reads(nv, mat) == (404, 404, 404)
    assert ar.NOT_FOUND in decide(duyet1, request_id, "grant", doc_id=mat, days=7)  # decided once only
    assert ("duyet1", "access_request.refuse", f"request:{request_id}") in audit_rows(setup.settings)
    # the list shows only the app's own messages, and only about what the viewer decided: no text from a link
    assert "Gọi số 0900" not in duyet1.get("/requests/approve", params={"error": "Gọi số 0900"}).text
    other = setup.client("duyet2").get("/requests/approve", params={"decided": request_id}).text
    assert "Đã từ chối" not in other and "Đã từ chối" in duyet1.get(f"/requests/approve?decided={request_id}").text


def test_no_self_approval_no_grant_above_the_approver(setup: Setup) -> None:
    mat, toimat = setup.ids["mat"], setup.ids["toimat"]
    nv1, duyet1, duyet2 = setup.client("nv1"), setup.client("duyet1"), setup.client("duyet2")
    ask(nv1, doc_ref=toimat)
    assert "request-" not in nv1.get("/requests/approve").text  # one's own request is not on one's list
    request_id = pending_id(duyet2)
    assert ar.SELF in decide(nv1, request_id, "grant", doc_id=toimat, days=7)
    # duyet1 (Mật) is not above the requester (Mật): the request is not theirs to see, a grant reads as missing
    assert f'id="request-{request_id}"' not in duyet1.get("/requests/approve").text
    assert ar.NOT_FOUND in decide(duyet1, request_id, "grant", doc_id=toimat, days=7)
    assert reads(nv1, toimat) == (404, 404, 404)

    nv = setup.client("nv")
    ask(nv, doc_ref=toimat)  # cleared 0: duyet1 sees it, but only the matches within Mật
    listing = duyet1.get("/requests/approve").text
    request_id = pending_id(duyet1)
    # the Tối mật copy is never resolved for them (the id the requester typed is only their own text)
    assert f'value="{toimat}"' not in listing and f'href="/documents/{toimat}"' not in listing
    assert f'value="{mat}"' in listing  # the Mật copy of the same số/ký hiệu is
    assert ar.NO_DOCUMENT in decide(duyet1, request_id, "grant", doc_id=toimat, days=7)
    assert reads(nv, toimat) == (404, 404, 404)
    assert ar.BAD_DAYS in decide(duyet2, request_id, "grant", doc_id=toimat, days=31)
    assert "Đã cho phép" in decide(duyet2, request_id, "grant", doc_id=toimat, days=30)
    assert reads(nv, toimat) == (200, 200, 200)
    assert reads(nv, mat) == (404, 404, 404)  # B granted, A still closed
    assert setup.client("nv").get("/requests/approve").status_code == 200  # an archivist's (empty) list
    assert setup.client("staff2").get("/requests/approve").status_code == 403  # staff approve nothing


def test_request_form_errors_echo_only_own_text(setup: Setup) -> None:
    nv = setup.client("nv")
    answer = ask(nv, reference="27-NQ/TU", purpose="")
    assert answer.status_code == 400 and ar.NO_PURPOSE in answer.text  # type: ignore[attr-defined]
    assert 'value="27-NQ/TU"' in answer.text  # type: ignore[attr-defined]
    assert ask(nv, reference="", doc_ref="", purpose="x").status_code == 400  # type: ignore[attr-defined]
    assert ask(nv, reference="", doc_ref="../etc", purpose="x").status_code == 400  # type: ignore[attr-defined]
    bad_csrf = nv.post("/requests", data={"csrf_token": "x", "reference": "a", "purpose": "b"})
    assert bad_csrf.status_code == 403
    assert ar.own_requests(setup.app.state.web.db, "nv") == []  # type: ignore[attr-defined]


def test_register_of_requests(setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from openpyxl import load_workbook

    from flows.access_register import HEADERS

    setup.clock[0] = datetime.now(UTC)  # the CLI reads the real clock: grants made now are still running
    mat, toimat = setup.ids["mat"], setup.ids["toimat"]
    nv, duyet2 = setup.client("nv"), setup.client("duyet2")
    ask(nv, doc_ref=mat, purpose="Đối chiếu số liệu")
    decide(duyet2, pending_id(duyet2), "grant", doc_id=mat, days=5)
    ask(nv, doc_ref=toimat, purpose="Tra cứu chỉ đạo")
    decide(duyet2, pending_id(duyet2), "grant", doc_id=toimat, days=5)
    ask(nv, reference="=HYPERLINK(\"http://x\")", purpose="+cmd")
    where = ["--archive", str(setup.settings.archive)]

    out = tmp_path / "so-khai-thac.xlsx"
    assert main(["register", "--requests", "--out", str(out), *where, "--as", "duyet2"]) == 0
    sheet = load_workbook(out).active
    assert sheet is not None
    table = [[c.value for c in row] for row in sheet.iter_rows()]
    assert tuple(table[0]) == HEADERS
    assert len(table) == 4 and [r[0] for r in table[1:]] == [1, 2, 3]
    assert {r[9] for r in table[1:]} == {mat, toimat, None}  # the granted documents
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)  # text, never a formula

    capsys.readouterr()
    assert main(["register", "--requests", "--json", *where, "--as", "duyet1"]) == 0
    rows = json.loads(capsys.readouterr().out)["requests"]
    assert [r["doc_id"] for r in rows] == [mat, ""] and [r["stt"] for r in rows] == [1, 2]  # Tối mật entry left out
    assert toimat not in json.dumps(rows)
    assert rows[0]["decision"] == "Đã cho phép" and rows[0]["approver"] == "duyet2" and rows[0]["expires_at"]
    assert main(["register", "--requests", "--json", *where, "--as", "nv"]) == 0
    rows = json.loads(capsys.readouterr().out)["requests"]
    assert [r["doc_id"] for r in rows] == [""]  # cleared 0: only the request naming no granted document
    assert main(["register", "--requests", "--json", *where, "--as", "staff2"]) == 0
    assert json.loads(capsys.readouterr().out)["requests"] == []  # staff read no register
    assert main(["register", "--requests", "--json", *where]) == 0  # the local operator: all
    assert len(json.loads(capsys.readouterr().out)["requests"]) == 3
    assert main(["register", "--json", *where, "--as", "duyet1"]) == 0  # the copy register keeps its contract
    assert "register" in json.loads(capsys.readouterr().out)
