"""The Ray cluster as the web server sees it, without Ray: what the Ray worker publishes in the registry.

Only the worker (or the CLI) talks to Ray (vitdemo.runs.ray_exec): `ray.init` inside the Streamlit process would
replace its SIGTERM handler off the main thread (ray-project/ray#45570). The worker publishes the cluster's
devices and whether it is connected (`ClusterState`, a settings row) every few seconds; the queue's admission,
the estimates and the Train page read that row through `ClusterExecutor`, the 'ray' executor of every process
that is not a Ray worker. Its `wake` starts the worker process (the local executor's way, with
VITDEMO_EXECUTOR=ray in its environment); it never starts a run itself. No torch, no ray here.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.executor import ENV_RAY_ADDRESS, RAY_INSTALL, Device
from vitdemo.runs.store import Registry, Run

CLUSTER_KEY = "ray_cluster"  # settings key: the ClusterState the Ray worker published last
STALE_AFTER_S = 30.0  # a state older than this was published by a worker that is gone (it publishes every few s)
WAKE_RETRY_S = 10.0


def ray_installed() -> bool:
    """Whether Ray can be imported here (looked up, not imported)."""
    return importlib.util.find_spec("ray") is not None


def not_installed_message() -> str:
    return f"Ray is not installed on this server: install it with `{RAY_INSTALL}`, then start the app again."


@dataclass(frozen=True)
class ClusterState:
    """What the Ray worker last saw of its cluster: its devices (as the queue's admission sees them), its nodes,
    and whether it is connected; `message` says what is wrong when it is not."""

    connected: bool
    message: str = ""
    address: str = ""  # what the worker connects to ('' : a local instance)
    nodes: int = 0
    devices: tuple[Device, ...] = ()
    at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps({**dataclasses.asdict(self), "devices": [dataclasses.asdict(d) for d in self.devices]})

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        d: dict[str, Any] = json.loads(text)
        d["devices"] = tuple(Device(**x) for x in d.get("devices", ()))
        return cls(**d)

    def stale(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) - self.at > STALE_AFTER_S


def publish(registry: Registry, state: ClusterState) -> None:
    registry.set_setting(CLUSTER_KEY, state.to_json())


def read_state(registry: Registry) -> ClusterState | None:
    """The state the worker published last (None: never, or a row this version cannot read)."""
    text = registry.get_setting(CLUSTER_KEY)
    if not text:
        return None
    try:
        return ClusterState.from_json(text)
    except (ValueError, TypeError):
        return None


def problem(registry: Registry, *, queued: bool) -> str | None:
    """One sentence for the Train page when runs cannot reach the cluster (None while all is well): Ray is not
    installed, the worker lost its connection, or runs are queued and no worker has said anything for a while."""
    if not ray_installed():
        return not_installed_message()
    state = read_state(registry)
    if state is not None and not state.connected:
        return f"The training cluster cannot be reached ({state.message}): queued runs wait until it is back."
    if queued and state is None:
        return "The training cluster's worker is starting: queued runs wait until it has connected."
    if queued and state is not None and state.stale():
        return "The training cluster's worker has not reported for a while: queued runs wait until it does."
    return None


def where(progress: dict[str, Any] | None) -> str:
    """Where a run trains, as its executor reported it ('node 10.0.0.5 · CPU'), '' when it did not say."""
    return str((progress or {}).get("where") or "")


# The devices offered before the worker has published any: the queue accepts CPU runs (the cluster has CPUs),
# with no memory limit it could check and one run at a time.
UNKNOWN_CPU = Device("cpu", "cpu", "Ray cluster (not connected yet)", None)


class ClusterExecutor:
    """The 'ray' executor of the web server and of `queue.submit`: devices as published, and a worker process to
    wake. Starting a run belongs to the worker's vitdemo.runs.ray_exec.RayExecutor."""

    def __init__(self, registry: Registry | None = None, data_dir: str | None = None) -> None:
        self.registry, self.data_dir = registry, data_dir
        self._woken: dict[tuple[str, str], float] = {}

    def _state(self) -> ClusterState | None:
        try:
            return read_state(self.registry or Registry())
        except RegistryError:  # a registry that cannot be read: nothing published
            return None

    def devices(self) -> tuple[Device, ...]:
        state = self._state()
        return state.devices if state is not None and state.connected and state.devices else (UNKNOWN_CPU,)

    def capacity(self, device: str) -> int:
        kind = device.split(":", 1)[0]
        return sum(d.runs_at_once for d in self.devices() if d.kind == kind)

    def wake(self, registry: Registry, kind: str, *, force: bool = False) -> list[str]:
        """Start the Ray worker for `kind` unless it is alive (one per device kind: it claims that kind's runs for
        the whole cluster). A server without Ray starts nothing: the Train page says what to install."""
        if not ray_installed():
            return []
        key, now = (str(registry.home), kind), time.monotonic()
        if not force and now - self._woken.get(key, -WAKE_RETRY_S) < WAKE_RETRY_S:
            return []
        self._woken[key] = now
        from vitdemo import paths
        from vitdemo.runs.local import ensure_workers

        # the worker inherits this process's environment: VITDEMO_EXECUTOR=ray and the cluster's address
        return ensure_workers(registry, kind, 0, self.data_dir or str(paths.data_root()))

    def start(self, registry: Registry, run: Run, device: str) -> Any:
        raise RuntimeError("only the Ray worker starts runs on the cluster (python -m vitdemo worker)")

    def run_alive(self, run: Run) -> bool | None:
        """The worker that claimed the run lives on this machine: its pid says."""
        from vitdemo.runs.local import pid_alive

        return run.worker_pid is not None and pid_alive(run.worker_pid)


def address_from_env() -> str:
    return os.environ.get(ENV_RAY_ADDRESS, "").strip()
