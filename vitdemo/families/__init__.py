"""The model families, one registry entry each (timm's `register_model`, by module): every module of this package
but `spec` and `vocab` holds one family's config class and its `FAMILY` entry, and is found by listing the
package, so adding a family is one module here plus its model file in vitdemo/models/.

Torch-free to import. `build` imports a family's model file the first time one of its networks is built.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Mapping
from functools import cache
from typing import Any

from vitdemo.families.spec import CLASSIFY, ConfigError, Family, ModelConfig, check

NOT_FAMILIES = frozenset({"spec", "vocab"})


@cache
def _registry() -> dict[str, Family]:
    found: list[Family] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in NOT_FAMILIES or info.name.startswith("_"):
            continue
        entry = getattr(importlib.import_module(f"{__name__}.{info.name}"), "FAMILY", None)
        if isinstance(entry, Family):
            found.append(entry)
    found.sort(key=lambda f: (f.order, f.kind))
    return {f.kind: f for f in found}


def families() -> list[Family]:
    """Every family, in the ladder's order (linear, MLP, CNN, ViT, transfer, ...)."""
    return list(_registry().values())


def kinds() -> tuple[str, ...]:
    return tuple(_registry())


def get(kind: str) -> Family:
    """The family of `kind`; an unknown kind is a ConfigError that names the known ones (never read as another)."""
    found = _registry().get(kind) if isinstance(kind, str) else None
    check(found is not None, f"unknown model kind {kind!r}: expected one of {', '.join(kinds())}")
    assert found is not None
    return found


def is_kind(kind: Any) -> bool:
    return isinstance(kind, str) and kind in _registry()


def model_configs() -> dict[str, type]:
    """kind -> its config class."""
    return {f.kind: f.config for f in families()}


def model_config_from_dict(data: Mapping[str, Any]) -> ModelConfig:
    """Rebuild a model config from its dict; unknown keys are an error, missing ones take defaults (a dict
    without a kind is a ViT's: the first runs stored none)."""
    kind = data.get("kind", "vit")
    cls = get(kind).config
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    check(not unknown, f"unknown {kind} settings: {', '.join(sorted(unknown))}")
    return cls(**data)


def task_of(kind: str) -> str:
    """What a kind's models do; a kind this version does not know reads as a classifier (old files)."""
    return _registry()[kind].task if is_kind(kind) else CLASSIFY


# -- building and counting ---------------------------------------------------------------------------------
def build(config: ModelConfig) -> Any:
    """An untrained network (an nn.Module) for `config`, validated first. Never reads a file or the network."""
    config.validate()
    module, _, attr = get(config.kind).builder.partition(":")
    return getattr(importlib.import_module(module), attr)(config)


def counted_on_meta(config: ModelConfig) -> int:
    """Trainable parameters of the network built on the meta device (no memory, no weights read)."""
    import torch

    with torch.device("meta"):
        net = build(config)
    return sum(p.numel() for p in net.parameters())


def parameters(config: ModelConfig) -> int:
    """Trainable parameters, from the family's own count when it has one (no model is built)."""
    count = get(config.kind).params
    return count(config) if count is not None else counted_on_meta(config)


def forward_macs(config: ModelConfig) -> int:
    """One image's forward multiply-adds (matrix products and convolutions)."""
    fam = get(config.kind)
    if fam.macs is not None:
        return fam.macs(config)
    return int(parameters(config) * fam.macs_per_param(config))


def activation_floats(config: ModelConfig) -> int:
    """Floats one image keeps for the backward pass (rough): the family's count, else a float per 8 multiply-adds."""
    fam = get(config.kind)
    if fam.activations is not None:
        return fam.activations(config)
    return 28 * 28 * 2 + forward_macs(config) // 8


def train_flops_per_image(config: ModelConfig) -> float:
    """Forward and backward (about twice the forward) in FLOPs: 3 passes of 2 FLOPs per multiply-add."""
    return 6.0 * forward_macs(config)


def shape_tag(config: ModelConfig) -> str:
    """A short tag of a model's shape for run names: 'p4-d64x6' (ViT), 'w16x2' (CNN), 'h256-128' (MLP)..."""
    return get(config.kind).shape(config)


__all__ = ["ConfigError", "Family", "ModelConfig", "build", "families", "get", "kinds", "model_config_from_dict"]
