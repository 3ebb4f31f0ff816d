"""Leaderboard: every run, shipped baselines included, filtered by family; any runs side by side (metrics, curves,
confusion matrices); accuracy against the label budget; reuse settings, export, clean up."""

import streamlit as st

from vitdemo.ui import classset as classset_ui
from vitdemo.ui import compare, leaderboard, shell, widgets
from vitdemo.views import charts

with shell.stop_on_failure():
    reg, runs, names = leaderboard.all_runs()

    st.markdown("## Leaderboard")
    leaderboard.show_notice()
    if not runs:
        st.info("No runs yet: train one on the Train page.")
        st.stop()

    shown = leaderboard.leaderboard_filters(charts.leaderboard_frame(runs, names), runs)
    leaderboard.leaderboard_table(shown)
    by_id = {r.id: r for r in runs}
    picked = [by_id[i] for i in shown["id"]] or runs

    st.markdown("### Race: fastest to 99%")
    leaderboard.race_section(reg, shell.selection().dataset)

    st.markdown("### Which model reads our class best?")
    classset_ui.leaderboard(classset_ui.store(), shell.selection().dataset)

    st.markdown("### Compare runs")
    compare.leaderboard_comparison(reg, picked, shell.selection().dataset)

    st.markdown("### How many labels does a model need?")
    leaderboard.label_budget_section()

    st.markdown("### One run")
    run = widgets.run_picker("Run", picked, key="lb_run")
    if run is not None:
        leaderboard.run_actions(reg, run)
