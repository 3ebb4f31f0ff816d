"""Tables and figures for the Train, Evaluate and Leaderboard pages: pure pandas and plotly builders over
runs, epochs and predictions (no Streamlit), so what a page shows is tested without a browser."""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vitdemo.metrics import EvalReport
from vitdemo.runs.store import Run
from vitdemo.units import csv_cell, format_duration
from vitdemo.views.colors import colorscale
from vitdemo.views.names import dataset_name, family_name, family_of, model_name

TRAIN_COLOR, VAL_COLOR = "#5b8def", "#ff7a45"  # the theme's accent is the validation (held-out) curve
BACKGROUND = "#0e1117"  # the dark theme's page (.streamlit/config.toml): every line is read against it
# Accuracy is always shown 0-100% in steps of 20: a class compares charts at a glance, an empty chart reads
# 0%..100% (not 0% / 200% / 400%), and ticks never repeat (99.5%, 99.5%, 99.4%); 1.02 keeps a marker at 100% whole.
ACCURACY_AXIS: dict[str, Any] = {"range": [0, 1.02], "tick0": 0, "dtick": 0.2, "tickformat": ".0%"}
PALETTE = ("#ff7a45", "#5b8def", "#3fb68b", "#f2c94c", "#bb6bd9", "#56ccf2", "#eb5757", "#9aa3b5")
HEAT_COLORS = colorscale()  # the explanation overlays' inferno, as a plotly colour scale
METRICS = {  # epoch column -> what a chart calls it
    "val_acc": "validation accuracy",
    "train_acc": "training accuracy",
    "val_loss": "validation loss",
    "train_loss": "training loss",
}
LEADERBOARD_COLUMNS = (
    "id", "name", "shipped", "by", "kind", "family", "dataset", "parameters", "test accuracy", "macro F1", "training time (s)",
    "device", "epochs", "date", "status",
)  # fmt: skip


# -- text -------------------------------------------------------------------------------------------
def literal_markdown(text: str) -> str:
    """`text` (a run or person name: anyone's input) for st.markdown, st.caption, st.success...: shown exactly as
    typed, never as a link, an image, bold, a heading, LaTeX or a Streamlit :directive:. Every character that is
    not a letter, a digit or a space becomes a numeric character reference (`[` -> `&#91;`), which markdown
    prints as that character and never reads as syntax; line breaks become spaces."""
    return "".join(ch if ch.isalnum() or ch == " " else f"&#{ord(ch)};" for ch in " ".join(str(text).split()))


def plotly_text(text: str) -> str:
    """`text` for a plotly legend or title, which reads a few HTML tags (`<a href>` is a link): escaped."""
    return html.escape(str(text), quote=False)


def progress_of(run: Run) -> tuple[float, str]:
    """(fraction done in [0, 1], 'epoch 2/5 · step 120/300 · 3,400 images/s · about 12 s left') of a run."""
    p = run.progress or {}
    total = int(p.get("total_steps") or 0)
    step = int(p.get("step") or 0)
    if run.status == "queued":
        return 0.0, "waiting for the worker"
    if not total:
        if p.get("phase") == "fitting":
            return 0.0, "fitting the scikit-learn model"
        return 0.0, "starting: loading the data and building the model"
    fraction = min(max(step / total, 0.0), 1.0)
    if p.get("phase") and not str(p["phase"]).startswith("pretraining"):  # a scikit-learn fit: one step
        return fraction, str(p["phase"])
    parts = [
        str(p["phase"]) if p.get("phase") else f"epoch {int(p.get('epoch') or 1)}/{run.epochs or '?'}",
        f"step {step:,}/{total:,}",
        f"{float(p.get('images_per_s') or 0):,.0f} images/s",
    ]
    if step >= total:
        parts.append("testing on the 10,000 test images")
    else:
        parts.append(f"about {format_duration(float(p.get('eta_s') or 0))} left")
    return fraction, " · ".join(parts)


def run_title(run: Run) -> str:
    """'#7 vit-mnist-p7-d64x4-e2 (ViT, MNIST)', '#9 tl (ResNet-18, MNIST)'."""
    return f"#{run.id} {run.name} ({model_name(run.kind, run.config)}, {dataset_name(run.dataset, short=True)})"


def run_family(run: Run) -> str:
    """The family a run belongs to, as shown ('Classic', 'Transfer', 'Pretrained'...): vitdemo.views.names."""
    return family_name(family_of(run.kind, run.config))


