"""The CNN family: `depth` stages of two 3x3 conv + BN + ReLU, then a 2x2 max-pool (the model: vitdemo.models.cnn)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vitdemo.families.spec import Family, check, setting


@dataclass(frozen=True)
class CNNConfig:
    """A plain CNN: `depth` stages of two 3x3 conv + BN + ReLU, then 2x2 max-pool; widths double."""

    kind: Literal["cnn"] = "cnn"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    # channels of the first stage; stage i has width * 2**i (16: 99% MNIST in ~1 CPU minute)
    width: int = setting(16, "CNN width", minimum=4, step=4, help="channels of the first stage")
    # 28 -> 14 -> 7 with two stages (Grad-CAM on any stage: vitdemo.explain.maps)
    depth: int = setting(2, "CNN depth", minimum=1, step=1, help="stages: 1, 2 or 3")
    dropout: float = setting(0.1, "CNN dropout", minimum=0.0, step=0.05)

    def validate(self) -> None:
        check(4 <= self.width <= 256, "width must be between 4 and 256")
        check(1 <= self.depth <= 3, "depth must be 1, 2 or 3 (28 px halves at most 3 times)")
        check(0.0 <= self.dropout < 0.9, "dropout must be in [0, 0.9)")


def parameters(m: CNNConfig) -> int:
    """Trainable parameters, counted from the config."""
    total, c_in = 0, m.in_chans
    for i in range(m.depth):
        c_out = m.width * 2**i
        total += 9 * c_in * c_out + 2 * c_out  # 3x3 conv (no bias) + batch norm (weight, bias)
        total += 9 * c_out * c_out + 2 * c_out
        c_in = c_out
    side = m.image_size // 2**m.depth
    return total + c_in * side * side * m.num_classes + m.num_classes


def forward_macs(m: CNNConfig) -> int:
    """One image's forward multiply-adds (convolutions and the head)."""
    macs, c_in, side = 0, m.in_chans, m.image_size
    for i in range(m.depth):
        c_out = m.width * 2**i
        macs += 9 * side * side * (c_in * c_out + c_out * c_out)  # two 3x3 convs at this stage's resolution
        c_in, side = c_out, side // 2
    return macs + c_in * side * side * m.num_classes


def activation_floats(m: CNNConfig) -> int:
    """Floats one image keeps for the backward pass: each conv's output, its batch norm's and its ReLU's."""
    floats, side = 28 * 28 * 2, m.image_size
    for i in range(m.depth):
        c = m.width * 2**i
        floats += 2 * 3 * c * side * side  # two convs, each saving conv, batch-norm and ReLU outputs
        side //= 2
    return floats


FAMILY = Family(
    kind="cnn",
    config=CNNConfig,
    builder="vitdemo.models.cnn:CNN",
    name="CNN",
    order=30,
    caption="Integrated gradients: how much each pixel of ink adds to the predicted class, measured from a blank "
    "image (bright: adds more); chosen over Grad-CAM, whose coarse 7x7 map also painted the empty background.",
    reference=CNNConfig(width=16, depth=2),
    shape=lambda m: f"w{m.width}x{m.depth}",
    params=parameters,
    macs=forward_macs,
    activations=activation_floats,
)
