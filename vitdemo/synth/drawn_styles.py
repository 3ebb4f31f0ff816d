"""The harder drawn-digit check: handwriting styles, writers, pens and paper, scored per style.

`vitdemo.synth.drawn` draws 300 digits in two or three common shapes each. People write more than that: a 1 with a long
flag, a crossed 7, an open 4, a 9 with a straight stem, a 2 with a loop; writers slant and size their digits their
own way; and they use markers, pencils, lined and squared paper. Each style here is a set of drawings made with
`vitdemo.synth.drawn`'s stroke model (unit-square polylines and ellipse arcs, a round brush), by a few "writers" (a
slant, a size, an aspect and a pen width each, with per-drawing variation), either on the app's transparent canvas
or as ink on synthetic paper (`vitdemo.synth.paper`), and every drawing goes through the app's own preprocessing.

Two splits, by seed: "own" (seed 0, for development) and "held_out" (seed 1, never tuned on). The training
generator `vitdemo.synth.styles` is separate code with its own stroke model and seeds (tests/test_drawn.py checks that no
synthetic training digit is near any drawing here).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from vitdemo.synth.drawn import TEMPLATES, DrawnStyle, Stroke, arc, drawn_accuracy, transform
from vitdemo.synth.paper import PEN, ink_on, paper, rule, to_uint8

SPLITS = {"own": 0, "held_out": 1}  # split -> seed
SIZE = 280  # the app's canvas
WRITERS = 8  # per split and style

# Styles that change a digit's shape: (label, templates in vitdemo.synth.drawn's format).
SHAPES: dict[str, tuple[int, list[list[Stroke]]]] = {
    "flagged_1": (
        1,
        [
            [[(0.22, 0.4), (0.56, 0.06), (0.56, 0.94)]],  # a long flag
            [[(0.28, 0.34), (0.55, 0.06), (0.55, 0.94)], [(0.36, 0.94), (0.74, 0.94)]],  # flag and foot
            [[(0.33, 0.26), (0.53, 0.06), (0.51, 0.94)]],  # a short flag
        ],
    ),
    "crossed_7": (
        7,
        [
            [[(0.16, 0.14), (0.82, 0.12), (0.42, 0.92)], [(0.3, 0.52), (0.74, 0.5)]],
            [[(0.16, 0.26), (0.18, 0.12), (0.82, 0.12), (0.46, 0.92)], [(0.33, 0.5), (0.7, 0.5)]],  # with a tick
        ],
    ),
    "open_4": (
        4,
        [
            [[(0.46, 0.08), (0.16, 0.62), (0.84, 0.62)], [(0.66, 0.34), (0.66, 0.94)]],  # the stem starts low
            [[(0.26, 0.08), (0.21, 0.6), (0.82, 0.58)], [(0.68, 0.1), (0.64, 0.94)]],  # open at the top
        ],
    ),
    "european_9": (
        9,
        [
            [arc(0.46, 0.3, 0.24, 0.21, 0, 360) + [(0.7, 0.3), (0.7, 0.94)]],  # a straight stem
            [arc(0.46, 0.3, 0.23, 0.2, 0, 360) + [(0.69, 0.3), (0.68, 0.74)] + arc(0.5, 0.74, 0.18, 0.2, 0, 130, 10)],
        ],
    ),
    "loop_2": (
        2,
        [
            [
                arc(0.5, 0.3, 0.25, 0.22, 200, 360)
                + [(0.72, 0.4), (0.3, 0.8), (0.17, 0.9), (0.15, 0.82), (0.26, 0.8), (0.36, 0.9), (0.82, 0.9)]
            ],
        ],
    ),
}
# Styles that change how the usual shapes are written or on what (all ten digits each).
LOOKS = ("plain", "slanted", "small", "large", "thick_marker", "thin_pencil", "lined_paper", "squared_paper")
STYLES = tuple(SHAPES) + LOOKS
PAPER_LOOKS = ("thin_pencil", "lined_paper", "squared_paper")


@dataclass(frozen=True)
class Writer:
    """How one person writes: their usual slant, size, proportions and pen, varied a little per drawing."""

    slant: float
    height: float
    aspect: float
    width_px: float


def random_writer(rng: np.random.Generator) -> Writer:
    return Writer(
        slant=rng.uniform(-0.15, 0.35),
        height=rng.uniform(0.45, 0.8),
        aspect=rng.uniform(0.8, 1.2),
        width_px=rng.uniform(10, 26),
    )


def _style_for(look: str, writer: Writer, rng: np.random.Generator) -> DrawnStyle:
    """One drawing's choices: the writer's habits with a little noise, then what the look changes."""
    height = float(np.clip(writer.height * rng.uniform(0.9, 1.1), 0.3, 0.85))
    s = DrawnStyle(
        template=0,
        slant=writer.slant + rng.uniform(-0.05, 0.05),
        rotation_deg=rng.uniform(-6, 6),
        height=height,
        aspect=writer.aspect * rng.uniform(0.95, 1.05),
        center=(0.5, 0.5),
        width_px=writer.width_px * rng.uniform(0.85, 1.15),
    )
    if look == "slanted":
        s = replace(s, slant=rng.uniform(0.4, 0.6) if rng.random() < 0.8 else rng.uniform(-0.35, -0.2))
    elif look == "small":
        s = replace(s, height=rng.uniform(0.18, 0.3), width_px=rng.uniform(5, 10))
    elif look == "large":
        s = replace(s, height=rng.uniform(0.86, 0.95))
    elif look == "thick_marker":
        s = replace(s, width_px=rng.uniform(30, 42) * s.height / 0.65)
    elif look == "thin_pencil":
        s = replace(s, width_px=rng.uniform(3, 6))
    elif look in PAPER_LOOKS:
        s = replace(s, width_px=rng.uniform(6, 14))
    room = (1 - s.height * 0.8) / 2, (1 - s.height) / 2  # keep the digit on the canvas
    return replace(s, center=(0.5 + rng.uniform(-room[0], room[0]), 0.5 + rng.uniform(-room[1], room[1])))


def coverage(strokes: list[Stroke], style: DrawnStyle, size: int = SIZE) -> np.ndarray:
    """The strokes drawn with a round brush: (size, size) float ink coverage in [0, 1]."""
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    w = style.width_px
    for stroke in strokes:
        pts = transform(stroke, style, size)
        draw.line(pts, fill=255, width=max(1, round(w)), joint="curve")
        for x, y in (pts[0], pts[-1]):
            draw.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=255)
    return np.asarray(img, dtype=np.float32) / 255.0


def on_canvas(c: np.ndarray) -> np.ndarray:
    """White strokes on the app's transparent canvas: (H, W, 4) uint8."""
    out = np.zeros((*c.shape, 4), dtype=np.uint8)
    out[..., :3] = 255
    out[..., 3] = to_uint8(c)
    return out


