"""What a race shows: each side's points, the marks where a knob changed, and the immutable views and exports the
race's thread publishes (vitdemo.race.engine). Plain dataclasses, torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from vitdemo.race.knobs import Change, Knobs, RaceConfig
from vitdemo.training.watch import WatchRow

MAX_POINTS = 600  # per side; past it every second point goes (a chart a few hundred pixels wide shows no more)
RATE_POINTS = 6  # images per second are measured over this many points (about 3 s)
State = Literal["starting", "ready", "playing", "paused", "waiting", "failed"]


@dataclass(frozen=True)
class Point:
    """One side at one moment of the race."""

    t: float  # race seconds: time spent playing (and stepping), not paused
    images: int  # images this side's current model has trained on
    step: int
    epoch: float  # passes over the training set (2.5: half-way through the third)
    loss: float  # mean training loss of the images since the previous point (NaN: none)
    train_acc: float
    lr: float
    val_loss: float | None = None  # on the race's validation subset, when it was evaluated at this point
    val_acc: float | None = None


@dataclass(frozen=True)
class Mark:
    """A knob turned at race second `t`, when the sides had trained on `images` (in SIDES order)."""

    t: float
    images: tuple[int, ...]
    change: Change


@dataclass(frozen=True)
class SideView:
    kind: str
    model: Any  # its ViTConfig or CNNConfig
    params: int
    steps: int
    images: int
    epochs: float
    images_per_s: float  # over the last few points
    points: tuple[Point, ...]
    before: tuple[Point, ...]  # the previous model's curve (until an architecture knob restarted this side)
    watch: WatchRow | None
    restarts: int

    @property
    def val_acc(self) -> float | None:
        """The latest validation accuracy (None before the first)."""
        return next((p.val_acc for p in reversed(self.points) if p.val_acc is not None), None)


@dataclass(frozen=True)
class RaceView:
    """Everything a page shows of a race, at one moment; `version` grows with every publication."""

    version: int
    state: State
    reason: str  # why it is paused or waiting ("" when there is nothing to say)
    t: float
    config: RaceConfig
    knobs: Knobs  # as last asked for: a change shows in the knobs at once, in the curves at the next step
    sides: tuple[SideView, ...]
    marks: tuple[Mark, ...]
    error: str = ""

    def side(self, kind: str) -> SideView | None:
        return next((s for s in self.sides if s.kind == kind), None)

    @property
    def steps(self) -> int:
        return sum(s.steps for s in self.sides)


@dataclass(frozen=True)
class SideExport:
    """A side as it can be saved: its model copied to the CPU (eval mode) and its config at the current knobs."""

    kind: str
    config: Any  # TrainConfig
    model: Any  # nn.Module
    view: SideView


@dataclass(frozen=True)
class RaceExport:
    view: RaceView
    sides: tuple[SideExport, ...]
    data: Any  # RaceData
    label_noise: float


def thin(points: list[Point]) -> None:
    """Every second point but the first and the newest, once there are MAX_POINTS."""
    if len(points) > MAX_POINTS:
        points[:] = points[:-1:2] + points[-1:]


def rate(points: list[Point]) -> float:
    recent = points[-RATE_POINTS:]
    if len(recent) < 2 or recent[-1].t <= recent[0].t:
        return 0.0
    return (recent[-1].images - recent[0].images) / (recent[-1].t - recent[0].t)
