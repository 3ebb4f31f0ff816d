"""Confusion matrices on the page: a run's matrix as a coloured table whose cells can be clicked (Evaluate), the
test images of the picked cell with the model's explanation on top, and several runs' matrices on one colour scale
(the comparisons). The tables are vitdemo.views.matrix's HTML, mounted as a small component (MATRIX_JS) that
sends a clicked cell back: the browser draws them at once, with no chart or data-grid bundle to wait for."""

from __future__ import annotations

from collections.abc import Sequence

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


MATRIX_CSS = """
:host { display: block; max-width: 100%; overflow-x: auto; }
table.vd-cm { border-collapse: separate; border-spacing: 2px; table-layout: fixed;
  font-family: var(--st-font, "Source Sans Pro", sans-serif); font-size: 14px; font-variant-numeric: tabular-nums;
  color: var(--st-text-color, #fafafa); }
.vd-cm th { font-weight: 600; padding: 0 4px; height: 28px; text-align: center; white-space: nowrap; }
.vd-cm th[scope="row"] { text-align: right; padding-right: 8px; }
.vd-cm th.vd-corner { font-weight: 400; opacity: 0.7; }
.vd-cm td { padding: 0; }
.vd-cm td > button { display: block; box-sizing: border-box; width: 100%; min-width: CELL_PXpx; height: ROW_PXpx;
  padding: 0 4px; border: 0; border-radius: 3px; font: inherit; text-align: center; cursor: pointer; }
.vd-cm td.vd-n { box-sizing: border-box; min-width: CELL_PXpx; height: ROW_PXpx; padding: 0 4px; border-radius: 3px;
  text-align: center; }
.vd-cm td > button:hover { outline: 2px solid var(--st-text-color, #fafafa); outline-offset: -2px; }
.vd-cm td > button:focus-visible { outline: 3px solid var(--st-primary-color, #ff4b4b); outline-offset: 1px; }
.vd-cm td > button[aria-pressed="true"] { outline: 3px solid var(--st-primary-color, #ff4b4b); outline-offset: 1px; }
@media (max-width: 480px) {
  table.vd-cm { font-size: 12px; border-spacing: 1px; }
  .vd-cm td > button, .vd-cm td.vd-n { min-width: 28px; padding: 0 1px; }
  .vd-cm th { padding: 0 2px; }
}
""".replace("CELL_PX", str(matrix.CELL_PX)).replace("ROW_PX", str(matrix.ROW_PX))
# The table's HTML comes as the component's data (vitdemo.views.matrix.confusion_html, its names escaped); a click
# on a count marks it pressed at once and sends "true-predicted@time" as the component's state (a rerun). The
# stamp makes a second click on the same cell a new value.
MATRIX_JS = """
export default function (component) {
  const { data, setStateValue, parentElement } = component;
  let root = parentElement.querySelector(".vd-cm-root");
  if (!root) { root = document.createElement("div"); root.className = "vd-cm-root"; parentElement.appendChild(root); }
  if (typeof data === "string" && root.vdShown !== data) { root.innerHTML = data; root.vdShown = data; }
  root.onclick = (event) => {
    const cell = event.target.closest("button[data-cell]");
    if (!cell) return;
    root.querySelectorAll('button[aria-pressed="true"]').forEach((b) => b.setAttribute("aria-pressed", "false"));
    cell.setAttribute("aria-pressed", "true");
    setStateValue("cell", cell.dataset.cell + "@" + Date.now());
  };
}
"""
_matrix_component = st.components.v2.component("vitdemo_confusion_matrix", css=MATRIX_CSS, js=MATRIX_JS)


def confusion_table(
    confusion: np.ndarray, classes: Sequence[str], *, key: str, top: int | None = None,
    picked: tuple[int, int] | None = None, pickable: bool = False,
) -> None:  # fmt: skip
    """One matrix as a coloured table (rows true, columns predicted; `top`: the largest count on a colour scale
    shared with other tables); `pickable`: a click on a count picks that cell (read back by confusion_picker
    from the state under `key`), `picked` shows pressed."""
    html = matrix.confusion_html(confusion, classes, top=top, picked=picked, pickable=pickable)
    clicks = {"on_cell_change": lambda: None} if pickable else {}  # a click reruns the page: its cell is picked
    _matrix_component(key=key, data=html, width="content", **clicks)


def confusion_picker(res: TestResults, key: str) -> tuple[int, int]:
    """The confusion table; clicking a cell (or the two selectboxes below it) picks (true, predicted). Starts on
    the most frequent mistake; the picked cell shows pressed in the table."""
    true_key, pred_key, seen_key = f"{key}_true", f"{key}_pred", f"{key}_seen"
    if true_key not in st.session_state or pred_key not in st.session_state:
        st.session_state[true_key], st.session_state[pred_key] = matrix.most_frequent_mistake(res.report.confusion)
    clicked = matrix.clicked_cell(st.session_state.get(key), len(res.classes))  # the table's state, from the browser
    if clicked is not None and clicked[1] != st.session_state.get(seen_key):  # a new click
        st.session_state[seen_key] = clicked[1]
        st.session_state[true_key], st.session_state[pred_key] = clicked[0]
        st.session_state[_SCROLL_KEY] = clicked[0]  # its images are below the fold: scroll there once
    cell = (int(st.session_state[true_key]), int(st.session_state[pred_key]))
    confusion_table(res.report.confusion, res.classes, key=key, picked=cell, pickable=True)
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
