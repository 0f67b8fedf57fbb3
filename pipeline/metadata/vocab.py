"""Document-format vocabulary: type names and codes, number-symbol abbreviations, marks, titles.

Sources: Hướng dẫn 36-HD/VPTW (Party layout and abbreviations), Nghị định 30/2020/NĐ-CP (state layout and
abbreviations), Thông tư 05/2025/TT-BNV (type codes 01 to 32). Keys compared with ``schemas.text.fold`` are written
folded (lower case, no marks, đ→d).
"""

from __future__ import annotations

from schemas.text import fold

# TT 05/2025 typeName codes. Types without a code (Kết luận, Thông tri, ...) map to OTHER_TYPE_CODE.
TYPE_CODES: dict[str, str] = {
    "Nghị quyết": "01",
    "Quyết định": "02",
    "Chỉ thị": "03",
    "Quy chế": "04",
    "Quy định": "05",
    "Thông cáo": "06",
    "Thông báo": "07",
    "Hướng dẫn": "08",
    "Chương trình": "09",
    "Kế hoạch": "10",
    "Phương án": "11",
    "Đề án": "12",
    "Dự án": "13",
    "Báo cáo": "14",
    "Tờ trình": "15",
    "Giấy ủy quyền": "16",
    "Phiếu gửi": "17",
    "Phiếu chuyển": "18",
    "Phiếu báo": "19",
    "Biên bản": "20",
    "Hợp đồng": "21",
    "Công văn": "22",
    "Công điện": "23",
    "Bản ghi nhớ": "24",
    "Bản thỏa thuận": "25",
    "Giấy mời": "26",
    "Giấy giới thiệu": "27",
    "Giấy nghỉ phép": "28",
    "Thư công": "29",
}
OTHER_TYPE_CODE = "32"

# Type titles printed above the trích yếu (TT 05 names plus Party/state types without a TT 05 code).
TITLE_TYPES: tuple[str, ...] = (
    *TYPE_CODES,
    "Kết luận",
    "Thông tri",
    "Thông tư",
    "Nghị định",
    "Điều lệ",
    "Thông tư liên tịch",
    "Nghị quyết liên tịch",
)


def _squash(text: str) -> str:
    """Folded letters only (no spaces), the key used for fuzzy title matching."""
    return "".join(ch for ch in fold(text) if ch.isalpha())


TITLE_KEYS: dict[str, str] = {_squash(name): name for name in TITLE_TYPES}

# Type abbreviations in number-symbols, as printed (upper-cased). Party: ``15-NQ/TU``; state: ``123/QĐ-UBND``.
ABBREVIATIONS: dict[str, str] = {
    "NQ": "Nghị quyết",
    "QĐ": "Quyết định",
    "QĐI": "Quy định",
    "QYĐ": "Quy định",
    "CT": "Chỉ thị",
    "KL": "Kết luận",
    "QC": "Quy chế",
    "HD": "Hướng dẫn",
    "TB": "Thông báo",
    "BC": "Báo cáo",
    "KH": "Kế hoạch",
    "CTR": "Chương trình",
    "TTR": "Tờ trình",
    "CV": "Công văn",
    "BB": "Biên bản",
    "ĐA": "Đề án",
    "DA": "Dự án",
    "PA": "Phương án",
    "TC": "Thông cáo",
    "HĐ": "Hợp đồng",
    "CĐ": "Công điện",
    "GM": "Giấy mời",
    "GGT": "Giấy giới thiệu",
    "GUQ": "Giấy ủy quyền",
    "GNP": "Giấy nghỉ phép",
    "PG": "Phiếu gửi",
    "PC": "Phiếu chuyển",
    "PB": "Phiếu báo",
    "BGN": "Bản ghi nhớ",
    "BTT": "Bản thỏa thuận",
    "NĐ": "Nghị định",
}
# ``TT`` is a Thông tri in the Party form (``TT/TU``) and a Thông tư in the state form (``TT-BNV``).
PARTY_TT = "Thông tri"
STATE_TT = "Thông tư"

# Secrecy and urgency marks, folded phrase → canonical value, strongest first.
CLASSIFICATION_MARKS: tuple[tuple[str, str], ...] = (
    ("tuyet mat", "Tuyệt mật"),
    ("toi mat", "Tối mật"),
    ("mat", "Mật"),
)
URGENCY_MARKS: tuple[tuple[str, str], ...] = (
    ("hoa toc", "Hỏa tốc"),
    ("thuong khan", "Thượng khẩn"),
    ("khan", "Khẩn"),
)
# Words that turn "mật"/"khẩn" into running text rather than a stamp ("bảo mật", "bí mật", "mật mã", "khẩn trương").
MARK_NEIGHBOURS: frozenset[str] = frozenset(
    {"bao", "bi", "ma", "khau", "nha", "truong", "thiet", "cap", "do", "tai", "lieu", "kho", "tran", "hang", "bang"}
)

