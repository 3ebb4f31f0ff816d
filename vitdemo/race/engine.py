"""A race: a ViT and a CNN trained at the same time on the same images, steered while it runs.

One `Race` is one background thread that owns both learners (vitdemo.race.sides). Everyone else (any number of
page sessions) talks to it through commands (play, pause, step, reset, new knobs, `call`) that the thread applies
between two training steps, never during one, and reads it through `view`: an immutable `RaceView` the thread
publishes after every point, mark or change of state. So a page never waits for a step, and 30 viewers cost the
race nothing but the reads.

Fairness: the next step goes to the side that has had less compute time so far, as if each had a core of its
own; the faster model sees more images per second, which is part of what the class compares. Each side records a
point every POINT_EVERY_S race seconds (its mean training loss since the last one) and a validation accuracy on a
small fixed subset every `eval_every` seconds. A knob change records a point for both sides just before it, then
a `Mark` at that moment, so the chart shows where it happened.

A race looks after itself: it pauses when nobody has looked at it (`touch`) for IDLE_PAUSE_S, and its thread ends
after IDLE_EXIT_S unlooked-at (a later command starts a new thread on the same models). A `gate` (the teacher's cap
on students' races, a busy server) can hold a playing race, and a `share` can slow it to that share of its core
(the class race while a queued run trains on the CPU: the run keeps most of the machine); both are asked about once a
second.

Torch-free to import: the thread imports vitdemo.race.sides when it first builds.
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, TypeVar

from vitdemo.race.knobs import SIDES, Change, Knobs, RaceConfig, changes, model_config, train_config
from vitdemo.race.state import (
    Mark,
    Point,
    RaceExport,
    RaceView,
    SideExport,
    SideView,
    State,
    rate,
    thin,
)
from vitdemo.training.watch import WatchRow

if TYPE_CHECKING:
    from vitdemo.data import Split
    from vitdemo.race.sides import RaceData, Side

POINT_EVERY_S = 0.5  # a loss point per side at least this often (race seconds): a knob shows within a second
IDLE_PAUSE_S = 90.0  # a playing race nobody has looked at for this long pauses
IDLE_EXIT_S = 600.0  # ... and its thread ends after this long (the models stay; a command starts a new thread)
GATE_EVERY_S = 1.0  # how often a playing race asks its gate whether it may go on
MERGE_S = 2.0  # turns of one knob closer than this (race seconds) make one mark
SLOWED = "slowed down: a run from the class queue is training on this computer"
T = TypeVar("T")
_RACES: weakref.WeakSet[Race] = weakref.WeakSet()  # every race of the process, to stop them at its exit


@atexit.register
def close_all(timeout: float = 2.0) -> None:
    """Stop every race's thread and wait for it a moment: a thread still inside torch when the interpreter ends
    aborts the process ("terminate called without an active exception")."""
    races = list(_RACES)
    for race in races:
        race.close()
    for race in races:
        race.join(timeout)


def eval_every(t: float) -> float:
    """Race seconds between two validations: every second at first, where the curve moves most, then rarer. Each
    costs the CNN about 0.15 s of its core (400 images, measured), time it does not train: every 0.5 s would take a
    third of the race's first seconds."""
    return 1.0 if t < 30 else 2.0 if t < 120 else 4.0


