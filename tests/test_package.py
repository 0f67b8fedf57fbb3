"""``sohoa export --package``: E-ARK CSIP/AIP packages (METS, EAD3, PREMIS 3, manifest-sha256.txt) per document
and per hồ sơ, built from a real directory object store holding synthetic documents (no OCR)."""

from __future__ import annotations

import hashlib
import json
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import pytest

import aip
from flows.package import export_packages, fixity_events_from_history, load_manifests
from schemas.document import DocumentManifest, PageRecord, StoredFile
from schemas.metadata import DocumentMetadata
from storage.layout import MANIFEST_SEAL, manifest_key, prefix_of
from storage.objects import DirectoryObjectStore

METS = "{http://www.loc.gov/METS/}"
XLINK = "{http://www.w3.org/1999/xlink}"
CSIP = "{https://DILCIS.eu/XML/METS/CSIPExtensionMETS}"
PREMIS = "{http://www.loc.gov/premis/v3}"
EAD = "{http://ead3.archivists.org/schema/}"

FILE_CODE = "H49.64.33.2001.160"
SUBJECT = "Về công tác văn thư, lưu trữ của Đảng bộ thành phố Đà Nẵng"
SUBJECT_NFD = unicodedata.normalize("NFD", SUBJECT)
A, B, C = "a1" * 10, "b2" * 10, "c3" * 10
SCAN_C = unicodedata.normalize("NFD", "Kế hoạch số 7.pdf")  # a name as macOS writes it: kept exactly
NOW = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
PROVENANCE: dict[str, object] = {
    "sohoa": "1.2.3",
    "ocr": {"engine": "tesseract", "version": "5.3.4", "leptonica": "1.84.1",
            "models": {"vie": {"file": "/usr/share/tessdata/vie.traineddata", "sha256": "ab" * 32, "bytes": 10}},
            "parameters": {"lang": "vie", "oem": 1, "psm": 3}},
    "preprocessing": {"opencv": "4.9.0", "numpy": "1.26.4", "pages": [{"deskew": 0.4}]},
    "pdfa": {"pikepdf": "8.15.1", "qpdf": "11.9.0", "conformance": "PDF/A-2b"},
    "python": "3.11.7",
}


def _put_document(store: DirectoryObjectStore, doc_id: str, *, originals: dict[str, bytes], pages: int,
                  file_code: str | None = None, sequence: int | None = None, reasons: list[str] | None = None,
                  **md: object) -> DocumentManifest:
    pdf_key = f"{file_code}.{sequence}.pdf" if file_code and sequence else "document.pdf"
    items = [(f"original/{name}", data, "original", "application/octet-stream") for name, data in originals.items()]
    items.append((pdf_key, b"%PDF-1.7\n% " + doc_id.encode() + b"\n%%EOF\n", "pdfa", "application/pdf"))
    for n in range(1, pages + 1):
        items.append((f"pages/{n:04d}.txt", f"Trang {n}: NGHỊ QUYẾT {doc_id}".encode(), "text",
                      "text/plain; charset=utf-8"))
        items.append((f"pages/{n:04d}.hocr", f"<html><p>{n}</p></html>".encode(), "hocr", "text/vnd.hocr+html"))
    files = [StoredFile(key=key, sha256=store.put_bytes(prefix_of(doc_id) + key, data), bytes=len(data), role=role,
                        media_type=media) for key, data, role, media in items]  # type: ignore[arg-type]
    manifest = DocumentManifest(
        id=doc_id, sha256=doc_id * 3 + "abcd", source=f"lo-1/{next(iter(originals)).split('/')[0]}", batch="lo-1",
        status="needs_review" if reasons else "done", review_reasons=reasons or [],
        created_at="2026-01-02T03:04:05+00:00",
        pages=[PageRecord(number=n, text=f"Trang {n}", confidence=0.93, width=100, height=140, dpi=300, words=3)
               for n in range(1, pages + 1)],
        metadata=DocumentMetadata(page_count=pages, **md),  # type: ignore[arg-type]
        files=files, provenance=PROVENANCE, file_code=file_code, sequence=sequence,
    )
    body = json.dumps(manifest.model_dump(mode="json"), ensure_ascii=False, indent=1).encode("utf-8")
    store.put_bytes(prefix_of(doc_id) + MANIFEST_SEAL, hashlib.sha256(body).hexdigest().encode("ascii"))
    store.put_bytes(manifest_key(doc_id), body)
    return manifest


