"""Train: a ViT or a CNN with the audience's settings, in a background worker, watched live."""

import streamlit as st

from vitdemo import jobs, ui
from vitdemo.views import forms

ui.require_app_shell()

reg = ui.registry()
reg.fail_orphans()  # a worker killed while nobody watched: its run shows as failed, not running forever
devices = jobs.available_devices()

st.markdown("## Train a model")
ui.init_train_form()
left, right = st.columns([1.25, 1], gap="large")
with left:
    ui.preset_buttons()
    values = ui.train_form(devices)
with right:
    st.markdown("#### Before you start")
    config, messages = forms.check_values(values, devices)
    ui.estimate_panel(config, messages)
    if st.button(
        "Start training", type="primary", icon=":material/rocket_launch:", key="start_training", width="stretch"
    ):
        ui.launch(reg, values, devices)
    ui.live_runs()  # queue, progress, curves and results, refreshed every second
