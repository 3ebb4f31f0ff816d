"""Figures and tables for "Can you trust this map?" and calibration on the Evaluate page: deletion and insertion
curves (vitdemo.explain.trust) and the reliability diagram (vitdemo.calibration). Plotly and pandas; no Streamlit."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vitdemo.calibration import Reliability
from vitdemo.explain.trust import BASELINE_NAMES, TrustReport
from vitdemo.views.charts import PALETTE

MAP_COLORS = {"model": "#ff7a45", "random": "#9aa3b5", "centre": "#5b8def"}  # the model's map in the accent
MAP_DASH = {"model": "solid", "random": "dot", "centre": "dash"}
PERFECT_COLOR = "#9aa3b5"


def trust_frame(report: TrustReport) -> pd.DataFrame:
    """One row per map: deletion AUC (lower is better), insertion AUC (higher is better), background share."""
    frame = pd.DataFrame(report.rows(), columns=["map", "deletion AUC", "insertion AUC", "background share"])
    return frame.astype({"deletion AUC": "float64", "insertion AUC": "float64", "background share": "float64"})


def trust_figure(report: TrustReport, *, explanation: str = "map", height: int = 400) -> go.Figure:
    """Deletion (left) and insertion (right): the predicted class's mean probability against the fraction of
    pixels blanked or put back, in the order of each map. The legend carries each map's AUC."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("deletion (lower is better)", "insertion (higher is better)"),
        horizontal_spacing=0.1,
    )
    x = report.fractions
    for name, scores in report.scores.items():
        label = explanation if name == "model" else BASELINE_NAMES[name]
        for col, (curve, auc) in enumerate(
            ((scores.deletion, scores.deletion_auc), (scores.insertion, scores.insertion_auc)), start=1
        ):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=curve,
                    mode="lines",
                    name=f"{label} (AUC {scores.deletion_auc:.3f} / {scores.insertion_auc:.3f})",
                    legendgroup=name,
                    showlegend=col == 1,
                    line={"color": MAP_COLORS.get(name, PALETTE[0]), "dash": MAP_DASH.get(name, "solid"), "width": 3},
                    hovertemplate=f"{label}: %{{y:.1%}} at %{{x:.0%}} of the pixels, AUC {auc:.3f}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    fig.update_xaxes(title_text="pixels blanked, top first", col=1)
    fig.update_xaxes(title_text="pixels put back, top first", col=2)
    fig.update_yaxes(title_text="probability of the prediction", tickformat=".0%", range=[0, 1.02], col=1)
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02], col=2)
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0},
    )
    return fig


def reliability_figure(curves: Mapping[str, Reliability], *, height: int = 380) -> go.Figure:
    """Reliability diagram: for each confidence bin, how often the model was right (bars, one colour per run)
    against the diagonal of perfect calibration; below, how many predictions fell in each bin (log scale)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.06)
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfectly calibrated",
            line={"color": PERFECT_COLOR, "dash": "dash"},
            hoverinfo="skip",
        ),
        row=1,
        col=1,
    )
    for i, (name, rel) in enumerate(curves.items()):
        used = rel.count > 0
        centres = (rel.edges[:-1] + rel.edges[1:]) / 2
        width = float(np.diff(rel.edges).mean()) / max(1, len(curves))
        offset = (i - (len(curves) - 1) / 2) * width
        color = PALETTE[i % len(PALETTE)]
        hover = [
            f"{name}: said {c:.1%} on average, right {a:.1%} of {n:,} times"
            for c, a, n in zip(rel.confidence[used], rel.accuracy[used], rel.count[used], strict=True)
        ]
        fig.add_trace(
            go.Bar(
                x=centres[used] + offset,
                y=rel.accuracy[used],
                width=width * 0.9,
                name=f"{name} (ECE {rel.ece:.2%})",
                marker={"color": color},
                legendgroup=name,
                hovertext=hover,
                hovertemplate="%{hovertext}<extra></extra>",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Bar(
                x=centres[used] + offset,
                y=rel.count[used],
                width=width * 0.9,
                marker={"color": color},
                legendgroup=name,
                showlegend=False,
                hovertemplate="%{y:,} predictions<extra></extra>",
            ),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text="right (accuracy)", tickformat=".0%", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="predictions", type="log", row=2, col=1)
    fig.update_xaxes(title_text="confidence the model gave (calibrated)", tickformat=".0%", range=[0, 1.0], row=2)
    fig.update_xaxes(range=[0, 1.0], row=1)
    fig.update_layout(
        height=height,
        barmode="overlay",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    )
    return fig
