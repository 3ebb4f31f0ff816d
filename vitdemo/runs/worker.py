"""The worker loop: claim queued runs for a device, execute them on an executor, and be the one writer of their
records. Whatever executes them (vitdemo.runs.executor: the local executor's child processes today), this loop:

- claims a run (a conditional update: no two workers take one) while the device has a free slot, and `start`s it;
- records the events the run sends (vitdemo.runs.record.Recorder): the training itself never writes the registry;
- keeps the heartbeat of every run it executes from a thread of its own (vitdemo.runs.record.Heartbeat), so a
  long phase without steps never looks dead;
- ends a run on a cancel request within about a second (it polls every CANCEL_POLL_S), a run that stops without
  saying how it ended is failed with its executor's reason;
- sweeps, when it starts and every SWEEP_EVERY_S: runs nobody works on any more are failed (their process is
  gone, or their heartbeat is stale: vitdemo.runs.claims.fail_orphans) and files no run accounts for are removed.

The worker process around it (a lock per device, started by the queue's wake) is the executor's:
`vitdemo.runs.local.run_worker`. No torch here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vitdemo import runfiles
from vitdemo.runs import events
from vitdemo.runs.claims import claim_next, fail_orphans
from vitdemo.runs.executor import Execution, Executor
from vitdemo.runs.record import Heartbeat, Recorder, best_effort, mark_failed
from vitdemo.runs.store import Registry, Run

CANCEL_POLL_S = 0.5  # how often the worker looks for a cancel request (and for events) while runs execute
IDLE_POLL_S = 0.25
SWEEP_EVERY_S = 30.0  # how often a busy worker looks for runs that lost their executor


@dataclass
class Executing:
    """A run this worker executes, and the recorder of its events."""

    run: Run
    execution: Execution
    recorder: Recorder


def work(registry: Registry, executor: Executor, device: str, *, idle_exit_s: float) -> int:
    """Claim runs for `device` while it has a free slot (`executor.capacity`), execute them, record them, and
    return the number that ended once nothing has run for `idle_exit_s`. A paused queue is claimed from by
    nobody: the worker waits."""
    ended, idle_since = 0, time.monotonic()
    swept = sweep(registry, executor)
    executing: list[Executing] = []
    with Heartbeat(registry) as heartbeat:
        try:
            while executing or time.monotonic() - idle_since < idle_exit_s:
                ended += _tend_all(registry, executing)
                heartbeat.set_runs(e.run.id for e in executing if e.execution.alive())
                slots = executor.capacity(device)  # a cluster's grows and shrinks with its nodes (0: unreachable)
                if len(executing) >= slots or not _start_next(registry, executor, device, executing):
                    time.sleep(min(IDLE_POLL_S, CANCEL_POLL_S))
                if executing:
                    idle_since = time.monotonic()
                if time.monotonic() - swept >= SWEEP_EVERY_S:
                    swept = sweep(registry, executor)
        finally:
            for e in executing:  # the worker itself is stopping (Ctrl-C, an error): take its runs along
                e.execution.cancel()
    return ended


def _start_next(registry: Registry, executor: Executor, device: str, executing: list[Executing]) -> bool:
    """Claim the next queued run and start it; False when there was none to claim."""
    run = best_effort(lambda: claim_next(registry, os.getpid(), device), None)
    if run is None:
        return False
    try:
        execution = executor.start(registry, run, device)
    except OSError as exc:
        mark_failed(registry, run.id, f"the training process could not be started: {exc}")
        return True
    executing.append(Executing(run, execution, Recorder(registry, run.id, run.worker_pid)))
    return True


def _tend_all(registry: Registry, executing: list[Executing]) -> int:
    """Record every run's new events, end those that stopped or were cancelled; returns how many ended."""
    done = [e for e in executing if tend(registry, e)]
    for e in done:
        executing.remove(e)
    return len(done)


def _record(e: Executing) -> None:
    for event in e.execution.poll():
        e.recorder(event)


def tend(registry: Registry, e: Executing) -> bool:
    """Record what the run sent; True once it has ended (recorded as done, cancelled or failed)."""
    _record(e)
    if e.execution.ended():
        if e.recorder.outcome is None:  # it stopped without saying how it ended
            e.recorder(events.Failed(e.execution.exit_error()))
    elif best_effort(lambda: registry.cancel_requested(e.run.id), False):
        e.execution.cancel()
        _record(e)  # what it sent before it stopped: a result that made it in time is kept
        if e.recorder.outcome is None:
            e.recorder(events.Cancelled())
    else:
        return False
    best_effort(lambda: remove_leftovers(registry, {e.run.id}), [])
    return True


def sweep(registry: Registry, executor: Executor) -> float:
    """Fail the runs nobody works on any more, then remove the files no run accounts for (leaving those of runs
    whose process may still be writing). Returns when it swept (time.monotonic())."""
    best_effort(lambda: fail_orphans(registry, alive=executor.run_alive), [])
    best_effort(lambda: remove_leftovers(registry, still_writing=lambda r: executor.run_alive(r) is True), [])
    return time.monotonic()


# -- files no run accounts for --------------------------------------------------------------------------------
def _is_leftover(path: Path, runs: dict[int, Run], only: set[int] | None) -> bool:
    if runfiles.is_tmp(path.name):
        run_id = runfiles.tmp_owner(path.name)
        run = runs.get(run_id) if run_id is not None else None
        in_scope = only is None or (run is not None and run.id in only)
        return in_scope and (run is None or run.status != "running")  # nobody is still writing it
    owner = runfiles.result_owner(path.name)
    if owner is not None:
        run_id, encoder = owner
        run = runs.get(run_id)
        in_scope = only is None or run_id in only
        if encoder and run is None:  # the encoder of a run that was deleted (delete removes run.checkpoint)
            return in_scope
        ended_without_it = run is not None and run.status in ("failed", "cancelled") and not run.checkpoint
        return ended_without_it and in_scope
    return False


def remove_leftovers(
    registry: Registry, run_ids: set[int] | None = None, still_writing: Callable[[Run], bool] | None = None
) -> list[Path]:
    """Delete files in the run checkpoint folder that no run accounts for (all runs, or those in `run_ids`):
    temporaries of runs no longer running (a training ended mid-write), a run's result files when it ended
    failed or cancelled, and the encoder of a run that was deleted (names: vitdemo.runfiles). The files of a
    run for which `still_writing` says True (its process lives on: it was given up on, yet may still finish)
    are left alone. Returns what was removed."""
    folder = registry.checkpoint_dir
    if not folder.is_dir():
        return []
    runs = {r.id: r for r in registry.list_runs()}
    spared = set() if still_writing is None else {i for i, r in runs.items() if r.active or still_writing(r)}
    removed = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and runfiles.run_of(path.name) not in spared and _is_leftover(path, runs, run_ids):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
