"""Find the documents of a batch folder and load their pages.

Batch convention: each entry of the batch folder is one document: a file (PDF, single- or multi-page TIFF,
JPEG, PNG) or a sub-folder of page images taken in natural name order (``p2`` before ``p10``). Hidden files
(``.name``) and ``batch.toml`` are not documents. Problems with one document raise ``DocumentError`` subclasses
with a Vietnamese reason naming the file; they never stop the batch.

Hostile input is bounded by ``Limits`` (issue 18): file size, pages per document and pixels per page are checked
from headers before anything is decoded; PDF pages are rendered by a poppler subprocess killed at the decode time
limit; a ``PageBudget`` (the caller's memory bound) admits each page's estimated decoded size before decoding.
Entries that are not regular files (FIFOs, sockets, devices), symbolic links and names that are not UTF-8 are
documents that fail, never silently skipped and never read.
"""

from __future__ import annotations

import hashlib
import threading
import tomllib
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pikepdf
from pdf2image import convert_from_path
from pdf2image.exceptions import PDFPageCountError, PDFPopplerTimeoutError, PDFSyntaxError
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.pixels import pil_to_bgr
from schemas.checksums import sha256_file
from schemas.document import DOCUMENT_SUFFIXES, PAGE_SUFFIXES, BatchInfo, DocumentSource
from schemas.errors import ConfigError, DocumentError, EncryptedPdfError, LimitExceededError, UnsupportedFileError
from schemas.text import natural_key

EXIF_ORIENTATION = 0x0112
NOT_DOCUMENTS = {"batch.toml", "batch.csv", "thumbs.db", "desktop.ini"}
A4_SHORT_SIDE_IN = 8.27
Image.MAX_IMAGE_PIXELS = 300_000_000  # PIL's own backstop; ``Limits.max_page_pixels`` is checked before it
MIN_PAGE_SIDE = 16  # pixels: anything smaller is not a scanned page
# bytes per page pixel while a page is in flight in this process: the file's decode, the BGR copy, preprocessing's
# grey, binary and display images. Measured peak over the process's baseline: 7.1–7.7 B/px (a 38.9 MP page, decode
# + preprocess, 300 and 600 dpi); 16 leaves a factor 2 for encoders and allocator slack
BYTES_PER_PIXEL = 16
# bytes per pixel of the scan as decoded, for a page reduced to the working resolution as it is decoded: PIL holds
# the decoded page at 4 B/px (RGB as RGBX) for a moment, the reduction adds a band (``pipeline.pixels``)
DECODE_BYTES_PER_PIXEL = 5
# one page at a time is decoded at full size to be reduced (a 600-dpi A3 PNG or TIFF: ~280 MB for a moment), so
# the worker threads of a process never hold two such decodes at once; a JPEG is reduced by libjpeg as it decodes
_FULL_DECODE = threading.Lock()


@dataclass(frozen=True)
class Limits:
    """Per-document resource limits (``Settings.max_page_pixels`` ... ``decode_timeout_s``)."""

    max_page_pixels: int = 200_000_000
    max_pages: int = 2000
    max_file_bytes: int = 2048 * 1024 * 1024
    decode_timeout_s: float = 120.0
    max_working_dpi: int = 300  # pages scanned finer are area-averaged down to it as they are decoded (0: never)


DEFAULT_LIMITS = Limits()


class PageBudget(Protocol):
    """Memory admission of decoded pages: ``acquire`` blocks until ``nbytes`` fit (raises ``LimitExceededError``
    when they never can), ``release`` gives them back once the page is processed."""

    def acquire(self, nbytes: int, what: str) -> None: ...

    def release(self, nbytes: int) -> None: ...


@dataclass(frozen=True)
class LoadedPage:
    number: int  # 1-based within the document
    image: np.ndarray  # uint8 BGR
    dpi: int
    admitted: int = 0  # bytes this page holds in the caller's PageBudget (released after processing)


