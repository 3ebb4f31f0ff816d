"""Draw: one digit in, the ViT's and the CNN's answers, how each of them got there, and any other run's opinion."""

import streamlit as st

from vitdemo.checkpoints import LoadedModel
from vitdemo.ui import classset as classset_ui
from vitdemo.ui import draw, opinions, shell
from vitdemo.ui.shell import Selection
from vitdemo.views.names import KINDS, dataset_name


@st.fragment  # a stroke reruns what the drawing changes, not the sidebar, the navigation or the page's frame
def drawing(selection: Selection, models: dict[str, LoadedModel], problems: dict[str, str]) -> None:
    with shell.stop_on_failure():  # a fragment reruns on its own, outside the page's guard
        head_fusion, discard_ratio = draw.rollout_settings()  # its controls sit beside the ViT's map
        left, right = st.columns([1.25, 2], gap="medium")
        with left:
            source = draw.image_input(selection.dataset)
        analysis = draw.run_analysis(source.image, models, head_fusion, discard_ratio, dataset=source.dataset)
        predictions = analysis.predictions if analysis is not None else {}

        with right:
            if analysis is None or analysis.pre.empty:
                draw.empty_prompt(analysis, source)
            with st.container(key="vd_answers"):  # side by side on a phone too, right under the canvas
                for kind, column in zip(KINDS, st.columns(2, gap="large"), strict=True):
                    with column:
                        draw.prediction_panel(
                            kind, predictions.get(kind), models.get(kind), problems.get(kind), source.truth
                        )
            if analysis is not None and predictions:
                draw.timings(analysis)
            if source.truth is None:  # a drawing or an upload, not an MNIST test image: the class's own handwriting
                classset_ui.submit_drawing("draw", source.image, analysis)

        if analysis is not None and predictions:
            st.markdown("### What the models see")
            draw.preprocessing_strip(analysis)
            st.markdown("### Where they look")
            for kind, column in zip(KINDS, st.columns(2, gap="large"), strict=True):
                if kind in predictions:
                    with column:
                        draw.explanation_panel(kind, predictions[kind], analysis)

        st.markdown("### Extra opinions")
        opinions.extra_opinions(selection, analysis, head_fusion, discard_ratio, source.truth)


with shell.stop_on_failure():
    selection = shell.selection()
    models, problems = shell.load_models(selection)
    st.markdown(f"## ViT vs CNN · {dataset_name(selection.dataset)}")
    drawing(selection, models, problems)
