"""A sweep on screen, without Streamlit: the settings a form offers to vary, the trials as a table, a
parallel-coordinates plot of settings against the goal, the best value so far against time, and which settings
mattered most (vitdemo.sweeps.report.SweepSummary)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go

from vitdemo.sweeps.space import GOALS, Param

if TYPE_CHECKING:  # a summary is made only where Optuna is installed (vitdemo.sweeps.report): never imported here
    from vitdemo.sweeps.report import SweepSummary

ORANGE = "#e8710a"


@dataclass(frozen=True)
class Candidate:
    """A setting the sweep form offers, with the range it starts from."""

    label: str
    param: Param


COMMON = (
    Candidate("learning rate", Param("lr", 1e-4, 1e-2, log=True)),
    Candidate("epochs", Param("epochs", 1, 5, integer=True)),
    Candidate("weight decay", Param("weight_decay", 1e-4, 0.1, log=True)),
    Candidate("augmentation", Param("augment", 0.0, 1.0)),
    Candidate("batch size", Param("batch_size", choices=(64, 128, 256))),
)
BY_KIND = {
    "vit": (
        Candidate("ViT depth", Param("model.depth", 2, 6, integer=True)),
        Candidate("ViT width (hidden size)", Param("model.embed_dim", choices=(32, 64, 128))),
        Candidate("ViT patch size", Param("model.patch_size", choices=(4, 7))),
    ),
    "cnn": (
        Candidate("CNN width", Param("model.width", 8, 32, integer=True)),
        Candidate("CNN depth", Param("model.depth", 1, 3, integer=True)),
    ),
}


def candidates(kind: str) -> list[Candidate]:
    """What a sweep of a `kind` model may vary, the training's settings first."""
    return [*COMMON, *BY_KIND.get(kind, ())]


def goal_label(goal: str) -> str:
    return GOALS.get(goal, goal)


def _shown(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def trials_frame(summary: SweepSummary) -> pd.DataFrame:
    """One row per trial: run, state, the goal's value, then each setting it tried."""
    rows = [
        {"run": f"#{r['run_id']}", "state": r["state"], "value": r["value"], **{k: _shown(v) for k, v in r["params"].items()}}
        for r in summary.rows
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _dimension(name: str, values: list[Any]) -> dict[str, Any]:
    """A parcoords axis: numbers as they are; anything else as its position among the choices."""
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return {"label": name, "values": [float(v) for v in values]}
    labels = sorted({str(v) for v in values})
    return {"label": name, "values": [labels.index(str(v)) for v in values], "tickvals": list(range(len(labels))),
            "ticktext": labels}  # fmt: skip


def parallel_figure(summary: SweepSummary, goal: str) -> go.Figure | None:
    """Each finished trial a line through its settings to its value, coloured by the value (None before one)."""
    scored = [r for r in summary.rows if r["value"] is not None]
    if not scored:
        return None
    names = sorted({k for r in scored for k in r["params"]})
    dims = [_dimension(n, [r["params"].get(n) for r in scored]) for n in names]
    values = [r["value"] for r in scored]
    dims.append({"label": goal_label(goal), "values": values})
    line = {"color": values, "colorscale": "Viridis", "showscale": True}
    fig = go.Figure(go.Parcoords(line=line, dimensions=dims))
    fig.update_layout(height=320, margin={"l": 60, "r": 40, "t": 40, "b": 20})
    return fig


def best_so_far_figure(summary: SweepSummary, goal: str) -> go.Figure | None:
    """The best value found against the seconds since the sweep started (None before a trial finished)."""
    if not summary.best_so_far:
        return None
    t, best = zip(*summary.best_so_far, strict=True)
    fig = go.Figure(go.Scatter(x=list(t), y=list(best), mode="lines+markers", line={"shape": "hv", "color": ORANGE}))
    fig.update_layout(height=260, margin={"l": 50, "r": 20, "t": 30, "b": 40}, xaxis_title="seconds since the start",
                      yaxis_title=f"best {goal_label(goal)}")  # fmt: skip
    return fig


def importance_figure(summary: SweepSummary) -> go.Figure | None:
    """Which settings mattered most (Optuna's fANOVA share of the goal's variance); None before 3 finished."""
    if not summary.importance:
        return None
    names = list(summary.importance)[::-1]
    fig = go.Figure(go.Bar(x=[summary.importance[n] for n in names], y=names, orientation="h", marker_color=ORANGE))
    fig.update_layout(height=60 + 30 * len(names), margin={"l": 120, "r": 20, "t": 20, "b": 30}, xaxis_tickformat=".0%")
    return fig


def sweep_caption(summary: SweepSummary, budget: int, over: bool) -> str:
    done = sum(r["state"] == "done" for r in summary.rows)
    state = "over" if over else "running"
    best = f"; best {summary.best['value']:.4f} (run #{summary.best['run_id']})" if summary.best else ""
    return f"{len(summary.rows)} of {budget} trials asked, {done} done, {summary.pruned} stopped early; {state}{best}."
