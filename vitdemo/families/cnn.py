"""The CNN family (the model: vitdemo.models.cnn), in two designs:
- "double": `depth` stages of two 3x3 conv + BN + ReLU, then a 2x2 max-pool; a linear head on the flattened map;
- "lean": `depth` stages of one conv (5x5 then 3x3 unpadded, a padded 3x3 third), a 2x2 max-pool, then BN + ReLU
  (pooling first puts the norm and the ReLU on a quarter of the pixels, LeNet's order); a hidden layer of
  `LEAN_HIDDEN` (the model's neck) before the linear head.
  Several times the double design's images/s on a CPU and 99% MNIST validation in two epochs (README, "Seconds to
  99%").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vitdemo.families.spec import Family, check, setting

DESIGNS = ("double", "lean")
LEAN_HIDDEN = 128  # the lean neck's hidden layer (256 measured no better in two epochs)
LEAN_KERNELS = (5, 3, 3)  # each lean stage's conv: 28 -> 24 -> 12, 12 -> 10 -> 5, then padded: 5 -> 5 -> 2
LEAN_PADDINGS = (0, 0, 1)  # the third is padded: an unpadded one would leave 1x1, which batch norm cannot train on


@dataclass(frozen=True)
class CNNConfig:
    """A plain CNN: `depth` stages, widths doubling; each stage two 3x3 conv + BN + ReLU then a 2x2 max-pool
    ("double"), or one conv, a 2x2 max-pool, BN and ReLU ("lean")."""

    kind: Literal["cnn"] = "cnn"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    # channels of the first stage; stage i has width * 2**i (16: 99% MNIST in ~1 CPU minute)
    width: int = setting(16, "CNN width", minimum=4, step=4, help="channels of the first stage")
    # 28 -> 14 -> 7 with two stages (Grad-CAM on any stage: vitdemo.explain.maps)
    depth: int = setting(2, "CNN depth", minimum=1, step=1, help="stages: 1, 2 or 3")
    dropout: float = setting(0.1, "CNN dropout", minimum=0.0, step=0.05)
    design: str = setting(
        "double", "CNN design", choices=DESIGNS, shown=("two convs a stage", "lean (fast)"),
        help="double: two 3x3 convs a stage; lean: one conv a stage, pooled first (several times as fast)",
    )  # fmt: skip

    def validate(self) -> None:
        check(4 <= self.width <= 256, "width must be between 4 and 256")
        check(1 <= self.depth <= 3, "depth must be 1, 2 or 3 (28 px halves at most 3 times)")
        check(0.0 <= self.dropout < 0.9, "dropout must be in [0, 0.9)")
        check(self.design in DESIGNS, f"design must be one of {', '.join(DESIGNS)}")
        check(self.design == "double" or lean_sides(self)[-1] >= 2, "a lean CNN of this depth leaves no pixels")


def lean_conv_sides(m: CNNConfig) -> list[int]:
    """Each lean stage's conv output side, before its 2x2 pool (28 -> 24, 12 -> 10, 5 -> 5)."""
    sides, side = [], m.image_size
    for i in range(m.depth):
        sides.append(side - LEAN_KERNELS[i] + 1 + 2 * LEAN_PADDINGS[i])
        side = sides[-1] // 2
    return sides


def lean_sides(m: CNNConfig) -> list[int]:
    """Each lean stage's output side: its conv, then a 2x2 pool (28 -> 12 -> 5 -> 2)."""
    return [side // 2 for side in lean_conv_sides(m)]


def stage_sides(m: CNNConfig) -> list[int]:
    """The side of each stage's activations (what Grad-CAM and the hood read): a double stage's before its pooling
    (28, 14, 7), a lean stage's after it (12, 5, 2)."""
    return lean_sides(m) if m.design == "lean" else [m.image_size // 2**i for i in range(m.depth)]


def map_inputs(m: CNNConfig) -> int:
    """The last stage's map, pooled (double) or as it is (lean), flattened: what the head (lean: its neck) reads."""
    c = m.width * 2 ** (m.depth - 1)
    side = lean_sides(m)[-1] if m.design == "lean" else m.image_size // 2**m.depth
    return c * side * side


def feature_count(m: CNNConfig) -> int:
    """How many numbers the final linear layer reads: the flattened map, or a lean CNN's hidden layer."""
    return LEAN_HIDDEN if m.design == "lean" else map_inputs(m)


def parameters(m: CNNConfig) -> int:
    """Trainable parameters, counted from the config."""
    if m.design == "lean":
        total, c_in = 0, m.in_chans
        for i in range(m.depth):
            c_out = m.width * 2**i
            total += LEAN_KERNELS[i] ** 2 * c_in * c_out + 2 * c_out  # conv (no bias) + batch norm
            c_in = c_out
        return total + map_inputs(m) * LEAN_HIDDEN + LEAN_HIDDEN + LEAN_HIDDEN * m.num_classes + m.num_classes
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
    if m.design == "lean":
        macs, c_in = 0, m.in_chans
        for i, conv_side in enumerate(lean_conv_sides(m)):
            c_out = m.width * 2**i
            macs += LEAN_KERNELS[i] ** 2 * conv_side**2 * c_in * c_out  # the conv, before its pool
            c_in = c_out
        return macs + map_inputs(m) * LEAN_HIDDEN + LEAN_HIDDEN * m.num_classes
    macs, c_in, side = 0, m.in_chans, m.image_size
    for i in range(m.depth):
        c_out = m.width * 2**i
        macs += 9 * side * side * (c_in * c_out + c_out * c_out)  # two 3x3 convs at this stage's resolution
        c_in, side = c_out, side // 2
    return macs + c_in * side * side * m.num_classes


def activation_floats(m: CNNConfig) -> int:
    """Floats one image keeps for the backward pass: each conv's output, its batch norm's and its ReLU's."""
    if m.design == "lean":  # the conv's output, then the pooled map's three (pool, norm, ReLU)
        floats = 28 * 28 * 2
        for i, conv_side in enumerate(lean_conv_sides(m)):
            c, pooled = m.width * 2**i, conv_side // 2
            floats += c * conv_side * conv_side + 3 * c * pooled * pooled
        return floats + 2 * LEAN_HIDDEN
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
    reference_for=lambda m: CNNConfig(width=16, depth=2, design=m.design),  # a lean step does more per multiply-add
    shape=lambda m: f"w{m.width}x{m.depth}" + ("-lean" if m.design == "lean" else ""),
    params=parameters,
    macs=forward_macs,
    activations=activation_floats,
)
