"""What the race page shows, without Streamlit: the one chart (training loss above, validation accuracy below,
both models in the app's two colours, against race seconds or images seen, every knob turn marked where it
happened), the sentence that says what to look for after a turn, and the lines of figures. No torch here.

The chart is built from plain dicts and validated once (go.Figure(dict)), not trace by trace: a page with 30
watchers rebuilds it once per race version (vitdemo.ui.race caches it), and that once must be cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any, Literal

import plotly.graph_objects as go

from vitdemo.race.knobs import SIDES, Change
from vitdemo.race.state import Mark, Point, RaceView, SideView
from vitdemo.training.watch import WatchRow
from vitdemo.units import format_duration
from vitdemo.views import race_words
from vitdemo.views.colors import MODEL_COLORS
from vitdemo.views.names import DATASETS_SHORT, KINDS

Axis = Literal["seconds", "images"]
AXES: dict[str, str] = {"seconds": "seconds", "images": "images seen"}
MAX_DRAWN = 300  # points drawn per curve: a chart a few hundred pixels wide shows no more
MAX_LOSS = 4.0  # the loss axis stops here: a blown-up run's 30 would flatten every other curve
GRID = "rgba(140, 150, 170, 0.18)"
MARK_COLOR = "rgba(230, 230, 235, 0.55)"
STATES = {
    "starting": "Getting ready: reading the images and building both models",
    "ready": "Ready: press Play",
    "playing": "Training",
    "paused": "Paused",
    "waiting": "Waiting",
    "failed": "Stopped by an error",
}
KNOB_NAMES = {
    "lr": "learning rate",
    "batch_size": "batch size",
    "weight_decay": "weight decay",
    "augment": "augmentation",
    "label_noise": "label noise",
    "train_size": "training images",
    "extra_data": "class drawings",
    "vit_patch": "ViT patch size",
    "vit_depth": "ViT depth",
    "cnn_width": "CNN width",
    "cnn_depth": "CNN depth",
}


# -- words ------------------------------------------------------------------------------------------------------
def _ratio_text(old: float, new: float) -> str:
    r = new / old if old else math.inf
    return f"×{r:.3g}" if r >= 1 else f"÷{1 / r:.3g}"


def knob_label(change: Change) -> str:
    """The short label on the chart: 'lr ×10', 'batch 64→256', 'noise 30%', 'ViT depth 3→6'."""
    k, old, new = change.knob, change.old, change.new
    if k == "lr":
        return f"lr {_ratio_text(float(old), float(new))}"
    if k == "label_noise":
        return f"noise {new:.0%}"
    if k == "train_size":
        return f"{new:,} images"
    if k == "extra_data":
        return "+ class drawings" if new else "− class drawings"
    if k == "augment":
        return f"augment {new:g}"
    short = {"batch_size": "batch", "weight_decay": "wd"}.get(k, KNOB_NAMES.get(k, k))
    return f"{short} {old:g}→{new:g}"


def _lr_sentence(old: float, new: float) -> str:
    r = new / old
    if r >= 3:
        return f"learning rate {_ratio_text(old, new)}: watch the loss jump, then settle or blow up."
    if r <= 1 / 3:
        return f"learning rate {_ratio_text(old, new)}: smaller steps: the loss gets smoother and falls more slowly."
    more = "larger steps: the loss may fall faster, or get noisier" if r > 1 else "smaller steps: a steadier loss"
    return f"learning rate {_ratio_text(old, new)}: {more}."


def _data_sentence(c: Change) -> str:
    if c.knob == "label_noise":
        if c.new > c.old:
            return (
                f"label noise {c.new:.0%}: {round(c.new * 10)} in 10 training labels are now wrong: the training "
                "loss rises and stays up; validation accuracy holds at first, then sags as the models learn the "
                "wrong labels by heart."
            )
        return f"label noise {c.new:.0%}: labels put right: watch the training loss fall back."
    if c.knob == "train_size":
        if c.new < c.old:
            return (
                f"{c.new:,} training images: each one comes round more often: the training loss dives while "
                "validation accuracy stalls (overfitting); the ViT, with less built in, suffers more."
            )
        return f"{c.new:,} training images: more to learn from: validation accuracy climbs further, the ViT's most."
    if c.new:
        return "the class's own drawings join the training images: the models now also learn how this class writes."
    return "the class's drawings leave the training images."


def _training_sentence(c: Change) -> str:
    if c.knob == "batch_size":
        if c.new > c.old:
            return f"batch {c.old} → {c.new}: fewer, steadier steps: a smoother loss, but less learnt per image."
        return f"batch {c.old} → {c.new}: more, noisier steps: a jumpier loss, more learnt per image."
    if c.knob == "weight_decay":
        harder = "harder: a strong pull keeps the training loss up" if c.new > c.old else "less: they may fit closer"
        return f"weight decay {c.old:g} → {c.new:g}: the weights are pulled toward zero {harder}."
    if c.new > 0 and not c.old:
        return (
            f"augmentation {c.new:g}: every image is turned, scaled and shifted a little: the training loss rises "
            "(harder images), validation accuracy holds, and helps on small training sets."
        )
    if not c.new:
        return "augmentation off: easier training images: the training loss drops; does validation accuracy follow?"
    return f"augmentation {c.old:g} → {c.new:g}: {'harder' if c.new > c.old else 'easier'} training images."


def _architecture_sentence(c: Change) -> str:
    name = KINDS[c.sides[0]]
    if c.knob == "vit_patch":
        detail = "finer detail, slower steps" if c.new < c.old else "faster steps, coarser detail"
        return (
            f"ViT patches {c.old} → {c.new} px: the ViT starts again with {(28 // c.new) ** 2} patches an image "
            f"({detail}); its old curve stays faded."
        )
    more = c.new > c.old
    what = {"vit_depth": "blocks", "cnn_width": "filters", "cnn_depth": "stages"}[c.knob]
    return (
        f"{KNOB_NAMES[c.knob]} {c.old} → {c.new}: the {name} starts again with {'more' if more else 'fewer'} "
        f"{what}: watch its images per second {'fall' if more else 'rise'}, and compare its new curve with the "
        "faded old one on the images axis."
    )


def look_for(change: Change) -> str:
    """One sentence of what to look for after a knob turn."""
    if change.knob == "lr":
        return _lr_sentence(float(change.old), float(change.new))
    if change.knob in ("label_noise", "train_size", "extra_data"):
        return _data_sentence(change)
    if change.restart:
        return _architecture_sentence(change)
    return _training_sentence(change)


def status_text(view: RaceView) -> str:
    """'Training · 12.4 s' / 'Paused · 12.4 s: paused: nobody...' / the error."""
    if view.state == "failed":
        return f"{STATES['failed']}: {view.error}. Press Reset to start again."
    text = STATES[view.state]
    if view.state in ("playing", "paused", "waiting"):
        text += f" · {format_duration(view.t) if view.t >= 60 else f'{view.t:.1f} s'}"
    return f"{text} · {view.reason}" if view.reason else text


def side_text(side: SideView) -> str:
    """'step 412 · 26,368 images (5.3 passes) · 640 images/s'."""
    return (
        f"step {side.steps:,} · {side.images:,} images ({side.epochs:.1f} passes) · {side.images_per_s:,.0f} images/s"
    )


def watch_text(row: WatchRow | None) -> str:
    """'7/10 digits right' (of the ten watched test digits)."""
    return "" if row is None else f"{row.right}/{len(row.labels)} digits right"


def knob_rows(view: RaceView) -> list[tuple[str, str]]:
    """The race's settings as (name, value) rows: what a student's device shows in place of the knobs."""
    k, data = view.knobs, DATASETS_SHORT.get(view.config.dataset, view.config.dataset)
    return [
        ("Learning rate", f"{k.lr:g}"), ("Batch size", str(k.batch_size)), ("Training images", f"{k.train_size:,}"),
        ("Label noise", f"{k.label_noise:.0%}"), ("Augmentation", f"{k.augment:g}"),
        ("Weight decay", f"{k.weight_decay:g}"), ("ViT", f"{k.vit_patch}x{k.vit_patch} patches, depth {k.vit_depth}"),
        ("CNN", f"width {k.cnn_width}, depth {k.cnn_depth}"),
        ("Data", data + (" + the class's drawings" if k.extra_data else "")),
    ]  # fmt: skip


def knobs_html(view: RaceView, *, plain: bool = False) -> str:
    """The settings' table; `plain`: in the Simple view's words."""
    found = race_words.knob_rows(view) if plain else knob_rows(view)
    rows = "".join(f"<tr><td>{escape(n)}</td><td><b>{escape(v)}</b></td></tr>" for n, v in found)
    return f'<table class="vd-race-knobs">{rows}</table>'


# -- the chart --------------------------------------------------------------------------------------------------
def _every(points: Sequence[Point], most: int = MAX_DRAWN) -> list[Point]:
    """Every k-th point so that at most `most` are drawn, always with the newest."""
    stride = max(1, -(-len(points) // most))
    kept = list(points[::stride])
    if points and kept[-1] is not points[-1]:
        kept.append(points[-1])
    return kept


def _x(p: Point, axis: Axis) -> float:
    return p.t if axis == "seconds" else p.images


def _curves(side: SideView, points: Sequence[Point], axis: Axis, *, faded: bool) -> list[dict[str, Any]]:
    """The side's loss (top) and validation accuracy (bottom) traces."""
    color, name = MODEL_COLORS[side.kind], KINDS[side.kind]
    drawn = _every(points)
    loss = [p for p in drawn if p.loss == p.loss and p.step > 0]  # NaN: no training since the point before
    acc = [p for p in drawn if p.val_acc is not None]
    style = {"color": color, "width": 1.5 if faded else 2.5, "dash": "dot" if faded else "solid"}
    label = f"{name} before its restart" if faded else name
    common = {"type": "scatter", "mode": "lines", "legendgroup": side.kind + ("-old" if faded else ""),
              "line": style, "opacity": 0.45 if faded else 1.0}  # fmt: skip
    return [
        {**common, "x": [_x(p, axis) for p in loss], "y": [round(min(p.loss, MAX_LOSS * 2), 4) for p in loss],
         "name": label, "showlegend": False, "xaxis": "x", "yaxis": "y", "hovertemplate": "loss %{y:.3f}"},
        {**common, "x": [_x(p, axis) for p in acc], "y": [round(100 * (p.val_acc or 0), 2) for p in acc],
         "name": label, "showlegend": not faded, "xaxis": "x2", "yaxis": "y2", "hovertemplate": "%{y:.1f}%"},
    ]  # fmt: skip


