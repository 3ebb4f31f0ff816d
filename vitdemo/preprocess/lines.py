"""Ruled and squared paper: find the printed lines and take them out of the ink map before the crop.

An exercise book's lines are long, thin and straight, run across the whole image at a regular spacing, and are
lighter than the ink or as dark. Left in, a line is a faint mark that hysteresis keeps only next to a stroke, but
where two lines of squared paper cross they add up to a dark dot that passes for a stroke: the crop box then spans
the grid and the model sees a shrunken digit in a field of dots.

A line here is a band of a few rows (or columns) that at least LINE_SPAN of the image's width inks, evenly along
its length, and that is thin: a morphological opening with a long line-shaped kernel finds the same marks, but a
row profile also says how dark each line is, and shearing the image first lets the paper be turned a few degrees
(`_slope` finds by how much). A digit's stroke is that long only in a tight crop (a 7's bar, the sides of a 4),
and then it is as dark as the ink, so a band as dark as the ink counts as a line only in a grid that no digit
draws (`_lines_that_go`). Inside a line's band the pen's ink is what the line lets through: ink is light taken
away, so a pixel of darkness d on a line of darkness L holds pen ink of darkness 1 - (1 - d) / (1 - L); and a
stroke that crosses the line runs on on both sides of it, so the lesser of the ink just above and just below the
band fills a crossing that a dark line hides. numpy only.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

LINE_SPAN = 0.9  # a line inks at least this share of the image's width (a digit's stroke rarely does)
EVEN = 0.75  # evenly: that share of it is within this factor of its lower quartile (a curved stroke fades out)
MAX_LINE_WIDTH = 0.04  # a line is at most this wide, of the image's longer side (about 11 px of 280)
MIN_LINE = 0.1  # a line at least this dark (of the darkest ink) is worth removing: fainter ones never pass for ink
FAINT = 0.6  # a line at most this dark (of the darkest ink) is paper even alone; darker ones only in a grid
PRINT = 1.4  # beside faint lines, a darker one is print up to this many times as dark as the darkest of them
MIN_CROSSINGS = 2  # lines cross this often in a grid (a 4's bar may cross its side, once)
MAX_TILT = math.tan(math.radians(4))  # lines may be turned this far (a photo taken a little askew)
MIN_PART = 0.2  # a row of a tilted grid at least this much inside the image is judged on that part
MIN_SIDE = 48  # smaller images have no lines to find: a line and a pen stroke are both a pixel or two wide there
WORK = 256  # lines are found on a copy at most this many pixels across


class Band(NamedTuple):
    """A line found: its rows [top, bottom) in the sheared frame, and its darkness."""

    top: int
    bottom: int
    darkness: float


Lines = tuple[float, list[Band]]  # lines one way: their slope (rows per column) and their bands


def remove_lines(ink: np.ndarray) -> tuple[np.ndarray, int]:
    """(H, W) ink map (paper 0, ink up to about 1) -> the map without ruled lines (a copy, or the input itself
    when there are none), and how many lines went.

    Lines are found on a copy at most WORK pixels across, each block's darkest pixel (a thin line keeps its
    darkness), and erased at full size. Horizontal lines go first, then vertical ones, so that a grid's
    crossings, left at the vertical line's darkness by the first pass, go with the vertical lines in the second.
    """
    if min(ink.shape) < MIN_SIDE:
        return ink, 0
    f = math.ceil(max(ink.shape) / WORK)
    small = np.clip(_block_max(ink, f), 0.0, 1.0)  # (h, w)
    peak = float(small.max())
    if not peak > 0.0:
        return ink, 0
    found = (find_lines(small, peak), find_lines(np.ascontiguousarray(small.T), peak))  # across, then down
    going = _lines_that_go(small, found, peak)
    if not going[0] and not going[1]:
        return ink, 0
    out = np.array(ink, dtype=np.float32)  # (H, W), a copy
    for view, (slope, _), bands in zip((out, out.T), found, going, strict=True):  # out.T: a view into out
        for band in bands:
            _erase_band(view, slope, band.top * f, band.bottom * f, band.darkness)
    return out, len(going[0]) + len(going[1])


def _lines_that_go(small: np.ndarray, found: tuple[Lines, Lines], peak: float) -> tuple[list[Band], list[Band]]:
    """Which of the lines found in the (h, w) ink map, horizontal and vertical, are paper. One fainter than the
    ink (FAINT) is. One as dark as the ink may be a digit's straight stroke across a tight crop (a side of a 4,
    a 7's bar, the box of a square 0 or 8), so it is paper only in a grid, whose lines cross (`_crossings`)
    where a digit's strokes meet at corners; and when fainter lines are paper too, only if it is not much
    darker than they are (PRINT): one print's thin lines differ by how they fall on the pixels, a pen stroke
    next to a light ruling is far darker."""
    (_, across), (_, down) = found
    faint = [b.darkness for b in across + down if b.darkness <= FAINT * peak]
    like_print = PRINT * max(faint) if faint else peak
    dark = len(faint) < len(across) + len(down)
    grid = dark and _crossings(small, *found) >= MIN_CROSSINGS

    def going(bands: list[Band]) -> list[Band]:
        return [b for b in bands if b.darkness <= FAINT * peak or (grid and b.darkness <= like_print)]

    return going(across), going(down)


def _crossings(small: np.ndarray, across: Lines, down: Lines) -> int:
    """How many times the horizontal lines cross the vertical ones in an (h, w) ink map, each running on past
    the other on both sides (the four arms of a +: two lines of a box meet at a corner, a bar ends at a side)."""
    h, w = small.shape
    (sa, horizontal), (sd, vertical) = across, down
    count = 0
    for a in horizontal:
        for d in vertical:
            ya, xd = (a.top + a.bottom - 1) / 2, (d.top + d.bottom - 1) / 2  # row at x = w/2, column at y = h/2
            x = (xd + sd * (ya - sa * w / 2 - h / 2)) / (1.0 - sd * sa)  # where y = ya + sa (x - w/2) and
            y = ya + sa * (x - w / 2)  # x = xd + sd (y - h/2) meet
            r = max(a.bottom - a.top, d.bottom - d.top) + 2  # past both lines
            arms = ((y + sa * r, x + r), (y - sa * r, x - r), (y + r, x + sd * r), (y - r, x - sd * r))
            level = min(a.darkness, d.darkness) / 2
            count += all(_inked_near(small, *arm, level) for arm in arms)
    return count


def _inked_near(small: np.ndarray, y: float, x: float, level: float) -> bool:
    """Whether the (h, w) ink map reaches `level` within a pixel of (y, x), inside the image."""
    i, j = round(y), round(x)
    inside = 0 <= i < small.shape[0] and 0 <= j < small.shape[1]
    return inside and float(small[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2].max()) >= level


def find_lines(small: np.ndarray, peak: float) -> Lines:
    """Horizontal lines of an (h, w) ink map in [0, 1]: their slope (rows per column), and their bands, in the
    frame sheared by that slope (`_sheared_rows`)."""
    h, w = small.shape
    drift = min(math.ceil(MAX_TILT * w) + 1, h)  # rows a line may cross over the width
    near_rows = sliding_window_view(small >= MIN_LINE * peak, drift, axis=0).any(axis=-1)  # (h - drift + 1, w)
    if np.count_nonzero(near_rows, axis=1).max() < LINE_SPAN * w:  # no row has ink most of the way: no lines
        return 0.0, []
    cap = max(2, round(MAX_LINE_WIDTH * max(h, w)))  # the widest line, px
    slope = _slope(small, cap)
    margin = math.ceil(abs(slope) * w / 2) + 1  # sheared rows above and below the image that still cross it
    rows = _sheared_rows(np.arange(-margin, h + margin), w, slope)  # (h + 2 margin, w)
    inside = (rows >= 0) & (rows < h)
    sheared = np.where(inside, small[np.clip(rows, 0, h - 1), np.arange(w)], np.nan)  # lines run along rows
    padded = _pad_end(sheared.T, 1, np.nan).T  # (h + 2 margin + 2, w)
    spread = np.fmax(np.fmax(padded[:-2], padded[1:-1]), padded[2:])  # a row or so of tilt error
    return slope, [Band(top - margin, bottom - margin, value) for top, bottom, value in _bands(spread, cap, peak)]


def _block_max(x: np.ndarray, f: int) -> np.ndarray:
    """(H, W) -> (ceil(H / f), ceil(W / f)) maxima of f x f blocks. By strided slices: numpy's max over the
    axes of a (h, f, w, f) reshape is several times slower."""
    if f == 1:
        return x
    h, w = x.shape
    if h % f or w % f:
        x = np.pad(x, ((0, -h % f), (0, -w % f)), mode="edge")
    rows = x[0::f]
    for i in range(1, f):
        rows = np.maximum(rows, x[i::f])
    out = rows[:, 0::f]
    for i in range(1, f):
        out = np.maximum(out, rows[:, i::f])
    return out


def _sheared_rows(ys: np.ndarray, w: int, slope: float) -> np.ndarray:
    """(len(ys), w) image row of sheared row y in column x: y + slope * (x - w / 2), rounded; NaN-free but
    possibly outside the image (a tilted line near an edge runs partly off it)."""
    offset = np.round(slope * (np.arange(w) - w / 2)).astype(np.intp)  # (w,)
    return np.asarray(ys, dtype=np.intp)[:, None] + offset[None, :]


def _tophat(profiles: np.ndarray, cap: int) -> np.ndarray:
    """(..., n) profiles minus their grey opening (zeros beyond the ends): the bumps at most about `cap` wide,
    on a zero baseline. By hand with sliding windows, all profiles at once: scipy.ndimage.grey_opening takes one
    profile per call, and its overhead on 17 short profiles costs more than the rest of finding the lines."""
    window = 2 * cap + 1
    eroded = sliding_window_view(_pad_end(profiles, cap, 0.0), window, axis=-1).min(axis=-1)  # (..., n)
    opened = sliding_window_view(_pad_end(eroded, cap, 0.0), window, axis=-1).max(axis=-1)
    return profiles - opened


def _pad_end(x: np.ndarray, r: int, fill: float) -> np.ndarray:
    """(..., n) -> (..., n + 2r) with `fill` on both ends of the last axis (np.pad is slow on small arrays)."""
    out = np.full((*x.shape[:-1], x.shape[-1] + 2 * r), fill, dtype=np.result_type(x, np.float32))
    out[..., r : r + x.shape[-1]] = x
    return out


def _slope(small: np.ndarray, cap: int, strips: int = 8) -> float:
    """The lines' slope (rows per column) in an (h, w) ink map, from how far the ink per row of each of a few
    narrow vertical strips is shifted against all strips' median (the lines run through every strip, the digit
    through a few): a straight line through the shifts against the strips' places, the median of the slopes
    between every two strips (Theil-Sen), so that a strip the digit fills does not tilt it."""
    h, w = small.shape
    edges = np.linspace(0, w, strips + 1).astype(np.intp)
    means = [small[:, a:b].mean(axis=1) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    profiles = _tophat(np.stack(means), cap)  # (S, h)
    reference = np.median(profiles, axis=0)  # (h,)
    reach = math.ceil(MAX_TILT * w / 2) + 1
    padded = _pad_end(profiles, reach, 0.0)  # (S, h + 2 reach)
    match = np.stack([padded[:, reach + d : reach + d + h] @ reference for d in range(-reach, reach + 1)], 1)
    best = np.clip(match.argmax(axis=1), 1, 2 * reach - 1)  # (S,) index of each strip's best shift
    rows = np.arange(strips)
    lo, mid, hi = match[rows, best - 1], match[rows, best], match[rows, best + 1]
    curve = lo - 2 * mid + hi
    safe = np.where(curve < 0, curve, -1.0)  # the parabola through the best three: its top, within a step
    shift = best - reach + np.where(curve < 0, np.clip(0.5 * (lo - hi) / safe, -0.5, 0.5), 0.0)  # (S,)
    centres = (edges[:-1] + edges[1:]) / 2  # (S,)
    i, j = np.triu_indices(strips, 1)
    return float(np.clip(np.median((shift[j] - shift[i]) / (centres[j] - centres[i])), -MAX_TILT, MAX_TILT))


def _bands(spread: np.ndarray, cap: int, peak: float) -> list[tuple[int, int, float]]:
    """The bands of rows [top, bottom) of an (h, w) sheared ink map (NaN off the image) that hold a line, and
    their darkness: bumps of the row profile at least MIN_LINE * peak high, thin across (not a wide stroke, nor
    a ridge on one), and even in darkness along their length (a curved stroke is not). A row is judged on its
    part inside the image, when that is at least MIN_PART of it: a tilted grid's lines run off the image near
    its edges."""
    h, w = spread.shape
    count = np.count_nonzero(~np.isnan(spread), axis=1)  # (h,)
    profile = np.zeros(h)  # (h,): the darkness LINE_SPAN of each row reaches
    full, part = count == w, (count < w) & (count >= MIN_PART * w)
    k = int((1.0 - LINE_SPAN) * (w - 1))
    profile[full] = np.partition(spread[full], k, axis=1)[:, k]
    if part.any():  # rows partly off the image: sorted, NaN last, each at its own rank
        ranks = ((1.0 - LINE_SPAN) * (count[part] - 1)).astype(np.intp)
        profile[part] = np.sort(spread[part], axis=1)[np.arange(len(ranks)), ranks]
    inked = np.concatenate([[False], _tophat(profile, cap) >= MIN_LINE * peak, [False]])
    edges = np.flatnonzero(inked[1:] != inked[:-1])  # starts and ends of the runs, alternating
    bands = []
    for top, bottom in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        across = np.fmax.reduce(spread[top:bottom], axis=0)  # (w,): the band's darkness in each column
        on = ~np.isnan(across)
        value = _quantile(across[on], 0.25)  # the line's darkness (a stroke covers less of it)
        thickness = _thickness(spread[:, on] >= value / 2, top, bottom, cap + 3)
        partial = count[top:bottom].max() < LINE_SPAN * w  # a tilted line's end: its darkness falls off...
        if thickness <= cap + 2 and (partial or _even(across[on])):
            bands.append((top - partial, bottom + partial, value))  # ...and the rows beside it hold too little
    return bands


def _thickness(inked: np.ndarray, top: int, bottom: int, cap: int) -> float:
    """How many rows a mark in rows [top, bottom) of an (h, w) mask covers: in each column where the band is
    inked, the run of inked rows through it, as far as it goes (counted up to `cap` rows either side); a tenth
    of those columns have at most this (a line stays thin where no pen stroke runs along it or beside it, a
    wide stroke is wide all along)."""
    up = inked[max(top - cap, 0) : top][::-1]  # (<= cap, w): the rows above, nearest first
    above = np.cumprod(up, axis=0).sum(axis=0) if len(up) else 0  # (w,) rows inked right above the band
    below = np.cumprod(inked[bottom : bottom + cap], axis=0).sum(axis=0)
    inside = np.count_nonzero(inked[top:bottom], axis=0)
    runs = (above + inside + below)[inside > 0]
    return _quantile(runs, 1.0 - LINE_SPAN) if runs.size else math.inf


def _quantile(x: np.ndarray, q: float) -> float:
    """The value at rank q (0..1) of a non-empty 1-D array, without interpolating (np.quantile is slower)."""
    k = int(q * (len(x) - 1))
    return float(np.partition(x, k)[k])


def _even(darkness: np.ndarray) -> bool:
    """Whether a line's (n,) darkness along its length is even: LINE_SPAN of it within EVEN of its lower quartile
    (where a pen stroke runs along the line for a while, the line is darker; a curved stroke fades out)."""
    k, q = int((1.0 - LINE_SPAN) * (len(darkness) - 1)), int(0.25 * (len(darkness) - 1))
    low = np.partition(darkness, (k, q))
    return bool(low[k] >= EVEN * low[q])


def _erase_band(ink: np.ndarray, slope: float, top: int, bottom: int, darkness: float) -> None:
    """Take a line of some darkness in sheared rows [top, bottom) out of the (H, W) ink map, in place: each pixel
    keeps the pen ink the line lets through, or the ink just outside the band on both sides (a stroke crossing
    the line)."""
    h, w = ink.shape
    rows = _sheared_rows(np.arange(top - 1, bottom + 1), w, slope)  # (k + 2, w): the band, a row either side
    inside = (rows >= 0) & (rows < h)
    cols = np.broadcast_to(np.arange(w), rows.shape)
    values = np.where(inside, np.clip(ink[np.clip(rows, 0, h - 1), cols], 0.0, 1.0), 0.0)  # (k + 2, w)
    band = values[1:-1]  # (k, w)
    line = min(darkness, 0.98)
    through = np.clip(1.0 - (1.0 - band) / (1.0 - line), 0.0, 1.0)  # pen ink the line lets through
    above, below = _widen(values[0]), _widen(values[-1])
    above, below = np.where(inside[0], above, below), np.where(inside[-1], below, above)  # at an edge: one side
    crossing = np.minimum(above, below)  # (w,): a stroke that runs on across the line
    cleaned = np.minimum(band, np.maximum(through, crossing[None, :]))  # (k, w); never more ink than before
    keep = inside[1:-1]
    ink[rows[1:-1][keep], cols[1:-1][keep]] = cleaned[keep]


def _widen(row: np.ndarray) -> np.ndarray:
    """(w,) -> the max over each pixel and its two neighbours (a stroke that meets the line at a slant)."""
    p = _pad_end(row, 1, 0.0)
    return np.maximum(np.maximum(p[:-2], p[1:-1]), p[2:])
