"""What the Robustness lab shows of a sweep: accuracy against each change in four small panels, and the one
sentence that reads the measured curves. Pure plotly and text over `vitdemo.explain.robustness.SweepResult`."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vitdemo.explain.robustness import SweepResult
from vitdemo.views.charts import PALETTE
from vitdemo.views.colors import MODEL_COLORS
from vitdemo.views.names import KINDS, kind_name

CHANGE_TITLES = {"shift": "shift", "rotate": "rotation", "scale": "scale", "stroke": "stroke width"}
TIE = 0.01  # mean accuracies closer than one point: "about the same"
UNITS = {"shift": " px", "rotate": "°", "scale": "×", "stroke": ""}


def change_title(name: str) -> str:
    return CHANGE_TITLES.get(name, name)


def value_text(change: str, value: float) -> str:
    """'+4 px', '-30°', '1.25×', '+2' (stroke steps)."""
    if change == "scale":
        return f"{value:g}×"
    return f"{value:+g}{UNITS.get(change, '')}"


def mean_accuracy(result: SweepResult, model: str, change: str) -> float:
    """The accuracy averaged over a change's values: the area under its curve, one number per panel."""
    return float(np.mean(result.accuracy[model][change]))


def models_in_order(result: SweepResult) -> list[str]:
    """The sweep's models, ViT before CNN (the sidebar's order), then any other."""
    return sorted(result.accuracy, key=lambda m: list(KINDS).index(m) if m in KINDS else len(KINDS))


def sweep_figure(result: SweepResult, *, height: int = 460) -> go.Figure:
    """Accuracy (y) against each change (x), one panel per change in a 2x2 grid, one line per model; the dotted
    line marks the unchanged image. The hover also gives the mean calibrated probability of the true class."""
    changes = list(result.values)
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=[change_title(c) for c in changes],
        horizontal_spacing=0.1,
        vertical_spacing=0.2,
    )
    for i, change in enumerate(changes):
        row, col = i // 2 + 1, i % 2 + 1
        x = result.values[change]
        for model in models_in_order(result):
            name = kind_name(model)
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=result.accuracy[model][change],
                    customdata=result.true_prob[model][change],
                    mode="lines+markers",
                    name=name,
                    legendgroup=model,
                    showlegend=i == 0,
                    line={"color": MODEL_COLORS.get(model, PALETTE[2]), "width": 3},
                    marker={"size": 6},
                    hovertemplate=f"{name}: %{{y:.1%}} right, %{{customdata:.0%}} on the truth<extra></extra>",
                ),
                row=row,
                col=col,
            )
        identity = 1.0 if change == "scale" else 0.0
        fig.add_vline(x=identity, line={"dash": "dot", "width": 1, "color": "#9aa3b5"}, row=row, col=col)
        fig.update_xaxes(title_text=result.labels.get(change, change), title_standoff=4, row=row, col=col)
    fig.update_yaxes(range=[0, 1.04], tickformat=".0%", dtick=0.25)
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.08, "x": 0},
        hovermode="x unified",
    )
    return fig


def _comparison(result: SweepResult, change: str, a: str, b: str) -> tuple[str | None, str]:
    """(the model that holds up better under `change`, or None for a tie; 'shift (71.2% vs 63.0%)')."""
    acc_a, acc_b = mean_accuracy(result, a, change), mean_accuracy(result, b, change)
    if abs(acc_a - acc_b) < TIE:
        return None, change_title(change)
    winner, hi, lo = (a, acc_a, acc_b) if acc_a > acc_b else (b, acc_b, acc_a)
    return winner, f"{change_title(change)} ({hi:.1%} vs {lo:.1%})"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def summary_sentence(result: SweepResult) -> str:
    """One sentence read off the measured curves: which model holds up better under which change, by its
    accuracy averaged over the values swept (the other model's in brackets)."""
    models = models_in_order(result)
    head = f"Averaged over each range on {result.n:,} test images, "
    if len(models) == 1:
        (m,) = models
        parts = [f"{change_title(c)} {mean_accuracy(result, m, c):.1%}" for c in result.values]
        return head + f"the {kind_name(m)} keeps this accuracy: {_join(parts)}."
    a, b = models[:2]
    better: dict[str | None, list[str]] = {a: [], b: [], None: []}
    for change in result.values:
        winner, text = _comparison(result, change, a, b)
        better[winner].append(text)
    clauses = [f"the {kind_name(m)} holds up better under {_join(better[m])}" for m in (a, b) if better[m]]
    if better[None]:
        clauses.append(f"the two are within a point of each other under {_join(better[None])}")
    return head + _join(clauses) + "."
