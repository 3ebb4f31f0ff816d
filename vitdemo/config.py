"""Frozen configs for models and training runs, with validation and (de)serialisation."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

DATASETS = ("mnist", "fashion")
DEVICES = ("auto", "cpu", "cuda")
SCHEDULES = ("cosine", "onecycle")
MAX_SEED = 2**64 - 1  # torch.manual_seed and torch.Generator.manual_seed overflow above this (numpy gets seed % 2**32)


class ConfigError(ValueError):
    """A config value is out of range; the message says which and why."""


@dataclass(frozen=True)
class ViTConfig:
    """A small ViT for 28x28 images."""

    kind: Literal["vit"] = "vit"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    patch_size: int = 4  # 4 -> 7x7 = 49 patches: fine enough for strokes; 7 is faster, 14 is a toy
    embed_dim: int = 64
    depth: int = 6
    num_heads: int = 4
    mlp_ratio: float = 2.0  # small models train faster on CPU with a narrower MLP
    dropout: float = 0.0  # augmentation regularises enough for short runs

    def validate(self) -> None:
        _check(self.patch_size in (4, 7, 14), "patch_size must be 4, 7 or 14 (it must divide 28)")
        _check(8 <= self.embed_dim <= 1024, "embed_dim must be between 8 and 1024")
        _check(1 <= self.num_heads <= 16, "num_heads must be between 1 and 16")
        _check(
            self.embed_dim % self.num_heads == 0,
            f"embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})",
        )
        _check(1 <= self.depth <= 24, "depth must be between 1 and 24")
        _check(0.5 <= self.mlp_ratio <= 8, "mlp_ratio must be between 0.5 and 8")
        _check(0.0 <= self.dropout < 0.9, "dropout must be in [0, 0.9)")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class CNNConfig:
    """A plain CNN: `depth` stages of two 3x3 conv + BN + ReLU, then 2x2 max-pool; widths double."""

    kind: Literal["cnn"] = "cnn"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    width: int = 16  # channels of the first stage; stage i has width * 2**i (16: 99% MNIST in ~1 CPU minute)
    depth: int = 2  # 28 -> 14 -> 7 with two stages (Grad-CAM on any stage: vitdemo.explain)
    dropout: float = 0.1

    def validate(self) -> None:
        _check(4 <= self.width <= 256, "width must be between 4 and 256")
        _check(1 <= self.depth <= 3, "depth must be 1, 2 or 3 (28 px halves at most 3 times)")
        _check(0.0 <= self.dropout < 0.9, "dropout must be in [0, 0.9)")


ModelConfig = ViTConfig | CNNConfig


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Every field is a plain value so a run can be stored and replayed."""

    model: ModelConfig = field(default_factory=ViTConfig)
    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3  # peak learning rate (AdamW)
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    label_smoothing: float = 0.1
    grad_clip: float = 1.0  # max global grad norm; 0 disables
    augment: float = 1.0  # 0 = off; 1 = +-10 deg, +-10% scale, +-2 px shift
    seed: int = 0  # initialisation, shuffling, augmentation
    split_seed: int = 0  # which images are held out for validation: the same for runs that differ only in `seed`
    device: str = "auto"
    val_size: int = 5000  # held out from the 60k training images
    train_subset: int = 0  # >0: use only this many training images (tests, quick demos)
    compile: bool = False  # torch.compile (CUDA or CPU; CPU needs a C++ compiler)
    amp: bool = True  # bf16 autocast, CUDA only
    keep: Literal["best", "last"] = "best"
    name: str = ""

    def validate(self) -> None:
        self.model.validate()
        _check(self.dataset in DATASETS, f"dataset must be one of {', '.join(DATASETS)}")
        _check(1 <= self.epochs <= 500, "epochs must be between 1 and 500")
        _check(1 <= self.batch_size <= 8192, "batch_size must be between 1 and 8192")
        _check(0 < self.lr <= 1.0, "lr must be in (0, 1]")
        _check(0 <= self.weight_decay <= 1.0, "weight_decay must be in [0, 1]")
        _check(0 <= self.warmup_epochs <= self.epochs, "warmup_epochs must be in [0, epochs]")
        _check(self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}")
        _check(0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)")
        _check(self.grad_clip >= 0, "grad_clip must be >= 0 (0 disables clipping)")
        _check(0 <= self.augment <= 3, "augment must be between 0 (off) and 3")
        for name in ("seed", "split_seed"):
            value = getattr(self, name)
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEED
            _check(ok, f"{name} must be a whole number from 0 to 2**64 - 1 ({MAX_SEED}), got {value!r}")
        _check(self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}")
        _check(0 <= self.val_size <= 20000, "val_size must be between 0 and 20000")
        _check(self.train_subset >= 0, "train_subset must be >= 0")
        _check(self.keep in ("best", "last"), "keep must be 'best' or 'last'")
        _check(len(self.name) <= 100, "name must be at most 100 characters")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        model = model_config_from_dict(data.pop("model", {"kind": "vit"}))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        _check(not unknown, f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(model=model, **data)


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a model config from its dict; unknown keys are an error, missing ones take defaults."""
    kind = data.get("kind", "vit")
    cls = {"vit": ViTConfig, "cnn": CNNConfig}.get(kind)
    _check(cls is not None, f"unknown model kind {kind!r}: expected 'vit' or 'cnn'")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    _check(not unknown, f"unknown {kind} settings: {', '.join(sorted(unknown))}")
    return cls(**data)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
