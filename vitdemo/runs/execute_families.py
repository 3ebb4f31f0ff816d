"""The parts of a run that are not the trainer's loop, for `vitdemo.runs.execute.execute` to dispatch to:

- a scikit-learn baseline (`ClassicRun`): fit on the run's training split, score on the test split through
  `vitdemo.models.classic.fit_run` (the same Scores as a network), save `run-<id>.skops`;
- the first phase of a `PretrainRun`: pretrain its encoder on the training images without labels, save it as
  `run-<id>-encoder.safetensors`, and hand back the fine-tuning TrainConfig that starts from it.

Progress goes out as events like a training's (a "phase" key says which part runs); a cancel request stops
pretraining between two steps. Files are named by vitdemo.runfiles.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vitdemo import runfiles
from vitdemo.config import TrainConfig
from vitdemo.runconfig import ClassicRun, PretrainRun
from vitdemo.runs import events
from vitdemo.runs.events import Event
from vitdemo.runs.store import Run

PROGRESS_EVERY_S = 0.5
Emit = Callable[[Event], None]


class Stopped(Exception):
    """A cancel request arrived during pretraining."""


def fit_classic_run(
    run: Run, checkpoint_dir: Path, emit: Emit, *, data_dir: str | None = None
) -> tuple[Path, dict[str, Any]]:
    """Fit, score and save a classic run; returns the saved file and the run columns to record as done."""
    from vitdemo.data import load_dataset
    from vitdemo.models.classic import fit_run, save_classic

    spec = ClassicRun.from_dict(run.config)
    spec.validate()
    emit(events.Started("cpu"))
    emit(events.Progress({"phase": "fitting"}))
    data = load_dataset(
        spec.dataset, data_dir, val_size=spec.val_size, seed=spec.split_seed, train_subset=spec.train_subset
    )
    from threadpoolctl import threadpool_limits  # scikit-learn's own dependency

    from vitdemo.threads import thread_count

    with threadpool_limits(thread_count()):  # the BLAS threads follow $VITDEMO_THREADS, like torch's
        fitted = fit_run(spec, data)
    path = save_classic(runfiles.path(checkpoint_dir, run.id, runfiles.CLASSIC), fitted)
    m = fitted.metrics
    columns = {
        "val_acc": m["val_acc"],
        "test_acc": m["test_acc"],
        "macro_f1": m["macro_f1"],
        "train_time_s": m["train_time_s"],
        "num_params": m["num_params"],
        "epochs_done": 1,
        "progress": {"phase": "done", "step": 1, "total_steps": 1},
    }
    return path, columns


def _pretrain_progress(
    emit: Emit, method: str, batch_size: int, should_stop: Callable[[], bool]
) -> Callable[[Any], None]:
    """The pretraining loop's on_step: stop on a cancel request, send progress every PROGRESS_EVERY_S."""
    last = [0.0]

    def on_step(info: Any) -> None:  # a vitdemo.pretrain.PretrainStep
        if should_stop():
            raise Stopped
        now = time.time()
        if now - last[0] < PROGRESS_EVERY_S and info.step != info.total_steps:
            return
        last[0] = now
        rate = info.step * batch_size / max(info.elapsed_s, 1e-9)
        progress = {
            "phase": f"pretraining ({method})",
            "epoch": info.epoch,
            "step": info.step,
            "total_steps": info.total_steps,
            "loss": info.loss,
            "images_per_s": rate,
            "eta_s": (info.total_steps - info.step) * batch_size / max(rate, 1e-9),
            "elapsed_s": info.elapsed_s,
        }
        emit(events.Progress(progress))

    return on_step


def pretrain_first(
    run: Run,
    checkpoint_dir: Path,
    emit: Emit,
    *,
    data_dir: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> TrainConfig | None:
    """Pretrain a PretrainRun's encoder and save it as the run's encoder file; returns the fine-tuning config
    that starts from it, or None when a cancel request stopped the pretraining."""
    from vitdemo.pretrain import pretrain_encoder, save_encoder
    from vitdemo.training.loop import load_data, resolve_device

    spec = PretrainRun.from_dict(run.config)
    spec.validate()
    config = spec.train
    data = load_data(config, data_dir)  # the fine-tune's own split: pretraining never sees its validation images
    device = resolve_device(config.device)
    emit(events.Started(device.type))
    on_step = _pretrain_progress(emit, spec.method, spec.pretrain.batch_size, should_stop)
    try:
        encoder = pretrain_encoder(
            spec.method,
            config.model,
            data.train.images,
            spec.pretrain,
            mean=data.mean,
            std=data.std,
            device=device,
            on_step=on_step,
        )
    except Stopped:
        return None
    name = f"{spec.method} {config.model.kind} encoder of run #{run.id}"
    path = save_encoder(runfiles.path(checkpoint_dir, run.id, runfiles.ENCODER), encoder, config.dataset, name)
    return spec.with_encoder(str(path.resolve()))
