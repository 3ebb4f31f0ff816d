"""The detector family: torchvision's Faster R-CNN with a small CNN backbone, finding each digit of a number with
a box and a label (the model: vitdemo.models.detector)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vitdemo.families.spec import READ, Family, check, setting
from vitdemo.numbers import CANVAS_H, CANVAS_W


@dataclass(frozen=True)
class DetectorConfig:
    """Faster R-CNN over a CANVAS_H x CANVAS_W number image: a CNN backbone (stride 4), anchors sized for digits,
    10 digit classes plus the background."""

    kind: Literal["detector"] = "detector"
    image_size: int = CANVAS_H  # a reader's image is its canvas: this is its height
    in_chans: int = 1
    num_classes: int = 10  # digits; torchvision adds the background as class 0
    canvas_width: int = CANVAS_W
    # channels of the backbone's first stage (two more stages double it); 32: about 0.3 M backbone weights
    width: int = setting(32, "backbone width", minimum=8, step=8, help="channels of the first backbone stage")
    rep_dim: int = setting(128, "box head size", minimum=32, step=32, help="the box head's hidden layer")
    # a box with a lower score is not read (after non-maximum suppression); 0.4: best of 0.2-0.6 on the shipped
    # detector's validation numbers (61.4% whole numbers; 57.6% at 0.5, 57.2% at 0.2)
    score_threshold: float = setting(0.4, "score threshold", minimum=0.05, step=0.05, help="boxes read above it")

    def validate(self) -> None:
        check(8 <= self.width <= 128, "width must be between 8 and 128")
        check(32 <= self.rep_dim <= 1024, "rep_dim must be between 32 and 1024")
        check(0.05 <= self.score_threshold < 1.0, "score_threshold must be in [0.05, 1)")
        check(self.num_classes == 10, "a detector finds the 10 digits")


def forward_macs(m: DetectorConfig) -> int:
    """One image's forward multiply-adds, roughly: the backbone's convolutions, the RPN head and 64 boxes' heads."""
    h, w, c = m.image_size, m.canvas_width, m.width
    backbone = (
        9 * h * w * c * m.in_chans + 9 * (h // 2) * (w // 2) * c * 2 * c + 9 * (h // 4) * (w // 4) * 2 * c * 2 * c
    )
    rpn = 9 * (h // 4) * (w // 4) * (2 * c) ** 2
    boxes = 64 * (2 * c * 25 * m.rep_dim + m.rep_dim**2 + m.rep_dim * 55)
    return backbone + rpn + boxes


FAMILY = Family(
    kind="detector",
    config=DetectorConfig,
    builder="vitdemo.models.detector:Detector",
    name="Detector",
    order=81,
    group="reader",
    form_label="Number reader: Faster R-CNN detector",
    task=READ,
    explainer="boxes",
    explanation="boxes",
    caption="Boxes: every digit the detector found, with its label and score, read left to right.",
    blurb="Reads a whole number the CNN way: torchvision's Faster R-CNN boxes each digit, then reads left to right.",
    reference=DetectorConfig(width=8, rep_dim=32),
    shape=lambda m: f"w{m.width}-r{m.rep_dim}",
    macs=forward_macs,
)
