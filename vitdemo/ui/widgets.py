"""Widgets that more than one page uses."""

from __future__ import annotations

import streamlit as st

from vitdemo.runs.store import Run
from vitdemo.views import charts, compare
from vitdemo.views.names import FAMILY_HELP, family_name


def run_picker(
    label: str, runs: list[Run], key: str, *, dataset: str | None = None, none: str | None = None
) -> Run | None:
    """A selectbox of runs (by id, so a new run does not reset it); starts on the best run of `dataset`.
    `none`: the label of an extra 'no run' entry."""
    by_id: dict[int | None, Run | None] = {r.id: r for r in runs}
    options: list[int | None] = ([None] if none else []) + [r.id for r in runs]
    if key not in st.session_state or st.session_state[key] not in options:
        first = next((r.id for r in runs if r.dataset == dataset), None) if dataset and not none else None
        st.session_state[key] = first if first is not None else options[0]

    def fmt(run_id: int | None) -> str:
        run = by_id.get(run_id)
        if run is None:
            return none or ""
        acc = f" · {run.test_acc:.2%}" if run.test_acc is not None else ""
        return charts.run_title(run) + acc + (" · shipped" if run.baseline else "")

    return by_id.get(st.selectbox(label, options, format_func=fmt, key=key))


def family_picker(runs: list[Run], key: str, *, label: str = "Family") -> list[str]:
    """A multiselect of the families among `runs` (classic, linear, MLP, CNN, ViT, transfer, pretrained); returns
    the picked family keys, none picked meaning all."""
    options = compare.family_options(runs)
    if key in st.session_state:  # a family whose last run was deleted
        st.session_state[key] = [f for f in st.session_state[key] if f in options]
    return st.multiselect(
        label, options, format_func=family_name, key=key, placeholder="All families", help=FAMILY_HELP
    )


def family_filter(runs: list[Run], key: str, *, label: str = "Family") -> list[Run]:
    """family_picker, then the runs of the picked families (all of them when none is picked)."""
    return compare.in_families(runs, family_picker(runs, key, label=label))
