"""Self-describing checkpoint files: safetensors weights plus a JSON header that rebuilds the model.

Loading never unpickles anything: safetensors holds only raw tensors and a string->string header.
Files are written atomically (a temporary file in the same folder, then a rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from vitdemo.config import ModelConfig, model_config_from_dict
from vitdemo.data import class_names, normalization
from vitdemo.models import build_model, count_parameters

FORMAT = "vitdemo-checkpoint"
FORMAT_VERSION = 1
HEADER_KEY = "vitdemo"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or does not match its model; the message says which."""


@dataclass(frozen=True)
class CheckpointMeta:
    model_config: ModelConfig
    dataset: str
    mean: float
    std: float
    classes: tuple[str, ...]
    metrics: dict[str, Any] = field(default_factory=dict)  # val_acc, test_acc, macro_f1, train_time_s, ...
    train_config: dict[str, Any] | None = None
    name: str = ""

    def to_header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "model_config": self.model_config.__dict__,
            "dataset": self.dataset,
            "mean": self.mean,
            "std": self.std,
            "classes": list(self.classes),
            "metrics": self.metrics,
            "train_config": self.train_config,
            "name": self.name,
        }

    @classmethod
    def from_header(cls, header: dict[str, Any]) -> CheckpointMeta:
        if header.get("format") != FORMAT:
            raise CheckpointError("not a vitdemo checkpoint (its header has no vitdemo format tag)")
        if int(header.get("version", 0)) > FORMAT_VERSION:
            raise CheckpointError(f"checkpoint format version {header['version']} is newer than this vitdemo")
        return cls(
            model_config=model_config_from_dict(header["model_config"]),
            dataset=header["dataset"],
            mean=float(header["mean"]),
            std=float(header["std"]),
            classes=tuple(header["classes"]),
            metrics=dict(header.get("metrics") or {}),
            train_config=header.get("train_config"),
            name=header.get("name", ""),
        )


@dataclass
class LoadedModel:
    model: nn.Module  # eval mode
    meta: CheckpointMeta
    path: Path | None = None

    @property
    def kind(self) -> str:
        return self.meta.model_config.kind

    @property
    def num_params(self) -> int:
        return count_parameters(self.model)


def make_meta(
    model_config: ModelConfig,
    dataset: str,
    *,
    metrics: dict[str, Any] | None = None,
    train_config: dict[str, Any] | None = None,
    name: str = "",
) -> CheckpointMeta:
    mean, std = normalization(dataset)
    return CheckpointMeta(model_config, dataset, mean, std, class_names(dataset), metrics or {}, train_config, name)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, meta: CheckpointMeta) -> Path:
    """Write weights + header atomically; returns the final path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header = {HEADER_KEY: json.dumps(meta.to_header(), sort_keys=True)}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=header)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_meta(path: str | os.PathLike) -> CheckpointMeta:
    """Only the header: cheap, for listings."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(HEADER_KEY)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({exc})") from exc
    if raw is None:
        raise CheckpointError(f"{path} has no vitdemo header: it was not written by vitdemo")
    try:
        return CheckpointMeta.from_header(json.loads(raw))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{path} has a damaged vitdemo header ({exc})") from exc


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model from the header and load the weights (strictly: a mismatch is an error)."""
    path = Path(path)
    meta = read_meta(path)
    try:
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: the weights could not be read ({exc})") from exc
    model = build_model(meta.model_config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{path}: the weights do not match its model config ({first})") from exc
    return LoadedModel(model.to(device).eval(), meta, path)
