"""1-bit scans in PDF as scanners write them: JBIG2 (``/JBIG2Decode``) and CCITT G4 (``/CCITTFaxDecode``) images,
generated here (no encoder needed: a JBIG2 generic region may carry the very MMR bits of a G4 strip, ITU T.88
6.2.6), read through the real loader (``pipeline.load.iter_pages``) and compared with the bitmap they were made
from."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image, ImageDraw, ImageOps, TiffImagePlugin

from pipeline.load import discover_documents, iter_pages

WIDTH, HEIGHT, DPI = 1200, 400, 300


def _bitmap() -> Image.Image:
    image = Image.new("1", (WIDTH, HEIGHT), 1)
    draw = ImageDraw.Draw(image)
    for i in range(6):  # black bars and boxes: shapes whose pixels are easy to compare
        draw.rectangle((60 + 180 * i, 100, 160 + 180 * i, 140 + 20 * i), fill=0)
    draw.rectangle((40, 300, 1150, 330), outline=0, width=5)
    return image


def _g4_strip(image: Image.Image) -> bytes:
    """The MMR (T.6) coding of ``image``, text as black runs (JBIG2 decodes them to 1, black; CCITT without
    ``/BlackIs1`` to 0, black in ``DeviceGray``)."""
    buffer = io.BytesIO()
    inverted = ImageOps.invert(image.convert("L")).convert("1")  # Pillow writes 1 for white: invert first
    inverted.save(buffer, format="TIFF", compression="group4", tiffinfo={278: image.height})
    tiff = Image.open(io.BytesIO(buffer.getvalue()))
    assert isinstance(tiff, TiffImagePlugin.TiffImageFile)
    (offset,), (count,) = tiff.tag_v2[273], tiff.tag_v2[279]
    return buffer.getvalue()[offset : offset + count]


def _segment(number: int, kind: int, data: bytes) -> bytes:
    return struct.pack(">IBBBI", number, kind, 0, 1, len(data)) + data  # one page, no referred-to segments


def _jbig2(image: Image.Image) -> bytes:
    """An embedded JBIG2 stream: page information, then one immediate generic region coded with MMR."""
    page_info = struct.pack(">IIIIBH", image.width, image.height, 0, 0, 0, 0)
    region = struct.pack(">IIIIB", image.width, image.height, 0, 0, 0) + bytes([1]) + _g4_strip(image)
    return _segment(0, 48, page_info) + _segment(1, 38, region)


def _pdf(path: Path, data: bytes, **image_keys: object) -> None:
    pdf = pikepdf.new()
    image = pikepdf.Stream(pdf, data)
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height, image.BitsPerComponent = WIDTH, HEIGHT, 1
    image.ColorSpace = pikepdf.Name.DeviceGray
    for key, value in image_keys.items():
        image[f"/{key}"] = value
    w, h = WIDTH * 72 / DPI, HEIGHT * 72 / DPI
    content = pikepdf.Stream(pdf, f"q {w:.2f} 0 0 {h:.2f} 0 0 cm /Im0 Do Q".encode())
    page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=[0, 0, w, h], Contents=content,
                              Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)))
    pdf.pages.append(pikepdf.Page(page))
    pdf.save(path)


@pytest.mark.parametrize("kind", ["jbig2", "ccitt"])
def test_a_one_bit_pdf_scan_is_read_pixel_for_pixel(kind: str, tmp_path: Path) -> None:
    bitmap = _bitmap()
    if kind == "jbig2":
        _pdf(tmp_path / "scan.pdf", _jbig2(bitmap), Filter=pikepdf.Name.JBIG2Decode)
    else:
        parms = pikepdf.Dictionary(K=-1, Columns=WIDTH, Rows=HEIGHT)  # G4
        _pdf(tmp_path / "scan.pdf", _g4_strip(bitmap), Filter=pikepdf.Name.CCITTFaxDecode, DecodeParms=parms)
    (doc,) = discover_documents(tmp_path)
    (page,) = list(iter_pages(doc, pdf_dpi=DPI))
    grey = page.image if page.image.ndim == 2 else page.image.mean(axis=2)
    assert grey.shape[:2] == (HEIGHT, WIDTH)
    black = grey < 128
    want = np.asarray(bitmap) == 0
    assert want.sum() > 10_000
    assert (black == want).mean() > 0.98  # the same page: black where the scan is black, nowhere else
