"""The lesson's path: Draw -> where they look -> fool them -> race or train -> compare. One plain sentence per
step, the page it happens on, and what comes next. Pure data and small functions; no Streamlit, no registry."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One step of the lesson, as the class sees it in the banner."""

    key: str  # stored on the server (the class's current step)
    title: str  # short, for the banner and the teacher's picker
    sentence: str  # what to do now, for a 15-year-old: one plain sentence
    page: str  # the app page the step happens on (a path st.page_link takes)
    page_name: str  # that page's name in the menu, for the link


STEPS: tuple[Step, ...] = (
    Step("draw", "Draw", "Draw a number and see what the two computer models think it is.",
         "app_pages/draw.py", "Draw"),
    Step("look", "Where they look", "Look at the coloured maps: the bright parts show where each model looked.",
         "app_pages/draw.py", "Draw"),
    Step("fool", "Fool them", "Try to draw a number that tricks a model, then send it to the class set.",
         "app_pages/draw.py", "Draw"),
    Step("race", "Race or train", "Watch the two models learn at the same time. Which one learns faster?",
         "app_pages/race.py", "Race"),
    Step("compare", "Compare", "Compare the models. Which one gets the most right, and where do they go wrong?",
         "app_pages/leaderboard.py", "Leaderboard"),
)  # fmt: skip
BY_KEY = {s.key: s for s in STEPS}


def step(key: str | None) -> Step | None:
    """The step called `key`; None for no lesson (None) or a key this version does not know."""
    return BY_KEY.get(key) if key else None


def number(s: Step) -> int:
    """1-based position of `s` in the lesson."""
    return STEPS.index(s) + 1


def next_step(s: Step | None) -> Step | None:
    """The step after `s` (the first one when no lesson runs); None after the last."""
    if s is None:
        return STEPS[0]
    i = STEPS.index(s)
    return STEPS[i + 1] if i + 1 < len(STEPS) else None


def previous_step(s: Step) -> Step | None:
    i = STEPS.index(s)
    return STEPS[i - 1] if i > 0 else None


def banner_text(s: Step) -> str:
    """'Step 2 of 5 · Where they look: Look at the coloured maps: ...'"""
    return f"Step {number(s)} of {len(STEPS)} · {s.title}: {s.sentence}"
