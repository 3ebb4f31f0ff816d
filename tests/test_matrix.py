"""Confusion matrices as coloured tables (vitdemo.views.matrix): the counts, their colours on the overlays' inferno
(log scale, one scale shared between matrices), legible text on every cell, widths that fit a 1280x720 screen, and
a clicked cell read back from st.dataframe's selection state."""

from __future__ import annotations

import numpy as np
import pytest

from vitdemo.data import class_names
from vitdemo.views import matrix
from vitdemo.views.colors import colorize, contrast_ratio

DIGITS = [str(i) for i in range(10)]


def test_the_table_holds_the_counts_rows_true_columns_predicted() -> None:
    cm = np.array([[50, 2, 0], [7, 40, 1], [0, 0, 30]])
    frame = matrix.confusion_frame(cm, ["a", "b", "c"])
    assert frame.index.name == matrix.CORNER and list(frame.index) == ["a", "b", "c"]
    assert list(frame.columns) == ["a", "b", "c"] and frame.loc["b", "a"] == 7  # true b, predicted a
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        matrix.confusion_frame(cm, ["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        matrix.confusion_frame(np.eye(2, dtype=int), ["a", "a"])


def test_colours_are_the_overlay_map_on_a_log_scale_with_one_mistake_visible() -> None:
    cm = np.array([[1000, 1], [0, 10]])
    shares = matrix.count_shares(cm)
    assert shares[1, 0] == 0.0 and shares[0, 0] == 1.0  # none: the map's black; the largest: its brightest
    assert shares[0, 1] == pytest.approx(matrix.FLOOR + (1 - matrix.FLOOR) * np.log1p(1) / np.log1p(1000))
    assert shares[0, 1] < shares[1, 1] < shares[0, 0]  # more images, brighter
    for share in (0.0, 0.37, 1.0):  # the same colours as the explanation overlays
        assert matrix.cell_color(share) == "#{:02x}{:02x}{:02x}".format(*colorize(np.array([[share]]))[0, 0])
    # one scale for several matrices: the same count has the same colour whatever the matrix's own largest
    small, large = np.array([[10, 1], [0, 10]]), np.array([[900, 1], [0, 10]])
    assert matrix.cell_styles(small, top=900)[0, 0] == matrix.cell_styles(large, top=900)[1, 1]
    assert matrix.cell_styles(small)[0, 0] != matrix.cell_styles(large)[1, 1]  # each on its own scale


def test_every_cell_text_is_legible_on_its_colour() -> None:
    cm = np.array([[1135, 3, 0], [1, 500, 27], [0, 60, 980]])
    styler = matrix.confusion_styler(cm, ["a", "b", "c"])
    styler._compute()  # the CSS pandas will hand to Streamlit, cell by cell
    assert len(styler.ctx) == 9
    for props in styler.ctx.values():
        css = dict(props)
        assert contrast_ratio(css["background-color"], css["color"]) >= 4.5, css  # WCAG AA for text


def test_widths_fit_a_projector_and_long_names_are_cut_with_a_tooltip() -> None:
    assert matrix.grid_width(DIGITS) == 552 and matrix.cell_width(DIGITS) == matrix.CELL_PX
    fashion = list(class_names("fashion"))
    assert matrix.grid_width(fashion) <= 820  # the page's width at 1280x720 with the sidebar open
    labels = matrix.column_labels(fashion)
    head, tip = labels["Pullover"]
    assert head.endswith("…") and len(head) * matrix.CHAR_PX + matrix.PAD_PX <= matrix.cell_width(fashion)
    assert tip == "predicted Pullover" and labels["Bag"] == ("Bag", "predicted Bag")
    assert matrix.grid_height(10) == 11 * matrix.ROW_PX + 2  # the header and ten rows: no scrolling


def test_a_clicked_cell_is_read_from_the_selection_state() -> None:
    state = matrix.selection_state((4, 9), DIGITS)
    assert state["selection"]["cells"] == [(4, "9")]
    assert matrix.selected_cell(state, DIGITS) == (4, 9)
    assert matrix.selected_cell({"selection": {"rows": [], "columns": [], "cells": [[2, "7"]]}}, DIGITS) == (2, 7)
    assert matrix.selected_cell({"selection": {"cells": []}}, DIGITS) is None  # the picked cell clicked again
    assert matrix.selected_cell({"selection": {"cells": [[2, "_index"]]}}, DIGITS) is None
    assert matrix.selected_cell({"selection": {"cells": [[12, "7"]]}}, DIGITS) is None
    assert matrix.selected_cell(None, DIGITS) is None
