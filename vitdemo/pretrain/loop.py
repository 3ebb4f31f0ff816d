"""The self-supervised pretraining loop shared by MAE and SimCLR: no labels, device-resident uint8 images.

Batches are index slices of a seeded permutation (as in vitdemo/data.py); the last, incomplete batch is dropped
so that batch statistics (SimCLR's negatives, batch norm) always see a full batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from vitdemo.config import ConfigError
from vitdemo.data import to_input
from vitdemo.runconfig import PretrainConfig  # a plain config: the queue and the forms read it without torch
from vitdemo.training.loop import lr_at


@dataclass(frozen=True)
class PretrainStep:
    epoch: int  # 1-based
    step: int  # 1-based, global
    total_steps: int
    loss: float
    elapsed_s: float


def pretrain(
    objective: nn.Module,
    images: torch.Tensor,
    config: PretrainConfig,
    *,
    mean: float,
    std: float,
    on_step: Callable[[PretrainStep], None] | None = None,
) -> list[float]:
    """Minimise `objective.loss(x, generator)` over `images`; returns the mean loss of each epoch.

    objective: an MAE or a SimCLR (any module with that `loss`), already on the images' device.
    images: (N, 28, 28) uint8 on the training device; each batch is normalised with `mean` and `std`.
    """
    config.validate()
    n = len(images)
    steps_per_epoch = n // config.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(f"{n} images are fewer than one batch of {config.batch_size}")
    total = steps_per_epoch * config.epochs
    warmup = int(config.warmup_epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(config.seed)
    decay = [p for p in objective.parameters() if p.ndim >= 2]  # no decay on biases, norms, tokens
    no_decay = [p for p in objective.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.95),
    )
    objective.train()
    losses: list[float] = []
    step, start = 0, time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(n, generator=gen).to(images.device)
        total_loss = torch.zeros((), device=images.device)
        for i in range(steps_per_epoch):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, config.lr, "cosine")
            x = to_input(images[order[i * config.batch_size : (i + 1) * config.batch_size]], mean, std)  # (B,1,28,28)
            loss = objective.loss(x, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            total_loss += loss.detach()
            if on_step is not None:
                on_step(PretrainStep(epoch, step, total, loss.item(), time.perf_counter() - start))
        losses.append((total_loss / steps_per_epoch).item())
    return losses
