"""What the AppTest tests share: open the whole app (navigation and the shared sidebar) on a page, read what it
shows, and a tiny trained "shipped" CNN for pages that need a real checkpoint. No pytest here: conftest turns
the pieces into fixtures, and test modules import the helpers (conftest puts tests/ on sys.path)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from streamlit.testing.v1 import AppTest

from vitdemo.checkpoints import make_meta, save_checkpoint
from vitdemo.config import TrainConfig
from vitdemo.data import load_dataset
from vitdemo.evaluate import score_model
from vitdemo.training.loop import train

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = str(REPO_ROOT / "app.py")
TIMEOUT_S = 90  # the first run imports torch and loads both models; a busy 2-core CI box is slow


def open_page(page: str | None = None, *, timeout: float = TIMEOUT_S, expert: bool = False) -> AppTest:
    """The app, run once (the Draw page), then switched to app_pages/`page`.py; fails on any exception shown.
    `expert`: in the Expert view (every figure and technical name; a student starts in the Simple view)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    if expert:
        at.session_state["view_expert"] = True
    at.run()
    if page is not None:
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_as(page: str, token: str | None = None, secrets: dict | None = None, password: str | None = None) -> AppTest:
    """A new browser session (a reload, with `token` in the address as ?who=...), the teacher's `password` typed
    into the sidebar of the first page (AppTest keeps app.py's sidebar in its tree after the first run only, so
    the password and the click go in one run)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    if token:
        at.query_params["who"] = token
    at.secrets.update(secrets or {})
    at.run()
    if password is not None:
        at.text_input(key="teacher_pw").input(password)
        at.button(key="teacher_unlock").click().run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest, kind: str) -> list[str]:
    """The values of every element of one kind ("markdown", "caption", "warning"...) as strings."""
    return [str(e.value) for e in getattr(at, kind)]


def frame_with(at: AppTest, column: str) -> Any:
    """The page's table with `column` (AppTest does not expose a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def matrix_tables(at: AppTest) -> list[str]:
    """The HTML of every confusion matrix on the page (vitdemo.ui.confusion's component: AppTest shows it as an
    unknown element whose data is the table)."""
    found = [e for e in at.main if getattr(e, "type", "") == "bidi_component" and "vd-cm" in e.proto.json]
    return [json.loads(e.proto.json) for e in found]


def cell_counts(table: str) -> np.ndarray:
    """(C, C) counts read back from a matrix's HTML: its rows in order, a count per button or cell."""
    rows = re.findall(r"<tr><th scope=\"row\".*?</tr>", table)
    return np.array([[int(n) for n in re.findall(r">(\d+)</(?:button|td)>", row)] for row in rows], dtype=np.int64)


def plotly_specs(at: AppTest) -> list[str]:
    return [chart.proto.spec for chart in at.get("plotly_chart")]


def vega_specs(at: AppTest) -> list[str]:
    """The Vega-Lite specs of the page's st.altair_chart elements (their data travels apart, as Arrow)."""
    return [chart.proto.spec for chart in at.get("vega_lite_chart")]


def train_shipped_cnn(folder: Path, data_dir: Path, config: TrainConfig, *, scored: bool = False) -> Path:
    """Train `config` for real (seconds: a tiny CNN on a quick subset) and save it as the folder's shipped
    `cnn_mnist.safetensors`; `scored` adds its test accuracy, F1, size, time and curves, as a shipped file has."""
    data = load_dataset("mnist", data_dir, val_size=config.val_size, train_subset=config.train_subset)
    result = train(config, data=data)
    metrics: dict[str, Any] = {"epochs": config.epochs}
    if scored:
        report = score_model(result.model, data.test, data.mean, data.std, num_classes=10).report
        metrics |= {"test_acc": report.accuracy, "macro_f1": report.macro_f1, "num_params": result.num_params}
        metrics |= {"device": "cpu", "train_time_s": result.train_time_s}
        metrics["history"] = [e.to_dict() for e in result.history]
    meta = make_meta(config.model, "mnist", metrics=metrics, train_config=config.to_dict(), name="cnn_mnist")
    save_checkpoint(folder / "cnn_mnist.safetensors", result.model, meta)
    return folder
