"""One image of a written number, read by both readers: the one path the CLI (`python -m vitdemo read`) and the
"Read a number" page share. Preprocess (vitdemo.preprocess.number), read with each reader, and explain: the
detector's boxes (in the canvas's and the image's pixels), the captioner's beam alternatives and, for each digit
it wrote, its cross-attention over the image (per layer and head, and combined)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vitdemo import paths
from vitdemo.numbers.read import Reading, combined_attention, cross_attention, greedy, read_batch
from vitdemo.preprocess.number import NumberInput, prepared_number, preprocess_number

READERS = ("captioner", "detector")
SHIPPED = {"captioner": "captioner_numbers.safetensors", "detector": "detector_numbers.safetensors"}
UNSURE = 0.5  # both readers less sure than this: the drawing is probably not a number
UNSURE_MESSAGE = "Neither reader is sure this is a number (they know the digits 0-9 only): write it again, clearly."
ONE_DIGIT_MESSAGE = "A single digit: the readers read it as a one-digit number."


@dataclass(frozen=True)
class NumberAnswer:
    pre: NumberInput
    readings: dict[str, Reading] = field(default_factory=dict)  # reader -> its reading (boxes in canvas pixels)
    message: str = ""  # one sentence for the teacher: why there is no reading, or a doubt about it
    attention: np.ndarray | None = None  # (steps, H, W) in [0, 1]: the captioner's combined look at each step
    attention_heads: np.ndarray | None = None  # (layers, heads, steps, gh, gw): the same per layer and head
    tokens: list[int] = field(default_factory=list)  # what the captioner wrote: BOS, digits, EOS

    def image_boxes(self) -> list[list[float]]:
        """The detector's boxes in the input image's pixels: [x0, y0, x1, y1, digit, score] each."""
        reading = self.readings.get("detector")
        if reading is None:
            return []
        h, w = self.pre.stages["input"].shape
        out = []
        for x0, y0, x1, y1, digit, score in reading.boxes:
            a, b, c, d = self.pre.to_input_box((x0, y0, x1, y1))
            box = [min(max(a, 0.0), w), min(max(b, 0.0), h), min(max(c, 0.0), w), min(max(d, 0.0), h)]
            out.append([round(v, 1) for v in box] + [digit, score])
        return out


def shipped_path(reader: str, folder: str | os.PathLike | None = None) -> Path:
    return paths.shipped_dir(folder) / SHIPPED[reader]


def read_image(
    image: np.ndarray | bytes, readers: dict, *, beam: int = 4, explain: bool = True, prepared: bool = False
) -> NumberAnswer:
    """Read one image with each of `readers` (name -> vitdemo.checkpoints.LoadedModel); `prepared`: the image is
    a test number, already in the readers' form (read as it is, not preprocessed as a drawing)."""
    pre = prepared_number(image) if prepared else preprocess_number(image)
    if pre.image is None:
        return NumberAnswer(pre, message=pre.message)
    x = torch.from_numpy(pre.image)[None, None]  # (1, 1, H, W)
    readings = {name: read_batch(loaded.model, x, beam=beam)[0] for name, loaded in readers.items()}
    extra: dict = {}
    captioner = readers.get("captioner")
    if explain and captioner is not None:
        _, _, tokens = greedy(captioner.model, x)
        tokens = tokens[:, : int((tokens[0] != 12).sum())]  # without padding
        heads = cross_attention(captioner.model, x, tokens)  # (layers, heads, steps, gh, gw)
        extra = {"attention": combined_attention(heads, tuple(x.shape[-2:])).numpy(),
                 "attention_heads": heads.numpy(), "tokens": tokens[0].tolist()}  # fmt: skip
    return NumberAnswer(pre, readings, _doubt(readings), **extra)


def _doubt(readings: dict[str, Reading]) -> str:
    if readings and all(r.confidence < UNSURE for r in readings.values()):
        return UNSURE_MESSAGE
    if readings and all(len(r.text) == 1 for r in readings.values()):
        return ONE_DIGIT_MESSAGE
    return ""
