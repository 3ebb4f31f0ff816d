"""Leaderboard: every run, shipped baselines included; compare curves, reuse settings, export, clean up."""

import streamlit as st

from vitdemo.ui import leaderboard, shell, widgets
from vitdemo.views import charts

shell.require_app_shell()

with shell.stop_on_failure():
    reg, runs, names = leaderboard.all_runs()

    st.markdown("## Leaderboard")
    leaderboard.show_notice()
    if not runs:
        st.info("No runs yet: train one on the Train page.")
        st.stop()

    shown = leaderboard.leaderboard_filters(charts.leaderboard_frame(runs, names))
    leaderboard.leaderboard_table(shown)

    st.markdown("### Training curves")
    leaderboard.curves_overlay(reg, runs)

    st.markdown("### One run")
    by_id = {r.id: r for r in runs}
    picked = [by_id[i] for i in shown["id"]] or runs
    run = widgets.run_picker("Run", picked, key="lb_run")
    if run is not None:
        leaderboard.run_actions(reg, run)
