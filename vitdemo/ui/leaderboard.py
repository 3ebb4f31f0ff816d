"""The Leaderboard page's widgets: the filtered table of every run (with who trained it), training curves on
one chart, and what can be done with one run (reuse its settings, download its checkpoint, delete it: only
its owner or the teacher, which vitdemo.runs.queue.delete_run checks)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from vitdemo.config import ConfigError
from vitdemo.paths import shipped_dir
from vitdemo.runs import people as run_people
from vitdemo.runs import queue
from vitdemo.runs.baselines import sync_baselines
from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.store import STATUSES, Registry, Run
from vitdemo.ui import people
from vitdemo.ui.shell import registry, selection
from vitdemo.ui.train import prefill_form
from vitdemo.views import charts, forms
from vitdemo.views.names import DATASETS_SHORT, KINDS

_NOTICE = "_runs_notice"  # a message that must survive one st.rerun (e.g. after a delete)
COLUMN_CONFIG = {
    "test accuracy": st.column_config.NumberColumn("test accuracy", format="percent"),
    "macro F1": st.column_config.NumberColumn("macro F1", format="%.4f"),
    "parameters": st.column_config.NumberColumn("parameters", format="localized"),
    "date": st.column_config.DatetimeColumn("date", format="YYYY-MM-DD HH:mm"),
    "shipped": st.column_config.CheckboxColumn("shipped", help="a baseline that ships with the app"),
}


def all_runs() -> tuple[Registry, list[Run], dict[str, str]]:
    """The registry, every run in it (shipped baselines registered first, dead workers' runs failed) and the
    owners' names."""
    reg = registry()
    queue.fail_orphans(reg)
    sync_baselines(reg, shipped_dir())
    return reg, reg.list_runs(), run_people.owner_names(reg)


def show_notice() -> None:
    """A message left by the previous script run (before an st.rerun), shown once."""
    notice = st.session_state.pop(_NOTICE, None)
    if notice:
        st.success(notice)


def leaderboard_filters(frame: pd.DataFrame) -> pd.DataFrame:
    """Filters above the table: dataset, model kind, status, and a name search."""
    c1, c2, c3, c4 = st.columns([1, 1, 1.4, 1.4])
    datasets = c1.multiselect("Dataset", list(DATASETS_SHORT.values()), key="lb_datasets")
    kinds = c2.multiselect("Model", list(KINDS.values()), key="lb_kinds")
    statuses = c3.multiselect("Status", list(STATUSES), key="lb_statuses")
    text = c4.text_input("Name contains", key="lb_text")
    return charts.filter_leaderboard(frame, datasets=datasets, kinds=kinds, statuses=statuses, text=text)


def leaderboard_table(frame: pd.DataFrame) -> None:
    """The runs, sortable by clicking a column header, and the CSV of what is shown."""
    st.dataframe(frame, hide_index=True, column_config=COLUMN_CONFIG, key="lb_table")
    st.download_button(
        "Export CSV", charts.leaderboard_csv(frame), file_name="vitdemo-leaderboard.csv", mime="text/csv",
        icon=":material/download:", on_click="ignore", key="lb_csv",
    )  # fmt: skip


def curves_overlay(reg: Registry, runs: list[Run]) -> None:
    """Pick runs; their validation (or training) curves on one chart."""
    has_curves = reg.runs_with_curves()
    with_epochs = [r for r in runs if r.id in has_curves]
    if not with_epochs:
        st.caption("No run with training curves yet: train one on the Train page.")
        return
    by_id = {r.id: r for r in with_epochs}
    dataset = selection().dataset  # start with the shipped pair of the sidebar's dataset, so the chart is not empty
    default = [r.id for r in with_epochs if r.baseline and r.dataset == dataset][:2]
    c1, c2 = st.columns([3, 1])
    picked = c1.multiselect(
        "Runs to compare", list(by_id), default=default, format_func=lambda i: charts.run_title(by_id[i]),
        key="lb_compare", max_selections=len(charts.PALETTE),
    )  # fmt: skip
    metric = c2.selectbox("Curve", list(charts.METRICS), format_func=charts.METRICS.get, key="lb_metric")
    if picked:
        curves = {charts.run_title(by_id[i]): reg.epochs(i) for i in picked}
        st.plotly_chart(charts.overlay_figure(curves, metric), key="lb_overlay", config={"displayModeBar": False})


def use_settings(run: Run) -> None:
    """Send a run's settings to the Train form and go there."""
    try:
        values = forms.values_from_config(run.config)
    except ConfigError as exc:
        st.error(f"The settings of run #{run.id} cannot be used: {exc}")
        return
    prefill_form(f"#{run.id} {charts.literal_markdown(run.name)}", {**values, "name": ""})  # a new name for a new run
    st.switch_page("pages/train.py")


def _delete(reg: Registry, run: Run) -> None:
    """Delete a run after a confirmation, if it is yours (or you are the teacher); baselines, unfinished runs and
    other people's runs are explained instead."""
    actor = people.actor()
    if run.baseline:
        st.info("Shipped baselines can't be deleted: they come with the app.")
        return
    if run.status in ("queued", "running"):
        st.info(f"Run #{run.id} is {run.status}: cancel it on the Train page before deleting it.")
        return
    if actor is None or not actor.may_change(run):
        st.caption("Only the run's owner or the teacher can delete it.")
        return
    confirm = st.checkbox(f"Yes, delete run #{run.id} and its checkpoint", key=f"lb_confirm_{run.id}")
    if st.button("Delete run", key=f"lb_delete_{run.id}", disabled=not confirm, icon=":material/delete:"):
        try:
            queue.delete_run(reg, run.id, actor)  # checks the owner again, in the registry
        except RegistryError as exc:  # not yours, or already gone
            st.error(charts.literal_markdown(exc.public))  # it may name the owner
            return
        except ValueError as exc:
            st.error(str(exc))
            return
        st.session_state[_NOTICE] = f"Run #{run.id} was deleted."
        st.rerun()


def run_actions(reg: Registry, run: Run) -> None:
    """What can be done with one run: copy its settings, download its checkpoint, delete it."""
    c1, c2 = st.columns(2)
    if c1.button(
        "Use these settings",
        key=f"lb_use_{run.id}",
        icon=":material/content_copy:",
        help="Copy them into the Train form",
    ):
        use_settings(run)
    path = Path(run.checkpoint) if run.checkpoint else None
    if path is not None and path.is_file():
        c2.download_button(
            "Download checkpoint", path.read_bytes(), file_name=path.name, mime="application/octet-stream",
            icon=":material/download:", on_click="ignore", key=f"lb_download_{run.id}",
        )  # fmt: skip
    else:
        c2.caption("No checkpoint file for this run.")
    _delete(reg, run)