@dataclass
class Archive:
    store: DirectoryObjectStore
    docs: dict[str, DocumentManifest]


@pytest.fixture()
def archive(tmp_path: Path) -> Archive:
    store = DirectoryObjectStore(tmp_path / "objects")
    docs = {
        A: _put_document(store, A, originals={"nghi-quyet.tif": b"II*\x00scan A" * 50}, pages=2,
                         file_code=FILE_CODE, sequence=1, code_number="15", code_notation="NQ/TU",
                         type_name="Nghị quyết", type_code="01", issued_date="2020-02-01",
                         organ_name="Thành ủy Đà Nẵng", subject=SUBJECT_NFD, signer="Nguyễn Văn Hùng",
                         signer_title="Bí thư", recipients=["Các quận ủy", "Lưu VPTU"]),
        B: _put_document(store, B, originals={"bao-cao/p1.tif": b"II*\x00B1" * 40, "bao-cao/p2.tif": b"II*\x00B2" * 40},
                         pages=2, file_code=FILE_CODE, sequence=2, code_number="115", code_notation="BC/TU",
                         type_name="Báo cáo", type_code="14", issued_date="2020-03-05",
                         organ_name="Thành ủy Đà Nẵng", subject="Kết quả đào tạo cán bộ năm 2019",
                         classification="Mật", reasons=["thiếu tên cơ quan"]),
        C: _put_document(store, C, originals={SCAN_C: b"%PDF-1.4 original C"}, pages=1, code_number="7",
                         code_notation="KH/TU", type_name="Kế hoạch", type_code="10", subject="Hòa giải ở cơ sở"),
    }
    return Archive(store, docs)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_package(pkg: Path) -> tuple[ET.Element, ET.Element, ET.Element]:
    """Checksums, METS fileSec and metadata references agree with the files; the XML parses. Returns the roots."""
    listed = aip.parse_checksum_manifest((pkg / aip.CHECKSUM_MANIFEST).read_bytes())
    present = {p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file()}
    assert set(listed) == present - {aip.CHECKSUM_MANIFEST}
    for rel, sha in listed.items():
        assert _sha(pkg / rel) == sha, rel

    mets = ET.parse(pkg / "METS.xml").getroot()
    assert mets.tag == f"{METS}mets"
    assert mets.get("PROFILE") == aip.CSIP_PROFILE and mets.get("OBJID") and mets.get("TYPE")
    hdr = mets.find(f"{METS}metsHdr")
    assert hdr is not None and hdr.get(f"{CSIP}OAISPACKAGETYPE") == "AIP" and hdr.get("CREATEDATE")
    agent = hdr.find(f"{METS}agent")
    assert agent is not None and agent.get("ROLE") == "CREATOR" and agent.get("OTHERTYPE") == "SOFTWARE"
    assert agent.findtext(f"{METS}name") == "sohoa"
    note = agent.find(f"{METS}note")
    assert note is not None and note.get(f"{CSIP}NOTETYPE") == "SOFTWARE VERSION" and note.text

    in_filesec = set()
    for f in mets.iter(f"{METS}file"):
        floc = f.find(f"{METS}FLocat")
        assert floc is not None and floc.get("LOCTYPE") == "URL" and floc.get(f"{XLINK}type") == "simple"
        rel = unquote(floc.get(f"{XLINK}href", ""))
        in_filesec.add(rel)
        assert f.get("CHECKSUMTYPE") == "SHA-256" and f.get("MIMETYPE") and f.get("USE") and f.get("CREATED")
        assert f.get("CHECKSUM") == _sha(pkg / rel) == listed[rel]
        assert int(f.get("SIZE", "-1")) == (pkg / rel).stat().st_size
    assert in_filesec == {p for p in present if p.startswith("representations/")}
    refs = {unquote(r.get(f"{XLINK}href", "")): r for r in mets.iter(f"{METS}mdRef")}
    assert {aip.EAD_PATH, aip.PREMIS_PATH} <= set(refs)
    assert set(refs) == {p for p in present if p.startswith("metadata/")}
    for rel, ref in refs.items():
        assert ref.get("CHECKSUM") == _sha(pkg / rel) and int(ref.get("SIZE", "-1")) == (pkg / rel).stat().st_size
    assert refs[aip.EAD_PATH].get("MDTYPE") == "EAD" and refs[aip.PREMIS_PATH].get("MDTYPE") == "PREMIS"
    csip_maps = [m for m in mets.iter(f"{METS}structMap") if m.get("LABEL") == "CSIP"]
    assert len(csip_maps) == 1 and csip_maps[0].get("TYPE") == "PHYSICAL"
    labels = {d.get("LABEL") for d in csip_maps[0].iter(f"{METS}div")}
    assert {"Metadata", "Representations"} <= labels

    ead = ET.parse(pkg / aip.EAD_PATH).getroot()
    premis = ET.parse(pkg / aip.PREMIS_PATH).getroot()
    assert ead.tag == f"{EAD}ead" and premis.tag == f"{PREMIS}premis" and premis.get("version") == "3.0"
    return mets, ead, premis


