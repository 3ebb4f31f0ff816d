"""The training worker: a process that claims queued runs and trains each one in a child process it can end.

The Streamlit script thread never trains. `queue.submit` queues a run; `ensure_worker` starts
`python -m vitdemo worker` (one per device, held by a lock file: 'cpu', and 'cuda:N' for every visible GPU,
see `ensure_workers`) unless one is alive. A CPU worker trains one run at a time; a GPU's trains up to
$VITDEMO_RUNS_PER_GPU at once (`runs_per_device`), each child seeing only its worker's GPU. The worker claims a run
and starts `python -m vitdemo worker --execute <id>`, a child that trains it (`vitdemo.runs.execute`), streams
progress into the registry and records the result. The worker polls the run every `CANCEL_POLL_S` and terminates
the child on a cancel request, so a cancel takes effect within about a second even in a long step. The worker
never imports torch: between runs it holds no model and no framework (both go with the child). A run whose
child or worker dies ends failed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from vitdemo.paths import REPO_ROOT
from vitdemo.runs.queue import best_effort, claim_next, fail_orphans, is_paused, mark_failed, pid_alive, queue_device
from vitdemo.runs.store import Registry, Run

CANCEL_POLL_S = 0.5  # how often the worker looks for a cancel request while its child trains
HEARTBEAT_EVERY_S = 5.0  # the worker's sign of life on the run while a (possibly long) step runs
STOP_GRACE_S = 2.0  # after SIGTERM, the child gets this long before SIGKILL
IDLE_POLL_S = 0.25
DEFAULT_IDLE_EXIT_S = 300.0  # a worker waits this long for more runs before it exits
ENV_IDLE_EXIT = "VITDEMO_WORKER_IDLE_S"
ENV_RUNS_PER_GPU = "VITDEMO_RUNS_PER_GPU"
DEFAULT_RUNS_PER_GPU = 2
# A run's files: run-7.safetensors (a network), run-7.skops (a classic model), run-7-encoder.safetensors (the
# encoder a pretrain run made); the temporary files save_checkpoint and save_classic write them through.
_TMP_NAME = re.compile(r"^\.run-(\d+)(?:-encoder)?\.(?:safetensors|skops)\..*\.tmp$")
_CKPT_NAME = re.compile(r"^run-(\d+)(-encoder)?\.(?:safetensors|skops)$")


# -- one run, seen from the worker --------------------------------------------------------------------------
def child_command(registry: Registry, run_id: int, data_dir: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "vitdemo", "worker", "--home", str(registry.home), "--execute", str(run_id)]
    return cmd + (["--data-dir", str(data_dir)] if data_dir else [])


def _stop(child: subprocess.Popen) -> None:
    child.terminate()  # SIGTERM ends Python at once, also inside a long torch operation
    try:
        child.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


@dataclass
class Child:
    """A training child process and the run it trains."""

    run: Run
    proc: subprocess.Popen
    last_beat: float = field(default_factory=time.monotonic)


def start_child(registry: Registry, run: Run, data_dir: str | None = None, device: str = "cpu") -> Child:
    """Start training a claimed run in a child process on `device` (a worker's: 'cpu', 'cuda' or 'cuda:N')."""
    proc = subprocess.Popen(
        child_command(registry, run.id, data_dir), stdin=subprocess.DEVNULL, cwd=REPO_ROOT, env=child_env(device)
    )
    return Child(run, proc)


def check_child(registry: Registry, child: Child) -> str | None:
    """None while the child trains (beating the run's heartbeat); its run's final status once it has ended, or
    once a cancel request has ended it."""
    if child.proc.poll() is not None:
        return _finish(registry, child, cancelled=False)
    if best_effort(lambda: registry.cancel_requested(child.run.id), False):
        _stop(child.proc)
        return _finish(registry, child, cancelled=True)
    if time.monotonic() - child.last_beat >= HEARTBEAT_EVERY_S:
        child.last_beat = time.monotonic()
        best_effort(lambda: registry.update_run(child.run.id, heartbeat=time.time()), None)
    return None


def _exit_error(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return (
            f"the training process was killed (signal {-returncode}), most likely because the machine ran out "
            "of memory: try a smaller batch size or model"
        )
    return f"the training process ended unexpectedly (exit status {returncode}); see the worker's log"


def _finish(registry: Registry, child: Child, *, cancelled: bool) -> str:
    run_id = child.run.id
    if cancelled:
        best_effort(
            lambda: registry.transition(run_id, "cancelled", only_from=("running",), finished_at=time.time()), 0
        )
    elif best_effort(lambda: registry.get_run(run_id).status, "running") == "running":
        mark_failed(registry, run_id, _exit_error(child.proc.returncode))
    best_effort(lambda: remove_leftovers(registry, {run_id}), [])
    return best_effort(lambda: registry.get_run(run_id).status, "running")


def supervise_run(
    registry: Registry, run: Run, *, data_dir: str | None = None, poll_s: float = CANCEL_POLL_S, device: str = "cpu"
) -> str:
    """Train a claimed run in a child process and watch it: a cancel request ends the child at once, a child
    that dies leaves the run failed. Returns the run's final status."""
    child = start_child(registry, run, data_dir, device)
    try:
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(timeout=poll_s)  # returns as soon as the child ends
            status = check_child(registry, child)
            if status is not None:
                return status
    finally:
        if child.proc.poll() is None:  # the worker itself is stopping (Ctrl-C, an error): take the child along
            _stop(child.proc)


# -- devices and how many runs share one ----------------------------------------------------------------------
def runs_per_device(device: str, environ: Mapping[str, str] | None = None) -> int:
    """How many runs a worker trains at once: one on the CPU (two would only halve each other's speed); on a
    GPU, $VITDEMO_RUNS_PER_GPU (default 2: a small MNIST model leaves most of a GPU idle)."""
    if queue_device(device) != "cuda":
        return 1
    raw = (environ if environ is not None else os.environ).get(ENV_RUNS_PER_GPU, "").strip()
    if not raw:
        return DEFAULT_RUNS_PER_GPU
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{ENV_RUNS_PER_GPU} must be a whole number of runs, at least 1; got {raw!r}")
    return int(raw)


def worker_devices(device: str, gpu_count: int) -> list[str]:
    """The workers a queued run's device needs: 'cpu' -> ['cpu']; 'cuda' -> one per visible GPU."""
    if queue_device(device) != "cuda":
        return [device]
    return [f"cuda:{i}" for i in range(gpu_count)] if gpu_count > 0 else ["cuda"]


def child_env(device: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The training child's environment: a 'cuda:N' worker's child sees only GPU N (as its cuda:0), counted
    among the GPUs this server may use ($CUDA_VISIBLE_DEVICES, if set)."""
    env = dict(environ if environ is not None else os.environ)
    if device.startswith("cuda:"):
        index = int(device.split(":", 1)[1])
        visible = [d.strip() for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
        env["CUDA_VISIBLE_DEVICES"] = visible[index] if index < len(visible) else str(index)
    return env


def _is_leftover(path: Path, runs: dict[int, Run], only: set[int] | None) -> bool:
    tmp, ckpt = _TMP_NAME.match(path.name), _CKPT_NAME.match(path.name)
    if path.name.startswith(".") and path.name.endswith(".tmp"):
        run = runs.get(int(tmp.group(1))) if tmp else None
        in_scope = only is None or (run is not None and run.id in only)
        return in_scope and (run is None or run.status != "running")  # nobody is still writing it
    if ckpt:
        run_id = int(ckpt.group(1))
        run = runs.get(run_id)
        in_scope = only is None or run_id in only
        if ckpt.group(2) and run is None:  # the encoder of a run that was deleted (delete removes run.checkpoint)
            return in_scope
        ended_without_it = run is not None and run.status in ("failed", "cancelled") and not run.checkpoint
        return ended_without_it and in_scope
    return False


def remove_leftovers(registry: Registry, run_ids: set[int] | None = None) -> list[Path]:
    """Delete files in the run checkpoint folder that no run accounts for (all runs, or those in `run_ids`):
    temporary `.run-*.tmp` files of runs no longer running (a training ended mid-write), a run's files
    (`run-<id>.safetensors`, `.skops`, `-encoder.safetensors`) when it ended failed or cancelled, and the encoder
    of a run that was deleted. Returns what was removed."""
    folder = registry.checkpoint_dir
    if not folder.is_dir():
        return []
    runs = {r.id: r for r in registry.list_runs()}
    removed = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and _is_leftover(path, runs, run_ids):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


# -- the worker process -------------------------------------------------------------------------------------
def _lock_path(registry: Registry, device: str) -> Path:
    return registry.home / f"worker-{device}.lock"


def _pid_path(registry: Registry, device: str) -> Path:
    return registry.home / f"worker-{device}.pid"


def worker_running(registry: Registry, device: str = "cpu") -> bool:
    """True when a worker for `device` is alive: it holds the device's lock, or it was started and is
    still starting up (importing torch takes seconds, and a second worker must not be started meanwhile)."""
    path = _lock_path(registry, device)
    if not path.parent.is_dir():
        return False
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
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"vitdemo" in cmdline and b"worker" in cmdline


def ensure_workers(registry: Registry, device: str, gpu_count: int, data_dir: str | None = None) -> list[str]:
    """Make sure the workers for a queued run's `device` are alive: the CPU's, or one per visible GPU.
    Returns the devices whose worker was started now."""
    return [d for d in worker_devices(device, gpu_count) if ensure_worker(registry, d, data_dir)]


def ensure_worker(
    registry: Registry, device: str = "cpu", data_dir: str | None = None, idle_exit_s: float | None = None
) -> bool:
    """Start a worker for `device` unless one is alive. Returns True when one was started.

    The worker exits after `idle_exit_s` idle seconds (default: $VITDEMO_WORKER_IDLE_S, else 300).
    Concurrent calls (several sessions, several server processes) start one worker between them.
    """
    fail_orphans(registry)
    if idle_exit_s is None:
        idle_exit_s = float(os.environ.get(ENV_IDLE_EXIT) or DEFAULT_IDLE_EXIT_S)
    cmd = [sys.executable, "-m", "vitdemo", "worker", "--home", str(registry.home), "--device", device]
    cmd += ["--idle-exit", str(idle_exit_s)]
    if data_dir:
        cmd += ["--data-dir", str(data_dir)]
    registry.home.mkdir(parents=True, exist_ok=True)
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
                cwd=REPO_ROOT,
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
    registry.home.mkdir(parents=True, exist_ok=True)
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
            # (A paused queue is left alone: the page that resumes it starts a worker for what is queued.)
            queued = registry.list_runs(status="queued", device=queue_device(device))
            if not queued or is_paused(registry) or not _acquire(lock, wait_s=0.0):
                return executed


def _reap(registry: Registry, children: list[Child]) -> int:
    """Check every child (cancel requests, heartbeats); drop those that have ended. Returns how many ended."""
    ended = [child for child in children if check_child(registry, child) is not None]
    for child in ended:
        children.remove(child)
    return len(ended)


def _work(registry: Registry, device: str, data_dir: str | None, idle_exit_s: float) -> int:
    """Claim runs while this device has a free slot (`runs_per_device`), watch the children, and return once
    nothing has run for `idle_exit_s`. A paused queue is claimed from by nobody: the worker waits."""
    executed, idle_since, slots = 0, time.monotonic(), runs_per_device(device)
    fail_orphans(registry)  # runs of a worker that died: failed, and then their files are leftovers
    remove_leftovers(registry)
    children: list[Child] = []
    try:
        while children or time.monotonic() - idle_since < idle_exit_s:
            executed += _reap(registry, children)
            run = None
            if len(children) < slots:
                run = best_effort(lambda: claim_next(registry, os.getpid(), device), None)
            if run is not None:
                children.append(start_child(registry, run, data_dir, device))
            elif children:
                time.sleep(min(IDLE_POLL_S, CANCEL_POLL_S))
            else:
                time.sleep(IDLE_POLL_S)
            if children:
                idle_since = time.monotonic()
    finally:
        for child in children:  # the worker itself is stopping (Ctrl-C, an error): take the children along
            if child.proc.poll() is None:
                _stop(child.proc)
    return executed
