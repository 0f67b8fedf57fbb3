"""Review reasons, quarantine causes and failure causes as codes with parameters, and their Vietnamese wording.

Pipeline stages and flows produce ``Reason`` values (a ``ReasonCode`` plus JSON-scalar parameters); the archive
stores them as ``{"code": ..., "params": {...}}`` (``document.json``, the catalog, quarantine records, the batch
registry). Nothing reads a sentence back: code asks ``reason.code`` and ``reason.params``
(``Reason.document_id`` for a reason naming another document).

The Vietnamese wording is made in one place, ``describe``, called only at the edges: the CLI's printing and its
JSON report (``review_reasons`` next to ``review_reason_codes``), the web pages and REST API, and exports (the
register CSV/XLSX, the EAD/PREMIS of packages). ``DocumentResult.review_reasons`` is that rendering too.

Archives written before codes existed hold Vietnamese sentences: ``StoredReason`` reads either form, decoding a
known old sentence into its code (``from_legacy_text``; a decoding is accepted only when ``describe`` gives the
very same sentence back) and keeping any other text as ``LEGACY_TEXT``, shown as it was written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter

ParamValue = str | int | float | list[int] | None


class ReasonCode(StrEnum):
    """Why a document needs review, was held at intake, or failed. Values are stored: never rename one."""

    # review: OCR quality (``pipeline.quality``)
    PAGE_UNREADABLE = "page_unreadable"  # page
    PAGE_LOW_CONFIDENCE = "page_low_confidence"  # page, confidence (0..1)
    PAGE_DOUBTFUL_WORDS = "page_doubtful_words"  # page, share (0..1 of the characters)
    OCR_TIMEOUT = "ocr_timeout"  # page: stored as an image without text
    SEAL_NAMES_MATCHED = "seal_names_matched"  # page: names under a seal read against the name list
    OCR_WARNING = "ocr_warning"  # page, warning: the OCR engine doubted its reading (ocr_models.tools.OcrWarning)
    # review: metadata
    MISSING_CODE = "missing_code"  # số/ký hiệu
    MISSING_ISSUED_DATE = "missing_issued_date"
    MISSING_TYPE_NAME = "missing_type_name"
    FIELD_HANDWRITTEN = "field_handwritten"  # field: the value is a handwritten fill-in, left empty to be entered
    FIELD_LOW_CONFIDENCE = "field_low_confidence"  # field, confidence (0..1): the value was read but not surely
    DUPLICATE_OF = "duplicate_of"  # document_id, source: same số, ký hiệu, loại, ngày and organ
    # review or quarantine: secrecy (``pipeline.quality``, ``pipeline.stamp``, ``pipeline.intake``)
    SECRECY_UNCERTAIN = "secrecy_uncertain"
    SECRECY_STAMP_UNSURE = "secrecy_stamp_unsure"  # page, box, read, level, rule
    SECRET_APPROVAL_PENDING = "secret_approval_pending"  # mark: digitised, register entry awaits an approval
    SECRET_HELD_WITHOUT_APPROVAL = "secret_held_without_approval"  # mark: quarantined, no approval in batch.toml
    TOP_SECRET_HELD = "top_secret_held"  # mark: Tuyệt mật (or an unknown mark) is not digitised
    # failure causes (``DocumentResult.failure``)
    DOCUMENT_REJECTED = "document_rejected"  # detail: the file cannot be digitised (unreadable, a limit, ...)
    STORE_UNAVAILABLE = "store_unavailable"  # source, detail
    NOT_IN_SHARED_STORE = "not_in_shared_store"  # source: a Dask worker elsewhere stored it where this machine cannot
    PROCESSING_ERROR = "processing_error"  # source, error (exception type), detail
    UNKNOWN_FAILURE = "unknown_failure"  # a failed result that gave no cause
    # a sentence stored by a version before codes, not recognised: shown as written
    LEGACY_TEXT = "legacy_text"  # text


class Reason(BaseModel):
    """One reason: a code and its parameters (JSON scalars, or a list of ints for a box)."""

    model_config = ConfigDict(frozen=True)

    code: ReasonCode
    params: dict[str, ParamValue] = Field(default_factory=dict)

    @property
    def document_id(self) -> str | None:
        """The other document a reason names (a possible duplicate), else ``None``."""
        if self.code is not ReasonCode.DUPLICATE_OF:
            return None
        value = self.params.get("document_id")
        return str(value) if value else None

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def reason(code: ReasonCode, **params: ParamValue) -> Reason:
    """``Reason(code=code, params=params)``, shorter at the producing sites."""
    return Reason(code=code, params=params)


def processing_error(source: str, exc: BaseException) -> Reason:
    """The failure cause of a document an unexpected fault stopped (the batch goes on)."""
    return reason(ReasonCode.PROCESSING_ERROR, source=source, error=type(exc).__name__, detail=str(exc))


# ------------------------------------------------------------------ Vietnamese wording (the edges only)

SECRECY_UNCERTAIN_TEXT = "độ mật chưa chắc chắn: cần lưu trữ viên xác nhận"
SEAL_NAMES_TEXT = "tên bị dấu đen che, đã đọc bằng đối chiếu danh sách họ tên: cần soát lại"
OCR_TIMEOUT_TEXT = "nhận dạng chữ quá thời gian cho phép, trang chỉ được lưu dạng ảnh (chưa có lớp chữ)"
OCR_WARNING_TEXT = {  # by ocr_models.tools.OcrWarning value
    "poor_diacritics": "nhiều dấu thanh, dấu phụ bất thường, có thể nhận dạng sai",
    "empty_page": "không tìm thấy chữ trên trang",
    "too_few_characters": "quá ít chữ để xác định hướng trang",
    "image_too_small": "ảnh quá nhỏ để nhận dạng",
    "line_unreadable": "có dòng không nhận dạng được",
}
DUPLICATE_TEXT = "có thể trùng với văn bản "
FIELD_NAMES = {  # metadata fields (``schemas.metadata.DocumentMetadata``) as an archivist names them
    "code_number": "số văn bản",
    "code_notation": "ký hiệu văn bản",
    "type_name": "tên loại văn bản",
    "issued_date": "ngày ban hành",
    "place": "địa danh",
    "organ_name": "cơ quan ban hành",
    "subject": "trích yếu",
    "signer": "người ký",
    "signer_title": "chức vụ người ký",
    "authority": "thẩm quyền ký",
    "classification": "độ mật",
    "urgency": "độ khẩn",
    "recipients": "nơi nhận",
}


def field_name(field: str) -> str:
    """A metadata field's Vietnamese name (the key itself for a field not listed)."""
    return FIELD_NAMES.get(field, field)
