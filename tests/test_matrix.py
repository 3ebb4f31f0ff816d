"""Confusion matrices as coloured HTML tables (vitdemo.views.matrix): the counts, their colours on the overlays'
inferno (log scale, one scale shared between matrices), legible text on every cell, widths that fit a 1280x720
screen, names escaped, and a clicked cell read back from the browser's state, checked."""

from __future__ import annotations

import re

import numpy as np
import pytest
from apptest import cell_counts

from vitdemo.data import class_names
from vitdemo.views import matrix
from vitdemo.views.colors import colorize, contrast_ratio

DIGITS = [str(i) for i in range(10)]


def test_the_table_holds_the_counts_rows_true_columns_predicted() -> None:
    cm = np.array([[50, 2, 0], [7, 40, 1], [0, 0, 30]])
    table = matrix.confusion_html(cm, ["a", "b", "c"], pickable=True, picked=(1, 0))
    assert (cell_counts(table) == cm).all()  # rows true, columns predicted
    assert '<th scope="col" class="vd-corner">true</th>' in table and '<th scope="row" title="true b">b</th>' in table
    assert 'data-cell="1-0" aria-pressed="true" aria-label="true b, predicted a: 7 images"' in table
    assert table.count('aria-pressed="true"') == 1 and table.count("<button") == 9
    assert 'predicted c: 1 image"' in table  # one image, not "1 images"
    still = matrix.confusion_html(cm, ["a", "b", "c"])
    assert "<button" not in still and (cell_counts(still) == cm).all()  # a picture only: nothing to click
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        matrix.confusion_html(cm, ["a", "b"])
    with pytest.raises(ValueError, match="unique"):
        matrix.confusion_html(np.eye(2, dtype=int), ["a", "a"])


def test_class_names_are_escaped() -> None:
    table = matrix.confusion_html(np.eye(2, dtype=int), ["<b>x</b>", 'a"b'], pickable=True)
    assert "<b>x</b>" not in table and "&lt;b&gt;x&lt;/b&gt;" in table and 'a"b' not in table


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
    styles = re.findall(
        r'style="background-color: (#[0-9a-f]{6}); color: (#[0-9a-f]{6})"', matrix.confusion_html(cm, "abc")
    )
    assert len(styles) == 9
    for background, text in styles:
        assert contrast_ratio(background, text) >= 4.5, (background, text)  # WCAG AA for text


def test_widths_fit_a_projector_and_long_names_are_cut_with_a_tooltip() -> None:
    assert matrix.grid_width(DIGITS) == 44 + 10 * 44 + 12 * 2 and matrix.cell_width(DIGITS) == matrix.CELL_PX
    fashion = list(class_names("fashion"))
    assert matrix.grid_width(fashion) <= 820  # the page's width at 1280x720 with the sidebar open
    table = matrix.confusion_html(np.eye(10, dtype=int), fashion)
    assert '<th scope="col" title="predicted Pullover">Pullover</th>' not in table  # too long for its column
    head = re.search(r'title="predicted Pullover">([^<]*)</th>', table)[1]
    assert head.endswith("…") and len(head) * matrix.CHAR_PX + matrix.PAD_PX <= matrix.cell_width(fashion)
    assert '<th scope="col" title="predicted Bag">Bag</th>' in table
    assert '<th scope="row" title="true Pullover">Pullover</th>' in table  # the rows have room for the whole name


def test_a_clicked_cell_is_read_from_the_browser_state_and_checked() -> None:
    assert matrix.clicked_cell({"cell": "4-9@1712345678901"}, 10) == ((4, 9), "4-9@1712345678901")
    assert matrix.clicked_cell({"cell": "0-0@1"}, 10) == ((0, 0), "0-0@1")
    for bad in ("4-10@1", "4-9", "4-9@", "-1-2@3", "4-9@1 ", "a-b@1", "4-9@" + "1" * 45, 4, None, ["4-9@1"]):
        assert matrix.clicked_cell({"cell": bad}, 10) is None, bad
    assert matrix.clicked_cell(None, 10) is None and matrix.clicked_cell({}, 10) is None
    assert matrix.clicked_cell("4-9@1", 10) is None  # not a state at all
