"""Leaderboard: every run, shipped baselines included; compare curves, reuse settings, export, clean up."""

import streamlit as st

from vitdemo import ui
from vitdemo.views import charts

ui.require_app_shell()

reg = ui.registry()
reg.fail_orphans()
reg.sync_baselines(ui.checkpoint_dir())
runs = reg.list_runs()

st.markdown("## Leaderboard")
ui.show_notice()
if not runs:
    st.info("No runs yet: train one on the Train page.")
    st.stop()

shown = ui.leaderboard_filters(charts.leaderboard_frame(runs))
ui.leaderboard_table(shown)

st.markdown("### Training curves")
ui.curves_overlay(reg, runs)

st.markdown("### One run")
by_id = {r.id: r for r in runs}
picked = [by_id[i] for i in shown["id"]] or runs
run = ui.run_picker("Run", picked, key="lb_run")
if run is not None:
    ui.run_actions(reg, run)
