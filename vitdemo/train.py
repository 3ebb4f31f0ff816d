"""`train(config, callbacks) -> TrainResult`: the training loop, knowing nothing of UIs.

Progress goes out through callbacks after every step and epoch; a `should_stop` callable is checked
between steps so a UI or worker can cancel a run within one step.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vitdemo.config import TrainConfig
from vitdemo.data import DatasetSplits, Split, augment, batches, load_dataset, num_batches, to_input
from vitdemo.models import build_model, count_parameters


@dataclass(frozen=True)
class StepInfo:
    epoch: int  # 1-based
    step: int  # 1-based, global
    total_steps: int
    loss: float
    lr: float
    images_per_s: float  # averaged over the run so far
    eta_s: float
    elapsed_s: float


@dataclass(frozen=True)
class EpochInfo:
    epoch: int  # 1-based
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    images_per_s: float
    elapsed_s: float

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


class Callback:
    """Override what you need; every hook is a no-op by default."""

    def on_train_start(self, config: TrainConfig, total_steps: int, num_params: int, device: str) -> None:
        pass

    def on_step(self, info: StepInfo) -> None:
        pass

    def on_epoch(self, info: EpochInfo) -> None:
        pass


@dataclass
class TrainResult:
    config: TrainConfig
    model: nn.Module  # on CPU, in eval mode, holding the kept (best or last) weights
    history: list[EpochInfo]
    best_epoch: int
    val_acc: float  # of the kept weights
    train_time_s: float  # wall time of the training loop, excluding data loading and test evaluation
    device: str
    num_params: int
    cancelled: bool = False
    test_acc: float | None = None
    test_preds: np.ndarray | None = field(default=None, repr=False)


class Stopped(Exception):
    pass


def resolve_device(device: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without one is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but this machine has no CUDA GPU; use 'auto' or 'cpu'")
    return torch.device(device)


def lr_at(step: int, total_steps: int, warmup_steps: int, peak: float, schedule: str) -> float:
    """Learning rate at `step` (0-based).

    1. warm-up: linear from peak/25 (one-cycle) or ~0 (cosine) to the peak over `warmup_steps`;
    2. then cosine decay to 0 ("cosine"), or a linear anneal to peak/1e4 ("onecycle").
    """
    if warmup_steps > 0 and step < warmup_steps:
        start = peak / 25 if schedule == "onecycle" else 0.0
        return start + (peak - start) * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "onecycle":
        return peak + (peak / 1e4 - peak) * progress
    return 0.5 * peak * (1.0 + math.cos(math.pi * progress))


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def configure_cpu_threads() -> int:
    """Use every core we may run on, or $VITDEMO_THREADS.

    Set VITDEMO_THREADS=1 when other busy processes share the cores: on a loaded 2-core machine two
    intra-op threads wait for each other and a step can get 4x slower than with one (measured).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    threads = int(os.environ.get("VITDEMO_THREADS") or cores)
    torch.set_num_threads(max(1, threads))
    return threads


