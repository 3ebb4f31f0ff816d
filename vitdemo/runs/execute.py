"""One run, in the process that trains it: `execute_run` trains a claimed run and records how it ended.

The worker (`vitdemo.runs.worker`) runs it in a child process, `python -m vitdemo worker --execute <id>`
(`execute_claimed`), so that it can end a training at any moment; `python -m vitdemo train` runs it in the
foreground. This module imports torch; the worker does not.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from vitdemo.calibration import fit_temperature
from vitdemo.checkpoints import make_meta, save_checkpoint
from vitdemo.config import TrainConfig
from vitdemo.data import DatasetSplits
from vitdemo.evaluate import Scores, predict_logits, score_model
from vitdemo.training.resume import state_path
from vitdemo.runs import points
from vitdemo.runs.points import MAX_POINTS
from vitdemo.runconfig import run_family
from vitdemo.runs.execute_families import fit_classic_run, pretrain_first
from vitdemo.runs.queue import best_effort, mark_failed
from vitdemo.runs.store import Registry, Run
from vitdemo.training.loop import Callback, EpochInfo, StepInfo, TrainResult, load_data, train
from vitdemo.training.watch import Watcher, WatchRow

PROGRESS_EVERY_S = 0.5  # how often a training writes its progress (and checks for cancel between steps)
PARENT_POLL_S = 0.5  # how often a worker's child checks that its worker is still alive
POINT_EVERY_S = 1.0  # a loss point at least this often (seconds of training), until a long run's are thinned


class RegistryCallback(Callback):
    """Streams a run's progress into the registry: its latest step at most every PROGRESS_EVERY_S seconds, and a
    loss point (the mean loss of the steps since the previous one) every `point_every_s` seconds of training, in
    the same write. Past `keep_points` the registry drops every second point (vitdemo.runs.points.add_point), and
    the points then come half as often, so a long run's curve stays evenly spaced."""

    def __init__(
        self, registry: Registry, run_id: int, *, point_every_s: float = POINT_EVERY_S, keep_points: int = MAX_POINTS
    ) -> None:
        self.registry, self.run_id, self._last = registry, run_id, 0.0
        self.point_every_s, self.keep_points = point_every_s, keep_points
        self._steps_per_epoch = 0.0
        self._point_at = -math.inf  # training time of the last point
        self._loss_sum, self._loss_n = 0.0, 0  # the steps since then
        self._held = 0  # the run's points after the last write
        self._written = 0  # points written: progress["points"], so a page redraws the curve only when it moves

    def on_train_start(self, config: TrainConfig, total_steps: int, num_params: int, device: str) -> None:
        self._steps_per_epoch = total_steps / max(config.epochs, 1)
        self.registry.update_run(self.run_id, device=device, num_params=num_params, heartbeat=time.time())

    def on_step(self, info: StepInfo) -> None:
        now = time.time()
        self._loss_sum, self._loss_n = self._loss_sum + info.loss, self._loss_n + 1
        if info.elapsed_s - self._point_at >= self.point_every_s or info.step == info.total_steps:
            self._add_point(info, now)
        elif now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            best_effort(
                lambda: self.registry.update_run(self.run_id, progress=self._progress(info), heartbeat=now), None
            )

    def _progress(self, info: StepInfo) -> dict[str, float]:
        return {**info.__dict__, "points": self._written}

    def _add_point(self, info: StepInfo, now: float) -> None:
        at_epoch = info.step / self._steps_per_epoch if self._steps_per_epoch else float(info.epoch)
        point = {"step": info.step, "epoch": info.epoch, "at_epoch": at_epoch, "loss": self._loss_sum / self._loss_n,
                 "lr": info.lr, "elapsed_s": info.elapsed_s}  # fmt: skip
        self._point_at, self._last, self._loss_sum, self._loss_n = info.elapsed_s, now, 0.0, 0
        self._written += 1
        progress = self._progress(info)
        held = best_effort(
            lambda: points.add_point(
                self.registry, self.run_id, point, progress=progress, heartbeat=now, keep_at_most=self.keep_points
            ),
            None,
        )
        if held is not None:
            if held < self._held:  # thinned: half as many points, so half as often from now on
                self.point_every_s *= 2
            self._held = held

    def on_epoch(self, info: EpochInfo) -> None:
        self.registry.add_epoch(self.run_id, info.to_dict())
        self.registry.update_run(self.run_id, heartbeat=time.time())


