"""Charts and tables for "Can you trust this map?" and calibration on the Evaluate page: deletion and insertion
curves (vitdemo.explain.trust) and the reliability diagram (vitdemo.calibration). Altair (Vega-Lite) and pandas; no
Streamlit.

Why Vega-Lite and not plotly here: these charts sit on Evaluate's first visit, and Streamlit's plotly bundle (about
4.7 MB of JavaScript, parsed while the page draws) held up its confusion matrix by 1-2 s; Vega-Lite's is about
0.8 MB. The other pages keep plotly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import altair as alt
import numpy as np
import pandas as pd

from vitdemo.calibration import Reliability
from vitdemo.explain.trust import BASELINE_NAMES, TrustReport
from vitdemo.views.charts import PALETTE
from vitdemo.views.words import say

MAP_COLORS = {"model": "#ff7a45", "random": "#9aa3b5", "centre": "#5b8def"}  # the model's map in the accent
PLAIN_LEGEND = {"model": "legend_model", "random": "legend_random", "centre": "legend_centre"}  # words.py keys
MAP_DASH = {"model": [1, 0], "random": [2, 3], "centre": [8, 4]}  # solid, dotted, dashed
PERFECT = "perfectly calibrated"
PERFECT_COLOR = "#9aa3b5"
PERCENT = alt.Axis(format=".0%", values=[0, 0.25, 0.5, 0.75, 1.0])  # 0-100%, no repeated ticks
CURVES = {  # panel -> (its title, its x axis)
    "deletion": ("deletion (lower is better)", "pixels blanked, top first"),
    "insertion": ("insertion (higher is better)", "pixels put back, top first"),
}


def trust_frame(report: TrustReport) -> pd.DataFrame:
    """One row per map: deletion AUC (lower is better), insertion AUC (higher is better), background share."""
    frame = pd.DataFrame(report.rows(), columns=["map", "deletion AUC", "insertion AUC", "background share"])
    return frame.astype({"deletion AUC": "float64", "insertion AUC": "float64", "background share": "float64"})


def map_labels(report: TrustReport, explanation: str = "map", *, plain: bool = False) -> dict[str, str]:
    """Map key -> its legend entry, with both AUCs: 'integrated gradients (AUC 0.120 / 0.870)'; `plain` (the
    Simple view): the words alone, no method name and no AUC ('the map', 'random dots')."""
    if plain:
        return {name: say("evaluate", PLAIN_LEGEND[name]) for name in report.scores}
    return {
        name: f"{explanation if name == 'model' else BASELINE_NAMES[name]} "
        f"(AUC {scores.deletion_auc:.3f} / {scores.insertion_auc:.3f})"
        for name, scores in report.scores.items()
    }


def curve_frame(report: TrustReport, explanation: str = "map", *, plain: bool = False) -> pd.DataFrame:
    """Long form, one row per map and step: map (its legend entry), fraction, deletion, insertion."""
    labels = map_labels(report, explanation, plain=plain)
    rows = [
        {"map": labels[name], "fraction": float(f), "deletion": float(d), "insertion": float(i)}
        for name, scores in report.scores.items()
        for f, d, i in zip(report.fractions, scores.deletion, scores.insertion, strict=True)
    ]
    return pd.DataFrame(rows, columns=["map", "fraction", "deletion", "insertion"])


def trust_chart(
    report: TrustReport,
    panel: Literal["deletion", "insertion"],
    *,
    explanation: str = "map",
    plain: bool = False,
    height: int = 400,
) -> alt.Chart:
    """Deletion or insertion: the predicted class's mean probability against the fraction of pixels blanked or
    put back, in the order of each map (the model's solid, in the accent). The legend carries each map's AUCs.
    No title of its own (Streamlit's frame cut it): the page writes CURVES[panel][0] above it."""
    x_title = CURVES[panel][1]
    labels = map_labels(report, explanation, plain=plain)
    domain = list(labels.values())
    color = alt.Scale(domain=domain, range=[MAP_COLORS.get(k, PALETTE[0]) for k in labels])
    dash = alt.Scale(domain=domain, range=[MAP_DASH.get(k, [1, 0]) for k in labels])
    legend = alt.Legend(title=None, orient="bottom", direction="vertical", labelLimit=400)
    return (
        alt.Chart(curve_frame(report, explanation, plain=plain), height=height)
        .mark_line(strokeWidth=3)
        .encode(
            x=alt.X("fraction:Q", title=x_title, scale=alt.Scale(domain=[0, 1]), axis=PERCENT),
            y=alt.Y(f"{panel}:Q", title="probability of the prediction", scale=alt.Scale(domain=[0, 1]), axis=PERCENT),
            color=alt.Color("map:N", scale=color, legend=legend),
            strokeDash=alt.StrokeDash("map:N", scale=dash, legend=legend),
            tooltip=[
                alt.Tooltip("map:N"),
                alt.Tooltip("fraction:Q", format=".0%", title="pixels"),
                alt.Tooltip(f"{panel}:Q", format=".1%", title="probability"),
            ],
        )
    )


def run_label(name: str, rel: Reliability) -> str:
    return f"{name} (ECE {rel.ece:.2%})"


def bin_frame(curves: Mapping[str, Reliability]) -> pd.DataFrame:
    """One row per run and used confidence bin: run (its legend entry), lo and hi (the bar's edges, side by side
    within the bin), confidence, accuracy, count."""
    rows = []
    for i, (name, rel) in enumerate(curves.items()):
        width = float(np.diff(rel.edges).mean()) / max(1, len(curves))
        for b in np.flatnonzero(rel.count > 0):
            lo = float(rel.edges[b]) + i * width
            rows.append(
                {
                    "run": run_label(name, rel), "lo": lo + 0.05 * width, "hi": lo + 0.95 * width,
                    "confidence": float(rel.confidence[b]), "accuracy": float(rel.accuracy[b]),
                    "count": int(rel.count[b]),
                }
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["run", "lo", "hi", "confidence", "accuracy", "count"])


def _run_colors(curves: Mapping[str, Reliability]) -> tuple[list[str], list[str]]:
    labels = [run_label(name, rel) for name, rel in curves.items()]
    return labels, [PALETTE[i % len(PALETTE)] for i in range(len(labels))]


def reliability_chart(curves: Mapping[str, Reliability], *, height: int = 300) -> alt.LayerChart:
    """Reliability diagram: for each confidence bin, how often the model was right (bars, one colour per run)
    against the dashed diagonal of perfect calibration."""
    labels, colors = _run_colors(curves)
    scale = alt.Scale(domain=[*labels, PERFECT], range=[*colors, PERFECT_COLOR])
    legend = alt.Legend(title=None, orient="top", labelLimit=400)
    x = alt.X("lo:Q", title="confidence the model gave (calibrated)", scale=alt.Scale(domain=[0, 1]), axis=PERCENT)
    bars = (
        alt.Chart(bin_frame(curves))
        .mark_bar()
        .encode(
            x=x, x2="hi:Q",
            y=alt.Y("accuracy:Q", title="right (accuracy)", scale=alt.Scale(domain=[0, 1]), axis=PERCENT),
            y2=alt.datum(0),  # a bar from 0 (with x and x2 given, Vega-Lite would draw a thin mark at y)
            color=alt.Color("run:N", scale=scale, legend=legend),
            tooltip=[alt.Tooltip("run:N"), alt.Tooltip("confidence:Q", format=".1%", title="said on average"),
                     alt.Tooltip("accuracy:Q", format=".1%", title="right"), alt.Tooltip("count:Q", format=",")],
        )
    )  # fmt: skip
    diagonal = (
        alt.Chart(pd.DataFrame({"lo": [0.0, 1.0], "accuracy": [0.0, 1.0], "run": [PERFECT, PERFECT]}))
        .mark_line(strokeDash=[6, 4], strokeWidth=2)
        .encode(x=x, y="accuracy:Q", color=alt.Color("run:N", scale=scale, legend=legend))
    )
    return alt.layer(bars, diagonal, height=height)  # the diagonal over the bars, seen across them


def count_chart(curves: Mapping[str, Reliability], *, height: int = 170) -> alt.Chart:
    """How many predictions fell in each confidence bin (log scale), under the reliability diagram."""
    labels, colors = _run_colors(curves)
    return (
        alt.Chart(bin_frame(curves), height=height)
        .mark_bar()
        .encode(
            x=alt.X("lo:Q", title="confidence the model gave (calibrated)", scale=alt.Scale(domain=[0, 1]),
                    axis=PERCENT),
            x2="hi:Q",
            y=alt.Y("count:Q", title="predictions", scale=alt.Scale(type="log", domainMin=1),
                    axis=alt.Axis(format="~s", values=[1, 10, 100, 1_000, 10_000])),
            y2=alt.datum(1),  # from one prediction: a log scale has no 0
            color=alt.Color("run:N", scale=alt.Scale(domain=labels, range=colors), legend=None),
            tooltip=[alt.Tooltip("run:N"), alt.Tooltip("count:Q", format=",", title="predictions")],
        )
    )  # fmt: skip
