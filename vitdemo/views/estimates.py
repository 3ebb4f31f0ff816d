"""What a run will cost before it starts, for the Train page: parameters, steps and memory (float32 training),
and what a scikit-learn run will do. Pure Python; sizes are counted in vitdemo.classroom (the queue needs them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from vitdemo.classroom import estimate_parameters, forward_macs, train_images
from vitdemo.config import CNNConfig, ModelConfig, TrainConfig, ViTConfig
from vitdemo.families import ClassicRun

CLASSIC_NAMES = {"logreg": "Logistic regression", "knn": "k nearest neighbours", "svm": "SVM (on PCA features)",
                 "forest": "Random forest"}  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    """What a run will cost, before it starts. Memory is a rough upper bound for float32 training."""

    num_params: int
    train_images: int
    steps_per_epoch: int
    total_steps: int
    weights_bytes: int  # parameters + gradients + AdamW's two moments
    activations_bytes: int  # what one training batch keeps for the backward pass
    data_bytes: int  # the uint8 images on the training device

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.activations_bytes + self.data_bytes

    def to_dict(self) -> dict[str, int]:
        return {**dataclasses.asdict(self), "total_bytes": self.total_bytes}


def estimate(config: TrainConfig) -> Estimate:
    """Parameters, steps and memory of `config` (validated first); a label budget trains on its labels only."""
    config.validate()
    n_params = estimate_parameters(config.model)
    images = train_images(config)
    steps = -(-images // config.batch_size)  # ceil
    batch = min(config.batch_size, max(images, 1))
    return Estimate(
        num_params=n_params,
        train_images=images,
        steps_per_epoch=steps,
        total_steps=steps * config.epochs,
        weights_bytes=4 * 4 * n_params,
        activations_bytes=4 * batch * _activation_floats(config.model),
        data_bytes=(60_000 + 10_000) * 28 * 28,
    )


def _activation_floats(model: ModelConfig) -> int:
    """Floats one image keeps for backward (a rough count of the saved tensors)."""
    if isinstance(model, ViTConfig):
        t, d, h = model.grid**2 + 1, model.embed_dim, int(model.embed_dim * model.mlp_ratio)
        per_block = t * (10 * d + 3 * h) + 2 * model.num_heads * t * t  # ln/qkv/proj/residuals, mlp, attention
        return 28 * 28 * 2 + model.depth * per_block
    if not isinstance(model, CNNConfig):  # linear, MLP, transfer: roughly a float saved per multiply-add
        return 28 * 28 * 2 + forward_macs(model) // 8
    floats, side = 28 * 28 * 2, model.image_size
    for i in range(model.depth):
        c = model.width * 2**i
        floats += 2 * 3 * c * side * side  # two convs, each saving conv, batch-norm and ReLU outputs
        side //= 2
    return floats


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KB' (powers of 1024, one decimal below 100)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" or abs(n) >= 100 else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def estimate_lines(est: Estimate) -> list[str]:
    """The estimate as short lines for the page."""
    return [
        f"{est.num_params:,} parameters",
        f"{est.train_images:,} training images · {est.steps_per_epoch:,} steps per epoch · {est.total_steps:,} in all",
        f"about {human_bytes(est.total_bytes)} of memory while training "
        f"(weights and optimizer {human_bytes(est.weights_bytes)}, one batch's activations "
        f"{human_bytes(est.activations_bytes)}, the dataset {human_bytes(est.data_bytes)})",
    ]


def classic_lines(config: ClassicRun) -> list[str]:
    """What a scikit-learn run will do, for the page (it has no steps or epochs)."""
    images = train_images(config)
    return [
        f"{CLASSIC_NAMES[config.model.kind]} fitted once on {images:,} training images, on the CPU",
        "then scored on the 10,000 test images like every other run",
    ]
