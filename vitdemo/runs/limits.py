"""The teacher's limits per student: what one person may queue, checked by the queue when a run is submitted,
and two class-wide bounds that hold however many names a class makes: the runs all students may have in the
queue at once, and the names one device may give (`vitdemo.runs.people.register`).

Plain Python (no torch): the queue enforces them and the Train page shows them with the same sentences.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from vitdemo.config import ConfigError
from vitdemo.runconfig import ClassicRun, PretrainRun, RunConfig
from vitdemo.runs.admission import TRAIN_IMAGES, train_images
from vitdemo.units import format_minutes


# -- the teacher's limits -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """What one student may queue; the teacher is never limited. 0 means no limit."""

    # Sized for a lesson: 30 students share one CPU queue (one run at a time on 2 cores), so 30 runs of 2 minutes
    # already keep the last student waiting an hour; the form's "quick lesson" preset takes 20-30 s, "fast demo"
    # about 30 s (measured on the 2-core machine). The teacher raises them for a longer session.
    max_active_runs: int = 1  # queued or running at once, per student: the next one after the first has ended
    max_params: int = 2_000_000  # the largest model
    max_epochs: int = 10
    max_minutes: float = 2.0  # the estimated training time on this server
    max_class_runs: int = 20  # queued or running at once, all students together (one CPU trains one at a time)
    max_names_per_device: int = 3  # names one device (network address) may give: one student, and a shared laptop

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{f.name} must be a number of at least 0 (0: no limit), not {value!r}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> Limits:
        """The stored limits; the defaults for anything missing or unreadable (a limit is never lost to a typo)."""
        try:
            data = json.loads(text) if text else {}
            known = {f.name: f.type for f in dataclasses.fields(cls)}
            limits = cls(**{k: v for k, v in data.items() if k in known})
            limits.validate()
            return limits
        except (ValueError, TypeError, ConfigError):
            return cls()


def limit_problems(limits: Limits, *, num_params: int, epochs: int, minutes: float | None) -> list[str]:
    """One sentence per limit the run is over (empty: within every limit), each naming the limit."""
    out = []
    if limits.max_params and num_params > limits.max_params:
        out.append(
            f"This model has {num_params:,} parameters, over the class limit of {limits.max_params:,} "
            "(largest model): make it narrower or shallower."
        )
    if limits.max_epochs and epochs > limits.max_epochs:
        out.append(f"{epochs} epochs is over the class limit of {limits.max_epochs} epochs: train for fewer.")
    if limits.max_minutes and minutes is not None and minutes > limits.max_minutes:
        out.append(
            f"This run would take about {format_minutes(minutes)} on this server, over the class limit of "
            f"{format_minutes(limits.max_minutes)} (estimated time): use fewer epochs, a quick subset or a smaller model."
        )
    return out


def counted_epochs(config: RunConfig) -> int:
    """The epochs the class limit counts: a run's passes over the training split. A label-budget run's epochs
    pass over its few labels only, so they count as the full passes they add up to (at least one); a classic
    baseline fits once; a pretrain run adds its pretraining epochs."""
    if isinstance(config, ClassicRun):
        return 1
    if isinstance(config, PretrainRun):
        return config.pretrain.epochs + counted_epochs(config.train)
    if not config.labels:
        return config.epochs
    full = max(TRAIN_IMAGES - config.val_size, 1)
    return max(1, math.ceil(config.epochs * train_images(config) / full))


def class_problem(limits: Limits, active: int) -> str | None:
    """The sentence for a student's run when the class queue already holds `active` runs (None: there is room)."""
    if limits.max_class_runs and active >= limits.max_class_runs:
        return (
            f"The class queue is full ({active} runs queued or running, the teacher's class-wide limit): "
            "wait for a run to finish."
        )
    return None


def active_problem(limits: Limits, active: int) -> str | None:
    """The sentence for a student who already has `active` runs queued or running (None: one more is fine)."""
    if limits.max_active_runs and active >= limits.max_active_runs:
        return (
            f"You already have {active} run(s) queued or running, the class limit (runs in the queue per person): "
            "wait for one to finish or cancel one."
        )
    return None
