"""Synthetic handwriting in styles MNIST lacks, rendered straight into MNIST's format, for training only.

MNIST was written by American writers: its 1 is mostly a bare stick, its 7 uncrossed. Many people write a 1 with
a long flag (read as a 7), cross their 7, leave the top of a 4 open, give a 9 a straight stem or a 2 a loop. A
few percent of such digits in every batch (`TrainConfig.styles_ratio`) teach the models those shapes.

This generator is deliberately unlike the evaluation sets (`vitdemo.synth.drawn`, `vitdemo.synth.drawn_styles`), which draw
polylines and ellipse arcs with a round brush on a 280 px canvas and go through the app's preprocessing: here each
glyph is a few key points per stroke, joined by Catmull-Rom splines (a stroke's pieces meet at sharp corners), the
key points wobble per sample, the pen is a disc whose width follows a smooth random pressure and thins at the end
of a stroke, and the result is placed as MNIST placed its digits (the longer side fitted to 20 px, the centre of
mass at the centre of 28 x 28) without the app's preprocessing. Seeds are separate too: `style_pool(n, seed)`.
numpy + Pillow; about 1 ms per digit.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    import torch

    from vitdemo.data import Split

Point = tuple[float, float]  # (x, y) in the glyph's unit box, y down
Piece = list[Point]  # key points of one smooth curve
Stroke = list[Piece]  # pieces drawn without lifting the pen; consecutive pieces meet at a corner


def ring(cx: float, cy: float, rx: float, ry: float, start_deg: float = -90.0, n: int = 8) -> Piece:
    """Key points once around an ellipse, starting at `start_deg` (0 = right, 90 = down), back to the start."""
    ts = [math.radians(start_deg + 360.0 * i / n) for i in range(n + 1)]
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t)) for t in ts]


@dataclass(frozen=True)
class Glyph:
    label: int
    weight: float  # how often it is drawn, relative to the others
    strokes: tuple[Stroke, ...]


GLYPHS: dict[str, Glyph] = {
    # the 1 with a flag, short or long (a continental 1), with or without a foot
    "one_flag_long": Glyph(1, 3.0, ([[(0.14, 0.46), (0.36, 0.24), (0.62, 0.0)], [(0.62, 0.0), (0.6, 1.0)]],)),
    "one_flag_short": Glyph(1, 2.0, ([[(0.3, 0.22), (0.58, 0.0)], [(0.58, 0.0), (0.56, 1.0)]],)),
    "one_flag_foot": Glyph(
        1, 1.5, ([[(0.15, 0.3), (0.55, 0.0)], [(0.55, 0.0), (0.55, 1.0)]], [[(0.2, 1.0), (0.9, 0.98)]])
    ),
    # the crossed 7, the 7 with a tick, the 7 with a curved stem
    "seven_crossed": Glyph(
        7,
        3.0,
        (
            [[(0.05, 0.06), (0.5, 0.02), (0.95, 0.0)], [(0.95, 0.0), (0.55, 0.5), (0.35, 1.0)]],
            [[(0.3, 0.52), (0.6, 0.5), (0.9, 0.47)]],
        ),
    ),
    "seven_tick": Glyph(
        7, 1.5, ([[(0.04, 0.22), (0.05, 0.02)], [(0.05, 0.02), (0.95, 0.02)], [(0.95, 0.02), (0.4, 1.0)]],)
    ),
    "seven_curved": Glyph(
        7, 1.0, ([[(0.05, 0.05), (0.95, 0.03)], [(0.95, 0.03), (0.6, 0.4), (0.45, 0.7), (0.42, 1.0)]],)
    ),
    # the open 4: the top left open (a 'h'-like 4) or the diagonal not meeting the stem
    "four_open_top": Glyph(
        4, 2.0, ([[(0.1, 0.0), (0.08, 0.58)], [(0.08, 0.58), (0.95, 0.56)]], [[(0.72, 0.02), (0.7, 1.0)]])
    ),
    "four_open_diag": Glyph(
        4, 2.0, ([[(0.5, 0.0), (0.05, 0.64)], [(0.05, 0.64), (0.95, 0.62)]], [[(0.72, 0.28), (0.7, 1.0)]])
    ),
    # the 9 with a straight stem, and with a tail curling left
    "nine_straight": Glyph(9, 2.5, ([ring(0.45, 0.27, 0.36, 0.26, start_deg=0.0), [(0.81, 0.27), (0.8, 1.0)]],)),
    "nine_tail": Glyph(
        9, 1.0, ([ring(0.45, 0.27, 0.35, 0.25, start_deg=0.0), [(0.8, 0.27), (0.78, 0.75), (0.55, 1.0), (0.25, 0.93)]],)
    ),
    # the 2 with a loop at its foot, and the z-like 2
    "two_loop": Glyph(
        2,
        2.0,
        (
            [
                [
                    (0.08, 0.28),
                    (0.45, 0.0),
                    (0.85, 0.25),
                    (0.6, 0.6),
                    (0.2, 0.9),
                    (0.1, 0.8),
                    (0.25, 0.74),
                    (0.38, 0.92),
                    (0.95, 0.95),
                ]
            ],
        ),
    ),
    "two_z": Glyph(
        2, 1.0, ([[(0.1, 0.2), (0.5, 0.0), (0.88, 0.22)], [(0.88, 0.22), (0.08, 1.0)], [(0.08, 1.0), (0.95, 0.98)]],)
    ),
    # the others, in shapes that are common in Europe: a flat-topped 3, a 5 and a 6 written in one go, a two-loop 8
    "three_flat": Glyph(
        3,
        1.0,
        (
            [
                [(0.08, 0.02), (0.92, 0.02)],
                [(0.92, 0.02), (0.4, 0.42)],
                [(0.4, 0.42), (0.85, 0.62), (0.55, 1.0), (0.08, 0.85)],
            ],
        ),
    ),
    "five_oneway": Glyph(
        5,
        1.0,
        (
            [
                [(0.9, 0.02), (0.2, 0.02)],
                [(0.2, 0.02), (0.14, 0.45)],
                [(0.14, 0.45), (0.65, 0.38), (0.9, 0.72), (0.5, 1.0), (0.08, 0.86)],
            ],
        ),
    ),
    "six_round": Glyph(
        6, 1.0, ([[(0.82, 0.05), (0.35, 0.3), (0.12, 0.72), (0.45, 1.0), (0.85, 0.75), (0.5, 0.5), (0.15, 0.7)]],)
    ),
    "eight_loops": Glyph(
        8,
        1.0,
        (
            [
                [
                    (0.5, 0.5),
                    (0.85, 0.24),
                    (0.5, 0.0),
                    (0.15, 0.24),
                    (0.5, 0.5),
                    (0.9, 0.78),
                    (0.5, 1.0),
                    (0.1, 0.78),
                    (0.5, 0.5),
                ]
            ],
        ),
    ),
    "zero_slanted": Glyph(0, 1.0, ([ring(0.5, 0.5, 0.42, 0.5, start_deg=-100.0, n=9)[:-1] + [(0.45, 0.02)]],)),
}
GLYPH_NAMES = tuple(GLYPHS)

SUPER = 4  # supersampling of the 28 px output
FIELD = 28  # MNIST's image side
BOX = 20  # MNIST fitted each digit's longer side to 20 px
CANVAS = 48  # the glyph is drawn centred on a 48 px (x SUPER) canvas, then cut at its centre of mass


def catmull_rom(points: Piece, per_span: int = 12) -> np.ndarray:
    """A smooth curve through the key points (centripetal-free, uniform Catmull-Rom). (P, 2) -> (S, 2)."""
    p = np.asarray(points, dtype=np.float64)  # (P, 2)
    if len(p) < 3:
        t = np.linspace(0.0, 1.0, per_span + 1)[:, None]
        return p[0] + t * (p[-1] - p[0])  # a straight piece
    closed = np.allclose(p[0], p[-1])
    ext = np.vstack([p[-2], p, p[1]]) if closed else np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    t = np.linspace(0.0, 1.0, per_span, endpoint=False)[:, None]  # (T, 1)
    out = []
    for i in range(1, len(ext) - 2):
        p0, p1, p2, p3 = ext[i - 1], ext[i], ext[i + 1], ext[i + 2]
        out.append(
            0.5
            * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
        )
    out.append(p[-1:])
    return np.vstack(out)


@dataclass(frozen=True)
class Hand:
    """One writer's way with one digit: the random choices behind a sample."""

    jitter: float  # key points wobble by this much (unit box)
    slant: float  # x += slant * (0.5 - y)
    rotation_deg: float
    aspect: float  # width relative to height
    pen_px: float  # pen width in output pixels (of 28)
    pressure: float  # how much the width varies along a stroke (0 = constant)


