"""Robustness lab: change one image by hand and watch both models' answers, then see how their accuracy falls
as the whole test set is shifted, rotated, scaled and re-inked."""

import streamlit as st

from vitdemo.ui import lab, shell
from vitdemo.views.names import dataset_name

with shell.stop_on_failure():
    selection = shell.selection()
    models, problems = shell.load_models(selection)

    st.markdown(f"## Robustness lab · {dataset_name(selection.dataset)}")
    lab.live_panel(selection.dataset, models, problems)
    st.markdown("### How accuracy falls as the test images change")
    lab.sweep_section(selection.dataset, models)
