"""Background training: a queue in the registry and a worker process that runs it.

The Streamlit script thread never trains. `submit` validates and queues a run; `ensure_worker` starts
`python -m vitdemo worker` (a separate process) unless one already holds the device's lock file; the
worker claims queued runs one at a time, streams progress into the registry and honours cancel requests.
A run whose worker dies is marked failed by the next `fail_orphans` (worker start or page load).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO

import torch

from vitdemo.checkpoints import make_meta, save_checkpoint
from vitdemo.config import ConfigError, TrainConfig
from vitdemo.data import load_dataset
from vitdemo.metrics import evaluate_predictions
from vitdemo.registry import Registry, Run, _pid_alive
from vitdemo.train import Callback, EpochInfo, StepInfo, TrainResult, resolve_device, train

PROGRESS_EVERY_S = 0.5  # how often a running job writes its progress (and checks for cancel)
DEFAULT_IDLE_EXIT_S = 300.0  # a worker waits this long for more runs before it exits
ENV_IDLE_EXIT = "VITDEMO_WORKER_IDLE_S"


def available_devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def default_run_name(config: TrainConfig) -> str:
    m = config.model
    shape = f"p{m.patch_size}-d{m.embed_dim}x{m.depth}" if m.kind == "vit" else f"w{m.width}x{m.depth}"
    return f"{m.kind}-{config.dataset}-{shape}-e{config.epochs}"


def submit(registry: Registry, config: TrainConfig) -> int:
    """Validate and queue a run. Raises ConfigError (nothing queued) for a bad config or device."""
    config.validate()
    try:
        device = resolve_device(config.device).type
    except RuntimeError as exc:
        raise ConfigError(str(exc)) from exc
    from vitdemo.models import build_model, count_parameters

    num_params = count_parameters(build_model(config.model))
    return registry.create_run(
        name=config.name or default_run_name(config),
        kind=config.model.kind,
        dataset=config.dataset,
        config=config.to_dict(),
        status="queued",
        device=device,
        num_params=num_params,
    )


class RegistryCallback(Callback):
    """Streams a run's progress into the registry, at most every PROGRESS_EVERY_S seconds per step."""

    def __init__(self, registry: Registry, run_id: int) -> None:
        self.registry, self.run_id, self._last = registry, run_id, 0.0

    def on_train_start(self, config: TrainConfig, total_steps: int, num_params: int, device: str) -> None:
        self.registry.update_run(self.run_id, device=device, num_params=num_params, heartbeat=time.time())

    def on_step(self, info: StepInfo) -> None:
        now = time.time()
        if now - self._last >= PROGRESS_EVERY_S or info.step == info.total_steps:
            self._last = now
            self.registry.update_run(self.run_id, progress=info.__dict__, heartbeat=now)

    def on_epoch(self, info: EpochInfo) -> None:
        self.registry.add_epoch(self.run_id, info.to_dict())
        self.registry.update_run(self.run_id, heartbeat=time.time())


def _throttled(check: Callable[[], bool], every_s: float) -> Callable[[], bool]:
    last, value = [0.0], [False]

    def wrapped() -> bool:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0], value[0] = now, check()
        return value[0]

    return wrapped


def execute_run(
    registry: Registry,
    run: Run,
    *,
    data_dir: str | None = None,
    extra_callbacks: tuple[Callback, ...] = (),
) -> TrainResult | None:
    """Train a claimed (running) run to its end: done with metrics and a checkpoint, cancelled, or failed."""
    try:
        config = TrainConfig.from_dict(run.config)
        data = load_dataset(
            config.dataset, data_dir, val_size=config.val_size, seed=config.seed, train_subset=config.train_subset
        )
        should_stop = _throttled(lambda: registry.cancel_requested(run.id), PROGRESS_EVERY_S)
        result = train(
            config, (RegistryCallback(registry, run.id), *extra_callbacks), data=data, should_stop=should_stop
        )
        if result.cancelled:
            registry.update_run(run.id, status="cancelled", finished_at=time.time(), train_time_s=result.train_time_s)
            return result
        report = evaluate_predictions(data.test.labels.numpy(), result.test_preds, len(data.classes))
        metrics = {
            "val_acc": result.val_acc,
            "test_acc": report.accuracy,
            "macro_f1": report.macro_f1,
            "train_time_s": result.train_time_s,
            "device": result.device,
            "num_params": result.num_params,
            "epochs": config.epochs,
            "best_epoch": result.best_epoch,
            "history": [e.to_dict() for e in result.history],  # a shipped copy keeps its curves on the leaderboard
        }
        meta = make_meta(config.model, config.dataset, metrics=metrics, train_config=config.to_dict(), name=run.name)
        path = save_checkpoint(registry.checkpoint_dir / f"run-{run.id}.safetensors", result.model, meta)
        registry.update_run(
            run.id,
            status="done",
            finished_at=time.time(),
            val_acc=result.val_acc,
            test_acc=report.accuracy,
            macro_f1=report.macro_f1,
            train_time_s=result.train_time_s,
            checkpoint=str(path.resolve()),
        )
        return result
    except Exception as exc:  # a failed run must end as failed, never stay "running"
        registry.update_run(run.id, status="failed", finished_at=time.time(), error=describe_error(exc))
        if os.environ.get("VITDEMO_DEBUG"):
            traceback.print_exc()
        return None


