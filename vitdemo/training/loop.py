"""`train(config, callbacks) -> TrainResult`: the training loop, knowing nothing of UIs.

Progress goes out through callbacks after every step and epoch; a `should_stop` callable is checked
between steps so a UI or worker can cancel a run within one step. `train_step` is the one training
step (the benchmark times the same function); validation goes through `vitdemo.evaluate.predict_logits`.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitdemo.config import TrainConfig
from vitdemo.data import DatasetSplits, Split, batches, load_dataset, num_batches, to_input
from vitdemo.evaluate import mean_loss, predict_logits
from vitdemo.models import build_model, count_parameters, head_of
from vitdemo.synth.styles import style_split
from vitdemo.training.augment import augment, mix_in, random_stroke_width
from vitdemo.training.cpu_speed import autocast_on, channels_last_on
from vitdemo.training.distill import distillation_loss, load_teacher, teacher_of
from vitdemo.training.learner import Learner
from vitdemo.training.resume import ResumeState, apply_state, capture_state, check_fits, load_state, save_state
from vitdemo.training.warmstart import init_from_checkpoint


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

    def on_step_weights(self, info: StepInfo, model: nn.Module) -> None:
        """The model right after step `info.step` (on the training device, in training mode): read it only. A
        forward pass must leave it as found: its modes, its gradients and torch's random state
        (vitdemo.training.watch.predict_row does)."""

    def on_epoch(self, info: EpochInfo) -> None:
        pass

    def on_epoch_weights(self, info: EpochInfo, model: nn.Module) -> None:
        """The model right after epoch `info.epoch` (on the training device): read or copy it, never change it."""


@dataclass
class TrainResult:
    config: TrainConfig
    model: nn.Module  # on CPU, in eval mode, holding the kept weights (see `kept`)
    history: list[EpochInfo]
    best_epoch: int  # the epoch whose weights `model` holds
    val_acc: float  # of the kept weights (0.0 without validation images)
    train_time_s: float  # wall time of the training loop, excluding data loading
    device: str
    num_params: int
    cancelled: bool = False
    # Whose weights `model` holds: "best" (highest validation accuracy) or "last". "last" also when
    # keep="best" had nothing to choose by: no validation images (val_size 0) or no finished epoch.
    kept: Literal["best", "last"] = "last"
    teacher: dict | None = None  # a distilled ViT's teacher, as its checkpoint header names it


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

    1. warm-up: linear from peak/25 (one-cycle) or ~0 (cosine, constant) to the peak over `warmup_steps`;
    2. then cosine decay to 0 ("cosine"), a linear anneal to peak/1e4 ("onecycle"), or the peak ("constant").
    """
    if warmup_steps > 0 and step < warmup_steps:
        start = peak / 25 if schedule == "onecycle" else 0.0
        return start + (peak - start) * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    progress = min(max(progress, 0.0), 1.0)
    if schedule == "onecycle":
        return peak + (peak / 1e4 - peak) * progress
    return 0.5 * peak * (1.0 + math.cos(math.pi * progress))


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def load_data(config: TrainConfig, data_dir: str | os.PathLike | None = None) -> DatasetSplits:
    """The run's data: `config.split_seed` picks the validation images (never `config.seed`), so runs that
    differ only in their seed choose their best epoch on the same images. `config.extra_data` adds the class
    set's frozen drawings to the training images only (vitdemo.classset.data)."""
    data = load_dataset(
        config.dataset,
        data_dir,
        val_size=config.val_size,
        seed=config.split_seed,
        train_subset=config.train_subset,
    )
    if config.extra_data:
        from vitdemo.training.snapshot import with_class_set

        data = with_class_set(data, config.extra_data)
    return data


# ---------------------------------------------------------------------------------------------------
# Where a run starts: its labelled images and its first weights
# ---------------------------------------------------------------------------------------------------


def labelled_split(split: Split, config: TrainConfig) -> Split:
    """The training images a run may use: all of them (`labels` 0), else a class-balanced subset of `labels`
    images picked by `split_seed` (vitdemo.pretrain.label_budget), so that seeds compare on the same labels."""
    if not config.labels:
        return split
    from vitdemo.training.budget import label_budget  # vitdemo.pretrain imports this module

    idx = label_budget(split.labels, config.labels, config.split_seed)  # (n,)
    return Split(split.images[idx], split.labels[idx])


