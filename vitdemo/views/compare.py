"""Any number of runs side by side, for the Evaluate and Leaderboard pages: the metrics table, the families and
the default pair. Pure pandas over runs and their test-set scores; no Streamlit. (Their training curves overlaid:
vitdemo.views.charts.overlay_figure; their confusion matrices as tables on one colour scale: vitdemo.views.matrix.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from vitdemo.calibration import expected_calibration_error
from vitdemo.runs.store import Run
from vitdemo.views.charts import run_family
from vitdemo.views.names import FAMILIES, family_of, model_name

if TYPE_CHECKING:
    from vitdemo.metrics import Scores

COMPARE_COLUMNS = (
    "id", "run", "model", "family", "test accuracy", "macro F1", "test loss", "calibration error", "parameters",
    "training time (s)",
)  # fmt: skip
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
