"""Review beside the scan (issue 22, part 5): evidence boxes from the metadata extraction on the real digitised
sample archive, crops of the scan served through the access policy, doubtful lines from the stored hOCR and their
correction (versioned, audited, found by search at once). The leakage side is in ``tests/test_leakage.py``."""

from __future__ import annotations

import io
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from flows.corrections import CORRECTION_ACTION, edits_of
from flows.wiring import build_object_store
from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from pipeline.review_scan import LineChanged, crop_region, doubtful_lines, line_readings, replace_line
from schemas.document import DocumentManifest
from schemas.metadata import DocumentMetadata, FieldEvidence
from schemas.ocr import OcrWord
from schemas.settings import Settings
from tests.conftest import DigitisedArchive

PASSWORD = "mat-khau-soat-xet-ban-quet"
MAIN_FIELDS = ("code_number", "type_name", "issued_date", "organ_name", "subject", "signer")


def _word(text: str, box: tuple[int, int, int, int], conf: float, line: int) -> OcrWord:
    return OcrWord(text=text, box=box, confidence=conf, line=line, block=0)


WORDS = [_word("CỘNG", (10, 10, 60, 30), 0.97, 0), _word("HÒA", (70, 10, 110, 30), 0.95, 0),
         _word("Đà", (10, 50, 40, 70), 0.40, 1), _word("Nẵng", (45, 50, 100, 72), 0.60, 1),
         _word("|", (10, 90, 12, 110), 0.10, 2),
         _word("ngày", (10, 130, 50, 150), 0.80, 3), _word("10", (55, 130, 70, 150), 0.70, 3)]


def test_doubtful_lines_least_sure_first_paired_with_the_page_text() -> None:
    readings = line_readings(WORDS)
    assert [r.text for r in readings] == ["CỘNG HÒA", "Đà Nẵng", "|", "ngày 10"]
    assert readings[1].box == (10, 50, 100, 72) and readings[1].confidence == 0.5
    text = "CỘNG HÒA\nĐà Nẵng\n|\nngày 10"
    lines = doubtful_lines(1, WORDS, text)
    assert [(d.index, d.text, d.confidence) for d in lines] == [(1, "Đà Nẵng", 0.5), (3, "ngày 10", 0.75)]
    # a corrected line keeps its place (aligned between equal neighbours), the line shows the corrected text
    corrected = "CỘNG HÒA\n\nĐà Nẵng đã sửa\n|\nngày 10\nthêm"
    assert [(d.index, d.text) for d in doubtful_lines(1, WORDS, corrected)] == [(2, "Đà Nẵng đã sửa"), (4, "ngày 10")]
    # a line not found in the text (dropped from it) is not offered
    assert [d.index for d in doubtful_lines(1, WORDS, "CỘNG HÒA\n\nngày 10\nthêm")] == [2]
    assert doubtful_lines(1, WORDS, text, below=0.3) == []


def test_replace_line_refuses_a_line_that_changed() -> None:
    text = "một\nhai  ba\nbốn"
    assert replace_line(text, 1, "hai ba", "  hai   bà ") == "một\nhai bà\nbốn"
    with pytest.raises(LineChanged):
        replace_line(text, 1, "khác", "x")
    with pytest.raises(LineChanged):
        replace_line(text, 7, "hai ba", "x")


def test_crop_region_scales_pads_and_clips() -> None:
    assert crop_region((100, 100, 200, 150), (1000, 2000), (500, 1000), margin=10) == (45, 45, 105, 80)
    assert crop_region((0, 0, 20, 20), (100, 100), (100, 100), margin=5) == (0, 0, 25, 25)
    assert crop_region((200, 200, 300, 300), (100, 100), (100, 100)) is None
    assert crop_region((0, 0, 1, 1), (0, 100), (100, 100)) is None