# Signing authority prefixes: Party form with a slash, state form with a dot.
AUTHORITY_PREFIXES: dict[str, tuple[str, str]] = {
    "tm": ("T/M", "TM."),
    "kt": ("K/T", "KT."),
    "tl": ("T/L", "TL."),
    "tuq": ("T/UQ", "TUQ."),
}

# Position titles printed above the signer's name.
SIGNER_TITLES: tuple[str, ...] = (
    "BÍ THƯ",
    "PHÓ BÍ THƯ",
    "PHÓ BÍ THƯ THƯỜNG TRỰC",
    "TRƯỞNG BAN",
    "PHÓ TRƯỞNG BAN",
    "PHÓ TRƯỞNG BAN THƯỜNG TRỰC",
    "CHÁNH VĂN PHÒNG",
    "PHÓ CHÁNH VĂN PHÒNG",
    "CHỦ NHIỆM",
    "PHÓ CHỦ NHIỆM",
    "PHÓ CHỦ NHIỆM THƯỜNG TRỰC",
    "CHỦ TỊCH",
    "PHÓ CHỦ TỊCH",
    "PHÓ CHỦ TỊCH THƯỜNG TRỰC",
    "GIÁM ĐỐC",
    "PHÓ GIÁM ĐỐC",
    "TỔNG GIÁM ĐỐC",
    "PHÓ TỔNG GIÁM ĐỐC",
    "BỘ TRƯỞNG",
    "THỨ TRƯỞNG",
    "THỦ TRƯỞNG",
    "THỦ TƯỚNG",
    "PHÓ THỦ TƯỚNG",
    "CỤC TRƯỞNG",
    "PHÓ CỤC TRƯỞNG",
    "TỔNG CỤC TRƯỞNG",
    "VỤ TRƯỞNG",
    "PHÓ VỤ TRƯỞNG",
    "CHÁNH THANH TRA",
    "PHÓ CHÁNH THANH TRA",
    "TRƯỞNG PHÒNG",
    "PHÓ TRƯỞNG PHÒNG",
    "HIỆU TRƯỞNG",
    "PHÓ HIỆU TRƯỞNG",
    "VIỆN TRƯỞNG",
    "PHÓ VIỆN TRƯỞNG",
    "TRƯỞNG ĐOÀN",
    "ỦY VIÊN",
    "THƯỜNG TRỰC",
)
# Academic degrees and titles printed before a signer's name (folded, without the dot): ``TS.``, ``PGS.TS.``.
DEGREES: frozenset[str] = frozenset({"ts", "ths", "pgs", "gs", "bs", "ks", "cn", "ds", "ls", "tskh", "bsck"})
# Ranks of the armed forces and police printed before a signer's name (folded): ``Trung tá Ngô Văn Công``.
RANKS: frozenset[str] = frozenset(
    f"{grade} {level}" for grade in ("dai", "thuong", "trung", "thieu") for level in ("ta", "uy", "tuong")
)
# Collective bodies signed for with T/M.
COLLECTIVE_BODIES: tuple[str, ...] = (
    "BAN THƯỜNG VỤ",
    "BAN CHẤP HÀNH",
    "BAN BÍ THƯ",
    "BỘ CHÍNH TRỊ",
    "ĐẢNG ĐOÀN",
    "BAN CÁN SỰ ĐẢNG",
    "ĐẢNG ỦY",
    "CHI ỦY",
    "BAN THƯỜNG TRỰC",
    "ỦY BAN KIỂM TRA",
    "ỦY BAN NHÂN DÂN",
    "HỘI ĐỒNG NHÂN DÂN",
    "THƯỜNG TRỰC HĐND",
    "CHÍNH PHỦ",
    "ĐOÀN CHỦ TỊCH",
)

# Frequent Vietnamese family names, as written: a hint that a title-case line is the signer's name, and the
# spellings a name's first word is read among when a seal's ink is fused with it (``pipeline.name_match``).
SURNAME_FORMS: tuple[str, ...] = tuple(
    " ".join(
        (
            "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Lương Trương Đinh Lâm Mai",
            "Trịnh Đào Cao Tạ Hà Đoàn Tô Kiều Châu Thái Từ Quách Tăng Lưu La Lại Đàm Tống Khúc Nghiêm Ông Âu",
            "Văn Chu Giang Kim Lục Mạc Phùng Thân Triệu Vương Hứa Diệp Đồng Bạch Lò",
        )
    ).split()
)
SURNAMES: frozenset[str] = frozenset(fold(s) for s in SURNAME_FORMS)