@torch.no_grad()
def predict_split(
    model: nn.Module, split: Split, mean: float, std: float, *, batch_size: int = 1000, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, C) on CPU, and the mean cross-entropy, for a whole split."""
    model.eval()
    outs = []
    for images, _ in batches(split, batch_size, shuffle=False):
        x = to_input(images.to(device), mean, std)
        with _autocast(device, enabled=device.type == "cuda"):
            outs.append(model(x).float().cpu())
    logits = torch.cat(outs) if outs else torch.zeros(0, 10)
    loss = F.cross_entropy(logits, split.labels.cpu()).item() if len(logits) else float("nan")
    return logits, torch.tensor(loss)


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def train(
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    *,
    data: DatasetSplits | None = None,
    data_dir: str | None = None,
    should_stop: Callable[[], bool] | None = None,
    evaluate_test: bool = True,
) -> TrainResult:
    """Train one model. Returns the kept weights on CPU; raises on bad config or data."""
    config.validate()
    device = resolve_device(config.device)
    if device.type == "cpu":
        configure_cpu_threads()
    seed_everything(config.seed)
    if data is None:
        data = load_dataset(
            config.dataset, data_dir, val_size=config.val_size, seed=config.seed, train_subset=config.train_subset
        )
    train_split, val_split = data.train.to(device), data.val.to(device)
    gen = torch.Generator().manual_seed(config.seed)

    model = build_model(config.model).to(device)
    num_params = count_parameters(model)
    use_amp = config.amp and device.type == "cuda"
    step_model = torch.compile(model) if config.compile else model  # ~1.3x on CPU too (measured), after ~30 s
    decay = [p for p in model.parameters() if p.ndim >= 2]  # no decay on biases, norms, tokens... (ndim < 2)
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.99),
    )
    steps_per_epoch = num_batches(len(train_split), config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    for cb in callbacks:
        cb.on_train_start(config, total_steps, num_params, str(device))

    history: list[EpochInfo] = []
    best_acc, best_epoch, best_state = -1.0, 0, None
    step, seen, cancelled = 0, 0, False
    start = time.perf_counter()
    try:
        for epoch in range(1, config.epochs + 1):
            model.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.int64)
            n_epoch = 0
            for images, labels in batches(train_split, config.batch_size, shuffle=True, generator=gen):
                if should_stop is not None and should_stop():
                    raise Stopped
                lr = lr_at(step, total_steps, warmup_steps, config.lr, config.schedule)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                x = to_input(images, data.mean, data.std)  # (B, 1, 28, 28)
                x = augment(x, config.augment, gen, hflip=config.dataset == "fashion")
                with _autocast(device, use_amp):
                    logits = step_model(x)
                    loss = F.cross_entropy(logits.float(), labels, label_smoothing=config.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()

                step += 1
                n = len(labels)
                seen += n
                n_epoch += n
                loss_sum += loss.detach() * n
                correct += (logits.argmax(1) == labels).sum()
                if callbacks:
                    elapsed = time.perf_counter() - start
                    ips = seen / max(elapsed, 1e-9)
                    eta = (total_steps - step) * elapsed / step
                    info = StepInfo(epoch, step, total_steps, loss.item(), lr, ips, eta, elapsed)
                    for cb in callbacks:
                        cb.on_step(info)

            val_logits, val_loss = predict_split(model, val_split, data.mean, data.std, device=device)
            val_acc = (val_logits.argmax(1) == val_split.labels.cpu()).float().mean().item() if len(val_split) else 0.0
            elapsed = time.perf_counter() - start
            info = EpochInfo(
                epoch=epoch,
                epochs=config.epochs,
                train_loss=(loss_sum / max(n_epoch, 1)).item(),
                train_acc=correct.item() / max(n_epoch, 1),
                val_loss=val_loss.item(),
                val_acc=val_acc,
                lr=lr,
                images_per_s=seen / max(elapsed, 1e-9),
                elapsed_s=elapsed,
            )
            history.append(info)
            if config.keep == "best" and val_acc > best_acc:
                best_acc, best_epoch = val_acc, epoch
                best_state = copy.deepcopy(model.state_dict())
            for cb in callbacks:
                cb.on_epoch(info)
    except Stopped:
        cancelled = True
    train_time = time.perf_counter() - start

    if config.keep == "best" and best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = len(history)
        best_acc = history[-1].val_acc if history else 0.0
    result = TrainResult(
        config=config,
        model=model,
        history=history,
        best_epoch=best_epoch,
        val_acc=max(best_acc, 0.0),
        train_time_s=train_time,
        device=str(device),
        num_params=num_params,
        cancelled=cancelled,
    )
    if evaluate_test and not cancelled:
        test_logits, _ = predict_split(model, data.test.to(device), data.mean, data.std, device=device)
        result.test_preds = test_logits.argmax(1).numpy()
        result.test_acc = float((result.test_preds == data.test.labels.numpy()).mean())
    result.model = model.cpu().eval()
    return result
