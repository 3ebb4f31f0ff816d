"""Model registry: one `build_model(config)` for every kind."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from vitdemo.config import CNNConfig, ModelConfig, ViTConfig
from vitdemo.models.cnn import CNN
from vitdemo.models.vit import ViT

MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {"vit": ViT, "cnn": CNN}


def build_model(config: ModelConfig) -> nn.Module:
    """Build an untrained model from its config (validated)."""
    return MODEL_BUILDERS[config.kind](config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["CNN", "CNNConfig", "MODEL_BUILDERS", "ViT", "ViTConfig", "build_model", "count_parameters"]
