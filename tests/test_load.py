from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image

from pipeline.load import content_identity, count_pages, discover_documents, iter_pages
from schemas.errors import DocumentError, EncryptedPdfError, UnsupportedFileError


def _page(path: Path, value: int = 255, size: tuple[int, int] = (200, 280), **kw: object) -> None:
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path, **kw)


def test_batch_convention_files_and_folders_in_natural_order(tmp_path: Path) -> None:
    _page(tmp_path / "doc10.png")
    _page(tmp_path / "doc2.jpg")
    folder = tmp_path / "doc3"
    folder.mkdir()
    for name in ("p10.jpg", "p2.jpg", "p1.jpg"):
        _page(folder / name)
    (tmp_path / ".DS_Store").write_bytes(b"x")
    docs = discover_documents(tmp_path)
    assert [d.source for d in docs] == ["doc2.jpg", "doc3", "doc10.png"]
    assert [p.name for p in docs[1].files] == ["p1.jpg", "p2.jpg", "p10.jpg"]
    assert count_pages(docs[1]) == 3
    assert [p.number for p in iter_pages(docs[1])] == [1, 2, 3]


def test_multipage_tiff_yields_every_frame_with_dpi(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((280, 200), v, np.uint8)) for v in (10, 120, 240)]
    frames[0].save(tmp_path / "a.tif", save_all=True, append_images=frames[1:], dpi=(200, 200))
    (doc,) = discover_documents(tmp_path)
    pages = list(iter_pages(doc))
    assert count_pages(doc) == 3
    assert [p.image[0, 0, 0] for p in pages] == [10, 120, 240]
    assert all(p.dpi == 200 and p.image.shape == (280, 200, 3) for p in pages)


def test_identity_depends_on_content_not_name(tmp_path: Path) -> None:
    _page(tmp_path / "a.png", 100)
    _page(tmp_path / "b.png", 100)
    _page(tmp_path / "c.png", 101)
    a, b, c = discover_documents(tmp_path)
    assert content_identity(a) == content_identity(b) != content_identity(c)


def _bad_batch(tmp_path: Path) -> Path:
    (tmp_path / "empty.tif").write_bytes(b"")
    _page(tmp_path / "good.jpg")
    data = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.tif").write_text("not an image", encoding="utf-8")
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(tmp_path / "locked.pdf", encryption=pikepdf.Encryption(owner="o", user="secret"))
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04")
    return tmp_path


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("empty.tif", UnsupportedFileError, "rỗng"),
        ("truncated.jpg", UnsupportedFileError, "cắt cụt"),
        ("text.tif", UnsupportedFileError, "không phải tệp ảnh"),
        ("locked.pdf", EncryptedPdfError, "mật khẩu"),
        ("notes.docx", UnsupportedFileError, "định dạng không hỗ trợ"),
    ],
)
def test_bad_files_raise_document_errors_naming_file_and_reason(
    tmp_path: Path, name: str, error: type[DocumentError], words: str
) -> None:
    docs = {d.source: d for d in discover_documents(_bad_batch(tmp_path))}
    with pytest.raises(error) as info:
        count_pages(docs[name])
        list(iter_pages(docs[name]))
    assert name in str(info.value) and words in str(info.value)
