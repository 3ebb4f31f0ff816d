"""What whoever executes runs does with the queue: claim the next queued run, and give up on runs that nobody
executes any more. Neutral about executors (the worker and the local executor import it; it imports neither),
so the queue can wake an executor without an import cycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vitdemo.runs.store import PAUSED_KEY, Registry, Run

DEFAULT_STALE_S = 300.0  # a running run with no heartbeat for this long has lost whoever executed it


def queue_device(worker_device: str) -> str:
    """The runs a worker takes: 'cuda:1' -> 'cuda' (every GPU's worker takes the queued CUDA runs)."""
    return worker_device.split(":", 1)[0]


def claim(store: Registry, run_id: int, pid: int) -> Run | None:
    """Move run `run_id` from queued to running for worker `pid`; None when it was no longer queued, or the
    teacher has paused the queue (checked in the same conditional update)."""
    now = time.time()
    if not store.transition(
        run_id, "running", only_from=("queued",), unless_paused=True, started_at=now, worker_pid=pid, heartbeat=now
    ):
        return None
    return store.get_run(run_id)


def claim_next(store: Registry, pid: int, device: str | None = None) -> Run | None:
    """Claim the oldest queued run (for `device`, if given: 'cuda:N' takes 'cuda' runs); None when there is
    none left to take or the queue is paused."""
    if is_paused(store):
        return None
    for run in store.list_runs(status="queued", device=queue_device(device) if device else None):
        claimed = claim(store, run.id, pid)
        if claimed is not None:
            return claimed
    return None


def is_paused(store: Registry) -> bool:
    return store.get_setting(PAUSED_KEY) == "1"


def _orphan_error(run: Run, now: float, alive: bool | None, stale_s: float) -> tuple[str, float | None] | None:
    """Why a running run has lost whoever executed it, with the heartbeat cut-off the verdict relies on (None
    when it relies on none), or None while it is alive and beating."""
    if alive is False:
        return "the training worker stopped unexpectedly (killed or crashed) during this run", None
    if run.heartbeat is None or now - run.heartbeat > stale_s:
        return f"the training worker sent no progress for over {stale_s:.0f} s and was given up on", now - stale_s
    return None


def fail_orphans(
    store: Registry,
    *,
    alive: Callable[[Run], bool | None] = lambda run: None,
    stale_s: float = DEFAULT_STALE_S,
) -> list[int]:
    """Mark running runs that nobody works on any more as failed: those whose executor says their process is
    gone (`alive(run)` is False: vitdemo.runs.executor.Executor.run_alive), and those with no heartbeat for
    `stale_s` (whoever executes a run beats it from a thread of its own, so a silent run has lost it). Called by
    workers, never by a page.

    Reads only, unless there is an orphan. Each verdict is one conditional update (still running, same worker,
    and for a stale run a heartbeat still older than the cut-off), so a run that finished or beat between the
    listing and the update is left alone; and should a run given up on finish after all, it keeps its result
    (`Registry.finish_run`).
    """
    now, failed = time.time(), []
    for run in store.list_runs(status="running"):
        verdict = _orphan_error(run, now, alive(run), stale_s)
        if verdict is None:
            continue
        error, cutoff = verdict
        if store.transition(
            run.id, "failed", only_from=("running",), worker_pid_is=run.worker_pid, heartbeat_before=cutoff,
            finished_at=now, error=error,
        ):  # fmt: skip
            failed.append(run.id)
    return failed
