"""The class race as the Leaderboard and Present show it: standings to a milestone, one table per device."""

from __future__ import annotations

import pandas as pd

from vitdemo.runs.milestones import Finish
from vitdemo.units import format_duration
from vitdemo.views.names import model_name

PLACES = ("🥇", "🥈", "🥉")


def milestone_label(target: float) -> str:
    """0.99 -> '99%', 0.995 -> '99.5%'."""
    return f"{target * 100:g}%"


def standings_frame(finishes: list[Finish]) -> pd.DataFrame:
    """One row per person, fastest first: place, who, the run, its model, the time, the epoch that got there."""
    rows = [
        {
            "place": PLACES[i] if i < len(PLACES) else str(i + 1),
            "who": f.person,
            "run": f"#{f.run.id} {f.run.name}",
            "model": model_name(f.run.kind, f.run.config),
            "time": format_duration(f.seconds),
            "epoch": f.epoch,
            "validation accuracy": f.val_acc,
        }
        for i, f in enumerate(finishes)
    ]
    columns = ["place", "who", "run", "model", "time", "epoch", "validation accuracy"]
    return pd.DataFrame(rows, columns=columns)


def empty_race_text(target: float) -> str:
    return (
        f"No run has reached {milestone_label(target)} validation accuracy here yet. Train a CNN with the "
        "quick lesson preset on the Train page: it is the one to beat."
    )


def device_label(device: str) -> str:
    """'cpu' -> 'on this server's CPU', 'cuda' -> 'on a GPU': runs only race others on the same device."""
    return "on the CPU" if device == "cpu" else f"on {device.upper() if device == 'cuda' else device} (GPU)"
