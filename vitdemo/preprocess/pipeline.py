"""Any drawing or image -> the 28x28 model input, made the way MNIST itself was made.

MNIST digits were size-normalised to fit a 20x20 box (aspect ratio kept, anti-aliased), then placed
in a 28x28 field with their centre of mass at the centre. `preprocess` repeats those steps for a
canvas drawing or a photo and keeps every intermediate stage for display.

Scans and photos first lose their background: a smooth surface fitted to the pixels that are not
ink, anywhere in the image (a tight crop's strokes run into the border, so the border alone is not
paper), with ink taken in proportion to the local light (shadows). The lines of ruled or squared
paper go next (`vitdemo.preprocess.lines`): where a grid's lines cross they are as dark as a stroke.
Strokes are found by hysteresis, so faint marks away from them (grain, the edge of a shadow) go, and
marks that are not pen strokes at all (noise, a photo of a room) are refused as "not a digit".
numpy + Pillow, and scipy.ndimage for connected pieces.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from vitdemo.data import normalization
from vitdemo.preprocess.lines import remove_lines

if TYPE_CHECKING:
    import torch

MNIST_MEAN, MNIST_STD = normalization("mnist")  # pixel statistics of the MNIST training set in [0, 1]

SIZE = 28  # output side, as in MNIST
BOX = 20  # the digit's longer side after fitting, as in MNIST (leaves a 4 px margin)
CENTRE = 14.0  # target centre of mass in index coordinates; MNIST's own mean is (13.99, 14.00)
MIN_STROKE_PX = 1.0  # strokes thinner than this in the 20 px box get thickened...
TARGET_STROKE_PX = 2.0  # ...to about this, a thin MNIST stroke (else a 1 px pen vanishes)
WORK = 64  # the background is estimated on a copy at most this many pixels across
STRONG = 0.5  # a stroke's core reaches at least this (of the peak); fainter marks count only next to one
MAX_WIDTH = 0.35  # strokes wider than this (of the digit's longer side) are blobs, not pen strokes
MAX_LENGTH = 8.0  # strokes longer than this (in digit sizes, laid end to end) are noise, not a digit
MIN_PIECES_SHARE = 0.75  # a digit's three largest connected pieces hold at least this share of its ink
MIN_CONTRAST = 0.1  # ink must differ from the background by this much to count at all

EMPTY_MESSAGE = "Draw a digit to get a prediction."
SPECK_MESSAGE = "That is only a dot or a speck: draw a whole digit to get a prediction."
NOT_A_DIGIT_MESSAGE = (
    "That does not look like a handwritten digit: draw or upload one digit, dark on light or light on dark."
)


@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare with ==
class Preprocessed:
    image: np.ndarray | None  # (28, 28) float32 in [0, 1], light digit on dark; None when empty
    stages: dict[str, np.ndarray]  # "input", ["lines_removed",] "crop", "fit20", "centered": 2-D float32 in [0, 1]
    empty: bool  # True when there is nothing to predict: blank, a speck, or not a digit
    message: str  # "" normally; what to tell the user when empty
    bbox: tuple[int, int, int, int] | None  # (top, left, bottom, right) in the input, exclusive ends
    not_digit: bool = False  # True when there are marks but no digit-like strokes (noise, a photo)


def load_image(data: bytes, max_bytes: int = 5_000_000, max_pixels: int = 25_000_000) -> np.ndarray:
    """Decode image file bytes -> (H, W) or (H, W, C) uint8. Raises ValueError for anything unusable."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"Expected image file bytes, got {type(data).__name__}.")
    if len(data) == 0:
        raise ValueError("The file is empty.")
    if len(data) > max_bytes:
        raise ValueError(f"The file is too large ({len(data):,} bytes); the limit is {max_bytes:,} bytes.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))  # reads the header only
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ValueError("The image is too large (a possible decompression bomb).") from None
        except Exception:  # UnidentifiedImageError, or a broken header (OSError, SyntaxError, ...)
            raise ValueError("The file is not an image (or not a format Pillow can read).") from None
        width, height = img.size
        if width * height > max_pixels:
            img.close()
            raise ValueError(f"The image is too large ({width}x{height} pixels); the limit is {max_pixels:,} pixels.")
        try:
            with img:
                img.seek(0)  # first frame of an animation
                return _to_array(ImageOps.exif_transpose(img))  # photos: honour the camera's rotation
        except Exception as exc:  # truncated or corrupt data: Pillow raises many types
            raise ValueError(f"The image could not be decoded ({exc}).") from None


def _to_array(img: Image.Image) -> np.ndarray:
    """A decoded PIL image -> uint8 (H, W), (H, W, 3) or (H, W, 4)."""
    if img.mode in ("L", "RGB", "RGBA"):
        return np.array(img)
    if img.mode == "1":
        return np.array(img.convert("L"))
    if img.mode.startswith("I") or img.mode == "F":  # 16/32-bit grayscale: rescale, Pillow would clip
        a = np.asarray(img, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        return np.round(a * 255).astype(np.uint8)
    has_alpha = img.mode in ("LA", "La", "PA", "RGBa") or "transparency" in img.info
    return np.array(img.convert("RGBA" if has_alpha else "RGB"))


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """Any (H, W[, 1|3|4]) uint8 or float image -> float32 (H, W) in [0, 1], light strokes on dark.

    Transparent pixels are composited over a background that contrasts with the strokes, then the
    result is inverted when the background (most of the border) is the light side of the image.
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise ValueError(f"Expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {a.shape}.")
    if a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3:  # a photo: Pillow's "L" is 10x faster
        gray = np.asarray(Image.fromarray(a).convert("L"), dtype=np.float32) / np.float32(255.0)
        return 1.0 - gray if _is_dark_on_light(gray) else gray
    x = _to_unit_float(a)  # (H, W[, C]) float32 in [0, 1]
    if x.ndim == 2:
        gray = x
    else:
        gray = x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114  # ITU-R 601, as Pillow's "L"
        if x.shape[2] == 4:
            gray = _composite(gray, x[..., 3])
    gray = np.clip(gray, 0.0, 1.0).astype(np.float32)  # (H, W)
    return 1.0 - gray if _is_dark_on_light(gray) else gray


def _to_unit_float(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):  # 0..255, except 16-bit images
        x = a.astype(np.float32) / (65535.0 if a.dtype == np.uint16 else 255.0)
        return x if a.dtype in (np.uint8, np.uint16) else np.clip(x, 0.0, 1.0)  # unsigned: already in [0, 1]
    x = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return x / 255.0 if x.max() > 1.0 else x  # floats above 1 are taken to be 0..255


def _composite(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite (H, W) gray with (H, W) alpha over black for light strokes, over white for dark ones."""
    if alpha.min() >= 1.0:
        return gray
    weight = float(alpha.sum())
    covered = gray * alpha  # (H, W)
    stroke = float(covered.sum()) / weight if weight > 0 else 1.0  # mean stroke brightness
    return covered if stroke >= 0.5 else covered + (1.0 - alpha)  # over black, or over white


def _frame(gray: np.ndarray) -> np.ndarray:
    """The pixels of an (H, W) image's outer frame, about 5% of the shorter side wide (at least 1 px), in row-major
    order (as a mask would pick them), by slices: a mask of the whole image cost a tenth of a canvas's preprocessing."""
    h, w = gray.shape
    k = max(1, min(h, w) // 20)
    if h <= 2 * k or w <= 2 * k:
        return gray.ravel()
    sides = np.concatenate([gray[k:-k, :k], gray[k:-k, -k:]], axis=1)  # (H - 2k, 2k): left then right, row by row
    return np.concatenate([gray[:k].ravel(), sides.ravel(), gray[-k:].ravel()])


def _is_dark_on_light(gray: np.ndarray) -> bool:
    """Background (most of the border) on the light side of the image's range -> dark strokes on light.

    The border's 60th percentile rather than its median: strokes may cover part of the border (a tight
    crop), and a shadow may darken part of the paper; with both, the paper is still the lighter 40%.
    A canvas's or MNIST's background is one exact level over far more of the border than that.
    """
    lo, hi = float(gray.min()), float(gray.max())
    frame = _frame(gray)
    step = max(1, frame.size // 50_000)  # a large photo's border: a sample is enough
    return float(np.percentile(frame[::step], 60)) > (lo + hi) / 2


def _box_sum(x: np.ndarray, r: int) -> np.ndarray:
    """Sum of (..., H, W) x over a (2r+1) square around each pixel, zeros outside."""
    h, w = x.shape[-2:]
    pad = [(0, 0)] * (x.ndim - 2) + [(r + 1, r), (r + 1, r)]
    c = np.pad(x, pad).cumsum(-2).cumsum(-1)  # (..., H+2r+1, W+2r+1)
    k = 2 * r + 1
    return c[..., k:, k:] - c[..., :h, k:] - c[..., k:, :w] + c[..., :h, :w]


def _fit(x: np.ndarray, weight: np.ndarray, r: int) -> np.ndarray:
    """Smooth surface through the weighted pixels of (H, W) x: at every pixel, the plane that best
    fits its weighted neighbours (a box filter applied twice, radius r). A plane, not a mean, so light
    falling off towards the image's edges is followed right up to them. Where a pixel has few
    neighbours with weight (inside a blob of ink), the fit leans on one plane for the whole image."""
    h, w = x.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    v, u = (v - h / 2) / r, (u - w / 2) / r  # in units of r: well conditioned
    one = np.ones_like(u)
    if weight.any():
        design = np.stack([one[weight], u[weight], v[weight]], axis=1)  # (N, 3)
        a, b, c = np.linalg.lstsq(design, x[weight], rcond=None)[0]
    else:
        a, b, c = float(np.median(x)), 0.0, 0.0
    prior = a + b * u + c * v  # (H, W)
    # weighted moments around each pixel, plus a small weight on the global plane
    lam = 1e-3 * (2 * r + 1) ** 4
    terms = np.stack([one, u, v, u * u, u * v, v * v, x, u * x, v * x]) * weight  # (9, H, W)
    s0, su, sv, suu, suv, svv, sz, suz, svz = _box_sum(_box_sum(terms, r), r)
    s0, su, sv = s0 + lam, su + lam * u, sv + lam * v
    suu, suv, svv = suu + lam * (u * u + 1), suv + lam * u * v, svv + lam * (v * v + 1)
    sz, suz, svz = sz + lam * prior, suz + lam * u * prior, svz + lam * v * prior
    # solve [[s0 su sv] [su suu suv] [sv suv svv]] @ (p, q, t) = (sz, suz, svz) by Cramer's rule
    c00, c01, c02 = suu * svv - suv * suv, sv * suv - su * svv, su * suv - sv * suu
    det = s0 * c00 + su * c01 + sv * c02
    p = (sz * c00 + suz * c01 + svz * c02) / det
    q = (sz * c01 + suz * (s0 * svv - sv * sv) + svz * (sv * su - s0 * suv)) / det
    t = (sz * c02 + suz * (su * sv - s0 * suv) + svz * (s0 * suu - su * su)) / det
    return p + q * u + t * v


def _background(gray: np.ndarray) -> np.ndarray:
    """Background level of a light-on-dark (H, W) image, even when unevenly lit or when ink covers
    much of it (a tight crop, a thick marker).

    Estimated on a small copy: a smooth surface (`_fit`) through the pixels that are not ink, where
    "ink" is anything brighter than the current estimate by more than the noise; a few rounds settle
    it. The strokes are never assumed to keep off the border. A background that is mostly one exact
    level (a canvas) is that level, and a nearly flat estimate is replaced by one level.
    """
    small = _shrink(gray, WORK)  # (h, w)
    lowest = float(small.min())
    if np.count_nonzero(small == lowest) > small.size // 2:  # a synthetic background: a canvas, MNIST
        return np.full(gray.shape, lowest, dtype=np.float32)
    r = max(1, round(max(small.shape) / 12))  # light may change over ~1/6 of the image
    sigma = max(_noise(small), 0.002)
    paper = np.ones(small.shape, dtype=bool)
    bg = _fit(small, paper, r)  # a first guess, pulled up by the ink...
    for limit in (0.0, 3 * sigma):  # ...so start with what lies below it
        candidate = _erode(small - bg < limit)  # not ink, and not next to ink
        if candidate.sum() < 0.05 * candidate.size:
            break
        paper = candidate
        bg = _fit(small, paper, r)
    if float(bg.max() - bg.min()) < 0.02:  # flat: one level
        return np.full(gray.shape, np.median(small[paper]), dtype=np.float32)
    img = Image.fromarray(bg.astype(np.float32), mode="F")
    return np.asarray(img.resize(gray.shape[::-1], Image.Resampling.BILINEAR), dtype=np.float32)


def _noise(x: np.ndarray) -> float:
    """Robust noise level of an (H, W) image from neighbour differences (edges are too few to matter)."""
    d = np.concatenate([np.diff(x, axis=0).ravel(), np.diff(x, axis=1).ravel()])
    return float(np.median(np.abs(d))) / (0.6745 * math.sqrt(2)) if d.size else 0.0


def _shrink(gray: np.ndarray, side: int) -> np.ndarray:
    """(H, W) -> area-averaged copy with the longer side at most `side`."""
    h, w = gray.shape
    f = side / max(h, w)
    if f >= 1:
        return gray.astype(np.float64)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    img = Image.fromarray(np.ascontiguousarray(gray, dtype=np.float32), mode="F")
    return np.asarray(img.resize(size, Image.Resampling.BOX), dtype=np.float64)


def _erode(mask: np.ndarray) -> np.ndarray:
    """3x3 erosion of an (H, W) mask; pixels outside count as True."""
    m = np.pad(mask, 1, constant_values=True)
    h, w = mask.shape
    out = mask.copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            out &= m[dy : dy + h, dx : dx + w]
    return out


def preprocess(image: np.ndarray | bytes, *, min_ink: float = 0.1, threshold: float = 0.2) -> Preprocessed:
    """Drawing or image (array or file bytes) -> MNIST-style (28, 28) input plus display stages.

    Never raises for an image it can decode: a blank one, a speck or something with no digit-like
    strokes (noise, a photo of a room) comes back `empty` with a message saying so.
    min_ink: the smallest mark that counts as a digit, as the strokes' bounding box's longer side over
    the image's longer side; smaller marks (a dot, a speck) are reported as empty.
    threshold: ink fainter than this, after stretching background..darkest stroke to 0..1, is noise.
    """
    array = load_image(bytes(image)) if isinstance(image, bytes | bytearray | memoryview) else image
    gray = to_grayscale(array)  # (H, W)
    stages: dict[str, np.ndarray] = {"input": gray}

    # 1. background (even when unevenly lit, even under ink) to 0, strongest stroke to 1
    bg = _background(gray)  # (H, W)
    ink = (gray - bg) / np.maximum(1.0 - bg, 0.05)  # ink in proportion to the local light
    ink, lines = remove_lines(ink)  # ruled or squared paper: the printed lines go, the pen's ink stays
    if lines:  # only then: a drawing's strip keeps its four stages
        stages["lines_removed"] = np.clip(ink, 0.0, 1.0)  # the ink, light on dark, without the paper's lines
    peak = float(ink.max())
    if not peak >= MIN_CONTRAST:
        return Preprocessed(None, stages, True, EMPTY_MESSAGE, None)
    ink = np.clip(ink / peak, 0.0, 1.0)
    mask = _strokes(ink, threshold)  # (H, W): faint marks away from the strokes and lone pixels go
    if not mask.any():
        return Preprocessed(None, stages, True, SPECK_MESSAGE, None)

    # 2. crop to the strokes' bounding box; a mark much smaller than the canvas is not a digit
    bbox = _bbox(mask)
    top, left, bottom, right = bbox
    extent = max(bottom - top, right - left)
    if extent < 2 or extent < min_ink * max(gray.shape):
        return Preprocessed(None, stages, True, SPECK_MESSAGE, bbox)
    crop = np.where(mask[top:bottom, left:right], ink[top:bottom, left:right], 0.0)  # (h, w)
    stages["crop"] = crop
    if not looks_like_strokes(crop > 0):
        return Preprocessed(None, stages, True, NOT_A_DIGIT_MESSAGE, bbox, not_digit=True)

    # 3. longer side to 20 px, aspect kept, anti-aliased; thin pens thickened so they survive
    fit = _fit_box(crop, BOX)  # (<=20, <=20), longer side 20
    stages["fit20"] = fit

    # 4. into 28x28 with the centre of mass at the centre
    centered = _paste_centered(fit, SIZE, CENTRE)  # (28, 28)
    stages["centered"] = centered
    return Preprocessed(centered, stages, False, "", bbox)


def dataset_image(image: np.ndarray) -> Preprocessed:
    """A dataset's own (28, 28) image (uint8, or float in [0, 1]) as it is: already the models' input, so none of
    the drawing's checks or fitting apply. A Fashion-MNIST coat fills its square and is no pen stroke; sent through
    `preprocess` it was refused as "not a digit" (3% of the test images) or re-fitted into 20x20 pixels."""
    array = np.asarray(image)
    if array.shape != (SIZE, SIZE):
        raise ValueError(f"A dataset image is {SIZE}x{SIZE} pixels, not {array.shape}.")
    x = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else np.clip(array.astype(np.float32), 0.0, 1.0)
    return Preprocessed(x, {"centered": x}, False, "", None)


def _strokes(ink: np.ndarray, threshold: float) -> np.ndarray:
    """(H, W) bool: the strokes of an (H, W) ink map with its peak at 1.

    Strong pixels (at least STRONG) that have a strong neighbour, plus fainter ones down to
    `threshold` within half a stroke width of them: a stroke's soft edges. Faint marks away from the
    strokes, such as ruled lines, paper grain or the edge of a shadow, are dropped.
    """
    strong = _despeckle(ink >= STRONG)  # (H, W)
    mask = np.zeros_like(strong)
    if not strong.any():
        return mask
    h, w = ink.shape
    top, left, bottom, right = _bbox(strong)
    reach = max(1, math.ceil(stroke_width(strong[top:bottom, left:right]) / 2))
    top, left = max(top - reach, 0), max(left - reach, 0)
    bottom, right = min(bottom + reach, h), min(right + reach, w)
    grown = _dilate(strong[top:bottom, left:right], reach)  # (h'+2r, w'+2r) bool: a quarter of the bytes of floats
    near = grown[reach:-reach, reach:-reach] > 0  # (h', w')
    mask[top:bottom, left:right] = near & (ink[top:bottom, left:right] >= threshold)
    return mask


def looks_like_strokes(mask: np.ndarray) -> bool:
    """Whether an (h, w) mask cropped to its ink could be a handwritten digit: pen strokes, not noise
    or the shapes in a photo. A digit is one to a few connected pieces; its strokes are thin next to
    its size and, laid end to end, a few times its height (MNIST's longest: about 4.5). Noise is a
    scatter of specks, or strokes hundreds of heights long; a solid blob is as wide as it is tall."""
    size = max(mask.shape)
    width = stroke_width(mask)  # mean stroke width, px
    length = np.count_nonzero(mask) / max(width, 1e-9)  # total stroke length, px
    if width > MAX_WIDTH * size or length > MAX_LENGTH * size:
        return False
    return _largest_pieces(mask, 3) >= MIN_PIECES_SHARE


def _largest_pieces(mask: np.ndarray, k: int) -> float:
    """Share of an (h, w) mask's pixels in its k largest 8-connected pieces, on a copy at most 128 px
    across (so a dotted pen line still counts as one piece)."""
    from scipy import ndimage  # here: only a digit candidate pays for the import

    f = math.ceil(max(mask.shape) / 128)
    if f > 1:  # f x f blocks by strided slices: numpy's any() over the axes of a reshape took 0.35 ms of 3 here
        h, w = mask.shape
        padded = np.pad(mask, ((0, -h % f), (0, -w % f)))
        blocks = np.zeros((padded.shape[0] // f, padded.shape[1] // f), dtype=bool)
        for dy in range(f):
            for dx in range(f):
                blocks |= padded[dy::f, dx::f]
        mask = blocks
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n <= k:
        return 1.0
    sizes = np.bincount(labels.ravel())[1:]  # (n,)
    return float(np.sort(sizes)[-k:].sum() / sizes.sum())


def _despeckle(mask: np.ndarray) -> np.ndarray:
    """Drop True pixels of an (H, W) mask with no True 8-neighbour; 1 px wide lines are kept."""
    m = np.pad(mask, 1)  # (H+2, W+2)
    h, w = mask.shape
    neighbours = np.zeros((h, w), dtype=np.uint8)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if (dy, dx) != (1, 1):
                neighbours += m[dy : dy + h, dx : dx + w]
    return mask & (neighbours > 0)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of the True pixels in a non-empty (H, W) mask, bottom/right exclusive."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels of an (H, W) mask: 2 * area / perimeter (a ribbon of width w: w)."""
    m = np.pad(mask, 1)  # (H+2, W+2)
    edges = np.count_nonzero(m[1:] != m[:-1]) + np.count_nonzero(m[:, 1:] != m[:, :-1])
    return 2.0 * np.count_nonzero(m) / max(edges, 1)


def _dilate(x: np.ndarray, radius: int) -> np.ndarray:
    """Grey (or, for a bool mask, binary) dilation of (H, W) by a (2r+1) square: a max filter built from O(log r)
    shifted maxima."""
    size = 2 * radius + 1
    out = np.pad(x, 2 * radius)  # (H+4r, W+4r), zeros outside
    for axis in (0, 1):
        covered = 1  # out[i] holds the max over padded[i : i + covered]
        while covered < size:
            step = min(covered, size - covered)
            shifted = np.zeros_like(out)
            if axis == 0:
                shifted[:-step] = out[step:]
            else:
                shifted[:, :-step] = out[:, step:]
            out = np.maximum(out, shifted)
            covered += step
    h, w = x.shape  # out[i] = max of x[i - 2r ..= i]: rows 0 .. h+2r are x grown by r on each side
    return out[: h + 2 * radius, : w + 2 * radius]  # (H+2r, W+2r)


def _fit_box(crop: np.ndarray, box: int) -> np.ndarray:
    """(h, w) ink -> (H', W') with max(H', W') == box, aspect ratio kept, anti-aliased, peak 1."""
    h, w = crop.shape
    scale = box / max(h, w)
    width = stroke_width(crop > 0)
    if width * scale < MIN_STROKE_PX:  # thicken (in input pixels) to a ~2 px stroke after fitting
        radius = math.ceil((TARGET_STROKE_PX / scale - width) / 2)
        crop = _dilate(crop, radius)  # (h + 2r, w + 2r)
        h, w = crop.shape
        scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # PIL wants (width, height)
    img = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32), mode="F")
    fit = np.asarray(img.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)  # (H', W')
    fit = np.clip(fit, 0.0, 1.0)  # LANCZOS rings slightly outside [0, 1]
    peak = float(fit.max())
    return fit / peak if peak > 0 else fit


def _paste_centered(fit: np.ndarray, size: int, centre: float) -> np.ndarray:
    """Paste (h, w) into a (size, size) zero field so its centre of mass lands nearest `centre`."""
    h, w = fit.shape
    total = float(fit.sum())
    ys, xs = np.arange(h), np.arange(w)
    cy = float(fit.sum(axis=1) @ ys) / total if total > 0 else (h - 1) / 2
    cx = float(fit.sum(axis=0) @ xs) / total if total > 0 else (w - 1) / 2
    top = min(max(round(centre - cy), 0), size - h)  # whole-pixel shift, clipped to stay inside
    left = min(max(round(centre - cx), 0), size - w)
    out = np.zeros((size, size), dtype=np.float32)
    out[top : top + h, left : left + w] = fit
    return out


def normalize(image: np.ndarray, mean: float = MNIST_MEAN, std: float = MNIST_STD) -> torch.Tensor:
    """(H, W) in [0, 1] -> float32 tensor (1, 1, H, W), standardised with the training statistics."""
    import torch  # here, so that preprocessing alone does not pay for importing torch

    a = np.asarray(image, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"Expected an (H, W) image, got shape {a.shape}.")
    x = torch.tensor(a)[None, None]  # (1, 1, H, W), a copy
    return (x - mean) / std