def describe_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text.lower():
        return f"out of memory: try a smaller batch size or model ({text.splitlines()[0]})"
    return f"{type(exc).__name__}: {text}"


# -- the worker process ------------------------------------------------------------------------------
def _lock_path(registry: Registry, device: str) -> Path:
    return registry.home / f"worker-{device}.lock"


def _pid_path(registry: Registry, device: str) -> Path:
    return registry.home / f"worker-{device}.pid"


def worker_running(registry: Registry, device: str = "cpu") -> bool:
    """True when a worker for `device` is alive: it holds the device's lock, or it was started and is
    still starting up (importing torch takes seconds, and a second worker must not be started meanwhile)."""
    path = _lock_path(registry, device)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    try:
        pid = int(_pid_path(registry, device).read_text().strip())
    except (OSError, ValueError):
        return False
    return _is_worker_process(pid)


def _is_worker_process(pid: int) -> bool:
    """The process is alive and (where /proc tells) is a vitdemo worker, not a stranger that reused the pid."""
    if not _pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"vitdemo" in cmdline and b"worker" in cmdline


def ensure_worker(
    registry: Registry, device: str = "cpu", data_dir: str | None = None, idle_exit_s: float | None = None
) -> bool:
    """Start a worker for `device` unless one is alive. Returns True when one was started.

    The worker exits after `idle_exit_s` idle seconds (default: $VITDEMO_WORKER_IDLE_S, else 300).
    Concurrent calls (several sessions, several server processes) start one worker between them.
    """
    registry.fail_orphans()
    if idle_exit_s is None:
        idle_exit_s = float(os.environ.get(ENV_IDLE_EXIT) or DEFAULT_IDLE_EXIT_S)
    cmd = [sys.executable, "-m", "vitdemo", "worker", "--home", str(registry.home), "--device", device]
    cmd += ["--idle-exit", str(idle_exit_s)]
    if data_dir:
        cmd += ["--data-dir", str(data_dir)]
    with open(registry.home / f"worker-{device}.spawn", "a") as spawn_lock:
        fcntl.flock(spawn_lock, fcntl.LOCK_EX)  # check-and-start is one step across processes
        if worker_running(registry, device):
            return False
        with open(registry.home / f"worker-{device}.log", "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives the Streamlit script run (and a restart of the server)
                cwd=Path(__file__).resolve().parent.parent,
            )
        _pid_path(registry, device).write_text(str(proc.pid))
    return True


def _acquire(lock: IO[str], wait_s: float) -> bool:
    """Take the lock exclusively, retrying for `wait_s`: a `worker_running` probe holds it for microseconds."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def run_worker(
    registry: Registry,
    device: str = "cpu",
    *,
    data_dir: str | None = None,
    idle_exit_s: float = DEFAULT_IDLE_EXIT_S,
) -> int:
    """Claim and execute queued runs for `device` until idle for `idle_exit_s`. Returns runs executed.

    One worker per device: the lock file `worker-<device>.lock` in the registry's home says who it is.
    """
    executed = 0
    with open(_lock_path(registry, device), "a") as lock:
        if not _acquire(lock, wait_s=1.0):
            return 0  # another worker has this device
        while True:
            try:
                executed += _work(registry, device, data_dir, idle_exit_s)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
            # A run queued while we were deciding to stop found the lock held and started no worker:
            # look once more after letting go, and carry on if there is one (unless another worker took over).
            if not registry.list_runs(status="queued", device=device) or not _acquire(lock, wait_s=0.0):
                return executed


def _work(registry: Registry, device: str, data_dir: str | None, idle_exit_s: float) -> int:
    executed, idle_since = 0, time.monotonic()
    registry.fail_orphans()
    while time.monotonic() - idle_since < idle_exit_s:
        run = registry.claim_next(os.getpid(), device)
        if run is None:
            time.sleep(0.25)
            continue
        execute_run(registry, run, data_dir=data_dir)
        executed += 1
        idle_since = time.monotonic()
    return executed
