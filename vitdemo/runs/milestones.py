"""The class race: "fastest to 99%". Every run's curves say when it first reached each validation milestone
(98, 99, 99.5%) and its run row says on what device; the standings keep each person's fastest run per device,
because only runs that trained on the same device compare (a GPU run against a laptop's CPU is no race).

The time is the run's own clock at the end of the first epoch that reached the milestone (training and
validation, from its first step; vitdemo.training.loop.EpochInfo.elapsed_s): validation happens once an epoch,
so a milestone is timed to the epoch that reached it. Shipped baselines trained on another machine: left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from vitdemo.runs import people
from vitdemo.runs.store import Registry, Run

MILESTONES = (0.98, 0.99, 0.995)  # validation accuracies a run is timed to
TARGET = 0.99  # the race's default finish line


@dataclass(frozen=True)
class Finish:
    """One run at the finish line."""

    person: str  # who trained it (the owner's name)
    run: Run
    seconds: float  # its clock when it first reached the milestone
    epoch: int
    val_acc: float


def milestone_times(reg: Registry, run_id: int) -> dict[float, float | None]:
    """milestone -> seconds a run took to first reach it (None: not reached), for one run's detail."""
    out: dict[float, float | None] = dict.fromkeys(MILESTONES)
    for row in reg.epochs(run_id):
        for m in MILESTONES:
            if out[m] is None and (row.get("val_acc") or 0.0) >= m and row.get("elapsed_s") is not None:
                out[m] = float(row["elapsed_s"])
    return out


def standings(reg: Registry, dataset: str, target: float = TARGET) -> dict[str, list[Finish]]:
    """device -> each person's fastest run on it to `target` on `dataset`, fastest first. Runs still training
    count once they are past the line; shipped baselines (trained elsewhere) and runs with no device do not."""
    reached = reg.first_reached(target)
    names = people.owner_names(reg)
    best: dict[tuple[str, str], Finish] = {}
    for run in reg.list_runs(dataset=dataset):
        row = reached.get(run.id)
        if row is None or run.baseline or not run.device or row.get("elapsed_s") is None:
            continue
        person = people.owner_name(run.owner, names)
        finish = Finish(person, run, float(row["elapsed_s"]), int(row["epoch"]), float(row["val_acc"]))
        key = (run.device, run.owner or "")
        if key not in best or finish.seconds < best[key].seconds:
            best[key] = finish
    by_device: dict[str, list[Finish]] = {}
    for (device, _), finish in sorted(best.items(), key=lambda kv: kv[1].seconds):
        by_device.setdefault(device, []).append(finish)
    return by_device
