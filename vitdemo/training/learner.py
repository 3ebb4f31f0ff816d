"""What one training step works on (vitdemo.training.loop.train_step), apart from the loop: resume files
(vitdemo.training.resume) capture and restore it without importing the loop."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vitdemo.config import TrainConfig
from vitdemo.data import Split


@dataclass(frozen=True)
class Learner:
    """A model, its optimizer and the recipe: everything `train_step` needs."""

    model: nn.Module  # owns the parameters (clipping, state_dict)
    forward: nn.Module  # the model, or torch.compile(model)
    optimizer: torch.optim.Optimizer
    config: TrainConfig
    mean: float
    std: float
    device: torch.device
    generator: torch.Generator | None = None  # shuffling and augmentation; None uses torch's global RNG
    styles: Split | None = None  # synthetic handwriting styles mixed into every batch (`styles_ratio`), on device
    teacher: nn.Module | None = None  # a frozen CNN a distilled ViT learns from (vitdemo.training.distill), on device
    teacher_identity: dict | None = None  # what the checkpoint header says of it
