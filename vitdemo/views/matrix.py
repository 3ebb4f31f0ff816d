"""Confusion matrices as coloured HTML tables the browser draws at once: each cell coloured by its count (the
explanation overlays' inferno, on a log scale so that a few mistakes show beside the thousands on the diagonal),
each count a button when a click on it picks (true, predicted). No Streamlit here (vitdemo.ui.confusion mounts
the table as a small component and reads the clicks back).

Why a plain table: Evaluate's first screen and the Leaderboard's matrices waited 2-6 s for Streamlit's plotly
bundle (about 4.7 MB of JavaScript) and its drawing; the data grid (st.dataframe) that replaced it still took
about 0.9 s from a click in the menu to its canvas, of which 0.65 s was its own JavaScript and drawing: an HTML
table of the same counts is on screen in about 0.3 s, reflows to a phone's width, and every cell can be reached
with the keyboard.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import numpy as np

from vitdemo.views.colors import INFERNO, INFERNO_AT, contrast_ratio, hex_color

CORNER = "true"  # the index column's header: rows are the true class (columns: the prediction, said in the caption)
DARK_TEXT, LIGHT_TEXT = "#0e1117", "#fafafa"  # the dark theme's page and text colours
ROW_PX = 30  # a cell's height: ten rows and the header take about 350 px
CELL_PX = 44  # a count's cell at its narrowest: "1135" in the 14 px font with its padding
MAX_CELL_PX = 72  # at its widest: ten of them and the index fit the 820 px of a 1280x720 screen with the sidebar
GAP_PX = 2  # between cells (the table's border-spacing)
FLOOR = 0.3  # one image's place on the colour map: a clear purple, far from the black of none
CHAR_PX, PAD_PX = 8, 12  # about one character of the 14 px font; a cell's padding, both sides
CLICK = re.compile(r"(\d{1,3})-(\d{1,3})@(\d{1,20})")  # what a click on a cell sends: "true-predicted@stamp"


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


def checked_counts(confusion: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """(C, C) counts as int64, rows true and columns predicted, checked against the C unique class names."""
    cm = np.asarray(confusion, dtype=np.int64)  # (C, C)
    names = [str(c) for c in classes]
    if cm.ndim != 2 or cm.shape != (len(names), len(names)):
        raise ValueError(f"a ({len(names)}, {len(names)}) confusion matrix was expected, got {cm.shape}")
    if len(set(names)) != len(names):
        raise ValueError("class names must be unique: they name the table's columns")
    return cm


def cell_label(true: str, predicted: str, count: int) -> str:
    """What a screen reader (and the tooltip) says of one cell."""
    return f"true {true}, predicted {predicted}: {count:,} image{'' if count == 1 else 's'}"


def confusion_html(
    confusion: np.ndarray, classes: Sequence[str], *, top: int | None = None,
    picked: tuple[int, int] | None = None, pickable: bool = False,
) -> str:  # fmt: skip
    """The matrix as an HTML table (rows true, columns predicted), each cell coloured by cell_styles (`top`:
    the largest count on a colour scale shared with other tables). `pickable`: each count is a button carrying
    data-cell="true-predicted"; `picked` shows pressed. Class names are escaped; long ones are cut in the
    header, whole in its tooltip."""
    cm = checked_counts(confusion, classes)
    names = [str(c) for c in classes]
    styles = cell_styles(cm, top)
    limit = (cell_width(names) - PAD_PX) // CHAR_PX
    head = "".join(
        f'<th scope="col" title="{escape("predicted " + n)}">{escape(short_header(n, limit))}</th>' for n in names
    )
    rows = []
    for i, true in enumerate(names):
        cells = []
        for j, predicted in enumerate(names):
            label, style, count = escape(cell_label(true, predicted, int(cm[i, j]))), styles[i, j], int(cm[i, j])
            if pickable:
                pressed = "true" if picked == (i, j) else "false"
                cells.append(
                    f'<td><button type="button" data-cell="{i}-{j}" aria-pressed="{pressed}" aria-label="{label}" '
                    f'title="{label}" style="{style}">{count}</button></td>'
                )
            else:
                cells.append(f'<td class="vd-n" title="{label}" style="{style}">{count}</td>')
        rows.append(f'<tr><th scope="row" title="{escape("true " + true)}">{escape(true)}</th>{"".join(cells)}</tr>')
    corner = f'<th scope="col" class="vd-corner">{CORNER}</th>'
    return (
        f'<table class="vd-cm" aria-label="Confusion matrix of {len(names)} classes: rows the true class, '
        f'columns the prediction"><thead><tr>{corner}{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def cell_width(classes: Sequence[str]) -> int:
    """Pixels for each count's column: its longest class name as a header, within CELL_PX..MAX_CELL_PX."""
    longest = max(len(str(c)) for c in classes)
    return int(np.clip(longest * CHAR_PX + PAD_PX, CELL_PX, MAX_CELL_PX))


def index_width(classes: Sequence[str]) -> int:
    """Pixels for the index column: its longest class name (or its header) and the padding."""
    longest = max([len(str(c)) for c in classes] + [len(CORNER)])
    return max(CELL_PX, longest * CHAR_PX + PAD_PX)


def grid_width(classes: Sequence[str]) -> int:
    """Pixels for the whole table: the index column, a column per class, and the gaps around each."""
    return index_width(classes) + len(classes) * cell_width(classes) + (len(classes) + 2) * GAP_PX


def short_header(name: str, limit: int) -> str:
    """A class name cut to `limit` characters ('Pullover' -> 'Pullov…'); digits stay as they are."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def clicked_cell(state: Any, n_classes: int) -> tuple[tuple[int, int], str] | None:
    """((true, predicted), the click's own value) from the table's state as the browser sent it ({"cell":
    "true-predicted@stamp"}), or None when there is no click or it is not one: the state comes from the
    browser, so its size, shape and range are checked here. The stamp tells a new click on the cell already
    picked (after the selectboxes moved away) from the old one."""
    raw = state.get("cell") if isinstance(state, Mapping) else None  # a component's state is a dict
    if not isinstance(raw, str) or len(raw) > 48:
        return None
    found = CLICK.fullmatch(raw)
    if found is None:
        return None
    true, predicted = int(found[1]), int(found[2])
    if not (0 <= true < n_classes and 0 <= predicted < n_classes):
        return None
    return (true, predicted), raw


def most_frequent_mistake(confusion: np.ndarray) -> tuple[int, int]:
    """(true, predicted) of the largest count off the diagonal (the first cell when there is no mistake)."""
    off = np.asarray(confusion, dtype=np.int64).copy()  # (C, C)
    np.fill_diagonal(off, -1)
    i, j = np.unravel_index(int(off.argmax()), off.shape)
    return int(i), int(j)