def on_paper(c: np.ndarray, look: str, rng: np.random.Generator, digit_px: float) -> np.ndarray:
    """Ink on synthetic paper: grey grainy pencil, or a pen on ruled or squared paper (lines about a digit's
    height apart, as in a school exercise book). (H, W, 3) uint8."""
    sheet = paper(c.shape, rng)
    if look == "thin_pencil":
        pen = np.full(3, rng.uniform(0.3, 0.5))
        c = c * rng.uniform(0.6, 1.0, c.shape).astype(np.float32)  # graphite grain
    else:
        pen = PEN * rng.uniform(0.3, 1.2)
        spacing = digit_px * (rng.uniform(0.8, 1.2) if look == "lined_paper" else rng.uniform(0.5, 0.9))
        sheet = rule(sheet, spacing, rng)
        if look == "squared_paper":
            sheet = rule(sheet, spacing, rng, vertical=True)
    return to_uint8(ink_on(sheet, c, pen))


def render(style: str, label: int, writer: Writer, rng: np.random.Generator) -> np.ndarray:
    """One drawing of `label` in `style` by `writer`, as the app would receive it."""
    look = "plain" if style in SHAPES else style
    templates = SHAPES[style][1] if style in SHAPES else TEMPLATES[label]
    strokes = templates[int(rng.integers(len(templates)))]
    drawn = _style_for(look, writer, rng)
    c = coverage(strokes, drawn)
    return on_paper(c, look, rng, drawn.height * SIZE) if look in PAPER_LOOKS else on_canvas(c)


def style_digits(style: str, split: str = "own", per_class: int = 10) -> Iterator[tuple[np.ndarray, int]]:
    """The drawings of one style: `per_class` of each digit (a shape style: 3 * `per_class` of its digit)."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}: expected one of {', '.join(STYLES)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    rng = np.random.default_rng([SPLITS[split], STYLES.index(style), 0xD4A3])
    writers = [random_writer(rng) for _ in range(WRITERS)]
    labels = (
        [SHAPES[style][0]] * (3 * per_class) if style in SHAPES else [d for _ in range(per_class) for d in range(10)]
    )
    for label in labels:
        yield render(style, label, writers[int(rng.integers(WRITERS))], rng), label


@dataclass
class StyleScore:
    """One model on one style: how many drawings, how many right, and which mistakes (true, predicted) -> count."""

    total: int = 0
    correct: int = 0
    confusions: dict[tuple[int, int], int] | None = None

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.total, 1)


def preprocessed(style: str, split: str, per_class: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A style's drawings through the app's preprocessing: inputs (N, 28, 28) float32, labels (N,) and which
    ones preprocessing refused (N,) bool (their input is all zeros; a refusal is never right)."""
    from vitdemo.preprocess.pipeline import preprocess

    images, labels, refused = [], [], []
    for image, label in style_digits(style, split, per_class):
        pre = preprocess(image)
        empty = pre.empty or pre.image is None
        images.append(np.zeros((28, 28), np.float32) if empty else pre.image)
        labels.append(label)
        refused.append(empty)
    return np.stack(images), np.asarray(labels), np.asarray(refused)


