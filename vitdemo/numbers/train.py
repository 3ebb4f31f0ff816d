"""`train_reader(config, callbacks) -> TrainResult`: the readers' training loop, beside the digit models' one
(vitdemo.training.loop), with its callbacks, schedule, kept best epoch and result, so a reader's run goes through
the same worker, events and registry as any other.

What differs: a batch is written afresh each step (vitdemo.numbers.synth, from the training digits only: no two
epochs see the same numbers), the loss is the reader's own (teacher-forced cross-entropy; Faster R-CNN's four
losses), and validation reads the fixed validation numbers (whole-number accuracy). An epoch writes a quarter as
many numbers as there are training digits (55,000 digits: 13,750 numbers, about 62,000 digits written).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from vitdemo.config import TrainConfig
from vitdemo.models import build_model, count_parameters
from vitdemo.numbers.read import read_batch, to_input
from vitdemo.numbers.splits import NumberData, load_numbers
from vitdemo.numbers.synth import Numbers, NumberStyle, balanced_lengths, render_numbers
from vitdemo.synth.styles import style_split
from vitdemo.training.loop import (
    Callback,
    EpochInfo,
    KeepBest,
    Progress,
    Stopped,
    TrainResult,
    lr_at,
    prepare_model,
    resolve_device,
    seed_everything,
)

NUMBERS_PER_DIGIT = 0.25  # an epoch's numbers per training digit
VAL_BATCH = 250


def style_of(config: TrainConfig) -> NumberStyle:
    """How a run's training numbers are written: the run's pen width, wobble and synthetic-styles share."""
    return NumberStyle(styles_ratio=config.styles_ratio, stroke_aug=config.stroke_aug, elastic=config.elastic)


def reader_loss(
    model: nn.Module, x: torch.Tensor, batch: Numbers, smoothing: float = 0.0, aux: nn.Module | None = None
) -> torch.Tensor:
    """The reader's training loss on images x (B, 1, H, W) and their labels (with the captioner's training-only
    CTC head `aux`, from aux_head, when it has one). -> () tensor."""
    if model.config.kind == "detector":
        from vitdemo.models.detector import detection_loss

        return detection_loss(model, x, batch.digits, batch.lengths, batch.boxes)
    from vitdemo.models.captioner import caption_loss

    return caption_loss(model, x, batch.digits, batch.lengths, smoothing, aux)


def aux_head(model: nn.Module) -> nn.Module | None:
    """A training-only head the reader's loss uses (the captioner's CTC head), or None; it is not saved."""
    if model.config.kind != "captioner":
        return None
    from vitdemo.models.captioner import ctc_head

    return ctc_head(model.config)


def optimizer_for(model: nn.Module, config: TrainConfig, aux: nn.Module | None = None) -> torch.optim.Optimizer:
    """AdamW with the house's groups: no weight decay on biases, norms and embeddings' 1-d tensors."""
    params = [p for p in model.parameters() if p.requires_grad]
    params += [] if aux is None else list(aux.parameters())
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99))


def whole_number_accuracy(model: nn.Module, numbers: Numbers, device: torch.device) -> float:
    """The share of `numbers` read exactly (model left in eval mode)."""
    if len(numbers) == 0:
        return 0.0
    model.eval()
    readings = read_batch(model, to_input(numbers.images).to(device), batch_size=VAL_BATCH)
    return sum(r.text == t for r, t in zip(readings, numbers.texts(), strict=True)) / len(numbers)


@torch.no_grad()
def validation_loss(model: nn.Module, numbers: Numbers, device: torch.device) -> float:
    """The mean training loss on `numbers`, without learning: Faster R-CNN gives losses only in training mode, so
    its batch norms are put in eval mode meanwhile (their statistics stay as they are)."""
    if len(numbers) == 0:
        return 0.0
    model.train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    total = 0.0
    for i in range(0, len(numbers), VAL_BATCH):
        part = numbers.subset(slice(i, i + VAL_BATCH)).to(device)
        total += float(reader_loss(model, to_input(part.images), part)) * len(part)
    model.eval()
    return total / len(numbers)


def _train_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, data: NumberData, config: TrainConfig, epoch: int,
    steps: int, lr_of: Callable[[int], float], progress: Progress, g: torch.Generator, styles,
    should_stop: Callable[[], bool] | None, device: torch.device, aux: nn.Module | None = None,
) -> tuple[float, float, float]:  # fmt: skip
    """One epoch of freshly written numbers -> (mean loss, whole-number accuracy on its last batch, last lr)."""
    style, total, lr, batch = style_of(config), 0.0, lr_of((epoch - 1) * steps), None
    for i in range(steps):
        if should_stop is not None and should_stop():
            raise Stopped
        lr = lr_of((epoch - 1) * steps + i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        lengths = balanced_lengths(config.batch_size, style, g)
        batch = render_numbers(data.train, lengths, g, style, styles).to(device)
        loss = reader_loss(model, to_input(batch.images), batch, config.label_smoothing, aux)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], config.grad_clip)
        optimizer.step()
        total += float(loss.detach())
        progress.on_step(epoch, loss.detach(), lr, config.batch_size, model)
    acc = whole_number_accuracy(model, batch, device) if batch is not None else 0.0
    return total / max(steps, 1), acc, lr


def train_reader(
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    *,
    data: NumberData | None = None,
    data_dir: str | os.PathLike | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train one reader; returns the kept weights (best validation whole-number accuracy) on the CPU."""
    config.validate()
    device = resolve_device(config.device)
    seed_everything(config.seed)
    if data is None:
        data = load_numbers(data_dir, val_size=config.val_size, split_seed=config.split_seed,
                            train_subset=config.train_subset)  # fmt: skip
    g = torch.Generator().manual_seed(config.seed)
    model = prepare_model(config, build_model(config.model)).to(device)  # `init`: a reader's checkpoint to go on from
    aux = aux_head(model)  # trained beside the model, then dropped
    aux = None if aux is None else aux.to(device)
    optimizer = optimizer_for(model, config, aux)
    styles = style_split(config.styles_ratio, config.seed)
    steps = max(1, math.ceil(len(data.train) * NUMBERS_PER_DIGIT / config.batch_size))
    total_steps, warmup = steps * config.epochs, int(config.warmup_epochs * steps)
    for cb in callbacks:
        cb.on_train_start(config, total_steps, count_parameters(model), str(device))

    def lr_of(step: int) -> float:
        return lr_at(step, total_steps, warmup, config.lr, config.schedule)

    progress, keeper = Progress(callbacks, total_steps), KeepBest()
    history: list[EpochInfo] = []
    cancelled, start = False, time.perf_counter()
    try:
        for epoch in range(1, config.epochs + 1):
            train_loss, train_acc, lr = _train_epoch(model, optimizer, data, config, epoch, steps, lr_of,
                                                     progress, g, styles, should_stop, device, aux)  # fmt: skip
            val_acc = whole_number_accuracy(model, data.val, device)
            info = EpochInfo(epoch, config.epochs, train_loss, train_acc, validation_loss(model, data.val, device),
                             val_acc, lr, progress.images_per_s(), progress.elapsed())  # fmt: skip
            history.append(info)
            if len(data.val):
                keeper.offer(epoch, val_acc, model)
            progress.on_epoch(info, model)
    except Stopped:
        cancelled = True
    train_time = time.perf_counter() - start
    if config.keep == "best" and keeper.restore(model):
        kept, best_epoch, val_acc = "best", keeper.epoch, keeper.acc
    else:
        kept, best_epoch, val_acc = "last", len(history), history[-1].val_acc if history else 0.0
    return TrainResult(config, model.cpu().eval(), history, best_epoch, val_acc, train_time, str(device),
                       count_parameters(model), cancelled, kept)  # fmt: skip
