"""Page cleaning on synthetic pages drawn with OpenCV: skew, seals, stamps, dark borders, faint ink, low dpi."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from pipeline.preprocess import estimate_skew, preprocess_page

DPI = 300
BLACK = (20, 20, 20)
RED = (40, 40, 210)  # BGR
WORDS = ("cong", "tac", "van", "thu", "luu", "tru", "so", "hoa", "ke", "hoach", "dang", "bo", "chi", "thi")


def text_page(h: int = 1500, w: int = 1100, ink: tuple[int, int, int] = BLACK, margin: int = 160) -> np.ndarray:
    """White page with lines of words (~12 pt at 300 dpi) inside generous margins."""
    rng = np.random.default_rng(7)
    page = np.full((h, w, 3), 250, np.uint8)
    for y in range(margin + 50, h - margin, 70):
        x = margin
        while True:
            word = str(rng.choice(WORDS))
            (tw, _), _ = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, 1.4, 3)
            if x + tw > w - margin:
                break
            cv2.putText(page, word, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 1.4, ink, 3, cv2.LINE_AA)
            x += tw + 28
    return page


def rotate(page: np.ndarray, angle: float) -> np.ndarray:
    """Rotate the content counter-clockwise by ``angle`` degrees, as a skewed scan would be."""
    h, w = page.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(page, m, (w, h), borderValue=(250, 250, 250))


def dark_pixels(gray: np.ndarray) -> int:
    return int(np.count_nonzero(gray < 128))


def to_gray(bgr: np.ndarray) -> np.ndarray:
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


@pytest.mark.parametrize("angle", [-15.0, -8.4, -2.3, -0.6, 0.0, 1.7, 4.9, 11.2, 15.0])
def test_estimate_skew_recovers_known_angle(angle: float) -> None:
    gray = to_gray(rotate(text_page(margin=260), angle))
    assert estimate_skew(gray, DPI) == pytest.approx(angle, abs=0.3)


def test_skewed_page_is_deskewed_with_matching_geometry() -> None:
    page = rotate(text_page(margin=260), 7.5)
    original = page.copy()
    result = preprocess_page(page, DPI)
    assert np.array_equal(page, original), "the input must not be modified"
    assert result.steps["deskewed"] is True
    assert result.steps["skew_deg"] == pytest.approx(7.5, abs=0.3)
    assert result.ocr_image.dtype == np.uint8 and result.display_image.dtype == np.uint8
    assert result.ocr_image.ndim == 2 and result.display_image.ndim == 3 and result.display_image.shape[2] == 3
    assert result.ocr_image.shape == result.display_image.shape[:2] == page.shape[:2]
    # both layers are straight: the text rows are horizontal again
    assert abs(estimate_skew(result.ocr_image, DPI)) < 0.3
    assert abs(estimate_skew(to_gray(result.display_image), DPI)) < 0.3
    json.dumps(result.steps)


def test_clean_straight_page_is_left_alone() -> None:
    page = text_page()
    result = preprocess_page(page, DPI)
    steps = result.steps
    assert not (steps["deskewed"] or steps["red_removed"] or steps["background_normalized"])
    assert not (steps["strokes_closed"] or steps["despeckled"]) and steps["dark_border_fraction"] == 0
    assert np.array_equal(result.ocr_image, cv2.cvtColor(page, cv2.COLOR_BGR2GRAY))
    assert np.array_equal(result.display_image, page)


def draw_seal(page: np.ndarray, centre: tuple[int, int], radius: int) -> None:
    """A Party seal: two rings, a lettered band and a solid star-like disc in the middle."""
    cv2.circle(page, centre, radius, RED, 9, cv2.LINE_AA)
    cv2.circle(page, centre, radius - 20, RED, 4, cv2.LINE_AA)
    cv2.circle(page, centre, radius // 2, RED, 4, cv2.LINE_AA)
    cv2.circle(page, centre, radius // 4, RED, -1, cv2.LINE_AA)
    for k in range(18):
        a = 2 * np.pi * k / 18
        x, y = centre[0] + int((radius - 60) * np.cos(a)), centre[1] + int((radius - 60) * np.sin(a))
        cv2.putText(page, "D", (x - 15, y + 15), cv2.FONT_HERSHEY_SIMPLEX, 1.1, RED, 4, cv2.LINE_AA)


def test_red_seal_over_text_is_dropped_for_ocr_but_kept_in_display() -> None:
    page = text_page()
    seal = page.copy()
    draw_seal(seal, (550, 700), 250)  # a ~42 mm seal over the body text
    text = cv2.cvtColor(page, cv2.COLOR_BGR2GRAY) < 128
    seal[text] = page[text]  # text printed over the seal stays black
    near_text = cv2.dilate(text.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    seal_ink = (seal[..., 2].astype(int) - seal[..., 1] > 100) & ~near_text
    assert seal_ink.sum() > 20000
    assert cv2.cvtColor(seal, cv2.COLOR_BGR2GRAY)[seal_ink].mean() < 110  # the seal is dark for OCR

    result = preprocess_page(seal, DPI)
    assert result.steps["red_removed"] is True
    assert result.ocr_image[seal_ink].mean() > 200  # the seal faded into the paper
    under = text & (cv2.cvtColor(seal, cv2.COLOR_BGR2GRAY) < 128)
    assert result.ocr_image[under].mean() < 100  # the text under it is still dark
    b, g, r = (result.display_image[..., i][seal_ink].mean() for i in range(3))
    assert r > 150 and g < 100 and b < 100  # the display layer still shows the red seal


def test_red_seal_on_blank_paper_is_dropped_too() -> None:
    page = text_page(h=1900)
    page[1150:] = 250
    draw_seal(page, (550, 1550), 250)  # a seal beside the signature, over no text
    seal_ink = page[..., 2].astype(int) - page[..., 1] > 100
    result = preprocess_page(page, DPI)
    assert result.steps["red_removed"] is True
    assert result.ocr_image[seal_ink].mean() > 200


def test_blue_received_stamp_over_text_is_dropped() -> None:
    page = text_page()
    stamp = page.copy()
    blue = (190, 90, 60)  # BGR
    cv2.rectangle(stamp, (200, 230), (760, 470), blue, 6)
    cv2.putText(stamp, "DEN So 2289", (230, 330), cv2.FONT_HERSHEY_SIMPLEX, 1.6, blue, 4, cv2.LINE_AA)
    cv2.putText(stamp, "Ngay 14/3", (230, 430), cv2.FONT_HERSHEY_SIMPLEX, 1.6, blue, 4, cv2.LINE_AA)
    text = cv2.cvtColor(page, cv2.COLOR_BGR2GRAY) < 128
    stamp[text] = page[text]
    near_text = cv2.dilate(text.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    stamp_ink = (stamp[..., 0].astype(int) - stamp[..., 2] > 80) & ~near_text
    result = preprocess_page(stamp, DPI)
    assert result.steps["colour_removed"] is True and result.steps["red_removed"] is False
    assert result.ocr_image[stamp_ink].mean() > 180
    assert result.ocr_image[text].mean() < 100


def test_boxed_red_stamp_beside_text_is_kept_and_darkened() -> None:
    page = text_page(h=1700, margin=160)
    page[1500:1700] = 250
    cv2.rectangle(page, (300, 1530), (620, 1650), RED, 6)  # a "MAT" secrecy stamp below the text
    cv2.putText(page, "MAT", (350, 1620), cv2.FONT_HERSHEY_DUPLEX, 2.5, RED, 6, cv2.LINE_AA)
    letters = np.zeros(page.shape[:2], bool)
    letters[1555:1625, 320:600] = True
    letters &= page[..., 1] < 128

    result = preprocess_page(page, DPI)
    assert result.steps["red_removed"] is False
    boxes = result.steps["stamp_boxes"]
    assert isinstance(boxes, list) and len(boxes) == 1
    x, y, w, h = boxes[0]
    assert x <= 300 and y <= 1530 and x + w >= 620 and y + h >= 1650
    assert result.ocr_image[letters].mean() < 90  # darker than the plain grey conversion of red ink
    assert cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)[letters].mean() > 90


def test_dark_binding_band_is_whitened_and_text_kept() -> None:
    page = text_page()
    rng = np.random.default_rng(3)
    page[:, :70] = 15
    speckle = rng.random((page.shape[0], 60)) < np.linspace(0.8, 0.05, 60)
    page[:, 70:130][speckle] = 15
    result = preprocess_page(page, DPI)
    fraction = result.steps["dark_border_fraction"]
    assert isinstance(fraction, float) and fraction > 0
    assert dark_pixels(result.ocr_image[:, :130]) < 0.01 * result.ocr_image[:, :130].size
    body = cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)[:, 200:]
    assert dark_pixels(result.ocr_image[:, 200:]) == pytest.approx(dark_pixels(body), rel=0.05)


def test_shaded_faint_page_gets_white_paper_and_closed_strokes() -> None:
    page = text_page().astype(np.float32)
    page = 250 - (250 - page) * 0.3  # faint ink: about 180 on 250
    rng = np.random.default_rng(5)
    holes = rng.random(page.shape[:2]) < 0.15
    page[holes] = 250  # pinholes in the worn strokes
    ramp = np.clip(np.linspace(0.0, 3.0, page.shape[1], dtype=np.float32), 0.0, 1.0)
    shade = (0.55 + 0.45 * ramp)[None, :, None]  # a shadow over the left third, most of the paper stays white
    shaded = np.clip(page * shade, 0, 255).astype(np.uint8)

    result = preprocess_page(shaded, DPI)
    assert result.steps["background_normalized"] is True and result.steps["strokes_closed"] is True
    paper = cv2.cvtColor(page.astype(np.uint8), cv2.COLOR_BGR2GRAY) > 245
    left, right = result.ocr_image[:, :300][paper[:, :300]], result.ocr_image[:, -300:][paper[:, -300:]]
    assert abs(float(left.mean()) - float(right.mean())) < 8  # the shadow is gone
    ink = cv2.cvtColor(text_page(), cv2.COLOR_BGR2GRAY) < 128
    eroded = cv2.erode(ink.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert np.mean(result.ocr_image[eroded] > 230) < 0.5 * np.mean(holes[eroded])  # fewer holes in strokes


def test_salt_and_pepper_specks_are_removed() -> None:
    page = text_page()
    rng = np.random.default_rng(11)
    ys, xs = rng.integers(0, page.shape[0], 4000), rng.integers(0, page.shape[1], 4000)
    noisy = page.copy()
    noisy[ys, xs] = 0
    result = preprocess_page(noisy, DPI)
    assert result.steps["despeckled"] is True
    paper = cv2.dilate((cv2.cvtColor(page, cv2.COLOR_BGR2GRAY) < 200).astype(np.uint8), np.ones((5, 5))) == 0
    assert dark_pixels(np.where(paper, result.ocr_image, 255).astype(np.uint8)) < 50


def test_low_dpi_grayscale_page_is_upscaled_to_300() -> None:
    gray = cv2.cvtColor(cv2.resize(text_page(), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    result = preprocess_page(gray, 150)
    assert result.dpi == 300 and result.steps["upscaled_from"] == 150
    assert result.ocr_image.shape == (gray.shape[0] * 2, gray.shape[1] * 2)
    assert result.display_image.shape == (*result.ocr_image.shape, 3)


def test_unknown_dpi_means_300_and_no_rescale() -> None:
    page = text_page(h=600, w=500, margin=60)
    result = preprocess_page(page, 0)
    assert result.dpi == 300 and "upscaled_from" not in result.steps
    assert result.ocr_image.shape == page.shape[:2]


def test_rejects_non_uint8_images() -> None:
    with pytest.raises(ValueError):
        preprocess_page(np.zeros((100, 100, 3), np.float32), 300)