def _mark_xs(mark: Mark, axis: Axis) -> list[tuple[float, str]]:
    """Where a mark stands: one line at its second, or one per side it acted on at that side's images."""
    if axis == "seconds":
        return [(mark.t, MARK_COLOR)]
    return [(mark.images[SIDES.index(k)], MODEL_COLORS[k]) for k in mark.change.sides]


def _marks(marks: Sequence[Mark], axis: Axis, plain: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Dotted lines through both panels and a label over the top one, for each knob turn (labels of turns at
    the same moment are stacked); `plain`: the label and its hover text in the Simple view's words."""
    label, sentence = (race_words.knob_label, race_words.look_for) if plain else (knob_label, look_for)
    shapes, notes, last_x, row = [], [], None, 0
    for mark in marks:
        xs = _mark_xs(mark, axis)
        for x, color in xs:
            shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
                           "line": {"color": color, "width": 1, "dash": "dot"}})  # fmt: skip
        x = xs[0][0]
        row = row + 1 if last_x is not None and abs(x - last_x) < 1e-9 else 0
        last_x = x
        notes.append({"x": x, "xref": "x", "y": 1.0 - 0.075 * (row % 4), "yref": "paper", "text": label(mark.change),
                      "showarrow": False, "xanchor": "left", "yanchor": "top", "font": {"size": 12},
                      "bgcolor": "rgba(14, 17, 23, 0.7)", "hovertext": sentence(mark.change)})  # fmt: skip
    return shapes, notes