def _event_types(premis: ET.Element) -> list[str]:
    return [e.findtext(f"{PREMIS}eventType") or "" for e in premis.iter(f"{PREMIS}event")]


def test_export_per_document(archive: Archive, tmp_path: Path) -> None:
    checked = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    report = export_packages(archive.store, archive.docs.values(), tmp_path / "out", now=NOW,
                             fixity_events={A: [(checked, "pass", "kiểm tra định kỳ")]}, version="9.9.9")
    assert report.ok, report.problems
    assert sorted(p.id for p in report.packages) == [A, B, C]
    assert {p.status for p in report.packages} == {"written"}
    assert report.documents == 3 and report.files > 0 and report.bytes > 0

    pkg = tmp_path / "out" / A
    mets, ead, premis = _check_package(pkg)
    assert mets.get("OBJID") == A and mets.get("LABEL") == SUBJECT  # NFC
    # the PDF/A under its TT 05 name, pages and the original byte for byte
    assert (pkg / f"representations/rep1/data/{FILE_CODE}.1.pdf").is_file()
    assert (pkg / "representations/rep1/data/pages/0001.txt").read_text(encoding="utf-8").startswith("Trang 1")
    original = pkg / "representations/original/data/nghi-quyet.tif"
    assert original.read_bytes() == archive.store.get_bytes(prefix_of(A) + "original/nghi-quyet.tif")
    assert (pkg / aip.metadata_path_of_manifest(A)).read_bytes() == archive.store.get_bytes(manifest_key(A))

    # EAD: an item with its TT 05 fields, Vietnamese in NFC
    raw = (pkg / aip.EAD_PATH).read_bytes()
    assert SUBJECT.encode("utf-8") in raw and SUBJECT_NFD.encode("utf-8") not in raw
    archdesc = ead.find(f"{EAD}archdesc")
    assert archdesc is not None and archdesc.get("level") == "item"
    did = archdesc.find(f"{EAD}did")
    assert did is not None
    assert did.findtext(f"{EAD}unittitle") == SUBJECT
    assert "15-NQ/TU" in [u.text for u in did.iter(f"{EAD}unitid")]
    unitdate = did.find(f"{EAD}unitdate")
    assert unitdate is not None and unitdate.get("normal") == "2020-02-01" and unitdate.text == "01/02/2020"
    assert did.findtext(f"{EAD}origination/{EAD}corpname/{EAD}part") == "Thành ủy Đà Nẵng"
    assert did.findtext(f"{EAD}physdescstructured/{EAD}quantity") == "2"
    language = did.find(f"{EAD}langmaterial/{EAD}language")
    assert language is not None and language.get("langcode") == "vie"
    genre = archdesc.find(f"{EAD}controlaccess/{EAD}genreform")
    assert genre is not None and genre.get("identifier") == "01" and genre.findtext(f"{EAD}part") == "Nghị quyết"
    assert archdesc.findtext(f"{EAD}accessrestrict/{EAD}p") == "01 - Công khai"

    # PREMIS: files with SHA-256 fixity, events, agents
    types = _event_types(premis)
    for expected in ("ingestion", "creation", "metadata extraction", "fixity check", "information package creation"):
        assert expected in types
    fixity = [e for e in premis.iter(f"{PREMIS}event") if e.findtext(f"{PREMIS}eventType") == "fixity check"]
    assert "2026-03-01T02:00:00+00:00" in [e.findtext(f"{PREMIS}eventDateTime") for e in fixity]
    ocr = next(e for e in premis.iter(f"{PREMIS}event") if e.findtext(f"{PREMIS}eventType") == "creation")
    details = " ".join(d.text or "" for d in ocr.iter(f"{PREMIS}eventDetail"))
    assert "tesseract 5.3.4" in details and "ab" * 32 in details and "psm=3" in details
    digests = {o.findtext(f"{PREMIS}objectIdentifier/{PREMIS}objectIdentifierValue"):
               o.findtext(f"{PREMIS}objectCharacteristics/{PREMIS}fixity/{PREMIS}messageDigest")
               for o in premis.iter(f"{PREMIS}object")}
    for rel in (f"representations/rep1/data/{FILE_CODE}.1.pdf", "representations/original/data/nghi-quyet.tif"):
        assert digests[rel] == _sha(pkg / rel)
    agents = {(a.findtext(f"{PREMIS}agentName"), a.findtext(f"{PREMIS}agentVersion"))
              for a in premis.iter(f"{PREMIS}agent")}
    assert {("sohoa", "1.2.3"), ("sohoa", "9.9.9"), ("tesseract", "5.3.4")} <= agents

    # a document without a hồ sơ code keeps its stored PDF name
    _check_package(tmp_path / "out" / C)
    assert (tmp_path / "out" / C / "representations/rep1/data/document.pdf").is_file()
    assert (tmp_path / "out" / C / "representations/original/data" / SCAN_C).read_bytes() == b"%PDF-1.4 original C"
    assert not list((tmp_path / "out").glob(".*"))  # no .part folder left


