"""Real MNIST digits as dark ink on synthetic paper: the ways a scan, a phone photo or the canvas brings a digit.

MNIST digits are real handwriting, so they make a better check of preprocessing than drawn templates (and
`vitdemo.synth.drawn` is the models' own check set, which this must not copy). `render(digit, case, rng)` upscales
one (28, 28) digit, sets its stroke weight, and puts it on paper the way the case says: tightly cropped so
the ink touches the border, blurred and downscaled, thick marker or thin grainy pencil, grey pencil, ruled
or squared paper, uneven light with a shadow, or white strokes on the transparent canvas running to its
edge. Every sample comes with `clean`: the same strokes, black on white with a margin, the image that
preprocessing handles best, so a test can ask how much of the digit survives each case.
numpy + Pillow only; reproducible from the generator's seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

CASES = (
    "clean",  # black on white with a margin: the reference
    "tight",  # cropped to the ink: strokes touch the border
    "blurry",  # a blurry low-resolution scan (20-36 px tall), cropped close
    "marker",  # thick marker, tight crop
    "pencil",  # thin grainy pencil
    "grey_pencil",  # light grey pencil on off-white paper, tight crop
    "lined",  # ruled paper
    "squared",  # squared (grid) paper, tight crop
    "shadow",  # a phone photo: gradient light, a soft shadow, sensor noise, tight crop
    "canvas_edge",  # the app's canvas (white on transparent) with the digit running into its edge
)
SCALE = 6  # upscaling of the 28 px digit: strokes of ~12-20 px, as in a scan at a moderate resolution


@dataclass(frozen=True, eq=False)
class Sample:
    image: np.ndarray  # (H, W, 3) uint8 paper, or (H, W, 4) uint8 canvas for "canvas_edge"
    clean: np.ndarray  # (h, w) uint8: the same strokes, black on white with a margin
    label: int
    case: str


def strokes(digit: np.ndarray, weight: float = 0.0) -> np.ndarray:
    """(28, 28) uint8 MNIST digit -> (28*SCALE, 28*SCALE) float ink coverage in [0, 1].

    weight > 0 thickens (a max filter of that many upscaled pixels), < 0 thins (a higher ink threshold).
    """
    d = Image.fromarray(np.asarray(digit, dtype=np.float32) / 255.0, mode="F")
    c = np.asarray(d.resize((28 * SCALE,) * 2, Image.Resampling.BICUBIC), dtype=np.float32)
    c = np.clip((c - 0.3) / 0.4, 0.0, 1.0)  # a smooth edge about SCALE/2 px wide, like ink
    if weight > 0:
        size = 2 * round(weight) + 1
        c = np.asarray(Image.fromarray(c, mode="F").filter(ImageFilter.MaxFilter(size)), dtype=np.float32)
    elif weight < 0:
        t = min(-weight, 0.85)  # keep only the stroke's core
        c = np.clip((c - t) / (1.0 - t) * 2, 0.0, 1.0)
    return c


def _bbox(c: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero((c > 0.5).any(axis=1)), np.flatnonzero((c > 0.5).any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def crop(c: np.ndarray, margin: float) -> np.ndarray:
    """Crop coverage to the ink's box plus `margin` (a fraction of its longer side) on every side;
    a negative margin cuts that much into the strokes, as a careless tight crop does."""
    top, left, bottom, right = _bbox(c)
    m = round(margin * max(bottom - top, right - left))
    if m >= 0:
        return np.pad(c[top:bottom, left:right], m)
    cut = c[top - m : bottom + m, left - m : right + m]
    return cut if cut.size and cut.max() > 0.5 else c[top:bottom, left:right]


def smooth_noise(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency noise in about [-1, 1]: random values on a coarse grid, smoothly upsampled."""
    coarse = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    img = Image.fromarray(coarse, mode="F").resize(shape[::-1], Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32)


def paper(shape: tuple[int, int], rng: np.random.Generator, tint: float = 0.04) -> np.ndarray:
    """(H, W, 3) float paper: off-white, a little blotchy, with fine grain."""
    base = 0.93 + rng.uniform(-tint, tint, 3)  # (3,)
    blotch = 0.02 * smooth_noise(shape, 6, rng)[..., None]
    grain = rng.normal(0, 0.01, shape)[..., None]
    return np.clip(base + blotch + grain, 0, 1).astype(np.float32)


