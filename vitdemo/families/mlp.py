"""The MLP family: fully connected layers on the flattened pixels (the model: vitdemo.models.ladder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vitdemo.families.spec import Family, check, setting


@dataclass(frozen=True)
class MLPConfig:
    """Fully connected layers on the flattened pixels: Linear -> ReLU -> Dropout per hidden size, then the head."""

    kind: Literal["mlp"] = "mlp"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    # two layers reach ~98% on MNIST; wider adds parameters, not accuracy
    hidden: tuple[int, ...] = setting((256, 128), "hidden layers", help="layer sizes, e.g. 256,128 (1 to 6 layers)")
    # a little: augmentation already regularises, and MLPs overfit MNIST slowly
    dropout: float = setting(0.1, "MLP dropout", minimum=0.0, step=0.05)

    def __post_init__(self) -> None:
        # JSON (run records, checkpoint headers) turns the tuple into a list; keep configs equal and hashable.
        # Only the container changes: validate() still refuses sizes that are not whole numbers.
        if isinstance(self.hidden, list):
            object.__setattr__(self, "hidden", tuple(self.hidden))

    def validate(self) -> None:
        check(self.image_size == 28, "image_size must be 28")
        check(self.in_chans == 1, "in_chans must be 1 (greyscale)")
        check(2 <= self.num_classes <= 1000, "num_classes must be between 2 and 1000")
        check(isinstance(self.hidden, tuple) and 1 <= len(self.hidden) <= 6, "hidden must list 1 to 6 layer sizes")
        whole = all(type(h) is int for h in self.hidden)
        check(whole and all(8 <= h <= 4096 for h in self.hidden), "every layer in hidden must have 8 to 4096 units")
        check(0.0 <= self.dropout < 0.9, "dropout must be in [0, 0.9)")


def parameters(m: MLPConfig) -> int:
    sizes = [m.in_chans * m.image_size**2, *m.hidden, m.num_classes]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


FAMILY = Family(
    kind="mlp",
    config=MLPConfig,
    builder="vitdemo.models.ladder:MLP",
    name="MLP",
    order=20,
    reference=MLPConfig(hidden=(64,)),
    shape=lambda m: "h" + "-".join(str(h) for h in m.hidden),
    params=parameters,
)
