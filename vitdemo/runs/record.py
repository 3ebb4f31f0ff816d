"""The one writer of a run while it executes: `Recorder` applies the run's events (vitdemo.runs.events) to the
registry, and `Heartbeat` keeps the run's heartbeat from a thread of its own. No torch here.

The worker that claimed a run records it (its training child only produces events); the CLI, which trains its
run in its own process, records it the same way. Progress, points, epochs and watched answers are best effort:
a registry that is busy for a moment must not stop a training. The end is not: a result is recorded by one
conditional UPDATE (`Registry.finish_run`), and a recorder that loses a race (the run was cancelled or deleted
meanwhile) leaves every file alone; only a result that could not be written at all (a full disk) is removed,
with the run marked failed, so no file is left that no run accounts for.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from vitdemo import runfiles
from vitdemo.runs import events, points
from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.events import Event
from vitdemo.runs.store import Registry

HEARTBEAT_EVERY_S = 5.0  # a run's sign of life, whatever its training is doing (orphans: claims.DEFAULT_STALE_S)
T = TypeVar("T")


def log(message: str) -> None:
    """A line in the process's log (a worker's: $VITDEMO_HOME/worker-<device>.log)."""
    print(f"vitdemo: {message}", file=sys.stderr, flush=True)


def best_effort(call: Callable[[], T], default: T) -> T:
    """A registry call whose failure must not stop a training or a worker (progress, a cancel check, a
    heartbeat): on a RegistryError, say so in the log and return `default`."""
    try:
        return call()
    except RegistryError as exc:
        log(str(exc))
        return default


def mark_failed(registry: Registry, run_id: int, error: str, attempts: int = 3, wait_s: float = 0.5) -> bool:
    """Record a running run as failed, retrying a registry that is busy or briefly unwritable. False when it
    could not: the run stays running until a worker finds it has no heartbeat (vitdemo.runs.claims.fail_orphans)."""
    for attempt in range(attempts):
        try:
            registry.transition(run_id, "failed", only_from=("running",), finished_at=time.time(), error=error)
            return True
        except RegistryError as exc:
            log(f"run #{run_id} could not be marked failed: {exc}")
            time.sleep(wait_s * (attempt + 1))
    return False


class Recorder:
    """Applies run `run_id`'s events to `registry` on behalf of `worker_pid`, the process that claimed it.

    `outcome` is None until a final event was handled, then 'done', 'cancelled' or 'failed' as recorded, or 'lost'
    when the run had ended otherwise meanwhile (cancelled, deleted): then nothing of the result is written.
    """

    def __init__(self, registry: Registry, run_id: int, worker_pid: int | None) -> None:
        self.registry, self.run_id, self.worker_pid = registry, run_id, worker_pid
        self.outcome: str | None = None
        self._handlers: dict[type, Callable[..., None]] = {
            events.Started: self._started,
            events.Progress: self._progress,
            events.Point: self._point,
            events.Epoch: self._epoch,
            events.Watch: self._watch,
            events.Saved: self._saved,
            events.Result: self._result,
            events.Cancelled: self._cancelled,
            events.Failed: self._failed,
        }

    def __call__(self, event: Event) -> None:
        self._handlers[type(event)](event)

    # -- while it trains: best effort -------------------------------------------------------------------------
    def _started(self, event: events.Started) -> None:
        sizes = {} if event.num_params is None else {"num_params": event.num_params}
        best_effort(
            lambda: self.registry.update_run(self.run_id, device=event.device, heartbeat=time.time(), **sizes), None
        )

    def _progress(self, event: events.Progress) -> None:
        best_effort(lambda: self.registry.update_run(self.run_id, progress=event.progress, heartbeat=time.time()), None)

    def _point(self, event: events.Point) -> None:
        best_effort(
            lambda: points.add_point(self.registry, self.run_id, event.point, progress=event.progress,
                                     heartbeat=time.time(), keep_at_most=event.keep_at_most),
            None,
        )  # fmt: skip

    def _epoch(self, event: events.Epoch) -> None:
        best_effort(lambda: self.registry.add_epoch(self.run_id, event.metrics), None)

    def _watch(self, event: events.Watch) -> None:
        best_effort(lambda: points.set_watch(self.registry, self.run_id, event.row), None)

    def _saved(self, event: events.Saved) -> None:
        """A remote trainer's resume file: written into the run's checkpoint folder (only that one file)."""
        made = event.file
        if made.name != runfiles.name(self.run_id, runfiles.RESUME) or made.data is None:
            log(f"run #{self.run_id}: the training sent {made.name!r}, which is not its resume file: ignored")
            return
        try:
            runfiles.write_atomically(self.registry.checkpoint_dir / made.name, made.data)
        except OSError as exc:  # a full disk: the run trains on, it just cannot be resumed from this epoch
            log(f"run #{self.run_id}: its resume file could not be written: {exc}")

    # -- how it ended ------------------------------------------------------------------------------------------
    def _place(self, made: events.RunFile) -> Path:
        """The file in the run's checkpoint folder, written there first when its bytes were sent."""
        owner = runfiles.result_owner(made.name)
        if owner is None or owner[0] != self.run_id:
            raise ValueError(f"the training sent {made.name!r}, which is not a file of run #{self.run_id}")
        target = self.registry.checkpoint_dir / made.name
        if made.data is not None:
            runfiles.write_atomically(target, made.data)
        elif not target.is_file():
            raise FileNotFoundError(f"the training's checkpoint {made.name} is not in the run checkpoint folder")
        return target

    def _result(self, event: events.Result) -> None:
        placed: list[Path] = []
        try:
            for made in (event.checkpoint, *event.others):
                placed.append(self._place(made))
            won = self.registry.finish_run(
                self.run_id, self.worker_pid, finished_at=time.time(), checkpoint=str(placed[0].resolve()),
                **event.columns,
            )  # fmt: skip
        except (RegistryError, OSError, ValueError) as exc:
            self._unrecorded(placed, exc)
            return
        self.outcome = "done" if won else "lost"
        if not won:  # cancelled or deleted meanwhile: what is left of it is the sweep's to judge, not ours
            log(f"run #{self.run_id} had already ended: its result was not recorded")

    def _unrecorded(self, placed: list[Path], exc: Exception) -> None:
        """A result that could not be written (not a lost race): its files go, and the run fails saying why (a
        failure mid-training keeps its resume file; one at the very end had nothing left to resume)."""
        for path in (*placed, runfiles.path(self.registry.checkpoint_dir, self.run_id, runfiles.RESUME)):
            path.unlink(missing_ok=True)
        error = f"the result could not be recorded, so its checkpoint was removed: {type(exc).__name__}: {exc}"
        mark_failed(self.registry, self.run_id, error)
        self.outcome = "failed"

    def _cancelled(self, event: events.Cancelled) -> None:
        def cancel() -> bool:
            return self.registry.transition(self.run_id, "cancelled", only_from=("running",),
                                            finished_at=time.time(), train_time_s=event.train_time_s)  # fmt: skip

        self.outcome = "cancelled" if best_effort(cancel, False) else "lost"

    def _failed(self, event: events.Failed) -> None:
        mark_failed(self.registry, self.run_id, event.error)
        self.outcome = "failed"


class Heartbeat:
    """Beats the heartbeat of the runs a process executes every `every_s`, from a thread of its own: whatever
    the process is doing (a long step, scoring a big transfer model, fitting an SVM, a busy registry write),
    its runs never look dead to an orphan sweep. Use as a context manager; `runs` can change while it beats."""

    def __init__(self, registry: Registry, runs: Iterable[int] = (), every_s: float | None = None) -> None:
        self.registry = registry
        self.every_s = HEARTBEAT_EVERY_S if every_s is None else every_s
        self._runs = frozenset(runs)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def set_runs(self, runs: Iterable[int]) -> None:
        self._runs = frozenset(runs)  # one assignment: the thread reads either the old set or the new one

    def _beat(self) -> None:
        while not self._stop.wait(self.every_s):
            self._beat_once(self._runs)

    def _beat_once(self, runs: frozenset[int]) -> None:
        if runs:
            best_effort(lambda: self.registry.beat(runs), 0)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)  # a beat waiting on a locked registry is not waited for
