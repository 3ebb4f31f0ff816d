"""Draw: one digit in, the ViT's and the CNN's answers, how each of them got there, and any other run's opinion."""

import streamlit as st

from vitdemo.ui import classset as classset_ui
from vitdemo.ui import draw, opinions, shell
from vitdemo.views.names import KINDS, dataset_name

with shell.stop_on_failure():
    selection = shell.selection()
    models, problems = shell.load_models(selection)
    head_fusion, discard_ratio = draw.rollout_settings()  # its controls sit beside the ViT's map

    st.markdown(f"## ViT vs CNN · {dataset_name(selection.dataset)}")
    left, right = st.columns([1.25, 2], gap="medium")
    with left:
        source = draw.image_input(selection.dataset)
    analysis = draw.run_analysis(source.image, models, head_fusion, discard_ratio, dataset=source.dataset)
    predictions = analysis.predictions if analysis is not None else {}

    with right:
        if analysis is None or analysis.pre.empty:
            draw.empty_prompt(analysis, source)
        for kind, column in zip(KINDS, st.columns(2, gap="large"), strict=True):
            with column:
                draw.prediction_panel(kind, predictions.get(kind), models.get(kind), problems.get(kind), source.truth)
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
