"""The bottom rungs of the model ladder: a linear classifier and an MLP on the 784 pixels.

Both take (B, 1, 28, 28) like the CNN and the ViT, so the trainer, the evaluator and the checkpoints
treat them like any other kind. They show what convolution and attention add over raw pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from vitdemo.config import ConfigError


@dataclass(frozen=True)
class LinearConfig:
    """Multinomial logistic regression as a torch model: pixels -> 10 logits (7,850 parameters)."""

    kind: Literal["linear"] = "linear"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10

    def validate(self) -> None:
        _check(self.image_size == 28, "image_size must be 28")
        _check(self.in_chans == 1, "in_chans must be 1 (greyscale)")
        _check(2 <= self.num_classes <= 1000, "num_classes must be between 2 and 1000")


@dataclass(frozen=True)
class MLPConfig:
    """Fully connected layers on the flattened pixels: Linear -> ReLU -> Dropout per hidden size, then the head."""

    kind: Literal["mlp"] = "mlp"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    hidden: tuple[int, ...] = (256, 128)  # two layers reach ~98% on MNIST; wider adds parameters, not accuracy
    dropout: float = 0.1  # a little: augmentation already regularises, and MLPs overfit MNIST slowly

    def __post_init__(self) -> None:
        # JSON (run records, checkpoint headers) turns the tuple into a list; keep configs equal and hashable.
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))

    def validate(self) -> None:
        _check(self.image_size == 28, "image_size must be 28")
        _check(self.in_chans == 1, "in_chans must be 1 (greyscale)")
        _check(2 <= self.num_classes <= 1000, "num_classes must be between 2 and 1000")
        _check(1 <= len(self.hidden) <= 6, "hidden must list 1 to 6 layer sizes")
        _check(all(8 <= int(h) <= 4096 for h in self.hidden), "each hidden size must be between 8 and 4096")
        _check(0.0 <= self.dropout < 0.9, "dropout must be in [0, 0.9)")


class Linear(nn.Module):
    """Flatten, then one affine map. `templates()` shows its weights as one 28x28 image per class."""

    def __init__(self, config: LinearConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.head = nn.Linear(config.in_chans * config.image_size**2, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1))  # (B, 1, 28, 28) -> (B, 784) -> (B, num_classes)

    def templates(self) -> torch.Tensor:
        side = self.config.image_size
        return self.head.weight.detach().reshape(self.config.num_classes, side, side)  # (C, 28, 28)


class MLP(nn.Module):
    """Flatten, then [Linear -> ReLU -> Dropout] per hidden size, then a linear head."""

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        layers: list[nn.Module] = [nn.Flatten()]
        width = config.in_chans * config.image_size**2
        for hidden in config.hidden:
            layers += [nn.Linear(width, int(hidden)), nn.ReLU(inplace=True), nn.Dropout(config.dropout)]
            width = int(hidden)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))  # (B, 1, 28, 28) -> (B, hidden[-1]) -> (B, num_classes)


def ladder_config_from_dict(data: dict[str, Any]) -> LinearConfig | MLPConfig:
    """Rebuild a ladder config from its dict; unknown keys are an error, missing ones take defaults."""
    kind = data.get("kind")
    _check(kind in ("linear", "mlp"), f"unknown ladder kind {kind!r}: expected 'linear' or 'mlp'")
    cls = LinearConfig if kind == "linear" else MLPConfig
    known = set(cls.__dataclass_fields__)
    unknown = set(data) - known
    _check(not unknown, f"unknown {kind} settings: {', '.join(sorted(unknown))}")
    return cls(**data)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
