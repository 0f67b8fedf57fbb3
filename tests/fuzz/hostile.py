"""Hostile variants of real-looking scans, deterministic by seed (issue 18: no single file can stop a batch).

``generate(seed, count, batch_dir)`` writes ``count`` entries into ``batch_dir`` and returns what each one is. Pages
are small crops of the bundled sample scans (tests/fixtures/sample_batch), so readable variants OCR in about a
second; every entry's content differs (a seeded crop and a seeded pixel stamp), so no two share a document id.

Kinds: truncations at many offsets, bit flips in headers and data, lying headers (huge or zero dimensions, wrong
frame counts), every PIL mode (1, L, P, RGB, RGBA, CMYK, LAB, I;16, F), multi-frame TIFFs with one broken frame,
PDFs with a broken xref, CCITT G4 TIFFs and PDFs, a PDF whose image claims JBIG2 (jbig2enc is not available to
produce a real one), 0×0 pages, 1,000-page PDFs, encrypted PDFs (empty and set user password), symlinks inside and
outside the batch, FIFOs, unreadable permissions, NFD, invalid UTF-8 and very long names, a sub-folder document
with one bad page, empty files, text named as an image, files over the size limit.

Usage as a script: ``python tests/fuzz/hostile.py SEED COUNT OUT_DIR`` (prints one line per entry).
"""

from __future__ import annotations

import io
import os
import random
import struct
import sys
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pikepdf
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "sample_batch"
PAGE_WIDTH = 560  # px: small pages, so readable variants OCR fast

# limits the fuzz runs under (tests/fuzz/run_fuzz.py and tests/test_fuzz_intake.py pass them as SOHOA_ env)
FUZZ_ENV = {
    "SOHOA_MAX_PAGE_PIXELS": "40000000",
    "SOHOA_MAX_DOCUMENT_PAGES": "200",
    "SOHOA_MAX_FILE_MB": "8",
    "SOHOA_MAX_MEMORY_MB": "768",
    "SOHOA_DECODE_TIMEOUT_S": "30",
    "SOHOA_PAGE_TIMEOUT_S": "60",
}


@dataclass(frozen=True)
class Entry:
    name: str  # the report's ``source`` (U+FFFD for bytes that are not UTF-8)
    kind: str
    expect: str  # "fail": must be failed; "ok": must be done/needs_review; "any": either, but reported