class WatchCallback(Callback):
    """The run's answers on its watched test images (vitdemo.training.watch) into the registry, every WATCH_EVERY_S
    seconds of training and after every epoch; `finish` stores the kept model's calibrated answers."""

    def __init__(self, registry: Registry, run_id: int, watcher: Watcher) -> None:
        self.registry, self.run_id, self.watcher = registry, run_id, watcher
        self._steps_per_epoch, self._step = 0.0, 0

    def on_train_start(self, config: TrainConfig, total_steps: int, num_params: int, device: str) -> None:
        self._steps_per_epoch = total_steps / max(config.epochs, 1)

    def on_step_weights(self, info: StepInfo, model: nn.Module) -> None:
        self._step = info.step
        if self.watcher.due(info.elapsed_s):
            epoch = info.step / self._steps_per_epoch if self._steps_per_epoch else float(info.epoch)
            self._store(self.watcher.look(model, step=info.step, epoch=epoch, elapsed_s=info.elapsed_s))

    def on_epoch_weights(self, info: EpochInfo, model: nn.Module) -> None:
        self._store(self.watcher.look(model, step=self._step, epoch=info.epoch, elapsed_s=info.elapsed_s))

    def finish(self, model: nn.Module, epoch: int, temperature: float) -> None:
        """The answers of the weights the run keeps (those of `epoch`), with its calibration temperature: as the
        app will show them."""
        step = round(epoch * self._steps_per_epoch) or self._step
        self._store(self.watcher.look(model, step=step, epoch=epoch, elapsed_s=0.0, temperature=temperature))

    def _store(self, row: WatchRow) -> None:
        best_effort(lambda: points.set_watch(self.registry, self.run_id, row.to_dict()), None)


def _throttled(check: Callable[[], bool], every_s: float) -> Callable[[], bool]:
    last, value = [0.0], [False]

    def wrapped() -> bool:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0], value[0] = now, check()
        return value[0]

    return wrapped


def _score_test(result: TrainResult, data: DatasetSplits, config: TrainConfig) -> Scores:
    device = torch.device(result.device)
    scores = score_model(
        result.model.to(device),
        data.test,
        data.mean,
        data.std,
        num_classes=len(data.classes),
        device=device,
        amp=config.amp,
    )
    result.model.cpu()
    return scores


def _temperature(result: TrainResult, data: DatasetSplits) -> float:
    """The calibration temperature fitted on the run's validation split (1.0 without one): every probability
    shown for this run's checkpoint is softmax(logits / T) (vitdemo.calibration)."""
    if len(data.val) == 0:
        return 1.0
    logits = predict_logits(result.model, data.val, data.mean, data.std, num_classes=len(data.classes))  # (N, C)
    return fit_temperature(logits, data.val.labels)


def _save(
    registry: Registry, run: Run, config: TrainConfig, result: TrainResult, scores: Scores, temperature: float
) -> Path:
    metrics = {
        "val_acc": result.val_acc,
        "test_acc": scores.accuracy,
        "macro_f1": scores.report.macro_f1,
        "train_time_s": result.train_time_s,
        "device": result.device,
        "num_params": result.num_params,
        "epochs": config.epochs,
        "best_epoch": result.best_epoch,
        "kept": result.kept,  # "best" or "last" (no validation images to choose by)
        "history": [e.to_dict() for e in result.history],  # a shipped copy keeps its curves on the leaderboard
    }
    meta = make_meta(
        config.model,
        config.dataset,
        metrics=metrics,
        train_config=config.to_dict(),
        name=run.name,
        temperature=temperature,
    )
    return save_checkpoint(registry.checkpoint_dir / f"run-{run.id}.safetensors", result.model, meta)


