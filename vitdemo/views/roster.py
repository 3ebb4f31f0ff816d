"""The teacher's view of the class: who joined (a table) and what the teacher-password guard has seen, as text.
Pure functions (no Streamlit); names are anyone's input, so they stay plain table cells."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from vitdemo.runs.people import Member
from vitdemo.runs.teacher import GuessStats


def _clock(at: float | None) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%H:%M") if at is not None else ""


def roster_frame(members: list[Member]) -> pd.DataFrame:
    """One row per person, in the order they joined: name, when, from which device, runs, blocked."""
    return pd.DataFrame(
        {
            "name": [m.name for m in members],
            "joined": [_clock(m.joined_at) for m in members],
            "device": [m.address or "" for m in members],
            "runs in the queue": [m.active_runs for m in members],
            "runs": [m.runs for m in members],
            "blocked": [m.blocked for m in members],
        }
    )


def guesses_text(stats: GuessStats) -> str:
    """One sentence on the wrong teacher-password guesses since the server started (never what was typed)."""
    if not stats.wrong_total:
        return "No wrong teacher password or code has been tried since the app started."
    text = (
        f"Wrong teacher passwords or codes tried since the app started: {stats.wrong_total} "
        f"({stats.wrong_recent} in the last hour, the last at {_clock(stats.last_wrong_at)})."
    )
    if stats.locked_until is not None:
        text += f" Unlocking waits until {_clock(stats.locked_until)}."
    return text
