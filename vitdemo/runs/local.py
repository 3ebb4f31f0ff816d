"""The local executor: a worker process per device of this machine, and a child process per run.

`wake` (called by the queue when a run is queued) starts `python -m vitdemo worker --device D` unless one is
alive: one per device, held by a lock file ('cpu', and 'cuda:N' for every visible GPU). The worker
(`run_worker`, the loop itself is vitdemo.runs.worker's) claims runs and `start`s each in a child process,
`python -m vitdemo worker --execute <id>` (vitdemo.runs.execute), that sees only its worker's GPU
(CUDA_VISIBLE_DEVICES) and sends its events as JSON lines on its stdout; the worker records them. A cancel ends
the child at once (SIGTERM), also inside a long step. A CPU worker trains one run at a time; a GPU's trains up
to $VITDEMO_RUNS_PER_GPU at once. The worker never imports torch: between runs it holds no model and no
framework (both go with the child). Only `devices` imports torch, to describe the machine.
"""

from __future__ import annotations

import fcntl
import functools
import os
import queue as stdqueue
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from vitdemo import paths
from vitdemo.paths import REPO_ROOT
from vitdemo.runs import events, worker
from vitdemo.runs.claims import is_paused, queue_device
from vitdemo.runs.events import Event
from vitdemo.runs.executor import Device, Executor
from vitdemo.runs.record import log
from vitdemo.runs.store import Registry, Run

STOP_GRACE_S = 2.0  # after SIGTERM, the child gets this long before SIGKILL
READ_GRACE_S = 2.0  # after the child exits, its last events get this long to be read
WAKE_RETRY_S = 10.0  # a process starts a device's worker at most this often unless forced (one that crashes
# at start must not be restarted every second by every open page)
DEFAULT_IDLE_EXIT_S = 300.0  # a worker waits this long for more runs before it exits
ENV_IDLE_EXIT = "VITDEMO_WORKER_IDLE_S"
ENV_RUNS_PER_GPU = "VITDEMO_RUNS_PER_GPU"
DEFAULT_RUNS_PER_GPU = 2


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


def _ram_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


@functools.cache
def local_devices() -> tuple[Device, ...]:
    """This machine's CPU (its RAM, the training threads a run gets) and every visible GPU (its own memory)."""
    import torch

    from vitdemo.threads import available_cores, thread_count

    offered = [Device("cpu", "cpu", f"CPU ({available_cores()} cores)", _ram_bytes(), thread_count())]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            offered.append(Device(f"cuda:{i}", "cuda", props.name, int(props.total_memory), 1, runs_per_device("cuda")))
    return tuple(offered)


# -- one run in a child process -------------------------------------------------------------------------------
def child_command(registry: Registry, run_id: int, data_dir: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "vitdemo", "worker", "--home", str(registry.home), "--execute", str(run_id)]
    return cmd + (["--data-dir", str(data_dir)] if data_dir else [])


def _exit_error(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return (
            f"the training process was killed (signal {-returncode}), most likely because the machine ran out "
            "of memory: try a smaller batch size or model"
        )
    return f"the training process ended unexpectedly (exit status {returncode}); see the worker's log"


class ChildRun:
    """A run trained by a child process: its events are the lines of the child's stdout, read by a thread of
    their own (the child never waits on a full pipe, the worker never waits on the child)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self._events: stdqueue.SimpleQueue[Event] = stdqueue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, name=f"events-{proc.pid}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout or ():
            if line.strip():
                try:
                    self._events.put(events.decode(line))
                except ValueError as exc:
                    log(f"training process {self.proc.pid}: {exc}")

    def poll(self) -> list[Event]:
        return events.drain(self._events)

    def ended(self) -> bool:
        if self.proc.poll() is None:
            return False
        self._reader.join(READ_GRACE_S)  # its last lines
        return self._events.empty()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def exit_error(self) -> str:
        return _exit_error(self.proc.returncode)

    def cancel(self) -> None:
        self.proc.terminate()  # SIGTERM ends Python at once, also inside a long torch operation
        try:
            self.proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(READ_GRACE_S)


class LocalExecutor:
    """Worker processes on this machine, a child process per run (see the module's docstring)."""

    def __init__(self, data_dir: str | None = None) -> None:
        self.data_dir = data_dir  # given to the children (and to the workers `wake` starts)
        self._woken: dict[tuple[str, str], float] = {}

    def devices(self) -> tuple[Device, ...]:
        return local_devices()

    def capacity(self, device: str) -> int:
        return runs_per_device(device)

    def wake(self, registry: Registry, kind: str, *, force: bool = False) -> list[str]:
        key, now = (str(registry.home), kind), time.monotonic()
        if not force and now - self._woken.get(key, -WAKE_RETRY_S) < WAKE_RETRY_S:
            return []
        self._woken[key] = now
        gpus = sum(d.kind == "cuda" for d in self.devices()) if queue_device(kind) == "cuda" else 0
        return ensure_workers(registry, kind, gpus, self.data_dir or str(paths.data_root()))

    def start(self, registry: Registry, run: Run, device: str) -> ChildRun:
        proc = subprocess.Popen(
            child_command(registry, run.id, self.data_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=REPO_ROOT,
            env=child_env(device),
        )
        return ChildRun(proc)

    def run_alive(self, run: Run) -> bool | None:
        """A run is worked on while the process that claimed it (a worker, or the CLI that trains it) is alive;
        one without such a process (no worker pid) has nobody."""
        return run.worker_pid is not None and pid_alive(run.worker_pid)


# -- the worker processes -------------------------------------------------------------------------------------
def _lock_path(registry: Registry, device: str) -> Path:
    return registry.home / f"worker-{device}.lock"


def _pid_path(registry: Registry, device: str) -> Path:
    return registry.home / f"worker-{device}.pid"


def worker_running(registry: Registry, device: str = "cpu") -> bool:
    """True when a worker for `device` is alive: it holds the device's lock, or it was started and is
    still starting up (a second worker must not be started meanwhile)."""
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
        with open(registry.home / f"worker-{device}.log", "ab") as worker_log:
            proc = subprocess.Popen(
                cmd,
                stdout=worker_log,
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
    executor: Executor | None = None,
) -> int:
    """`python -m vitdemo worker`: claim and execute queued runs for `device` (vitdemo.runs.worker.work) until
    idle for `idle_exit_s`, on `executor` (default: this machine's child processes; the Ray worker passes its
    cluster's). Returns the runs executed.

    One worker per device: the lock file `worker-<device>.lock` in the registry's home says who it is.
    """
    executed = 0
    executor = executor if executor is not None else LocalExecutor(data_dir)
    registry.home.mkdir(parents=True, exist_ok=True)
    with open(_lock_path(registry, device), "a") as lock:
        if not _acquire(lock, wait_s=1.0):
            return 0  # another worker has this device
        while True:
            try:
                executed += worker.work(registry, executor, device, idle_exit_s=idle_exit_s)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
            # A run queued while we were deciding to stop found the lock held and started no worker:
            # look once more after letting go, and carry on if there is one (unless another worker took over).
            # (A paused queue is left alone: resuming it wakes the workers for what is queued.)
            queued = registry.list_runs(status="queued", device=queue_device(device))
            if not queued or is_paused(registry) or not _acquire(lock, wait_s=0.0):
                return executed
