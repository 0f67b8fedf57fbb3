"""Outside review of hồ sơ/phông, hits and cross-references: leaks found by an attacker of clearance 0.

The archive is ``tests.test_files``'s: hồ sơ CODE holds nq_01 (số thứ tự 1), bc_03 (Mật, 2) and kh_02 (3). A reader
without clearance sees nq_01 and kh_02 only, numbered 1 and 2; nothing they are shown may tell that a document
sits between them (the stored số thứ tự 3 of kh_02 would), nor how many documents a hồ sơ holds for a reader
cleared above them (an audit entry's count), nor that a hồ sơ known only from hidden documents exists.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from interfaces.cli import main
from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from schemas.settings import Settings
from tests.test_files import CODE, PASSWORD, file_in, filed, login  # noqa: F401  (the module's archive fixture)

pytestmark = pytest.mark.slow
HISTORY_ROW = re.compile(r'class="field">Số thứ tự trong hồ sơ</td>\s*<td[^>]*>([^<]*)</td>\s*<td[^>]*>([^<]*)</td>')


def _copy(settings: Settings, tmp_path: Path) -> Settings:
    root = tmp_path / "a"
    shutil.copytree(settings.archive, root, ignore=shutil.ignore_patterns("work"))
    return Settings(archive=root)


def test_document_page_and_api_show_no_sequence_gap(filed: tuple[Settings, dict[str, str]],  # noqa: F811
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    settings, ids = filed
    app = create_app(settings, WebSettings())
    none, full = login(app, "xem0"), login(app, "luutru3")
    kh = ids["kh_02.tif"]
    page = none.get(f"/documents/{kh}").text
    assert "số thứ tự 2" in page and "số thứ tự 3" not in page  # its STT among the documents the reader sees
    assert all("3" not in v for row in HISTORY_ROW.findall(page) for v in row)  # the correction history
    api = none.get(f"/api/documents/{kh}").json()
    assert all(3 not in (c["before"], c["after"]) for c in api["corrections"] if c["field"] == "sequence")
    review = login(app, "luutru0").get(f"/review/{kh}").text  # an archivist of clearance 0: the same history
    assert HISTORY_ROW.findall(review) and all("3" not in v for row in HISTORY_ROW.findall(review) for v in row)
    capsys.readouterr()
    assert main(["show", kh, "--json", "--archive", str(settings.archive), "--as", "xem0"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert all(3 not in (c["before"], c["after"]) for c in shown["corrections"] if c["field"] == "sequence")
    # the reader cleared for every level still sees the stored number
    assert "số thứ tự 3" in full.get(f"/documents/{kh}").text


def test_audit_keeps_counts_and_hidden_files_from_a_less_cleared_admin(filed: tuple[Settings, dict[str, str]],  # noqa: F811
                                                                       tmp_path: Path) -> None:
    from flows.accounts import accounts_of
    from flows.audit import open_audit, readable_entries
    from flows.review import Reviewer, apply_changes
    from flows.wiring import build_object_store, open_accounts_db

    settings, ids = filed
    copy = _copy(settings, tmp_path)
    add_user(copy, "quantri0", PASSWORD, "admin", clearance=0)
    user = accounts_of(copy).find_user("luutru3")
    assert user is not None
    full = login(create_app(copy, WebSettings()), "luutru3")
    assert full.get(f"/ho-so/{CODE}/muc-luc.xlsx").status_code == 200  # 3 documents for luutru3, 2 for quantri0
    log = open_audit(copy)
    try:  # a hồ sơ known only from the Mật report
        reviewer = Reviewer(settings=copy, store=build_object_store(copy), db=open_accounts_db(copy), audit=log,
                            user=user)
        apply_changes(reviewer, ids["bc_03.pdf"], {"file_code": "AN.1", "sequence": 1})
    finally:
        log.close()
    assert full.get("/ho-so/AN.1").status_code == 200 and full.get("/ho-so/AN.1/muc-luc.xlsx").status_code == 200
    admin = accounts_of(copy).find_user("quantri0")
    assert admin is not None
    entries = readable_entries(copy, admin.principal)
    shown = [(e.action, e.target, e.details) for e in entries]
    assert not [s for s in shown if s[0] == "export.muc_luc" and s[2].get("documents") == 3], shown
    assert not [s for s in shown if "AN.1" in str(s)], shown
    # the admin's own view of the same hồ sơ is still in the trail (nothing above their clearance in it)
    low = login(create_app(copy, WebSettings()), "quantri0")
    assert low.get(f"/ho-so/{CODE}").status_code == 200
    mine = readable_entries(copy, admin.principal)
    assert any(e.action == "file.view" and e.target == CODE and e.actor == "quantri0" for e in mine)


def test_explicit_sequence_is_no_oracle_of_hidden_numbers(filed: tuple[Settings, dict[str, str]],  # noqa: F811
                                                          tmp_path: Path) -> None:
    """An archivist of clearance 0 sees CODE as nq_01 (STT 1), kh_02 (STT 2). A typed số thứ tự would be stored as
    typed and sort against the stored numbers of the hidden documents (3 ties with kh_02's stored 3, not with its
    shown 2): where a probe lands would map them. Below the top clearance a number cannot be chosen (refused,
    nothing filed); left empty, the document goes after the last one the archivist sees."""
    settings, ids = filed
    copy = _copy(settings, tmp_path)
    low = login(create_app(copy, WebSettings()), "luutru0")
    kh = ids["kh_02.tif"]
    probe = min((ids[s] for s in ("cv_04", "qd_05.jpg")), key=lambda i: (i > kh, i))
    before = re.findall(r'href="/documents/([A-Za-z0-9_-]+)"', low.get(f"/ho-so/{CODE}").text)
    refused = file_in(low, CODE, probe, "3")
    assert refused.status_code == 400 and "chỉ người được xem mọi mức mật" in refused.text
    assert re.findall(r'href="/documents/([A-Za-z0-9_-]+)"', low.get(f"/ho-so/{CODE}").text) == before
    assert file_in(low, CODE, probe, "").status_code == 303
    docs = re.findall(r'href="/documents/([A-Za-z0-9_-]+)"', low.get(f"/ho-so/{CODE}").text)
    assert docs.index(kh) < docs.index(probe), docs


def test_document_page_reads_a_query_as_search_does(filed: tuple[Settings, dict[str, str]]) -> None:  # noqa: F811
    """A 15 000-character ``q`` is cut to 500 as the search page cuts it, not copied into every page link, hit link
    and citation piece (marked once per piece: up to 200 citations a page)."""
    settings, ids = filed
    none = login(create_app(settings, WebSettings()), "xem0")
    answer = none.get(f"/documents/{ids['kh_02.tif']}", params={"q": "x" * 15_000})
    assert answer.status_code == 200 and "x" * 501 not in answer.text