def shown(name: str) -> str:
    """A file name as it can be shown and stored: bytes that are not UTF-8 become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


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
    return parse_batch_info(path.read_bytes(), where=str(path))


def parse_batch_info(data: bytes, *, where: str) -> BatchInfo:
    """A ``batch.toml``'s bytes (``where``: the file or object it came from, for the message) as ``BatchInfo``."""
    try:
        table = tomllib.loads(data.decode("utf-8"))
        table = table.get("ho_so", table)
        keys = ("file_code", "title", "order", "approval_ref", "approved_by", "top_secret_approval_ref")
        info = BatchInfo.model_validate({k: table[k] for k in keys if k in table})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{where}: không đọc được thông tin hồ sơ ({exc})",
                          fix="sửa batch.toml (TOML, UTF-8: file_code, title, order)") from exc
    check_file_code(info.file_code, where=where)
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
    """Documents of a batch, in natural name order, numbered (số thứ tự) by ``batch.toml``'s order if any.

    Every visible entry is a document, whatever it is: a FIFO, a broken or outside symlink, a name that is not
    UTF-8 become documents that fail with their reason (``count_pages``), so the report lists every entry."""
    base = batch_dir.resolve()
    docs: list[DocumentSource] = []
    for entry in sorted(base.iterdir(), key=lambda p: natural_key(p.name)):
        if entry.name.startswith(".") or entry.name.lower() in NOT_DOCUMENTS:
            continue
        if entry.is_dir() and not entry.is_symlink():
            try:
                pages = [
                    p
                    for p in sorted(entry.iterdir(), key=lambda p: natural_key(p.name))
                    if not p.name.startswith(".") and not (p.is_dir() and not p.is_symlink())
                ]
            except OSError:  # an unreadable folder: the document fails on it (``_check_file``)
                docs.append(DocumentSource(source=shown(entry.name), kind="file", files=[entry]))
                continue
            docs.append(DocumentSource(source=shown(entry.name), kind="folder", files=pages))
        else:
            docs.append(DocumentSource(source=shown(entry.name), kind="file", files=[entry]))
    return number_documents(docs, read_batch_info(batch_dir).order)


def _require_regular(path: Path) -> None:
    """Only regular files are ever opened (a FIFO would block the reader forever, a device never ends)."""
    if path.is_dir():
        raise UnsupportedFileError(f"{shown(path.name)}: thư mục không đọc được (quyền truy cập)",
                                   fix="cấp quyền đọc cho thư mục rồi chạy lại lô")
    if not path.is_file():
        kind = "liên kết hỏng" if path.is_symlink() else "không phải tệp thường (FIFO, socket hoặc thiết bị)"
        raise UnsupportedFileError(f"{shown(path.name)}: {kind}", fix="đưa tệp quét thật vào lô")


def content_identity(doc: DocumentSource) -> str:
    """SHA-256 that identifies a document by content: the file's hash, or the hash of its pages' hashes."""
    for p in doc.files:
        _require_regular(p)
    if doc.kind == "file":
        return sha256_file(doc.files[0])
    h = hashlib.sha256(b"sohoa-folder-v1\n")
    for p in doc.files:
        h.update(sha256_file(p).encode() + b"\n")
    return h.hexdigest()


def document_id(identity_sha256: str) -> str:
    """Short, stable document id derived from the content hash (80 bits)."""
    return identity_sha256[:20]


def _check_file(path: Path, allowed: tuple[str, ...], limits: Limits) -> None:
    name = shown(path.name)
    if name != path.name:
        raise UnsupportedFileError(f"{name}: tên tệp không phải UTF-8 hợp lệ",
                                   fix="đổi tên tệp (chữ Việt Unicode) rồi đưa vào lại lô")
    if path.is_symlink():
        raise UnsupportedFileError(f"{name}: là liên kết tượng trưng (symlink), không nhận",
                                   fix="chép tệp thật vào thư mục lô thay cho liên kết")
    _require_regular(path)
    if path.suffix.lower() not in allowed:
        raise UnsupportedFileError(
            f"{name}: định dạng không hỗ trợ ({path.suffix or 'không có phần mở rộng'})",
            fix=f"chỉ nhận {', '.join(s.lstrip('.').upper() for s in allowed)}",
        )
    size = path.stat().st_size
    if size == 0:
        raise UnsupportedFileError(f"{name}: tệp rỗng (0 byte)", fix="quét lại hoặc sao chép lại tệp")
    if size > limits.max_file_bytes:
        raise LimitExceededError(f"{name}: tệp {size / 2**20:.1f} MB vượt giới hạn "
                                 f"{limits.max_file_bytes / 2**20:.1f} MB",
                                 fix="tách tài liệu hoặc tăng SOHOA_MAX_FILE_MB")


def _check_pages(name: str, pages: int, limits: Limits) -> None:
    if pages > limits.max_pages:
        raise LimitExceededError(f"{name}: {pages} trang vượt giới hạn {limits.max_pages} trang một văn bản",
                                 fix="tách tài liệu hoặc tăng SOHOA_MAX_DOCUMENT_PAGES")


