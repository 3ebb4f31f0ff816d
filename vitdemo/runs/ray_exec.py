"""The Ray executor: every run a Ray task on a cluster, recorded by the worker (or the CLI) that submitted it.

The only module that imports ray; only the Ray worker (`python -m vitdemo worker` with VITDEMO_EXECUTOR=ray) and
the CLI (`train --executor ray`, `sweep`) import it, never the web server (ray-project/ray#45570: `ray.init`
replaces the SIGTERM handler off the main thread). What the web server knows of the cluster is what
`RayExecutor.refresh` publishes in the registry (vitdemo.runs.cluster).

- A run is a streaming generator task (vitdemo.runs.ray_task.run_events is its body) that asks for its family's
  resources (`Family.ray_cpus` on a CPU, `Family.gpu_share` of a GPU); its events come back as JSON lines, the
  checkpoint and the resume file as bytes, so the cluster needs no shared disk; the files a run starts from go
  to the node as bytes (`ray_task.files_to_send`).
- A dataset goes into the object store once per executor (`ray.put` of its uint8 arrays, read from the idx files
  with numpy so the worker stays torch-free), and every task of that dataset reads the same object.
- A cancel is `ray.cancel(force=True)`: the task's process ends at once, also inside a long step.
- A task whose process or node dies fails its run with a sentence (no retry: the run can be resumed from its
  last epoch, which the worker already has).
- Capacity follows the cluster: the worker claims as many runs as the cluster's alive nodes hold at once; a lost
  connection publishes a message and makes the capacity 0, so queued runs wait.
"""

from __future__ import annotations

import queue as stdqueue
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import ray
import ray.exceptions as rex

from vitdemo import families
from vitdemo.paths import REPO_ROOT
from vitdemo.runs import events, ray_task
from vitdemo.runs.cluster import ClusterState, publish
from vitdemo.runs.events import Event
from vitdemo.runs.executor import Device
from vitdemo.runs.local import pid_alive
from vitdemo.runs.record import best_effort, log
from vitdemo.runs.store import Registry, Run

REFRESH_EVERY_S = 5.0  # how often the cluster's devices are read again (and published)
RECONNECT_EVERY_S = 10.0  # how often a worker that lost the cluster tries again
READ_GRACE_S = 3.0  # after a cancel, the task's last events get this long to arrive
PROBE_TIMEOUT_S = 3.0  # how long a connection to the cluster's head may take before it counts as unreachable
GCS_PORT = 6379  # Ray's default for `ray start --head`
CLIENT_PORT = 10001  # and for the Ray Client server (ray://)
CPU_LABEL = "CPU"
DIED = (
    "the Ray worker that trained this run died (its node was lost, or the process was killed or ran out of "
    "memory); start it again, or resume it from its last finished epoch"
)


# -- connecting --------------------------------------------------------------------------------------------------
def connect(address: str = "", **local: Any) -> None:
    """Connect this process to the cluster at `address` ('' : start a local instance on this machine, sized by
    `local`: num_cpus, object_store_memory, ...); nothing when already connected. ConnectionError with a sentence
    when nobody answers there."""
    if ray.is_initialized():
        return
    if address:
        probe(address)  # ray.init itself retries an unreachable address for minutes
    package = str(REPO_ROOT / "vitdemo")
    runtime_env = {"py_modules": [package], "excludes": ["__pycache__"]}  # the code travels: no shared disk
    try:
        ray.init(
            address=address or None,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env=runtime_env,
            **local,
        )
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        text = " ".join(str(exc).split())[:200]
        raise ConnectionError(f"no Ray cluster answers at {address or 'this machine'} ({text})") from exc


