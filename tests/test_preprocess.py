"""Preprocessing: drawings and photos of every kind -> the MNIST-style 28x28 input."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from measure import center_of_mass
from PIL import Image, ImageDraw

from vitdemo.preprocess import pipeline
from vitdemo.preprocess.pipeline import (
    MNIST_MEAN,
    MNIST_STD,
    load_image,
    normalize,
    preprocess,
    stroke_width,
    to_grayscale,
)

SEVEN = [(60, 60), (200, 60), (110, 230)]  # (x, y) points of a "7" on a 280x280 canvas
FOUR = [(170, 240), (170, 40), (60, 170), (220, 170)]


def draw(
    points: list[tuple[float, float]],
    *,
    size: tuple[int, int] = (280, 280),
    width: int = 18,
    mode: str = "L",
    ink: int | tuple[int, ...] = 255,
    paper: int | tuple[int, ...] = 0,
) -> np.ndarray:
    """A polyline drawn with Pillow, as the canvas would give it: (H, W) or (H, W, C) uint8."""
    img = Image.new(mode, size, paper)
    ImageDraw.Draw(img).line(points, fill=ink, width=width, joint="curve")
    return np.array(img)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def scaled(points: list[tuple[float, float]], factor: float, dx: float = 0, dy: float = 0):
    return [(x * factor + dx, y * factor + dy) for x, y in points]


def assert_centred(image: np.ndarray) -> None:
    cy, cx = center_of_mass(image)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5, (cy, cx)


# --- output contract ------------------------------------------------------------------------------


def test_output_shape_range_and_stages():
    pre = preprocess(draw(SEVEN))
    assert not pre.empty and pre.message == ""
    assert pre.image is not None and pre.image.shape == (28, 28) and pre.image.dtype == np.float32
    assert pre.image.min() >= 0.0 and pre.image.max() == pytest.approx(1.0)
    assert list(pre.stages) == ["input", "crop", "fit20", "centered"]
    assert pre.stages["input"].shape == (280, 280)
    assert max(pre.stages["fit20"].shape) == 20
    np.testing.assert_array_equal(pre.stages["centered"], pre.image)
    for stage in pre.stages.values():
        assert stage.ndim == 2 and stage.min() >= 0.0 and stage.max() <= 1.0


def test_output_is_anti_aliased():
    image = preprocess(draw(FOUR, width=24)).image  # a binary canvas in...
    assert np.count_nonzero((image > 0.05) & (image < 0.95)) >= 20  # ...grey edges out, like MNIST


def test_margin_is_empty_like_mnist():
    image = preprocess(draw(FOUR, width=24)).image
    rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
    assert rows[-1] - rows[0] + 1 <= 20 and cols[-1] - cols[0] + 1 <= 20
    assert rows[0] >= 2 and cols[0] >= 2 and rows[-1] <= 25 and cols[-1] <= 25


def test_bbox_locates_the_strokes_in_the_input():
    canvas = draw([(100, 50), (100, 200)], width=10)
    rows, cols = np.flatnonzero(canvas.any(axis=1)), np.flatnonzero(canvas.any(axis=0))
    assert (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1) == (50, 96, 201, 106)  # as drawn
    assert preprocess(canvas).bbox == (50, 96, 201, 106)  # bottom and right exclusive


@pytest.mark.parametrize("points", [SEVEN, FOUR, [(100, 30), (100, 250)], [(30, 140), (250, 150)]])
def test_centre_of_mass_lands_at_the_centre(points):
    assert_centred(preprocess(draw(points)).image)


# --- polarity and alpha ---------------------------------------------------------------------------


def test_dark_on_light_gives_the_same_output_as_light_on_dark():
    light_on_dark = preprocess(draw(FOUR, ink=255, paper=0)).image
    dark_on_light = preprocess(draw(FOUR, ink=0, paper=255)).image
    pen_on_paper = preprocess(draw(FOUR, mode="RGB", ink=(20, 30, 90), paper=(235, 230, 220))).image
    np.testing.assert_allclose(dark_on_light, light_on_dark, atol=1e-5)
    np.testing.assert_allclose(pen_on_paper, light_on_dark, atol=0.05)


def test_to_grayscale_returns_light_strokes_on_dark():
    gray = to_grayscale(draw(SEVEN, ink=0, paper=255))
    assert gray.dtype == np.float32 and gray.shape == (280, 280)
    assert gray[5, 5] == 0.0 and gray[60, 130] == 1.0  # corner is background, (x=130, y=60) on the bar


def test_transparent_canvas_with_white_strokes():
    """The drawing canvas: RGBA, alpha 0 where nothing was drawn, white strokes."""
    rgba = draw(SEVEN, mode="RGBA", ink=(255, 255, 255, 255), paper=(0, 0, 0, 0))
    expected = preprocess(draw(SEVEN)).image
    np.testing.assert_allclose(preprocess(rgba).image, expected, atol=1e-5)


def test_transparent_background_with_dark_strokes():
    """Black strokes on transparent pixels (also black, alpha 0): composited over white, inverted."""
    rgba = draw(SEVEN, mode="RGBA", ink=(0, 0, 0, 255), paper=(0, 0, 0, 0))
    expected = preprocess(draw(SEVEN)).image
    np.testing.assert_allclose(preprocess(rgba).image, expected, atol=1e-5)


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a[:, :, None],  # (H, W, 1)
        lambda a: np.repeat(a[:, :, None], 3, axis=2),  # (H, W, 3)
        lambda a: a.astype(np.float32) / 255,  # float in [0, 1]
        lambda a: a.astype(np.float64),  # float in 0..255
        lambda a: a.astype(np.int64),  # plain integers
    ],
)
def test_input_layouts_agree(convert):
    base = draw(FOUR)
    np.testing.assert_allclose(preprocess(convert(base)).image, preprocess(base).image, atol=1e-5)


@pytest.mark.parametrize("shape", [(0, 0), (5,), (5, 5, 2), (2, 5, 5, 3)])
def test_to_grayscale_rejects_odd_shapes(shape):
    with pytest.raises(ValueError, match="Expected"):
        to_grayscale(np.zeros(shape, dtype=np.uint8))


# --- empty and near-empty -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "canvas",
    [
        np.zeros((280, 280, 4), dtype=np.uint8),  # untouched transparent canvas
        np.zeros((280, 280), dtype=np.uint8),  # black
        np.full((280, 280), 255, dtype=np.uint8),  # white
        np.full((100, 100, 3), 128, dtype=np.uint8),  # grey
    ],
)
def test_blank_canvas_is_empty(canvas):
    pre = preprocess(canvas)
    assert pre.empty and pre.image is None and pre.bbox is None
    assert "Draw a digit" in pre.message
    assert "input" in pre.stages


@pytest.mark.parametrize("width", [1, 4, 20, 26])
def test_single_dot_is_empty(width):
    pre = preprocess(draw([(140, 140), (141, 141)], width=width))
    assert pre.empty and pre.image is None and pre.message
    assert pre.bbox is not None  # the speck is still located, e.g. for an overlay


def test_lone_noise_pixels_are_ignored():
    canvas = draw(SEVEN)
    canvas[270, 5] = canvas[3, 275] = 255  # isolated specks far from the digit
    pre = preprocess(canvas)
    np.testing.assert_allclose(pre.image, preprocess(draw(SEVEN)).image, atol=1e-6)


# --- geometry -------------------------------------------------------------------------------------


def test_aspect_ratio_is_kept_for_a_tall_thin_one():
    pre = preprocess(draw([(140, 40), (140, 240)], width=16))
    h, w = pre.stages["fit20"].shape
    assert h == 20 and w < 10
    assert_centred(pre.image)


def test_small_off_centre_drawing_is_centred_and_scaled_up():
    big = preprocess(draw(FOUR, width=24)).image
    small = preprocess(draw(scaled(FOUR, 0.3, dx=150, dy=10), width=7))
    assert not small.empty
    assert max(small.stages["crop"].shape) < 80  # the mark really was small
    assert max(small.stages["fit20"].shape) == 20
    assert_centred(small.image)
    assert np.abs(small.image - big).mean() < 0.05  # the same digit as drawn big in the middle


def test_any_input_size_gives_the_same_digit():
    reference = preprocess(draw(FOUR, width=24)).image
    for size, factor in [((56, 56), 0.2), ((1000, 600), 2.0)]:
        pre = preprocess(draw(scaled(FOUR, factor), size=size, width=round(24 * factor)))
        assert pre.image.shape == (28, 28)
        assert np.abs(pre.image - reference).mean() < 0.05, size


def test_single_pixel_line_stays_visible():
    pre = preprocess(draw(SEVEN, width=1))
    assert not pre.empty
    assert pre.image.max() == pytest.approx(1.0)
    assert stroke_width(pre.image > 0.5) >= 1.5  # thickened to an MNIST-like stroke
    assert_centred(pre.image)


def test_thick_strokes():
    pre = preprocess(draw(FOUR, width=70))
    assert not pre.empty and max(pre.stages["fit20"].shape) == 20
    assert_centred(pre.image)


def test_photo_of_pen_on_unevenly_lit_paper():
    rows, cols = np.mgrid[0:600, 0:1000]
    paper = 200 + 40 * (cols / 999 - 0.5) - 30 * ((rows - 300) / 300) ** 2  # light from the right
    pen = draw([(450, 100), (520, 80), (520, 500)], size=(1000, 600), width=12) / 255
    noise = np.random.default_rng(0).normal(0, 6, paper.shape)
    photo = np.clip(paper * (1 - 0.8 * pen) + noise, 0, 255).astype(np.uint8)
    pre = preprocess(photo)
    assert not pre.empty
    rows, cols = np.flatnonzero(pen.any(axis=1)), np.flatnonzero(pen.any(axis=0))
    true_bbox = (rows[0], cols[0], rows[-1] + 1, cols[-1] + 1)
    assert np.abs(np.subtract(pre.bbox, true_bbox)).max() <= 3, (pre.bbox, true_bbox)
    assert_centred(pre.image)


def test_mnist_like_input_is_left_unchanged():
    once = preprocess(draw(SEVEN, width=22)).image  # a 28x28 MNIST-style digit
    twice = preprocess(once)
    assert twice.stages["crop"].shape == twice.stages["fit20"].shape  # already 20 px: no resampling
    diff = np.abs(twice.image - once)
    assert diff.mean() < 0.005
    assert diff[once >= 0.2].max() < 1e-5  # only faint anti-aliasing below the threshold may go
    assert_centred(twice.image)


def test_stroke_width_of_a_ribbon():
    mask = np.zeros((50, 100), dtype=bool)
    mask[20:24, 10:90] = True  # 4 px wide, 80 px long
    assert stroke_width(mask) == pytest.approx(4 * 80 * 2 / (2 * 80 + 2 * 4))


# --- bytes ----------------------------------------------------------------------------------------


def test_png_bytes_give_the_same_result_as_the_array():
    canvas = draw(SEVEN, mode="RGBA", ink=(255, 255, 255, 255), paper=(0, 0, 0, 0))
    np.testing.assert_allclose(preprocess(png_bytes(canvas)).image, preprocess(canvas).image, atol=1e-6)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "CMYK"])
def test_load_image_decodes_common_modes_to_uint8(mode):
    img = Image.fromarray(draw(FOUR)).convert("I" if mode == "I;16" else mode)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img, dtype=np.uint16) * 200)
    buf = io.BytesIO()
    img.save(buf, "JPEG" if mode == "CMYK" else "PNG")
    array = load_image(buf.getvalue())
    assert array.dtype == np.uint8 and array.shape[:2] == (280, 280)
    assert array.ndim == 2 or array.shape[2] in (3, 4)
    assert not preprocess(array).empty


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, png_bytes(draw(SEVEN))[:300]],
)
def test_bad_bytes_raise_value_error(data):
    with pytest.raises(ValueError) as info:
        load_image(data)
    assert type(info.value) is ValueError and str(info.value)
    with pytest.raises(ValueError):
        preprocess(data)


def test_file_over_the_byte_limit_is_rejected():
    data = png_bytes(draw(SEVEN))
    with pytest.raises(ValueError, match="too large"):
        load_image(data, max_bytes=len(data) - 1)


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims a huge size: a decompression bomb as far as the header goes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    idat = zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [6_000, 20_000, 100_000])
def test_huge_images_are_rejected_before_decoding(side):
    data = _png_header_only(side, side)
    assert len(data) < 200
    with pytest.raises(ValueError, match="too large"):
        load_image(data)


def test_pixel_limit_is_configurable():
    data = png_bytes(draw(SEVEN))
    assert load_image(data, max_pixels=280 * 280).shape == (280, 280)
    with pytest.raises(ValueError, match="too large"):
        load_image(data, max_pixels=280 * 280 - 1)


# --- normalize ------------------------------------------------------------------------------------


def test_normalize_gives_a_standardised_batch_of_one():
    import torch

    image = preprocess(draw(SEVEN)).image
    x = normalize(image)
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    assert x[0, 0, 0, 0].item() == pytest.approx(-MNIST_MEAN / MNIST_STD)
    assert x.max().item() == pytest.approx((1 - MNIST_MEAN) / MNIST_STD)
    y = normalize(image, mean=0.5, std=0.5)
    assert y.min().item() == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        normalize(np.zeros((1, 28, 28)))


@pytest.mark.parametrize("shape", [(280, 280), (37, 90), (3, 5), (1, 1), (41, 41)])
def test_the_frame_is_the_border_pixels_in_row_major_order(shape: tuple[int, int]) -> None:
    """`_frame` slices out what a border mask would pick, in the same order (a large photo's border is subsampled
    by taking every n-th of them, so the order matters)."""
    gray = np.random.default_rng(0).random(shape).astype(np.float32)
    h, w = shape
    k = max(1, min(h, w) // 20)
    mask = np.ones(shape, dtype=bool)
    mask[k:-k, k:-k] = False
    assert np.array_equal(pipeline._frame(gray), gray[mask])


def test_the_pieces_of_a_large_mask_are_counted_on_its_blocks() -> None:
    """A mask over 128 px is counted on f x f blocks: two strokes with a one-pixel gap are one piece there."""
    mask = np.zeros((300, 200), dtype=bool)
    mask[10:290, 50:53] = True
    mask[10:290, 54:57] = True  # a 1 px gap: within one 3x3 block (f = 3)
    mask[150:153, 150:160] = True  # a third piece, far off
    mask[5, 5] = True  # and a speck
    assert pipeline._largest_pieces(mask, 3) == 1.0  # at most 3 pieces on the blocks
    assert pipeline._largest_pieces(mask, 2) < 1.0  # the speck is a piece of its own
