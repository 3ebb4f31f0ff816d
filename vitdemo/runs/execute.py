"""One run, in the process that trains it: `execute` trains a claimed run and says how it ended as events.

The trainer never writes the registry: its callbacks (`EventCallback`, `WatchCallback`) and its end produce
events (vitdemo.runs.events) for whoever records the run. A worker's child, `python -m vitdemo worker --execute
<id>` (`execute_claimed`), writes them as JSON lines on its stdout for its worker to record; `python -m vitdemo
train` trains in its own process and records them itself (`execute_run`), keeping the run's heartbeat from a
thread. The checkpoint is written by the trainer into the run's checkpoint folder (the local executor shares the
disk); its Result event names it. This module imports torch; the worker does not.
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
from typing import Any, TextIO

import torch
from torch import nn

from vitdemo import runfiles
from vitdemo.calibration import fit_temperature
from vitdemo.checkpoints import make_meta, save_checkpoint
from vitdemo.config import TrainConfig
from vitdemo.data import DatasetSplits
from vitdemo.evaluate import predict_logits, score_model
from vitdemo.families.spec import READ
from vitdemo.metrics import Scores
from vitdemo.runconfig import run_family
from vitdemo.runs import events
from vitdemo.runs.events import Event, RunFile
from vitdemo.runs.execute_families import fit_classic_run, pretrain_first
from vitdemo.runs.points import MAX_POINTS, held_after
from vitdemo.runs.record import Heartbeat, Recorder, best_effort
from vitdemo.runs.store import Registry, Run
from vitdemo.training.loop import Callback, EpochInfo, StepInfo, TrainResult, load_data, train
from vitdemo.training.resume import state_path
from vitdemo.training.watch import Watcher, WatchRow

PROGRESS_EVERY_S = 0.5  # how often a training sends its progress (and checks for cancel between steps)
PARENT_POLL_S = 0.5  # how often a worker's child checks that its worker is still alive
POINT_EVERY_S = 1.0  # a loss point at least this often (seconds of training), until a long run's are thinned
Emit = Callable[[Event], None]
Progress = Callable[[float], None]  # hears the share of a job done, 0 to 1


class EventCallback(Callback):
    """Sends a run's progress: its latest step at most every PROGRESS_EVERY_S seconds, and a loss point (the mean
    loss of the steps since the previous one) every `point_every_s` seconds of training, with that progress. Past
    `keep_points` the recorder drops every second point (vitdemo.runs.points.add_point), and the points then come
    half as often, so a long run's curve stays evenly spaced (the trainer counts what the recorder keeps:
    vitdemo.runs.points.held_after)."""

    def __init__(self, emit: Emit, *, point_every_s: float = POINT_EVERY_S, keep_points: int = MAX_POINTS) -> None:
        self.emit, self._last = emit, 0.0
        self.point_every_s, self.keep_points = point_every_s, keep_points
        self._steps_per_epoch = 0.0
        self._point_at = -math.inf  # training time of the last point
        self._loss_sum, self._loss_n = 0.0, 0  # the steps since then
        self._held = 0  # the run's points once the recorder has stored the last one
        self._written = 0  # points sent: progress["points"], so a page redraws the curve only when it moves

    def on_train_start(self, config: TrainConfig, total_steps: int, num_params: int, device: str) -> None:
        self._steps_per_epoch = total_steps / max(config.epochs, 1)
        self.emit(events.Started(device, num_params))

    def on_step(self, info: StepInfo) -> None:
        now = time.time()
        self._loss_sum, self._loss_n = self._loss_sum + info.loss, self._loss_n + 1
        if info.elapsed_s - self._point_at >= self.point_every_s or info.step == info.total_steps:
            self._add_point(info, now)
        elif now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            self.emit(events.Progress(self._progress(info)))

    def _progress(self, info: StepInfo) -> dict[str, float]:
        return {**info.__dict__, "points": self._written}

    def _add_point(self, info: StepInfo, now: float) -> None:
        at_epoch = info.step / self._steps_per_epoch if self._steps_per_epoch else float(info.epoch)
        point = {"step": info.step, "epoch": info.epoch, "at_epoch": at_epoch, "loss": self._loss_sum / self._loss_n,
                 "lr": info.lr, "elapsed_s": info.elapsed_s}  # fmt: skip
        self._point_at, self._last, self._loss_sum, self._loss_n = info.elapsed_s, now, 0.0, 0
        self._written += 1
        self.emit(events.Point(point, self._progress(info), self.keep_points))
        held = held_after(self._held + 1, self.keep_points)
        if held <= self._held:  # thinned: half as many points, so half as often from now on
            self.point_every_s *= 2
        self._held = held

    def on_epoch(self, info: EpochInfo) -> None:
        self.emit(events.Epoch(info.to_dict()))


class WatchCallback(Callback):
    """The run's answers on its watched test images (vitdemo.training.watch), every WATCH_EVERY_S seconds of
    training and after every epoch; `finish` sends the kept model's calibrated answers."""

    def __init__(self, emit: Emit, watcher: Watcher) -> None:
        self.emit, self.watcher = emit, watcher
        self._steps_per_epoch, self._step = 0.0, 0

    def on_train_start(self, config: TrainConfig, total_steps: int, num_params: int, device: str) -> None:
        self._steps_per_epoch = total_steps / max(config.epochs, 1)

    def on_step_weights(self, info: StepInfo, model: nn.Module) -> None:
        self._step = info.step
        if self.watcher.due(info.elapsed_s):
            epoch = info.step / self._steps_per_epoch if self._steps_per_epoch else float(info.epoch)
            self._send(self.watcher.look(model, step=info.step, epoch=epoch, elapsed_s=info.elapsed_s))

    def on_epoch_weights(self, info: EpochInfo, model: nn.Module) -> None:
        self._send(self.watcher.look(model, step=self._step, epoch=info.epoch, elapsed_s=info.elapsed_s))

    def finish(self, model: nn.Module, epoch: int, temperature: float) -> None:
        """The answers of the weights the run keeps (those of `epoch`), with its calibration temperature: as the
        app will show them."""
        step = round(epoch * self._steps_per_epoch) or self._step
        self._send(self.watcher.look(model, step=step, epoch=epoch, elapsed_s=0.0, temperature=temperature))

    def _send(self, row: WatchRow) -> None:
        self.emit(events.Watch(row.to_dict()))


