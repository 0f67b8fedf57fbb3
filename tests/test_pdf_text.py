"""A page-text correction regenerates that page's text layer in the PDF/A (issue 22, ``flows.pdf_text``).

Real components: the sample batch digitised through the CLI (real OCR, real PDF/A), the real web app (review form,
PDF download) through FastAPI's TestClient, the real CLI (``show``, ``verify``), ``pdftotext`` for the text."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from ocrmypdf.pdfa import file_claims_pdfa

with warnings.catch_warnings():  # starlette's note about httpx2, printed at import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from flows import correction_index, pdf_text
from flows.wiring import build_object_store
from interfaces.cli import main
from interfaces.web import add_user, create_app
from interfaces.web.config import WebSettings
from pipeline.text_layer import PlacedWord, place_words, text_layer
from schemas.ocr import OcrWord
from schemas.settings import Settings
from storage.layout import pdfa_record_key
from tests.conftest import DigitisedArchive

PASSWORD = "mat-khau-kiem-thu"
NEW = ("XYLOPHONKIEMTRA", "ZEBRAHIEUDINH")


@dataclass
class Retexted:
    root: Path
    doc_id: str
    machine_pdf: Path  # the machine PDF/A, as digitised
    machine_bytes: bytes
    replaced: tuple[str, str]  # the words of page 1 replaced by NEW
    downloaded: bytes  # the PDF served after the correction
    staff_status: int  # a reader with clearance 0 downloading it (the document is open)


def _login(client: TestClient, username: str) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    response = client.post("/login", data={"username": username, "password": PASSWORD,
                                           "csrf_token": token.group(1), "next": "/search"}, follow_redirects=False)
    assert response.status_code == 303, response.text


def _save(client: TestClient, doc_id: str, fields: dict[str, str]) -> None:
    form = client.get(f"/review/{doc_id}")
    assert form.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    version = re.search(r'name="version" value="(\d+)"', form.text)
    assert csrf and version
    saved = client.post(f"/review/{doc_id}", data={"csrf_token": csrf.group(1), "version": version.group(1),
                                                   **fields}, follow_redirects=False)
    assert saved.status_code == 303, saved.text


def _unique_words(text: str, other: str) -> tuple[str, str]:
    counts = Counter(text.split())
    elsewhere = set(other.split())
    found = [w for w, n in counts.items() if n == 1 and len(w) >= 5 and w.isalpha() and w not in elsewhere
             and not any(w in v for v in counts if v != w)]
    assert len(found) >= 2, text
    return found[0], found[1]


def _page_text(pdf: Path, number: int) -> str:
    return subprocess.run(["pdftotext", "-f", str(number), "-l", str(number), str(pdf), "-"],
                          capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def retexted(digitised: DigitisedArchive, tmp_path_factory: pytest.TempPathFactory) -> Retexted:
    root = tmp_path_factory.mktemp("pdftext") / "archive"
    shutil.copytree(digitised.archive, root, ignore=shutil.ignore_patterns("work"))
    settings = Settings(archive=root)
    add_user(settings, "staff0", PASSWORD, "staff")
    add_user(settings, "arch", PASSWORD, "archivist", clearance=1)
    report = digitised.report["documents"]
    assert isinstance(report, list)
    doc_id = next(str(d["id"]) for d in report if d["source"] == "kh_02.tif")  # two pages, open
    manifest = json.loads((root / "objects" / "documents" / doc_id / "document.json").read_text(encoding="utf-8"))
    machine_pdf = root / "objects" / "documents" / doc_id / next(f["key"] for f in manifest["files"]
                                                                 if f["role"] == "pdfa")
    page1, page2 = manifest["pages"][0]["text"], manifest["pages"][1]["text"]
    replaced = _unique_words(page1, page2)
    corrected = page1
    for old, new in zip(replaced, NEW, strict=True):
        corrected = re.sub(rf"(?<!\w){re.escape(old)}(?!\w)", new, corrected)
    corrected += "\nmột dòng thêm vào cuối trang"  # a line the OCR never read: laid on the last line
    machine_bytes = machine_pdf.read_bytes()
    app = create_app(settings, WebSettings())
    with TestClient(app) as client:
        _login(client, "arch")
        _save(client, doc_id, {"page_1": corrected})
        response = client.get(f"/documents/{doc_id}/pdf")
        assert response.status_code == 200
    with TestClient(app) as client:
        _login(client, "staff0")
        staff_status = client.get(f"/documents/{doc_id}/pdf").status_code
    return Retexted(root=root, doc_id=doc_id, machine_pdf=machine_pdf, machine_bytes=machine_bytes,
                    replaced=replaced, downloaded=response.content, staff_status=staff_status)


def test_the_downloaded_pdfa_carries_the_corrected_page_text(retexted: Retexted, tmp_path: Path) -> None:
    pdf = tmp_path / "dl.pdf"
    pdf.write_bytes(retexted.downloaded)
    page1 = _page_text(pdf, 1)
    for new, old in zip(NEW, retexted.replaced, strict=True):
        assert new in page1
        assert old not in page1.split(), old
    assert "dòng thêm vào cuối trang" in page1
    before = _page_text(retexted.machine_pdf, 1)
    assert all(old in before.split() for old in retexted.replaced)  # the machine reading had them
    assert _page_text(pdf, 2) == _page_text(retexted.machine_pdf, 2)
    assert retexted.staff_status == 200  # an open document: a reader without clearance downloads it too


def test_only_the_text_layer_of_page_1_changes_and_pdfa_stays_declared(retexted: Retexted, tmp_path: Path) -> None:
    pdf = tmp_path / "dl.pdf"
    pdf.write_bytes(retexted.downloaded)
    assert file_claims_pdfa(pdf)["conformance"] == "PDF/A-2b"
    with pikepdf.open(pdf) as new, pikepdf.open(retexted.machine_pdf) as old:
        assert len(new.pages) == len(old.pages) == 2
        # page 2: every content stream and image byte-identical
        assert [s.read_bytes() for s in new.pages[1].obj.Contents] \
            == [s.read_bytes() for s in old.pages[1].obj.Contents]
        for n in (0, 1):
            (new_image,) = new.pages[n].images.values()
            (old_image,) = old.pages[n].images.values()
            assert new_image.read_raw_bytes() == old_image.read_raw_bytes()
        # page 1: the image drawing kept, the text layer replaced, the same (tesseract's) font, no new one
        assert new.pages[0].obj.Contents[0].read_bytes() == old.pages[0].obj.Contents[0].read_bytes()
        assert new.pages[0].obj.Contents[-1].read_bytes() != old.pages[0].obj.Contents[-1].read_bytes()
        assert list(new.pages[0].Resources.Font.keys()) == list(old.pages[0].Resources.Font.keys())
        assert str(new.pages[0].Resources.Font[next(iter(new.pages[0].Resources.Font.keys()))].BaseFont) \
            == "/GlyphLessFont"
        assert str(new.open_metadata()["pdfaid:part"]) == "2"
        assert len(new.Root.OutputIntents) == 1


def test_the_machine_pdfa_stays_and_is_named_in_provenance(
    retexted: Retexted, capsys: pytest.CaptureFixture[str]
) -> None:
    assert retexted.machine_pdf.read_bytes() == retexted.machine_bytes  # never overwritten
    capsys.readouterr()
    assert main(["show", retexted.doc_id, "--archive", str(retexted.root), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    served = Path(str(shown["files"]["pdfa"]))
    assert served.read_bytes() == retexted.downloaded and "/corrected/000001/" in served.as_posix()
    prov = shown["provenance"]["pdfa_corrected"]
    assert prov["machine_key"] == retexted.machine_pdf.name and prov["correction"] == 1 and prov["pages"] == [1]
    record = json.loads((retexted.root / "objects" / pdfa_record_key(retexted.doc_id, 1)).read_text("utf-8"))
    assert record["key"] == prov["key"] and record["machine_sha256"] == prov["machine_sha256"]


def test_verify_checks_the_regenerated_pdfa(retexted: Retexted, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--archive", str(retexted.root)]) == 0  # not an unexpected object
    backup = tmp_path / "backup"
    assert main(["backup", "--archive", str(retexted.root), "--to", str(backup)]) == 0
    key = pdfa_record_key(retexted.doc_id, 1)
    assert (backup / "objects" / key).read_bytes() == (retexted.root / "objects" / key).read_bytes()
    assert main(["verify", "--store", str(backup), "--archive", str(retexted.root)]) == 0  # the file was copied too
    root = tmp_path / "archive"
    shutil.copytree(retexted.root, root, ignore=shutil.ignore_patterns("work"))
    record = json.loads((root / "objects" / pdfa_record_key(retexted.doc_id, 1)).read_text("utf-8"))
    target = root / "objects" / "documents" / retexted.doc_id / record["key"]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["verify", "--archive", str(root), "--json"]) != 0
    assert record["key"] in capsys.readouterr().out


def test_the_access_policy_gates_the_corrected_pdfa(retexted: Retexted, tmp_path: Path) -> None:
    root = tmp_path / "archive"
    shutil.copytree(retexted.root, root, ignore=shutil.ignore_patterns("work"))
    app = create_app(Settings(archive=root), WebSettings())
    with TestClient(app) as client:
        _login(client, "arch")
        _save(client, retexted.doc_id, {"md_classification": "Mật"})
        assert client.get(f"/documents/{retexted.doc_id}/pdf").content == retexted.downloaded
    with TestClient(app) as client:
        _login(client, "staff0")
        hidden = client.get(f"/documents/{retexted.doc_id}/pdf")
        missing = client.get("/documents/0000000000000000dead/pdf")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.content.replace(retexted.doc_id.encode(), b"X") \
            == missing.content.replace(b"0000000000000000dead", b"X")


def test_a_failed_regeneration_keeps_the_correction_and_is_redone(
    retexted: Retexted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "archive"
    shutil.copytree(retexted.root, root, ignore=shutil.ignore_patterns("work"))
    settings = Settings(archive=root)

    def broken(*_args: object) -> None:
        raise OSError("đĩa đầy")

    with monkeypatch.context() as patch:
        patch.setattr(pdf_text, "regenerate", broken)
        with TestClient(create_app(settings, WebSettings())) as client:
            _login(client, "arch")
            _save(client, retexted.doc_id, {"page_2": "trang hai đã sửa QUAGGAKIEMTRA"})
            assert client.get(f"/documents/{retexted.doc_id}/pdf").content == retexted.downloaded  # the last one
    capsys.readouterr()
    assert main(["show", retexted.doc_id, "--archive", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pages"][1]["text"] == "trang hai đã sửa QUAGGAKIEMTRA"
    assert correction_index.reapply(settings, build_object_store(settings)) >= 1  # next start / re-apply
    assert (root / "objects" / pdfa_record_key(retexted.doc_id, 2)).is_file()
    with TestClient(create_app(settings, WebSettings())) as client:
        _login(client, "arch")
        pdf = tmp_path / "dl.pdf"
        pdf.write_bytes(client.get(f"/documents/{retexted.doc_id}/pdf").content)
    assert "QUAGGAKIEMTRA" in _page_text(pdf, 2) and NEW[0] in _page_text(pdf, 1)
    assert main(["verify", "--archive", str(root)]) == 0


def test_words_are_laid_over_the_hocr_and_non_bmp_is_left_out() -> None:
    words = [OcrWord(text=t, box=(100 + 200 * i, 100, 280 + 200 * i, 140), confidence=0.9, line=0)
             for i, t in enumerate(["một", "hai", "ba"])]
    same = place_words(words, "mot hai ba", (1000, 1000))
    assert [(w.text, w.box) for w in same] == [("mot", words[0].box), ("hai", words[1].box), ("ba", words[2].box)]
    spread = place_words(words, "một hai", (1000, 1000))
    assert [w.text for w in spread] == ["một", "hai"]
    assert spread[0].box[0] == 100 and spread[-1].box[2] <= 680 and all(w.box[1:4:2] == (100, 140) for w in spread)
    layer = text_layer([PlacedWord("a\U0001d518b", (0, 0, 100, 40))], (1000, 1000), (720.0, 720.0), "/f-0-0")
    assert layer.skipped == 1 and b"<006100620020> Tj" in layer.content and b"3 Tr" in layer.content


def test_the_export_package_carries_the_corrected_pdfa(retexted: Retexted, tmp_path: Path) -> None:
    dest = tmp_path / "aip"
    assert main(["export", "--package", str(dest), "--archive", str(retexted.root), "--query", NEW[0].lower()]) == 0
    pdfs = [p.read_bytes() for p in (dest / retexted.doc_id).rglob("*.pdf")]
    assert pdfs == [retexted.downloaded]
