"""Synthetic written numbers made from real MNIST digits: 1 to 8 digits on a wide canvas, each digit with its own
size, slant, baseline and gap (touching and slightly overlapping neighbours included); the label is the digit
string and each digit's box.

Vectorised over a whole batch, as the trainer's augmentation is (vitdemo.training.augment): every digit of every
number is placed by one affine map from canvas pixels to its 28x28 source, all of them resampled by one
`grid_sample`, and the digits of a number are merged by a per-pixel maximum (`scatter_reduce`), so overlapping ink
stays ink. A digit's box is read from its own rendered ink, so it covers it by construction. Every random number
comes from one seeded `torch.Generator` on the CPU: the same seed gives the same numbers on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vitdemo.data import Split
from vitdemo.numbers import CANVAS_H, CANVAS_W, MAX_DIGITS
from vitdemo.training.augment import augment, random_stroke_width

SOURCE = 28  # MNIST's field
INK = 0.25  # a pixel brighter than this (of 1) is ink: for boxes, both of the sources and of the rendered digits
MARGIN_PX = 2.0  # ink keeps this far from the canvas's left and right edges


@dataclass(frozen=True)
class NumberStyle:
    """How numbers are written. Sizes are in canvas pixels or as a factor of MNIST's own digit (about 20 px of
    ink in a 28 px field); the ranges are uniform."""

    min_digits: int = 1
    max_digits: int = MAX_DIGITS  # lengths are balanced: as many 1-digit numbers as 8-digit ones
    scale: tuple[float, float] = (0.75, 1.15)  # the whole number's size (a hand writes its digits alike)
    digit_scale: float = 0.1  # and each digit's own, +-10% around it
    slant: tuple[float, float] = (-0.35, 0.35)  # the number's shear: px to the right per px up (0.35 = 19 degrees)
    digit_slant: float = 0.08  # each digit's own slant around it
    baseline_px: float = 1.5  # each digit's own vertical jitter, +- px
    gap_px: tuple[float, float] = (-3.0, 6.0)  # between neighbours' footprints: < 0 overlaps, about 0 touches
    styles_ratio: float = 0.0  # this share of the digits comes from the synthetic styles (flagged 1, crossed 7...)
    stroke_aug: float = 0.0  # pen width (vitdemo.training.augment.random_stroke_width), per digit
    elastic: float = 0.0  # smooth wobble of each digit's strokes (augment's elastic field)

    def validate(self) -> None:
        if not 1 <= self.min_digits <= self.max_digits <= MAX_DIGITS:
            raise ValueError(f"digits per number must be within 1..{MAX_DIGITS}")
        if not 0 <= self.styles_ratio <= 1:
            raise ValueError("styles_ratio must be in [0, 1]")


CLEAN = NumberStyle()  # MNIST's digits as written: the validation and test numbers
HANDWRITING = NumberStyle(styles_ratio=0.1, stroke_aug=0.75, elastic=1.0)  # training: the drawn numbers' gap too


@dataclass(frozen=True)
class Numbers:
    """A batch of written numbers and their labels."""

    images: torch.Tensor  # (N, H, W) uint8, light ink on black
    digits: torch.Tensor  # (N, S) int64, the digits left to right, -1 after the last one
    lengths: torch.Tensor  # (N,) int64, 1..S
    boxes: torch.Tensor  # (N, S, 4) float32, each digit's ink box x0, y0, x1, y1 in pixels (ends exclusive)

    def __len__(self) -> int:
        return len(self.lengths)

    def texts(self) -> list[str]:
        """The numbers as strings: ['2026', '7', ...]."""
        return ["".join(str(int(d)) for d in row[: int(n)]) for row, n in zip(self.digits, self.lengths, strict=True)]

    def subset(self, idx: torch.Tensor | slice) -> Numbers:
        return Numbers(self.images[idx], self.digits[idx], self.lengths[idx], self.boxes[idx])

    def to(self, device: torch.device | str) -> Numbers:
        return Numbers(*(t.to(device) for t in (self.images, self.digits, self.lengths, self.boxes)))


def ink_boxes(images: torch.Tensor, threshold: float = INK) -> torch.Tensor:
    """Each image's ink box: (M, H, W) float in [0, 1] -> (M, 4) float x0, y0, x1, y1 (ends exclusive).
    An image without ink gets the whole field (nothing to crop)."""
    M, H, W = images.shape
    ink = images > threshold  # (M, H, W)
    rows, cols = ink.any(2), ink.any(1)  # (M, H), (M, W)
    ys, xs = torch.arange(H, device=images.device), torch.arange(W, device=images.device)
    y0 = torch.where(rows, ys, H).amin(1)
    y1 = torch.where(rows, ys, -1).amax(1) + 1
    x0 = torch.where(cols, xs, W).amin(1)
    x1 = torch.where(cols, xs, -1).amax(1) + 1
    box = torch.stack([x0, y0, x1, y1], 1).float()  # (M, 4)
    empty = ~rows.any(1)
    return torch.where(empty[:, None], torch.tensor([0.0, 0.0, W, H], device=images.device), box)


def balanced_lengths(n: int, style: NumberStyle, g: torch.Generator) -> torch.Tensor:
    """n lengths, each of min..max_digits equally often (up to one), in a seeded order. (n,) int64."""
    span = style.max_digits - style.min_digits + 1
    lengths = style.min_digits + torch.arange(n) % span
    return lengths[torch.randperm(n, generator=g)]


def _uniform(shape: tuple[int, ...], lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=g)


def _pick_sources(
    pool: Split, styles: Split | None, k: int, ratio: float, g: torch.Generator, order: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """k source digits (k, 28, 28) uint8 and their labels (k,): from `pool` (at random, or its images `order`),
    a `ratio` share from `styles`."""
    idx = torch.randint(len(pool), (k,), generator=g) if order is None else order
    images, labels = pool.images[idx], pool.labels[idx]
    use = torch.rand(k, generator=g) < ratio  # drawn even without styles: the same seed, the same numbers
    if styles is not None and len(styles) and ratio > 0:
        sidx = torch.randint(len(styles), (k,), generator=g)
        images = torch.where(use[:, None, None], styles.images[sidx], images)
        labels = torch.where(use, styles.labels[sidx], labels)
    return images, labels


def _roughen(src: torch.Tensor, style: NumberStyle, g: torch.Generator) -> torch.Tensor:
    """The house's handwriting augmentation on each source digit: pen width, then elastic wobble.
    (k, 1, 28, 28) float in [0, 1] -> the same."""
    src = random_stroke_width(src, style.stroke_aug, 0.0, g)
    return augment(src, 0.0, g, elastic=style.elastic) if style.elastic > 0 else src


def _layout(
    ink: torch.Tensor, valid: torch.Tensor, style: NumberStyle, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where each digit goes. ink: (N, S, 4) source ink boxes; valid: (N, S) bool.
    Returns the scale s, slant k, and the destination centre cx, cy, each (N, S), in canvas pixels.

    1. draw each number's size and slant and each digit's own, and the gap after each digit;
    2. a digit's footprint is its ink width plus what its slant adds, times its scale; the footprints and gaps
       add up from the left (an exclusive cumulative sum);
    3. a number wider than the canvas shrinks as a whole; it then sits at a random place along the canvas.
    """
    N, S = valid.shape
    s = _uniform((N, 1), *style.scale, g) * _uniform((N, S), 1 - style.digit_scale, 1 + style.digit_scale, g)
    k = _uniform((N, 1), *style.slant, g) + _uniform((N, S), -style.digit_slant, style.digit_slant, g)
    gap = _uniform((N, S), *style.gap_px, g)
    base = _uniform((N, S), -style.baseline_px, style.baseline_px, g) + _uniform((N, 1), -1.0, 1.0, g)
    ink_w, ink_h = ink[..., 2] - ink[..., 0], ink[..., 3] - ink[..., 1]  # (N, S)
    width = torch.where(valid, (ink_w + k.abs() * ink_h) * s, 0.0)  # the footprint (N, S)
    step = width + torch.where(valid, gap, 0.0)
    left = torch.cumsum(step, 1) - step  # (N, S) the footprint's left edge, from the number's start
    last = (valid.sum(1) - 1).clamp(min=0)  # (N,)
    total = (left + width).gather(1, last[:, None])  # (N, 1) the number's width (no gap after its last digit)
    fit = ((CANVAS_W - 2 * MARGIN_PX) / total.clamp(min=1.0)).clamp(max=1.0)  # (N, 1)
    s, left, width, total = s * fit, left * fit, width * fit, total * fit
    start = MARGIN_PX + torch.rand((N, 1), generator=g) * (CANVAS_W - 2 * MARGIN_PX - total).clamp(min=0.0)
    cx = start + left + width / 2
    half_h = ink_h * s / 2
    cy = (CANVAS_H / 2 + base).clamp(min=half_h + 1, max=CANVAS_H - 1 - half_h)
    return s, k, cx, cy


