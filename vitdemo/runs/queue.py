"""The training queue on top of the store: submit, claim, cancel, and recovery of runs whose worker died.

Every state change is a conditional update (`... WHERE id = ? AND status = 'queued'`), so two workers, or a
worker and a CLI, can never both take a run, and a result written meanwhile is never overwritten.
Torch is imported only where a config is checked (`submit`, `start_run`) or the devices are listed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

from vitdemo.config import ConfigError, TrainConfig
from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.store import Registry, Run

DEFAULT_STALE_S = 300.0  # a running run with no heartbeat for this long has lost its worker
T = TypeVar("T")


def available_devices() -> list[str]:
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def default_run_name(config: TrainConfig) -> str:
    m = config.model
    shape = f"p{m.patch_size}-d{m.embed_dim}x{m.depth}" if m.kind == "vit" else f"w{m.width}x{m.depth}"
    return f"{m.kind}-{config.dataset}-{shape}-e{config.epochs}"


def _run_fields(config: TrainConfig) -> dict[str, Any]:
    """Validate `config` (ConfigError for a bad config or device) and describe it as run columns."""
    config.validate()
    from vitdemo.models import build_model, count_parameters
    from vitdemo.train import resolve_device

    try:
        device = resolve_device(config.device).type
    except RuntimeError as exc:
        raise ConfigError(str(exc)) from exc
    return {
        "name": config.name or default_run_name(config),
        "kind": config.model.kind,
        "dataset": config.dataset,
        "config": config.to_dict(),
        "device": device,
        "num_params": count_parameters(build_model(config.model)),
    }


def submit(store: Registry, config: TrainConfig) -> int:
    """Validate and queue a run for a worker. Raises ConfigError (nothing queued) for a bad config or device."""
    return store.create_run(**_run_fields(config), status="queued")


def start_run(store: Registry, config: TrainConfig, pid: int) -> int:
    """Validate and record a run that process `pid` trains itself (the CLI). It is created running, owned by
    `pid`, in one insert: no worker can ever claim it, so it is trained exactly once."""
    now = time.time()
    return store.create_run(**_run_fields(config), status="running", started_at=now, worker_pid=pid, heartbeat=now)


def claim(store: Registry, run_id: int, pid: int) -> Run | None:
    """Move run `run_id` from queued to running for worker `pid`; None when it was no longer queued."""
    now = time.time()
    if not store.transition(run_id, "running", only_from=("queued",), started_at=now, worker_pid=pid, heartbeat=now):
        return None
    return store.get_run(run_id)


def claim_next(store: Registry, pid: int, device: str | None = None) -> Run | None:
    """Claim the oldest queued run (for `device`, if given); None when there is none left to take."""
    for run in store.list_runs(status="queued", device=device):
        claimed = claim(store, run.id, pid)
        if claimed is not None:
            return claimed
    return None


def request_cancel(store: Registry, run_id: int) -> str:
    """Queued runs are cancelled at once; running ones are flagged and their worker stops them within about
    a second. Returns the status after the request (RunNotFound for an unknown run)."""
    for _ in range(5):  # the run may be claimed between the read and the conditional write: look again
        status = store.get_run(run_id).status
        if status == "queued" and store.transition(run_id, "cancelled", only_from=("queued",), finished_at=time.time()):
            return "cancelled"
        if status == "running":
            store.update_run(run_id, cancel_requested=1)
            return store.get_run(run_id).status
        if status not in ("queued", "running"):
            return status
    return store.get_run(run_id).status


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped) still answers kill(0): check /proc where there is one
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _orphan_error(run: Run, now: float, alive: set[int] | None, stale_s: float) -> str | None:
    """Why a running run has lost its worker, or None while the worker is alive and reporting."""
    dead = run.worker_pid is None or not pid_alive(run.worker_pid)
    if alive is not None:
        dead = dead or run.worker_pid not in alive
    if dead:
        return "the training worker stopped unexpectedly (killed or crashed) during this run"
    if run.heartbeat is None or now - run.heartbeat > stale_s:
        return f"the training worker sent no progress for over {stale_s:.0f} s and was given up on"
    return None


def fail_orphans(store: Registry, alive: set[int] | None = None, stale_s: float = DEFAULT_STALE_S) -> list[int]:
    """Mark running runs whose worker is gone (dead pid, or no heartbeat for `stale_s`) as failed.

    Reads only, unless there is an orphan. The update is conditional (still running, same worker), so a run
    that finished between the listing and the check keeps its result.
    """
    now, failed = time.time(), []
    for run in store.list_runs(status="running"):
        error = _orphan_error(run, now, alive, stale_s)
        if error and store.transition(
            run.id, "failed", only_from=("running",), worker_pid_is=run.worker_pid, finished_at=now, error=error
        ):
            failed.append(run.id)
    return failed


def best_effort(call: Callable[[], T], default: T) -> T:
    """A registry call whose failure must not stop a training or a worker (progress, a cancel check, a
    heartbeat): on a RegistryError, say so on stderr (the worker's log) and return `default`."""
    try:
        return call()
    except RegistryError as exc:
        print(f"vitdemo: {exc}", file=sys.stderr, flush=True)
        return default


def mark_failed(registry: Registry, run_id: int, error: str, attempts: int = 3, wait_s: float = 0.5) -> bool:
    """Record a running run as failed, retrying a registry that is busy or briefly unwritable. False when it
    could not: the run stays running until the worker, or the next worker start, finds its process gone."""
    for attempt in range(attempts):
        try:
            registry.transition(run_id, "failed", only_from=("running",), finished_at=time.time(), error=error)
            return True
        except RegistryError as exc:
            print(f"vitdemo: run #{run_id} could not be marked failed: {exc}", file=sys.stderr, flush=True)
            time.sleep(wait_s * (attempt + 1))
    return False
