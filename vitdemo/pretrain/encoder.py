"""Pretrain an encoder without labels, and save it as an ordinary checkpoint a run can start from (`init`).

MAE pretrains a ViT, SimCLR a CNN. The saved file is a normal vitdemo checkpoint of that ViT or CNN whose head
was never trained: its metrics say so (`ENCODER_TAG`), so listings can tell it from a trained model.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vitdemo.checkpoints import CheckpointMeta, make_meta, save_checkpoint
from vitdemo.config import ConfigError, ModelConfig
from vitdemo.models import build_model
from vitdemo.pretrain.loop import PretrainConfig, PretrainStep, pretrain
from vitdemo.pretrain.mae import MAE
from vitdemo.pretrain.simclr import SimCLR
from vitdemo.runconfig import ENCODER_TAG, PRETRAIN_METHODS

METHODS = PRETRAIN_METHODS  # method -> the model kind it pretrains


@dataclass
class PretrainedEncoder:
    model: nn.Module  # the ViT or CNN, on the CPU in eval mode; its head is untrained
    method: str
    config: PretrainConfig
    losses: list[float]  # mean loss per epoch
    time_s: float
    images: int  # unlabelled images it saw per epoch

    def metrics(self) -> dict[str, Any]:
        return {
            ENCODER_TAG: self.method,
            "pretrain": asdict(self.config),
            "pretrain_losses": self.losses,
            "pretrain_time_s": self.time_s,
            "pretrain_images": self.images,
        }


def make_objective(method: str, encoder: nn.Module) -> nn.Module:
    """The self-supervised objective around `encoder`: an MAE (ViT) or a SimCLR (CNN)."""
    if method == "mae":
        return MAE(encoder)
    if method == "simclr":
        return SimCLR(encoder)
    raise ConfigError(f"method must be one of {', '.join(METHODS)}")


def pretrain_encoder(
    method: str,
    model_config: ModelConfig,
    images: torch.Tensor,
    config: PretrainConfig,
    *,
    mean: float,
    std: float,
    device: torch.device | str = "cpu",
    on_step: Callable[[PretrainStep], None] | None = None,
) -> PretrainedEncoder:
    """Build the encoder (seeded by `config.seed`) and pretrain it on (N, 28, 28) uint8 `images`."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}")
    if model_config.kind != METHODS[method]:
        raise ConfigError(f"{method} pretrains a {METHODS[method]} encoder, not a {model_config.kind}")
    config.validate()
    torch.manual_seed(config.seed)
    objective = make_objective(method, build_model(model_config)).to(device)
    start = time.perf_counter()
    losses = pretrain(objective, images.to(device), config, mean=mean, std=std, on_step=on_step)
    elapsed = time.perf_counter() - start
    return PretrainedEncoder(objective.encoder.cpu().eval(), method, config, losses, elapsed, len(images))


def save_encoder(path: str | os.PathLike, encoder: PretrainedEncoder, dataset: str, name: str = "") -> Path:
    """An ordinary checkpoint of the encoder, tagged in its metrics as a pretrained encoder."""
    kind = encoder.model.config.kind
    meta = make_meta(
        encoder.model.config, dataset, metrics=encoder.metrics(), name=name or f"{encoder.method} {kind} encoder"
    )
    return save_checkpoint(path, encoder.model, meta)


def is_pretrained_encoder(meta: CheckpointMeta) -> bool:
    """Whether a checkpoint holds a pretrained encoder (untrained head) rather than a trained classifier."""
    return bool(meta.metrics.get(ENCODER_TAG))