def score_styles(
    models: dict, split: str = "own", styles: tuple[str, ...] = STYLES, per_class: int = 10
) -> dict[str, dict[str, StyleScore]]:
    """{style: {model name: StyleScore}} for loaded models (vitdemo.checkpoints.LoadedModel) on one split."""
    import torch

    table: dict[str, dict[str, StyleScore]] = {}
    for style in styles:
        images, labels, refused = preprocessed(style, split, per_class)
        table[style] = {}
        for name, loaded in models.items():
            x = (torch.from_numpy(images)[:, None] - loaded.meta.mean) / loaded.meta.std  # (N, 1, 28, 28)
            with torch.inference_mode():
                preds = loaded.model(x).argmax(1).numpy()
            right = (preds == labels) & ~refused
            confusions: dict[tuple[int, int], int] = {}
            for t, p in zip(labels[~right], np.where(refused, -1, preds)[~right], strict=True):
                confusions[(int(t), int(p))] = confusions.get((int(t), int(p)), 0) + 1
            table[style][name] = StyleScore(len(labels), int(right.sum()), confusions)
    return table


def format_table(table: dict[str, dict[str, StyleScore]], split: str) -> str:
    """A plain-text table: one row per style and the total, a column per model, then each model's mistakes."""
    names = list(next(iter(table.values())))
    lines = [f"{split:14} {'n':>5} " + " ".join(f"{n:>8}" for n in names)]
    totals = {n: StyleScore() for n in names}
    for style, row in table.items():
        n = next(iter(row.values())).total
        lines.append(f"{style:14} {n:>5} " + " ".join(f"{row[m].accuracy:>8.2%}" for m in names))
        for m in names:
            totals[m].total += row[m].total
            totals[m].correct += row[m].correct
            for pair, c in (row[m].confusions or {}).items():
                totals[m].confusions = totals[m].confusions or {}
                totals[m].confusions[pair] = totals[m].confusions.get(pair, 0) + c
    n = next(iter(totals.values())).total
    lines.append(f"{'all':14} {n:>5} " + " ".join(f"{totals[m].accuracy:>8.2%}" for m in names))
    for m in names:
        top = sorted((totals[m].confusions or {}).items(), key=lambda kv: -kv[1])[:6]
        text = ", ".join(f"{t}->{'refused' if p < 0 else p} x{c}" for (t, p), c in top) or "none"
        lines.append(f"  {m} mistakes: {text}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m vitdemo.synth.drawn_styles [--styles]`: accuracy of MNIST checkpoints (default: the shipped ViT and CNN) on
    the drawn set, or per style on the harder set (this module), own and held-out splits."""
    import argparse
    from pathlib import Path

    from vitdemo import paths
    from vitdemo.checkpoints import load_checkpoint
    from vitdemo.threads import configure_threads

    p = argparse.ArgumentParser(prog="python -m vitdemo.synth.drawn_styles", description=main.__doc__)
    p.add_argument("checkpoints", nargs="*", metavar="FILE", help="MNIST checkpoints (default: the shipped two)")
    p.add_argument("--styles", action="store_true", help="the harder set, accuracy and mistakes per style")
    p.add_argument("--split", choices=["own", "held_out", "both"], default="both", help="with --styles")
    p.add_argument("--per-class", type=int, default=20, help="with --styles: drawings per digit and style")
    a = p.parse_args(argv)
    configure_threads()
    files = a.checkpoints or [paths.shipped_dir() / f"{k}_mnist.safetensors" for k in ("cnn", "vit")]
    models = {Path(f).stem: load_checkpoint(f) for f in files}
    if not a.styles:
        for name, acc in drawn_accuracy(models).items():
            print(f"{name}: {acc:.2%} of {10 * 30} drawn digits")
        return 0
    for split in SPLITS if a.split == "both" else (a.split,):
        print(format_table(score_styles(models, split, per_class=a.per_class), split))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
