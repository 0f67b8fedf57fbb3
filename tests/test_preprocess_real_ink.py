"""Page cleaning of real-scan ink on synthetic pages: a seal in faded scanner red leaves no grey residue, its box
is recorded; a 1-bit page and a small undated page are cleaned and upscaled."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.preprocess import preprocess_page

DPI = 300
PALE_RED = (120, 110, 205)  # BGR: a seal as a scanner sees it, its red channel well below the paper's


def _page() -> np.ndarray:
    page = np.full((1500, 1100, 3), 252, np.uint8)
    for y in range(260, 1300, 70):
        cv2.putText(page, "cong tac van thu luu tru", (160, y), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (20, 20, 20), 3,
                    cv2.LINE_AA)
    return page


def _seal(page: np.ndarray, centre: tuple[int, int], radius: int) -> None:
    cv2.circle(page, centre, radius, PALE_RED, 9, cv2.LINE_AA)
    cv2.circle(page, centre, radius - 20, PALE_RED, 4, cv2.LINE_AA)
    for k in range(16):
        a = 2 * np.pi * k / 16
        x, y = centre[0] + int((radius - 60) * np.cos(a)), centre[1] + int((radius - 60) * np.sin(a))
        cv2.putText(page, "D", (x - 15, y + 15), cv2.FONT_HERSHEY_SIMPLEX, 1.1, PALE_RED, 4, cv2.LINE_AA)


def test_pale_red_seal_over_text_leaves_white_paper_and_black_text() -> None:
    clean = _page()
    page = clean.copy()
    _seal(page, (550, 700), 250)
    text = cv2.cvtColor(clean, cv2.COLOR_BGR2GRAY) < 128
    page[text] = clean[text]  # the text printed over the seal stays black
    near_text = cv2.dilate(text.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    seal_ink = (page[..., 2].astype(int) - page[..., 1] > 60) & ~near_text
    assert seal_ink.sum() > 10000
    assert cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)[seal_ink].mean() < 160  # grey for a binariser: junk letters

    result = preprocess_page(page, DPI)
    assert result.steps["red_removed"] is True
    assert np.percentile(result.ocr_image[seal_ink], 5) > 235  # faded all the way to the paper, no residue
    assert result.ocr_image[text].mean() < 90  # the text under the seal is still black
    boxes = result.steps["seal_boxes"]
    assert isinstance(boxes, list) and len(boxes) == 1
    x, y, w, h = (int(v) for v in boxes[0])
    assert x <= 300 <= 800 <= x + w and y <= 450 <= 950 <= y + h  # the seal's region is recorded


def test_one_bit_page_at_low_dpi_is_upscaled_and_kept_black_and_white() -> None:
    page = cv2.cvtColor(_page(), cv2.COLOR_BGR2GRAY)
    bilevel = np.where(page < 128, 0, 255).astype(np.uint8)  # a CCITT scan: only 0 and 255
    small = cv2.resize(bilevel, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_NEAREST)  # 150 dpi
    result = preprocess_page(small, 150)
    assert result.steps["upscaled_from"] == 150 and result.dpi == DPI
    assert result.ocr_image.shape[:2] == (1500, 1100)
    ink = result.ocr_image < 128
    assert 0.3 < ink.sum() / max(1, (bilevel < 128).sum()) < 3.0  # the text survived, not bloated nor erased
    assert result.steps["red_removed"] is False and result.steps["colour_removed"] is False