def prepare_model(config: TrainConfig, model: nn.Module, *, load: bool = True) -> nn.Module:
    """The weights a run starts from, on the CPU before the model moves to its device:
    1. `init`: the matching weights of a checkpoint (a pretrained encoder: the head stays new; a classifier
       of the same dataset: its head too, so a fine-tune starts from what it knew);
    2. else a pretrained transfer model's ImageNet backbone (`weights_path`, torch hub's cache or a download);
    3. `probe`: every parameter outside the head is frozen (and its layers stay in eval mode, `set_train_mode`).
    build_model never does 1 or 2, so loading a checkpoint needs neither file; nor does a resumed run
    (`load=False`: its weights come from its resume file)."""
    m = config.model
    if load and config.init:
        init_from_checkpoint(model, config.init, dataset=config.dataset)
    elif load and m.kind == "transfer" and m.pretrained:
        from vitdemo.models.transfer import load_pretrained

        load_pretrained(model, config.weights_path or None)
    if config.probe:
        model.requires_grad_(False)
        head_of(model).requires_grad_(True)
    return model


def set_train_mode(model: nn.Module, probe: bool) -> None:
    """Training mode; a probe keeps its frozen body in eval mode (dropout off, batch-norm statistics kept)."""
    model.train()
    if probe:
        model.eval()
        head_of(model).train()


# ---------------------------------------------------------------------------------------------------
# One training step (shared with the benchmark)
# ---------------------------------------------------------------------------------------------------


def make_learner(
    config: TrainConfig,
    device: torch.device,
    mean: float,
    std: float,
    generator: torch.Generator | None = None,
    *,
    load: bool = True,
) -> Learner:
    """Build the model (from torch's global RNG: seed it first), start its weights (`prepare_model`; `load=False`
    for a resumed run, whose weights come from its file), move it to `device`, give its trainable parameters an
    AdamW and render its synthetic styles."""
    model = prepare_model(config, build_model(config.model), load=load).to(device)
    if channels_last_on(device, config.model.kind):
        model = model.to(memory_format=torch.channels_last)  # 1.57x a CNN step on CPU (training.cpu_speed)
    trainable = [p for p in model.parameters() if p.requires_grad]  # a probe or a frozen backbone: the head only
    decay = [p for p in trainable if p.ndim >= 2]  # no decay on biases, norms, tokens... (ndim < 2)
    no_decay = [p for p in trainable if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.99),
    )
    forward = torch.compile(model) if config.compile else model  # ~1.3x on CPU too (measured), after ~30 s
    styles = style_split(config.styles_ratio, config.seed, device)
    teacher, identity = load_teacher(config, device) if teacher_of(config) else (None, None)
    return Learner(model, forward, optimizer, config, mean, std, device, generator, styles, teacher, identity)


