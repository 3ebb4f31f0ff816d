"""Confusion matrices as tables the browser draws at once: a pandas Styler that colours each cell by its count
(the explanation overlays' inferno, on a log scale so that a few mistakes show beside the thousands on the diagonal),
for st.dataframe. No Streamlit here.

Why a table and not a plotly heatmap: Evaluate's first screen and the Leaderboard's matrices waited 2-6 s for
Streamlit's plotly bundle (about 4.7 MB of JavaScript) and its drawing; the data grid draws a 10x10 table in well
under a second, and its cell selection still lets a click on a cell pick (true, predicted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from vitdemo.views.colors import INFERNO, INFERNO_AT, contrast_ratio, hex_color

CORNER = "true"  # the index column's header: rows are the true class (columns: the prediction, said in the caption)
DARK_TEXT, LIGHT_TEXT = "#0e1117", "#fafafa"  # the dark theme's page and text colours
ROW_PX = 32  # a cell's height in the data grid: ten rows and the header take 354 px
CELL_PX = 50  # a count's column at its narrowest: the data grid's least (3.125rem), wide enough for "1135"
FLOOR = 0.3  # one image's place on the colour map: a clear purple, far from the black of none
MAX_CELL_PX = 72  # at its widest: ten of them and the index fit the 820 px of a 1280x720 screen with the sidebar
CHAR_PX, PAD_PX = 8, 16  # about one character of the grid's 14 px font; a cell's padding, both sides


def cell_color(share: float) -> str:
    """The inferno colour at `share` in [0, 1] as '#rrggbb'."""
    s = float(np.clip(share, 0.0, 1.0))
    return hex_color(np.array([np.interp(s, INFERNO_AT, INFERNO[:, c]) for c in range(3)]))


def text_color(background: str) -> str:
    """Dark text on a bright cell, light text on a dark one: whichever contrasts more (WCAG luminance)."""
    dark, light = contrast_ratio(background, DARK_TEXT), contrast_ratio(background, LIGHT_TEXT)
    return DARK_TEXT if dark > light else LIGHT_TEXT


def count_shares(confusion: np.ndarray, top: int | None = None) -> np.ndarray:
    """(C, C) counts -> (C, C) places on the colour map in [0, 1]: 0 for no image, else from FLOOR (one image)
    up by log1p(count) / log1p(top) (`top`: the largest count on the shared scale, default this matrix's), so
    that a single mistake stands out from the empty cells on a projector."""
    cm = np.clip(np.asarray(confusion, dtype=np.int64), 0, None)  # (C, C)
    scale = float(np.log1p(max(int(top if top is not None else cm.max(initial=0)), 1)))
    shares = FLOOR + (1.0 - FLOOR) * np.minimum(np.log1p(cm) / scale, 1.0)
    return np.where(cm > 0, shares, 0.0)


def cell_styles(confusion: np.ndarray, top: int | None = None) -> np.ndarray:
    """(C, C) counts -> (C, C) CSS strings: the background by count_shares, the text in the contrasting colour."""
    shares = count_shares(confusion, top)
    styles = np.empty(shares.shape, dtype=object)
    for (i, j), share in np.ndenumerate(shares):
        background = cell_color(float(share))
        styles[i, j] = f"background-color: {background}; color: {text_color(background)}"
    return styles


def confusion_frame(confusion: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """(C, C) counts as a frame: index the true class (named CORNER), columns the predicted class."""
    cm = np.asarray(confusion, dtype=np.int64)  # (C, C)
    names = [str(c) for c in classes]
    if cm.ndim != 2 or cm.shape != (len(names), len(names)):
        raise ValueError(f"a ({len(names)}, {len(names)}) confusion matrix was expected, got {cm.shape}")
    if len(set(names)) != len(names):
        raise ValueError("class names must be unique: they name the table's columns")
    return pd.DataFrame(cm, index=pd.Index(names, name=CORNER), columns=names)


def confusion_styler(confusion: np.ndarray, classes: Sequence[str], top: int | None = None) -> Styler:
    """The matrix as a coloured table (see cell_styles); `top` shares one colour scale between several."""
    frame = confusion_frame(confusion, classes)
    styles = cell_styles(frame.to_numpy(), top)
    return frame.style.apply(lambda _: pd.DataFrame(styles, index=frame.index, columns=frame.columns), axis=None)


def cell_width(classes: Sequence[str]) -> int:
    """Pixels for each count's column: its longest class name as a header, within CELL_PX..MAX_CELL_PX."""
    longest = max(len(str(c)) for c in classes)
    return int(np.clip(longest * CHAR_PX + PAD_PX, CELL_PX, MAX_CELL_PX))


def index_width(classes: Sequence[str]) -> int:
    """Pixels for the index column: its longest class name (or its header) and the padding."""
    longest = max([len(str(c)) for c in classes] + [len(CORNER)])
    return max(CELL_PX, longest * CHAR_PX + PAD_PX)


def grid_width(classes: Sequence[str]) -> int:
    """Pixels for the whole table: the index column, a column per class, and the 2 px border."""
    return index_width(classes) + len(classes) * cell_width(classes) + 2


def short_header(name: str, limit: int) -> str:
    """A class name cut to `limit` characters ('Pullover' -> 'Pullov…'); digits stay as they are."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def column_labels(classes: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Column name -> (its header, its tooltip) for the predicted-class columns."""
    limit = (cell_width(classes) - PAD_PX) // CHAR_PX
    return {str(c): (short_header(str(c), limit), f"predicted {c}") for c in classes}


def grid_height(n_classes: int, row_px: int = ROW_PX) -> int:
    """Pixels for the header and every row, so the table never scrolls (plus its 2 px border)."""
    return (n_classes + 1) * row_px + 2


def selected_cell(event: Any, classes: Sequence[str]) -> tuple[int, int] | None:
    """(true, predicted) from st.dataframe's single-cell selection state on a confusion_frame, or None.
    The state holds (row position, column name); a click on the index column selects nothing."""
    try:
        cells = event["selection"]["cells"]
    except (KeyError, TypeError):
        try:
            cells = event.selection.cells
        except AttributeError:
            return None
    names = [str(c) for c in classes]
    for cell in cells or []:
        if not isinstance(cell, Sequence) or len(cell) != 2:
            continue
        row, column = cell
        if type(row) is int and 0 <= row < len(names) and str(column) in names:  # not a bool, not a float
            return row, names.index(str(column))
    return None


def most_frequent_mistake(confusion: np.ndarray) -> tuple[int, int]:
    """(true, predicted) of the largest count off the diagonal (the first cell when there is no mistake)."""
    off = np.asarray(confusion, dtype=np.int64).copy()  # (C, C)
    np.fill_diagonal(off, -1)
    i, j = np.unravel_index(int(off.argmax()), off.shape)
    return int(i), int(j)


def selection_state(cell: tuple[int, int], classes: Sequence[str]) -> Mapping[str, Any]:
    """The dataframe selection state that shows `cell` (true, predicted) selected."""
    return {"selection": {"rows": [], "columns": [], "cells": [(int(cell[0]), str(classes[cell[1]]))]}}