# -- tables -----------------------------------------------------------------------------------------
def leaderboard_frame(runs: Sequence[Run], names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Every run as one row (columns LEADERBOARD_COLUMNS), best test accuracy first, unfinished runs last;
    `by` is the owner's name (`names`: owner -> name)."""
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "by": (names or {}).get(r.owner, r.owner),
            "kind": model_name(r.kind, r.config),
            "family": run_family(r),
            "dataset": dataset_name(r.dataset, short=True),
            "parameters": r.num_params,
            "test accuracy": r.test_acc,
            "macro F1": r.macro_f1,
            "training time (s)": None if r.train_time_s is None else round(r.train_time_s, 1),
            "device": r.device,
            "epochs": r.epochs_done,
            "date": dt.datetime.fromtimestamp(r.finished_at or r.created_at).replace(microsecond=0),
            "status": r.status,
            "shipped": r.baseline,
        }
        for r in runs
    ]
    frame = pd.DataFrame(rows, columns=list(LEADERBOARD_COLUMNS))
    frame["parameters"] = frame["parameters"].astype("Int64")
    for col in ("test accuracy", "macro F1", "training time (s)"):
        frame[col] = frame[col].astype("float64")
    frame = frame.sort_values(["test accuracy", "macro F1", "id"], ascending=[False, False, True], na_position="last")
    return frame.reset_index(drop=True)


def filter_leaderboard(
    frame: pd.DataFrame,
    *,
    datasets: Sequence[str] = (),
    kinds: Sequence[str] = (),
    statuses: Sequence[str] = (),
    text: str = "",
    families: Sequence[str] = (),
) -> pd.DataFrame:
    """Rows matching every filter given (an empty filter keeps everything); `text` searches the name."""
    keep = pd.Series(True, index=frame.index)
    filters = (("dataset", datasets), ("kind", kinds), ("family", families), ("status", statuses))
    for col, allowed in filters:
        if allowed:
            keep &= frame[col].isin(list(allowed))
    if text.strip():
        keep &= frame["name"].str.contains(text.strip(), case=False, regex=False)
    return frame[keep].reset_index(drop=True)


