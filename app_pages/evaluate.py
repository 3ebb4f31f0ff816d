"""Evaluate: a finished run on the whole test set; where it goes wrong and why; whether its explanation and its
confidence can be trusted; any number of runs compared side by side."""

import streamlit as st

from vitdemo.explain.opinions import is_classic_file
from vitdemo.ui import classset as classset_ui
from vitdemo.ui import compare, confusion, evaluate, misread, shell, trust, widgets
from vitdemo.ui.view import pick
from vitdemo.views import matrix
from vitdemo.views import read as read_views
from vitdemo.views.words import say

VIEWS = {"one": ":material/search: One run", "compare": ":material/compare: Compare runs"}

with shell.stop_on_failure():
    runs = evaluate.evaluable_runs()
    st.markdown("## Evaluate a model on the test set")
    readers = evaluate.reader_runs()
    if readers:
        with st.expander(f"Number readers ({len(readers)}): whole numbers read, a table of their own"):
            st.dataframe(read_views.reader_rows(readers), hide_index=True)
            if st.toggle("Show the numbers a reader gets wrong", key="misread_on"):  # reading them takes seconds
                misread.misread_gallery(readers)
    if not runs:
        st.info("No finished run yet: train one on the Train page (shipped baselines appear here by themselves).")
        st.stop()

    dataset = shell.selection().dataset
    view_column, family_column = st.columns([1, 1.4], vertical_alignment="bottom")
    with view_column:
        view = st.segmented_control(
            "View", list(VIEWS), format_func=VIEWS.get, default="one", required=True, key="eval_view",
            label_visibility="collapsed",
        )  # fmt: skip
    with family_column:
        runs = widgets.family_filter(runs, key="eval_families")
    if not runs:
        st.info("No finished run of these families: pick others, or clear the filter.")
        st.stop()

    if view == "compare":
        compare.evaluate_comparison(shell.registry(), runs, dataset)
        st.stop()

    run = widgets.run_picker("Run", runs, key="eval_run", dataset=dataset)
    res = evaluate.test_results(run)
    if res is None:
        st.stop()
    evaluate.metrics_row(res)

    with st.container(horizontal=True, gap="large"):  # side by side where they fit (1920 px), else one below
        with st.container(width=matrix.grid_width(res.classes)):
            st.markdown(f"### {pick(say('evaluate', 'matrix_title'), 'Confusion matrix')}")
            st.caption(
                pick(
                    say("evaluate", "matrix"),
                    "Rows: the true class; columns: the prediction. Click a cell to see its test images.",
                )
            )
            cell = confusion.confusion_picker(res, key=f"cm_{run.id}")
        with st.container(width=evaluate.PER_CLASS_PX):
            st.markdown(f"### {pick(say('evaluate', 'per_class_title'), 'Per class')}")
            evaluate.per_class_table(res)
    confusion.cell_gallery(res, cell)

    if run.checkpoint and not is_classic_file(run.checkpoint):
        st.markdown("### On the class's own handwriting")
        classset_ui.evaluation_panel(shell.load_model(run.checkpoint), key=f"cs_eval_{run.id}")

    st.markdown("### Can you trust this map?")
    trust.trust_section(res)
    st.markdown("### Is its confidence honest?")
    trust.calibration_section([res], key=f"reliability_{run.id}")
    st.caption(
        pick(
            say("evaluate", "compare_hint"),
            "To put this run beside others (curves, confusion matrices, calibration), choose Compare runs above.",
        )
    )
