"""State documents (Nghị định 30/2020): organ composed by rule, ký hiệu repair, signature blocks, recipients,
công văn subjects. Pages are invented, with the OCR noise real scans show."""

from __future__ import annotations

from pipeline.metadata import extract_metadata
from pipeline.metadata.notation import repair_notation
from pipeline.metadata.organ import compose_state_organ, name_case
from schemas.ocr import OcrPage, OcrWord

WIDTH, HEIGHT, CHAR_W, GAP, H = 2480, 3508, 24, 14, 44
Row = tuple[int, int, str]  # y, x0, text (one engine line)


def page(rows: list[Row], number: int = 1, conf: float = 0.93) -> OcrPage:
    words: list[OcrWord] = []
    for line_no, (y, x0, text) in enumerate(rows):
        x = x0
        for word in text.split():
            w = len(word) * CHAR_W
            words.append(OcrWord(text=word, box=(x, y, x + w, y + H), confidence=conf, line=line_no))
            x += w + GAP
    text = "\n".join(t for _, _, t in rows)
    return OcrPage(number=number, text=text, words=words, confidence=conf, width=WIDTH, height=HEIGHT, dpi=300)


HEADER: list[Row] = [
    (200, 300, "UBND THÀNH PHÓ ĐÀ NẴNG"),
    (200, 1300, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"),
    (270, 330, "SỞ GIÁO DỤC VÀ ĐÀO TẠO"),
    (280, 1400, "Độc lập - Tự do - Hạnh phúc"),
    (360, 400, "Số: 1595/SGDĐT-CTrTT"),
    (370, 1310, "Đà Nẵng, ngày 31 tháng 5 năm 2019"),
]


def test_organ_names_are_composed_by_rule() -> None:
    assert compose_state_organ(["UBND THÀNH PHÓ ĐÀ NẴNG", "SỞ GIÁO DỤC VÀ ĐÀO TẠO"]) == (
        "Sở Giáo dục và Đào tạo thành phố Đà Nẵng")
    assert compose_state_organ(["ỦY BAN NHÂN DÂN", "TỈNH QUẢNG NAM"]) == "Ủy ban nhân dân tỉnh Quảng Nam"
    assert compose_state_organ(["BỘ CÔNG THƯƠNG", "TRƯỜNG ĐẠI HỌC ĐIỆN LỰC"]) == "Trường Đại học Điện lực"
    assert compose_state_organ(["CÔNG AN TP HUẾ", "PHÒNG CẢNH SÁT GIAO THÔNG"]) == (
        "Phòng Cảnh sát giao thông Công an TP Huế")
    assert compose_state_organ(["UBND HUYỆN BA VÌ", "PHÒNG TÀI CHÍNH - KẾ HOẠCH"]) == (
        "Phòng Tài chính - Kế hoạch huyện Ba Vì")
    assert compose_state_organ(["THÀNH ỦY ĐÀ NẴNG", "VĂN PHÒNG"]) is None  # a Party header: its own rule
    assert name_case("SỞ LAO ĐỘNG - THƯƠNG BINH VÀ XÃ HỘI") == "Sở Lao động - Thương binh và Xã hội"


def test_notation_misreads_are_repaired_by_rule() -> None:
    assert repair_notation("QĐĐ/QU", ["ĐẢNG BỘ THÀNH PHỐ ĐÀ NẴNG", "QUẬN ỦY HẢI CHÂU"]) == ("QĐ/QU", True)
    assert repair_notation("HD/EU", ["ĐẢNG BỘ TỈNH QUẢNG NAM", "TỈNH ỦY"]) == ("HD/TU", True)
    assert repair_notation("TB-ĐHĐIL", ["BỘ CÔNG THƯƠNG", "TRƯỜNG ĐẠI HỌC ĐIỆN LỰC"]) == ("TB-ĐHĐL", True)
    for good, lines in (("UBND-SGDĐT", ["ỦY BAN NHÂN DÂN", "THÀNH PHỐ ĐÀ NẴNG"]),
                        ("CV-PA83", ["CÔNG AN TP ĐÀ NẴNG", "PHÒNG AN NINH CHÍNH TRỊ NỘI BỘ"]),
                        ("NQ/TW", ["BAN CHẤP HÀNH TRUNG ƯƠNG"]), ("BC/BTCTU", ["THÀNH ỦY ĐÀ NẴNG", "BAN TỔ CHỨC"])):
        assert repair_notation(good, lines) == (good, False)


def test_cong_van_header_subject_beside_a_routing_note_and_organ() -> None:
    rows = [*HEADER,
            (440, 370, "V/v bảo đảm an toàn giao thông 1. Cô Hương gửi văn bản đến các đơn vị"),
            (490, 442, "trong dịp nghỉ hè và kỳ thi 2. Phòng CTSV phối hợp với Đoàn"),
            (540, 550, "năm 2019"),
            (700, 500, "Kính gửi: Các trường trung học phổ thông"),
            (800, 400, "Thực hiện chỉ đạo của Ủy ban nhân dân thành phố, Sở yêu cầu như sau.")]
    md = extract_metadata([page(rows)])
    assert md.organ_name == "Sở Giáo dục và Đào tạo thành phố Đà Nẵng"
    assert md.subject == "V/v bảo đảm an toàn giao thông trong dịp nghỉ hè và kỳ thi năm 2019"
    assert md.type_name == "Công văn" and md.code_notation == "SGDĐT-CTrTT" and md.code_number == "1595"


def _footer(rows: list[Row]) -> OcrPage:
    return page([*HEADER, (500, 370, "V/v tổ chức thi"), (800, 400, "Sở yêu cầu các đơn vị thực hiện./."), *rows])


def test_state_signature_blocks() -> None:
    md = extract_metadata([_footer([
        (1000, 1450, "TL. HIỆU TRƯỞNG"), (1000, 300, "Nơi nhận:"),
        (1060, 1250, "KT. TRƯỞNG PHÒNG QL ĐÀO TẠO"), (1060, 300, "- Hiệu trưởng (để b/c);"),
        (1120, 1400, "PHÓ TRƯỞNG PHÒNG"), (1120, 300, "- Lưu: VT, QL Đào tạo."),
        (1400, 1400, "TS. Vũ Thị Thu Nga")])])
    assert (md.signer, md.signer_title) == ("Vũ Thị Thu Nga", "PHÓ TRƯỞNG PHÒNG")
    assert md.authority == "TL. HIỆU TRƯỞNG KT. TRƯỞNG PHÒNG QL ĐÀO TẠO"
    deputy = extract_metadata([_footer([
        (1000, 1500, "KT. GIÁM ĐÓC"), (1000, 300, "Nơi nhận:"), (1060, 1600, "GIÁM ĐÓC"),
        (1060, 300, "- Như trên;"), (1400, 1400, "Trần Minh Thành")])])
    assert deputy.signer_title == "PHÓ GIÁM ĐỐC"  # "PHÓ" lost under the seal: K/T signs as a deputy
    police = extract_metadata([_footer([
        (1000, 300, "Nơi nhận:"), (1000, 1210, "PHÓ TRƯỞNG PHÒNG PHỤ TRÁCH"),
        (1060, 300, "- Như trên;"), (1400, 1400, "Trung tá Ngô Văn Công")])])
    assert (police.signer, police.signer_title) == ("Ngô Văn Công", "PHÓ TRƯỞNG PHÒNG PHỤ TRÁCH")
    unit = extract_metadata([_footer([
        (1000, 1450, "TL. HIỆU TRƯỞNG"), (1000, 300, "Nơi nhận:"), (1060, 1350, "“TRƯỞNG PHÒNG CTSV"),
        (1060, 300, "- Như trên;"), (1400, 1400, "E» Phùng Thị Bình")])])
    assert (unit.signer, unit.signer_title) == ("Phùng Thị Bình", "TRƯỞNG PHÒNG CTSV")
    acting = extract_metadata([_footer([
        (1000, 300, "Nơi nhận:"), (1000, 1500, "Q. GIÁM ĐỐC"), (1060, 300, "- Như trên;"),
        (1400, 1400, "Đỗ Văn Hải")])])
    assert (acting.signer, acting.signer_title) == ("Đỗ Văn Hải", "Q. GIÁM ĐỐC")


def test_state_recipients_block() -> None:
    first = page([*HEADER, (500, 370, "V/v tổ chức thi"),
                  (700, 400, "Nơi nhận hồ sơ: số 126 phố Xốm, phường Phú Lương, Hà Nội."),
                  (900, 400, "Đề nghị các đơn vị thực hiện./."),
                  (1000, 300, "ơi nhận:"), (1000, 1500, "GIÁM ĐỐC"),
                  (1060, 300, "~- Như trên;"),
                  (1120, 300, "- Văn phòng UBNDTP: CVP,"),
                  (1180, 320, "PCVP PVSơn, Phòng KGVX;"),
                  (1240, 300, "- Đưa TT trang sinhvien.epu.vn;"),
                  (1300, 300, "- Sở: Y tế, TT&TT;"),
                  (1360, 300, "- Lưu: VT, CTrTT (Chương)."),
                  (1500, 1400, "Lê Thị Bích Thuận")])
    annex = page([(200, 1100, "PHỤ LỤC 1"), (400, 1100, "BIÊN BẢN"), (1000, 300, "Nơi nhận:"),
                  (1060, 300, "- Như trên;"), (1120, 300, "- Lưu: ..........")], number=2)
    md = extract_metadata([first, annex])
    assert md.recipients == ["Như trên", "Văn phòng UBNDTP: CVP, PCVP PVSơn, Phòng KGVX",
                             "Đưa TT trang sinhvien.epu.vn", "Sở: Y tế, TT&TT", "Lưu: VT, CTrTT (Chương)"]
    assert md.signer == "Lê Thị Bích Thuận" and md.signer_title == "GIÁM ĐỐC"