def _grid(ink: torch.Tensor, s: torch.Tensor, k: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
    """grid_sample's grid mapping each canvas pixel to its source digit: (K,) per-digit values -> (K, H, W, 2).

    A source point (x, y) lands at cx + s (x - x_c) + k s (y_c - y), cy + s (y - y_c): scaled about its ink
    centre (x_c, y_c) and sheared so its top leans right for k > 0. Inverted per canvas pixel centre (u, v).
    """
    xc, yc = (ink[:, 0] + ink[:, 2]) / 2, (ink[:, 1] + ink[:, 3]) / 2  # (K,)
    u = torch.arange(CANVAS_W, dtype=torch.float32) + 0.5  # (W,)
    v = torch.arange(CANVAS_H, dtype=torch.float32) + 0.5  # (H,)
    dy = (v[None, :, None] - cy[:, None, None]) / s[:, None, None]  # (K, H, 1)
    dx = (u[None, None, :] - cx[:, None, None]) / s[:, None, None]  # (K, 1, W)
    ys = (yc[:, None, None] + dy).expand(-1, -1, CANVAS_W)  # (K, H, W)
    xs = xc[:, None, None] + dx + k[:, None, None] * dy  # (K, H, W)
    return torch.stack([xs, ys], -1) / SOURCE * 2 - 1  # (K, H, W, 2), align_corners=False


def render_numbers(
    pool: Split,
    lengths: torch.Tensor,
    g: torch.Generator,
    style: NumberStyle = CLEAN,
    styles: Split | None = None,
    order: torch.Tensor | None = None,
) -> Numbers:
    """Numbers of the given `lengths` (N,) from the digits of `pool` (and `styles`), drawn from `g`; `order`
    (sum of lengths,) picks the pool's images instead (each test digit once)."""
    N, S = len(lengths), MAX_DIGITS
    valid = torch.arange(S)[None, :] < lengths[:, None]  # (N, S)
    K = int(valid.sum())
    src_u8, labels = _pick_sources(pool, styles, K, style.styles_ratio, g, order)  # (K, 28, 28), (K,)
    src = _roughen(src_u8.float().div(255).unsqueeze(1), style, g)  # (K, 1, 28, 28)
    ink = torch.zeros(N, S, 4)
    ink[valid] = ink_boxes(src[:, 0])
    s, k, cx, cy = (t[valid] for t in _layout(ink, valid, style, g))  # each (K,)
    grid = _grid(ink[valid], s, k, cx, cy)  # (K, H, W, 2)
    drawn = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)  # (K, 1, H, W)
    owner = valid.nonzero()[:, 0]  # (K,) the number each digit belongs to
    flat = drawn.flatten(1)  # (K, H*W)
    canvas = torch.zeros(N, CANVAS_H * CANVAS_W).scatter_reduce_(0, owner[:, None].expand_as(flat), flat, "amax")
    images = canvas.view(N, CANVAS_H, CANVAS_W).mul(255).round().clamp(0, 255).to(torch.uint8)
    digits = torch.full((N, S), -1, dtype=torch.int64)
    digits[valid] = labels
    boxes = torch.zeros(N, S, 4)
    boxes[valid] = ink_boxes(drawn[:, 0])
    return Numbers(images, digits, lengths.clone(), boxes)


def make_numbers(
    pool: Split,
    n: int,
    seed: int,
    style: NumberStyle = CLEAN,
    *,
    styles: Split | None = None,
    chunk: int = 256,
) -> Numbers:
    """`n` numbers from the digits of `pool` (one split's images: the same split gives the same digits), their
    lengths balanced, reproducible from `seed`; rendered `chunk` numbers at a time (bounded memory)."""
    style.validate()
    g = torch.Generator().manual_seed(seed)
    lengths = balanced_lengths(n, style, g)
    parts = [render_numbers(pool, lengths[i : i + chunk], g, style, styles) for i in range(0, n, chunk)]
    if not parts:
        return render_numbers(pool, lengths, g, style, styles)
    return Numbers(
        *(torch.cat(ts) for ts in zip(*((p.images, p.digits, p.lengths, p.boxes) for p in parts), strict=True))
    )
