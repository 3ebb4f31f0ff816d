"""Issue 24's charts, read on the figure objects: accuracy 0-100% with ticks that never repeat, whole epochs,
no title over another, lines that read on the dark page, empty states that say what to do."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from vitdemo.views import charts, label_budget, learning
from vitdemo.views import classset as classset_views
from vitdemo.views.colors import blend, contrast_ratio

EPOCHS = [
    {"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_acc": 0.994 + e / 1e4, "val_acc": 0.995}
    for e in (1, 2, 3)
]


def _tick_labels(axis) -> list[str]:
    """The tick labels plotly would draw for a linear axis with tick0, dtick, range and a '%' tickformat."""
    lo, hi = axis.range
    ticks = np.arange(axis.tick0, hi + 1e-9, axis.dtick)
    return [f"{t:.{int(axis.tickformat[1])}%}" for t in ticks if t >= lo - 1e-9]


def _accuracy_axes(fig: go.Figure) -> list:
    return [a for name in fig.layout if name.startswith("yaxis") and (a := fig.layout[name]).tickformat == ".0%"]


@pytest.mark.parametrize(
    "fig",
    [
        charts.curves_figure([]),
        charts.curves_figure(EPOCHS, stacked=True),
        charts.overlay_figure({"a": EPOCHS, "b": EPOCHS[:2]}),
        charts.overlay_figure({}),
        learning.live_curves_figure([], []),
        label_budget.budget_figure([{"dataset": "mnist", "model": "ViT", "labels": 100, "test_acc": 0.995}]),
    ],
    ids=["empty", "stacked", "overlay", "overlay-empty", "live-empty", "budget"],
)
def test_accuracy_axes_are_0_to_100_percent_without_repeated_ticks(fig):
    axes = _accuracy_axes(fig)
    assert axes, "an accuracy axis is formatted as a percentage"
    for axis in axes:
        assert tuple(axis.range) == (0, pytest.approx(1.02))  # never autoranged: no '0% / 200% / 400%'
        labels = _tick_labels(axis)
        assert labels[0] == "0%" and labels[-1] == "100%"
        assert len(labels) == len(set(labels))  # no '99.5%, 99.5%, 99.4%'


@pytest.mark.parametrize("last", [1, 3, 7.5, 20, 37, 150])
def test_epoch_axes_tick_whole_epochs(last):
    fig = charts.overlay_figure({"run": [{"epoch": e, "val_acc": 0.5} for e in range(1, int(last) + 1)]})
    axis = fig.layout.xaxis
    assert axis.tick0 == 0 and isinstance(axis.dtick, int) and axis.dtick >= 1
    assert (axis.range[1] - axis.range[0]) / axis.dtick <= 11  # ten ticks or so, never a crowd


def test_live_curves_tick_whole_epochs_while_x_is_fractional():
    points = [{"at_epoch": s / 10, "loss": 2.0 - s / 10} for s in range(1, 16)]
    fig = learning.live_curves_figure(EPOCHS[:1], points)
    for name in ("xaxis", "xaxis2"):
        assert fig.layout[name].dtick == 1 and fig.layout[name].tick0 == 0


def test_stacked_curves_have_no_title_over_another():
    fig = charts.curves_figure(EPOCHS, stacked=True)
    assert not fig.layout.annotations  # no subplot titles to collide with an axis title or the legend
    titled = [n for n in ("xaxis", "xaxis2") if fig.layout[n].title.text]
    assert titled == ["xaxis2"]  # 'epoch' only under the lower panel, not on the accuracy panel's head
    assert (fig.layout.yaxis.title.text, fig.layout.yaxis2.title.text) == ("loss", "accuracy")
    top, bottom = fig.layout.yaxis.domain, fig.layout.yaxis2.domain
    assert bottom[1] < top[0]  # the panels do not overlap


def test_side_by_side_curves_name_both_axes():
    fig = charts.curves_figure(EPOCHS)
    assert [fig.layout[n].title.text for n in ("xaxis", "xaxis2")] == ["epoch", "epoch"]
    assert not fig.layout.annotations


def _line_colors(fig: go.Figure) -> list[tuple[str, str]]:
    seen = []
    for t in fig.data:
        if isinstance(t, go.Scatter) and t.line.color:
            shown = blend(t.line.color, charts.BACKGROUND, 1.0 if t.opacity is None else t.opacity)
            seen.append((t.name, shown))
    return seen


def test_every_line_reads_on_the_dark_page():
    figs = [
        learning.live_curves_figure(EPOCHS, [{"at_epoch": 0.5, "loss": 1.0}, {"at_epoch": 1.0, "loss": 0.9}]),
        charts.overlay_figure({f"run {i}": EPOCHS for i in range(len(charts.PALETTE))}),
        label_budget.budget_figure(
            [{"dataset": "mnist", "model": m, "labels": 100, "test_acc": 0.9} for m in label_budget.MODELS]
        ),
    ]
    lines = [line for fig in figs for line in _line_colors(fig)]
    assert len(lines) >= 10
    for name, color in lines:
        assert contrast_ratio(color, charts.BACKGROUND) >= 4.5, f"{name} in {color} is too dark on the dark page"


def test_contrast_ratio_matches_wcag():
    assert contrast_ratio("#ffffff", "#000000") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#777777") == pytest.approx(1.0)
    assert blend("#ffffff", "#000000", 0.5) == "#808080"


class _Cand:
    name, kind, run_id, shipped, test_acc = "vit", "vit", 1, True, 0.98


def test_class_scores_with_no_drawings_say_what_to_do():
    from vitdemo.classset.scores import ClassScore

    empty = [ClassScore(_Cand(), 0, 0), ClassScore(_Cand(), 0, 0)]
    assert classset_views.scores_message(empty) == classset_views.NO_DRAWINGS
    assert "submit some from Draw" in classset_views.NO_DRAWINGS
    assert "Train page" in classset_views.scores_message([])
    assert classset_views.scores_message([ClassScore(_Cand(), 3, 2)]) is None


# --- the label-budget anomaly: the ViT falls with more labels for want of training -------------------------------
def test_the_shipped_label_budget_explains_the_falling_vit_in_one_sentence(repo_root) -> None:
    rows, _ = label_budget.read_results(repo_root / "checkpoints" / label_budget.FILE_NAME)
    lines = label_budget.budget_caveat(rows)
    assert len(lines) == 1  # the MNIST ViT from scratch: 34.9% at 100 labels, 27.7% at 6,000
    line = lines[0]
    assert line.startswith("The ViT on MNIST gets worse with more labels only because every run here trains for")
    assert "same 300 short steps" in line and "34% of its own 100 training images" in line and "860 steps" in line
    assert line.count(".") == 1 and line.endswith(".")  # one sentence


def test_no_caveat_for_a_line_that_climbs_or_a_run_that_learnt_its_labels() -> None:
    def rows(model, accs, train_acc):
        return [
            {"dataset": "mnist", "model": model, "labels": n, "test_acc": a, "train_acc": train_acc, "epochs": 3,
             "batch_size": 64}
            for n, a in zip((100, 600, 6000), accs, strict=True)
        ]  # fmt: skip

    assert label_budget.budget_caveat(rows("CNN", (0.9, 0.95, 0.98), 1.0)) == []
    assert label_budget.budget_caveat(rows("CNN", (0.9, 0.89, 0.88), 1.0)) == []  # overfit, not undertrained
    assert len(label_budget.budget_caveat(rows("ViT", (0.35, 0.3, 0.28), 0.34))) == 1
