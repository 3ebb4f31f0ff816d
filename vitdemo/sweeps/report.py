"""A sweep as people read it: its trials (settings, state, value), the best so far against time, which settings
mattered, and the best run's settings to train again. Read from the runs (vitdemo.sweeps.drive.load_trials)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vitdemo.config import TrainConfig
from vitdemo.runs.store import Registry
from vitdemo.sweeps import record
from vitdemo.sweeps.drive import load_trials
from vitdemo.sweeps.space import apply

STATES = {"done": "done", "running": "running", "queued": "queued", "failed": "failed", "cancelled": "cancelled"}


@dataclass(frozen=True)
class SweepSummary:
    rows: list[dict[str, Any]]  # run_id, number, state, value, params, finished_s (since the sweep started)
    best: dict[str, Any] | None
    pruned: int
    importance: dict[str, float] = field(default_factory=dict)
    best_so_far: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, best value)
    best_config: TrainConfig | None = None


def trial_state(status: str, pruned: bool) -> str:
    return "pruned" if pruned else STATES.get(status, status)


def best_so_far(rows: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(time a trial finished, the best value up to then), in time order. Pure."""
    done = sorted((r["finished_s"], r["value"]) for r in rows if r["value"] is not None and r["finished_s"] is not None)
    out, best = [], None
    for t, v in done:
        best = v if best is None else max(best, v)
        out.append((t, best))
    return out


def summarise(reg: Registry, sweep: record.Sweep) -> SweepSummary:
    from vitdemo.sweeps.study import importances, objective

    trials = load_trials(reg, sweep.id)
    rows = []
    for t in trials:
        finished = t.run.finished_at - sweep.created_at if t.run.finished_at else None
        rows.append(
            {
                "run_id": t.run.id,
                "number": t.number,
                "state": trial_state(t.run.status, t.pruned),
                "value": objective(sweep.spec, t.run),
                "params": t.params,
                "finished_s": finished,
            }
        )
    scored = [r for r in rows if r["value"] is not None]
    best = max(scored, key=lambda r: r["value"]) if scored else None
    return SweepSummary(
        rows=rows,
        best=best,
        pruned=sum(t.pruned for t in trials),
        importance=importances(sweep.spec, trials),
        best_so_far=best_so_far(rows),
        best_config=apply(sweep.spec.base, best["params"]) if best is not None else None,
    )
