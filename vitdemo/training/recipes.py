"""Named training recipes: complete TrainConfigs that `python -m vitdemo train --recipe NAME` starts from (and
the Train form's "seed recipe" preset); and the fine-tuning recipe for a label budget (`finetune_config`).

Flags given with --recipe override the recipe's values (e.g. `--epochs 1` for a quick check).
"""

from __future__ import annotations

from dataclasses import dataclass

from vitdemo.config import ConfigError, ModelConfig, TrainConfig, ViTConfig

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


# -- fine-tuning with a label budget ---------------------------------------------------------------------------
# A run with a label budget holds out 1,000 validation images to report on, never to choose its epoch by: a study
# of 100 labels cannot pick its weights with 5,000 more (so it keeps its last weights).
FEW_LABELS_VAL_SIZE = 1000


@dataclass(frozen=True)
class FinetuneRecipe:
    """Epochs, batch and peak rate for a label budget: a few hundred optimiser steps whatever the budget, so
    fine-tuning a shipped encoder takes about a minute on one CPU core at 100 labels."""

    epochs: int
    batch_size: int
    lr: float


FINETUNE_RECIPES: dict[int, FinetuneRecipe] = {
    100: FinetuneRecipe(epochs=40, batch_size=10, lr=1e-3),  # 10 steps an epoch, 400 in all; each label seen 40x
    600: FinetuneRecipe(epochs=15, batch_size=32, lr=1e-3),  # 19 steps an epoch, 285 in all
    6000: FinetuneRecipe(epochs=4, batch_size=64, lr=1e-3),  # 94 steps an epoch, 376 in all
    0: FinetuneRecipe(epochs=2, batch_size=128, lr=1e-3),  # every label: 430 steps an epoch
}


def finetune_recipe(labels: int) -> FinetuneRecipe:
    """The recipe of the nearest budget at or above `labels` (0: every label)."""
    fitting = [b for b in FINETUNE_RECIPES if b and labels and b >= labels]
    return FINETUNE_RECIPES[min(fitting)] if fitting else FINETUNE_RECIPES[0]


def finetune_config(
    model: ModelConfig,
    *,
    labels: int,
    init: str = "",
    probe: bool = False,
    dataset: str = "mnist",
    seed: int = 0,
    device: str = "auto",
    name: str = "",
) -> TrainConfig:
    """A run that fine-tunes (or, with `probe`, linearly probes) `init` on `labels` class-balanced labels; without
    `init`, the same recipe from scratch (the baseline to beat)."""
    r = finetune_recipe(labels)
    return TrainConfig(
        model=model,
        dataset=dataset,
        epochs=r.epochs,
        batch_size=r.batch_size,
        lr=r.lr * (3 if probe else 1),  # a probe trains only its head: a larger step
        warmup_epochs=0.1 * r.epochs,
        seed=seed,
        device=device,
        val_size=FEW_LABELS_VAL_SIZE if labels else TrainConfig.val_size,
        keep="last" if labels else "best",
        labels=labels,
        init=init,
        probe=probe,
        name=name,
    )
