"""Digits written on ruled and squared paper: the printed lines go before the crop, the pen's strokes stay.

The sheets here come from this file's own generator, not from `vitdemo.synth.drawn_styles` (the drawn-digit check
that is scored) nor `vitdemo.synth.paper`: lines drawn anti-aliased at 4x and shrunk, at any small tilt, in light blue,
grey or nearly the pencil's darkness; ink multiplied onto the paper (a line shows through the pen), on a sheet
lit from one side. The digits are real MNIST test digits. Squared paper's crossings used to pass for strokes:
the crop spanned the grid and the model saw a shrunken digit in a field of dots.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from vitdemo.preprocess.lines import remove_lines
from vitdemo.preprocess.pipeline import EMPTY_MESSAGE, preprocess

N = 30  # digits per case


@dataclass(frozen=True)
class Sheet:
    grid: bool  # squared paper, else ruled
    colour: tuple[float, float, float]  # what a line lets through, per channel
    tilt_deg: float = 0.0  # the sheet turned under the camera
    tight: bool = False  # cropped to the digit: the ink touches the border
    pencil: bool = False  # grey grainy pencil instead of a ballpoint


BLUE, GREY, DARK = (0.62, 0.76, 0.96), (0.74, 0.74, 0.74), (0.5, 0.5, 0.5)
CASES = {
    "lined": Sheet(grid=False, colour=BLUE),
    "squared": Sheet(grid=True, colour=BLUE),
    "squared_grey": Sheet(grid=True, colour=GREY),
    "squared_tilted": Sheet(grid=True, colour=BLUE, tilt_deg=2.5),
    "squared_tight": Sheet(grid=True, colour=GREY, tight=True),
    "pencil_on_dark_grid": Sheet(grid=True, colour=DARK, pencil=True),
}


def lines_coverage(shape: tuple[int, int], spacing: float, width: float, tilt_deg: float, rng) -> np.ndarray:
    """(H, W) float coverage of parallel lines across the sheet, turned by the tilt: drawn at 4x and shrunk."""
    h, w = shape
    big = Image.new("L", (4 * w, 4 * h), 0)
    draw = ImageDraw.Draw(big)
    t = np.tan(np.radians(tilt_deg))
    for k in np.arange(-2 * max(h, w), 2 * max(h, w), spacing) + rng.uniform(0, spacing):
        draw.line([(0, 4 * k), (4 * w, 4 * (k + t * w))], fill=255, width=max(1, round(4 * width)))  # y = k + t x
    return np.asarray(big.resize((w, h), Image.Resampling.BOX), dtype=np.float32) / 255.0


def ruling(shape: tuple[int, int], spacing: float, sheet: Sheet, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) light the sheet's lines let through. A grid's crossings are printed once (as light as a line)
    or twice (darker: drawn in two passes)."""
    h, w = shape
    tilt, width = sheet.tilt_deg * rng.choice([-1, 1]), rng.uniform(1.5, 3.5)
    colour = np.array(sheet.colour)
    across = lines_coverage(shape, spacing, width, tilt, rng)[..., None]  # (H, W, 1)
    if not sheet.grid:
        return 1.0 - across * (1.0 - colour)
    down = lines_coverage((w, h), spacing, width, -tilt, rng).T[..., None]  # perpendicular: the same turn
    if rng.random() < 0.5:
        return 1.0 - np.maximum(across, down) * (1.0 - colour)
    return (1.0 - across * (1.0 - colour)) * (1.0 - down * (1.0 - colour))


def digit_coverage(digit: np.ndarray, height: int) -> np.ndarray:
    """(28, 28) uint8 MNIST digit -> (height, height) float pen coverage with a soft edge."""
    img = Image.fromarray(digit).resize((height, height), Image.Resampling.LANCZOS)
    return np.clip((np.asarray(img, dtype=np.float32) / 255.0 - 0.3) / 0.35, 0.0, 1.0)


