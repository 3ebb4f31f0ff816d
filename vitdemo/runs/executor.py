"""The seam between the run queue and what executes runs: an `Executor` starts claimed runs, hands back their
events, cancels them, tells whether they are alive, and describes its devices. No torch here.

The queue (vitdemo.runs.queue) and the store stay neutral: they know runs, never processes. The worker loop
(vitdemo.runs.worker) claims a run, `start`s it on its executor, records the `Execution`'s events (it is the only
writer of the registry for the runs it executes) and keeps their heartbeat. The executor of this server is
`vitdemo.runs.queue.configured_executor()`: $VITDEMO_EXECUTOR, 'local' by default (vitdemo.runs.local: a worker
process per device on this machine, a child process per run), or 'ray' (vitdemo.runs.ray_exec: every run a Ray
task on the cluster at $VITDEMO_RAY_ADDRESS; it alone imports ray, and only the worker and the CLI import it: the
web server sees the cluster as the worker publishes it, vitdemo.runs.cluster).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from vitdemo.runs.events import Event
    from vitdemo.runs.store import Registry, Run

ENV_EXECUTOR = "VITDEMO_EXECUTOR"
ENV_RAY_ADDRESS = "VITDEMO_RAY_ADDRESS"  # a Ray cluster's address ('ray://...' or 'host:port'); none: a local one
EXECUTORS = ("local", "ray")
RAY_INSTALL = "pip install -r requirements-ray.txt"  # the one extra step that brings Ray and Optuna


@dataclass(frozen=True)
class Device:
    """A device an executor trains on, as the queue's admission, the estimates and the Train page see it."""

    name: str  # where a run is placed: 'cpu', 'cuda:0'
    kind: str  # what a run asks for (its queue device): 'cpu' or 'cuda'
    label: str  # for people: 'CPU (16 cores)', 'NVIDIA H100 80GB HBM3'
    memory_bytes: int | None  # what a run may use there: the machine's RAM, the GPU's memory (None: unknown)
    threads: int = 1  # the torch threads a run gets there: a CPU's training speed grows with them
    runs_at_once: int = 1  # how many runs share it


class Execution(Protocol):
    """One run an executor has started."""

    def poll(self) -> list[Event]:
        """The events that arrived since the last call, at once (never waits for more)."""
        ...

    def ended(self) -> bool:
        """True once the run has stopped and every event it sent has been handed out by `poll`."""
        ...

    def alive(self) -> bool:
        """True while the run is being worked on (its heartbeat is kept only then)."""
        ...

    def exit_error(self) -> str:
        """Why a run that `ended` without a final event stopped, for the person who started it."""
        ...

    def cancel(self) -> None:
        """Stop the run now (within about a second, also inside a long step); its events so far stay to poll."""
        ...


class Executor(Protocol):
    """What executes runs: the local machine's worker processes, or something remote."""

    def devices(self) -> tuple[Device, ...]:
        """Every device it trains on, with its memory and how many runs it holds at once."""
        ...

    def capacity(self, device: str) -> int:
        """How many runs device `device` (a `Device.name`) trains at once; cheap (a worker asks it often)."""
        ...

    def wake(self, registry: Registry, kind: str, *, force: bool = False) -> list[str]:
        """Make sure runs queued for `kind` ('cpu', 'cuda') will be claimed (the local executor starts the
        device's worker processes unless they are alive). At most every few seconds per device unless `force`
        (something that cannot start must not be retried by every page every second). Returns what it started."""
        ...

    def start(self, registry: Registry, run: Run, device: str) -> Execution:
        """Start executing a run claimed for device `device`."""
        ...

    def run_alive(self, run: Run) -> bool | None:
        """Whether the process a running run belongs to (`run.worker_pid`) is alive, as far as this executor can
        tell: False lets an orphan sweep fail the run at once; None (it cannot tell) leaves it to the heartbeat."""
        ...


def device_of(offered: Sequence[Device], kind: str) -> Device | None:
    """The device a run of `kind` gets when every one of them counts: the one with the least memory (a run must
    fit on whichever GPU takes it)."""
    matching = [d for d in offered if d.kind == kind]
    return min(matching, key=lambda d: d.memory_bytes if d.memory_bytes is not None else -1) if matching else None
