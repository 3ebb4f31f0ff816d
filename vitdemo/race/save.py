"""Keep a race: both sides saved as two ordinary runs of the registry, with checkpoints and curves, so that
Evaluate and the Leaderboard compare them like any other run.

Recorded the way the CLI records a run it trains in its own process (vitdemo.runs.execute.execute_run): the run
is created running and owned by this process (`queue.start_run`, so no worker can claim it), a `Recorder` applies
its events (its loss points, one row per pass over the training set, its watched answers), a `Heartbeat` keeps
it alive meanwhile, and `execute.deliver` scores the weights on the test split, fits the calibration temperature
on the whole validation split, writes the checkpoint and records the result. What a run's config cannot say (the
knob turns along the way, the label noise) goes into the checkpoint's metrics under "race".
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import torch

from vitdemo.config import model_shape
from vitdemo.data import DatasetSplits
from vitdemo.evaluate import predict_logits
from vitdemo.race.knobs import SIDES
from vitdemo.race.sides import RaceData
from vitdemo.race.state import Point, RaceExport, SideExport
from vitdemo.runs import events, queue
from vitdemo.runs.execute import Progress, deliver, describe_error, part_of
from vitdemo.runs.record import Heartbeat, Recorder
from vitdemo.runs.store import Registry
from vitdemo.training.loop import EpochInfo, TrainResult

SAVED_POINTS = 300  # loss points kept per run: the Train page's curve needs no more, and each is a transaction


class NothingToSave(ValueError):
    """A race whose models have not trained yet."""

    public = "Nothing to save yet: press Play (or Step) first."


def epoch_rows(points: Sequence[Point], epochs: int) -> list[dict[str, float]]:
    """One row per pass over the training set (vitdemo.runs.store.EPOCH_COLUMNS): the first validated point at or
    after each pass's end (the last pass, perhaps unfinished, takes the last validated point), with the mean
    training loss and accuracy of the points of that pass."""
    validated = [p for p in points if p.val_acc is not None and p.step > 0]
    rows: list[dict[str, float]] = []
    if not validated:
        return rows
    start = 0.0
    for k in range(1, epochs + 1):
        at = next((p for p in validated if p.epoch >= k), validated[-1])
        inside = [p for p in points if start < p.epoch <= at.epoch and p.loss == p.loss] or [at]
        rows.append({
            "epoch": k, "train_loss": sum(p.loss for p in inside) / len(inside),
            "train_acc": sum(p.train_acc for p in inside) / len(inside), "val_loss": float(at.val_loss or 0.0),
            "val_acc": float(at.val_acc or 0.0), "lr": at.lr, "images_per_s": at.images / max(at.t, 1e-9),
            "elapsed_s": at.t,
        })  # fmt: skip
        start = at.epoch
    return rows


def _point_event(p: Point, total: int) -> events.Point:
    point = {"step": p.step, "epoch": max(1, math.ceil(p.epoch)), "at_epoch": p.epoch,
             "loss": p.loss if p.loss == p.loss else 0.0, "lr": p.lr, "elapsed_s": p.t}  # fmt: skip
    progress = {"phase": "saving a race", "step": p.step, "total_steps": total}
    return events.Point(point, progress, SAVED_POINTS * 2)


def _val_acc(model: torch.nn.Module, data: RaceData, progress: Progress | None = None) -> float:
    logits = predict_logits(
        model, data.val_all, data.mean, data.std, num_classes=len(data.classes), progress=progress
    )  # (N, C)
    return (logits.argmax(1) == data.val_all.labels).float().mean().item() if len(logits) else 0.0


def _race_metrics(side: SideExport, export: RaceExport) -> dict[str, object]:
    """What the run's config cannot say: the knob turns that acted on this side, the label noise, the curve's
    validation subset."""
    marks = [
        {"t": m.t, "images": dict(zip(SIDES, m.images, strict=True)), "knob": m.change.knob, "old": m.change.old,
         "new": m.change.new}
        for m in export.view.marks
        if side.kind in m.change.sides
    ]  # fmt: skip
    view = side.view
    race = {"label_noise": export.label_noise, "images": view.images, "steps": view.steps, "restarts": view.restarts,
            "val_images_curve": len(export.data.val), "marks": marks}  # fmt: skip
    return {"race": race}


def _record_side(
    reg: Registry, run_id: int, side: SideExport, export: RaceExport, progress: Progress | None = None
) -> Recorder:
    recorder = Recorder(reg, run_id, os.getpid())
    view, config, data = side.view, side.config, export.data
    trained = [p for p in view.points if p.step > 0]
    stride = max(1, -(-len(trained) // SAVED_POINTS))
    recorder(events.Started("cpu", view.params))
    for p in trained[::stride]:
        recorder(_point_event(p, view.steps))
    rows = epoch_rows(view.points, config.epochs)
    for row in rows:
        recorder(events.Epoch(row))
    if view.watch is not None:
        recorder(events.Watch(view.watch.to_dict()))
    history = [EpochInfo(epochs=config.epochs, **row) for row in rows]  # type: ignore[arg-type]
    n_val, n_test = len(data.val_all), len(data.test)
    val_share = n_val / max(2 * n_val + n_test, 1)  # the images scored: validation, then test and validation again
    val_acc = _val_acc(side.model, data, part_of(progress, 0.0, val_share))
    result = TrainResult(config, side.model, history, best_epoch=len(history), val_acc=val_acc,
                         train_time_s=export.view.t, device="cpu", num_params=view.params, kept="last")  # fmt: skip
    splits = DatasetSplits(data.dataset, data.pool, data.val_all, data.test, data.mean, data.std, data.classes)
    deliver(
        reg.get_run(run_id), reg.checkpoint_dir, result, splits, recorder, extra_metrics=_race_metrics(side, export),
        progress=part_of(progress, val_share, 1.0 - val_share),
    )  # fmt: skip
    return recorder


def save_side(reg: Registry, side: SideExport, export: RaceExport, owner: str, progress: Progress | None = None) -> int:
    """One side as a done run owned by `owner`; its id. On any failure the run ends failed, never running.
    `progress` hears the share of its scoring done (seconds: 20,000 images)."""
    if side.view.steps == 0:
        raise NothingToSave(NothingToSave.public)
    name = f"race-{side.kind}-{side.config.dataset}-{model_shape(side.config.model)}-{side.view.images}img"
    config = dataclasses.replace(side.config, name=name)
    run_id = queue.start_run(reg, config, os.getpid(), owner=owner)
    with Heartbeat(reg, [run_id]):
        try:
            recorder = _record_side(reg, run_id, side, export, progress)
        except Exception as exc:
            Recorder(reg, run_id, os.getpid())(events.Failed(describe_error(exc)))
            raise
    if recorder.outcome != "done":
        raise RuntimeError(f"run #{run_id} of the race could not be recorded ({recorder.outcome})")
    return run_id


def save_race(reg: Registry, export: RaceExport, owner: str, progress: Progress | None = None) -> list[int]:
    """Both sides of an exported race (vitdemo.race.engine.Race.export) as two runs; their ids (CNN, ViT).
    `progress` hears the share of the saving done (the sides one after the other)."""
    if not any(s.view.steps for s in export.sides):
        raise NothingToSave(NothingToSave.public)
    n = len(export.sides)
    return [save_side(reg, side, export, owner, part_of(progress, i / n, 1 / n)) for i, side in enumerate(export.sides)]
