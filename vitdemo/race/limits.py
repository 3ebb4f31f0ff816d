"""The teacher's cap on students' own races (`RaceCap`, kept in the registry's settings beside the queue's limits)
and the server-wide `Roster` that enforces it. No torch.

Why a cap and a roster rather than the queue: a race is not a run. It lives in one page session, trains on the
server's spare core for as long as someone watches it, and must start within a second of Play; a queue would make
it wait its turn behind real runs. Instead each playing student race asks the roster about once a second (its
gate, vitdemo.race.engine) whether it may go on: no while the teacher allows no student race, no while a real run
trains on the CPU (unless the teacher allows it: the queue's runs are not starved), and no past the teacher's
number of races at once. A race that stops asking (paused, its tab closed) leaves the roster by itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from vitdemo.config import ConfigError
from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.people import Actor, NotAllowed
from vitdemo.runs.store import Registry

CAP_KEY = "race_cap"  # the registry settings key
STALE_S = 3.0  # a race that has not asked the roster for this long is no longer training


@dataclass(frozen=True)
class RaceCap:
    """What the teacher allows students' own races (the teacher's class race is never capped)."""

    student_races: int = 2  # students' races training at once on this server; 0 = none (each takes a core)
    max_images: int = 5000  # the largest training set of a student's race; 0 = no cap
    while_runs: bool = False  # students' races go on while a queued run trains on the CPU (False: they wait)

    def validate(self) -> None:
        for name in ("student_races", "max_images"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ConfigError(
                    f"{name} must be a whole number of at least 0 (0: {'none' if name[0] == 's' else 'no cap'})"
                )
        if not isinstance(self.while_runs, bool):
            raise ConfigError("while_runs must be true or false")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> RaceCap:
        """The stored cap; the defaults for anything missing or unreadable."""
        try:
            data = json.loads(text) if text else {}
            known = {f.name for f in dataclasses.fields(cls)}
            cap = cls(**{k: v for k, v in data.items() if k in known})
            cap.validate()
            return cap
        except (ValueError, TypeError, ConfigError):
            return cls()


def get_cap(reg: Registry) -> RaceCap:
    return RaceCap.from_json(reg.get_setting(CAP_KEY))


def set_cap(reg: Registry, cap: RaceCap, actor: Actor) -> None:
    if not actor.teacher:
        raise NotAllowed("Only the teacher can change what students' races may do.")
    cap.validate()
    reg.set_setting(CAP_KEY, cap.to_json())


def cpu_run_training(reg: Registry) -> bool:
    """A queued run is training on this server's CPU now (a GPU run leaves the cores alone)."""
    return bool(reg.list_runs(status="running", device="cpu"))


class Roster:
    """Which students' races are training now, on this server (one per process, shared by every session)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._racing: dict[str, float] = {}  # race key -> when it last asked
        self.clock = clock

    def racing(self) -> int:
        with self._lock:
            self._forget_stale()
            return len(self._racing)

    def gate(self, key: str, cap: RaceCap, busy: Callable[[], bool]) -> str | None:
        """None when race `key` may train for another second; else why it waits (a sentence for its page)."""
        if cap.student_races == 0:
            return self._leave(key, "waiting: the teacher has switched students' own races off for now")
        if not cap.while_runs and busy():
            return self._leave(
                key, "waiting: a run from the class queue is training on the server; yours goes on after it"
            )
        with self._lock:
            self._forget_stale()
            if key in self._racing or len(self._racing) < cap.student_races:
                self._racing[key] = self.clock()
                return None
            n = len(self._racing)
        return (
            f"waiting: {n} students' races are training, the most the teacher allows at once; "
            "yours starts when one of them pauses"
        )

    def _leave(self, key: str, reason: str) -> str:
        with self._lock:
            self._racing.pop(key, None)
        return reason

    def _forget_stale(self) -> None:
        now = self.clock()
        for key in [k for k, at in self._racing.items() if now - at > STALE_S]:
            del self._racing[key]


def student_gate(key: str, reg: Registry, roster: Roster) -> Callable[[], str | None]:
    """The gate of student race `key` (vitdemo.race.engine.Race's `gate`): the teacher's cap as the registry holds
    it now, and whether a run trains on the CPU. Called from the race's thread about once a second; a registry
    that cannot be read counts as the default cap and a quiet server."""

    def read(call: Callable[[], object], default: object) -> object:
        try:
            return call()
        except RegistryError:
            return default

    def gate() -> str | None:
        cap = read(lambda: get_cap(reg), RaceCap())
        assert isinstance(cap, RaceCap)
        return roster.gate(key, cap, lambda: bool(read(lambda: cpu_run_training(reg), False)))

    return gate


BUSY_SHARE = 0.35  # the class race's share of its core while a queued run trains on the CPU (measured: see README)
ENV_SHARE = "VITDEMO_RACE_SHARE"  # another share (0.05 to 1): a server whose runs train on a GPU can give 1


def busy_share() -> float:
    raw = os.environ.get(ENV_SHARE, "").strip()
    try:
        return min(1.0, max(0.05, float(raw))) if raw else BUSY_SHARE
    except ValueError:
        return BUSY_SHARE


def class_share(reg: Registry) -> Callable[[], float]:
    """The class race's `share` (vitdemo.race.engine.Race): all of its core, or `busy_share()` of it while a queued
    run trains on the CPU, so the run is not starved and the class still sees the race move."""
    busy = busy_share()

    def share() -> float:
        try:
            return busy if cpu_run_training(reg) else 1.0
        except RegistryError:
            return 1.0

    return share
