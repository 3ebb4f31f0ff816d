"""Shipped checkpoints as finished "baseline" runs, so they sit on the leaderboard beside the trained ones."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vitdemo.checkpoints import CheckpointError, CheckpointMeta, read_meta
from vitdemo.runs.store import NewRun, Registry


def read_headers(checkpoint_dir: str | os.PathLike) -> list[tuple[Path, CheckpointMeta]]:
    """(path, header) of every readable `*.safetensors` in the folder, by name; a file whose header cannot be
    read is skipped here (it is reported where it is loaded)."""
    found = []
    for path in sorted(Path(checkpoint_dir).glob("*.safetensors")):
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
        "num_params": m.get("num_params"),
        "epochs_done": int(m.get("epochs", 0) or 0),
        "val_acc": m.get("val_acc"),
        "test_acc": m.get("test_acc"),
        "macro_f1": m.get("macro_f1"),
        "train_time_s": m.get("train_time_s"),
        "checkpoint": str(path.resolve()),
        "finished_at": path.stat().st_mtime,
    }
    epochs = [row for row in m.get("history") or [] if isinstance(row, dict) and "epoch" in row]
    return NewRun(fields, epochs)


def sync_baselines(store: Registry, checkpoint_dir: str | os.PathLike) -> list[int]:
    """Register every shipped checkpoint in `checkpoint_dir` once, as a finished baseline run. Returns new ids.

    Reads first and writes only when a file is new, so it works on a read-only registry that is up to date;
    idempotent also when several processes sync at once (the store re-checks inside its transaction).
    """
    found = read_headers(checkpoint_dir)
    if not found:
        return []
    known = store.baseline_checkpoints()
    new = [baseline_run(path, meta) for path, meta in found if str(path.resolve()) not in known]
    return store.add_baselines(new) if new else []