def _autocast(device: torch.device, enabled: bool, kind: str) -> torch.autocast:
    """bf16 autocast on CUDA when `enabled`; on a CPU only for a family it measured faster on its bf16 units."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast_on(device, kind, enabled))


def train_step(learner: Learner, images: torch.Tensor, labels: torch.Tensor, lr: float) -> tuple[Tensor, Tensor]:
    """One optimizer step on a batch of (B, 28, 28) uint8 images and (B,) labels, at learning rate `lr`.

    Add synthetic styles, normalise, change the pen width, augment (affine + elastic), forward (bf16 autocast when
    `config.amp`: on CUDA, or on a CPU for a family it makes faster, vitdemo.training.cpu_speed), label-smoothed cross-entropy (with a teacher: DeiT's hard distillation), backward, clip,
    AdamW. Returns the detached loss () and
    the logits (B, C) of the batch's own images, still on the device.
    """
    c = learner.config
    for group in learner.optimizer.param_groups:
        group["lr"] = lr
    n = len(labels)
    if learner.styles is not None:
        images, labels = mix_in(images, labels, learner.styles, c.styles_ratio, learner.generator)  # (B + k, ...)
    x = to_input(images, learner.mean, learner.std)  # (B + k, 1, 28, 28)
    x = random_stroke_width(x, c.stroke_aug, -learner.mean / learner.std, learner.generator)
    x = augment(x, c.augment, learner.generator, hflip=c.hflip or c.dataset == "fashion", elastic=c.elastic)
    if channels_last_on(learner.device, c.model.kind):
        x = x.contiguous(memory_format=torch.channels_last)
    with _autocast(learner.device, c.amp, c.model.kind):
        if learner.teacher is None:
            logits = learner.forward(x)  # (B + k, C)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=c.label_smoothing)
        else:  # DeiT: the teacher reads the same augmented batch; both heads learn, their mean is the answer
            with torch.no_grad():
                taught = learner.teacher(x)  # (B + k, C)
            head, dist = learner.forward(x, both_heads=True)  # (B + k, C) each
            loss, logits = distillation_loss(head, dist, labels, taught, c.label_smoothing), (head + dist) / 2
    learner.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if c.grad_clip > 0:
        nn.utils.clip_grad_norm_(learner.model.parameters(), c.grad_clip)
    learner.optimizer.step()
    return loss.detach(), logits[:n].detach()


# ---------------------------------------------------------------------------------------------------
# Progress, validation and the kept weights
# ---------------------------------------------------------------------------------------------------


class Progress:
    """Counts steps and images since the start and tells the callbacks."""

    def __init__(self, callbacks: Sequence[Callback], total_steps: int) -> None:
        self.callbacks, self.total_steps = list(callbacks), total_steps
        self.step, self.seen = 0, 0
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def images_per_s(self) -> float:
        return self.seen / max(self.elapsed(), 1e-9)

    def on_step(self, epoch: int, loss: Tensor, lr: float, n: int, model: nn.Module | None = None) -> None:
        self.step += 1
        self.seen += n
        if not self.callbacks:
            return  # loss.item() waits for the device: only when someone listens
        elapsed = self.elapsed()
        eta = (self.total_steps - self.step) * elapsed / self.step
        info = StepInfo(epoch, self.step, self.total_steps, loss.item(), lr, self.images_per_s(), eta, elapsed)
        for cb in self.callbacks:
            cb.on_step(info)
        if model is not None:
            for cb in self.callbacks:
                cb.on_step_weights(info, model)

    def on_epoch(self, info: EpochInfo, model: nn.Module) -> None:
        for cb in self.callbacks:
            cb.on_epoch(info)
        for cb in self.callbacks:
            cb.on_epoch_weights(info, model)


def validate(
    model: nn.Module, split: Split, mean: float, std: float, config: TrainConfig, device: torch.device
) -> tuple[float, float]:
    """(mean loss, accuracy) of `model` on the validation split; (NaN, 0.0) when the split is empty."""
    logits = predict_logits(
        model, split, mean, std, num_classes=config.model.num_classes, device=device, amp=config.amp
    )  # (N, C) on the CPU
    labels = split.labels.cpu()
    acc = (logits.argmax(1) == labels).float().mean().item() if len(labels) else 0.0
    return mean_loss(logits, labels), acc


class KeepBest:
    """A copy of the weights of the epoch with the highest validation accuracy so far (the first on ties)."""

    def __init__(self) -> None:
        self.epoch, self.acc = 0, -math.inf
        self.state: dict[str, Tensor] | None = None

    def offer(self, epoch: int, acc: float, model: nn.Module) -> None:
        if acc > self.acc:
            self.epoch, self.acc = epoch, acc
            self.state = copy.deepcopy(model.state_dict())

    def restore(self, model: nn.Module) -> bool:
        """Load the kept weights into `model`; False (model unchanged) when nothing was kept."""
        if self.state is None:
            return False
        model.load_state_dict(self.state)
        return True


# ---------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------


def run_epoch(
    learner: Learner,
    split: Split,
    epoch: int,
    lr_of: Callable[[int], float],
    progress: Progress,
    should_stop: Callable[[], bool] | None = None,
    first_step: int = 0,
) -> tuple[float, float, float]:
    """One shuffled pass over `split` -> (mean train loss, train accuracy, last lr). Raises Stopped.
    `first_step` is the run's step count (0-based) at the epoch's start: the schedule reads `lr_of(step)`."""
    set_train_mode(learner.model, learner.config.probe)
    loss_sum = torch.zeros((), device=learner.device)
    correct = torch.zeros((), device=learner.device, dtype=torch.int64)
    n_epoch, step, lr = 0, first_step, lr_of(first_step)
    for images, labels in batches(split, learner.config.batch_size, shuffle=True, generator=learner.generator):
        if should_stop is not None and should_stop():
            raise Stopped
        lr = lr_of(step)
        loss, logits = train_step(learner, images, labels, lr)
        step += 1
        n_epoch += len(labels)
        loss_sum += loss * len(labels)
        correct += (logits.argmax(1) == labels).sum()
        progress.on_step(epoch, loss, lr, len(labels), learner.model)
    return (loss_sum / max(n_epoch, 1)).item(), correct.item() / max(n_epoch, 1), lr


def _best(keeper: KeepBest | None) -> tuple[int, float, dict[str, Tensor]] | None:
    return (keeper.epoch, keeper.acc, keeper.state) if keeper is not None and keeper.state is not None else None


def resume_from(state: ResumeState, learner: Learner, keeper: KeepBest | None, steps_per_epoch: int) -> list[EpochInfo]:
    """Put a resume state into a fresh learner (and keeper); returns the finished epochs' curves."""
    apply_state(state, learner, steps_per_epoch)
    if keeper is not None and state.best is not None:
        keeper.epoch, keeper.acc, keeper.state = state.best_epoch, state.best_acc, state.best
    return [EpochInfo(**{**e, "epochs": learner.config.epochs}) for e in state.history]


def train(
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    *,
    data: DatasetSplits | None = None,
    data_dir: str | None = None,
    should_stop: Callable[[], bool] | None = None,
    state_path: str | os.PathLike | None = None,
) -> TrainResult:
    """Train one model. Returns the kept weights on CPU; raises on bad config or data.

    `config.labels` keeps a class-balanced subset of `data.train` (`labelled_split`); the model starts from
    `config.init`, or the ImageNet weights for a pretrained transfer model (`prepare_model`), or, with
    `config.resume`, from the end of the last epoch saved in that resume file (vitdemo.training.resume: weights,
    optimizer, schedule position, RNG streams, kept best weights, curves). With `state_path`, the run's own
    resume state is written there at every epoch end.

    Nothing here looks at the test split (score it with `vitdemo.evaluate.score_model`), and nothing
    sets torch's thread count (the process entry does, once: `vitdemo.threads.configure_threads`).
    """
    config.validate()
    device = resolve_device(config.device)
    seed_everything(config.seed)
    state = load_state(config.resume) if config.resume else None
    if state is not None:
        check_fits(state.config, config, state.epoch)
    data = data if data is not None else load_data(config, data_dir)
    train_split, val_split = labelled_split(data.train, config).to(device), data.val.to(device)
    generator = torch.Generator().manual_seed(config.seed)
    learner = make_learner(config, device, data.mean, data.std, generator, load=state is None)
    model = learner.model
    steps_per_epoch = num_batches(len(train_split), config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)
    num_params = count_parameters(model)
    keeper = KeepBest() if config.keep == "best" and len(val_split) > 0 else None  # no images: nothing to pick by
    history = resume_from(state, learner, keeper, steps_per_epoch) if state is not None else []
    done, before_s = len(history), state.elapsed_s if state is not None else 0.0
    if state is not None and state_path is not None:  # a resumed run can be resumed again before its first epoch
        save_state(state_path, capture_state(learner, state.history, steps_per_epoch, before_s, _best(keeper)))
    for cb in callbacks:
        cb.on_train_start(config, total_steps, num_params, str(device))

    def lr_of(step: int) -> float:
        return lr_at(step, total_steps, warmup_steps, config.lr, config.schedule)

    progress = Progress(callbacks, total_steps - done * steps_per_epoch)
    cancelled = False
    try:
        for epoch in range(done + 1, config.epochs + 1):
            first = (epoch - 1) * steps_per_epoch
            train_loss, train_acc, lr = run_epoch(learner, train_split, epoch, lr_of, progress, should_stop, first)
            val_loss, val_acc = validate(model, val_split, data.mean, data.std, config, device)
            elapsed = progress.elapsed()
            info = EpochInfo(
                epoch=epoch,
                epochs=config.epochs,
                train_loss=train_loss,
                train_acc=train_acc,
                val_loss=val_loss,
                val_acc=val_acc,
                lr=lr,
                images_per_s=progress.seen / max(elapsed, 1e-9),
                elapsed_s=before_s + elapsed,
            )
            history.append(info)
            if keeper is not None:
                keeper.offer(epoch, val_acc, model)
            progress.on_epoch(info, model)
            if state_path is not None:
                dicts = [e.to_dict() for e in history]
                save_state(
                    state_path, capture_state(learner, dicts, steps_per_epoch, before_s + elapsed, _best(keeper))
                )
    except Stopped:
        cancelled = True
    train_time = before_s + progress.elapsed()

    if keeper is not None and keeper.restore(model):
        kept, best_epoch, val_acc = "best", keeper.epoch, keeper.acc
    else:
        kept, best_epoch, val_acc = "last", len(history), history[-1].val_acc if history else 0.0
    return TrainResult(
        config=config,
        model=model.cpu().eval(),
        history=history,
        best_epoch=best_epoch,
        val_acc=val_acc,
        train_time_s=train_time,
        device=str(device),
        num_params=num_params,
        cancelled=cancelled,
        kept=kept,
        teacher=learner.teacher_identity,
    )
