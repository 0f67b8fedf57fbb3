"""Outside review (attack2) of the access requests, review beside the scan, dashboard and corrected PDF/A:
reproductions of the findings (each failed before its fix)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flows.accounts import accounts_of
from interfaces.web import add_user
from interfaces.web.review import apply_changes
from tests.test_access_requests import PASSWORD, START, Setup, ask, decide, pending_id, reads, setup  # noqa: F401
from tests.test_leakage import base_archive  # noqa: F401 (the fixture)

pytestmark = pytest.mark.slow


def _reclassify(setup: Setup, doc_id: str, value: str) -> None:  # noqa: F811
    add_user(setup.settings, "boss", PASSWORD, "admin", clearance=3, api_token=False)
    boss = accounts_of(setup.settings).find_user("boss")
    assert boss is not None
    assert apply_changes(setup.app.state.web, boss, doc_id, {"metadata.classification": value})  # type: ignore[attr-defined]


def test_grant_does_not_survive_a_reclassification_above_the_approver(setup: Setup) -> None:  # noqa: F811
    """A Mật document granted by a Mật approver, then raised to Tuyệt mật: the clearance-0 requester must no longer
    read it (the approver could not even see it now; the grant was for a Mật document)."""
    mat = setup.ids["mat"]
    nv, duyet1 = setup.client("nv"), setup.client("duyet1")
    ask(nv, doc_ref=mat)
    assert "Đã cho phép" in decide(duyet1, pending_id(duyet1), "grant", doc_id=mat, days=30)
    assert reads(nv, mat) == (200, 200, 200)
    _reclassify(setup, mat, "Tuyệt mật")
    assert duyet1.get(f"/documents/{mat}").status_code == 404  # the approver no longer sees it
    assert reads(nv, mat) == (404, 404, 404)  # nor does the grant open it
    own = nv.get("/requests").text  # the requester's list says the grant ended, not why, and offers no link
    assert "Không còn hiệu lực" in own and f'href="/documents/{mat}"' not in own and "Đã cho phép" not in own


def test_grant_still_reads_after_an_unrelated_correction(setup: Setup) -> None:  # noqa: F811
    mat = setup.ids["mat"]
    nv, duyet2 = setup.client("nv"), setup.client("duyet2")
    ask(nv, doc_ref=mat)
    decide(duyet2, pending_id(duyet2), "grant", doc_id=mat, days=3)
    _reclassify(setup, mat, "Tối mật")  # still within the approver's clearance
    assert reads(nv, mat) == (200, 200, 200)
    setup.clock[0] = START + timedelta(days=3)
    assert reads(nv, mat) == (404, 404, 404)


def test_pending_requests_per_requester_are_capped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every pending request costs each approver's list a scan of the whole catalog (``candidates``): one account
    must not be able to file thousands (a denial of service of the approvals page)."""
    from flows import access_requests as ar
    from flows.wiring import open_accounts_db
    from schemas.settings import Settings

    settings = Settings(archive=tmp_path / "a")
    add_user(settings, "spam", PASSWORD, "staff", clearance=0, api_token=False)
    user = accounts_of(settings).find_user("spam")
    assert user is not None
    db = open_accounts_db(settings)
    for n in range(ar.MAX_PENDING):
        ar.submit(db, user, f"{n}-NQ/TU", "", "Nghiên cứu", START)
    with pytest.raises(ar.AccessRequestError, match="đang chờ phê duyệt"):
        ar.submit(db, user, "99-NQ/TU", "", "Nghiên cứu", START)
    assert len(ar.own_requests(db, "spam")) == ar.MAX_PENDING
