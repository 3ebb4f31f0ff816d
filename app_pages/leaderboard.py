"""Leaderboard: every run, shipped baselines included, filtered by family; any runs side by side (metrics, curves,
confusion matrices); accuracy against the label budget; reuse settings, export, clean up."""

import streamlit as st

from vitdemo.runs.store import Registry, Run
from vitdemo.ui import classset as classset_ui
from vitdemo.ui import compare, leaderboard, shell, widgets
from vitdemo.views import charts
from vitdemo.views import read as read_views
from vitdemo.views.names import is_reader


@st.fragment  # its switch and pickers rerun the comparison only: not the table, the race and the class set above
def comparison(reg: Registry, picked: list[Run], dataset: str) -> None:
    with shell.stop_on_failure():  # a fragment reruns on its own, outside the page's guard
        compare.leaderboard_comparison(reg, picked, dataset)


with shell.stop_on_failure():
    reg, runs, names = leaderboard.all_runs()
    readers = [r for r in runs if is_reader(r.kind)]  # whole numbers: a table of their own, below
    runs = [r for r in runs if not is_reader(r.kind)]

    st.markdown("## Leaderboard")
    leaderboard.show_notice()
    if not runs:
        st.info("No runs yet: train one on the Train page.")
        st.stop()

    shown = leaderboard.leaderboard_filters(charts.leaderboard_frame(runs, names), runs)
    leaderboard.leaderboard_table(shown)
    by_id = {r.id: r for r in runs}
    picked = [by_id[i] for i in shown["id"]] or runs

    if readers:
        st.markdown("### Number readers")
        st.caption("Whole-number accuracy on 2,000 test numbers of 1-8 MNIST test digits; the detector's macro F1 "
                   "as a single-digit classifier on MNIST's test digits.")  # fmt: skip
        st.dataframe(read_views.reader_rows(readers), hide_index=True)

    st.markdown("### Race: fastest to 99%")
    leaderboard.race_section(reg, shell.selection().dataset)

    st.markdown("### Which model reads our class best?")
    classset_ui.leaderboard(classset_ui.store(), shell.selection().dataset)

    st.markdown("### Compare runs")
    comparison(reg, picked, shell.selection().dataset)

    st.markdown("### How many labels does a model need?")
    leaderboard.label_budget_section()

    st.markdown("### One run")
    run = widgets.run_picker("Run", picked, key="lb_run")
    if run is not None:
        leaderboard.run_actions(reg, run)
