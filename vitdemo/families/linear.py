"""The linear family: multinomial logistic regression as a torch model, pixels -> classes (vitdemo.models.ladder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vitdemo.families.spec import Family, check


@dataclass(frozen=True)
class LinearConfig:
    """Multinomial logistic regression as a torch model: pixels -> 10 logits (7,850 parameters)."""

    kind: Literal["linear"] = "linear"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10

    def validate(self) -> None:
        check(self.image_size == 28, "image_size must be 28")
        check(self.in_chans == 1, "in_chans must be 1 (greyscale)")
        check(2 <= self.num_classes <= 1000, "num_classes must be between 2 and 1000")


def parameters(m: LinearConfig) -> int:
    return m.in_chans * m.image_size**2 * m.num_classes + m.num_classes


FAMILY = Family(
    kind="linear",
    config=LinearConfig,
    builder="vitdemo.models.ladder:Linear",
    name="Linear",
    order=10,
    form_label="Linear (pixels -> classes)",
    blurb="Every pixel votes for every class with one weight: 784 pixels -> 10 classes, 7,850 weights.",
    reference=LinearConfig(),
    shape=lambda m: "784",  # the pixels straight to the classes
    params=parameters,
)
