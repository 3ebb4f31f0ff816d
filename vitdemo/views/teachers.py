"""The Train form's "learn from a teacher" choice for a ViT (DeiT distillation, vitdemo.training.distill): which CNNs
a ViT may learn from, what the form calls them, and the one sentence on why. Pure Python, no Streamlit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from vitdemo.families.vit import SHIPPED_TEACHER
from vitdemo.views.charts import ACCURACY_AXIS, PALETTE, _layout, plotly_text
from vitdemo.views.names import DATASETS_SHORT

NO_TEACHER = ""
WHY = (
    "A CNN looks at neighbouring pixels together, the locality a ViT has to learn from many images; with a teacher "
    "the ViT gets a second token trained to give the CNN's answers, and both of its heads answer together."
)


def teacher_choices(runs: Iterable[Any], dataset: str, shipped: bool = True) -> dict[str, str]:
    """The teachers a ViT on `dataset` may learn from: value -> label. Values are what `ViTConfig.teacher` holds: ''
    (none), 'shipped' (the shipped CNN, offered when `shipped`: its file is on the server), or a finished CNN
    run's checkpoint file. `runs`: the registry's runs (vitdemo.runs.store.Run), any order; shipped baselines are
    the 'shipped' choice, not listed again."""
    short = DATASETS_SHORT.get(dataset, dataset)
    choices = {NO_TEACHER: "no teacher", **({SHIPPED_TEACHER: f"the shipped CNN ({short})"} if shipped else {})}
    for run in sorted(runs, key=lambda r: -(r.test_acc or 0.0)):
        ok = run.status == "done" and not run.baseline and run.checkpoint and run.config.get("dataset") == dataset
        if ok and run.config.get("model", {}).get("kind") == "cnn":
            choices[str(run.checkpoint)] = f"CNN run {run.label}"
    return choices


def teacher_label(value: str, choices: dict[str, str]) -> str:
    """What the form shows for a teacher value; one no longer offered (a deleted run) says so."""
    return choices.get(value) or f"{value.replace(chr(92), '/').rsplit('/', 1)[-1]} (not on this server any more)"


def has_teacher(config: Mapping[str, Any]) -> bool:
    """Whether a stored run config (a dict) is a ViT that learned from a teacher."""
    model = config.get("model") or {}
    return model.get("kind") == "vit" and bool(model.get("teacher"))


def teacher_figure(curves: Mapping[str, tuple[bool, Sequence[Mapping[str, Any]]]], *, height: int = 380) -> go.Figure:
    """ViT runs' validation accuracy against seconds of training (name -> (learned from a teacher?, its epochs)):
    with a teacher solid, without dashed, so that equal training time reads straight across."""
    fig = go.Figure()
    for i, (name, (taught, epochs)) in enumerate(curves.items()):
        fig.add_trace(
            go.Scatter(
                x=[e.get("elapsed_s") for e in epochs],
                y=[e.get("val_acc") for e in epochs],
                mode="lines+markers",
                name=plotly_text(f"{name} · {'with a teacher' if taught else 'no teacher'}"),
                line={"color": PALETTE[i % len(PALETTE)], "dash": "solid" if taught else "dash"},
                hovertemplate="%{y:.2%} after %{x:.0f} s",
            )
        )
    fig.update_xaxes(title_text="seconds of training", rangemode="tozero")
    fig.update_yaxes(title_text="validation accuracy", **ACCURACY_AXIS)
    return _layout(fig, height)
