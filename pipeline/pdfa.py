"""Assemble a two-layer PDF/A-2b: the page image, with tesseract's invisible text layer over it.

Each page is the text-only PDF page that tesseract wrote while recognising it (``textonly_pdf=1``: glyph-less
embedded font, text render mode 3), with the page image drawn underneath at the same geometry. PDF/A-2b
identification (XMP ``pdfaid``), an sRGB output intent and matching document info are added with pikepdf —
the same "speculative" conversion OCRmyPDF performs, without a Ghostscript pass.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pikepdf
from pikepdf import Dictionary, Name
from PIL import Image, ImageCms

PDFA_PART = "2"
PDFA_CONFORMANCE = "B"


@dataclass(frozen=True)
class PdfPageParts:
    image_jpeg: Path  # the visible page image (JPEG), same pixel geometry as the OCR image
    text_pdf: Path  # one-page text-only PDF from the OCR engine
    dpi: int


def _srgb_icc() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return bytes(profile.tobytes())


def _image_xobject(pdf: pikepdf.Pdf, jpeg: Path) -> pikepdf.Stream:
    data = jpeg.read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        colour = Name.DeviceGray if img.mode == "L" else Name.DeviceRGB
    return pikepdf.Stream(
        pdf,
        data,
        Type=Name.XObject,
        Subtype=Name.Image,
        Width=width,
        Height=height,
        ColorSpace=colour,
        BitsPerComponent=8,
        Filter=Name.DCTDecode,
    )


def _add_page(pdf: pikepdf.Pdf, parts: PdfPageParts) -> None:
    with pikepdf.open(parts.text_pdf) as text_pdf:
        pdf.pages.append(text_pdf.pages[0])
    page = pdf.pages[-1]
    box = [float(v) for v in page.mediabox]
    width_pt, height_pt = box[2] - box[0], box[3] - box[1]
    name = page.add_resource(_image_xobject(pdf, parts.image_jpeg), Name.XObject, prefix="Im")
    draw = f"q {width_pt:.3f} 0 0 {height_pt:.3f} {box[0]:.3f} {box[1]:.3f} cm {name} Do Q\n".encode()
    page.contents_add(pikepdf.Stream(pdf, draw), prepend=True)


def _declare_pdfa(pdf: pikepdf.Pdf, *, title: str, created: datetime) -> None:
    stamp = created.strftime("D:%Y%m%d%H%M%S+00'00'")
    pdf.docinfo[Name.Title] = title
    pdf.docinfo[Name.Producer] = "sohoa"
    pdf.docinfo[Name.Creator] = "sohoa (tesseract OCR)"
    pdf.docinfo[Name.CreationDate] = stamp
    pdf.docinfo[Name.ModDate] = stamp
    icc = pikepdf.Stream(pdf, _srgb_icc())
    icc[Name.N] = 3
    intent = Dictionary(
        Type=Name.OutputIntent,
        S=Name.GTS_PDFA1,
        OutputConditionIdentifier="sRGB IEC61966-2.1",
        Info="sRGB IEC61966-2.1",
        DestOutputProfile=icc,
    )
    pdf.Root.OutputIntents = pikepdf.Array([pdf.make_indirect(intent)])
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta.load_from_docinfo(pdf.docinfo)
        meta["pdfaid:part"] = PDFA_PART
        meta["pdfaid:conformance"] = PDFA_CONFORMANCE


def assemble_pdfa(
    pages: Sequence[PdfPageParts], out_path: Path, *, title: str, created: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write the searchable PDF/A-2b for ``pages`` to ``out_path`` (``progress``: pikepdf's save callback, %)."""
    with pikepdf.new() as pdf:
        for parts in pages:
            _add_page(pdf, parts)
        _declare_pdfa(pdf, title=title, created=created or datetime.now(UTC))
        pdf.save(out_path, deterministic_id=True, compress_streams=True, min_version="1.7", progress=progress)
