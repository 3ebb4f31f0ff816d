"""The lesson's shared state, kept in the registry's settings table like the class limits and the pause: the
teacher's current step and the view (Simple or Expert) a new browser session starts in. Only the teacher may
change either; the check is here, on the server, whatever a page shows or hides (`people.NotAllowed` says no).

Reading is one small SELECT, cheap enough for every open page to poll every few seconds.
"""

from __future__ import annotations

from typing import Literal

from vitdemo.lesson.steps import BY_KEY, Step, step
from vitdemo.runs.people import Actor, NotAllowed
from vitdemo.runs.store import Registry

STEP_KEY = "lesson_step"  # settings key: the current step's key; '' while no lesson runs
VIEW_KEY = "default_view"  # settings key: 'simple' or 'expert', the view a new session starts in
View = Literal["simple", "expert"]
VIEWS: tuple[View, ...] = ("simple", "expert")
DEFAULT_VIEW: View = "simple"  # students start with plain words; the teacher may choose Expert for a class


def _teacher_only(actor: Actor, what: str) -> None:
    if not actor.teacher:
        raise NotAllowed(f"Only the teacher can {what}.")


def current_step(store: Registry) -> Step | None:
    """The teacher's current step; None while no lesson runs (or on a registry too old for settings)."""
    return step(store.get_setting(STEP_KEY))


def set_step(store: Registry, key: str | None, actor: Actor) -> Step | None:
    """Move the class to step `key` (None: end the lesson). The teacher only; an unknown step is a ValueError."""
    _teacher_only(actor, "move the lesson on")
    if key is not None and key not in BY_KEY:
        raise ValueError(f"There is no lesson step called {key!r}.")
    store.set_setting(STEP_KEY, key or "")
    return step(key)


def class_view(store: Registry) -> View:
    """The view a new session starts in: the teacher's choice, else Simple."""
    value = store.get_setting(VIEW_KEY)
    return value if value in VIEWS else DEFAULT_VIEW  # type: ignore[return-value]


def set_class_view(store: Registry, view: str, actor: Actor) -> None:
    """The teacher's choice of the view new sessions start in ('simple' or 'expert', else a ValueError)."""
    _teacher_only(actor, "choose the class's view")
    if view not in VIEWS:
        raise ValueError(f"The view must be one of {', '.join(VIEWS)}.")
    store.set_setting(VIEW_KEY, view)
