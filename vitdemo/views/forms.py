"""The Train page's form without the page: presets, form values <-> TrainConfig, validation messages and the
size estimates shown before a run is launched. Pure Python (no Streamlit), so every rule is tested directly.

Form values are one flat dict (`FormValues`) whose keys are the widgets' keys: both model kinds' fields are
always present, so switching the kind back and forth keeps what was typed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from vitdemo.classroom import (  # sizes are counted there (the queue needs them)
    TRAIN_IMAGES,
    estimate_parameters,
    forward_macs,
)
from vitdemo.config import CNNConfig, ConfigError, ModelConfig, TrainConfig, ViTConfig

FormValues = dict[str, Any]

# form key -> (config it belongs to, that config's field name)
MODEL_FIELDS: dict[str, tuple[str, str]] = {
    "patch_size": ("vit", "patch_size"),
    "embed_dim": ("vit", "embed_dim"),
    "vit_depth": ("vit", "depth"),
    "num_heads": ("vit", "num_heads"),
    "mlp_ratio": ("vit", "mlp_ratio"),
    "vit_dropout": ("vit", "dropout"),
    "cnn_width": ("cnn", "width"),
    "cnn_depth": ("cnn", "depth"),
    "cnn_dropout": ("cnn", "dropout"),
}
TRAIN_FIELDS: tuple[str, ...] = (
    "dataset",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "schedule",
    "label_smoothing",
    "augment",
    "seed",
    "device",
    "train_subset",
    "name",
)
INT_FIELDS = {"patch_size", "embed_dim", "vit_depth", "num_heads", "cnn_width", "cnn_depth"}
INT_FIELDS |= {"epochs", "batch_size", "seed", "train_subset"}
FLOAT_FIELDS = {"mlp_ratio", "vit_dropout", "cnn_dropout", "lr", "weight_decay", "label_smoothing", "augment"}
KEYS: tuple[str, ...] = ("model_kind", *MODEL_FIELDS, *TRAIN_FIELDS)

# What a config error calls a field -> what the form calls it (the messages name the widgets the user sees).
LABELS: dict[str, str] = {
    "patch_size": "patch size",
    "embed_dim": "embedding dim",
    "num_heads": "heads",
    "mlp_ratio": "MLP ratio",
    "vit_depth": "ViT depth",
    "vit_dropout": "ViT dropout",
    "cnn_width": "CNN width",
    "width": "CNN width",
    "cnn_depth": "CNN depth",
    "cnn_dropout": "CNN dropout",
    "batch_size": "batch size",
    "lr": "learning rate",
    "weight_decay": "weight decay",
    "label_smoothing": "label smoothing",
    "augment": "augmentation",
    "train_subset": "quick subset",
    "val_size": "validation size",
}
_NAMES = re.compile(r"\b(" + "|".join(sorted(LABELS, key=len, reverse=True)) + r")\b")

# Presets fill in every field except the model kind, the dataset, the device and the name: a teacher picks
# "ViT on Fashion" first, then how long they can wait.
PRESETS: dict[str, FormValues] = {
    "fast demo": {  # about a minute on a laptop CPU: 10k images, 3 epochs, a small 7x7-patch ViT (16 tokens)
        "patch_size": 7,
        "embed_dim": 48,
        "vit_depth": 3,
        "num_heads": 4,
        "mlp_ratio": 2.0,
        "vit_dropout": 0.0,
        "cnn_width": 16,
        "cnn_depth": 2,
        "cnn_dropout": 0.1,
        "epochs": 3,
        "batch_size": 64,  # many small steps: a ViT from scratch needs steps more than it needs big batches
        "lr": 2e-3,
        "weight_decay": 0.05,
        "schedule": "onecycle",
        "label_smoothing": 0.1,
        "augment": 0.0,  # three short epochs do not overfit; augmentation would only slow learning down
        "seed": 0,
        "train_subset": 10_000,
    },
    "best accuracy": {  # minutes on a GPU, much longer on a CPU: the full 55k images, 4x4 patches, 15 epochs
        "patch_size": 4,
        "embed_dim": 64,
        "vit_depth": 6,
        "num_heads": 4,
        "mlp_ratio": 2.0,
        "vit_dropout": 0.0,
        "cnn_width": 32,
        "cnn_depth": 2,
        "cnn_dropout": 0.1,
        "epochs": 15,
        "batch_size": 128,
        "lr": 2e-3,
        "weight_decay": 0.05,
        "schedule": "cosine",
        "label_smoothing": 0.1,
        "augment": 1.0,
        "seed": 0,
        "train_subset": 0,
    },
}


def default_values() -> FormValues:
    """The form as TrainConfig's defaults fill it (a ViT on MNIST, device 'auto')."""
    return values_from_config(TrainConfig())


