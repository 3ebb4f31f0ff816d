"""Few labels: a seeded class-balanced label budget, and fine-tuning (or a linear probe) of a given model.

vitdemo.train.train builds its own model from a config, so it cannot start from pretrained weights; this small
loop takes the model instead. Pretrained and from-scratch models go through the same loop for a fair comparison,
and are scored with vitdemo.evaluate (the one scoring path).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vitdemo.config import ConfigError
from vitdemo.data import DatasetSplits, Split, augment, batches, to_input
from vitdemo.evaluate import predict_logits
from vitdemo.train import lr_at

LABEL_BUDGETS = (100, 600, 6000, 0)  # 0 = every label


def label_budget(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of `n` labelled examples, as equal per class as possible; seeded. n <= 0 or >= len: all of them.

    labels: (N,) int64. Returns (n,) int64 indices in a seeded random order. With n = 100 and 10 classes:
    10 of each; a remainder goes to randomly chosen classes, one extra each.
    """
    labels = labels.cpu()
    if n <= 0 or n >= len(labels):
        return torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed)
    classes = labels.unique()  # sorted
    quota = torch.full((len(classes),), n // len(classes), dtype=torch.int64)
    quota[torch.randperm(len(classes), generator=gen)[: n % len(classes)]] += 1
    picked = []
    for c, k in zip(classes.tolist(), quota.tolist(), strict=True):
        members = (labels == c).nonzero().squeeze(1)  # (N_c,)
        if k > len(members):
            raise ConfigError(f"class {c} has only {len(members)} examples, fewer than the {k} asked for")
        picked.append(members[torch.randperm(len(members), generator=gen)[:k]])
    chosen = torch.cat(picked)
    return chosen[torch.randperm(len(chosen), generator=gen)]


@dataclass(frozen=True)
class FinetuneConfig:
    steps: int = 500  # with 100 labels an "epoch" is one or two batches: count steps instead
    batch_size: int = 64
    lr: float = 1e-3  # AdamW peak, 10% warm-up then cosine
    weight_decay: float = 0.05
    augment: float = 1.0  # vitdemo.data.augment strength: few labels need it most
    label_smoothing: float = 0.1
    probe: bool = False  # True: a linear probe, only the head learns (the body stays in eval mode)
    seed: int = 0

    def validate(self) -> None:
        if not 1 <= self.steps <= 100_000:
            raise ConfigError("steps must be between 1 and 100000")
        if not (1 <= self.batch_size <= 8192 and 0 < self.lr <= 1):
            raise ConfigError("batch_size must be 1-8192 and lr in (0, 1]")


@dataclass(frozen=True)
class FinetuneResult:
    model: nn.Module  # on the device it trained on, eval mode
    test_acc: float
    losses: list[float]  # one per step
    train_time_s: float


def _head(model: nn.Module) -> nn.Module:
    head = getattr(model, "head", None)
    if not isinstance(head, nn.Module):
        raise ConfigError(f"{type(model).__name__} has no `head` module to probe")
    return head


def _set_mode(model: nn.Module, probe: bool) -> None:
    model.train()
    if probe:
        model.eval()
        _head(model).train()


def finetune(
    model: nn.Module, data: DatasetSplits, indices: torch.Tensor, config: FinetuneConfig, *, device: str = "cpu"
) -> FinetuneResult:
    """Train `model` on data.train[indices] for `config.steps` steps; score it on data.test."""
    config.validate()
    gen = torch.Generator().manual_seed(config.seed)
    model = model.to(device)
    model.requires_grad_(not config.probe)  # a fine-tune trains everything, even after a probe froze the body
    _head(model).requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    subset = Split(data.train.images[indices], data.train.labels[indices]).to(device)
    batch = min(config.batch_size, len(subset))
    warmup = config.steps // 10
    losses: list[float] = []
    start = time.perf_counter()
    while len(losses) < config.steps:
        for images, labels in batches(subset, batch, shuffle=True, generator=gen):
            if len(losses) == config.steps:
                break
            _set_mode(model, config.probe)
            for group in opt.param_groups:
                group["lr"] = lr_at(len(losses), config.steps, warmup, config.lr, "cosine")
            x = augment(to_input(images, data.mean, data.std), config.augment, gen, hflip=data.name == "fashion")
            loss = F.cross_entropy(model(x), labels, label_smoothing=config.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    train_time = time.perf_counter() - start
    logits = predict_logits(model, data.test, data.mean, data.std, num_classes=len(data.classes), device=device)
    test_acc = (logits.argmax(1) == data.test.labels).float().mean().item()
    return FinetuneResult(model.eval(), test_acc, losses, train_time)