def execute_run(
    registry: Registry,
    run: Run,
    *,
    data_dir: str | None = None,
    extra_callbacks: tuple[Callback, ...] = (),
) -> TrainResult | None:
    """Train a claimed (running) run to its end: done with metrics and a checkpoint, cancelled, or failed.
    A classic run is fitted instead (and returns None); a pretrain run pretrains its encoder first.

    Never raises for a problem of the run: it ends failed with the error. A checkpoint whose run could not be
    recorded as done (a full disk, a locked registry) is removed, so no file is left that no run accounts for.
    """
    path = None
    try:
        should_stop = _throttled(
            lambda: best_effort(lambda: registry.cancel_requested(run.id), False), PROGRESS_EVERY_S
        )
        family = run_family(run.config)  # a scikit-learn baseline, a pretrain-then-fine-tune run, or a training
        if family == "classic":
            path, columns = fit_classic_run(registry, run, data_dir=data_dir)
            registry.update_run(
                run.id, status="done", finished_at=time.time(), checkpoint=str(path.resolve()), **columns
            )
            return None
        config = (
            pretrain_first(registry, run, data_dir=data_dir, should_stop=should_stop)
            if family == "pretrain"
            else TrainConfig.from_dict(run.config)
        )
        if config is None:  # cancelled while pretraining
            return None
        data = load_data(config, data_dir)  # the validation split follows config.split_seed
        watch = WatchCallback(registry, run.id, Watcher(data.test, data.mean, data.std, num_classes=len(data.classes)))
        result = train(
            config,
            (RegistryCallback(registry, run.id), watch, *extra_callbacks),
            data=data,
            should_stop=should_stop,
            state_path=state_path(registry.checkpoint_dir, run.id),  # at every epoch end: `--resume` goes on from it
        )
        if result.cancelled:
            registry.transition(
                run.id, "cancelled", only_from=("running",), finished_at=time.time(), train_time_s=result.train_time_s
            )
            return result
        scores = _score_test(result, data, config)
        temperature = _temperature(result, data)
        path = _save(registry, run, config, result, scores, temperature)
        watch.finish(result.model, result.best_epoch, temperature)
        registry.update_run(
            run.id,
            status="done",
            finished_at=time.time(),
            val_acc=result.val_acc,
            test_acc=scores.accuracy,
            macro_f1=scores.report.macro_f1,
            train_time_s=result.train_time_s,
            checkpoint=str(path.resolve()),
        )
        return result
    except Exception as exc:  # a failed run must end as failed, never stay "running"
        error = describe_error(exc)
        if path is not None:  # trained to the end but not recorded: its files go (a failure mid-training keeps
            path.unlink(missing_ok=True)  # its resume file, to go on from the last epoch)
            state_path(registry.checkpoint_dir, run.id).unlink(missing_ok=True)
            error = f"the result could not be recorded, so its checkpoint was removed: {error}"
        mark_failed(registry, run.id, error)
        if os.environ.get("VITDEMO_DEBUG"):
            traceback.print_exc()
        return None


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text.lower():
        return f"out of memory: try a smaller batch size or model ({text.splitlines()[0]})"
    return f"{type(exc).__name__}: {text}"


def _exit_with_parent(poll_s: float = PARENT_POLL_S) -> None:
    """End this process when the worker that started it dies (a killed worker must not leave a training behind)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="watch-worker", daemon=True).start()


def execute_claimed(registry: Registry, run_id: int, *, data_dir: str | None = None) -> int:
    """The child's side (`python -m vitdemo worker --execute ID`): train a run its worker claimed. Exit status."""
    _exit_with_parent()
    run = registry.get_run(run_id)
    if run.status != "running":
        print(f"run #{run_id} is {run.status}, not running: nothing to do", file=sys.stderr)
        return 1
    execute_run(registry, run, data_dir=data_dir)
    return 0