def random_hand(rng: np.random.Generator) -> Hand:
    return Hand(
        jitter=rng.uniform(0.0, 0.035),
        slant=rng.uniform(-0.15, 0.4),
        rotation_deg=rng.uniform(-12, 12),
        aspect=rng.uniform(0.7, 1.25),
        pen_px=rng.uniform(1.4, 3.8),
        pressure=rng.uniform(0.0, 0.35),
    )


def _paths(glyph: Glyph, hand: Hand, rng: np.random.Generator) -> list[np.ndarray]:
    """Every stroke as one dense (S, 2) path in the unit box after the hand's wobble, slant, aspect, rotation."""
    t = math.radians(hand.rotation_deg)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    paths = []
    for stroke in glyph.strokes:
        wobble: dict[Point, np.ndarray] = {}  # a corner shared by two pieces moves once
        pieces = []
        for piece in stroke:
            pts = np.array([wobble.setdefault(p, np.asarray(p) + rng.normal(0, hand.jitter, 2)) for p in piece])
            pieces.append(catmull_rom([tuple(q) for q in pts]))
        path = np.vstack(pieces) - 0.5  # (S, 2), centred
        path[:, 0] = (path[:, 0] + hand.slant * (0.0 - path[:, 1])) * hand.aspect
        paths.append(path @ rot.T)
    return paths