def written(digit: np.ndarray, sheet: Sheet, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One digit written on the sheet: the (H, W, 3) uint8 photo, and (h, w) uint8 the same strokes black on white."""
    h, w = int(rng.integers(240, 330)), int(rng.integers(240, 330))
    size = int(min(h, w) * rng.uniform(0.45, 0.65))
    pen = digit_coverage(digit, size)
    rows, cols = np.flatnonzero(pen.max(1) > 0.5), np.flatnonzero(pen.max(0) > 0.5)
    pen = pen[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # (dh, dw): the strokes' box
    top, left = int(rng.integers(10, h - pen.shape[0] - 10)), int(rng.integers(10, w - pen.shape[1] - 10))
    cover = np.zeros((h, w), np.float32)
    cover[top : top + pen.shape[0], left : left + pen.shape[1]] = pen
    spacing = size * (rng.uniform(0.3, 0.45) if sheet.tight else rng.uniform(0.5, 0.9))
    light = np.linspace(rng.uniform(0.85, 0.95), rng.uniform(0.95, 1.0), w)[None, :, None]  # from one side
    paper = light * ruling((h, w), spacing, sheet, rng)  # (H, W, 3)
    if sheet.pencil:
        ink = np.full(3, rng.uniform(0.42, 0.55))
        cover = cover * rng.uniform(0.7, 1.0, cover.shape)
    else:
        ink = np.array([0.1, 0.12, 0.35]) * rng.uniform(0.4, 1.0)
    photo = paper * (1.0 - cover[..., None] * (1.0 - ink)) + rng.normal(0, 0.008, paper.shape)
    if sheet.tight:
        photo = photo[top : top + pen.shape[0], left : left + pen.shape[1]]
    clean = np.pad(1.0 - pen, max(pen.shape) // 3, constant_values=1.0)
    return np.round(np.clip(photo, 0, 1) * 255).astype(np.uint8), np.round(clean * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def mnist_test(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from vitdemo.data import load_raw

    test = load_raw("mnist", train=False, data_dir=data_dir)
    return test.images.numpy()[:N], test.labels.numpy()[:N]


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(28, 28) moved by whole pixels, zeros shifted in."""
    out = np.zeros_like(image)
    out[max(dy, 0) : 28 + min(dy, 0), max(dx, 0) : 28 + min(dx, 0)] = image[
        max(-dy, 0) : 28 + min(-dy, 0), max(-dx, 0) : 28 + min(-dx, 0)
    ]
    return out


def compare(clean: np.ndarray, photo: np.ndarray) -> tuple[float, float]:
    """(share of the clean digit's ink mass that the photo's centred input keeps, the extra ink it has, as a
    share of the same), at the best whole-pixel alignment within a pixel: centring rounds to whole pixels."""
    a, b = preprocess(clean).image, preprocess(photo).image
    if b is None:
        return 0.0, 0.0
    best = max(
        (float(np.minimum(a, s).sum()), float(np.maximum(s - a, 0).sum()))
        for s in (shifted(b, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    )
    return best[0] / float(a.sum()), best[1] / float(a.sum())


def case_samples(case: str, mnist_test) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """(photo, clean, label) for the first N test digits written the case's way, reproducibly."""
    images, labels = mnist_test
    rng = np.random.default_rng([7, list(CASES).index(case)])
    return [(*written(d, CASES[case], rng), int(y)) for d, y in zip(images, labels, strict=True)]


@pytest.fixture(scope="module")
def on_paper(mnist_test) -> dict[str, list[tuple[np.ndarray, np.ndarray, int]]]:
    return {case: case_samples(case, mnist_test) for case in CASES}


# the least share of the clean digit's ink each case keeps on average; pencil grain on a grid as dark as the
# pencil loses some by nature (where a stroke runs along a line, the line hides it)
MIN_KEPT = {"pencil_on_dark_grid": 0.78}


@pytest.mark.parametrize("case", CASES)
def test_the_centred_input_keeps_the_strokes_and_drops_the_grid(case: str, on_paper) -> None:
    """Before lines were removed, squared paper kept about 85% of the ink and added 7% of dots and line stubs
    (the digit shrunk to make room for them); pencil on a dark grid kept 46% and added 105%."""
    results = np.array([compare(clean, photo) for photo, clean, _ in on_paper[case]])  # (N, 2)
    kept, extra = results[:, 0], results[:, 1]
    assert kept.mean() >= MIN_KEPT.get(case, 0.93), (case, kept.mean(), np.sort(kept)[:5])
    assert np.mean(kept < 0.6) <= 0.1, (case, np.sort(kept)[:5])
    assert extra.mean() <= 0.04, (case, extra.mean(), np.sort(extra)[-5:])


def test_shipped_models_read_digits_on_paper(mnist_checkpoints: Path, on_paper) -> None:
    """Pencil on a grid as dark as the pencil: the ViT read 1 digit in 30 right, the CNN 3 (a grid of dots)."""
    import torch

    from vitdemo.checkpoints import load_checkpoint

    models = {kind: load_checkpoint(mnist_checkpoints / f"{kind}_mnist.safetensors") for kind in ("vit", "cnn")}
    for case, samples in on_paper.items():
        inputs = [preprocess(photo).image for photo, _, _ in samples]
        read = np.array([image is not None for image in inputs])  # a refused one is never right
        x = torch.from_numpy(np.stack([np.zeros((28, 28), np.float32) if i is None else i for i in inputs]))[:, None]
        labels = np.array([label for _, _, label in samples])
        for name, loaded in models.items():
            with torch.inference_mode():
                preds = loaded.model((x - loaded.meta.mean) / loaded.meta.std).argmax(1).numpy()  # (N,)
            assert np.sum((preds == labels) & read) >= 0.9 * N, (case, name, preds, labels)


def test_lines_show_as_a_stage_and_a_blank_sheet_is_empty() -> None:
    rng = np.random.default_rng(3)
    across = lines_coverage((260, 300), 45.0, 2.5, 1.0, rng)  # (H, W)
    down = lines_coverage((300, 260), 45.0, 2.5, -1.0, rng).T  # the same grid's other lines
    sheet = np.round(255 * 0.95 * (1.0 - 0.35 * across) * (1.0 - 0.35 * down)).astype(np.uint8)
    pre = preprocess(sheet)
    assert pre.empty and pre.image is None and pre.message == EMPTY_MESSAGE  # it was "not a digit": the dots
    pen = np.zeros((260, 300), np.float32)
    pen[60:200, 140:152] = 1.0  # a 1
    pre = preprocess(np.round(sheet * (1.0 - 0.85 * pen)).astype(np.uint8))
    assert list(pre.stages) == ["input", "lines_removed", "crop", "fit20", "centered"]
    assert pre.bbox is not None and abs(pre.bbox[0] - 60) <= 2 and abs(pre.bbox[2] - 200) <= 2  # the stroke alone


# --- the lines go, the strokes stay ---------------------------------------------------------------


def test_remove_lines_keeps_strokes_across_and_along_the_lines() -> None:
    """Lines at 0.3 on a 0..1 ink map: a stroke that crosses them and one that runs along one stay whole."""
    ink = np.zeros((200, 240), np.float32)
    ink[20::40, :] = ink[21::40, :] = 0.3  # horizontal lines, 2 px wide
    ink[:, 30::40] = np.maximum(ink[:, 30::40], 0.3)  # and vertical ones, 1 px: a grid
    ink[25:185, 100:108] = 1.0  # a stroke down, across every horizontal line
    ink[98:106, 60:200] = np.maximum(ink[98:106, 60:200], 0.95)  # a bar along the line at rows 100-101
    stroke = ink >= 0.95
    out, found = remove_lines(ink)
    assert found == 5 + 6
    near = ndimage.binary_dilation(stroke, iterations=2)  # a pixel of line may stay where it meets a stroke
    assert out[~near].max() < 0.1  # lines and crossings gone
    assert out[stroke].min() > 0.85  # the pen's ink where it lies over a line: 1 - (1 - 0.95) / (1 - 0.3)


def stroked(points: list[list[tuple[float, float]]], size: tuple[int, int], width: int) -> np.ndarray:
    """Polylines in unit coordinates drawn with a round pen: (H, W) float coverage."""
    h, w = size
    img = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(img)
    for line in points:
        xy = [(x * (w - 1), y * (h - 1)) for x, y in line]
        draw.line(xy, fill=255, width=width, joint="curve")
    return np.asarray(img, dtype=np.float32) / 255.0


STRAIGHT = {  # digits with long straight strokes, cropped so tight that they run (nearly) from edge to edge
    "7": [[(0.0, 0.02), (1.0, 0.02), (0.35, 1.0)]],
    "4": [[(0.02, 0.0), (0.02, 0.7), (1.0, 0.7)], [(0.75, 0.0), (0.75, 1.0)]],  # open: two sides and a bar
    "1": [[(0.1, 0.2), (0.5, 0.0), (0.5, 1.0)], [(0.0, 0.98), (1.0, 0.98)]],  # flag and foot
    "crossed 7": [[(0.0, 0.02), (1.0, 0.02), (0.35, 1.0)], [(0.0, 0.5), (1.0, 0.5)]],  # two bars
}
BOXES = {  # 4% in from the edges (ink all along the border would make the image read inverted)
    "square 0": [[(0.04, 0.04), (0.96, 0.04), (0.96, 0.96), (0.04, 0.96), (0.04, 0.04)]],  # two lines each way
    "boxy 8": [[(0.04, 0.04), (0.96, 0.04), (0.96, 0.96), (0.04, 0.96), (0.04, 0.04)], [(0.04, 0.5), (0.96, 0.5)]],
}


@pytest.mark.parametrize(
    ("name", "width"), [(n, w) for n in STRAIGHT for w in (3, 8)] + [(n, w) for n in BOXES for w in (3, 4)]
)
@pytest.mark.parametrize("paper", ["plain", "ruled"])
def test_straight_strokes_across_a_tight_crop_are_not_lines(name: str, width: int, paper: str) -> None:
    """A 7's bar, a 4's sides, a 1's foot, the box of a square 0 or 8: as long as the image and straight, but as
    dark as the ink, and not a grid: they meet at corners, where a grid's lines cross. Only the paper's own
    faint lines go."""
    h, w = 160, 120
    pen = stroked({**STRAIGHT, **BOXES}[name], (h, w), width)  # (H, W)
    lines = np.zeros((h, w), np.float32)
    if paper == "ruled":
        lines[12::30, :] = 1.0  # 1 px, light blue: a third of the ink's darkness (clear of the bars: a line
        # right along a stroke merges with it, and stays where it runs on past the stroke)
    light = 0.93 * (1.0 - 0.3 * lines) * (1.0 - 0.9 * pen)  # the pen over the ruling
    pre = preprocess(np.round(255 * light).astype(np.uint8))
    assert not pre.empty
    if paper == "plain":
        assert "lines_removed" not in pre.stages
    ink = pre.stages.get("lines_removed", pre.stages["input"])
    ink = ink / ink[pen > 0.9].max()
    assert (ink[pen > 0.9] > 0.8).mean() > 0.97, name  # every stroke is still there, at full strength
    rows, cols = np.flatnonzero(pen.max(axis=1) > 0.5), np.flatnonzero(pen.max(axis=0) > 0.5)
    box = np.array([rows[0], cols[0], rows[-1] + 1, cols[-1] + 1])
    assert np.abs(np.array(pre.bbox) - box).max() <= 2, (pre.bbox, box)  # the strokes' box, no more, no less
    away = ~ndimage.binary_dilation(pen > 0, iterations=width)  # a line's stub may stay where it meets a stroke
    top, left, bottom, right = pre.bbox
    ruling = (away & (lines > 0))[top:bottom, left:right]
    assert (pre.stages["crop"][ruling] == 0).all(), name  # and the ruling is not in the crop


def test_the_strip_numbers_the_stages_it_shows() -> None:
    """The paper-lines stage shows in the preprocessing strip, and the numbers follow what is shown."""
    from vitdemo.views.display import stage_images

    grid = np.full((200, 200), 255, np.uint8)
    grid[::20, :] = 150
    grid[:, ::20] = 150
    grid[60:140, 95:105] = 0  # a 1 on squared paper
    captions = [c for c, _ in stage_images(preprocess(grid))]
    assert captions[:2] == ["1 · your drawing", "2 · paper lines removed"] and captions[-1].startswith("5 · centred")
    blank_canvas = np.zeros((280, 280), np.uint8)
    blank_canvas[60:220, 130:150] = 255
    assert [c.split(" · ")[0] for c, _ in stage_images(preprocess(blank_canvas))] == ["1", "2", "3", "4"]