STAMP_TEXT = "dấu độ mật"


def _p(r: Reason, name: str) -> str:
    value = r.params.get(name)
    return "" if value is None else str(value)


def _num(r: Reason, name: str) -> float:
    value = r.params.get(name)
    return float(value) if isinstance(value, (int, float)) else 0.0


def _doubtful(r: Reason) -> str:
    share = f"{_num(r, 'share') * 100:.1f}".replace(".", ",")  # Vietnamese decimal comma
    return f"trang {_p(r, 'page')}: {share} % chữ nhận dạng không chắc chắn, cần soát lại"


def _stamp(r: Reason) -> str:
    box = r.params.get("box")
    return (f"{STAMP_TEXT} trang {_p(r, 'page')} vùng {list(box) if isinstance(box, list) else []} "
            f"đọc được «{_p(r, 'read') or '—'}» → {_p(r, 'level')} ({_p(r, 'rule')}): "
            "cần lưu trữ viên xác nhận hoặc hạ mức")


_WORDING: dict[ReasonCode, Callable[[Reason], str]] = {
    ReasonCode.PAGE_UNREADABLE: lambda r: f"trang {_p(r, 'page')}: gần như không đọc được chữ",
    ReasonCode.PAGE_LOW_CONFIDENCE: lambda r: (
        f"trang {_p(r, 'page')}: độ tin cậy OCR thấp ({_num(r, 'confidence'):.0%})"),
    ReasonCode.PAGE_DOUBTFUL_WORDS: _doubtful,
    ReasonCode.OCR_TIMEOUT: lambda r: f"trang {_p(r, 'page')}: {OCR_TIMEOUT_TEXT}",
    ReasonCode.SEAL_NAMES_MATCHED: lambda r: f"trang {_p(r, 'page')}: {SEAL_NAMES_TEXT}",
    ReasonCode.OCR_WARNING: lambda r: (
        f"trang {_p(r, 'page')}: công cụ nhận dạng cảnh báo — "
        f"{OCR_WARNING_TEXT.get(_p(r, 'warning'), _p(r, 'warning'))}: cần soát lại"),
    ReasonCode.MISSING_CODE: lambda r: "thiếu số/ký hiệu",
    ReasonCode.MISSING_ISSUED_DATE: lambda r: "thiếu ngày ban hành",
    ReasonCode.MISSING_TYPE_NAME: lambda r: "thiếu tên loại văn bản",
    ReasonCode.FIELD_HANDWRITTEN: lambda r: f"{field_name(_p(r, 'field'))} viết tay — cần nhập",
    ReasonCode.FIELD_LOW_CONFIDENCE: lambda r: (
        f"{field_name(_p(r, 'field'))} nhận dạng chưa chắc chắn ({_num(r, 'confidence'):.0%}) — cần soát lại"),
    ReasonCode.DUPLICATE_OF: lambda r: f"{DUPLICATE_TEXT}{_p(r, 'document_id')} ({_p(r, 'source')})",
    ReasonCode.SECRECY_UNCERTAIN: lambda r: SECRECY_UNCERTAIN_TEXT,
    ReasonCode.SECRECY_STAMP_UNSURE: _stamp,
    ReasonCode.SECRET_APPROVAL_PENDING: lambda r: (
        f"tài liệu {_p(r, 'mark')} chưa có phê duyệt chụp (sổ quản lý sao, chụp): bổ sung số quyết định phê duyệt"),
    ReasonCode.SECRET_HELD_WITHOUT_APPROVAL: lambda r: (
        f"tài liệu {_p(r, 'mark')} chưa có phê duyệt chụp: ghi số quyết định (approval_ref) và người duyệt "
        "(approved_by) vào batch.toml rồi chạy lại"),
    ReasonCode.TOP_SECRET_HELD: lambda r: (
        f"tài liệu {_p(r, 'mark')}: không số hóa (Hướng dẫn 40-HD/VPTW) — chỉ số hóa khi có phê duyệt của quản trị "
        "(top_secret_approval_ref trong batch.toml)"),
    ReasonCode.DOCUMENT_REJECTED: lambda r: _p(r, "detail"),
    ReasonCode.NOT_IN_SHARED_STORE: lambda r: (
        f"{_p(r, 'source')}: đã số hóa ở máy khác nhưng không có trong kho đối tượng của máy này — các máy Dask phải "
        "dùng chung kho (SOHOA_OBJECT_STORE=s3) và chỉ mục tìm kiếm"),
    ReasonCode.STORE_UNAVAILABLE: lambda r: (
        f"{_p(r, 'source')}: chưa lưu được vào kho ({_p(r, 'detail')}) — chạy lại lô khi kho hoạt động trở lại; "
        "phần đã lưu được giữ nguyên"),
    ReasonCode.PROCESSING_ERROR: lambda r: f"lỗi xử lý {_p(r, 'source')}: {_p(r, 'error')}: {_p(r, 'detail')}",
    ReasonCode.UNKNOWN_FAILURE: lambda r: "lỗi không rõ",
    ReasonCode.LEGACY_TEXT: lambda r: _p(r, "text"),
}


