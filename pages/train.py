"""Train: a ViT or a CNN with the audience's settings, in a background worker, watched live."""

import streamlit as st

from vitdemo.ui import shell, train
from vitdemo.views import forms

shell.require_app_shell()

with shell.stop_on_failure():
    reg = train.open_registry()
    devices = train.devices()

    st.markdown("## Train a model")
    train.init_train_form()
    left, right = st.columns([1.25, 1], gap="large")
    with left:
        train.preset_buttons()
        values = train.train_form(devices)
    with right:
        st.markdown("#### Before you start")
        config, messages = forms.check_values(values, devices)
        train.estimate_panel(config, messages)
        if st.button(
            "Start training", type="primary", icon=":material/rocket_launch:", key="start_training", width="stretch"
        ):
            train.launch(reg, values, devices)
        train.live_runs()  # queue, progress, curves and results, refreshed every second
