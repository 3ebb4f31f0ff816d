"""The bottom rungs of the model ladder: a linear classifier and an MLP on the 784 pixels.

Both take (B, 1, 28, 28) like the CNN and the ViT, so the trainer, the evaluator and the checkpoints
treat them like any other kind. Their configs live in vitdemo.config. They show what convolution and attention add over raw pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from vitdemo.families.linear import LinearConfig
from vitdemo.families.mlp import MLPConfig


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
