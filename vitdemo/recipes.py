"""Named training recipes: complete TrainConfigs that `python -m vitdemo train --recipe NAME` starts from.

Flags given with --recipe override the recipe's values (e.g. `--epochs 1` for a quick check).
"""

from __future__ import annotations

from vitdemo.config import ConfigError, TrainConfig, ViTConfig

# The experiment the app grows from: a ViT on 7x7-pixel patches (a 4x4 grid of 16 tokens), hidden size 128,
# 4 layers, 4 heads, Adam at 3e-4, batch 64, 10 epochs, rotations and flips: 97.77% published test accuracy.
SEED_VIT = TrainConfig(
    model=ViTConfig(
        patch_size=7,
        embed_dim=128,
        depth=4,
        num_heads=4,
        mlp_ratio=4.0,  # not stated by the recipe: the standard ViT's 4x MLP
        dropout=0.0,
    ),
    dataset="mnist",
    epochs=10,
    batch_size=64,
    lr=3e-4,
    weight_decay=0.0,  # plain Adam: AdamW without decay
    warmup_epochs=0.0,
    schedule="constant",  # Adam at a fixed rate, no warm-up or decay
    label_smoothing=0.0,
    grad_clip=0.0,
    augment=1.0,  # rotations (+-10 deg, with small scale and shift changes)...
    hflip=True,  # ...and flips, as published (they make some digits ambiguous: a mirrored 2 is not a 2)
    name="seed-vit",
)

RECIPES: dict[str, TrainConfig] = {"seed-vit": SEED_VIT}


def recipe(name: str) -> TrainConfig:
    """The named recipe; ConfigError names the known ones."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}: expected one of {', '.join(RECIPES)}")
    return RECIPES[name]