def _draw(paths: list[np.ndarray], hand: Hand, rng: np.random.Generator) -> np.ndarray:
    """Stamp the pen along every path on the supersampled canvas, the glyph's longer side fitted to BOX px
    (ink included). Returns (CANVAS*SUPER, CANVAS*SUPER) float coverage in [0, 1]."""
    every = np.vstack(paths)
    lo, hi = every.min(0), every.max(0)
    pen = hand.pen_px * SUPER
    scale = (BOX * SUPER - pen) / max(float((hi - lo).max()), 1e-6)
    side = CANVAS * SUPER
    img = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(img)
    for path in paths:
        xy = (path - (lo + hi) / 2) * scale + side / 2  # (S, 2) canvas pixels
        n = len(xy)
        phase = rng.uniform(0, 2 * math.pi)
        s = np.linspace(0, 1, n)
        width = pen * (1 + hand.pressure * np.sin(2 * math.pi * s + phase)) * np.minimum(1.0, 0.6 + 4 * (1 - s))
        # stamp discs close enough to overlap: insert points along long gaps
        for (x0, y0), (x1, y1), w in zip(xy[:-1], xy[1:], width[:-1], strict=True):
            steps = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / max(w / 4, 1.0)))
            for k in range(steps):
                x, y, r = x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps, w / 2
                draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        x, y = xy[-1]
        draw.ellipse((x - width[-1] / 2, y - width[-1] / 2, x + width[-1] / 2, y + width[-1] / 2), fill=255)
    return np.asarray(img, dtype=np.float32) / 255.0


def _place(cover: np.ndarray) -> np.ndarray:
    """Cut FIELD x FIELD output pixels around the centre of mass and downsample: (28, 28) uint8, as MNIST."""
    total = cover.sum()
    ys, xs = np.indices(cover.shape)
    cy, cx = (ys * cover).sum() / total, (xs * cover).sum() / total
    half = FIELD * SUPER // 2
    # output pixel j covers supersampled [top + SUPER*j, top + SUPER*(j+1)): its centre is j = (c - top - 1.5) / SUPER,
    # so the centre of mass lands on 14.0 (index coordinates), where MNIST has it
    top, left = round(cy - 14.0 * SUPER - 1.5), round(cx - 14.0 * SUPER - 1.5)
    pad = FIELD * SUPER
    big = np.pad(cover, pad)
    cut = big[top + pad : top + pad + 2 * half, left + pad : left + pad + 2 * half]
    small = cut.reshape(FIELD, SUPER, FIELD, SUPER).mean(axis=(1, 3))  # box filter: anti-aliased
    return np.round(np.clip(small, 0, 1) * 255).astype(np.uint8)


def render(name: str, rng: np.random.Generator, hand: Hand | None = None) -> np.ndarray:
    """One sample of glyph `name`: (28, 28) uint8, light ink on black, MNIST's placement."""
    glyph = GLYPHS[name]
    hand = hand or random_hand(rng)
    return _place(_draw(_paths(glyph, hand, rng), hand, rng))


def style_pool(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` synthetic digits, glyphs drawn in proportion to their weights, reproducible from `seed`.

    Returns images (n, 28, 28) uint8 and labels (n,) int64. The seed stream is this module's own
    (`[seed, 0x5717E5]`), never that of the evaluation sets.
    """
    rng = np.random.default_rng([seed, 0x5717E5])
    weights = np.array([g.weight for g in GLYPHS.values()])
    names = rng.choice(len(GLYPHS), size=n, p=weights / weights.sum())
    images = np.stack([render(GLYPH_NAMES[i], rng) for i in names]) if n else np.zeros((0, FIELD, FIELD), np.uint8)
    labels = np.array([GLYPHS[GLYPH_NAMES[i]].label for i in names], dtype=np.int64)
    return images, labels


POOL_SIZE = 3000  # digits rendered once per training run (about 4 s); augmentation varies them further


def style_split(ratio: float, seed: int, device: torch.device | str = "cpu", n: int | None = None) -> Split | None:
    """A training run's pool of `n` (default POOL_SIZE) synthetic digits from its `seed`, on `device`; None when
    `ratio` is 0. The last pool is cached: a process that trains again (a resumed run, tests) renders it once."""
    if ratio <= 0:
        return None
    import torch

    from vitdemo.data import Split

    images, labels = _cached_pool(n or POOL_SIZE, seed)
    return Split(torch.from_numpy(images.copy()), torch.from_numpy(labels.copy())).to(device)


@functools.lru_cache(maxsize=1)
def _cached_pool(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return style_pool(n, seed)
