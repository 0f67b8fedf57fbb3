"""Find the documents of a batch folder and load their pages.

Batch convention: each entry of the batch folder is one document: a file (PDF, single- or multi-page TIFF,
JPEG, PNG) or a sub-folder of page images taken in natural name order (``p2`` before ``p10``). Hidden files
(``.name``) and ``batch.toml`` are not documents. Problems with one document raise ``DocumentError`` subclasses
with a Vietnamese reason naming the file; they never stop the batch.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pikepdf
from pdf2image import convert_from_path
from pdf2image.exceptions import PDFPageCountError, PDFSyntaxError
from PIL import Image, ImageOps, UnidentifiedImageError

from schemas.checksums import sha256_file
from schemas.document import DOCUMENT_SUFFIXES, PAGE_SUFFIXES, BatchInfo, DocumentSource
from schemas.errors import ConfigError, EncryptedPdfError, UnsupportedFileError
from schemas.text import natural_key

EXIF_ORIENTATION = 0x0112
NOT_DOCUMENTS = {"batch.toml", "batch.csv", "thumbs.db", "desktop.ini"}
A4_SHORT_SIDE_IN = 8.27
Image.MAX_IMAGE_PIXELS = 300_000_000  # large-format scans are legitimate; still bounded


@dataclass(frozen=True)
class LoadedPage:
    number: int  # 1-based within the document
    image: np.ndarray  # uint8 BGR
    dpi: int


BATCH_FILE = "batch.toml"
_FILE_CODE_FORBIDDEN = set('/\\:*?"<>|')


def read_batch_info(batch_dir: Path) -> BatchInfo:
    """The batch folder's ``batch.toml`` (hồ sơ fields and document order); empty when there is none.

    ``file_code = "H49.64.33.2001.160"``, ``title = "..."``, ``order = ["nq_01.png", ...]``; for classified
    documents ``approval_ref`` (decision number approving the photographing), ``approved_by``, and
    ``top_secret_approval_ref`` (an admin's approval for Tuyệt mật); keys may also sit in a ``[ho_so]`` table.
    """
    path = batch_dir / BATCH_FILE
    if not path.is_file():
        return BatchInfo()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        table = data.get("ho_so", data)
        keys = ("file_code", "title", "order", "approval_ref", "approved_by", "top_secret_approval_ref")
        info = BatchInfo.model_validate({k: table[k] for k in keys if k in table})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: không đọc được thông tin hồ sơ ({exc})",
                          fix="sửa batch.toml (TOML, UTF-8: file_code, title, order)") from exc
    check_file_code(info.file_code, where=str(path))
    return info


def check_file_code(code: str | None, *, where: str) -> None:
    """A mã hồ sơ becomes part of file names: no path separators or characters file systems refuse."""
    if code is not None and (not code.strip() or any(c in _FILE_CODE_FORBIDDEN or ord(c) < 32 for c in code)):
        raise ConfigError(f"{where}: mã hồ sơ không hợp lệ: {code!r}",
                          fix="mã hồ sơ gồm chữ, số, dấu chấm và gạch ngang (vd. H49.64.33.2001.160)")


def number_documents(docs: list[DocumentSource], order: list[str]) -> list[DocumentSource]:
    """Give each document its số thứ tự: first those named in ``order`` (in that order), then the rest."""
    rank = {name: i for i, name in enumerate(order)}
    ordered = sorted(docs, key=lambda d: (rank.get(d.source, len(rank)), natural_key(d.source)))
    numbers = {d.source: i for i, d in enumerate(ordered, 1)}
    return [d.model_copy(update={"sequence": numbers[d.source]}) for d in docs]


def discover_documents(batch_dir: Path) -> list[DocumentSource]:
    """Documents of a batch, in natural name order, numbered (số thứ tự) by ``batch.toml``'s order if any."""
    docs: list[DocumentSource] = []
    for entry in sorted(batch_dir.iterdir(), key=lambda p: natural_key(p.name)):
        if entry.name.startswith(".") or entry.name.lower() in NOT_DOCUMENTS:
            continue
        if entry.is_dir():
            pages = [
                p
                for p in sorted(entry.iterdir(), key=lambda p: natural_key(p.name))
                if p.is_file() and not p.name.startswith(".")
            ]
            docs.append(DocumentSource(source=entry.name, kind="folder", files=[p.resolve() for p in pages]))
        elif entry.is_file():
            docs.append(DocumentSource(source=entry.name, kind="file", files=[entry.resolve()]))
    return number_documents(docs, read_batch_info(batch_dir).order)


def content_identity(doc: DocumentSource) -> str:
    """SHA-256 that identifies a document by content: the file's hash, or the hash of its pages' hashes."""
    if doc.kind == "file":
        return sha256_file(doc.files[0])
    h = hashlib.sha256(b"sohoa-folder-v1\n")
    for p in doc.files:
        h.update(sha256_file(p).encode() + b"\n")
    return h.hexdigest()


def document_id(identity_sha256: str) -> str:
    """Short, stable document id derived from the content hash (80 bits)."""
    return identity_sha256[:20]


def _check_file(path: Path, allowed: tuple[str, ...]) -> None:
    name = path.name
    if path.suffix.lower() not in allowed:
        raise UnsupportedFileError(
            f"{name}: định dạng không hỗ trợ ({path.suffix or 'không có phần mở rộng'})",
            fix=f"chỉ nhận {', '.join(s.lstrip('.').upper() for s in allowed)}",
        )
    if path.stat().st_size == 0:
        raise UnsupportedFileError(f"{name}: tệp rỗng (0 byte)", fix="quét lại hoặc sao chép lại tệp")


def count_pages(doc: DocumentSource) -> int:
    """Validate a document cheaply and count its pages; raises ``DocumentError`` with the reason."""
    if doc.kind == "folder":
        if not doc.files:
            raise UnsupportedFileError(f"{doc.source}/: thư mục không có trang ảnh nào")
        for p in doc.files:
            _check_file(p, PAGE_SUFFIXES)
            _open_image(p).close()
        return len(doc.files)
    path = doc.files[0]
    _check_file(path, DOCUMENT_SUFFIXES)
    if path.suffix.lower() == ".pdf":
        return _pdf_page_count(path)
    with _open_image(path) as img:
        return int(getattr(img, "n_frames", 1))


def _pdf_page_count(path: Path) -> int:
    try:
        with pikepdf.open(path) as pdf:
            n = len(pdf.pages)
    except pikepdf.PasswordError as exc:
        raise EncryptedPdfError(
            f"{path.name}: PDF được bảo vệ bằng mật khẩu", fix="gỡ mật khẩu rồi đưa vào lại lô"
        ) from exc
    except pikepdf.PdfError as exc:
        raise UnsupportedFileError(f"{path.name}: PDF hỏng hoặc không đọc được ({exc})") from exc
    if n == 0:
        raise UnsupportedFileError(f"{path.name}: PDF không có trang nào")
    return n


def _open_image(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except UnidentifiedImageError as exc:
        raise UnsupportedFileError(
            f"{path.name}: không phải tệp ảnh hợp lệ (nội dung không khớp phần mở rộng)",
            fix="kiểm tra lại tệp quét",
        ) from exc
    except OSError as exc:
        raise UnsupportedFileError(f"{path.name}: không đọc được tệp ({exc})") from exc


def _dpi_of(img: Image.Image) -> int:
    """The scan's resolution from its header, else estimated from an A4 page width."""
    dpi = img.info.get("dpi")
    if isinstance(dpi, tuple) and dpi and float(dpi[0]) >= 50:
        return round(float(dpi[0]))
    estimate = round(min(img.size) / A4_SHORT_SIDE_IN)
    return min(600, max(100, estimate))


def _to_bgr(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v / 256).convert("L")
    if img.mode == "L":
        return cv2.cvtColor(np.asarray(img), cv2.COLOR_GRAY2BGR)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation of camera/phone scans (no copy when there is none)."""
    if img.getexif().get(EXIF_ORIENTATION, 1) in (None, 1):
        return img
    return ImageOps.exif_transpose(img) or img


def _decode(img: Image.Image, name: str) -> np.ndarray:
    try:
        img.load()
        return _to_bgr(_upright(img))
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedFileError(
            f"{name}: ảnh bị hỏng hoặc bị cắt cụt ({exc})", fix="quét lại hoặc sao chép lại tệp gốc"
        ) from exc


def _scanned_image(path: Path, number: int) -> tuple[Image.Image, int] | None:
    """The page's own scan when the page is exactly one full-page image (a scanner's PDF), with its dpi."""
    with pikepdf.open(path) as pdf:
        page = pdf.pages[number - 1]
        resources = page.obj.get("/Resources", pikepdf.Dictionary())
        if "/Font" in resources or int(page.obj.get("/Rotate", 0)) % 360 != 0:
            return None
        images = list(page.images.values())
        if len(images) != 1:
            return None
        box = [float(v) for v in page.mediabox]
        width_in, height_in = (box[2] - box[0]) / 72, (box[3] - box[1]) / 72
        pdf_image = pikepdf.PdfImage(images[0])  # type: ignore[arg-type]
        if pdf_image.width < 300 or abs(pdf_image.width / pdf_image.height - width_in / height_in) > 0.02:
            return None
        img = pdf_image.as_pil_image()
        img.load()
        return img, round(pdf_image.width / width_in)


def _pdf_page(path: Path, number: int, pdf_dpi: int) -> LoadedPage:
    """A PDF page: its embedded scan at native resolution when possible, else rendered by poppler."""
    try:
        scanned = _scanned_image(path, number)
    except Exception:  # unusual encodings (JBIG2, CCITT variants, masks): let poppler render the page
        scanned = None
    if scanned is not None and 100 <= scanned[1] <= 1200:
        return LoadedPage(number, _to_bgr(scanned[0]), scanned[1])
    try:
        images = convert_from_path(path, dpi=pdf_dpi, first_page=number, last_page=number)
    except (PDFPageCountError, PDFSyntaxError) as exc:
        raise UnsupportedFileError(f"{path.name}: không dựng được trang {number} ({exc})") from exc
    return LoadedPage(number, _to_bgr(images[0]), pdf_dpi)


def iter_pages(doc: DocumentSource, *, pdf_dpi: int = 300) -> Iterator[LoadedPage]:
    """Yield the document's pages one at a time (a long document is never held in memory whole)."""
    if doc.kind == "folder":
        for number, path in enumerate(doc.files, 1):
            with _open_image(path) as img:
                yield LoadedPage(number, _decode(img, path.name), _dpi_of(img))
        return
    path = doc.files[0]
    if path.suffix.lower() == ".pdf":
        for number in range(1, _pdf_page_count(path) + 1):
            yield _pdf_page(path, number, pdf_dpi)
        return
    with _open_image(path) as img:
        for index in range(int(getattr(img, "n_frames", 1))):
            img.seek(index)
            yield LoadedPage(index + 1, _decode(img, f"{path.name} (trang {index + 1})"), _dpi_of(img))
