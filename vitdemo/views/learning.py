"""Watch it learn, without Streamlit: the loss curve with a point every second or so, the row of watched test
images with the model's answers, and why a ViT needs more epochs than a CNN. No torch here."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

import plotly.graph_objects as go

from vitdemo.runs.store import Run
from vitdemo.training.watch import WatchRow
from vitdemo.views.charts import curves_figure, epoch_axis
from vitdemo.views.display import percent_text
from vitdemo.views.words import say

RIGHT_COLOR, WRONG_COLOR = "#3fb68b", "#eb5757"
STEP_LOSS_COLOR = "#8ab4ff"  # the thin every-second loss: a light blue, opaque, that reads on the dark page
MAX_DRAWN = 600  # loss points drawn at most (a chart a few hundred pixels wide shows no more); the newest stays
DIGIT_PX = 84  # a watched image's largest width on the page (28 px, scaled up 3x, pixels kept square)

WHY_MORE_EPOCHS = (
    "Why does the ViT need more epochs than the CNN? A convolution has two facts about images built in: "
    "neighbouring pixels belong together, and a pattern means the same wherever it appears. "
    "A ViT starts without them and must learn both from the data, through its position embeddings and its "
    "attention, so on 60,000 small images it learns less per epoch: that is why the 'fast demo' ViT ends below "
    "a CNN trained for a single epoch."
)


def why_more_epochs() -> str:
    """The note beside the presets: why a ViT needs more epochs than a CNN (plain text, no markdown)."""
    return WHY_MORE_EPOCHS


# -- the loss curve ---------------------------------------------------------------------------------------------
def live_curves_figure(
    epochs: Sequence[dict[str, Any]], points: Sequence[dict[str, Any]], *, height: int | None = None
) -> go.Figure:
    """Loss and accuracy per epoch (vitdemo.views.charts.curves_figure, stacked), with the training loss every
    second or so drawn under the per-epoch loss: x is in epochs (1.5: half-way through the second), so the curve
    moves from the first second on and meets the epoch markers at their ends."""
    fig = curves_figure(epochs, stacked=True, height=height)
    points = drawn_points(points)
    if points:
        fig.add_trace(
            go.Scatter(
                x=[p["at_epoch"] for p in points],
                y=[p["loss"] for p in points],
                mode="lines",
                name="training, every second",
                legendgroup="train",  # shown and hidden with the per-epoch training curve, no legend entry of its
                showlegend=False,  # own (a third entry would wrap the legend)
                line={"color": STEP_LOSS_COLOR, "width": 1.5},
                hovertemplate="%{y:.4f}",
            ),
            row=1,
            col=1,
        )
    end = max([float(e["epoch"]) for e in epochs] + [float(p["at_epoch"]) for p in points] + [0.0])
    fig.update_xaxes(**epoch_axis(end))
    return fig


def drawn_points(points: Sequence[dict[str, Any]], most: int = MAX_DRAWN) -> list[dict[str, Any]]:
    """Every k-th point so that at most `most` are drawn, and always the newest."""
    stride = max(1, -(-len(points) // max(most, 1)))  # ceil
    kept = list(points[::stride])
    if points and kept[-1] is not points[-1]:
        kept[-1] = points[-1]
    return kept


# -- the watched images -----------------------------------------------------------------------------------------
def _class_name(classes: Sequence[str], c: int) -> str:
    return str(classes[c]) if 0 <= c < len(classes) else str(c)


def _digit_html(uri: str | None, truth: str, pred: str, prob: float, right: bool) -> str:
    color, mark = (RIGHT_COLOR, "✓") if right else (WRONG_COLOR, "✗")
    label = f"a {truth}, read as {pred} ({percent_text(prob)})"
    image = (
        f'<img src="{uri}" alt="test image of a {escape(truth)}" style="display:block;width:100%;'
        f"max-width:{DIGIT_PX}px;margin:0 auto;image-rendering:pixelated;border:3px solid {color};"
        'border-radius:4px;box-sizing:border-box">'
        if uri
        else f'<div style="padding:0.4em 0;border:3px solid {color};border-radius:4px">{escape(truth)}</div>'
    )
    return (
        f'<figure class="vd-watch-digit {"vd-right" if right else "vd-wrong"}" aria-label="{escape(label)}" '
        f'style="margin:0;text-align:center;min-width:0">{image}'
        f'<figcaption style="color:{color};line-height:1.15;margin-top:0.2em;overflow-wrap:anywhere">'
        f'<span style="white-space:nowrap">{mark} <b>{escape(pred)}</b></span> '
        f'<span style="white-space:nowrap;opacity:0.85">{escape(percent_text(prob))}</span></figcaption></figure>'
    )


def digit_row_html(
    row: WatchRow, classes: Sequence[str], uris: Sequence[str | None] | None = None, *, font_size: str = "0.85rem"
) -> str:
    """The watched images in one row, each with the predicted class and its probability under it, framed green
    (right, ✓) or red (wrong, ✗). `uris` are the images as data URIs (vitdemo.views.display.png_data_uri), in the
    row's order; without them each shows its true class instead. Class names are escaped."""
    uris = list(uris) if uris is not None else [None] * len(row.indices)
    tiles = [
        _digit_html(uri, _class_name(classes, t), _class_name(classes, p), prob, p == t)
        for uri, t, p, prob in zip(uris, row.labels, row.preds, row.probs, strict=True)
    ]
    return (
        f'<div class="vd-watch" role="group" aria-label="{escape(watch_caption(row))}" style="display:grid;'
        f'grid-template-columns:repeat({max(len(tiles), 1)}, minmax(0, 1fr));gap:0.4rem;font-size:{font_size}">'
        f"{''.join(tiles)}</div>"
    )


