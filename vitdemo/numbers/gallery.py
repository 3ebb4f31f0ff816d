"""The misread gallery: which of a fixed set of test numbers a reader gets wrong, and what it wrote instead, so
Evaluate can show a class a reader's mistakes and explain each one (vitdemo.numbers.analyze.read_image)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from vitdemo.numbers.read import read_batch, to_input
from vitdemo.numbers.splits import test_numbers
from vitdemo.numbers.synth import Numbers

GALLERY_NUMBERS = 96  # 12 of each length 1..8, from t10k's digits on the test numbers' seed: seconds to read
GALLERY_BATCH = 16  # read in parts, so a page can show progress


@dataclass(frozen=True)
class Misread:
    index: int  # into the gallery's numbers
    truth: str  # the number written
    wrote: str  # what the reader read ('' for nothing)
    confidence: float  # the reader's confidence in what it wrote, 0..1


def gallery_numbers(data_dir: str | os.PathLike | None = None, n: int = GALLERY_NUMBERS) -> Numbers:
    """The numbers the gallery reads: always the same ones (t10k's digits only)."""
    return test_numbers(data_dir, n)


def misreads(model: nn.Module, numbers: Numbers, on_part: Callable[[int, int], None] | None = None) -> list[Misread]:
    """Every number of `numbers` the reader does not read exactly, least confident first; `on_part(done, total)`
    after each part of GALLERY_BATCH numbers."""
    model.eval()
    x = to_input(numbers.images)  # (N, 1, H, W)
    texts, found = numbers.texts(), []
    for start in range(0, len(numbers), GALLERY_BATCH):
        readings = read_batch(model, x[start : start + GALLERY_BATCH], batch_size=GALLERY_BATCH)
        for i, reading in enumerate(readings, start):
            if reading.text != texts[i]:
                found.append(Misread(i, texts[i], reading.text, float(reading.confidence)))
        if on_part is not None:
            on_part(min(start + GALLERY_BATCH, len(numbers)), len(numbers))
    return sorted(found, key=lambda m: m.confidence)
