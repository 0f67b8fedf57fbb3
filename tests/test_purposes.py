"""A recipient's purpose read with one look-alike letter (``(để 1/h)``, ``(để be)``) is put back; nothing else."""

from __future__ import annotations

import pytest

from pipeline.metadata.purposes import mend_purposes


@pytest.mark.parametrize(("read", "want"), [
    ("CVHT, Cán bộ lớp (để 1/h)", "CVHT, Cán bộ lớp (để t/h)"),
    ("Hiệu trưởng (để be)", "Hiệu trưởng (để bc)"),
    ("Phòng KH-TC (để 1h)", "Phòng KH-TC (để th)"),
    ("Sở Nội vụ (để p/b) và UBND (để b/e)", "Sở Nội vụ (để p/b) và UBND (để b/c)"),
])
def test_a_purpose_read_with_one_look_alike_is_put_back(read: str, want: str) -> None:
    assert mend_purposes(read) == want


@pytest.mark.parametrize("read", [
    "HT (để báo cáo)", "Hiệu trưởng (để b/c)", "Các đơn vị (để thực hiện)",  # already a purpose
    "Ban Tuyên giáo (để bè)",  # not a look-alike of any purpose
    "Văn phòng (để xy)",  # two letters away
    "Phòng Đào tạo (01)", "Lưu: VT, CTSV, Tuấn PM (01)",  # no purpose at all
])
def test_anything_else_stays_as_read(read: str) -> None:
    assert mend_purposes(read) == read
