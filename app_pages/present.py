"""Present: one screen for the projector. The canvas, both models' answers and where they looked, no scrolling;
the address and QR code students open to join."""

import streamlit as st

from vitdemo.ui import classset as classset_ui
from vitdemo.ui import draw, present, shell
from vitdemo.ui import race as race_ui
from vitdemo.views.names import KINDS

with shell.stop_on_failure():
    selection = shell.selection()
    models, problems = shell.load_models(selection)
    head_fusion, discard_ratio = draw.rollout_settings()  # set under the ViT's map
    present.page_style()

    with st.container(key="vd_present"):
        pad, *sides = st.columns([0.9, 1, 1], gap="medium")
        with pad:
            image = draw.sketch_pad("present", extra_button=present.join_button)
            present.join_panel()
            present.race_board(selection.dataset)
            present.learn_strip()
            race_ui.present_strip()
        analysis = draw.run_analysis(image, models, head_fusion, discard_ratio)
        predictions = analysis.predictions if analysis is not None else {}
        for kind, side in zip(KINDS, sides, strict=True):
            with side:
                present.model_panel(kind, predictions.get(kind), analysis, problems.get(kind))
        with pad:
            classset_ui.submit_drawing("present", image, analysis, compact=True)
        if analysis is not None and analysis.pre.message:  # a stroke too small to read, say
            with sides[0]:
                st.info(analysis.pre.message, icon=":material/draw:")