def test_old_manifests_without_a_box_still_load() -> None:
    old = '{"confidence": 0.9, "page": 1, "raw": "Số: 27-NQ/TU"}'
    assert FieldEvidence.model_validate_json(old).box is None
    md = DocumentMetadata.model_validate({"evidence": {"code_number": {"confidence": 0.9, "page": 1}}})
    assert md.evidence["code_number"].box is None
    assert FieldEvidence(confidence=1.0, page=1, box=(1, 2, 3, 4)).model_dump()["box"] == (1, 2, 3, 4)


def _manifest(archive: Path, doc_id: str) -> DocumentManifest:
    path = archive / "objects" / "documents" / doc_id / "document.json"
    return DocumentManifest.model_validate_json(path.read_bytes())


def _ids(digitised: DigitisedArchive) -> dict[str, str]:
    report = digitised.report["documents"]
    assert isinstance(report, list)
    return {str(d["source"]): str(d["id"]) for d in report if d["id"]}


def test_evidence_boxes_on_a_real_digitised_page(digitised: DigitisedArchive) -> None:
    """The metadata extraction of the sample archive keeps, for its main fields, a box on the page the value was
    read from; the crop of the page image there holds ink."""
    manifest = _manifest(digitised.archive, _ids(digitised)["nq_01.png"])
    page = manifest.pages[0]
    evidence = manifest.metadata.evidence
    for key in MAIN_FIELDS:
        ev = evidence[key]
        assert ev.page == 1 and ev.box is not None, (key, ev)
        x0, y0, x1, y1 = ev.box
        assert 0 <= x0 < x1 <= page.width and 0 <= y0 < y1 <= page.height, (key, ev.box)
    # where the fields sit on a Party resolution: the number and the organ in the header, the signer at the foot
    assert evidence["organ_name"].box[3] < page.height / 3  # type: ignore[index]
    assert evidence["code_number"].box[3] < page.height / 3  # type: ignore[index]
    assert evidence["signer"].box[1] > page.height / 2  # type: ignore[index]
    assert evidence["page_count"].box is None  # no evidence on the page: none shown


@pytest.fixture(scope="module")
def web(digitised: DigitisedArchive, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, str]]:
    root = tmp_path_factory.mktemp("review-scan") / "archive"
    shutil.copytree(digitised.archive, root)
    settings = Settings(archive=root)
    add_user(settings, "soatxet", PASSWORD, "archivist", clearance=1)
    add_user(settings, "canbo", PASSWORD, "staff", clearance=0)
    return settings, _ids(digitised)


def _login(app: object, name: str) -> TestClient:
    client = TestClient(app)  # type: ignore[arg-type]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token.group(1)})
    return client


def _ink(jpeg: bytes) -> float:
    """Share of dark pixels of an image."""
    pixels = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"))
    return float((pixels < 128).mean())


def test_review_form_shows_the_evidence_crops_and_they_are_images(web: tuple[Settings, dict[str, str]]) -> None:
    settings, ids = web
    doc_id = ids["nq_01.png"]
    client = _login(create_app(settings, WebSettings()), "soatxet")
    form = client.get(f"/review/{doc_id}")
    assert form.status_code == 200
    crops = re.findall(r'id="field-(\w+)"[^>]*>\s*<span>[^<]*<img class="evidence" src="([^"]+)"', form.text)
    shown = dict(crops)
    assert set(MAIN_FIELDS) <= set(shown), shown
    for key in MAIN_FIELDS:
        answer = client.get(shown[key].replace("&amp;", "&"))
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg", key
        assert answer.headers["cache-control"] == "private, no-store"
        image = Image.open(io.BytesIO(answer.content))
        assert image.width > image.height and 0.01 < _ink(answer.content) < 0.6, (key, image.size)
    assert 'id="field-urgency"' in form.text and "field-urgency\"" not in shown  # no evidence: no crop
    assert 'src="/documents/' + doc_id + '/pages/1/image"' in form.text  # the scan beside the form
    # a staff reader may fetch a crop of a page they may see; a bad box is refused in Vietnamese
    staff = _login(create_app(settings, WebSettings()), "canbo")
    assert staff.get(shown["subject"].replace("&amp;", "&")).status_code == 200
    bad = client.get(f"/documents/{doc_id}/pages/1/crop", params={"box": "50,50,10,10"})
    assert bad.status_code == 422 and "Vùng cắt không hợp lệ" in bad.text
    off = client.get(f"/documents/{doc_id}/pages/1/crop", params={"box": "900000,900000,900001,900001"})
    assert off.status_code == 404
    assert client.get(f"/documents/{doc_id}/pages/9/crop", params={"box": "1,1,5,5"}).status_code == 404


