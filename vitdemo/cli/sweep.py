"""`python -m vitdemo sweep`: try many settings of one run (vitdemo.sweeps), from the command line.

python -m vitdemo sweep --model cnn --epochs 4 --vary lr=1e-4..1e-2:log --vary model.width=8..32 --budget 12
python -m vitdemo sweep ... --executor ray          # the trials train in parallel on a Ray cluster
python -m vitdemo sweep --continue 3                # drive sweep 3 on (the Train page's driver does this)
python -m vitdemo sweep --show 3                    # its trials, the best settings, what mattered
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from vitdemo.config import TrainConfig
from vitdemo.runs.executor import RAY_INSTALL
from vitdemo.runs.store import Registry

if TYPE_CHECKING:
    from vitdemo.runs.ray_exec import RayExecutor
    from vitdemo.sweeps.drive import Step
    from vitdemo.sweeps.space import SweepSpec

VARY_HELP = "a setting and its range: lr=1e-4..1e-2:log, model.depth=2..6, model.patch_size=4,7 (repeatable)"


def add_parser(
    sub: argparse._SubParsersAction,
    add_flags: Callable[[argparse.ArgumentParser], None],
    base_config: Callable[[argparse.Namespace], TrainConfig],
) -> None:
    """The `sweep` command; `add_flags` adds `train`'s flags (the base run, --executor, --ray-address) and
    `base_config` reads them (vitdemo.cli.main's, handed over: this module never imports main)."""
    from vitdemo.sweeps.space import GOALS, SAMPLERS

    p = sub.add_parser("sweep", help="try many settings: an Optuna study whose trials are ordinary runs")
    add_flags(p)
    p.add_argument("--vary", action="append", default=[], metavar="NAME=RANGE", help=VARY_HELP)
    p.add_argument("--budget", type=int, default=12, help="how many runs (trials) at most")
    p.add_argument("--goal", choices=list(GOALS), default="val_acc")
    p.add_argument("--sampler", choices=list(SAMPLERS), default="tpe")
    p.add_argument("--sweep-seed", type=int, default=0, help="the sampler's seed")
    p.add_argument("--parallel", type=int, default=0, help="trials at once (0: as many as the executor holds)")
    p.add_argument("--no-prune", action="store_true", help="let every trial finish (no median pruner)")
    p.add_argument("--continue", dest="continue_id", type=int, metavar="SWEEP", help="drive an existing sweep on")
    p.add_argument("--show", type=int, metavar="SWEEP", help="print a sweep's trials and best settings")
    p.set_defaults(func=cmd_sweep, base_config=base_config)


def _optuna_or_error() -> None:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ValueError(f"Optuna is not installed: install it with `{RAY_INSTALL}`") from None


def cmd_sweep(a: argparse.Namespace) -> int:
    _optuna_or_error()
    from vitdemo.runs.people import CLI
    from vitdemo.sweeps import record

    registry = Registry(a.home)
    if a.show is not None:
        return show(registry, a.show)
    remote = None
    if (a.executor or "local") == "ray":
        from vitdemo.cli.remote import ray_executor

        remote = ray_executor(registry, a.ray_address, a.data_dir)
    if a.continue_id is not None:
        sweep_id = a.continue_id
        record.get_sweep(registry, sweep_id)  # ValueError for an unknown one
    else:
        spec = spec_from_args(a)
        name = f"sweep of {spec.base.model.kind} ({', '.join(p.name for p in spec.params)})"
        sweep_id = record.create_sweep(registry, spec, owner=CLI.owner, owner_name=CLI.name, teacher=True, name=name)
        print(f"sweep #{sweep_id}: {spec.budget} trials, goal {spec.goal}, sampler {spec.sampler}", file=sys.stderr)
    started = time.monotonic()
    _drive(registry, sweep_id, remote)
    print(f"sweep #{sweep_id} over in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return show(registry, sweep_id)


def spec_from_args(a: argparse.Namespace) -> SweepSpec:
    from vitdemo.sweeps.space import SweepSpec, parse_param

    if not a.vary:
        raise ValueError("give at least one --vary NAME=RANGE (e.g. --vary lr=1e-4..1e-2:log)")
    spec = SweepSpec(
        base=a.base_config(a),
        params=tuple(parse_param(v) for v in a.vary),
        budget=a.budget,
        goal=a.goal,
        sampler=a.sampler,
        seed=a.sweep_seed,
        prune=not a.no_prune,
        parallel=a.parallel,
    )
    spec.validate()
    return spec


def _drive(registry: Registry, sweep_id: int, remote: RayExecutor | None) -> None:
    """Drive the sweep; on Ray this process also claims its trials for the cluster (a worker in a thread)."""
    from vitdemo.sweeps.drive import drive

    def say(step: Step) -> None:
        for run_id in step.queued:
            print(f"  queued run #{run_id}", file=sys.stderr)
        for run_id in step.pruned:
            print(f"  pruned run #{run_id} (below the median at its epoch)", file=sys.stderr)

    if remote is None:
        drive(registry, sweep_id, on_step=say)
        return
    from vitdemo.runs import worker

    done = threading.Event()

    def claim() -> None:
        while not done.is_set():
            worker.work(registry, remote, "cpu", idle_exit_s=1.0)
            done.wait(0.2)

    thread = threading.Thread(target=claim, name="ray-worker", daemon=True)
    thread.start()
    try:
        drive(registry, sweep_id, on_step=say, poll_s=0.5)
    finally:
        done.set()
        thread.join(30)


def show(registry: Registry, sweep_id: int) -> int:
    from vitdemo.sweeps import record
    from vitdemo.sweeps.report import summarise

    sweep = record.get_sweep(registry, sweep_id)
    summary = summarise(registry, sweep)
    print(f"sweep #{sweep.id} {sweep.name}: {len(summary.rows)} trials, {summary.pruned} pruned")
    for row in summary.rows:
        value = f"{row['value']:.4f}" if row["value"] is not None else "-"
        params = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["params"].items())
        print(f"  run #{row['run_id']:<4} {row['state']:9} {value:>8}  {params}")
    if summary.best is not None:
        print(f"best: run #{summary.best['run_id']} {summary.best['value']:.4f} with {summary.best['params']}")
    if summary.importance:
        print("what mattered: " + ", ".join(f"{k} {v:.0%}" for k, v in summary.importance.items()))
    return 0
