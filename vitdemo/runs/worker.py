"""The training worker: a process that claims queued runs and trains each one in a child process it can end.

The Streamlit script thread never trains. `queue.submit` queues a run; `ensure_worker` starts
`python -m vitdemo worker` (one per device, held by a lock file) unless one is alive. The worker claims a run
and starts `python -m vitdemo worker --execute <id>`, a child that trains it (`vitdemo.runs.execute`), streams
progress into the registry and records the result. The worker polls the run every `CANCEL_POLL_S` and terminates
the child on a cancel request, so a cancel takes effect within about a second even in a long step. The worker
never imports torch: between runs it holds no model and no framework (both go with the child). A run whose
child or worker dies ends failed.
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from vitdemo.paths import REPO_ROOT
from vitdemo.runs.queue import best_effort, claim_next, fail_orphans, mark_failed, pid_alive
from vitdemo.runs.store import Registry, Run

CANCEL_POLL_S = 0.5  # how often the worker looks for a cancel request while its child trains
HEARTBEAT_EVERY_S = 5.0  # the worker's sign of life on the run while a (possibly long) step runs
STOP_GRACE_S = 2.0  # after SIGTERM, the child gets this long before SIGKILL
IDLE_POLL_S = 0.25
DEFAULT_IDLE_EXIT_S = 300.0  # a worker waits this long for more runs before it exits
ENV_IDLE_EXIT = "VITDEMO_WORKER_IDLE_S"
_TMP_NAME = re.compile(r"^\.run-(\d+)\.safetensors\..*\.tmp$")  # save_checkpoint's temporary file
_CKPT_NAME = re.compile(r"^run-(\d+)\.safetensors$")


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


def _watch(registry: Registry, run_id: int, child: subprocess.Popen, poll_s: float) -> bool:
    """Wait for the child, ending it on a cancel request (True) and beating the run's heartbeat meanwhile."""
    last_beat = time.monotonic()
    while True:
        try:
            child.wait(timeout=poll_s)
            return False
        except subprocess.TimeoutExpired:
            pass
        if best_effort(lambda: registry.cancel_requested(run_id), False):
            _stop(child)
            return True
        if time.monotonic() - last_beat >= HEARTBEAT_EVERY_S:
            last_beat = time.monotonic()
            best_effort(lambda: registry.update_run(run_id, heartbeat=time.time()), None)


def _exit_error(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return (
            f"the training process was killed (signal {-returncode}), most likely because the machine ran out "
            "of memory: try a smaller batch size or model"
        )
    return f"the training process ended unexpectedly (exit status {returncode}); see the worker's log"


def supervise_run(registry: Registry, run: Run, *, data_dir: str | None = None, poll_s: float = CANCEL_POLL_S) -> str:
    """Train a claimed run in a child process and watch it: a cancel request ends the child at once, a child
    that dies leaves the run failed. Returns the run's final status."""
    child = subprocess.Popen(child_command(registry, run.id, data_dir), stdin=subprocess.DEVNULL, cwd=REPO_ROOT)
    cancelled = False
    try:
        cancelled = _watch(registry, run.id, child, poll_s)
    finally:
        if child.poll() is None:  # the worker itself is stopping (Ctrl-C, an error): take the child along
            _stop(child)
    if cancelled:
        best_effort(
            lambda: registry.transition(run.id, "cancelled", only_from=("running",), finished_at=time.time()), 0
        )
    elif best_effort(lambda: registry.get_run(run.id).status, "running") == "running":
        mark_failed(registry, run.id, _exit_error(child.returncode))
    best_effort(lambda: remove_leftovers(registry, {run.id}), [])
    return best_effort(lambda: registry.get_run(run.id).status, "running")


def _is_leftover(path: Path, runs: dict[int, Run], only: set[int] | None) -> bool:
    tmp, ckpt = _TMP_NAME.match(path.name), _CKPT_NAME.match(path.name)
    if path.name.startswith(".") and path.name.endswith(".tmp"):
        run = runs.get(int(tmp.group(1))) if tmp else None
        in_scope = only is None or (run is not None and run.id in only)
        return in_scope and (run is None or run.status != "running")  # nobody is still writing it
    if ckpt:
        run = runs.get(int(ckpt.group(1)))
        ended_without_it = run is not None and run.status in ("failed", "cancelled") and not run.checkpoint
        return ended_without_it and (only is None or run.id in only)
    return False


def remove_leftovers(registry: Registry, run_ids: set[int] | None = None) -> list[Path]:
    """Delete files in the run checkpoint folder that no run accounts for (all runs, or those in `run_ids`):
    temporary `.run-*.tmp` files of runs no longer running (a training ended mid-write) and `run-<id>.safetensors`
    of runs that ended failed or cancelled. Returns what was removed."""
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
            if not registry.list_runs(status="queued", device=device) or not _acquire(lock, wait_s=0.0):
                return executed


def _work(registry: Registry, device: str, data_dir: str | None, idle_exit_s: float) -> int:
    executed, idle_since = 0, time.monotonic()
    fail_orphans(registry)  # runs of a worker that died: failed, and then their files are leftovers
    remove_leftovers(registry)
    while time.monotonic() - idle_since < idle_exit_s:
        run = best_effort(lambda: claim_next(registry, os.getpid(), device), None)
        if run is None:
            time.sleep(IDLE_POLL_S)
            continue
        supervise_run(registry, run, data_dir=data_dir)
        executed += 1
        idle_since = time.monotonic()
    return executed
