"""Model registry: one `build_model(config)` for every kind.

Every model takes (B, 1, 28, 28) and has a `head` module that maps its features to the classes: a probe trains
only the head, and an init checkpoint fills everything else (vitdemo.training.loop.prepare_model).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from vitdemo.config import CNNConfig, ModelConfig, TransferConfig, ViTConfig
from vitdemo.models.cnn import CNN
from vitdemo.models.ladder import MLP, Linear
from vitdemo.models.vit import ViT


def _transfer(config: TransferConfig) -> nn.Module:
    """torchvision costs seconds of import: only transfer models (and their checkpoints) pay for it.
    The weights are random: training loads the ImageNet ones (vitdemo.training.loop), a checkpoint its own."""
    from vitdemo.models.transfer import TransferNet

    return TransferNet(config)


MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "vit": ViT,
    "cnn": CNN,
    "linear": Linear,
    "mlp": MLP,
    "transfer": _transfer,
}
HEAD = "head"  # every model's classifier module, and the prefix of its state_dict keys


def build_model(config: ModelConfig) -> nn.Module:
    """Build an untrained model from its config (validated). Never reads a file or the network."""
    return MODEL_BUILDERS[config.kind](config)


def head_of(model: nn.Module) -> nn.Module:
    """The module that maps features to classes (`model.head`)."""
    head = getattr(model, HEAD, None)
    if not isinstance(head, nn.Module):
        raise TypeError(f"{type(model).__name__} has no `{HEAD}` module")
    return head


def is_head_key(name: str) -> bool:
    """Whether a state_dict key belongs to the head."""
    return name == HEAD or name.startswith(f"{HEAD}.")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "CNN",
    "MLP",
    "CNNConfig",
    "HEAD",
    "Linear",
    "MODEL_BUILDERS",
    "ViT",
    "ViTConfig",
    "build_model",
    "count_parameters",
    "head_of",
    "is_head_key",
]
