"""Train: a ViT or a CNN with the audience's settings, in a background worker, watched live."""

import streamlit as st

from vitdemo.ui import classroom, people, shell, train
from vitdemo.ui import sweep as sweep_ui
from vitdemo.views import forms

with shell.stop_on_failure():
    reg = train.open_registry()
    devices = train.devices()
    actor = people.actor()  # None: a student who has not given a name yet

    st.markdown("## Train a model")
    train.init_train_form()
    left, right = st.columns([1.25, 1], gap="large")
    with left:
        train.preset_buttons()
        values = train.train_form(devices)
        if actor is not None and actor.teacher and not people.teacher_access().open:
            classroom.class_settings(reg)
    with right:
        st.markdown("#### Before you start")
        config, messages = forms.check_values(values, devices)
        finish_estimate = train.estimate_panel(config, messages, devices, actor)
        if actor is None:
            people.name_form()  # asked once: the address keeps it
        elif st.button(
            "Start training", type="primary", icon=":material/rocket_launch:", key="start_training", width="stretch"
        ):
            train.launch(reg, values, devices, actor)
        train.live_runs()  # your runs, the class queue and your latest result, refreshed in a fragment
        sweep_ui.sweep_panel(reg, config, actor)  # try many settings of the form's run
    finish_estimate()  # last: timing a new model on the device takes a second or two
