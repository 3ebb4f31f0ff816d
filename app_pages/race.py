"""Race: a ViT and a CNN learning the same images at the same time, steered live (TensorFlow Playground style)."""

import streamlit as st

from vitdemo.ui import people, race, race_knobs, shell

with shell.stop_on_failure():
    title, choice, toggle = st.columns([4, 1.8, 1.8], vertical_alignment="center")  # "Present mode" whole at 820
    with toggle:
        present = race.present_toggle()
    title.markdown("#### ViT vs CNN: a training race" if present else "## ViT vs CNN: a training race")
    with choice:
        where = race.seat()
    race.live(where, present)
    if not present:
        race.explainer()
        if people.is_teacher() and people.teacher_password() is not None:
            race_knobs.cap_settings()
