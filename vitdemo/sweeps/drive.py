"""Driving a sweep: each step prunes the hopeless running trials and queues new ones until the budget is spent.

Every trial is an ordinary run, queued with `vitdemo.runs.queue.submit` as the sweep's owner: it is owned,
listed, checked against the teacher's limits (a trial over them waits for a later step, as a student would),
trained by whatever executor the queue has, and saved with its resume file. The driver only reads runs and asks
for cancels; the worker stays their one writer. Trials at once: `SweepSpec.parallel`, else as many as the
executor trains at once (one on a laptop's CPU: trials run one after another; a Ray cluster's room: in parallel).

`python -m vitdemo sweep` drives in the foreground; the Train page starts a driver process
(`start_driver`) that goes on when the page is closed, and a driver restarted later carries on from the runs.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from vitdemo.config import ConfigError
from vitdemo.runs import queue
from vitdemo.runs.people import Actor, NotAllowed
from vitdemo.runs.store import OverLimit, Registry, RunNotFound
from vitdemo.sweeps import record
from vitdemo.sweeps.space import SweepSpec, apply
from vitdemo.sweeps.study import Trial, propose, should_prune

POLL_S = 1.0


@dataclass(frozen=True)
class Step:
    """What one step did, and whether the sweep is over (every trial ended, and no more will be asked)."""

    queued: tuple[int, ...]
    pruned: tuple[int, ...]
    over: bool
    waiting: str = ""  # why no trial could be queued now (a class limit), for the driver's log


def load_trials(reg: Registry, sweep_id: int) -> list[Trial]:
    """The sweep's trials with their runs and curves (a trial whose run was deleted is left out)."""
    out = []
    for row in record.trials(reg, sweep_id):
        try:
            run = reg.get_run(row.run_id)
        except RunNotFound:
            continue
        curve = {int(e["epoch"]): float(e["val_acc"]) for e in reg.epochs(run.id) if e.get("val_acc") is not None}
        out.append(Trial(row.number, run, row.params, curve, row.pruned))
    return out


def slots(sweep: record.Sweep) -> int:
    """Trials at once: the spec's, else what the queue's executor trains at once on the base run's device (0 while
    it offers none)."""
    if sweep.spec.parallel:
        return sweep.spec.parallel
    offered = queue.offered_devices()
    try:
        kind = queue.resolve_device(sweep.spec.base.device, offered)
    except ConfigError:  # the cluster offers no such device now (out of reach, no node alive): wait for it
        return 0
    return max(1, sum(d.runs_at_once for d in offered if d.kind == kind))


def actor_of(sweep: record.Sweep) -> Actor:
    return Actor(sweep.owner, sweep.owner_name, teacher=sweep.teacher)


def advance(reg: Registry, sweep_id: int, *, parallel: int | None = None) -> Step:
    """One step: prune, then queue trials while there is room and budget (see the module's docstring)."""
    sweep = record.get_sweep(reg, sweep_id)
    spec, actor = sweep.spec, actor_of(sweep)
    trials = load_trials(reg, sweep_id)
    pruned = []
    for t in trials:
        if t.run.status == "running" and not t.pruned and not t.run.cancel_requested and should_prune(spec, trials, t):
            record.mark_pruned(reg, t.run.id)
            queue.request_cancel(reg, t.run.id, actor)
            pruned.append(t.run.id)
    if pruned:
        trials = load_trials(reg, sweep_id)
    room = (parallel or slots(sweep)) - sum(t.run.active for t in trials)
    asked, queued, waiting, exhausted = len(trials), [], "", False
    while room > 0 and asked < spec.budget and not sweep.stop_requested:
        values = propose(spec, trials)
        if values is None:  # a grid with every combination asked
            exhausted = True
            break
        config = dataclasses.replace(apply(spec.base, values), name=f"{sweep.name} · trial {asked + 1}")
        try:
            run_id = queue.submit(reg, config, actor)
        except OverLimit as exc:  # the class's limits: try again at the next step
            waiting = str(exc)
            break
        record.add_trial(reg, sweep_id, run_id, asked, values)
        trials = load_trials(reg, sweep_id)
        queued.append(run_id)
        asked, room = asked + 1, room - 1
    no_more = asked >= spec.budget or sweep.stop_requested or exhausted
    over = no_more and not queued and not any(t.run.active for t in trials)
    if over:
        record.mark_ended(reg, sweep_id)
    return Step(tuple(queued), tuple(pruned), over, waiting)


def drive(
    reg: Registry,
    sweep_id: int,
    *,
    parallel: int | None = None,
    poll_s: float = POLL_S,
    on_step: Callable[[Step], None] | None = None,
) -> None:
    """Step the sweep until it is over."""
    while True:
        step = advance(reg, sweep_id, parallel=parallel)
        if on_step is not None:
            on_step(step)
        if step.over:
            return
        time.sleep(poll_s)


def start_driver(reg: Registry, sweep_id: int) -> None:
    """Drive a sweep from a process of its own, which outlives the page that started it (its log beside the
    registry)."""
    from vitdemo.paths import REPO_ROOT

    cmd = [sys.executable, "-m", "vitdemo", "sweep", "--home", str(reg.home), "--continue", str(sweep_id)]
    with open(reg.home / f"sweep-{sweep_id}.log", "ab") as log:
        subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO_ROOT
        )


def launch(reg: Registry, spec: SweepSpec, actor: Actor, name: str = "") -> int:
    """Record a sweep owned by `actor` and start its driver process (the Train page's Start). A blocked name is
    refused here, whatever the page shows; each trial then passes the queue's limits as it is queued."""
    if actor.blocked:
        raise NotAllowed("The teacher has blocked your name: ask them before you start a sweep.")
    spec.validate()
    what = ", ".join(p.name.removeprefix("model.") for p in spec.params)
    sweep_id = record.create_sweep(
        reg, spec, owner=actor.owner, owner_name=actor.name, teacher=actor.teacher,
        name=name or f"{actor.name}'s sweep of {spec.base.model.kind} ({what})",
    )  # fmt: skip
    start_driver(reg, sweep_id)
    return sweep_id


def stop(reg: Registry, sweep_id: int, actor: Actor) -> None:
    """No more trials (those queued or running go on): its owner or the teacher only."""
    sweep = record.get_sweep(reg, sweep_id)
    if not (actor.teacher or actor.owner == sweep.owner):
        raise NotAllowed("Only the sweep's owner or the teacher can stop it.")
    record.request_stop(reg, sweep_id)
