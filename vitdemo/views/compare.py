"""Any number of runs side by side, for the Evaluate and Leaderboard pages: the metrics table and the confusion
matrices in a grid with one colour scale. Pure pandas and plotly over runs and their test-set scores; no Streamlit.
(Their training curves overlaid: vitdemo.views.charts.overlay_figure.)"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vitdemo.calibration import expected_calibration_error
from vitdemo.runs.store import Run
from vitdemo.views.charts import HEAT_COLORS, plotly_text, run_family
from vitdemo.views.names import FAMILIES, family_of, model_name

if TYPE_CHECKING:
    from vitdemo.metrics import Scores

COMPARE_COLUMNS = (
    "id", "run", "model", "family", "test accuracy", "macro F1", "test loss", "calibration error", "parameters",
    "training time (s)",
)  # fmt: skip
PER_ROW = 3  # confusion matrices per row: ten classes stay readable at 1280x720
MAX_TITLE = 34  # characters of a run's title above its matrix


def family_options(runs: Sequence[Run]) -> list[str]:
    """The families (keys of FAMILIES, in its order; unknown ones after) that the runs belong to."""
    found = {family_of(r.kind, r.config) for r in runs}
    return [f for f in FAMILIES if f in found] + sorted(found - set(FAMILIES))


def in_families(runs: Sequence[Run], families: Sequence[str]) -> list[Run]:
    """The runs of the given families (keys of FAMILIES); no family given keeps every run."""
    if not families:
        return list(runs)
    return [r for r in runs if family_of(r.kind, r.config) in families]


def default_pair(runs: Sequence[Run], dataset: str) -> list[int]:
    """Ids of the shipped ViT and CNN of `dataset` (those that exist), the pair the app is about: the files
    vit_<dataset> and cnn_<dataset> when registered, else the first shipped run of each family."""
    picked = []
    for kind in ("vit", "cnn"):
        shipped = [r for r in runs if r.baseline and r.dataset == dataset and family_of(r.kind, r.config) == kind]
        named = [r for r in shipped if Path(r.checkpoint or "").stem == f"{kind}_{dataset}"]
        if named or shipped:
            picked.append((named or shipped)[0].id)
    return picked


def comparison_frame(runs: Sequence[Run], scores: Mapping[int, Scores] | None = None) -> pd.DataFrame:
    """One row per run, in the order given (columns COMPARE_COLUMNS). A run scored here (`scores`: run id ->
    its test-split Scores) shows what was measured now, loss and calibration error included; the others show
    what the registry stored (no loss, no calibration error)."""
    scores = scores or {}
    rows = []
    for r in runs:
        s = scores.get(r.id)
        rows.append(
            {
                "id": r.id,
                "run": r.name,
                "model": model_name(r.kind, r.config),
                "family": run_family(r),
                "test accuracy": s.report.accuracy if s is not None else r.test_acc,
                "macro F1": s.report.macro_f1 if s is not None else r.macro_f1,
                "test loss": s.loss if s is not None else None,
                "calibration error": expected_calibration_error(s.probs, s.labels) if s is not None else None,
                "parameters": r.num_params,
                "training time (s)": None if r.train_time_s is None else round(r.train_time_s, 1),
            }
        )
    frame = pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
    frame["parameters"] = frame["parameters"].astype("Int64")
    for col in ("test accuracy", "macro F1", "test loss", "calibration error", "training time (s)"):
        frame[col] = frame[col].astype("float64")
    return frame


def short_title(text: str, limit: int = MAX_TITLE) -> str:
    """`text` cut to `limit` characters with an ellipsis, so a long run name does not run over its neighbour."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _count_ticks(top: int) -> tuple[list[float], list[str]]:
    """Colour-bar ticks for log1p-scaled counts: 0, 1, 10, 100... up to `top`."""
    counts = [0] + [10**k for k in range(int(math.log10(max(top, 1))) + 1)]
    return [float(np.log1p(c)) for c in counts], [f"{c:,}" for c in counts]


def confusion_grid_figure(
    confusions: Sequence[np.ndarray],
    titles: Sequence[str],
    classes: Sequence[str],
    *,
    per_row: int = PER_ROW,
    row_height: int = 330,
) -> go.Figure:
    """The runs' confusion matrices (rows true, columns predicted), at most `per_row` in a row, on one log colour
    scale shared by all (the same colour is the same count in every matrix), each cell with its count."""
    if len(confusions) != len(titles) or not confusions:
        raise ValueError(f"one title per confusion matrix was expected, got {len(titles)} for {len(confusions)}")
    names = [str(c) for c in classes]
    mats = [np.asarray(cm, dtype=np.int64) for cm in confusions]  # each (C, C)
    if any(cm.shape != (len(names), len(names)) for cm in mats):
        raise ValueError(f"every matrix must be ({len(names)}, {len(names)}), one row and column per class")
    cols = min(per_row, len(mats))
    rows = math.ceil(len(mats) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[plotly_text(short_title(t)) for t in titles],
        horizontal_spacing=0.05,
        vertical_spacing=0.22 / rows,
    )
    top = max(int(cm.max()) for cm in mats)
    for i, cm in enumerate(mats):
        row, col = i // cols + 1, i % cols + 1
        fig.add_trace(
            go.Heatmap(
                z=np.log1p(cm),
                x=names,
                y=names,
                text=cm,
                texttemplate="%{text}",
                textfont={"size": 10},
                coloraxis="coloraxis",
                hovertemplate="true %{y}, predicted %{x}: %{text} images<extra></extra>",
                xgap=1,
                ygap=1,
            ),
            row=row,
            col=col,
        )
    tickvals, ticktext = _count_ticks(top)
    fig.update_xaxes(type="category", fixedrange=True, tickfont={"size": 10})
    fig.update_yaxes(type="category", autorange="reversed", fixedrange=True, tickfont={"size": 10})
    for col in range(1, cols + 1):  # under the lowest matrix of each column
        lowest = rows if (rows - 1) * cols + col <= len(mats) else rows - 1
        fig.update_xaxes(title_text="predicted", title_font={"size": 11}, row=lowest, col=col)
    for i in range(len(mats), rows * cols):  # the empty places of the last row show nothing
        fig.update_xaxes(visible=False, row=rows, col=i % cols + 1)
        fig.update_yaxes(visible=False, row=rows, col=i % cols + 1)
    for row in range(1, rows + 1):
        fig.update_yaxes(title_text="true", title_font={"size": 11}, row=row, col=1)
    fig.update_layout(
        coloraxis={
            "colorscale": HEAT_COLORS,
            "cmin": 0.0,
            "cmax": float(np.log1p(max(top, 1))),
            "colorbar": {"title": {"text": "images"}, "tickvals": tickvals, "ticktext": ticktext, "thickness": 12},
        },
        height=rows * row_height + 40,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        dragmode=False,
    )
    return fig
