"""Confusion matrices on the page: a run's matrix as a coloured table whose cells can be clicked (Evaluate), the
test images of the picked cell with the model's explanation on top, and several runs' matrices on one colour scale
(the comparisons). The tables are vitdemo.views.matrix: the data grid draws them at once, without the plotly bundle
a heatmap waits for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import streamlit as st
import torch

from vitdemo.checkpoints import CheckpointError
from vitdemo.data import to_input
from vitdemo.explain.maps import explain_prediction
from vitdemo.explain.opinions import is_classic_file
from vitdemo.explain.readable import shown_maps
from vitdemo.runs.store import Run
from vitdemo.ui import view
from vitdemo.ui.evaluate import TestResults
from vitdemo.ui.shell import load_model, test_split
from vitdemo.views import charts, display, matrix
from vitdemo.views.colors import overlay
from vitdemo.views.messages import hide_folders
from vitdemo.views.names import explanation_name
from vitdemo.views.words import say

GALLERY_PX = 112  # 4x the 28 px input


def confusion_table(
    confusion: np.ndarray, classes: Sequence[str], *, key: str, top: int | None = None, pickable: bool = False
) -> None:
    """One matrix as a coloured table (rows true, columns predicted; `top`: the largest count on a colour scale
    shared with other tables), at its own width (vitdemo.views.matrix.grid_width); `pickable`: a click selects
    one cell (its state under `key`)."""
    width = matrix.cell_width(classes)
    config: dict[str, Any] = {
        name: st.column_config.NumberColumn(head, help=tip, format="%d", width=width, alignment="center")
        for name, (head, tip) in matrix.column_labels(classes).items()
    }
    config["_index"] = st.column_config.TextColumn(
        matrix.CORNER, help="Rows: the true class", width=matrix.index_width(classes)
    )
    st.dataframe(
        matrix.confusion_styler(confusion, classes, top),
        column_config=config, width=matrix.grid_width(classes), height=matrix.grid_height(len(classes)),
        row_height=matrix.ROW_PX, key=key, on_select="rerun" if pickable else "ignore",
        selection_mode="single-cell",
        alt=f"Confusion matrix of {len(classes)} classes: rows the true class, columns the prediction",
    )  # fmt: skip


def confusion_picker(res: TestResults, key: str) -> tuple[int, int]:
    """The confusion table; clicking a cell (or the two selectboxes below it) picks (true, predicted). Starts on
    the most frequent mistake; the picked cell stays selected in the table."""
    true_key, pred_key, shown_key = f"{key}_true", f"{key}_pred", f"{key}_shown"
    if true_key not in st.session_state or pred_key not in st.session_state:
        st.session_state[true_key], st.session_state[pred_key] = matrix.most_frequent_mistake(res.report.confusion)
    cell = (int(st.session_state[true_key]), int(st.session_state[pred_key]))
    clicked = matrix.selected_cell(st.session_state.get(key), res.classes)  # the table's state since the last run
    if clicked is not None and clicked != st.session_state.get(shown_key):  # a click, not the cell we selected
        cell = clicked
        st.session_state[true_key], st.session_state[pred_key] = cell
        st.session_state[_SCROLL_KEY] = cell  # its images are below the fold: scroll there once
    st.session_state[key] = matrix.selection_state(cell, res.classes)  # the picked cell shows selected
    st.session_state[shown_key] = cell
    confusion_table(res.report.confusion, res.classes, key=key, pickable=True)
    n = len(res.classes)
    c1, c2 = st.columns(2)
    c1.selectbox("True class", list(range(n)), format_func=lambda i: res.classes[i], key=true_key)
    c2.selectbox("Predicted class", list(range(n)), format_func=lambda i: res.classes[i], key=pred_key)
    return int(st.session_state[true_key]), int(st.session_state[pred_key])


def explanation_overlays(run: Run, images: np.ndarray) -> list[np.ndarray]:
    """Each (28, 28) uint8 test image with the model's explanation of its own prediction on top
    (attention rollout for a ViT, integrated gradients for a CNN), upscaled for the page."""
    if len(images) == 0:
        return []
    loaded = load_model(run.checkpoint or "")
    x = to_input(torch.from_numpy(np.ascontiguousarray(images)), loaded.meta.mean, loaded.meta.std)  # (K, 1, 28, 28)
    # every explanation is safe on a model shared by every session (no hooks, no state)
    _, heat, _ = explain_prediction(loaded.model, x, loaded.kind, mean=loaded.meta.mean, std=loaded.meta.std)
    heat = shown_maps(loaded.kind, heat)  # as Draw shows it (vitdemo.explain.readable)
    return [display.upscale(overlay(img, h.numpy(), 0.45), GALLERY_PX) for img, h in zip(images, heat, strict=True)]


_SCROLL_KEY = "_vd_scroll_to_cell"  # the cell just clicked on the chart: the page scrolls to its images once
GALLERY_KEY = "vd_cell_gallery"
# Runs in the page (st.html with JavaScript, as vitdemo/ui/client.js): the gallery is drawn after this element,
# so it waits for it (up to 3 s), then scrolls its heading to the top of the window.
SCROLL_JS = """(() => { const t0 = Date.now(); const go = () => {
  const el = window.parent.document.querySelector('.st-key-%s') || document.querySelector('.st-key-%s');
  if (el) { el.scrollIntoView({behavior: 'smooth', block: 'start'}); return; }
  if (Date.now() - t0 < 3000) setTimeout(go, 100); }; setTimeout(go, 50); })();"""


def scroll_script(cell: tuple[int, int]) -> str:
    """The page's one-shot scroll to the gallery of `cell` (its number makes each click's element new)."""
    js = SCROLL_JS % (GALLERY_KEY, GALLERY_KEY)
    return f'<div class="vd-client" data-cell="{int(cell[0])}-{int(cell[1])}"></div><script>{js}</script>'


def cell_gallery(res: TestResults, cell: tuple[int, int], limit: int = 12) -> None:
    """The test images of one confusion cell, most confident first, with the explanation overlay; after a click
    on the chart, the page scrolls down to them."""
    with st.container(key=GALLERY_KEY):
        _cell_gallery(res, cell, limit)
    if st.session_state.pop(_SCROLL_KEY, None) == cell:
        st.html(scroll_script(cell), unsafe_allow_javascript=True)


def _cell_gallery(res: TestResults, cell: tuple[int, int], limit: int) -> None:
    t, p = cell
    idx = charts.cell_examples(res.labels, res.probs, t, p, limit)
    total = int(res.report.confusion[t, p])
    what = "correctly classified" if t == p else "misclassified"
    st.markdown(f"#### True {res.classes[t]}, predicted {res.classes[p]}: {total:,} {what} test images")
    if not len(idx):
        st.caption("No test image in this cell: pick another one.")
        return
    images = test_split(res.run.dataset).images[idx].numpy()  # (K, 28, 28) uint8
    shown, explained = [display.upscale(img, GALLERY_PX) for img in images], None
    if not is_classic_file(res.run.checkpoint or ""):  # a scikit-learn baseline has no map of its own here
        try:
            shown, explained = explanation_overlays(res.run, images), explanation_name(res.run.kind)
        except (CheckpointError, RuntimeError, ValueError) as exc:
            st.caption(f"No explanation overlay ({hide_folders(str(exc))}).")
    captions = [charts.image_caption(res.classes[t], res.classes[p], float(res.probs[i, p])) for i in idx]
    st.image(shown, caption=captions, width=GALLERY_PX, output_format="PNG")  # PNG: crisp pixels
    note = f" Overlay: the model's {explained} for its prediction (bright: mattered more)." if explained else ""
    note = (" " + say("evaluate", "gallery_overlay") if explained else "") if view.simple() else note
    st.caption(f"Showing {len(idx)} of {total:,}, the most confident predictions first.{note}")