def _throttled(check: Callable[[], bool], every_s: float) -> Callable[[], bool]:
    last, value = [0.0], [False]

    def wrapped() -> bool:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0], value[0] = now, check()
        return value[0]

    return wrapped


def part_of(progress: Progress | None, start: float, width: float) -> Progress | None:
    """A progress callback for one part of a job: its share s in [0, 1] is heard as start + width * s."""
    if progress is None:
        return None
    return lambda share: progress(start + width * share)


def _score_test(
    result: TrainResult, data: DatasetSplits, config: TrainConfig, progress: Progress | None = None
) -> Scores:
    device = torch.device(result.device)
    scores = score_model(
        result.model.to(device),
        data.test,
        data.mean,
        data.std,
        num_classes=len(data.classes),
        device=device,
        amp=config.amp,
        progress=progress,
    )
    result.model.cpu()
    return scores


def _temperature(result: TrainResult, data: DatasetSplits, progress: Progress | None = None) -> float:
    """The calibration temperature fitted on the run's validation split (1.0 without one): every probability
    shown for this run's checkpoint is softmax(logits / T) (vitdemo.calibration)."""
    if len(data.val) == 0:
        return 1.0
    logits = predict_logits(
        result.model, data.val, data.mean, data.std, num_classes=len(data.classes), progress=progress
    )  # (N, C)
    return fit_temperature(logits, data.val.labels)


def _save(
    checkpoint_dir: Path, run: Run, config: TrainConfig, result: TrainResult, scores: Scores, temperature: float,
    extra_metrics: dict[str, Any] | None = None,
) -> Path:  # fmt: skip
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
        **(extra_metrics or {}),
    }
    meta = make_meta(
        config.model,
        config.dataset,
        metrics=metrics,
        train_config=config.to_dict(),
        name=run.name,
        temperature=temperature,
        teacher=result.teacher,
    )
    return save_checkpoint(runfiles.path(checkpoint_dir, run.id), result.model, meta)


def _made(path: Path, send_files: bool) -> RunFile:
    return RunFile.sent(path) if send_files else RunFile(path.name)


def _train_run(
    run: Run, checkpoint_dir: Path, emit: Emit, *, data_dir: str | None, should_stop: Callable[[], bool],
    extra_callbacks: tuple[Callback, ...], send_files: bool,
) -> TrainResult | None:  # fmt: skip
    """A training (after its pretraining, for a pretrain run), scored, calibrated and saved."""
    family = run_family(run.config)
    encoder: list[RunFile] = []
    if family == "pretrain":
        config = pretrain_first(run, checkpoint_dir, emit, data_dir=data_dir, should_stop=should_stop)
        if config is None:  # cancelled while pretraining
            emit(events.Cancelled())
            return None
        encoder.append(_made(runfiles.path(checkpoint_dir, run.id, runfiles.ENCODER), send_files))
    else:
        config = TrainConfig.from_dict(run.config)
    if config.task == READ:  # a number reader: its own data, loop and scores (vitdemo.runs.execute_readers)
        from vitdemo.runs.execute_readers import train_reader_run

        callbacks = (EventCallback(emit), *extra_callbacks)
        return train_reader_run(run, config, checkpoint_dir, emit, callbacks, data_dir=data_dir,
                                should_stop=should_stop, send_files=send_files)  # fmt: skip
    data = load_data(config, data_dir)  # the validation split follows config.split_seed
    watch = WatchCallback(emit, Watcher(data.test, data.mean, data.std, num_classes=len(data.classes)))
    result = train(
        config,
        (EventCallback(emit), watch, *extra_callbacks),
        data=data,
        should_stop=should_stop,
        state_path=state_path(checkpoint_dir, run.id),  # at every epoch end: `--resume` goes on from it
    )
    if result.cancelled:
        emit(events.Cancelled(result.train_time_s))
        return result
    deliver(run, checkpoint_dir, result, data, emit, watch=watch, send_files=send_files, others=tuple(encoder))
    return result


