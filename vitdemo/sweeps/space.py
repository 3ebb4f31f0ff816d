"""What a sweep varies and how it is judged: `Param` (one setting and its range), `SweepSpec` (the base run, the
parameters, a budget of runs, a goal), and `apply` (a trial's values on the base config). No optuna, no torch.

A parameter is a TrainConfig field ('lr', 'epochs', 'augment', ...) or a model field ('model.depth',
'model.patch_size', 'model.width'); its range is low..high (log-spaced for a learning rate or a weight decay) or
a list of choices. On the command line: 'lr=1e-4..1e-2:log', 'model.depth=2..6', 'model.patch_size=4,7'.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vitdemo.config import ConfigError, TrainConfig

GOALS = {
    "val_acc": "validation accuracy",
    "acc_per_s": "validation accuracy per second of training",
}
SAMPLERS = ("tpe", "grid")  # Optuna's TPE, or every combination of the choices (a range gives GRID_POINTS)
GRID_POINTS = 3  # a range in a grid: its ends and its (geometric, for log) middle
MAX_BUDGET = 200
NOT_VARIED = ("model.kind", "dataset", "device", "name", "init", "resume", "extra_data", "weights_path", "task")


@dataclass(frozen=True)
class Param:
    """One setting a sweep varies: `name` ('lr', 'model.depth'), a range (`low`..`high`, whole numbers when
    `integer`, log-spaced when `log`) or `choices`."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()

    def validate(self) -> None:
        if self.name in NOT_VARIED:
            raise ConfigError(f"a sweep cannot vary {self.name}")
        if self.choices:
            if len(set(self.choices)) < 1:
                raise ConfigError(f"{self.name}: give at least one choice")
            return
        if self.low is None or self.high is None or not self.low < self.high:
            raise ConfigError(f"{self.name}: the range must go from a lower to a higher value")
        if self.log and self.low <= 0:
            raise ConfigError(f"{self.name}: a log range must stay above 0")

    def grid(self) -> list[Any]:
        """The values a grid tries."""
        if self.choices:
            return list(self.choices)
        assert self.low is not None and self.high is not None
        mid = (self.low * self.high) ** 0.5 if self.log else (self.low + self.high) / 2
        values = [self.low, mid, self.high]
        return sorted({round(v) for v in values}) if self.integer else values


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and "e" not in text.lower() and "." not in text else value


def parse_param(text: str) -> Param:
    """'lr=1e-4..1e-2:log' -> a log range; 'model.depth=2..6' -> whole numbers; 'model.patch_size=4,7' -> choices.
    ConfigError with the expected form for anything else."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise ConfigError(f"{text!r}: write NAME=LOW..HIGH[:log] or NAME=A,B,C (e.g. lr=1e-4..1e-2:log)")
    rest, _, flag = rest.partition(":")
    try:
        if ".." in rest:
            low, high = (_number(v.strip()) for v in rest.split("..", 1))
            integer = isinstance(low, int) and isinstance(high, int)
            return Param(name.strip(), float(low), float(high), log=flag.strip() == "log", integer=integer)
        return Param(name.strip(), choices=tuple(_number(v.strip()) for v in rest.split(",")))
    except ValueError:
        raise ConfigError(f"{text!r}: the values must be numbers (e.g. lr=1e-4..1e-2:log)") from None


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: `budget` runs of `base` with `params` changed, judged by `goal` (GOALS); hopeless runs stop early
    (`prune`: Optuna's median pruner on each epoch's validation accuracy); `parallel` runs at once (0: as many
    as the executor holds)."""

    base: TrainConfig
    params: tuple[Param, ...]
    budget: int = 12
    goal: str = "val_acc"
    sampler: str = "tpe"
    seed: int = 0
    prune: bool = True
    parallel: int = 0

    def validate(self) -> None:
        if not self.params:
            raise ConfigError("a sweep varies at least one setting")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ConfigError("each setting may be varied once")
        if not 1 <= self.budget <= MAX_BUDGET:
            raise ConfigError(f"the budget must be between 1 and {MAX_BUDGET} runs")
        if self.goal not in GOALS:
            raise ConfigError(f"the goal must be one of {', '.join(GOALS)}")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"the sampler must be one of {', '.join(SAMPLERS)}")
        if self.parallel < 0:
            raise ConfigError("parallel must be 0 (as many as the executor holds) or more")
        for p in self.params:
            p.validate()
        for corner in (lambda p: p.grid()[0], lambda p: p.grid()[-1]):  # both ends must be runnable settings
            apply(self.base, {p.name: corner(p) for p in self.params}).validate()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["base"] = self.base.to_dict()
        d["params"] = [{**dataclasses.asdict(p), "choices": list(p.choices)} for p in self.params]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SweepSpec:
        params = tuple(Param(**{**p, "choices": tuple(p.get("choices", ()))}) for p in d["params"])
        rest = {k: v for k, v in d.items() if k not in ("base", "params")}
        return cls(base=TrainConfig.from_dict(dict(d["base"])), params=params, **rest)


def apply(base: TrainConfig, values: Mapping[str, Any]) -> TrainConfig:
    """`base` with a trial's values ('lr', 'model.depth', ...); an unknown name is a ConfigError."""
    top: dict[str, Any] = {}
    model: dict[str, Any] = {}
    model_fields = {f.name: f for f in dataclasses.fields(base.model)}
    top_fields = {f.name: f for f in dataclasses.fields(base)}
    for name, value in values.items():
        if name.startswith("model."):
            key = name.split(".", 1)[1]
            if key not in model_fields or key == "kind":
                raise ConfigError(f"a {base.model.kind} model has no setting {key!r}")
            model[key] = _typed(value, getattr(base.model, key))
        elif name in top_fields and name != "model":
            top[name] = _typed(value, getattr(base, name))
        else:
            raise ConfigError(f"a training has no setting {name!r}")
    return dataclasses.replace(base, model=dataclasses.replace(base.model, **model), **top)


def _typed(value: Any, like: Any) -> Any:
    """A sampled value as the setting's own type (Optuna hands back floats and ints)."""
    if isinstance(like, bool):
        return bool(value)
    if isinstance(like, int):
        return int(round(float(value)))
    if isinstance(like, float):
        return float(value)
    return value
