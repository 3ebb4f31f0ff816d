"""A number reader's run, in the process that trains it (vitdemo.runs.execute dispatches here for task "read"):
train it on freshly written numbers (vitdemo.numbers.train), score the kept weights on the fixed test numbers
(whole-number accuracy, CER, by length, mistakes; the detector's mAP and its score as a single-digit classifier),
write its self-describing checkpoint and send the Result event. The run's columns: val_acc and test_acc are
whole-number accuracies; macro_f1 is the detector's as a single-digit classifier (none for the captioner)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vitdemo import runfiles
from vitdemo.checkpoints import make_meta, save_checkpoint
from vitdemo.config import TrainConfig
from vitdemo.runs import events
from vitdemo.runs.events import Event, RunFile
from vitdemo.runs.store import Run
from vitdemo.training.loop import Callback, TrainResult


def reader_metrics(result: TrainResult, data: Any, data_dir: str | None = None, digits: Any = None) -> dict[str, Any]:
    """What a reader's checkpoint header keeps: its test report, training figures and curves; a detector's score
    as a single-digit classifier on `digits` (default: all of t10k)."""
    from vitdemo.data import load_raw
    from vitdemo.numbers.evaluate import detector_as_classifier, evaluate_reader

    report = evaluate_reader(result.model, data.test)
    metrics: dict[str, Any] = {
        "val_acc": result.val_acc,
        "test_acc": report.accuracy,
        "cer": report.cer,
        "by_length": report.to_dict()["by_length"],
        "mistakes": report.mistakes,
        "test_numbers": report.n,
        "train_time_s": result.train_time_s,
        "device": result.device,
        "num_params": result.num_params,
        "epochs": result.config.epochs,
        "best_epoch": result.best_epoch,
        "kept": result.kept,
        "history": [e.to_dict() for e in result.history],
    }
    if report.map50 is not None:
        metrics.update(map50=report.map50, map=report.map)
        digits = digits if digits is not None else load_raw("mnist", train=False, data_dir=data_dir)
        single = detector_as_classifier(result.model, digits)
        metrics["single_digit"] = single
        metrics["macro_f1"] = single["macro_f1"]
    return metrics


def train_reader_run(
    run: Run, config: TrainConfig, checkpoint_dir: Path, emit: Callable[[Event], None],
    callbacks: tuple[Callback, ...], *, data_dir: str | None, should_stop: Callable[[], bool], send_files: bool,
) -> TrainResult:  # fmt: skip
    from vitdemo.numbers.splits import load_numbers
    from vitdemo.numbers.train import train_reader

    data = load_numbers(data_dir, val_size=config.val_size, split_seed=config.split_seed,
                        train_subset=config.train_subset)  # fmt: skip
    result = train_reader(config, callbacks, data=data, should_stop=should_stop)
    if result.cancelled:
        emit(events.Cancelled(result.train_time_s))
        return result
    metrics = reader_metrics(result, data, data_dir)
    meta = make_meta(config.model, "mnist", metrics=metrics, train_config=config.to_dict(), name=run.name)
    path = save_checkpoint(runfiles.path(checkpoint_dir, run.id), result.model, meta)
    columns = {"val_acc": result.val_acc, "test_acc": metrics["test_acc"], "macro_f1": metrics.get("macro_f1"),
               "train_time_s": result.train_time_s}  # fmt: skip
    emit(events.Result(columns, RunFile.sent(path) if send_files else RunFile(path.name)))
    return result
