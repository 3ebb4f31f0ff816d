"""Score a model or a checkpoint on a split: the one path the CLI, the worker, `shipped`, `bench` and the UI use.

`predict_logits` runs a whole split through a model in batches (the trainer's validation uses it too);
`score_model` adds probabilities, the mean loss and the per-class report; `score_checkpoint` does the same for
a loaded checkpoint with its own normalisation and classes.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vitdemo.checkpoints import LoadedModel
from vitdemo.data import Split, batches, load_raw, to_input
from vitdemo.metrics import Scores, evaluate_predictions


def _autocast(device: torch.device, enabled: bool) -> torch.autocast:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    split: Split,
    mean: float,
    std: float,
    *,
    num_classes: int,
    device: torch.device | str = "cpu",
    batch_size: int = 1000,
    amp: bool = False,
    progress: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """Logits (N, C) as float32 on the CPU for a whole split, in eval mode (bf16 autocast on CUDA if `amp`).
    `progress` hears the share of the split done after each batch."""
    device = torch.device(device)
    model.eval()
    outs, done = [], 0
    for images, _ in batches(split, batch_size, shuffle=False):
        x = to_input(images.to(device), mean, std)  # (B, 1, 28, 28)
        with _autocast(device, amp):
            outs.append(model(x).float().cpu())  # (B, C)
        done += len(images)
        if progress is not None:
            progress(done / max(len(split), 1))
    return torch.cat(outs) if outs else torch.zeros(0, num_classes)


def mean_loss(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean cross-entropy of (N, C) logits against (N,) labels; NaN when N is 0."""
    return F.cross_entropy(logits, labels.cpu()).item() if len(logits) else float("nan")


def score_model(
    model: nn.Module,
    split: Split,
    mean: float,
    std: float,
    *,
    num_classes: int,
    device: torch.device | str = "cpu",
    batch_size: int = 1000,
    amp: bool = False,
    temperature: float = 1.0,
    progress: Callable[[float], None] | None = None,
) -> Scores:
    """Everything a page or a report needs about `model` on `split`; `temperature` calibrates the probabilities
    (vitdemo.calibration), the loss stays that of the raw logits."""
    logits = predict_logits(
        model,
        split,
        mean,
        std,
        num_classes=num_classes,
        device=device,
        batch_size=batch_size,
        amp=amp,
        progress=progress,
    )  # (N, C)
    labels = split.labels.cpu().numpy().astype(np.int64)
    probs = torch.softmax(logits / temperature, dim=-1).numpy().astype(np.float32)
    report = evaluate_predictions(labels, probs.argmax(1), num_classes)
    return Scores(labels, probs, mean_loss(logits, split.labels), report)


def score_checkpoint(
    loaded: LoadedModel,
    split: Split | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 1000,
    progress: Callable[[float], None] | None = None,
) -> Scores:
    """A loaded checkpoint on `split` (default: its dataset's test split), with its own statistics and classes."""
    meta = loaded.meta
    if split is None:
        split = load_raw(meta.dataset, train=False, data_dir=data_dir)
    model = loaded.model.to(device)
    if torch.device(device).type == "cpu" and loaded.kind == "cnn" and not model.training:
        from vitdemo.models.cnn import fast_inference_copy

        model = fast_inference_copy(model)  # the same function, 1.7x faster on a CPU
    return score_model(
        model,
        split,
        meta.mean,
        meta.std,
        num_classes=len(meta.classes),
        device=device,
        batch_size=batch_size,
        temperature=meta.temperature,
        progress=progress,
    )
