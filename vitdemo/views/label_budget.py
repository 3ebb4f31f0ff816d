"""The label-budget study as a file, a table and a plot: accuracy against the number of labels (100, 600, 6000,
all) for the CNN, the CNN + SimCLR, the ViT and the ViT + MAE on MNIST and Fashion-MNIST.

scripts/compare_label_budget.py --json OUT writes (and merges) the rows; the Leaderboard page reads the file that
ships beside the checkpoints (FILE_NAME). JSON only: nothing in it is ever executed or unpickled.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vitdemo.views.charts import ACCURACY_AXIS, plotly_text
from vitdemo.views.names import dataset_name

FORMAT, VERSION = "vitdemo-label-budget", 1
FILE_NAME = "label_budget.json"  # beside the shipped checkpoints
MODELS = ("CNN", "CNN + SimCLR", "ViT", "ViT + MAE")  # the study's four runs, in this order; probes come after
BUDGETS = (100, 600, 6000, 0)  # 0: every label
MEASURES = (  # row key -> table column
    ("train_acc", "train acc"),
    ("val_acc", "val acc"),
    ("test_acc", "test acc"),
    ("train_loss", "train loss"),
    ("val_loss", "val loss"),
    ("test_loss", "test loss"),
    ("test_macro_f1", "test macro F1"),
    ("finetune_s", "fine-tune (s)"),
    ("pretrain_s", "pretraining (s)"),
)
REQUIRED = ("dataset", "model", "labels", "test_acc")
COLORS = {"CNN": "#5b8def", "ViT": "#ff7a45"}  # a pretrained run: its model's colour, dashed
TABLE_COLUMNS = ("dataset", "model", "labels", *(name for _, name in MEASURES))
TRAIN_IMAGES = 55_000  # the training split the script's 'all' budget passes over (60,000 less 5,000 for validation)
UNDERTRAINED = 0.9  # below this share right on its own few labelled images, a run has not finished learning them


class BudgetFileError(ValueError):
    """The results file cannot be read as label-budget rows (the message names the file, not its folder)."""


def budget_text(labels: int) -> str:
    """100 -> '100', 6000 -> '6,000', 0 -> 'all'."""
    return "all" if labels == 0 else f"{labels:,}"


def _base_model(model: str) -> str:
    return model.split(" + ")[0]


def _model_order(model: str) -> tuple[int, str]:
    return (MODELS.index(model) if model in MODELS else len(MODELS), model)


def _budget_order(labels: int) -> int:
    return labels if labels > 0 else 10**12  # 'all' last


def check_row(row: Any, where: str) -> dict[str, Any]:
    """One row as a dict with the required keys and numbers where numbers belong; raises BudgetFileError."""
    if not isinstance(row, dict) or any(k not in row for k in REQUIRED):
        raise BudgetFileError(f"{where}: every row needs {', '.join(REQUIRED)}")
    if type(row["labels"]) is not int or row["labels"] < 0:
        raise BudgetFileError(f"{where}: labels must be a whole number (0 for all), got {row['labels']!r}")
    for key, _ in MEASURES:
        value = row.get(key)
        if value is not None and (not isinstance(value, int | float) or not math.isfinite(value)):
            raise BudgetFileError(f"{where}: {key} must be a number, got {value!r}")
    return dict(row)


def read_results(path: str | os.PathLike) -> tuple[list[dict[str, Any]], str]:
    """(rows, note) from a results file; raises BudgetFileError (naming the file only) when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BudgetFileError(f"{path.name} could not be read as JSON ({type(exc).__name__})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("rows"), list):
        raise BudgetFileError(f"{path.name} is not a label-budget results file")
    if int(data.get("version", 0)) > VERSION:
        raise BudgetFileError(f"{path.name} was written by a newer vitdemo (version {data['version']})")
    rows = [check_row(row, f"{path.name}, row {i + 1}") for i, row in enumerate(data["rows"])]
    return rows, str(data.get("note") or "")


def merge_rows(old: Iterable[dict[str, Any]], new: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`old` with every row of `new` added; a new row replaces the old one of the same dataset, model and budget.
    Sorted by dataset, model (MODELS order) and budget."""
    merged = {(r["dataset"], r["model"], r["labels"]): r for r in old}
    merged |= {(r["dataset"], r["model"], r["labels"]): r for r in new}
    return sorted(merged.values(), key=lambda r: (r["dataset"], _model_order(r["model"]), _budget_order(r["labels"])))


def write_results(path: str | os.PathLike, rows: Sequence[dict[str, Any]], note: str = "") -> Path:
    """Merge `rows` into the results file at `path` (created when missing; its note replaced when `note` is
    given), written atomically. Returns the path."""
    path = Path(path)
    old, old_note = read_results(path) if path.exists() else ([], "")
    data = {
        "format": FORMAT,
        "version": VERSION,
        "note": note or old_note,
        "rows": merge_rows(old, [check_row(r, "new row") for r in rows]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return path


def budget_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One line per run (columns TABLE_COLUMNS), by dataset, model and budget; accuracies as fractions."""
    table = [
        {
            "dataset": dataset_name(r["dataset"], short=True),
            "model": r["model"],
            "labels": budget_text(r["labels"]),
            **{name: r.get(key) for key, name in MEASURES},
        }
        for r in merge_rows([], rows)
    ]
    frame = pd.DataFrame(table, columns=list(TABLE_COLUMNS))
    for _, name in MEASURES:
        frame[name] = frame[name].astype("float64")
    return frame


def budget_figure(rows: Sequence[dict[str, Any]], *, height: int = 360) -> go.Figure:
    """Test accuracy against the label budget, one panel per dataset, one line per model (a pretrained run dashed,
    in its model's colour); the budgets are evenly spaced categories, 'all' last."""
    rows = merge_rows([], rows)
    datasets = sorted({r["dataset"] for r in rows}, key=lambda d: (d != "mnist", d))
    fig = make_subplots(
        rows=1, cols=max(1, len(datasets)), subplot_titles=[dataset_name(d) for d in datasets], shared_yaxes=False
    )
    budgets = sorted({r["labels"] for r in rows} | set(BUDGETS), key=_budget_order)
    in_legend: set[str] = set()  # each model once in the legend, whatever the panels it is in
    for col, dataset in enumerate(datasets, start=1):
        mine = [r for r in rows if r["dataset"] == dataset]
        for model in sorted({r["model"] for r in mine}, key=_model_order):
            points = sorted((r for r in mine if r["model"] == model), key=lambda r: _budget_order(r["labels"]))
            fig.add_trace(
                go.Scatter(
                    x=[budget_text(r["labels"]) for r in points],
                    y=[r["test_acc"] for r in points],
                    mode="lines+markers",
                    name=plotly_text(model),
                    legendgroup=model,
                    showlegend=model not in in_legend,
                    line={"color": COLORS.get(_base_model(model), "#9aa3b5"), "dash": "dash" if "+" in model else None},
                    hovertemplate=f"{plotly_text(model)}, %{{x}} labels: %{{y:.2%}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
            in_legend.add(model)
    fig.update_xaxes(
        title_text="labelled training images",
        type="category",
        categoryorder="array",
        categoryarray=[budget_text(b) for b in budgets],
        range=[-0.5, len(budgets) - 0.5],
        fixedrange=True,
    )  # fmt: skip  (the range shows every budget, measured or not)
    fig.update_yaxes(**ACCURACY_AXIS, fixedrange=True)  # from 0: honest gaps
    fig.update_yaxes(title_text="test accuracy", col=1)
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.1, "x": 0},
        hovermode="closest",
    )
    return fig


def budget_summary(rows: Sequence[dict[str, Any]], labels: int = 100) -> list[str]:
    """For each dataset, what pretraining did at `labels` labels: 'MNIST, 100 labels: ViT + MAE 75.6% against
    ViT 37.2% (+38.4 points); CNN + SimCLR ...'. Only the pairs measured at that budget."""
    lines = []
    for dataset in sorted({r["dataset"] for r in rows}, key=lambda d: (d != "mnist", d)):
        acc = {r["model"]: r["test_acc"] for r in rows if r["dataset"] == dataset and r["labels"] == labels}
        parts = [
            f"{pre} {acc[pre]:.1%} against {base} {acc[base]:.1%} ({100 * (acc[pre] - acc[base]):+.1f} points)"
            for base, pre in (("ViT", "ViT + MAE"), ("CNN", "CNN + SimCLR"))
            if base in acc and pre in acc
        ]
        if parts:
            lines.append(f"{dataset_name(dataset, short=True)}, {budget_text(labels)} labels: " + "; ".join(parts))
    return lines


def _steps(row: dict[str, Any]) -> int | None:
    """The optimiser steps a row's run took: its epochs over its labels (all: TRAIN_IMAGES) in batches."""
    epochs, batch = row.get("epochs"), row.get("batch_size")
    if not isinstance(epochs, int) or not isinstance(batch, int) or batch < 1:
        return None
    return epochs * math.ceil((row["labels"] or TRAIN_IMAGES) / batch)


def budget_caveat(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One plain sentence for each line that falls as the labels grow although the run never learnt even its own
    few labelled images (train accuracy under UNDERTRAINED): every run has the same short training, too short for
    that model, so the line shows the missing training, not the labels."""
    out = []
    for dataset in sorted({r["dataset"] for r in rows}, key=lambda d: (d != "mnist", d)):
        for model in sorted({r["model"] for r in rows if r["dataset"] == dataset}, key=_model_order):
            mine = sorted(
                (r for r in rows if (r["dataset"], r["model"]) == (dataset, model)), key=lambda r: r["labels"]
            )
            few = [r for r in mine if r["labels"] > 0]
            if (
                len(few) < 2
                or few[-1]["test_acc"] >= few[0]["test_acc"]
                or (few[0].get("train_acc") or 0) >= UNDERTRAINED
            ):
                continue
            steps, every = _steps(few[0]), [r for r in mine if r["labels"] == 0]
            climb = (
                f"; the 'all' run got {_steps(every[0]):,} steps, which is why it climbs"
                if every and _steps(every[0])
                else ""
            )
            out.append(
                f"The {model} on {dataset_name(dataset, short=True)} gets worse with more labels only because every "
                f"run here trains for the same {steps or 'few'} short steps, too few for a {model} to get going (it "
                f"reads only {few[0]['train_acc']:.0%} of its own {budget_text(few[0]['labels'])} training images "
                f"right), so extra labels cannot help it yet{climb}."
            )
    return out