def _check_size(what: str, width: int, height: int, limits: Limits) -> None:
    """A page's dimensions, from its header, before a single pixel is decoded."""
    if width <= 0 or height <= 0:
        raise UnsupportedFileError(f"{what}: ảnh có kích thước {width}×{height}", fix="quét lại trang")
    if min(width, height) < MIN_PAGE_SIDE:
        raise UnsupportedFileError(f"{what}: ảnh {width}×{height} điểm ảnh quá nhỏ để là trang quét",
                                   fix="quét lại trang")
    if width * height > limits.max_page_pixels:
        raise LimitExceededError(
            f"{what}: trang {width}×{height} = {width * height / 1e6:.0f} triệu điểm ảnh vượt giới hạn "
            f"{limits.max_page_pixels / 1e6:.0f} triệu", fix="quét lại ở độ phân giải thấp hơn hoặc tăng "
                                                          "SOHOA_MAX_PAGE_PIXELS")


def count_pages(doc: DocumentSource, limits: Limits = DEFAULT_LIMITS) -> int:
    """Validate a document from headers only (nothing is decoded) and count its pages; raises ``DocumentError``
    with the reason. Every limit but decode time and memory is checked here, before any work starts."""
    try:
        return _count_pages(doc, limits)
    except DocumentError:
        raise
    except Exception as exc:  # a header no parser expected: this document fails, with the cause
        raise UnsupportedFileError(f"{doc.source}: không đọc được ({type(exc).__name__}: {exc})",
                                   fix="kiểm tra lại tệp quét") from exc


def _count_pages(doc: DocumentSource, limits: Limits) -> int:
    if doc.kind == "folder":
        if not doc.files:
            raise UnsupportedFileError(f"{doc.source}/: thư mục không có trang ảnh nào")
        _check_pages(f"{doc.source}/", len(doc.files), limits)
        for p in doc.files:
            what = f"{doc.source}/{shown(p.name)}"
            try:
                _check_file(p, PAGE_SUFFIXES, limits)
                with _open_image(p, limits) as img:
                    _check_size(what, *img.size, limits)
            except DocumentError as exc:
                raise type(exc)(f"{doc.source}/: {exc.message}", fix=exc.fix) from exc
        return len(doc.files)
    path = doc.files[0]
    _check_file(path, DOCUMENT_SUFFIXES, limits)
    if path.suffix.lower() == ".pdf":
        return _pdf_page_count(path, limits)
    with _open_image(path, limits) as img:
        _check_size(shown(path.name), *img.size, limits)
        frames = int(getattr(img, "n_frames", 1))
    _check_pages(shown(path.name), frames, limits)
    return frames


def _pdf_page_count(path: Path, limits: Limits = DEFAULT_LIMITS) -> int:
    name = shown(path.name)
    try:
        with pikepdf.open(path) as pdf:
            n = len(pdf.pages)
    except pikepdf.PasswordError as exc:
        raise EncryptedPdfError(
            f"{name}: PDF được bảo vệ bằng mật khẩu", fix="gỡ mật khẩu rồi đưa vào lại lô"
        ) from exc
    except Exception as exc:  # pikepdf.PdfError, and whatever else a hostile file provokes
        raise UnsupportedFileError(f"{name}: PDF hỏng hoặc không đọc được ({exc})") from exc
    if n == 0:
        raise UnsupportedFileError(f"{name}: PDF không có trang nào")
    _check_pages(name, n, limits)
    return n


def _open_image(path: Path, limits: Limits = DEFAULT_LIMITS) -> Image.Image:
    """Open an image lazily (header only); PIL's own bomb check is raised to at least the configured limit."""
    name = shown(path.name)
    if Image.MAX_IMAGE_PIXELS is not None and limits.max_page_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = limits.max_page_pixels
    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise LimitExceededError(f"{name}: kích thước ảnh khai trong tệp vượt giới hạn ({exc})",
                                 fix="quét lại ở độ phân giải thấp hơn") from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedFileError(
            f"{name}: không phải tệp ảnh hợp lệ (nội dung không khớp phần mở rộng)",
            fix="kiểm tra lại tệp quét",
        ) from exc
    except Exception as exc:  # OSError, SyntaxError, ValueError, struct.error ... from a damaged header
        raise UnsupportedFileError(f"{name}: không đọc được tệp ({type(exc).__name__}: {exc})") from exc


