"""The torch half of a race: its data (`RaceData`: a pool of training images, the small validation subset, the
label-noise order), the training set the knobs make of it (`training_set`), and one side (`Side`: a learner from
`make_learner`, stepped by the house's one `train_step`, evaluated and watched). Only the race's thread calls
into a Side; the engine (vitdemo.race.engine) imports this module when a race first starts.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from functools import lru_cache

import torch

from vitdemo.data import DatasetSplits, Split, load_dataset
from vitdemo.evaluate import predict_logits
from vitdemo.models import count_parameters
from vitdemo.race.knobs import RACE_VAL_SIZE, Knobs, RaceConfig, train_config
from vitdemo.training import loop
from vitdemo.training.watch import Watcher, WatchRow

EVAL_BATCH = 250  # the CNN's forward pass slows down past a few hundred images a batch on one core (measured)


@dataclass(frozen=True)
class RaceData:
    """What both sides of a race read: the same images, the same labels, the same validation subset."""

    dataset: str
    mean: float
    std: float
    classes: tuple[str, ...]
    pool: Split  # (P, 28, 28) uint8: the first P images of the run's training split (TrainConfig.train_subset)
    noise_order: torch.Tensor  # (P,) int64: the order in which labels turn wrong as label noise rises
    wrong: torch.Tensor  # (P,) int64: a wrong class for each pool image (never its own)
    val: Split  # (V, 28, 28): the first V images of the run's standard validation split: what the curve reads
    val_all: Split  # (5000, 28, 28): that whole split, which a saved race's run is scored and calibrated on
    test: Split  # the 10,000 test images, for the watched digits


@lru_cache(maxsize=4)
def race_data(dataset: str, data_dir: str | None, seed: int, pool: int, val_images: int) -> RaceData:
    """Read once per process and shared by every race of the same dataset (30 students' races hold one copy)."""
    data = load_dataset(dataset, data_dir, val_size=RACE_VAL_SIZE, seed=seed, train_subset=pool)
    g = torch.Generator().manual_seed(seed + 1)
    n, classes = len(data.train), len(data.classes)
    order = torch.randperm(n, generator=g)  # (P,)
    wrong = (data.train.labels + torch.randint(1, classes, (n,), generator=g)) % classes  # (P,) never the label
    val = Split(data.val.images[:val_images], data.val.labels[:val_images])
    return RaceData(dataset, data.mean, data.std, data.classes, data.train, order, wrong, val, data.val, data.test)


def load_race_data(config: RaceConfig, data_dir: str | os.PathLike | None) -> RaceData:
    return race_data(config.dataset, None if data_dir is None else str(data_dir), config.seed, config.pool,
                     config.val_images)  # fmt: skip


def noisy_labels(data: RaceData, size: int, noise: float) -> torch.Tensor:
    """The labels of the first `size` pool images with round(noise * size) of them wrong: always the same ones
    for a level, and more noise only adds wrong labels (0.3 keeps 0.2's and turns more)."""
    labels = data.pool.labels[:size].clone()  # (size,)
    turned = data.noise_order[data.noise_order < size][: round(noise * size)]  # (k,)
    labels[turned] = data.wrong[turned]
    return labels


def training_set(data: RaceData, knobs: Knobs) -> Split:
    """The images both sides train on now: the first `train_size` of the pool with `label_noise` applied, plus
    the class set's drawings (each repeated as the snapshot says) when `extra_data` names a snapshot."""
    size = min(knobs.train_size, len(data.pool))
    split = Split(data.pool.images[:size], noisy_labels(data, size, knobs.label_noise))
    if knobs.extra_data:
        from vitdemo.training.snapshot import with_class_set

        fake = DatasetSplits(data.dataset, split, data.val_all, data.test, data.mean, data.std, data.classes)
        split = with_class_set(fake, knobs.extra_data).train
    return split


class Side:
    """One model of the race: its learner, its place in the training set and what it did since the last point.

    Both sides shuffle with the same seed, so they meet the training images in the same order (the ViT, faster
    per step or not, sees the same batches). Augmentation draws from a generator of its own.
    """

    def __init__(self, kind: str, config: RaceConfig, knobs: Knobs, data: RaceData) -> None:
        self.kind = kind
        self.device = loop.resolve_device(config.device)
        self.config = train_config(config, knobs, kind)
        torch.manual_seed(config.seed)  # make_learner builds from torch's global RNG: the same weights every reset
        generator = torch.Generator().manual_seed(config.seed + 2)
        self.learner = loop.make_learner(self.config, self.device, data.mean, data.std, generator)
        self.learner.model.train()
        self.params = count_parameters(self.learner.model)
        self._shuffle = torch.Generator().manual_seed(config.seed + 3)
        self._order = torch.zeros(0, dtype=torch.int64)
        self._pos = 0
        self.steps = self.images = self.epochs = 0  # steps taken, images trained on, full passes done
        self.compute_s = 0.0  # seconds spent in train_step: the fair share of the core is counted in these
        self.epoch_ended = False  # a pass over the training set ended since the last point
        self._loss = torch.zeros((), device=self.device)
        self._correct = torch.zeros((), device=self.device, dtype=torch.int64)
        self._since = 0  # images since the last point
        self.watcher = Watcher(data.test, data.mean, data.std, num_classes=len(data.classes), every_s=1.0)

    # -- knobs -----------------------------------------------------------------------------------------------
    def retune(self, knobs: Knobs) -> None:
        """The training knobs for the next step: `train_step` reads the learner's config; weight decay is the
        optimizer's (its first group holds the decayed weights, vitdemo.training.loop.make_learner)."""
        self.config = dataclasses.replace(
            self.config, batch_size=knobs.batch_size, lr=float(knobs.lr), weight_decay=knobs.weight_decay,
            augment=knobs.augment, train_subset=knobs.train_size, extra_data=knobs.extra_data,
        )  # fmt: skip
        self.learner = dataclasses.replace(self.learner, config=self.config)
        self.learner.optimizer.param_groups[0]["weight_decay"] = knobs.weight_decay

    def new_epoch(self, n: int) -> None:
        """Start a new pass over a training set of `n` images (after it changed, or at the end of one)."""
        self._order = torch.randperm(n, generator=self._shuffle)  # (n,)
        self._pos = 0

    # -- training --------------------------------------------------------------------------------------------
    def step(self, train: Split) -> None:
        """One `train_step` on the next batch of `train` at the knobs' learning rate."""
        if self._pos >= len(self._order):
            if len(self._order):
                self.epochs += 1
                self.epoch_ended = True
            self.new_epoch(len(train))
        idx = self._order[self._pos : self._pos + self.config.batch_size]  # (B,)
        self._pos += len(idx)
        images, labels = train.images[idx].to(self.device), train.labels[idx].to(self.device)  # (B, 28, 28), (B,)
        start = time.perf_counter()
        loss, logits = loop.train_step(self.learner, images, labels, self.config.lr)  # the house's one step
        self._loss += loss * len(idx)
        self._correct += (logits.argmax(1) == labels).sum()
        self.compute_s += time.perf_counter() - start
        self.steps += 1
        self.images += len(idx)
        self._since += len(idx)

    def epoch_progress(self) -> float:
        """Passes over the training set so far: 2.5 is half-way through the third."""
        return self.epochs + (self._pos / len(self._order) if len(self._order) else 0.0)

    def take_loss(self) -> tuple[float, float]:
        """(mean training loss, training accuracy) of the images since the last call; NaN before any."""
        if not self._since:
            return float("nan"), float("nan")
        out = (self._loss.item() / self._since, self._correct.item() / self._since)
        self._loss.zero_()
        self._correct.zero_()
        self._since = 0
        return out

    @torch.no_grad()
    def evaluate(self, val: Split, mean: float, std: float) -> tuple[float, float]:
        """(loss, accuracy) on the race's validation subset, then back in training mode."""
        model = self.learner.model
        logits = predict_logits(model, val, mean, std, num_classes=0, device=self.device, batch_size=EVAL_BATCH)
        model.train()
        labels = val.labels.cpu()  # (V,)
        loss = torch.nn.functional.cross_entropy(logits, labels).item()
        return loss, (logits.argmax(1) == labels).float().mean().item()

    @property
    def pending(self) -> int:
        """Images trained on since the last `take_loss`."""
        return self._since

    def look(self, elapsed_s: float, *, force: bool = False) -> WatchRow | None:
        """The answers on the ten watched test images, when a look is due (about once a race second) or forced."""
        if not force and not self.watcher.due(elapsed_s):
            return None
        return self.watcher.look(self.learner.model, step=self.steps, epoch=self.epoch_progress(), elapsed_s=elapsed_s)