# Common middle and given names, as written: the spellings a name's other words are read among when a seal's
# ink is fused with them (with the family names, which are also middle names: "Nguyễn Hoàng Nam").
GIVEN_NAME_FORMS: tuple[str, ...] = tuple(
    " ".join(
        (
            "An Ân Anh Bá Bảo Bích Bình Cảnh Cầm Châu Chi Chí Chiến Chinh Chính Công Cúc Cường Dân Diễm Diệp Diệu",
            "Dung Dũng Dương Duy Duyên Đại Đạo Đạt Điệp Đình Định Đông Đồng Đức Gia Giang Hà Hải Hạnh Hào Hảo Hằng",
            "Hân Hậu Hiền Hiển Hiệp Hiếu Hòa Hoa Hoài Hoan Hoàn Hoàng Học Hồng Huân Huấn Huệ Hùng Hưng Hương Hường",
            "Hưởng Hữu Huy Huyền Kha Khải Khang Khanh Khánh Khắc Khoa Khôi Kiên Kiệt Kim Lành Lâm Lan Lệ Liêm Liên",
            "Linh Loan Lộc Lợi Long Luân Lực Lương Ly Mai Mạnh Minh My Mỹ Nam Nga Ngân Nghĩa Nghị Ngọc Nguyên Nhân",
            "Nhàn Nhật Nhi Nhung Như Ninh Oanh Phát Phong Phú Phúc Phụng Phước Phương Phượng Quân Quang Quế Quốc Quý",
            "Quyên Quyền Quyết Quỳnh Sang Sâm Sinh Sơn Sỹ Sĩ Tài Tâm Tân Tấn Thạch Thái Thắm Thắng Thanh Thành Thảo",
            "Thế Thiện Thịnh Thọ Thoa Thông Thu Thuận Thương Thúy Thủy Thư Tiến Tín Tình Toàn Trà Trang Trâm Trí",
            "Triều Trinh Trọng Trung Trường Tú Tuấn Tuệ Tùng Tuyên Tuyết Tư Tường Uyên Vân Văn Vi Việt Viết Vinh",
            "Vĩnh Vũ Vương Vượng Vy Xuân Yến Thị",
        )
    ).split()
)

# Party committee words ("THÀNH ỦY", ...) and administrative levels used to compose an organ's name.
COMMITTEE_WORDS: tuple[str, ...] = ("thanh uy", "tinh uy", "huyen uy", "quan uy", "thi uy", "dang uy", "chi uy")
ADMIN_LEVELS: tuple[str, ...] = ("thanh pho", "thi xa", "thi tran", "tinh", "huyen", "quan", "xa", "phuong")
ACRONYMS: frozenset[str] = frozenset({"UBND", "HĐND", "MTTQ", "TW", "TƯ", "CNTT", "ĐBQH", "TP", "TP."})

# Place names as printed in headers and date lines: the provinces and centrally-run cities (before and after the
# 2025 merger) and the districts of Đà Nẵng. OCR often gets one tone mark wrong in them ("Đà Nằng"); a name whose
# folded form matches is written in its canonical spelling (``repair.fix_place_names``).
PLACE_NAMES: tuple[str, ...] = (
    "An Giang", "Bà Rịa", "Vũng Tàu", "Bắc Giang", "Bắc Kạn", "Bạc Liêu", "Bắc Ninh", "Bến Tre", "Bình Định",
    "Bình Dương", "Bình Phước", "Bình Thuận", "Cà Mau", "Cần Thơ", "Cao Bằng", "Đà Nẵng", "Đắk Lắk", "Đắk Nông",
    "Điện Biên", "Đồng Nai", "Đồng Tháp", "Gia Lai", "Hà Giang", "Hà Nam", "Hà Nội", "Hà Tĩnh", "Hải Dương",
    "Hải Phòng", "Hậu Giang", "Hòa Bình", "Hưng Yên", "Khánh Hòa", "Kiên Giang", "Kon Tum", "Lai Châu",
    "Lâm Đồng", "Lạng Sơn", "Lào Cai", "Long An", "Nam Định", "Nghệ An", "Ninh Bình", "Ninh Thuận", "Phú Thọ",
    "Phú Yên", "Quảng Bình", "Quảng Nam", "Quảng Ngãi", "Quảng Ninh", "Quảng Trị", "Sóc Trăng", "Sơn La",
    "Tây Ninh", "Thái Bình", "Thái Nguyên", "Thanh Hóa", "Thừa Thiên Huế", "Tiền Giang", "Trà Vinh",
    "Tuyên Quang", "Vĩnh Long", "Vĩnh Phúc", "Yên Bái", "Hồ Chí Minh",
    "Hải Châu", "Thanh Khê", "Sơn Trà", "Ngũ Hành Sơn", "Liên Chiểu", "Cẩm Lệ", "Hòa Vang", "Hoàng Sa",
)
PLACE_KEYS: dict[str, str] = {fold(name): name for name in PLACE_NAMES}
