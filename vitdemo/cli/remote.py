"""The command line's way to the Ray cluster: `train --executor ray`, the Ray worker and `sweep` connect here.
Ray is imported only once one of them asks for it (vitdemo.runs.ray_exec), and a missing Ray is one sentence."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from vitdemo.runs.executor import ENV_RAY_ADDRESS, EXECUTORS, RAY_INSTALL
from vitdemo.runs.store import Registry

if TYPE_CHECKING:
    from vitdemo.runs.ray_exec import RayExecutor


def add_executor_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=None,
        help="where the run trains: 'local' (this process, the default) or 'ray' (a task on a Ray cluster)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help=f"the Ray cluster ('ray://host:10001' or 'host:6379'); default ${ENV_RAY_ADDRESS}, else a local one",
    )


def ray_executor(registry: Registry, address: str | None, data_dir: str | None) -> RayExecutor:
    """This process's connection to the cluster, made the queue's 'ray' executor. ValueError with one sentence
    when Ray is not installed or no cluster answers."""
    try:
        from vitdemo.runs import ray_exec
    except ImportError as exc:
        raise ValueError(f"Ray is not installed: install it with `{RAY_INSTALL}` ({exc})") from exc
    chosen = ray_exec.executor_for(registry, address, data_dir)
    try:
        ray_exec.connect(chosen.address)
    except ConnectionError as exc:
        raise ValueError(str(exc)) from exc
    return chosen


def ray_worker(registry: Registry, device: str, *, data_dir: str | None, idle_exit_s: float) -> int:
    """The worker that trains the queue's runs on the cluster. Without Ray it says so (in its log, and to the
    Train page through the published cluster state) and claims nothing: the runs stay queued."""
    try:
        from vitdemo.runs import ray_exec
    except ImportError:
        from vitdemo.runs.cluster import ClusterState, not_installed_message, publish

        publish(registry, ClusterState(False, not_installed_message()))
        raise ValueError(not_installed_message()) from None
    return ray_exec.run_worker(registry, device, data_dir=data_dir, idle_exit_s=idle_exit_s)