class Race:
    """See the module docstring. Commands return at once; `sync` waits until the thread has applied them."""

    def __init__(
        self,
        config: RaceConfig | None = None,
        knobs: Knobs | None = None,
        *,
        data_dir: str | None = None,
        gate: Callable[[], str | None] | None = None,
        share: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        idle_pause_s: float = IDLE_PAUSE_S,
        idle_exit_s: float = IDLE_EXIT_S,
    ) -> None:
        config, knobs = config or RaceConfig(), knobs or Knobs()
        config.validate()
        knobs.validate()
        self.data_dir, self.gate, self.share, self.clock = data_dir, gate, share, clock
        self.idle_pause_s, self.idle_exit_s = idle_pause_s, idle_exit_s
        self._cond = threading.Condition()
        self._commands: deque[Callable[[], None]] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._seen = clock()
        self._config, self._knobs = config, knobs  # as asked for (the thread applies them)
        self._view = RaceView(0, "starting", "", 0.0, config, knobs, (), ())
        # Owned by the thread from here on.
        self._applied, self._built = knobs, config  # the knobs and config the models have now
        self._data: RaceData | None = None
        self._train: Split | None = None
        self._sides: dict[str, Side] = {}
        self._points: dict[str, list[Point]] = {k: [] for k in SIDES}
        self._before: dict[str, tuple[Point, ...]] = {k: () for k in SIDES}
        self._restarts = dict.fromkeys(SIDES, 0)
        self._watch: dict[str, WatchRow | None] = dict.fromkeys(SIDES)
        self._last_point = dict.fromkeys(SIDES, 0.0)
        self._last_eval = dict.fromkeys(SIDES, 0.0)
        self._marks: list[Mark] = []
        self._wants_play, self._state, self._reason, self._error = False, "starting", "", ""
        self._t_base, self._t_since = 0.0, None  # race seconds before the current stretch of play; its start
        self._gate_at, self._held, self._share = -float("inf"), "", 1.0
        _RACES.add(self)
        self._ensure_thread()

    # -- what pages call (any thread) ------------------------------------------------------------------------
    @property
    def view(self) -> RaceView:
        return self._view

    def touch(self) -> None:
        """Someone is looking: keep playing (and start the thread again if it had ended)."""
        self._seen = self.clock()
        self._ensure_thread()

    def play(self) -> None:
        self._command(self._do_play)

    def pause(self) -> None:
        self._command(lambda: self._do_pause(""))

    def step(self) -> None:
        """One step of each model (while paused), then a point each, validated."""
        self._command(self._do_step)

    def reset(self, config: RaceConfig | None = None) -> None:
        """Both models from scratch (with `config`: a new dataset, say), the curves and marks cleared, paused."""
        if config is not None:
            config.validate()
            with self._cond:
                self._config = config
        self._command(self._build)

    def set_knobs(self, knobs: Knobs) -> list[Change]:
        """Ask for new knobs (applied before the next step); returns what the turn will do."""
        knobs.validate()
        with self._cond:
            done = changes(self._knobs, knobs)
            self._knobs = knobs
            self._view = dataclasses.replace(self._view, knobs=knobs)  # the knobs show at once
        self._command(self._apply_knobs)
        return done

    def call(self, fn: Callable[[], T]) -> Future[T]:
        """Run `fn` on the race's thread between two steps; its result (or exception) in the future."""
        future: Future[T] = Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except Exception as exc:  # handed to the caller
                future.set_exception(exc)

        self._command(run)
        return future

    def sync(self, timeout: float = 60.0) -> RaceView:
        """Wait until every command given so far has been applied; the view then."""
        self.call(lambda: None).result(timeout)
        return self._view

    def wait(self, until: Callable[[RaceView], bool], timeout: float) -> RaceView:
        """The first view for which `until` holds, or the latest one after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not until(self._view) and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            return self._view

    def export(self, timeout: float = 60.0) -> RaceExport:
        """Both sides as they can be saved, copied between two steps (the race may go on meanwhile)."""
        return self.call(self._export).result(timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (after `close`, or idle)."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _command(self, command: Callable[[], None]) -> None:
        with self._cond:
            self._commands.append(command)
            self._cond.notify_all()
        self.touch()

    def _ensure_thread(self) -> None:
        with self._cond:
            if self._closed or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._main, name="vitdemo-race", daemon=True)
            self._thread.start()

    # -- the thread --------------------------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            if not self._sides or self._state == "failed":
                self._build()
            while self._tick():
                pass
        except Exception as exc:  # the page shows it; Reset builds the race again
            self._wants_play, self._error = False, f"{type(exc).__name__}: {exc}"
            self._set_state("failed")

    def _tick(self) -> bool:
        """Apply what was asked, then one step if playing. False when the thread should end."""
        commands = self._take()
        if commands is None:
            return False
        for command in commands:
            command()
        if self._wants_play and self._may_play():
            self._advance()
        return True

    def _take(self) -> list[Callable[[], None]] | None:
        """The commands given since the last call; waits while there is nothing to do (None: end the thread)."""
        with self._cond:
            while not self._commands and not self._closed:
                idle = self.clock() - self._seen
                if self._wants_play and idle <= self.idle_pause_s:
                    break
                if self._wants_play:
                    self._commands.append(lambda: self._do_pause("paused: nobody has looked at it for a while"))
                    break
                if idle > self.idle_exit_s:
                    return None
                self._cond.wait(0.5)
            if self._closed:
                return None
            commands = list(self._commands)
            self._commands.clear()
            return commands

    def _may_play(self) -> bool:
        """Ask the gate (about once a second): a held race stops its clock and waits."""
        now = self.clock()
        if now - self._gate_at >= GATE_EVERY_S:
            self._gate_at = now
            self._held = (self.gate() or "") if self.gate is not None else ""
            self._share = min(1.0, max(0.05, self.share())) if self.share is not None else 1.0
        if self._held:
            if self._state != "waiting":
                self._stop_clock()
                self._reason = self._held
                self._set_state("waiting")
            with self._cond:
                self._cond.wait(0.25)
            return False
        slowed = SLOWED if self._share < 1.0 else ""
        if self._state != "playing" or self._reason != slowed:
            self._start_clock()
            self._reason = slowed
            self._set_state("playing")
        return True

    def _race_time(self) -> float:
        return self._t_base + (self.clock() - self._t_since if self._t_since is not None else 0.0)

    def _start_clock(self) -> None:
        if self._t_since is None:
            self._t_since = self.clock()

    def _stop_clock(self) -> None:
        self._t_base, self._t_since = self._race_time(), None

    # -- commands, applied by the thread -----------------------------------------------------------------------
    def _build(self) -> None:
        """Data (read once per process), both models from the race's seed, the first points (untrained)."""
        from vitdemo.race import sides

        self._wants_play, self._error, self._reason = False, "", ""
        self._stop_clock()
        self._set_state("starting")
        with self._cond:
            config, knobs = self._config, self._knobs
        self._data = sides.load_race_data(config, self.data_dir)
        self._applied, self._built = knobs, config
        self._train = sides.training_set(self._data, knobs)
        self._sides = {k: sides.Side(k, config, knobs, self._data) for k in SIDES}
        self._points = {k: [] for k in SIDES}
        self._before = {k: () for k in SIDES}
        self._restarts = dict.fromkeys(SIDES, 0)
        self._marks = []
        self._t_base, self._t_since = 0.0, None
        for kind in SIDES:
            self._point(kind, 0.0, validate=True)
            self._look(kind, 0.0)
        self._set_state("ready")

    def _do_play(self) -> None:
        if self._state != "failed":
            self._wants_play, self._gate_at = True, -float("inf")

    def _do_pause(self, reason: str) -> None:
        self._wants_play = False
        if self._state in ("playing", "waiting"):
            self._stop_clock()
            self._reason = reason
            self._set_state("paused")

    def _do_step(self) -> None:
        """One step each, timed into the race clock, then a validated point each."""
        if self._wants_play or self._state == "failed" or self._train is None:
            return
        start = self.clock()
        for side in self._sides.values():
            side.step(self._train)
        self._t_base += self.clock() - start
        t = self._race_time()
        for kind in SIDES:
            self._point(kind, t, validate=True)
            self._look(kind, t, force=True)
        self._set_state("paused")

    def _apply_knobs(self) -> None:
        """The knobs asked for, between two steps: a point for both sides first, then the change and its marks."""
        from vitdemo.race import sides

        with self._cond:
            new = self._knobs
        done = changes(self._applied, new)
        if not done or self._data is None:
            return
        t = self._race_time()
        for kind in SIDES:
            self._point(kind, t, validate=False)
        restart = {side for c in done if c.restart for side in c.sides}
        for kind, side in self._sides.items():
            if kind in restart:
                self._restart(kind, new, t)
            else:
                side.retune(new)
        data_knobs = ("train_size", "label_noise", "extra_data")
        if any(c.knob in data_knobs for c in done):
            self._train = sides.training_set(self._data, new)
            for side in self._sides.values():
                side.new_epoch(len(self._train))
        self._applied = new
        images = tuple(self._sides[k].images for k in SIDES)
        for change in done:
            self._mark(Mark(round(t, 3), images, change))
        self._publish()

    def _mark(self, mark: Mark) -> None:
        """Add a mark; a turn of the same knob within MERGE_S of the last mark is that mark's continuation (a
        slider moved notch by notch with the keyboard, or dragged back and forth), and a training knob turned back
        to where it was leaves no mark."""
        last = self._marks[-1] if self._marks else None
        if last is None or last.change.knob != mark.change.knob or mark.t - last.t > MERGE_S:
            self._marks.append(mark)
            return
        self._marks.pop()
        if last.change.old != mark.change.new or mark.change.restart:  # a restarted model is always marked
            self._marks.append(dataclasses.replace(last, change=dataclasses.replace(mark.change, old=last.change.old)))

    def _restart(self, kind: str, knobs: Knobs, t: float) -> None:
        """A new model for side `kind` (an architecture knob): its old curve is kept as `before`."""
        from vitdemo.race import sides

        assert self._data is not None
        config = self._built
        self._before[kind] = tuple(self._points[kind])
        self._points[kind] = []
        self._restarts[kind] += 1
        new = sides.Side(kind, config, knobs, self._data)
        new.compute_s = max(s.compute_s for s in self._sides.values())  # fair from now on, not a catch-up
        self._sides[kind] = new
        self._point(kind, t, validate=True)
        self._look(kind, t, force=True)

    def _export(self) -> RaceExport:
        view, out = self._view, []
        assert self._data is not None
        config = self._built
        for kind, side in self._sides.items():
            cfg = train_config(config, self._applied, kind, passes=side.epoch_progress())
            model = copy.deepcopy(side.learner.model).cpu().eval()
            side_view = view.side(kind)
            assert side_view is not None
            out.append(SideExport(kind, cfg, model, side_view))
        return RaceExport(view, tuple(out), self._data, self._applied.label_noise)

    # -- training --------------------------------------------------------------------------------------------
    def _advance(self) -> None:
        """One step of the side that has had less compute time, then the points and looks that are due."""
        assert self._train is not None
        kind = min(self._sides, key=lambda k: self._sides[k].compute_s)
        before = self._sides[kind].compute_s
        self._sides[kind].step(self._train)
        if self._share < 1.0:  # give the rest of the core away: wait as long as the step's share asks
            with self._cond:
                self._cond.wait((self._sides[kind].compute_s - before) * (1.0 / self._share - 1.0))
        t, moved = self._race_time(), False
        for k in SIDES:
            if t - self._last_point[k] >= POINT_EVERY_S:
                due = t - self._last_eval[k] >= (eval_every(t) if self._last_eval[k] else POINT_EVERY_S)
                self._point(k, t, validate=due)  # the first validation after half a second: a curve at once
                moved = True
            moved = self._look(k, t) or moved
        if moved:
            self._publish()

    def _point(self, kind: str, t: float, *, validate: bool) -> None:
        side, data = self._sides[kind], self._data
        assert data is not None
        if not validate and not side.pending:  # nothing trained since the last point
            return
        loss, acc = side.take_loss()
        val_loss = val_acc = None
        if validate:
            val_loss, val_acc = side.evaluate(data.val, data.mean, data.std)
            self._last_eval[kind] = t
        point = Point(round(t, 3), side.images, side.steps, round(side.epoch_progress(), 4), loss, acc,
                      float(side.config.lr), val_loss, val_acc)  # fmt: skip
        self._points[kind].append(point)
        thin(self._points[kind])
        self._last_point[kind] = t

    def _look(self, kind: str, t: float, *, force: bool = False) -> bool:
        row = self._sides[kind].look(t, force=force)
        if row is not None:
            self._watch[kind] = row
        return row is not None

    # -- publishing ------------------------------------------------------------------------------------------
    def _set_state(self, state: State) -> None:
        self._state = state
        self._publish()

    def _side_view(self, kind: str) -> SideView:
        side, points = self._sides.get(kind), self._points[kind]
        if side is None:
            return SideView(kind, None, 0, 0, 0, 0.0, 0.0, (), (), None, 0)
        return SideView(kind, model_config(self._built, self._applied, kind), side.params, side.steps, side.images,
                        side.epoch_progress(), rate(points), tuple(points), self._before[kind], self._watch[kind],
                        self._restarts[kind])  # fmt: skip

    def _publish(self) -> None:
        with self._cond:
            view = RaceView(
                self._view.version + 1, self._state, self._reason, round(self._race_time(), 3), self._built,
                self._knobs, tuple(self._side_view(k) for k in SIDES), tuple(self._marks), self._error,
            )  # fmt: skip
            self._view = view
            self._cond.notify_all()