def probe(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """A TCP connection to the cluster's head ('host:port', 'ray://host:port'; 'auto' is not probed), so that an
    unreachable cluster is one sentence within seconds. ConnectionError when nobody listens there."""
    if address == "auto":
        return
    rest = address.removeprefix("ray://")
    host, _, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
    default = CLIENT_PORT if address.startswith("ray://") else GCS_PORT
    try:
        with socket.create_connection((host or rest, int(port or default)), timeout=timeout_s):
            pass
    except (OSError, ValueError) as exc:
        raise ConnectionError(f"no Ray cluster answers at {address} ({exc})") from exc


# -- devices -----------------------------------------------------------------------------------------------------
def cluster_devices(
    nodes: Sequence[Mapping[str, Any]], cpus_per_run: float = 1.0, gpu_share: float = 0.25
) -> tuple[Device, ...]:
    """The cluster's devices as the queue's admission sees them, from `ray.nodes()`: one 'cpu' device (the
    smallest node's memory: a run must fit wherever it lands; as many runs at once as the nodes' cores hold,
    `cpus_per_run` each) and, with GPUs, one 'cuda' device (`gpu_share` of a GPU a run). Pure."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", n.get("alive", False))]
    if not alive:
        return ()
    cpus = sum(r.get("CPU", 0.0) for r in alive)
    memory = min((int(r["memory"]) for r in alive if r.get("memory")), default=None)
    slots = sum(int(r.get("CPU", 0.0) // cpus_per_run) for r in alive)
    label = f"Ray cluster: {len(alive)} node{'s' * (len(alive) != 1)}, {cpus:g} CPUs"
    offered = [Device("cpu", "cpu", label, memory, threads=max(1, int(cpus_per_run)), runs_at_once=max(slots, 0))]
    gpus = sum(r.get("GPU", 0.0) for r in alive)
    if gpus:
        kinds = sorted({k.split(":", 1)[1] for r in alive for k in r if k.startswith("accelerator_type:")})
        what = f"{gpus:g} GPUs" + (f" ({', '.join(kinds)})" if kinds else "")
        offered.append(Device("cuda", "cuda", what, None, runs_at_once=int(round(gpus / gpu_share))))
    return tuple(offered)


def resources(run: Run, device: str) -> dict[str, float]:
    """What run `run`'s task asks the cluster for: its family's cores on a CPU, its share of a GPU on one."""
    fam = families.get(run.kind) if families.is_kind(run.kind) else None
    cpus = fam.ray_cpus if fam is not None else 1.0
    if device.split(":", 1)[0] == "cuda":
        return {"num_cpus": 1.0, "num_gpus": fam.gpu_share if fam is not None else 0.25}
    return {"num_cpus": cpus, "num_gpus": 0.0}


# -- the dataset, once -------------------------------------------------------------------------------------------
def read_idx(path: Path) -> np.ndarray:
    """An uncompressed idx file (MNIST's format: a magic number whose last byte is the number of dimensions, the
    dimensions as big-endian int32, then uint8 data), as torchvision reads it, without torch."""
    raw = path.read_bytes()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def dataset_arrays(dataset: str, data_dir: str | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A dataset's train and test images and labels, from its four idx files (vitdemo.data's folders)."""
    from vitdemo.data import missing_error, missing_files, raw_dir

    if missing_files(dataset, data_dir):
        raise missing_error(dataset, data_dir)
    folder = raw_dir(dataset, data_dir)
    return {
        split: (read_idx(folder / f"{prefix}-images-idx3-ubyte"), read_idx(folder / f"{prefix}-labels-idx1-ubyte"))
        for split, prefix in (("train", "train"), ("test", "t10k"))
    }


# -- the task ----------------------------------------------------------------------------------------------------
@ray.remote(num_returns="streaming", max_retries=0)
def _train_task(run: Run, arrays: Mapping[str, Any], files: Mapping[str, bytes], threads: int):  # noqa: ANN202
    gpus = ray.get_gpu_ids()
    where = f"node {_node_address()} · " + (f"GPU {','.join(map(str, gpus))}" if gpus else CPU_LABEL)
    yield from ray_task.run_events(run, arrays, files, where=where, threads=threads)


def _node_address() -> str:
    """The address this task's node joined the cluster with (a machine's first address may be another)."""
    for node in ray.nodes():
        if node.get("NodeID") == ray.get_runtime_context().get_node_id():
            return str(node.get("NodeManagerAddress"))
    return ray.util.get_node_ip_address()


def _describe(exc: BaseException) -> str:
    """One sentence for a task that ended without its final event."""
    died = tuple(
        getattr(rex, name)
        for name in ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError", "OwnerDiedError")
        if hasattr(rex, name)
    )
    if isinstance(exc, died):
        return DIED
    if isinstance(exc, rex.OutOfMemoryError):
        return "the Ray node ran out of memory during this run: try a smaller batch size or model"
    if isinstance(exc, rex.RaySystemError | ConnectionError):
        return f"the connection to the Ray cluster was lost during this run ({type(exc).__name__})"
    text = " ".join(str(exc).split())[:300]
    return f"the Ray task failed: {text or type(exc).__name__}"


class RayRun:
    """A run trained by a Ray task: a thread of its own takes the task's events as they come (the worker never
    waits on the cluster), and adds where the run trains to every progress it records."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream  # a ray ObjectRefGenerator
        self.where = ""
        self._error = ""
        self._events: stdqueue.SimpleQueue[Event] = stdqueue.SimpleQueue()
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._read, name="ray-events", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for ref in self.stream:
                self._events.put(self._placed(events.decode(ray.get(ref))))
        except rex.TaskCancelledError:
            self._error = "the run was cancelled"
        except (rex.RayError, ConnectionError, ValueError) as exc:
            self._error = _describe(exc)
        finally:
            self._done.set()

    def _placed(self, event: Event) -> Event:
        """The event with `where` in its progress (the task says where it runs in its first event)."""
        if isinstance(event, events.Progress | events.Point):
            self.where = event.progress.get("where") or self.where
            progress = {**event.progress, "where": self.where}
            if isinstance(event, events.Progress):
                return events.Progress(progress)
            return events.Point(event.point, progress, event.keep_at_most)
        return event

    def poll(self) -> list[Event]:
        return events.drain(self._events)

    def ended(self) -> bool:
        return self._done.is_set() and self._events.empty()

    def alive(self) -> bool:
        return not self._done.is_set()

    def exit_error(self) -> str:
        return self._error or "the Ray task ended without saying how"

    def cancel(self) -> None:
        try:
            ray.cancel(self.stream, force=True)  # the task's process ends now, also inside a long step
        except (rex.RayError, ValueError, TypeError) as exc:
            log(f"the Ray task could not be cancelled: {exc}")
        self._done.wait(READ_GRACE_S)


class RayExecutor:
    """Runs as Ray tasks on the cluster at `address` (see the module's docstring). `registry`: where the cluster's
    state is published for the web server (the worker's registry)."""

    def __init__(self, address: str = "", data_dir: str | None = None, registry: Registry | None = None) -> None:
        self.address, self.data_dir, self.registry = address, data_dir, registry
        self._devices: tuple[Device, ...] = ()
        self._read_at = -REFRESH_EVERY_S
        self._tried_at = -RECONNECT_EVERY_S
        self._data: dict[tuple[str, str | None], Any] = {}

    def refresh(self, *, force: bool = False) -> tuple[Device, ...]:
        """The cluster's devices, read again every REFRESH_EVERY_S and published; () while it cannot be reached
        (the message is published: the Train page shows it, and no run is claimed meanwhile)."""
        now = time.monotonic()
        if not force and now - self._read_at < REFRESH_EVERY_S:
            return self._devices
        self._read_at = now
        try:
            if not ray.is_initialized():
                if now - self._tried_at < RECONNECT_EVERY_S and not force:
                    return ()
                self._tried_at = now
                connect(self.address)
            nodes = ray.nodes()
            self._devices = cluster_devices(nodes)
            alive = sum(bool(n.get("Alive")) for n in nodes)
            why = "" if self._devices else f"none of its {len(nodes)} nodes is alive"
            state = ClusterState(bool(self._devices), why, self.address, alive, self._devices)
        except (ConnectionError, rex.RayError, RuntimeError) as exc:
            self._devices = ()
            state = ClusterState(False, " ".join(str(exc).split())[:300], self.address)
        if self.registry is not None:
            best_effort(lambda: publish(self.registry, state), None)
        return self._devices

    def devices(self) -> tuple[Device, ...]:
        return self.refresh()

    def capacity(self, device: str) -> int:
        kind = device.split(":", 1)[0]
        return sum(d.runs_at_once for d in self.refresh() if d.kind == kind)

    def wake(self, registry: Registry, kind: str, *, force: bool = False) -> list[str]:
        return []  # this process is the one that claims runs for the cluster

    def _dataset(self, dataset: str) -> Any:
        key = (dataset, self.data_dir)
        if key not in self._data:
            self._data[key] = ray.put(dataset_arrays(dataset, self.data_dir))
        return self._data[key]

    def start(self, registry: Registry, run: Run, device: str) -> RayRun:
        """Submit run `run` as a task (OSError: its dataset or a file it names cannot be read here)."""
        try:
            arrays = self._dataset(run.dataset)
        except RuntimeError as exc:  # vitdemo.data.MissingData: the message says which files and where
            raise OSError(str(exc)) from exc
        asked = resources(run, device)
        files = ray_task.files_to_send(run.config)
        threads = max(1, int(asked["num_cpus"]))
        return RayRun(_train_task.options(**asked).remote(run, arrays, files, threads))

    def run_alive(self, run: Run) -> bool | None:
        """The worker (or CLI) that claimed the run lives on this machine: its pid says."""
        return run.worker_pid is not None and pid_alive(run.worker_pid)


# -- the worker and the CLI --------------------------------------------------------------------------------------
def executor_for(registry: Registry, address: str | None = None, data_dir: str | None = None) -> RayExecutor:
    """This process's Ray executor, made the queue's 'ray' executor (so submits see the cluster's devices)."""
    from vitdemo.runs import queue
    from vitdemo.runs.cluster import address_from_env

    chosen = RayExecutor(address_from_env() if address is None else address, data_dir, registry)
    queue.use_executor("ray", chosen)
    return chosen


def run_worker(
    registry: Registry, device: str = "cpu", *, data_dir: str | None = None, idle_exit_s: float = 300.0
) -> int:
    """`python -m vitdemo worker` with VITDEMO_EXECUTOR=ray: claim the queued runs of `device`'s kind and train
    them on the cluster, as many at once as it holds (vitdemo.runs.local.run_worker's lock and loop)."""
    from vitdemo.runs.local import run_worker as run_locked

    chosen = executor_for(registry, data_dir=data_dir)
    chosen.refresh(force=True)  # publish at once: connected, or why not
    return run_locked(registry, device, data_dir=data_dir, idle_exit_s=idle_exit_s, executor=chosen)


def execute_remote(registry: Registry, run: Run, chosen: RayExecutor, poll_s: float = 0.25) -> str | None:
    """Train run `run` (claimed by this process) on the cluster and record it here, as a worker would: the CLI's
    `train --executor ray`. A cancel request (or Ctrl-C) cancels the task. Returns the outcome recorded."""
    from vitdemo.runs import worker
    from vitdemo.runs.record import Heartbeat, Recorder

    execution = chosen.start(registry, run, run.device or "cpu")
    tending = worker.Executing(run, execution, Recorder(registry, run.id, run.worker_pid))
    with Heartbeat(registry, [run.id]):
        try:
            while not worker.tend(registry, tending):
                time.sleep(poll_s)
        except KeyboardInterrupt:
            execution.cancel()
            raise
    return tending.recorder.outcome
