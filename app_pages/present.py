"""Present: one screen for the projector. The canvas, both models' answers and where they looked, no scrolling;
the address and QR code students open to join, the class wall of their drawings and the run training now."""

import streamlit as st

from vitdemo.checkpoints import LoadedModel
from vitdemo.ui import classset as classset_ui
from vitdemo.ui import draw, present, present_number, shell
from vitdemo.ui import race as race_ui
from vitdemo.ui.shell import Selection
from vitdemo.views.names import KINDS


@st.fragment  # a stroke reruns the canvas and the answers, not the sidebar, the wall or the strips
def drawing(selection: Selection, models: dict[str, LoadedModel], problems: dict[str, str]) -> None:
    with shell.stop_on_failure():
        head_fusion, discard_ratio = draw.rollout_settings()  # set under the ViT's map
        pad, answers = st.columns([0.9, 2], gap="medium")
        with pad:
            image = draw.sketch_pad("present", extra_button=present.join_button)
        analysis = draw.run_analysis(image, models, head_fusion, discard_ratio)
        predictions = analysis.predictions if analysis is not None else {}
        with answers:
            sides = st.columns(2, gap="medium")
            for kind, side in zip(KINDS, sides, strict=True):
                with side:
                    present.model_panel(kind, predictions.get(kind), analysis, problems.get(kind))
            if analysis is not None and analysis.pre.message:  # a stroke too small to read, say
                with sides[0]:
                    st.info(analysis.pre.message, icon=":material/draw:")
            # under the answers: the class wall and the run training now; the join panel beside them, so the
            # canvas keeps its room (>= 300 px at 1280x720 with the QR code shown)
            wall, join = st.columns([1.15, 1], gap="medium")
            with wall:
                present.class_wall(selection.dataset)
                present.learn_strip()
            with join:
                present.join_panel()
                race_ui.present_strip()
        with pad, st.container(horizontal=True, gap="small", key="vd_present_more"):
            classset_ui.submit_drawing("present", image, analysis, compact=True)
            present.map_settings()
            present.race_board(selection.dataset)
            present_number.switch_button()


with shell.stop_on_failure():
    selection = shell.selection()
    present.page_style()
    if present_number.chosen():  # "now write the year": the two number readers instead of the digit models
        with st.container(key="vd_present"):
            present_number.number_view()
        st.stop()
    models, problems = shell.load_models(selection)
    with st.container(key="vd_present"):
        drawing(selection, models, problems)
