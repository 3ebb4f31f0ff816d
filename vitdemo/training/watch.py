"""Watch it learn: ten fixed test images, one of each class, and a model's answers on them while it trains.

`choose_digits` picks the same ten for every run of a dataset (a fixed seed over the test labels);
`predict_row` answers them with the model in eval mode and gives it back as it found it (every module's
train/eval mode, torch's random state), so watching never changes what a run learns. The training child calls
it every WATCH_EVERY_S seconds and after every epoch (vitdemo.runs.execute.WatchCallback); a finished run's last
row uses its calibration temperature. `WatchRow` is what the registry stores and the pages draw.

Importing this module does not import torch (the pages read `WatchRow`); `predict_row` does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

    from vitdemo.data import Split

WATCH_SEED = 10  # the ten watched images of a dataset: the same for every run, every server
WATCH_EVERY_S = 3.0  # how often a training answers them (seconds of training time), and after every epoch


@dataclass(frozen=True)
class WatchRow:
    """A model's answers on the watched test images at one moment of its training."""

    indices: tuple[int, ...]  # in the dataset's test split
    labels: tuple[int, ...]  # their true classes
    preds: tuple[int, ...]  # the predicted classes
    probs: tuple[float, ...]  # the probability of each predicted class
    step: int = 0  # the training step it was taken after (0: before the first)
    epoch: float = 0.0  # epochs of training done then: 1.5 is half-way through the second
    calibrated: bool = False  # probabilities with the run's fitted temperature (only once it has finished)

    @property
    def right(self) -> int:
        return sum(p == t for p, t in zip(self.preds, self.labels, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> WatchRow | None:
        """The stored row, or None when it is missing or not one (an older or damaged value is not shown)."""
        try:
            row = cls(
                indices=tuple(int(i) for i in data["indices"]),
                labels=tuple(int(i) for i in data["labels"]),
                preds=tuple(int(i) for i in data["preds"]),
                probs=tuple(float(p) for p in data["probs"]),
                step=int(data.get("step", 0)),
                epoch=float(data.get("epoch", 0.0)),
                calibrated=bool(data.get("calibrated", False)),
            )
        except (KeyError, TypeError, ValueError):
            return None
        lengths = {len(row.indices), len(row.labels), len(row.preds), len(row.probs)}
        return row if len(lengths) == 1 else None


def choose_digits(labels: np.ndarray | Any, num_classes: int = 10, seed: int = WATCH_SEED) -> list[int]:
    """One index per class (class 0 first) into a split with these (N,) labels, drawn with a fixed seed: the same
    ten for every run of a dataset. A class the split lacks is skipped."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(num_classes):
        where = np.flatnonzero(labels == c)
        if len(where):
            chosen.append(int(where[rng.integers(len(where))]))
    return chosen


def predict_row(
    model: nn.Module,
    images: torch.Tensor,
    mean: float,
    std: float,
    *,
    temperature: float = 1.0,
) -> list[tuple[int, float]]:
    """(predicted class, its probability) for each of the (N, 28, 28) uint8 images, by `model` on its own
    device, in eval mode without gradients (vitdemo.evaluate.predict_logits). The model's train/eval mode (per
    module: a probe's frozen body stays in eval) and torch's random state are as before when it returns."""
    import torch

    from vitdemo.data import Split
    from vitdemo.evaluate import predict_logits

    device = next(model.parameters()).device
    modes = [(m, m.training) for m in model.modules()]
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            split = Split(images, torch.zeros(len(images), dtype=torch.int64))
            logits = predict_logits(model, split, mean, std, num_classes=0, device=device)  # (N, C) on the CPU
    finally:
        for module, training in modes:
            module.training = training
    probs = torch.softmax(logits / temperature, dim=-1)  # (N, C)
    top, preds = probs.max(dim=1)  # (N,), (N,)
    return [(int(c), float(p)) for c, p in zip(preds, top, strict=True)]


class Watcher:
    """A run's watched images (on the CPU; moved to the model's device when answered) and when to look again."""

    def __init__(self, split: Split, mean: float, std: float, *, num_classes: int = 10, every_s: float = WATCH_EVERY_S):
        self.indices = choose_digits(split.labels.cpu().numpy(), num_classes)
        self.images = split.images[self.indices].cpu()  # (10, 28, 28) uint8
        self.labels = [int(split.labels[i]) for i in self.indices]
        self.mean, self.std, self.every_s = mean, std, every_s
        self._last = -float("inf")

    def due(self, elapsed_s: float) -> bool:
        """True once every `every_s` seconds of training time (the first call is due)."""
        return elapsed_s - self._last >= self.every_s

    def look(
        self, model: nn.Module, *, step: int, epoch: float, elapsed_s: float, temperature: float | None = None
    ) -> WatchRow:
        """The model's answers now (calibrated with `temperature` when given); the next look is due `every_s`
        after `elapsed_s`."""
        self._last = elapsed_s
        device = next(model.parameters()).device
        answers = predict_row(model, self.images.to(device), self.mean, self.std, temperature=temperature or 1.0)
        return WatchRow(
            indices=tuple(self.indices),
            labels=tuple(self.labels),
            preds=tuple(c for c, _ in answers),
            probs=tuple(round(p, 4) for _, p in answers),
            step=step,
            epoch=round(epoch, 3),
            calibrated=temperature is not None,
        )
