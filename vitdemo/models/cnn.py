"""A plain configurable CNN with batch norm; `forward(x, return_features=True)` also returns the last
conv stage's activations, the Grad-CAM target."""

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

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's activations, before its pooling: (B, width * 2**(depth-1), h, w), Grad-CAM's input."""
        for stage in self.stages[:-1]:
            x = self.pool(stage(x))  # (B, width * 2**i, H / 2**(i+1), W / 2**(i+1))
        return self.stages[-1](x)  # (B, K, h, w): 7x7 for two stages on 28x28

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> logits (B, num_classes); with `return_features`, also the last stage's activations
        (B, K, h, w), still in the autograd graph (as the ViT returns its attention with `return_attn`)."""
        acts = self.forward_features(x)  # (B, K, h, w)
        logits = self.head(self.pool(acts))  # (B, num_classes)
        return (logits, acts) if return_features else logits