def apply_preset(values: FormValues, preset: str) -> FormValues:
    """A copy of `values` with the preset's fields filled in."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}: expected one of {', '.join(PRESETS)}")
    return {**values, **PRESETS[preset]}


def values_from_config(config: TrainConfig | dict[str, Any]) -> FormValues:
    """Form values showing `config` (a TrainConfig or its dict, e.g. a stored run's); the other model kind's
    fields keep their defaults. Settings the form does not show (val_size, keep, ...) are not carried."""
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    models: dict[str, ModelConfig] = {"vit": ViTConfig(), "cnn": CNNConfig(), config.model.kind: config.model}
    values: FormValues = {"model_kind": config.model.kind}
    for key, (kind, name) in MODEL_FIELDS.items():
        values[key] = getattr(models[kind], name)
    for key in TRAIN_FIELDS:
        values[key] = getattr(config, key)
    return values


def coerce_values(values: FormValues) -> FormValues:
    """A copy with numbers as the form's widgets need them (int or float); values that are not numbers stay."""
    out = dict(values)
    for key, value in values.items():
        with contextlib.suppress(ConfigError):
            out[key] = _coerce(key, value)
    return out


def config_from_values(values: FormValues) -> TrainConfig:
    """The TrainConfig the form describes, validated. Raises ConfigError naming the first bad field."""
    config, messages = _build(values)
    if messages:
        raise ConfigError(messages[0])
    assert config is not None
    return config


def check_values(
    values: FormValues, devices: list[str] | tuple[str, ...] = ("cpu",)
) -> tuple[TrainConfig | None, list[str]]:
    """(config, []) when the form is valid, else (None, messages): one sentence per problem found (the model's
    and the training settings' are checked separately, so both show at once). `devices`: what the server has."""
    config, messages = _build(values)
    if config is not None and config.device == "cuda" and "cuda" not in devices:
        messages.append("Device 'cuda' was chosen but this server has no CUDA GPU: choose auto or cpu.")
        config = None
    return (config if not messages else None), messages


def _build(values: FormValues) -> tuple[TrainConfig | None, list[str]]:
    missing = [k for k in KEYS if k not in values]
    if missing:
        return None, [f"The form is missing {', '.join(missing)}."]
    kind = values["model_kind"]
    if kind not in ("vit", "cnn"):
        return None, [f"Model kind must be vit or cnn, not {kind!r}."]
    messages, coerced = [], {}
    for key in KEYS:
        try:
            coerced[key] = _coerce(key, values[key])
        except ConfigError as exc:
            messages.append(_readable(str(exc)))
    if messages:
        return None, messages
    model_args = {name: coerced[key] for key, (k, name) in MODEL_FIELDS.items() if k == kind}
    model: ModelConfig = ViTConfig(**model_args) if kind == "vit" else CNNConfig(**model_args)
    train_args = {k: coerced[k] for k in TRAIN_FIELDS}
    train_args["name"] = str(train_args["name"] or "").strip()
    # The default warm-up is one epoch; short runs warm up for a third of their epochs instead of all of them.
    warmup = min(TrainConfig.warmup_epochs, max(train_args["epochs"], 0) / 3)
    config = TrainConfig(model=model, warmup_epochs=warmup, **train_args)
    for check in (model.validate, dataclasses.replace(config, model=type(model)()).validate):
        try:
            check()
        except ConfigError as exc:
            messages.append(_readable(str(exc)))
    return (None if messages else config), messages


def _coerce(key: str, value: Any) -> Any:
    try:
        if key in INT_FIELDS:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if key in FLOAT_FIELDS:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
    except (TypeError, ValueError):
        kind = "a whole number" if key in INT_FIELDS else "a number"
        raise ConfigError(f"{key} must be {kind}, not {value!r}") from None
    return value


def _readable(message: str) -> str:
    """A config error as a sentence about the form: config names become the widgets' labels."""
    message = _NAMES.sub(lambda m: LABELS[m.group(0)], message)
    return message[0].upper() + message[1:] + ("" if message.endswith(".") else ".")


# -- estimates ---------------------------------------------------------------------------------------
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
    """Parameters, steps and memory of `config` (validated first)."""
    config.validate()
    n_params = estimate_parameters(config.model)
    available = max(TRAIN_IMAGES - config.val_size, 0)
    images = min(config.train_subset, available) if config.train_subset else available
    steps = -(-images // config.batch_size)  # ceil
    batch = min(config.batch_size, max(images, 1))
    return Estimate(
        num_params=n_params,
        train_images=images,
        steps_per_epoch=steps,
        total_steps=steps * config.epochs,
        weights_bytes=4 * 4 * n_params,
        activations_bytes=4 * batch * _activation_floats(config.model),
        data_bytes=(TRAIN_IMAGES + 10_000) * 28 * 28,
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