def describe(r: Reason) -> str:
    """The reason in Vietnamese, for a person (CLI, web, exports)."""
    return _WORDING[r.code](r)


def describe_all(reasons: Iterable[Reason]) -> list[str]:
    return [describe(r) for r in reasons]


CODE_LABELS: dict[ReasonCode, str] = {  # a code's name without its parameters: counts by reason (the dashboard)
    ReasonCode.PAGE_UNREADABLE: "trang gần như không đọc được chữ",
    ReasonCode.PAGE_LOW_CONFIDENCE: "trang có độ tin cậy OCR thấp",
    ReasonCode.PAGE_DOUBTFUL_WORDS: "trang nhiều chữ nhận dạng không chắc chắn",
    ReasonCode.OCR_TIMEOUT: "nhận dạng chữ quá thời gian, trang chỉ có ảnh",
    ReasonCode.SEAL_NAMES_MATCHED: "tên bị dấu che, đọc bằng đối chiếu danh sách",
    ReasonCode.OCR_WARNING: "công cụ nhận dạng cảnh báo",
    ReasonCode.MISSING_CODE: "thiếu số/ký hiệu",
    ReasonCode.MISSING_ISSUED_DATE: "thiếu ngày ban hành",
    ReasonCode.MISSING_TYPE_NAME: "thiếu tên loại văn bản",
    ReasonCode.FIELD_HANDWRITTEN: "trường viết tay cần nhập",
    ReasonCode.FIELD_LOW_CONFIDENCE: "trường nhận dạng chưa chắc chắn",
    ReasonCode.DUPLICATE_OF: "có thể trùng với văn bản khác",
    ReasonCode.SECRECY_UNCERTAIN: "độ mật chưa chắc chắn",
    ReasonCode.SECRECY_STAMP_UNSURE: "dấu độ mật đọc chưa chắc chắn",
    ReasonCode.SECRET_APPROVAL_PENDING: "tài liệu mật chưa có phê duyệt chụp",
    ReasonCode.SECRET_HELD_WITHOUT_APPROVAL: "tài liệu mật bị giữ lại: chưa có phê duyệt chụp",
    ReasonCode.TOP_SECRET_HELD: "tài liệu Tuyệt mật không số hóa",
    ReasonCode.DOCUMENT_REJECTED: "tệp không số hóa được",
    ReasonCode.STORE_UNAVAILABLE: "chưa lưu được vào kho",
    ReasonCode.NOT_IN_SHARED_STORE: "không có trong kho dùng chung",
    ReasonCode.PROCESSING_ERROR: "lỗi xử lý",
    ReasonCode.UNKNOWN_FAILURE: "lỗi không rõ",
    ReasonCode.LEGACY_TEXT: "lý do ghi bằng lời (phiên bản cũ)",
}


