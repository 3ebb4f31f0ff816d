"""Shipped models as finished "baseline" runs, so they sit on the leaderboard beside the trained ones.

Two kinds of file are shipped: networks (`*.safetensors`, vitdemo.checkpoints) and scikit-learn baselines
(`*.skops`, vitdemo.models.classic). Both become baseline runs, read from their headers only. A pretrained encoder (a
`.safetensors` whose head was never trained, vitdemo.pretrain.is_pretrained_encoder) is not a model to evaluate:
it is never listed as a run, only offered as the start of a fine-tune (`encoders`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitdemo import runfiles
from vitdemo.checkpoints import CheckpointError, CheckpointMeta, read_meta
from vitdemo.config import ModelConfig
from vitdemo.runconfig import ENCODER_TAG
from vitdemo.runs.store import NewRun, Registry

CLASSIC_SUFFIX = ".skops"


def _is_encoder(meta: CheckpointMeta) -> bool:
    """vitdemo.pretrain.is_pretrained_encoder, without importing the trainer (a listing stays light)."""
    return bool(meta.metrics.get(ENCODER_TAG))


def read_headers(
    checkpoint_dir: str | os.PathLike, pattern: str = "*.safetensors"
) -> list[tuple[Path, CheckpointMeta]]:
    """(path, header) of every readable `pattern` file in the folder, by name; a file whose header cannot be
    read is skipped here (it is reported where it is loaded)."""
    found = []
    for path in sorted(Path(checkpoint_dir).glob(pattern)):
        try:
            found.append((path, read_meta(path)))
        except (CheckpointError, OSError):
            continue
    return found


def baseline_run(path: Path, meta: CheckpointMeta) -> NewRun:
    """The done run a shipped checkpoint stands for, with the training curves its header carries."""
    m: dict[str, Any] = meta.metrics
    fields = {
        "name": meta.name or path.stem,
        "kind": meta.model_config.kind,
        "dataset": meta.dataset,
        "config": meta.train_config or {"model": meta.model_config.__dict__, "dataset": meta.dataset},
        "device": m.get("device"),
        "epochs_done": int(m.get("epochs", 0) or 0),
        **_file_fields(path, m),
    }
    epochs = [row for row in m.get("history") or [] if isinstance(row, dict) and "epoch" in row]
    return NewRun(fields, epochs)


def _file_fields(path: Path, m: dict[str, Any]) -> dict[str, Any]:
    """The run columns every shipped file gives the same way: its size and scores (header metrics `m`), and the
    file itself."""
    scores = {k: m.get(k) for k in ("num_params", "val_acc", "test_acc", "macro_f1", "train_time_s")}
    return {**scores, "checkpoint": str(path.resolve()), "finished_at": path.stat().st_mtime}


def classic_baseline_run(path: Path) -> NewRun:
    """The done run a shipped scikit-learn file stands for (ClassicError, a ValueError, for a file that is not
    one). Read from the file's header: its estimator is never built here."""
    from vitdemo.models.classic import read_header
    from vitdemo.runconfig import run_name

    header = read_header(path)
    run, m = header.run(), header.metrics
    fields = {
        "name": header.name or run_name(run),
        "kind": header.config.kind,
        "dataset": header.dataset,
        "config": run.to_dict(),
        "device": "cpu",
        "epochs_done": 1,
        **_file_fields(path, m),
    }
    return NewRun(fields)


def _classic_files(checkpoint_dir: str | os.PathLike) -> list[Path]:
    return sorted(Path(checkpoint_dir).glob(f"*{CLASSIC_SUFFIX}"))


def _new_runs(checkpoint_dir: str | os.PathLike, known: set[str]) -> list[NewRun]:
    """Baseline runs for the files of the folder not yet registered (`known`: their resolved paths).
    scikit-learn is imported only when there is a new .skops file to read."""
    new = [
        baseline_run(path, meta)
        for path, meta in read_headers(checkpoint_dir)
        if str(path.resolve()) not in known and not _is_encoder(meta)
    ]
    for path in _classic_files(checkpoint_dir):
        if str(path.resolve()) in known:
            continue
        from vitdemo.models.classic import ClassicError

        try:
            new.append(classic_baseline_run(path))
        except (ClassicError, OSError):  # a damaged file: skipped here, reported where it is loaded
            continue
    return new


def sync_baselines(store: Registry, checkpoint_dir: str | os.PathLike) -> list[int]:
    """Register every shipped model in `checkpoint_dir` once, as a finished baseline run. Returns new ids.

    Reads first and writes only when a file is new, so it works on a read-only registry that is up to date;
    idempotent also when several processes sync at once (the store re-checks inside its transaction).
    """
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return []
    new = _new_runs(folder, store.baseline_checkpoints())
    return store.add_baselines(new) if new else []


@dataclass(frozen=True)
class Encoder:
    """A pretrained encoder a fine-tune can start from (`TrainConfig.init`)."""

    path: Path
    name: str
    method: str  # "mae" or "simclr"
    model: ModelConfig  # the architecture a run that starts from it must have
    dataset: str  # the images it was pretrained on
    pretrain_epochs: int


RUN_ENCODERS = runfiles.ENCODER_GLOB  # in a registry's checkpoint folder: encoders its pretrain runs made


def encoders(folder: str | os.PathLike, pattern: str = "*.safetensors") -> list[Encoder]:
    """The pretrained encoders among the `pattern` files of `folder` (the shipped checkpoints; or a registry's
    run checkpoints with RUN_ENCODERS), by name."""
    found = []
    for path, meta in read_headers(folder, pattern):
        if _is_encoder(meta):
            epochs = int((meta.metrics.get("pretrain") or {}).get("epochs", 0) or 0)
            method = str(meta.metrics[ENCODER_TAG])
            found.append(Encoder(path, meta.name or path.stem, method, meta.model_config, meta.dataset, epochs))
    return found
