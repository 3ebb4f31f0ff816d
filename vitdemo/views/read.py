"""The "Read a number" page's pictures and tables, without Streamlit: the detector's boxes drawn on the number,
the captioner's attention for each digit it wrote, its beam as a table, the readers' results in a table of their
own (their metrics are not a classifier's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from vitdemo.numbers.analyze import NumberAnswer
from vitdemo.views.colors import overlay
from vitdemo.views.words import share_right

BOX_COLOUR = (64, 200, 255)  # the CNN's side is blue on every page
SCALE = 4  # the 32x160 canvas shown at 128x640


STILL_LEARNING = 0.9  # below this share of whole test numbers read right, a reader says it is still learning


def skill_sentence(metrics: Mapping[str, Any]) -> str:
    """How well a reader reads, from its checkpoint's test figures, so a class knows what to expect of it:
    'On 2,000 test numbers it read 61.2% exactly right. It is still learning: ...'. '' without figures."""
    acc, n = metrics.get("test_acc"), metrics.get("test_numbers")
    if not isinstance(acc, float) or not isinstance(n, int):
        return ""
    said = f"On {n:,} test numbers it read {share_right(acc)} exactly right."
    if acc < STILL_LEARNING:
        said += " It is still learning: expect mistakes, or train it longer on the Train page."
    return said


def _upscaled(image: np.ndarray, scale: int = SCALE) -> Image.Image:
    grey = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(grey).resize((grey.shape[1] * scale, grey.shape[0] * scale), Image.Resampling.NEAREST)


def boxes_picture(answer: NumberAnswer, scale: int = SCALE) -> np.ndarray | None:
    """The readers' canvas with each of the detector's boxes, its digit and score: (H*s, W*s, 3) uint8."""
    reading = answer.readings.get("detector")
    if answer.pre.image is None or reading is None:
        return None
    img = _upscaled(answer.pre.image, scale).convert("RGB")
    draw = ImageDraw.Draw(img)
    for x0, y0, x1, y1, digit, score in reading.boxes:
        draw.rectangle([x0 * scale, y0 * scale, x1 * scale, y1 * scale], outline=BOX_COLOUR, width=2)
        draw.text((x0 * scale + 2, y0 * scale + 1), f"{digit} {score:.0%}", fill=BOX_COLOUR)
    return np.asarray(img)


def attention_picture(answer: NumberAnswer, step: int, scale: int = SCALE) -> np.ndarray | None:
    """Where the captioner looked while it wrote its `step`-th token (0: the first digit): (H*s, W*s, 3) uint8."""
    if answer.pre.image is None or answer.attention is None or not 0 <= step < len(answer.attention):
        return None
    big = np.asarray(_upscaled(answer.pre.image, scale), dtype=np.float32) / 255.0
    heat = np.asarray(Image.fromarray(answer.attention[step]).resize(big.shape[::-1], Image.Resampling.BILINEAR))
    return overlay(big, heat)


def step_labels(answer: NumberAnswer) -> list[str]:
    """What the captioner wrote at each step: 'digit 1: 2', ..., 'end'."""
    out = []
    for i, token in enumerate(answer.tokens[1:]):
        out.append(f"digit {i + 1}: {token}" if token < 10 else "end")
    return out


def beam_rows(answer: NumberAnswer) -> list[dict[str, Any]]:
    """The captioner's beam: its numbers and their probabilities, best first."""
    reading = answer.readings.get("captioner")
    return [] if reading is None else [{"number": t, "probability": p} for t, p in reading.alternatives]


def reader_rows(runs: list[Any]) -> list[dict[str, Any]]:
    """The readers' own table for Evaluate and the Leaderboard: whole-number accuracy (test and validation), the
    detector's single-digit macro F1 and the training time, from the run registry's rows, as they read ("86.5%",
    "20.6 min"; a dash where a reader has no such figure, as the captioner has no single-digit F1)."""
    return [
        {
            "id": r.id,
            "name": r.name,
            "reader": r.kind,
            "whole-number accuracy": _share(r.test_acc),
            "validation": _share(r.val_acc),
            "single-digit macro F1": "–" if r.macro_f1 is None else f"{r.macro_f1:.3f}",
            "training": "–" if r.train_time_s is None else f"{r.train_time_s / 60:.1f} min",
        }
        for r in runs
    ]


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"