def deliver(
    run: Run, checkpoint_dir: Path, result: TrainResult, data: DatasetSplits, emit: Emit, *,
    watch: WatchCallback | None = None, send_files: bool = False, others: tuple[RunFile, ...] = (),
    extra_metrics: dict[str, Any] | None = None, progress: Progress | None = None,
) -> None:  # fmt: skip
    """The end of a finished training, wherever it trained (a run's child, the CLI, a saved race): the kept
    weights scored on the test split, a calibration temperature fitted on the validation split, the checkpoint
    written into the run's folder (with `extra_metrics` in its header), the kept weights' watched answers (with
    `watch`) and the Result event. `progress` hears the share of the images scored (test, then validation)."""
    config = result.config
    test_share = len(data.test) / max(len(data.test) + len(data.val), 1)
    scores = _score_test(result, data, config, part_of(progress, 0.0, test_share))
    temperature = _temperature(result, data, part_of(progress, test_share, 1.0 - test_share))
    path = _save(checkpoint_dir, run, config, result, scores, temperature, extra_metrics)
    if watch is not None:
        watch.finish(result.model, result.best_epoch, temperature)
    columns = {"val_acc": result.val_acc, "test_acc": scores.accuracy, "macro_f1": scores.report.macro_f1,
               "train_time_s": result.train_time_s}  # fmt: skip
    emit(events.Result(columns, _made(path, send_files), others))


def execute(
    run: Run,
    checkpoint_dir: Path,
    emit: Emit,
    *,
    data_dir: str | None = None,
    should_stop: Callable[[], bool] | None = None,
    extra_callbacks: tuple[Callback, ...] = (),
    send_files: bool = False,
) -> TrainResult | None:
    """Train a claimed run to its end, sending its events to `emit`; the last says how it ended: Result (its
    checkpoint written into `checkpoint_dir`, or its bytes with `send_files`), Cancelled or Failed. A classic run
    is fitted instead (and returns None); a pretrain run pretrains its encoder first. Never raises for a problem
    of the run: it ends Failed with the error. Opens no registry."""
    try:
        if run_family(run.config) == "classic":  # a scikit-learn baseline
            path, columns = fit_classic_run(run, checkpoint_dir, emit, data_dir=data_dir)
            emit(events.Result(columns, _made(path, send_files)))
            return None
        stop = should_stop or (lambda: False)
        return _train_run(run, checkpoint_dir, emit, data_dir=data_dir, should_stop=stop,
                          extra_callbacks=extra_callbacks, send_files=send_files)  # fmt: skip
    except Exception as exc:  # a failed run must end as failed, never stay "running"
        if os.environ.get("VITDEMO_DEBUG"):
            traceback.print_exc()
        emit(events.Failed(describe_error(exc)))
        return None


def execute_run(
    registry: Registry,
    run: Run,
    *,
    data_dir: str | None = None,
    extra_callbacks: tuple[Callback, ...] = (),
    heartbeat: bool = True,
) -> TrainResult | None:
    """Train a claimed (running) run in this process and record it here (the CLI's way: it is the run's one
    writer): done with metrics and a checkpoint, cancelled (a cancel request is read between steps), or failed.
    The run's heartbeat is kept from a thread meanwhile (unless the caller keeps it: `heartbeat=False`). Returns
    the training's result (None for a classic run, a failure, or a result that could not be recorded)."""
    recorder = Recorder(registry, run.id, run.worker_pid)
    should_stop = _throttled(lambda: best_effort(lambda: registry.cancel_requested(run.id), False), PROGRESS_EVERY_S)
    with Heartbeat(registry, [run.id] if heartbeat else ()):
        result = execute(
            run, registry.checkpoint_dir, recorder, data_dir=data_dir, should_stop=should_stop,
            extra_callbacks=extra_callbacks,
        )  # fmt: skip
    return None if recorder.outcome in ("failed", None) else result


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


def _event_stream() -> TextIO:
    """The child's stdout, for events only: anything else the training prints goes to stderr (the worker's log)."""
    sys.stdout.flush()
    stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return stream


def execute_claimed(registry: Registry, run_id: int, *, data_dir: str | None = None) -> int:
    """The child's side (`python -m vitdemo worker --execute ID`): train a run its worker claimed, sending the
    events as JSON lines on stdout for the worker to record (the child only reads the registry). A cancel is
    the worker ending this process. Exit status."""
    _exit_with_parent()
    run = registry.get_run(run_id)
    if run.status != "running":
        print(f"run #{run_id} is {run.status}, not running: nothing to do", file=sys.stderr)
        return 1
    stream = _event_stream()

    def emit(event: Event) -> None:
        stream.write(events.encode(event) + "\n")

    execute(run, registry.checkpoint_dir, emit, data_dir=data_dir)
    stream.flush()
    return 0