def code_label(code: ReasonCode | str) -> str:
    """A reason code's Vietnamese name without its parameters (the code itself when it is not one we know)."""
    try:
        return CODE_LABELS[ReasonCode(code)]
    except ValueError:
        return str(code)


def codes_json(reasons: Iterable[Reason]) -> list[dict[str, Any]]:
    """The reasons as stored and as the JSON outputs list them next to their wording."""
    return [r.as_json() for r in reasons]


# ------------------------------------------------------------------ archives written before codes

_PAGE = r"trang (?P<page>\d+): "
_LEGACY: list[tuple[ReasonCode, re.Pattern[str]]] = [
    (code, re.compile(pattern, re.DOTALL)) for code, pattern in (  # a file name may hold a line break
        (ReasonCode.PAGE_UNREADABLE, _PAGE + r"gần như không đọc được chữ"),
        (ReasonCode.PAGE_LOW_CONFIDENCE, _PAGE + r"độ tin cậy OCR thấp \((?P<confidence>\d+)%\)"),
        (ReasonCode.PAGE_DOUBTFUL_WORDS,
         _PAGE + r"(?P<share>\d+(?:,\d+)?) % chữ nhận dạng không chắc chắn, cần soát lại"),
        (ReasonCode.OCR_TIMEOUT, _PAGE + re.escape(OCR_TIMEOUT_TEXT)),
        (ReasonCode.SEAL_NAMES_MATCHED, _PAGE + re.escape(SEAL_NAMES_TEXT)),
        (ReasonCode.MISSING_CODE, r"thiếu số/ký hiệu"),
        (ReasonCode.MISSING_ISSUED_DATE, r"thiếu ngày ban hành"),
        (ReasonCode.MISSING_TYPE_NAME, r"thiếu tên loại văn bản"),
        (ReasonCode.DUPLICATE_OF, re.escape(DUPLICATE_TEXT) + r"(?P<document_id>\S+) \((?P<source>.*)\)"),
        (ReasonCode.SECRECY_UNCERTAIN, re.escape(SECRECY_UNCERTAIN_TEXT)),
        (ReasonCode.SECRECY_STAMP_UNSURE, re.escape(STAMP_TEXT) + r" trang (?P<page>\d+) vùng \[(?P<box>[\d, ]*)\] "
                                          r"đọc được «(?P<read>.*)» → (?P<level>.+?) \((?P<rule>[^()]*)\): "
                                          r"cần lưu trữ viên xác nhận hoặc hạ mức"),
        (ReasonCode.SECRET_APPROVAL_PENDING, r"tài liệu (?P<mark>.+?) chưa có phê duyệt chụp \(sổ quản lý sao, chụp\): "
                                             r"bổ sung số quyết định phê duyệt"),
        (ReasonCode.SECRET_HELD_WITHOUT_APPROVAL, r"tài liệu (?P<mark>.+?) chưa có phê duyệt chụp: ghi số quyết định "
                                                  r"\(approval_ref\) và người duyệt \(approved_by\) vào batch\.toml "
                                                  r"rồi chạy lại"),
        (ReasonCode.TOP_SECRET_HELD, r"tài liệu (?P<mark>.+?): không số hóa \(Hướng dẫn 40-HD/VPTW\) — chỉ số hóa "
                                     r"khi có phê duyệt của quản trị \(top_secret_approval_ref trong batch\.toml\)"),
    )
]