def _x_end(view: RaceView, axis: Axis) -> float:
    ends = [_x(p, axis) for s in view.sides for p in (*s.points[-1:], *s.before[-1:])]
    floor = 5.0 if axis == "seconds" else 1000.0
    return max([floor, *ends]) * 1.03


def race_figure(
    view: RaceView, axis: Axis = "seconds", *, height: int = 420, font_size: int = 13, plain: bool = False
) -> go.Figure:
    """The one chart: loss over validation accuracy for both models, knob turns marked. `height` 0 leaves the
    height to the page (a chart that fills its box); `plain`: titles and labels in the Simple view's words."""
    traces: list[dict[str, Any]] = []
    for side in view.sides:
        if side.before:
            traces += _curves(side, side.before, axis, faded=True)
        traces += _curves(side, side.points, axis, faded=False)
    shapes, notes = _marks(view.marks, axis, plain)
    loss_title, acc_title = race_words.titles() if plain else ("training loss", "validation accuracy")
    x_title = (race_words.axis_names() if plain else AXES)[axis]
    losses = [y for t in traces if t["yaxis"] == "y" for y in t["y"]]
    top = min(MAX_LOSS, max([2.5, *losses]) * 1.05)
    end = _x_end(view, axis)
    axis_style = {"gridcolor": GRID, "zeroline": False}
    layout = {
        "height": height or None,
        "margin": {"l": 56, "r": 12, "t": 30, "b": 44},
        "font": {"size": font_size},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "legend": {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom"},
        "hovermode": "x unified",
        "xaxis": {**axis_style, "domain": [0, 1], "anchor": "y", "range": [0, end], "showticklabels": False,
                  "matches": "x2"},
        "yaxis": {**axis_style, "domain": [0.56, 1.0], "range": [0, top], "title": {"text": loss_title}},
        "xaxis2": {**axis_style, "domain": [0, 1], "anchor": "y2", "range": [0, end],
                   "title": {"text": x_title, "standoff": 6}},
        "yaxis2": {**axis_style, "domain": [0.0, 0.5], "range": [0, 100], "ticksuffix": "%",
                   "title": {"text": acc_title}},
        "shapes": shapes,
        "annotations": notes,
        "uirevision": f"{axis}",
    }  # fmt: skip
    return go.Figure({"data": traces, "layout": layout})


class FrozenFigure(go.Figure):
    """A finished figure that will not change again: `to_dict`, which st.plotly_chart calls on every render of
    every session that shows it, returns the dict built the first time instead of a new deep copy (3 ms each for
    a race's chart, measured; 30 sessions refresh every second). Never change one after `frozen`."""

    def to_dict(self) -> dict[str, Any]:
        cached = self.__dict__.get("_vd_dict")
        if cached is None:
            cached = super().to_dict()
            self.__dict__["_vd_dict"] = cached
        return cached


def frozen(fig: go.Figure) -> FrozenFigure:
    return FrozenFigure(fig)
