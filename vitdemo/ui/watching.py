"""Watch it learn, the widgets the Train and Present pages share: a run's answers on its ten watched test images
(the row and what it means), updated by each page's live fragment from the one live query."""

from __future__ import annotations

import streamlit as st

from vitdemo.data import DATASET_INFO, DataError, class_names
from vitdemo.runs.store import Run
from vitdemo.training.watch import WatchRow
from vitdemo.ui import view
from vitdemo.ui.shell import test_split
from vitdemo.views import display, learning


@st.cache_data(show_spinner=False, max_entries=8)
def watched_images(dataset: str, indices: tuple[int, ...]) -> list[str | None]:
    """The watched test images as data URIs, encoded once per dataset (none when its files are missing: the row
    then shows the true classes)."""
    try:
        images = test_split(dataset).images[list(indices)].numpy()  # (10, 28, 28) uint8
    except (DataError, OSError, IndexError):
        return [None] * len(indices)
    return [display.png_data_uri(image) for image in images]


def watch_row(run: Run, data: dict | None, *, font_size: str = "0.85rem", caption: bool = True) -> WatchRow | None:
    """The run's answers on its watched test images (`data`, as the live query gives it) and, with `caption`, what
    they are; nothing before its first answers. Returns the row shown."""
    row = WatchRow.from_dict(data)
    if row is None:
        return None
    classes = class_names(run.dataset) if run.dataset in DATASET_INFO else ()
    st.html(learning.digit_row_html(row, classes, watched_images(run.dataset, row.indices), font_size=font_size))
    if caption:
        st.caption(learning.plain_watch_caption(row) if view.simple() else learning.watch_caption(row))
    return row
