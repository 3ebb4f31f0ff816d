"""Draw: one digit in, the ViT's and the CNN's answers, and how each of them got there."""

import streamlit as st

from vitdemo import ui

ui.require_app_shell()

selection = ui.selection()
models, problems = ui.load_models(selection)
head_fusion, discard_ratio = ui.explanation_settings()

st.markdown(f"## ViT vs CNN · {ui.DATASETS[selection.dataset]}")
left, right = st.columns([1.25, 2], gap="medium")
with left:
    source = ui.image_input(selection.dataset)
analysis = ui.run_analysis(source.image, models, head_fusion, discard_ratio)
predictions = analysis.predictions if analysis is not None else {}

with right:
    if analysis is None or analysis.pre.empty:
        ui.empty_prompt(analysis, source)
    columns = dict(zip(ui.KINDS, st.columns(2, gap="large"), strict=True))
    for kind, column in columns.items():
        with column:
            ui.prediction_panel(kind, predictions.get(kind), models.get(kind), problems.get(kind), source.truth)
    if analysis is not None and predictions:
        ui.timings(analysis)

if analysis is not None and predictions:
    st.markdown("### What the models see")
    ui.preprocessing_strip(analysis)
    st.markdown("### Where they look")
    for kind, column in zip(ui.KINDS, st.columns(2, gap="large"), strict=True):
        if kind in predictions:
            with column:
                ui.explanation_panel(kind, predictions[kind], analysis)
