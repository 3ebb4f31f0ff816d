"""The Optuna study of a sweep, rebuilt from its runs whenever it is needed (ask-and-tell, no storage of Optuna's).

`rebuild` turns every trial's run into a FrozenTrial (done: COMPLETE with the goal's value; stopped by the pruner:
PRUNED; failed or cancelled: FAIL; queued or running: RUNNING, so TPE does not propose the same settings twice)
with its per-epoch validation accuracy as intermediate values. `propose` asks the sampler (TPE, or a grid) for
the next settings; `should_prune` asks the median pruner about a running trial. A new study per step is cheap
(tens of trials) and leaves nothing to lose: the sampler's seed moves on with the number of trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from vitdemo.runs.store import Run
from vitdemo.sweeps.space import Param, SweepSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)
PRUNE_AFTER = 2  # the median pruner judges a trial once this many trials have finished (Optuna's n_startup_trials)


@dataclass(frozen=True)
class Trial:
    """One trial as the registry holds it: its run, the values it tried, its per-epoch validation accuracy."""

    number: int
    run: Run
    params: dict[str, Any]
    curve: dict[int, float]  # epoch -> validation accuracy
    pruned: bool


def distribution(p: Param) -> BaseDistribution:
    if p.choices:
        return CategoricalDistribution(list(p.choices))
    assert p.low is not None and p.high is not None
    if p.integer:
        return IntDistribution(int(p.low), int(p.high), log=p.log)
    return FloatDistribution(p.low, p.high, log=p.log)


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    return {p.name: distribution(p) for p in spec.params}


def objective(spec: SweepSpec, run: Run) -> float | None:
    """The goal's value of a finished run (None before it has one)."""
    if run.status != "done" or run.val_acc is None:
        return None
    if spec.goal == "acc_per_s":
        return run.val_acc / max(run.train_time_s or 0.0, 1e-3)
    return run.val_acc


def state_of(trial: Trial, spec: SweepSpec) -> TrialState:
    if trial.pruned:
        return TrialState.PRUNED
    if trial.run.status == "done":
        return TrialState.COMPLETE if objective(spec, trial.run) is not None else TrialState.FAIL
    if trial.run.active:
        return TrialState.RUNNING
    return TrialState.FAIL


def frozen(trial: Trial, spec: SweepSpec) -> FrozenTrial:
    state = state_of(trial, spec)
    dists = distributions(spec)
    params = {k: v for k, v in trial.params.items() if k in dists}
    return optuna.trial.create_trial(
        state=state,
        value=objective(spec, trial.run) if state == TrialState.COMPLETE else None,
        params=params,
        distributions={k: dists[k] for k in params},
        intermediate_values=trial.curve,
        user_attrs={"run_id": trial.run.id},
    )


def _sampler(spec: SweepSpec, asked: int) -> optuna.samplers.BaseSampler:
    seed = spec.seed * 10_007 + asked  # a new study per step: its random stream moves on with every trial
    if spec.sampler == "grid":
        return optuna.samplers.GridSampler({p.name: p.grid() for p in spec.params}, seed=spec.seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, max(1, spec.budget // 3)))


def rebuild(spec: SweepSpec, trials: Sequence[Trial]) -> optuna.Study:
    """The study as the runs tell it (see the module's docstring)."""
    study = optuna.create_study(
        storage=None,
        direction="maximize",
        sampler=_sampler(spec, len(trials)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER, n_warmup_steps=0)
        if spec.prune
        else optuna.pruners.NopPruner(),
    )
    for trial in sorted(trials, key=lambda t: t.number):
        study.add_trial(frozen(trial, spec))
    return study


def propose(spec: SweepSpec, trials: Sequence[Trial]) -> dict[str, Any] | None:
    """The next settings to try (None: a grid with every combination asked already)."""
    study = rebuild(spec, trials)
    if spec.sampler == "grid":
        tried = {tuple(sorted(t.params.items())) for t in trials}
        if len(tried) >= _grid_size(spec):
            return None
    return dict(study.ask(distributions(spec)).params)


def _grid_size(spec: SweepSpec) -> int:
    size = 1
    for p in spec.params:
        size *= len(p.grid())
    return size


def should_prune(spec: SweepSpec, trials: Sequence[Trial], running: Trial) -> bool:
    """Whether the median pruner stops `running` at its latest epoch: its validation accuracy is below the median
    of the finished trials' at the same epoch."""
    if not spec.prune or not running.curve:
        return False
    others = [t for t in trials if t.run.id != running.run.id]
    study = rebuild(spec, others)
    return bool(study.pruner.prune(study, frozen(running, spec)))


def importances(spec: SweepSpec, trials: Sequence[Trial]) -> dict[str, float]:
    """Which settings mattered most for the goal (Optuna's fANOVA), once at least 3 trials finished with
    different settings; {} before."""
    done = [t for t in trials if state_of(t, spec) == TrialState.COMPLETE]
    if len(done) < 3 or len(spec.params) < 1:
        return {}
    study = rebuild(spec, done)
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError, ZeroDivisionError):  # every trial tried the same value, one value only...
        return {}
