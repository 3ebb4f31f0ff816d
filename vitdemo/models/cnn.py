"""A plain configurable CNN with batch norm; its last conv stage is the Grad-CAM target."""

from __future__ import annotations

import torch
from torch import nn

from vitdemo.config import CNNConfig


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True))


class CNN(nn.Module):
    """`depth` stages of [conv-bn-relu x2, maxpool 2]; widths double each stage; flatten + linear head."""

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        stages: list[nn.Module] = []
        c_in = config.in_chans
        for i in range(config.depth):
            c_out = config.width * 2**i
            stages.append(nn.Sequential(conv_bn_relu(c_in, c_out), conv_bn_relu(c_out, c_out)))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2)
        side = config.image_size // 2**config.depth  # 28 -> 7 after two stages
        # Flatten rather than global-average-pool: position matters for digits and it trains much faster.
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(c_in * side * side, config.num_classes)
        )

    @property
    def cam_layer(self) -> nn.Module:
        """The layer whose activations and gradients Grad-CAM uses: the last stage, before pooling."""
        return self.stages[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = self.pool(stage(x))  # (B, width * 2**i, H / 2**(i+1), W / 2**(i+1))
        return self.head(x)  # (B, num_classes)