def rule(sheet: np.ndarray, spacing: float, rng: np.random.Generator, *, vertical: bool = False) -> np.ndarray:
    """Draw faint light-blue (or grey) lines across the (H, W, 3) sheet every `spacing` px."""
    colour = np.array([0.55, 0.7, 0.95]) if rng.random() < 0.7 else np.array([0.72, 0.72, 0.72])
    width = max(1, round(spacing / 25))
    out = sheet.copy()
    n = out.shape[1] if vertical else out.shape[0]
    for start in np.arange(rng.uniform(0, spacing), n, spacing):
        s = slice(int(start), int(start) + width)
        if vertical:
            out[:, s] *= colour
        else:
            out[s] *= colour
    return out


def lighting(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(H, W, 1) light: a gradient from one side plus a soft-edged shadow across the sheet."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w] / max(h, w)
    a, b = rng.uniform(0, 2 * np.pi, 2)
    gradient = 1.0 - rng.uniform(0.15, 0.35) * (0.5 + 0.5 * np.sin(a) * (xs - 0.5) * 2 + 0.5 * np.cos(a) * (ys - 0.5))
    edge = np.cos(b) * (xs - xs.mean()) + np.sin(b) * (ys - ys.mean()) - rng.uniform(-0.2, 0.2)
    shadow = 1.0 - rng.uniform(0.25, 0.45) / (1.0 + np.exp(-edge / rng.uniform(0.03, 0.12)))
    return np.clip(gradient * shadow, 0.2, 1.0)[..., None].astype(np.float32)


def ink_on(sheet: np.ndarray, c: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Composite ink of coverage (H, W) and RGB colour over the (H, W, 3) sheet."""
    return sheet * (1.0 - c[..., None]) + colour * c[..., None]


def to_uint8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def blur_down(x: np.ndarray, height: int, radius: float) -> np.ndarray:
    """Blur an (H, W, 3) float image, then downscale it to `height` rows (a low-resolution scan)."""
    img = Image.fromarray(to_uint8(x)).filter(ImageFilter.GaussianBlur(radius))
    width = max(1, round(x.shape[1] * height / x.shape[0]))
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0


PEN = np.array([0.08, 0.1, 0.3])  # dark blue-black ballpoint


def _paper_case(c: np.ndarray, case: str, rng: np.random.Generator) -> np.ndarray:
    """Coverage (already cropped) -> the case's (H, W, 3) uint8 image."""
    pen = PEN * rng.uniform(0.3, 1.3)
    if case in ("pencil", "grey_pencil"):
        pen = np.full(3, rng.uniform(0.35, 0.5) if case == "pencil" else rng.uniform(0.5, 0.62))
        c = c * rng.uniform(0.65, 1.0, c.shape).astype(np.float32)  # graphite grain
    sheet = paper(c.shape, rng)
    if case in ("lined", "squared"):
        spacing = c.shape[0] * rng.uniform(0.3, 0.5)
        sheet = rule(sheet, spacing, rng)
        if case == "squared":
            sheet = rule(sheet, spacing, rng, vertical=True)
    x = ink_on(sheet, c, pen)
    if case == "shadow":
        x = x * lighting(c.shape, rng) + rng.normal(0, 0.015, x.shape)
    if case == "blurry":
        x = blur_down(x, int(rng.integers(20, 37)), radius=rng.uniform(1.0, 3.0))
    return to_uint8(x)


def canvas_edge(c: np.ndarray, rng: np.random.Generator, size: int = 280) -> np.ndarray:
    """White strokes on a transparent (size, size, 4) canvas, the digit running into one or two edges."""
    c = crop(c, 0.0)
    scale = rng.uniform(0.75, 1.05) * size / max(c.shape)
    shape = (max(1, round(c.shape[1] * scale)), max(1, round(c.shape[0] * scale)))
    c = np.asarray(Image.fromarray(c, mode="F").resize(shape, Image.Resampling.BILINEAR), dtype=np.float32)
    h, w = c.shape
    top = 0 if rng.random() < 0.5 else size - h  # against the top or the bottom edge (or past both)
    left = int(rng.integers(min(0, size - w), max(0, size - w) + 1))
    alpha = np.zeros((size, size), dtype=np.float32)
    ys, xs = slice(max(top, 0), min(top + h, size)), slice(max(left, 0), min(left + w, size))
    alpha[ys, xs] = c[ys.start - top : ys.stop - top, xs.start - left : xs.stop - left]
    out = np.zeros((size, size, 4), dtype=np.uint8)
    out[..., :3] = 255
    out[..., 3] = to_uint8(alpha)
    return out


WEIGHTS = {"marker": (3.0, 7.0), "pencil": (-0.75, -0.55), "grey_pencil": (-0.5, 0.0)}  # stroke weight ranges


def render(digit: np.ndarray, label: int, case: str, rng: np.random.Generator) -> Sample:
    """One MNIST digit (28, 28) uint8 as the case's image plus its clean reference."""
    if case not in CASES:
        raise ValueError(f"unknown case {case!r}: expected one of {', '.join(CASES)}")
    lo, hi = WEIGHTS.get(case, (0.0, 1.0))
    c = strokes(digit, rng.uniform(lo, hi))
    if case == "canvas_edge":
        return Sample(canvas_edge(c, rng), to_uint8(1.0 - crop(c, 0.3)), label, case)
    if case in ("tight", "marker", "grey_pencil", "squared", "shadow"):
        c = crop(c, rng.uniform(-0.02, 0.0))  # the ink touches the border, or is cut by it
    elif case == "blurry":
        c = crop(c, rng.uniform(0.0, 0.08))
    else:
        c = crop(c, rng.uniform(0.05, 0.3))
    clean = to_uint8(1.0 - np.pad(c, round(0.3 * max(c.shape))))  # (h, w) black on white, a margin
    return Sample(_paper_case(c, case, rng), clean, label, case)


def samples(images: np.ndarray, labels: np.ndarray, case: str, n: int, seed: int = 0) -> Iterator[Sample]:
    """`n` samples of one case from the first `n` digits of (N, 28, 28) `images`, reproducible from `seed`."""
    rng = np.random.default_rng([seed, CASES.index(case)])
    for i in range(min(n, len(images))):
        yield render(np.asarray(images[i]), int(labels[i]), case, rng)


def photo(digit: np.ndarray, rng: np.random.Generator, size: int = 1000) -> np.ndarray:
    """A (size, size, 3) uint8 phone photo of one digit written large in the middle of a sheet:
    uneven light, a soft shadow and sensor noise (the benchmark's large input)."""
    c = Image.fromarray(crop(strokes(digit), 0.0), mode="F")
    h = size // 2
    c = np.asarray(c.resize((max(1, round(c.width * h / c.height)), h), Image.Resampling.BILINEAR), dtype=np.float32)
    top, left = (size - c.shape[0]) // 2, (size - c.shape[1]) // 2
    cover = np.zeros((size, size), dtype=np.float32)
    cover[top : top + c.shape[0], left : left + c.shape[1]] = c
    x = ink_on(paper(cover.shape, rng), cover, PEN) * lighting(cover.shape, rng)
    return to_uint8(x + rng.normal(0, 0.015, x.shape))


def case_accuracy(models: dict, images: np.ndarray, labels: np.ndarray, n: int = 300, seed: int = 0) -> dict:
    """{case: {model name: accuracy}} of loaded models on `n` samples of every case, through `analyze`.

    A refused image ("not a digit", or empty) counts as wrong. One image at a time with one intra-op
    thread, as the app runs them (two threads on a busy 2-core machine are over 10x slower).
    """
    import torch

    from vitdemo.explain.inference import analyze

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        table: dict[str, dict[str, float]] = {}
        for case in CASES:
            correct = dict.fromkeys(models, 0)
            count = 0
            for s in samples(images, labels, case, n, seed):
                result = analyze(s.image, models, explain=False)
                count += 1
                for name in models:
                    pred = result.predictions.get(name)
                    correct[name] += int(pred is not None and pred.label == s.label)
            table[case] = {name: c / max(count, 1) for name, c in correct.items()}
        return table
    finally:
        torch.set_num_threads(threads)
