"""Secrecy marks fail closed (issue 17): hard stamps are never digitised as open documents, decoys are not held.

A fixed sample of the generated hard-stamp set (``tests/fixtures/generate_secrecy.py``): stamps pushed over the
number line and the trích yếu, worn with a broken frame, violet ink, faint, shifted and tilted, on a faint page and
on a low-contrast page, beside decoys (a received stamp and a KHẨN stamp over the number line, a violet THƯỢNG
KHẨN, MẶT TRẬN in the issuing body). Digitised with the real CLI and the real OCR engine; ``make eval-secrecy``
runs the whole set.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.stamp import Candidate, judge, match_reading
from tests.eval import eval_secrecy
from tests.fixtures import generate_secrecy as gen

SAMPLE = ("over_number-2", "over_subject-1", "worn-2", "violet-0", "faint_stamp-1", "off_position-2",
          "faint_page-2", "low_contrast-1", "received_over_number", "khan_over_number", "thuong_khan_violet",
          "mat_tran_organ")


@pytest.mark.slow
def test_hard_stamps_are_never_open_and_decoys_are_not_held(tmp_path: Path) -> None:
    cases = gen.write(tmp_path, set(SAMPLE))
    assert len(cases) == len(SAMPLE)
    eval_secrecy.digitise(tmp_path / "batch", tmp_path / "archive", tmp_path / "report.json")
    got = eval_secrecy.outcomes(tmp_path / "archive", tmp_path / "report.json")
    expected = json.loads((tmp_path / "expected.json").read_text(encoding="utf-8"))
    result = eval_secrecy.score(expected, got)
    total = result["total"]
    assert total.get("missed", 0) == 0, result["failures"]
    assert total.get("under_unflagged", 0) == 0, result["failures"]
    assert total.get("decoy_held", 0) == 0, result["failures"]
    assert total.get("failed", 0) == 0
    # the evidence is in the provenance of the stored documents: a decoy's stamp was read as what it is
    received = got["received_over_number.png"]["stamps"]
    assert received and all(s["kind"] == "other" for s in received)


def _cand() -> Candidate:
    return Candidate((10, 10, 200, 80), "colour", "red", 0.0)


@pytest.mark.parametrize(("reading", "level"), [
    ("TUYỆT MẬT", "Tuyệt mật"), ("[UYỆT mã]", "Tuyệt mật"), ("TỐI MẬT", "Tối mật"), ("|MẠr]", "Mật"),
    ("MẬẠT|", "Mật"), ("TÔI MAT", "Tối mật"),
])
def test_misread_marks_match_their_level(reading: str, level: str) -> None:
    best = match_reading(reading)
    assert best is not None and best[0] == "secrecy" and best[1] == level


@pytest.mark.parametrize("reading", ["KHẨN", "THƯỢNG KHẨN", "HỎA TỐC", "BẢN SAO"])
def test_look_alikes_clear_the_candidate(reading: str) -> None:
    verdict = judge(_cand(), 1, [reading, reading], {"rows": 1})
    assert verdict.kind == "other" and verdict.level is None


def test_unreadable_stamp_is_top_secret_and_flagged() -> None:
    verdict = judge(_cand(), 1, ["IIVI/À Í (", ""], {"rows": 1})
    assert verdict.kind == "unreadable" and verdict.level == "Tuyệt mật" and not verdict.exact


def test_near_miss_is_never_exact_and_wide_stamp_raises_the_level() -> None:
    verdict = judge(_cand(), 1, ["4ẬT|"], {"rows": 1, "width_per_height": 6.4})
    assert verdict.level == "Tuyệt mật" and not verdict.exact
    exact = judge(_cand(), 1, ["MẬT", "4ẬT"], {"rows": 1, "width_per_height": 2.2})
    assert exact.level == "Mật" and exact.exact


COMBINED = ["BẢN SAO MẬT", "MẬT BẢN SAO", "HỎA TỐC MẬT", "THƯỢNG KHẨN MẬT", "KHẨN MẬT", "KHẨN-MẬT", "KHẨN/MẬT",
            "SAO Y MẬT", "DỰ THẢO MẬT", "CÔNG VĂN ĐẾN MẬT", "BẢN SAO-MẬT", "MẬT-BẢN SAO", "KHẨN|MẬT"]


@pytest.mark.parametrize("reading", COMBINED)
def test_secrecy_beside_a_look_alike_is_classified_and_flagged(reading: str) -> None:
    for readings in ([reading], [reading, reading], ["KHẨN", reading]):
        verdict = judge(_cand(), 1, readings, {"rows": 1})
        assert verdict.kind == "secrecy" and verdict.level in ("Mật", "Tối mật", "Tuyệt mật"), readings
        assert not verdict.exact and verdict.confidence < 0.9, readings  # reviewed, never cleared


@pytest.mark.parametrize(("reading", "level"), [
    ("BẢN SAO TỐI MẬT", "Tối mật"), ("KHẨN-TUYỆT MẬT", "Tuyệt mật"), ("HỎA TỐC/TÔI MAT", "Tối mật"),
])
def test_level_beside_a_look_alike_is_the_level_found(reading: str, level: str) -> None:
    verdict = judge(_cand(), 1, [reading], {"rows": 1})
    assert verdict.kind == "secrecy" and verdict.level == level


@pytest.mark.parametrize("reading", ["SAO Y", "DỰ THẢO", "CÔNG VĂN ĐẾN", "BẢN SAO/SAO Y"])
def test_more_look_alikes_clear_the_candidate(reading: str) -> None:
    verdict = judge(_cand(), 1, [reading, reading], {"rows": 1})
    assert verdict.kind == "other" and verdict.level is None
