"""What a training tells the process that records it: a small typed vocabulary, one JSON object a line.

A run is trained somewhere (a worker's child process today; a remote executor later) and recorded by exactly one
writer, the worker that claimed it (or the CLI that trains it in its own process): the trainer never writes the
registry. Its callbacks produce these events (`vitdemo.runs.execute`), an executor carries them (the local one as
lines on the child's stdout, `encode`/`decode`), and `vitdemo.runs.record.Recorder` applies them to the registry.

The last event of a run is a `Result`, `Cancelled` or `Failed`; a run whose events stop without one ended
unexpectedly. A `Result` names the files the run made (`RunFile`): on the same disk the trainer has already
written them into the run's checkpoint folder, and `data` is None; a remote trainer sends their bytes instead.
No torch here.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import queue
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Started:
    """The run has its device and its model: where it trains ('cpu', 'cuda') and its size (None: not known yet)."""

    device: str
    num_params: int | None = None


@dataclass(frozen=True)
class Progress:
    """The latest step (a dict a page draws: step, total_steps, loss, images_per_s, eta_s, ... or a 'phase')."""

    progress: dict[str, Any]


@dataclass(frozen=True)
class Point:
    """A loss point (vitdemo.runs.points.POINT_COLUMNS) with the progress it was taken at, recorded together;
    past `keep_at_most` points the recorder thins the run's curve (vitdemo.runs.points.add_point)."""

    point: dict[str, float]
    progress: dict[str, Any]
    keep_at_most: int


@dataclass(frozen=True)
class Epoch:
    """An epoch's metrics (vitdemo.runs.store.EPOCH_COLUMNS)."""

    metrics: dict[str, float]


@dataclass(frozen=True)
class Watch:
    """The run's answers on its watched test images (vitdemo.training.watch.WatchRow.to_dict())."""

    row: dict[str, Any]


@dataclass(frozen=True)
class RunFile:
    """A file a run made, by its name in the run's checkpoint folder (vitdemo.runfiles): already there when
    `data` is None (the trainer shares the disk), else its bytes to write there."""

    name: str
    data: bytes | None = None

    @classmethod
    def sent(cls, path: Path) -> RunFile:
        """The file with its bytes, for a trainer that does not share the recorder's disk."""
        return cls(path.name, path.read_bytes())


@dataclass(frozen=True)
class Saved:
    """A file the run saved while it trains (its resume file, at an epoch's end) with its bytes: a remote
    trainer sends it so that a run stopped there can be resumed from the recorder's disk. A trainer that shares
    the disk never sends one."""

    file: RunFile


@dataclass(frozen=True)
class Result:
    """The run is done: its run columns (val_acc, test_acc, macro_f1, train_time_s, ...), its checkpoint, and any
    other file it made that must outlive it (a pretrain run's encoder)."""

    columns: dict[str, Any]
    checkpoint: RunFile
    others: tuple[RunFile, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Cancelled:
    """The trainer stopped on a cancel request."""

    train_time_s: float | None = None


@dataclass(frozen=True)
class Failed:
    """The run cannot go on: `error` says why, for the person who started it."""

    error: str


Event = Started | Progress | Point | Epoch | Watch | Saved | Result | Cancelled | Failed
_TYPES: dict[str, type] = {
    t.__name__.lower(): t for t in (Started, Progress, Point, Epoch, Watch, Saved, Result, Cancelled, Failed)
}


def _file_to_json(f: RunFile) -> dict[str, Any]:
    return {"name": f.name, "data": None if f.data is None else base64.b64encode(f.data).decode("ascii")}


def _file_from_json(d: dict[str, Any]) -> RunFile:
    return RunFile(str(d["name"]), None if d.get("data") is None else base64.b64decode(d["data"]))


def encode(event: Event) -> str:
    """One line of JSON (no newline inside): {"event": "progress", ...the fields}."""
    body = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    if isinstance(event, Result):
        body["checkpoint"] = _file_to_json(event.checkpoint)
        body["others"] = [_file_to_json(f) for f in event.others]
    if isinstance(event, Saved):
        body["file"] = _file_to_json(event.file)
    return json.dumps({"event": type(event).__name__.lower(), **body}, allow_nan=True)


def decode(line: str) -> Event:
    """The event `encode` wrote (ValueError for a line that is not one)."""
    try:
        body = json.loads(line)
        kind = _TYPES[body.pop("event")]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a run event: {line[:200]!r}") from exc
    if kind is Result:
        body["checkpoint"] = _file_from_json(body["checkpoint"])
        body["others"] = tuple(_file_from_json(f) for f in body.get("others", ()))
    if kind is Saved:
        body["file"] = _file_from_json(body["file"])
    try:
        return kind(**body)
    except TypeError as exc:
        raise ValueError(f"not a {kind.__name__} event: {line[:200]!r}") from exc


def drain(pending: queue.SimpleQueue[Event]) -> list[Event]:
    """Every event waiting in `pending`, at once (never waits for more): an `Execution.poll`."""
    out = []
    while not pending.empty():
        out.append(pending.get_nowait())
    return out
