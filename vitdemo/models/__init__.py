"""The networks, one model file per family (vitdemo.families holds each family's config and registry entry).

Every model takes (B, 1, 28, 28) and has a `head` module that maps its features to the classes: a probe trains
only the head, and an init checkpoint fills everything else (vitdemo.training.loop.prepare_model). Importing this
package loads no model file: `build_model` imports a family's file the first time one of its networks is built
(torchvision's seconds of import are paid by transfer models only).
"""

from __future__ import annotations

from torch import nn

from vitdemo import families
from vitdemo.families.spec import ModelConfig

HEAD = "head"  # every model's classifier module, and the prefix of its state_dict keys
DIST_HEAD = "head_dist"  # a taught ViT's second classifier (DeiT's distillation head): a head as well


def build_model(config: ModelConfig) -> nn.Module:
    """Build an untrained model from its config (validated). Never reads a file or the network."""
    return families.build(config)


def head_of(model: nn.Module) -> nn.Module:
    """The module that maps features to classes (`model.head`)."""
    head = getattr(model, HEAD, None)
    if not isinstance(head, nn.Module):
        raise TypeError(f"{type(model).__name__} has no `{HEAD}` module")
    return head


def is_head_key(name: str) -> bool:
    """Whether a state_dict key belongs to a head (the classifier, or a taught ViT's distillation head)."""
    return any(name == head or name.startswith(f"{head}.") for head in (HEAD, DIST_HEAD))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["HEAD", "build_model", "count_parameters", "head_of", "is_head_key"]
