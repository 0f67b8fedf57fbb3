"""Intake of classified documents with real OCR: Tuyệt mật is quarantined (nothing stored, nothing findable) until
an admin approves; by default Mật and Tối mật without a recorded approval are held the same way ("chờ phê duyệt")
and digitised on a re-run once it is recorded; the lenient setting digitises them, flagged and registered as
pending; with approvals every classified document gets one entry in the copy/photo register (sổ quản lý sao,
chụp)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from interfaces.cli import main
from storage.objects import DirectoryObjectStore
from tests.conftest import catalogued
from tests.fixtures import generate_sample as gen

pytestmark = pytest.mark.slow


def _batch(folder: Path, docs: list[gen.Doc]) -> Path:
    for doc in docs:
        gen.save(doc, gen.degrade(doc, gen.render(doc)), folder)
    return folder


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out or "{}")


def _digitise(capsys: pytest.CaptureFixture[str], batch: Path, archive: Path, report: Path) -> dict[str, dict]:
    code = main(["digitise", str(batch), "--archive", str(archive), "--report", str(report), "--quiet"])
    assert code == 0
    return {d["source"]: d for d in json.loads(report.read_text(encoding="utf-8"))["documents"]}


def test_top_secret_is_quarantined_and_secret_is_registered(
    prefect_api: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOHOA_SECRET_WITHOUT_APPROVAL", "review")  # the lenient setting, chosen explicitly
    batch = _batch(tmp_path / "batch", [gen.classified_copy("tm.png", "Tuyệt mật", 7),
                                        gen.classified_copy("mat.png", "Mật", 8)])
    archive, report = tmp_path / "archive", tmp_path / "r.json"
    docs = _digitise(capsys, batch, archive, report)
    top, secret = docs["tm.png"], docs["mat.png"]
    assert top["status"] == "quarantined" and "không số hóa" in top["review_reasons"][0]
    assert top["review_reason_codes"][0] == {"code": "top_secret_held", "params": {"mark": "Tuyệt mật"}}
    assert secret["status"] == "needs_review"
    assert any("chưa có phê duyệt chụp" in r for r in secret["review_reasons"])

    store = DirectoryObjectStore(archive / "objects")
    assert not [k for k in store.list(f"documents/{top['id']}/")]  # nothing of it is stored...
    assert catalogued(archive) == 1  # ...catalogued...
    code, found = _run(capsys, "search", "kinh te bien", "--archive", str(archive), "--json")
    assert code == 0 and [h["id"] for h in found["hits"]] == [secret["id"]]  # ...or findable
    assert main(["show", str(top["id"]), "--archive", str(archive)]) == 6

    _, held = _run(capsys, "register", "--quarantine", "--json", "--archive", str(archive))
    (record,) = held["quarantine"]
    assert record["doc_id"] == top["id"] and record["classification"] == "Tuyệt mật"
    assert "không số hóa" in record["reason"] and record["reason_codes"][0]["code"] == "top_secret_held"
    assert record["code"] == "27-NQ/TU" and "subject" not in record  # a register line, never the content
    _, register = _run(capsys, "register", "--json", "--archive", str(archive))
    (entry,) = register["register"]
    assert (entry["stt"], entry["doc_id"], entry["classification"]) == (1, secret["id"], "Mật")
    assert entry["state"] == "chưa có phê duyệt" and entry["approval_ref"] is None and entry["pages"] == 1

    # a re-run without approval keeps it held and does not read it again
    again = _digitise(capsys, batch, archive, report)
    assert again["tm.png"]["status"] == "quarantined" and again["tm.png"]["skipped"]

    # approvals on the batch: the admin's for Tuyệt mật; the photographing decision for the others
    (batch / "batch.toml").write_text('approval_ref = "125-QĐ/VPTU"\napproved_by = "Nguyễn Văn An"\n'
                                      'top_secret_approval_ref = "07-QĐ/TU"\n', encoding="utf-8")
    approved = _digitise(capsys, batch, archive, report)
    assert approved["tm.png"]["status"] in ("done", "needs_review") and not approved["tm.png"]["skipped"]
    assert approved["mat.png"]["skipped"]  # digitised before: its register entry stays as first written
    _, register = _run(capsys, "register", "--json", "--archive", str(archive))
    entries = {e["doc_id"]: e for e in register["register"]}
    assert entries[top["id"]]["approval_ref"] == "07-QĐ/TU" and entries[top["id"]]["state"] == "đã phê duyệt"
    assert [e["stt"] for e in register["register"]] == [1, 2]
    _, held = _run(capsys, "register", "--quarantine", "--json", "--archive", str(archive))
    assert held["quarantine"][0]["released_at"]

    out = tmp_path / "so-sao-chup.xlsx"
    assert main(["register", "--out", str(out), "--archive", str(archive)]) == 0
    rows = list(load_workbook(out).active.iter_rows(values_only=True))
    assert rows[0][:3] == ("STT", "Thời điểm chụp (UTC)", "Mã văn bản") and "Số quyết định phê duyệt" in rows[0]
    assert len(rows) == 3 and "Tuyệt mật" in rows[2]
    _, verify = _run(capsys, "verify", "--archive", str(archive), "--json")
    assert verify["problems"] == []  # register and quarantine records are part of the archive layout


def test_by_default_secret_documents_wait_for_a_recorded_approval(
    prefect_api: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOHOA_SECRET_WITHOUT_APPROVAL", raising=False)  # the default: the lawful, strict one
    batch = _batch(tmp_path / "batch", [gen.classified_copy("toi-mat.png", "Tối mật", 9)])
    archive, report = tmp_path / "archive", tmp_path / "r.json"
    docs = _digitise(capsys, batch, archive, report)
    held = docs["toi-mat.png"]
    assert held["status"] == "quarantined"
    assert "approval_ref" in held["review_reasons"][0]
    assert held["review_reason_codes"][0]["code"] == "secret_held_without_approval"
    assert catalogued(archive) == 0
    assert not list(DirectoryObjectStore(archive / "objects").list(f"documents/{held['id']}/"))
    _, quarantine = _run(capsys, "register", "--quarantine", "--json", "--archive", str(archive))
    (record,) = quarantine["quarantine"]
    assert record["doc_id"] == held["id"] and record["state"] == "chờ phê duyệt" and "released_at" not in record

    # a decision number alone is not a recorded approval: who approved it is part of it
    (batch / "batch.toml").write_text('approval_ref = "125-QĐ/VPTU"\n', encoding="utf-8")
    assert _digitise(capsys, batch, archive, report)["toi-mat.png"]["status"] == "quarantined"

    (batch / "batch.toml").write_text('approval_ref = "125-QĐ/VPTU"\napproved_by = "Nguyễn Văn An"\n',
                                      encoding="utf-8")
    approved = _digitise(capsys, batch, archive, report)["toi-mat.png"]
    assert approved["status"] in ("done", "needs_review") and not approved["skipped"]
    assert catalogued(archive) == 1
    _, quarantine = _run(capsys, "register", "--quarantine", "--json", "--archive", str(archive))
    assert quarantine["quarantine"][0]["state"] == "đã phê duyệt" and quarantine["quarantine"][0]["released_at"]
    _, register = _run(capsys, "register", "--json", "--archive", str(archive))
    (entry,) = register["register"]
    assert entry["doc_id"] == held["id"] and entry["state"] == "đã phê duyệt" and entry["approval_ref"] == "125-QĐ/VPTU"


def test_a_registry_batch_counts_a_held_document_as_finished(
    prefect_api: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = _batch(tmp_path / "batch", [gen.classified_copy("tm.png", "Tuyệt mật", 7),
                                        gen.classified_copy("mo.png", None, 10)])
    archive = str(tmp_path / "archive")
    capsys.readouterr()
    assert main(["batch", "add", str(batch), "--when", "now", "--archive", archive, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "done" and shown["summary"]["quarantined"] == 1 and shown["summary"]["pending"] == 0
    held = next(d for d in shown["documents"] if d["source"] == "tm.png")
    assert held["status"] == "quarantined" and "không số hóa" in held["error"]