def _dpi_of(img: Image.Image) -> tuple[int, bool]:
    """The scan's resolution from its header (True), else estimated from an A4 page width (False)."""
    dpi = img.info.get("dpi")
    try:
        if isinstance(dpi, tuple) and dpi and 50 <= float(dpi[0]) <= 2400:
            return round(float(dpi[0])), True
    except (TypeError, ValueError):
        pass
    estimate = round(min(img.size) / A4_SHORT_SIDE_IN)
    return min(600, max(100, estimate)), False


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation of camera/phone scans (no copy when there is none)."""
    if img.getexif().get(EXIF_ORIENTATION, 1) in (None, 1):
        return img
    return ImageOps.exif_transpose(img) or img


def _decode(img: Image.Image, name: str, dpi: int, max_dpi: int = 0) -> tuple[np.ndarray, int]:
    """The page as uint8 BGR and its resolution: above ``max_dpi`` (> 0) reduced to it while decoding (a JPEG
    decoded at 1/2, 1/4 or 1/8 scale by libjpeg first), so a finer scan never exists in memory as a BGR copy."""
    try:
        factor = max_dpi / dpi if 0 < max_dpi < dpi else 1.0
        size = (max(1, round(img.size[0] * factor)), max(1, round(img.size[1] * factor)))
        if factor < 1.0 and img.format == "JPEG":
            img.draft(None, size)  # type: ignore[arg-type]  # no-op unless a lazily opened baseline JPEG
        with _FULL_DECODE if factor < 1.0 and img.format != "JPEG" else nullcontext():
            img.load()
            upright = _upright(img)
            if factor < 1.0 and (upright.size[0] > upright.size[1]) != (size[0] > size[1]):
                size = (size[1], size[0])  # turned by its EXIF orientation
            return pil_to_bgr(upright, size if factor < 1.0 else None), (max_dpi if factor < 1.0 else dpi)
    except Image.DecompressionBombError as exc:
        raise LimitExceededError(f"{name}: ảnh vượt giới hạn điểm ảnh ({exc})") from exc
    except MemoryError as exc:
        raise LimitExceededError(f"{name}: không đủ bộ nhớ để giải mã ảnh") from exc
    except Exception as exc:  # truncated data, bad tables, unsupported modes: the page is unreadable
        raise UnsupportedFileError(
            f"{name}: ảnh bị hỏng hoặc bị cắt cụt ({type(exc).__name__}: {exc})",
            fix="quét lại hoặc sao chép lại tệp gốc",
        ) from exc


def _working_pixels(pixels: int, dpi: int, max_dpi: int) -> int:
    """Pixels of a page of ``pixels`` scanned at ``dpi`` once reduced to ``max_dpi`` (> 0) as it is decoded."""
    return round(pixels * (max_dpi / dpi) ** 2) if 0 < max_dpi < dpi else pixels


def _admit(budget: PageBudget | None, pixels: int, what: str, working: int | None = None) -> int:
    """Admit a page of ``pixels`` (as decoded) worked on at ``working`` pixels (default: the same): the larger of
    its decode and its work (a page reduced as it is decoded never holds its full-size BGR copy)."""
    nbytes = pixels * BYTES_PER_PIXEL
    if working is not None and working < pixels:
        nbytes = max(pixels * DECODE_BYTES_PER_PIXEL, working * BYTES_PER_PIXEL)
    if budget is not None:
        budget.acquire(nbytes, what)
    return nbytes


def _scanned_page(path: Path, number: int, limits: Limits, budget: PageBudget | None) -> LoadedPage | None:
    """The page's own scan when the page is exactly one full-page image (a scanner's PDF), at its native dpi."""
    what = f"{shown(path.name)} (trang {number})"
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
        dpi = round(pdf_image.width / width_in)
        if not 100 <= dpi <= 1200 or pdf_image.width * pdf_image.height > limits.max_page_pixels:
            return None  # rendered by poppler at pdf_dpi instead, under the same limits
        pixels = pdf_image.width * pdf_image.height
        admitted = _admit(budget, pixels, what, _working_pixels(pixels, dpi, limits.max_working_dpi))
        try:
            return LoadedPage(number, *_decode(pdf_image.as_pil_image(), what, dpi, limits.max_working_dpi),
                              admitted)
        except BaseException:
            _release(budget, admitted)
            raise


def _page_box_pixels(path: Path, number: int, dpi: int) -> tuple[int, int]:
    with pikepdf.open(path) as pdf:
        page = pdf.pages[number - 1]
        box = [float(v) for v in page.mediabox]
        unit = float(page.obj.get("/UserUnit", 1.0))
    scale = dpi * unit / 72
    return round(abs(box[2] - box[0]) * scale), round(abs(box[3] - box[1]) * scale)


def _pdf_page(path: Path, number: int, pdf_dpi: int, limits: Limits, budget: PageBudget | None) -> LoadedPage:
    """A PDF page: its embedded scan at native resolution when possible, else rendered by poppler."""
    what = f"{shown(path.name)} (trang {number})"
    try:
        scanned = _scanned_page(path, number, limits, budget)
    except Exception:  # unusual encodings (JBIG2, CCITT variants, masks): let poppler render the page
        scanned = None
    if scanned is not None:
        return scanned
    try:
        width, height = _page_box_pixels(path, number, pdf_dpi)
    except Exception as exc:
        raise UnsupportedFileError(f"{what}: không đọc được khổ trang ({type(exc).__name__}: {exc})") from exc
    _check_size(what, width, height, limits)
    render_dpi = min(pdf_dpi, limits.max_working_dpi or pdf_dpi)  # rendered at the working resolution
    admitted = _admit(budget, _working_pixels(width * height, pdf_dpi, render_dpi), what)  # poppler's size
    try:
        images = convert_from_path(path, dpi=render_dpi, first_page=number, last_page=number,
                                   timeout=max(1, round(limits.decode_timeout_s)))
        if not images:
            raise UnsupportedFileError(f"{what}: poppler không dựng được trang")
        _check_size(what, *images[0].size, limits)
        return LoadedPage(number, _decode(images[0], what, render_dpi)[0], render_dpi, admitted)
    except PDFPopplerTimeoutError as exc:
        _release(budget, admitted)
        raise LimitExceededError(f"{what}: dựng trang quá {limits.decode_timeout_s:.0f} s",
                                 fix="kiểm tra tệp PDF hoặc tăng SOHOA_DECODE_TIMEOUT_S") from exc
    except (PDFPageCountError, PDFSyntaxError) as exc:
        _release(budget, admitted)
        raise UnsupportedFileError(f"{what}: không dựng được trang ({exc})") from exc
    except DocumentError:
        _release(budget, admitted)
        raise
    except Exception as exc:
        _release(budget, admitted)
        raise UnsupportedFileError(f"{what}: không dựng được trang ({type(exc).__name__}: {exc})") from exc


def _release(budget: PageBudget | None, nbytes: int) -> None:
    if budget is not None:
        budget.release(nbytes)


def _image_page(img: Image.Image, number: int, what: str, limits: Limits, budget: PageBudget | None) -> LoadedPage:
    _check_size(what, *img.size, limits)
    dpi, declared = _dpi_of(img)  # an estimated resolution is a guess: such a page is never reduced
    max_dpi = limits.max_working_dpi if declared else 0
    pixels = img.size[0] * img.size[1]
    admitted = _admit(budget, pixels, what, _working_pixels(pixels, dpi, max_dpi))
    try:
        return LoadedPage(number, *_decode(img, what, dpi, max_dpi), admitted)
    except BaseException:
        _release(budget, admitted)
        raise


def iter_pages(
    doc: DocumentSource, *, pdf_dpi: int = 300, limits: Limits = DEFAULT_LIMITS, budget: PageBudget | None = None
) -> Iterator[LoadedPage]:
    """Yield the document's pages one at a time (a long document is never held in memory whole).

    Each page's dimensions are checked against ``limits`` before it is decoded, and its estimated decoded size is
    admitted by ``budget`` (the caller releases ``page.admitted`` once the page is processed)."""
    if doc.kind == "folder":
        _check_pages(f"{doc.source}/", len(doc.files), limits)
        for number, path in enumerate(doc.files, 1):
            what = f"{doc.source}/{shown(path.name)}"
            _check_file(path, PAGE_SUFFIXES, limits)
            with _open_image(path, limits) as img:
                yield _image_page(img, number, what, limits, budget)
        return
    path = doc.files[0]
    _check_file(path, DOCUMENT_SUFFIXES, limits)
    if path.suffix.lower() == ".pdf":
        for number in range(1, _pdf_page_count(path, limits) + 1):
            yield _pdf_page(path, number, pdf_dpi, limits, budget)
        return
    with _open_image(path, limits) as img:
        frames = int(getattr(img, "n_frames", 1))
        _check_pages(shown(path.name), frames, limits)
        for index in range(frames):
            what = f"{shown(path.name)} (trang {index + 1})"
            try:
                img.seek(index)
            except Exception as exc:
                raise UnsupportedFileError(f"{what}: không đọc được trang ({type(exc).__name__}: {exc})") from exc
            page = _image_page(img, index + 1, what, limits, budget)
            img._im = None  # the frame's decoded pixels are freed now, not at the next frame (Pillow allocates anew)
            yield page