def watch_caption(row: WatchRow) -> str:
    """'After 1.5 epochs: 7 of 10 right.' and what the percentages are."""
    when = "Before training" if row.step == 0 else f"After {_epochs_text(row.epoch)}"
    how = (
        "calibrated probabilities of the weights it keeps"
        if row.calibrated
        else "raw probabilities while it trains (calibrated when it ends)"
    )
    return f"{when}: {row.right} of {len(row.labels)} right; {how}."


def plain_watch_caption(row: WatchRow) -> str:
    """watch_caption in the Simple view's words: rounds through the pictures, no probabilities' kind."""
    if row.step == 0:
        return say("train", "watch_before", right=row.right, count=len(row.labels))
    e = row.epoch
    rounds = (
        f"{int(e)} round{'s' if e != 1 else ''}" if e == int(e) else f"{e:.1f} rounds" if e >= 0.1 else "a few steps"
    )
    return say("train", "watch_after", rounds=rounds, right=row.right, count=len(row.labels))


def _epochs_text(epochs: float) -> str:
    if epochs == int(epochs):
        return f"{int(epochs)} epoch{'s' if epochs != 1 else ''}"
    return f"{epochs:.1f} epochs" if epochs >= 0.1 else "a few steps"


def strip_text(run: Run, row: WatchRow | None) -> str:
    """The Present page's line over the watched images (plain text: the run's name is anyone's text)."""
    parts = [f"Training now: #{run.id} {run.name}"]
    progress = run.progress or {}
    if progress.get("epoch"):
        parts.append(f"epoch {int(progress['epoch'])}/{run.epochs or '?'}")
    if progress.get("loss") is not None:
        parts.append(f"loss {float(progress['loss']):.3f}")
    if row is not None:
        parts.append(f"{row.right} of {len(row.labels)} right")
    return " · ".join(parts)


def plain_strip_text(run: Run, row: WatchRow | None) -> str:
    """strip_text in the Simple view's words: the run's name, which round of how many, how many it gets right;
    no loss, no step counts (plain text: the run's name is anyone's text)."""
    progress = run.progress or {}
    parts = [say("present", "strip", name=run.name)]
    if progress.get("epoch") and run.epochs:
        parts.append(say("present", "strip_round", epoch=int(progress["epoch"]), epochs=run.epochs))
    if row is not None:
        parts.append(say("present", "strip_right", right=row.right, count=len(row.labels)))
    return " · ".join(parts)