def _legacy_params(code: ReasonCode, found: dict[str, str]) -> dict[str, ParamValue]:
    params: dict[str, ParamValue] = dict(found)
    if "page" in found:
        params["page"] = int(found["page"])
    if code is ReasonCode.PAGE_LOW_CONFIDENCE:
        params["confidence"] = int(found["confidence"]) / 100
    elif code is ReasonCode.PAGE_DOUBTFUL_WORDS:
        params["share"] = round(float(found["share"].replace(",", ".")) / 100, 6)
    elif code is ReasonCode.SECRECY_STAMP_UNSURE:
        params["box"] = [int(v) for v in found["box"].split(",") if v.strip()]
        params["read"] = "" if found["read"] == "—" else found["read"]
    return params


def from_legacy_text(text: str) -> Reason:
    """The code of a sentence an older version stored; ``LEGACY_TEXT`` carrying it when it is not one we wrote.

    A decoding counts only when its wording is the stored sentence itself, so nothing is lost or changed."""
    for code, pattern in _LEGACY:
        found = pattern.fullmatch(text)
        if found is None:
            continue
        decoded = Reason(code=code, params=_legacy_params(code, found.groupdict()))
        if describe(decoded) == text:
            return decoded
    return Reason(code=ReasonCode.LEGACY_TEXT, params={"text": text})


def from_legacy_joined(text: str) -> list[Reason]:
    """Reasons an older version stored joined by ``"; "`` in one string (quarantine records, the batch registry)."""
    return [from_legacy_text(part) for part in text.split("; ") if part] if text else []


def _stored(value: object) -> object:
    return from_legacy_text(value) if isinstance(value, str) else value


StoredReason = Annotated[Reason, BeforeValidator(_stored)]
"""A reason as read from storage: a ``Reason`` (or its JSON), or an old Vietnamese sentence (decoded)."""

_STORED_LIST: TypeAdapter[list[StoredReason]] = TypeAdapter(list[StoredReason])


def stored_reasons(value: object) -> list[Reason]:
    """A stored list of reasons (codes, or the sentences of an older version) as ``Reason`` values."""
    return _STORED_LIST.validate_python(value or [])


def duplicate_ids(reasons: Sequence[Reason]) -> set[str]:
    """The other documents the reasons name (possible duplicates)."""
    return {r.document_id for r in reasons if r.document_id is not None}
