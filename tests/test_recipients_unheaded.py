"""A recipients block whose ``Nơi nhận:`` heading was lost is still read, from its ``- Lưu: VT`` item; body lists,
lone ``Lưu`` lines and pages without word boxes are not taken for one. Pages are invented."""

from __future__ import annotations

from pipeline.metadata import extract_metadata
from schemas.ocr import OcrPage
from tests.test_metadata_real_rules import HEADER, Row, page

BODY: list[Row] = [
    (440, 370, "V/v nhận bằng tốt nghiệp", 0.95),
    (700, 300, "Nhà trường thông báo thời gian nhận bằng tốt nghiệp của sinh viên như sau:", 0.95),
    (760, 300, "Sinh viên trực tiếp đến nhận bằng và ký tên vào sổ gốc cấp bằng.", 0.95),
]
SIGNATURE: list[Row] = [(900, 1500, "KT. HIỆU TRƯỞNG", 0.93), (960, 1450, "PHÓ HIỆU TRƯỞNG", 0.93),
                        (1300, 1500, "Lê Văn Nam", 0.95)]
BLOCK: list[Row] = [(900, 300, "- Hiệu trưởng (để b/c);", 0.93), (960, 300, "- Phòng KH-TC (để thực hiện);", 0.93),
                    (1020, 300, "- Lưu: VT, QLĐT.", 0.93)]


def _metadata(rows: list[Row]) -> object:
    return extract_metadata([page([*HEADER, *BODY, *rows, *SIGNATURE])])


def test_a_block_without_its_heading_is_read_from_its_luu_item_and_left_for_review() -> None:
    md = extract_metadata([page([*HEADER, *BODY, *BLOCK, *SIGNATURE])])
    assert md.recipients == ["Hiệu trưởng (để b/c)", "Phòng KH-TC (để thực hiện)", "Lưu: VT, QLĐT"]
    evidence = md.evidence["recipients"]
    assert evidence.confidence is not None and evidence.confidence < 0.6  # shown for review
    assert md.signer == "Lê Văn Nam"


def test_the_body_line_above_the_block_stays_out() -> None:
    rows = [(840, 300, "- Các đơn vị tổ chức thực hiện nghiêm túc và báo cáo kết quả về Văn phòng trước ngày 30;",
             0.95), *BLOCK]
    md = extract_metadata([page([*HEADER, *BODY, *rows, *SIGNATURE])])
    assert md.recipients == ["Hiệu trưởng (để b/c)", "Phòng KH-TC (để thực hiện)", "Lưu: VT, QLĐT"]


def test_a_heading_still_wins() -> None:
    rows = [(840, 300, "Nơi nhận:", 0.95), *BLOCK]
    md = extract_metadata([page([*HEADER, *BODY, *rows, *SIGNATURE])])
    assert md.recipients == ["Hiệu trưởng (để b/c)", "Phòng KH-TC (để thực hiện)", "Lưu: VT, QLĐT"]
    evidence = md.evidence["recipients"]
    assert evidence.confidence is not None and evidence.confidence > 0.6


def test_no_block_without_the_luu_item_or_with_it_alone() -> None:
    assert extract_metadata([page([*HEADER, *BODY, *BLOCK[:2], *SIGNATURE])]).recipients == []
    assert extract_metadata([page([*HEADER, *BODY, BLOCK[2], *SIGNATURE])]).recipients == []


def test_a_body_list_far_above_is_not_joined() -> None:
    rows = [(500, 300, "- Tổ chức học tập;", 0.95), *BLOCK[2:]]
    assert extract_metadata([page([*HEADER, *rows, *SIGNATURE])]).recipients == []


def test_pages_without_word_boxes_are_left_alone() -> None:
    boxed = page([*HEADER, *BODY, *BLOCK, *SIGNATURE])
    plain = OcrPage(number=1, text=boxed.text, words=[], confidence=0.93, width=boxed.width, height=boxed.height,
                    dpi=300)
    assert extract_metadata([plain]).recipients == []