def _base_page(rng: random.Random) -> Image.Image:
    """A crop of a real-looking sample scan (the header and first lines), with a seeded stamp for uniqueness."""
    source = rng.choice(["nq_01.png", "qd_05.jpg"])
    with Image.open(SAMPLE / source) as scan:
        rgb = scan.convert("RGB")
        top = rng.randrange(0, 200)
        crop = rgb.crop((0, top, rgb.width, top + 1100))
    page = crop.resize((PAGE_WIDTH, round(PAGE_WIDTH * crop.height / crop.width)), Image.Resampling.BILINEAR)
    data = np.array(page)
    stamp = np.array([rng.randrange(256) for _ in range(24)], np.uint8)
    data[-1, : stamp.size] = stamp[:, None]  # 24 pixels of the last row: content differs, reading does not
    return Image.fromarray(data)


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _pdf_of(pages: list[Image.Image], **save: object) -> bytes:
    """An image-only PDF, as a scanner writes it (one JPEG per page, 200 dpi)."""
    pdf = pikepdf.new()
    for img in pages:
        data = _encode(img.convert("RGB"), "JPEG", quality=80)
        w, h = img.size
        page = pdf.add_blank_page(page_size=(w * 72 / 200, h * 72 / 200))
        image = pikepdf.Stream(pdf, data, Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=w, Height=h,
                               ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8, Filter=pikepdf.Name.DCTDecode)
        name = page.add_resource(image, pikepdf.Name.XObject, pikepdf.Name.Im0)
        draw = f"q {w * 72 / 200:.2f} 0 0 {h * 72 / 200:.2f} 0 0 cm {name} Do Q"
        page.contents_add(pikepdf.Stream(pdf, draw.encode()))
    buf = io.BytesIO()
    pdf.save(buf, static_id=True, **save)  # type: ignore[arg-type]  # same seed, same bytes
    return buf.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def lying_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` × ``height`` RGB pixels (CRCs valid; the data is a few bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _png_chunk(b"IEND", b""))


def _flip(data: bytes, rng: random.Random, start: int, end: int, flips: int) -> bytes:
    out = bytearray(data)
    for _ in range(flips):
        i = rng.randrange(start, max(start + 1, min(end, len(out))))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


Maker = Callable[[random.Random, Path, str], str]  # writes the entry named (stem) into the batch; returns its name


def _write(batch: Path, name: str, data: bytes) -> str:
    (batch / name).write_bytes(data)
    return name


def _valid(rng: random.Random, fmt: str) -> tuple[bytes, str]:
    page = _base_page(rng)
    if fmt == "pdf":
        return _pdf_of([page]), ".pdf"
    if fmt == "tif":
        return _encode(page, "TIFF", compression="tiff_lzw", dpi=(200, 200)), ".tif"
    if fmt == "jpg":
        return _encode(page, "JPEG", quality=85, dpi=(200, 200)), ".jpg"
    return _encode(page, "PNG", dpi=(200, 200)), ".png"


def truncated(rng: random.Random, batch: Path, stem: str) -> str:
    data, ext = _valid(rng, rng.choice(["png", "jpg", "tif", "pdf"]))
    cut = rng.randrange(1, len(data) - 1)
    return _write(batch, f"{stem}{ext}", data[:cut])


def header_flip(rng: random.Random, batch: Path, stem: str) -> str:
    data, ext = _valid(rng, rng.choice(["png", "jpg", "tif", "pdf"]))
    return _write(batch, f"{stem}{ext}", _flip(data, rng, 0, 64, rng.randint(1, 6)))


def data_flip(rng: random.Random, batch: Path, stem: str) -> str:
    data, ext = _valid(rng, rng.choice(["png", "jpg", "tif", "pdf"]))
    return _write(batch, f"{stem}{ext}", _flip(data, rng, 64, len(data), rng.randint(1, 40)))


def lying_dimensions(rng: random.Random, batch: Path, stem: str) -> str:
    width, height = rng.choice([(40000, 40000), (100000, 1), (1, 100000), (0, 0), (0, 500), (65535, 65535),
                                (2**31 - 1, 2**31 - 1), (9000, 9000)])
    return _write(batch, f"{stem}.png", lying_png(width, height))


def zero_page(rng: random.Random, batch: Path, stem: str) -> str:
    return _write(batch, f"{stem}.png", lying_png(0, 0))


def pil_mode(rng: random.Random, batch: Path, stem: str) -> str:
    mode = rng.choice(["1", "L", "P", "RGB", "RGBA", "CMYK", "LAB", "I;16", "F"])
    page = _base_page(rng)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(page.convert("L")).astype(np.uint16) * 257)
        fmt, ext = rng.choice([("PNG", "png"), ("TIFF", "tif")])
        return _write(batch, f"{stem}-I16.{ext}", _encode(img, fmt))
    if mode == "F":
        img = Image.fromarray(np.asarray(page.convert("L")).astype(np.float32))
        return _write(batch, f"{stem}-F.tif", _encode(img, "TIFF"))
    if mode == "LAB":
        return _write(batch, f"{stem}-LAB.tif", _encode(page.convert("LAB"), "TIFF"))
    if mode == "CMYK":
        fmt, ext = rng.choice([("JPEG", "jpg"), ("TIFF", "tif")])
        return _write(batch, f"{stem}-CMYK.{ext}", _encode(page.convert("CMYK"), fmt))
    converted = page.convert(mode)
    fmt, ext = rng.choice([("PNG", "png"), ("TIFF", "tif")] + ([("JPEG", "jpg")] if mode in ("L", "RGB") else []))
    return _write(batch, f"{stem}-{mode}.{ext}", _encode(converted, fmt))


def tiff_broken_frame(rng: random.Random, batch: Path, stem: str) -> str:
    """Three frames; the middle one's strip is overwritten with garbage (its IFD stays valid)."""
    frames = [_base_page(rng).convert("L") for _ in range(3)]
    data = bytearray(_encode(frames[0], "TIFF", save_all=True, append_images=frames[1:], compression="packbits"))
    with Image.open(io.BytesIO(bytes(data))) as img:
        img.seek(1)
        tags = img.tag_v2  # type: ignore[attr-defined]
        offsets, counts = tags.get(273), tags.get(279)  # StripOffsets, StripByteCounts
    start = int(offsets[0]) if offsets else len(data) // 2
    length = min(int(counts[0]) if counts else 4096, 4096)
    data[start:start + length] = bytes(rng.randrange(256) for _ in range(length))
    return _write(batch, f"{stem}-3frames.tif", bytes(data))


def tiff_lying_frames(rng: random.Random, batch: Path, stem: str) -> str:
    """A two-frame TIFF whose second IFD points back to the first (a loop), or past the end of the file."""
    frames = [_base_page(rng).convert("L") for _ in range(2)]
    data = bytearray(_encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]))
    first = struct.unpack("<I", data[4:8])[0]
    entries = struct.unpack("<H", data[first:first + 2])[0]
    next_at = first + 2 + 12 * entries
    target = rng.choice([first, len(data) + 1000, 0xFFFFFFF0])
    data[next_at:next_at + 4] = struct.pack("<I", target)
    return _write(batch, f"{stem}-frames.tif", bytes(data))


def pdf_broken_xref(rng: random.Random, batch: Path, stem: str) -> str:
    data = bytearray(_pdf_of([_base_page(rng)]))
    at = data.rfind(b"xref")
    if at > 0:
        for i in range(at + 5, min(len(data), at + 200)):
            if 48 <= data[i] <= 57 and rng.random() < 0.5:
                data[i] = 48 + rng.randrange(10)
    if rng.random() < 0.5:
        start = data.rfind(b"startxref")
        data[start + 10:start + 14] = b"9999"
    return _write(batch, f"{stem}-xref.pdf", bytes(data))


def ccitt(rng: random.Random, batch: Path, stem: str) -> str:
    """A bilevel page compressed CCITT Group 4: as a TIFF, or its strip wrapped in a PDF (/CCITTFaxDecode)."""
    page = _base_page(rng).convert("L").point(lambda v: 255 if v > 150 else 0).convert("1")
    tiff = _encode(page, "TIFF", compression="group4")
    if rng.random() < 0.5:
        return _write(batch, f"{stem}-g4.tif", tiff)
    with Image.open(io.BytesIO(tiff)) as img:
        tags = img.tag_v2  # type: ignore[attr-defined]
        offset, count = int(tags[273][0]), int(tags[279][0])
    w, h = page.size
    pdf = pikepdf.new()
    pg = pdf.add_blank_page(page_size=(w * 72 / 200, h * 72 / 200))
    parms = pikepdf.Dictionary(K=-1, Columns=w, Rows=h, BlackIs1=False)
    image = pikepdf.Stream(pdf, tiff[offset:offset + count], Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image,
                           Width=w, Height=h, ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=1,
                           Filter=pikepdf.Name.CCITTFaxDecode, DecodeParms=parms)
    name = pg.add_resource(image, pikepdf.Name.XObject, pikepdf.Name.Im0)
    pg.contents_add(pikepdf.Stream(pdf, f"q {w * 72 / 200:.2f} 0 0 {h * 72 / 200:.2f} 0 0 cm {name} Do Q".encode()))
    buf = io.BytesIO()
    pdf.save(buf, static_id=True)
    return _write(batch, f"{stem}-ccitt.pdf", buf.getvalue())


def jbig2_claim(rng: random.Random, batch: Path, stem: str) -> str:
    """A PDF page image declared /JBIG2Decode holding bytes no JBIG2 decoder accepts."""
    pdf = pikepdf.new()
    pg = pdf.add_blank_page(page_size=(400, 560))
    blob = bytes(rng.randrange(256) for _ in range(2048))
    image = pikepdf.Stream(pdf, blob, Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=1100, Height=1550,
                           ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=1, Filter=pikepdf.Name.JBIG2Decode)
    name = pg.add_resource(image, pikepdf.Name.XObject, pikepdf.Name.Im0)
    pg.contents_add(pikepdf.Stream(pdf, f"q 400 0 0 560 0 0 cm {name} Do Q".encode()))
    buf = io.BytesIO()
    pdf.save(buf, static_id=True)
    return _write(batch, f"{stem}-jbig2.pdf", buf.getvalue())


def thousand_pages(rng: random.Random, batch: Path, stem: str) -> str:
    pdf = pikepdf.new()
    for _ in range(1000):
        pdf.add_blank_page(page_size=(595, 842))
    pdf.docinfo["/Title"] = f"{stem}-{rng.randrange(10**9)}"
    buf = io.BytesIO()
    pdf.save(buf, static_id=True)
    return _write(batch, f"{stem}-1000p.pdf", buf.getvalue())


def encrypted(rng: random.Random, batch: Path, stem: str) -> str:
    """Empty owner password (opens without one: readable, whatever the user password), or really locked."""
    owner, user = rng.choice([("", ""), ("", "mat-khau"), ("chu-so-huu", "mat-khau")])
    data = _pdf_of([_base_page(rng)], encryption=pikepdf.Encryption(
        owner=owner, user=user, R=4, aes=False, metadata=False))  # RC4: no random IV, same bytes
    return _write(batch, f"{stem}-enc{'-locked' if owner else ''}.pdf", data)


def symlink(rng: random.Random, batch: Path, stem: str) -> str:
    where = rng.choice(["inside", "outside", "broken"])
    data, ext = _valid(rng, "png")
    if where == "inside":
        target = batch / f".{stem}-target{ext}"  # hidden: not a document itself
        target.write_bytes(data)
    elif where == "outside":
        target = batch.parent / f"{batch.name}-outside-{stem}{ext}"
        target.write_bytes(data)
    else:
        target = batch / f".{stem}-gone{ext}"
    name = f"{stem}-link-{where}{ext}"
    (batch / name).symlink_to(target)
    return name


def fifo(rng: random.Random, batch: Path, stem: str) -> str:
    name = f"{stem}-fifo{rng.choice(['.png', '.pdf', ''])}"
    os.mkfifo(batch / name)
    return name


def unreadable(rng: random.Random, batch: Path, stem: str) -> str:
    """Mode 000 (as root still readable: then it is simply a document)."""
    data, ext = _valid(rng, rng.choice(["png", "jpg"]))
    name = _write(batch, f"{stem}-mode000{ext}", data)
    (batch / name).chmod(0)
    return name


def odd_name(rng: random.Random, batch: Path, stem: str) -> str:
    data, ext = _valid(rng, "png")
    kind = rng.choice(["nfd", "bad-utf8", "long"])
    if kind == "nfd":
        name = unicodedata.normalize("NFD", f"{stem}-Nghị quyết số 15 Đảng ủy{ext}")
    elif kind == "long":
        name = f"{stem}-" + "văn bản dài " * 30
        name = name.encode("utf-8")[: 250 - len(ext)].decode("utf-8", "ignore") + ext
    else:
        raw = f"{stem}-".encode() + b"\xff\xfe-bad" + ext.encode()
        (batch / os.fsdecode(raw)).write_bytes(data)
        return os.fsdecode(raw).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _write(batch, name, data)


def folder_bad_page(rng: random.Random, batch: Path, stem: str) -> str:
    folder = batch / f"{stem}-folder"
    folder.mkdir()
    for i in (1, 2, 3):
        data, _ = _valid(rng, "jpg")
        (folder / f"p{i}.jpg").write_bytes(data[: len(data) // 3] if i == 2 else data)
    return folder.name


def junk(rng: random.Random, batch: Path, stem: str) -> str:
    kind = rng.choice(["empty", "text", "random", "oversize"])
    if kind == "empty":
        return _write(batch, f"{stem}-empty.tif", b"")
    if kind == "text":
        return _write(batch, f"{stem}-text.png", "Đây là văn bản, không phải ảnh.\n".encode())
    if kind == "random":
        return _write(batch, f"{stem}-random.{rng.choice(['jpg', 'pdf', 'tif'])}",
                      bytes(rng.randrange(256) for _ in range(rng.randrange(1, 5000))))
    name = f"{stem}-oversize.pdf"
    with open(batch / name, "wb") as f:  # sparse: 12 MB over an 8 MB limit, nothing really written
        f.write(b"%PDF-1.7\n")
        f.truncate(12 * 2**20)
    return name


def readable(rng: random.Random, batch: Path, stem: str) -> str:
    data, ext = _valid(rng, rng.choice(["png", "jpg", "tif", "pdf"]))
    return _write(batch, f"{stem}-ok{ext}", data)


# kind -> (maker, expected outcome); weights favour the many-offset corruptions
KINDS: dict[str, tuple[Maker, str, int]] = {
    "truncated": (truncated, "any", 6),
    "header_flip": (header_flip, "any", 4),
    "data_flip": (data_flip, "any", 4),
    "lying_dimensions": (lying_dimensions, "fail", 3),
    "zero_page": (zero_page, "fail", 1),
    "pil_mode": (pil_mode, "ok", 4),
    "tiff_broken_frame": (tiff_broken_frame, "any", 2),
    "tiff_lying_frames": (tiff_lying_frames, "any", 2),
    "pdf_broken_xref": (pdf_broken_xref, "any", 2),
    "ccitt": (ccitt, "any", 2),
    "jbig2_claim": (jbig2_claim, "any", 1),
    "thousand_pages": (thousand_pages, "fail", 1),
    "encrypted": (encrypted, "any", 2),
    "symlink": (symlink, "fail", 2),
    "fifo": (fifo, "fail", 1),
    "unreadable": (unreadable, "any", 1),
    "odd_name": (odd_name, "any", 2),
    "folder_bad_page": (folder_bad_page, "fail", 1),
    "junk": (junk, "fail", 3),
    "readable": (readable, "ok", 2),
}

BAD_UTF8_EXPECT = "fail"


def generate(seed: int, count: int, batch: Path, *, kinds: list[str] | None = None) -> list[Entry]:
    """Write ``count`` hostile entries into ``batch`` (created); the same seed writes the same bytes."""
    batch.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pool = kinds or [k for k, (_, _, weight) in KINDS.items() for _ in range(weight)]
    entries = []
    for i in range(count):
        kind = pool[i % len(pool)] if kinds else rng.choice(pool)
        maker, expect, _ = KINDS[kind]
        case_rng = random.Random(f"{seed}:{i}:{kind}")
        name = maker(case_rng, batch, f"c{seed}-{i:04d}")
        if kind == "odd_name" and "\ufffd" in name:
            expect = BAD_UTF8_EXPECT
        if kind == "encrypted" and "-locked" in name:
            expect = "fail"
        entries.append(Entry(name=name, kind=kind, expect=expect))
    return entries


if __name__ == "__main__":
    for entry in generate(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])):
        print(f"{entry.kind:18} {entry.expect:4} {entry.name}")