def test_a_doubtful_line_correction_is_versioned_audited_and_found_at_once(
    web: tuple[Settings, dict[str, str]],
) -> None:
    from flows.audit import open_audit

    settings, ids = web
    doc_id = ids["bc_03.pdf"]  # a degraded scan: lines the OCR doubted
    manifest = settings.archive_path() / "objects" / "documents" / doc_id / "document.json"
    stored = manifest.read_bytes()
    client = _login(create_app(settings, WebSettings()), "soatxet")
    form = client.get(f"/review/{doc_id}").text
    lines = re.findall(r'<li id="line-(\d+)-(\d+)">.*?name="version" value="(\d+)".*?name="expected" value="([^"]*)"'
                       r'.*?<img class="line-crop" src="([^"]+)"', form, flags=re.S)
    assert lines, "no doubtful line offered on a degraded scan"
    page, index, version, expected, crop = lines[0]
    confidences = [int(c) for c in re.findall(r"dòng \d+ · độ tin cậy (\d+)%", form)]
    assert confidences == sorted(confidences) and all(c < 90 for c in confidences)  # least sure first
    assert client.get(crop.replace("&amp;", "&")).headers["content-type"] == "image/jpeg"
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf
    new_line = "Dòng đã soát Phước Tường Khuê Trung"
    saved = client.post(f"/review/{doc_id}/line", data={
        "csrf_token": csrf.group(1), "version": version, "page": page, "index": index, "expected": expected,
        "text": new_line}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"].startswith(f"/review/{doc_id}?saved=1")
    edits = edits_of(build_object_store(settings), doc_id)  # a new version of the page's text
    assert edits[-1].field == f"page.{page}" and edits[-1].username == "soatxet"
    after = str(edits[-1].after).split("\n")
    assert after[int(index)] == new_line and str(edits[-1].before).split("\n")[int(index)] == expected
    assert len(after) == len(str(edits[-1].before).split("\n"))  # only that line changed
    assert manifest.read_bytes() == stored  # the machine reading stays as it was
    log = open_audit(settings)
    try:
        entries = [(e.actor, e.action, e.target) for e in log.entries()]
    finally:
        log.close()
    assert ("soatxet", CORRECTION_ACTION, doc_id) in entries and ("soatxet", "document.edit", doc_id) in entries
    found = client.get("/search", params={"q": "phuoc tuong khue trung"})
    assert re.findall(r'href="/documents/([A-Za-z0-9_-]+)[?"]', found.text) == [doc_id]  # re-indexed at once
    # the same form again: stale (another version since) -> a clear message, nothing written
    stale = client.post(f"/review/{doc_id}/line", data={
        "csrf_token": csrf.group(1), "version": version, "page": page, "index": index, "expected": expected,
        "text": "bản cũ"})
    assert stale.status_code == 400 and "tải lại trang" in stale.text
    assert len(edits_of(build_object_store(settings), doc_id)) == len(edits)
    fresh = client.get(f"/review/{doc_id}").text
    assert new_line in fresh


def test_next_document_steps_through_the_users_own_queue(web: tuple[Settings, dict[str, str]]) -> None:
    settings, _ = web
    client = _login(create_app(settings, WebSettings()), "soatxet")
    queue = re.findall(r'<td data-label="Văn bản"><a href="/review/([A-Za-z0-9_-]+)"', client.get("/review").text)
    assert queue
    first = client.get(f"/review/{queue[0]}/next", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == (f"/review/{queue[1]}" if len(queue) > 1 else "/review")
    outside = client.get("/review/0000000000000000dead/next", follow_redirects=False)
    assert outside.headers["location"] == f"/review/{queue[0]}"