def test_export_per_file_code(archive: Archive, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = export_packages(archive.store, load_manifests(archive.store), out, now=NOW, by_file_code=True,
                             file_titles={FILE_CODE: "Hồ sơ công tác văn thư năm 2020"})
    assert report.ok, report.problems
    assert {p.id: p.documents for p in report.packages} == {FILE_CODE: [A, B], C: [C]}

    pkg = out / FILE_CODE
    mets, ead, premis = _check_package(pkg)
    assert mets.get("OBJID") == FILE_CODE and mets.get("LABEL") == "Hồ sơ công tác văn thư năm 2020"
    for n, doc_id in ((1, A), (2, B)):
        pdf = pkg / f"representations/rep1/data/{FILE_CODE}.{n}.pdf"
        assert pdf.read_bytes() == archive.store.get_bytes(prefix_of(doc_id) + f"{FILE_CODE}.{n}.pdf")
        assert (pkg / f"representations/rep1/data/pages/{FILE_CODE}.{n}/0002.txt").is_file()
    assert (pkg / f"representations/original/data/{FILE_CODE}.2/bao-cao/p2.tif").read_bytes() == b"II*\x00B2" * 40

    archdesc = ead.find(f"{EAD}archdesc")
    assert archdesc is not None and archdesc.get("level") == "file"
    did = archdesc.find(f"{EAD}did")
    assert did is not None and did.findtext(f"{EAD}unitid") == FILE_CODE
    unitdate = did.find(f"{EAD}unitdate")
    assert unitdate is not None and unitdate.get("normal") == "2020-02-01/2020-03-05"
    assert archdesc.findtext(f"{EAD}accessrestrict/{EAD}p") == "03 - Mật"  # one document is classified
    items = archdesc.findall(f"{EAD}dsc/{EAD}c")
    assert [c.get("level") for c in items] == ["item", "item"]
    assert [c.findtext(f"{EAD}did/{EAD}unittitle") for c in items] == [SUBJECT, "Kết quả đào tạo cán bộ năm 2019"]
    assert items[1].findtext(f"{EAD}processinfo[@localtype='review']/{EAD}p") == "thiếu tên cơ quan"

    logical = next(m for m in mets.iter(f"{METS}structMap") if m.get("TYPE") == "LOGICAL")
    docs = [d for d in logical.iter(f"{METS}div") if d.get("TYPE") == "văn bản"]
    assert [d.get("ORDERLABEL") for d in docs] == [f"{FILE_CODE}.1", f"{FILE_CODE}.2"]
    ingested = [e for e in premis.iter(f"{PREMIS}event") if e.findtext(f"{PREMIS}eventType") == "ingestion"]
    assert len(ingested) == 2


def test_corrupted_object_is_reported_and_no_package_is_written(archive: Archive, tmp_path: Path) -> None:
    stored = Path(archive.store.locate(prefix_of(B) + f"{FILE_CODE}.2.pdf"))
    data = bytearray(stored.read_bytes())
    data[3] ^= 0xFF
    stored.write_bytes(bytes(data))
    out = tmp_path / "out"

    report = export_packages(archive.store, archive.docs.values(), out, now=NOW, by_file_code=True)

    assert not report.ok
    [problem] = report.problems
    assert problem.package == FILE_CODE and problem.document == B
    assert problem.file is not None and problem.file.endswith(f"{FILE_CODE}.2.pdf")
    assert f"{FILE_CODE}.2.pdf" in problem.detail
    assert {p.id: p.status for p in report.packages} == {FILE_CODE: "failed", C: "written"}
    assert not (out / FILE_CODE).exists()
    assert sorted(p.name for p in out.iterdir()) == [C]  # no half-written package, no .part folder


def test_missing_object_and_changed_manifest_are_reported(archive: Archive, tmp_path: Path) -> None:
    archive.store.delete(prefix_of(C) + f"original/{SCAN_C}")
    stale = archive.docs[A].model_copy(update={"review_reasons": ["sửa tay"]})
    report = export_packages(archive.store, [stale, archive.docs[C]], tmp_path / "out", now=NOW)
    details = {p.document: p.detail for p in report.problems}
    assert f"original/{SCAN_C}" in details[C]
    assert "document.json" in details[A]
    assert not [p for p in (tmp_path / "out").iterdir()]


def test_reexport_is_idempotent_and_never_overwrites(archive: Archive, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = export_packages(archive.store, archive.docs.values(), out, now=NOW, by_file_code=True)
    assert first.ok
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    again = export_packages(archive.store, archive.docs.values(), out, now=datetime(2027, 1, 1, tzinfo=UTC),
                            by_file_code=True)
    assert again.ok, again.problems
    assert {p.status for p in again.packages} == {"unchanged"}
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    history = fixity_events_from_history({A: [("2026-04-01T00:00:00+00:00", "pass")]})
    changed = export_packages(archive.store, archive.docs.values(), out, now=NOW, by_file_code=True,
                              fixity_events=history)
    assert {p.id: p.status for p in changed.packages} == {FILE_CODE: "failed", C: "unchanged"}
    assert "không ghi đè" in changed.problems[0].detail
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not list(out.glob(".*"))


def test_repeated_sequence_in_a_file_is_a_problem(archive: Archive, tmp_path: Path) -> None:
    twin = archive.docs[B].model_copy(update={"sequence": 1})
    report = export_packages(archive.store, [archive.docs[A], twin], tmp_path / "out", now=NOW, by_file_code=True)
    assert not report.ok and "số thứ tự" in report.problems[0].detail
    assert not (tmp_path / "out" / FILE_CODE).exists()


def test_xml_is_deterministic_and_names_are_safe(archive: Archive) -> None:
    docs = [archive.docs[A], archive.docs[B]]
    plan = aip.plan_package(docs, file_code=FILE_CODE)
    assert aip.build_ead(plan, created=NOW, software_version="1") == aip.build_ead(plan, created=NOW,
                                                                                    software_version="1")
    assert aip.build_premis(plan, created=NOW, software_version="1") == aip.build_premis(
        aip.plan_package(list(docs), file_code=FILE_CODE), created=NOW, software_version="1")
    assert aip.safe_name("../HS 01/2020:Đà Nẵng") == "HS_01_2020_Đà_Nẵng"
    assert aip.safe_name("..") == "_"
    assert aip.package_id_for("Hồ sơ/01", docs) == "Hồ_sơ_01"