def leaderboard_csv(frame: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV, accuracy as fractions, dates in ISO format; text cells that a spreadsheet would
    run as formulas (`=cmd|' /C calc'!A0`) are escaped with a leading quote (`csv_cell`)."""
    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(csv_cell)
    safe.columns = [csv_cell(str(c)) for c in safe.columns]
    # RFC 4180 line ends: with them the csv writer quotes any cell holding a carriage return or a line feed
    return safe.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S", lineterminator="\r\n").encode("utf-8")


QUEUE_COLUMNS = ("place", "id", "name", "by", "status", "progress", "device")


def queue_order(runs: Sequence[Run]) -> list[Run]:
    """Queued and running runs in the order the workers take them: running first, then the queue by id."""
    return sorted((r for r in runs if r.active), key=lambda r: (r.status != "running", r.id))


def queue_places(runs: Sequence[Run]) -> dict[int, int]:
    """Run id -> its place in the queue (1: next to start), for the queued runs of each device."""
    places, counts = {}, {}
    for r in queue_order(runs):
        if r.status == "queued":
            key = r.device or "cpu"
            counts[key] = counts.get(key, 0) + 1
            places[r.id] = counts[key]
    return places


def where_of(run: Run) -> str:
    """Where a run trains as its executor said ('node 10.0.0.5 · GPU 0' on a Ray cluster; '' otherwise)."""
    return str((run.progress or {}).get("where") or "") if run.status == "running" else ""


def queue_frame(runs: Sequence[Run], names: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Queued and running runs in the order the workers take them (columns QUEUE_COLUMNS): `place` ('training',
    or '1', '2'... in its device's queue), and `by`, the owner's name (`names`: owner -> name)."""
    places, rows = queue_places(runs), []
    for r in queue_order(runs):
        fraction, _ = progress_of(r)
        rows.append(
            {
                "place": str(places[r.id]) if r.id in places else "training",
                "id": r.id,
                "name": r.name,
                "by": (names or {}).get(r.owner, r.owner),
                "status": r.status,
                "progress": round(100 * fraction),
                "device": where_of(r) or r.device,  # a cluster's node and device, else the device
            }
        )
    return pd.DataFrame(rows, columns=list(QUEUE_COLUMNS))


def per_class_frame(report: EvalReport, classes: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class, plus the errors in each class's row."""
    pc = report.per_class
    errors = report.confusion.sum(axis=1) - np.diag(report.confusion)  # (C,)
    return pd.DataFrame(
        {
            "class": list(classes),
            "precision": pc.precision,
            "recall": pc.recall,
            "F1": pc.f1,
            "support": pc.support,
            "errors": errors,
        }
    )


# -- predictions ----------------------------------------------------------------------------------------
def cell_examples(
    labels: np.ndarray, probs: np.ndarray, true_class: int, pred_class: int, limit: int = 12
) -> np.ndarray:
    """Indices (K,) of the test images in one confusion cell, the most confident predictions first.

    labels (N,) int, probs (N, C). For an off-diagonal cell these are the confident mistakes.
    """
    preds = probs.argmax(1)  # (N,)
    idx = np.flatnonzero((labels == true_class) & (preds == pred_class))
    order = np.argsort(-probs[idx, pred_class], kind="stable")
    return idx[order][:limit].astype(np.int64)


def disagreements(labels: np.ndarray, preds_a: np.ndarray, preds_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices model A gets right and B wrong, indices B gets right and A wrong), each (K,) int64."""
    a_ok, b_ok = preds_a == labels, preds_b == labels
    return np.flatnonzero(a_ok & ~b_ok).astype(np.int64), np.flatnonzero(b_ok & ~a_ok).astype(np.int64)


def image_caption(true_label: str, pred_label: str, confidence: float) -> str:
    return f"true {true_label} · predicted {pred_label} ({confidence:.0%})"


# -- figures ------------------------------------------------------------------------------------------------
def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.04, "x": 0},
        hovermode="x unified",
    )
    return fig


def epoch_axis(last_epoch: float) -> dict[str, Any]:
    """An epoch x-axis from 0 to `last_epoch` (at least 1) with whole-number ticks, about ten at most."""
    last = max(float(last_epoch), 1.0)
    return {"range": [0, last * 1.02], "tick0": 0, "dtick": max(1, math.ceil(last / 10)), "tickformat": "d"}


def curves_figure(epochs: Sequence[dict[str, Any]], *, stacked: bool = False, height: int | None = None) -> go.Figure:
    """Loss and accuracy per epoch, training and validation; side by side, or one above the other
    (`stacked`, for a narrow column). An empty chart before epoch 1. The panels are named by their y-axis titles,
    not subplot titles, so that no title sits on another panel's 'epoch' or under the legend; stacked, only the
    lower panel says 'epoch'."""
    rows, cols = (2, 1) if stacked else (1, 2)
    fig = make_subplots(rows=rows, cols=cols, shared_xaxes=stacked, horizontal_spacing=0.12, vertical_spacing=0.08)
    x = [e["epoch"] for e in epochs]
    for i, metric in enumerate(("loss", "acc")):
        row, col = (i + 1, 1) if stacked else (1, i + 1)
        for split, color in (("train", TRAIN_COLOR), ("val", VAL_COLOR)):
            y = [e.get(f"{split}_{metric}") for e in epochs]
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines+markers",
                    name="training" if split == "train" else "validation",
                    line={"color": color},
                    legendgroup=split,
                    showlegend=i == 0,
                    hovertemplate="%{y:.2%}" if metric == "acc" else "%{y:.4f}",
                ),
                row=row,
                col=col,
            )
    fig.update_xaxes(**epoch_axis(max(x, default=1)))
    fig.update_xaxes(title_text="epoch", row=rows, col=cols)
    if not stacked:
        fig.update_xaxes(title_text="epoch", row=1, col=1)
    fig.update_yaxes(title_text="loss", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", **ACCURACY_AXIS, row=rows, col=cols)
    return _layout(fig, height or (480 if stacked else 320))


def overlay_figure(
    curves: dict[str, Sequence[dict[str, Any]]], metric: str = "val_acc", *, height: int = 380
) -> go.Figure:
    """One line per run (name -> its epochs) of `metric`, to compare runs on one chart."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: expected one of {', '.join(METRICS)}")
    fig = go.Figure()
    for i, (name, epochs) in enumerate(curves.items()):
        fig.add_trace(
            go.Scatter(
                x=[e["epoch"] for e in epochs],
                y=[e.get(metric) for e in epochs],
                mode="lines+markers",
                name=plotly_text(name),  # a run's name is anyone's text: no HTML in the legend
                line={"color": PALETTE[i % len(PALETTE)]},
                hovertemplate="%{y:.2%}" if metric.endswith("acc") else "%{y:.4f}",
            )
        )
    last = max((float(e["epoch"]) for epochs in curves.values() for e in epochs), default=1.0)
    fig.update_xaxes(title_text="epoch", **epoch_axis(last))
    scale = ACCURACY_AXIS if metric.endswith("acc") else {"rangemode": "tozero"}
    fig.update_yaxes(title_text=METRICS[metric], **scale)
    return _layout(fig, height)
