"""Evaluate: a finished run on the whole test set; where it goes wrong and why; whether its explanation and its
confidence can be trusted; two runs compared."""

import streamlit as st

from vitdemo.ui import evaluate, shell, widgets

shell.require_app_shell()

with shell.stop_on_failure():
    runs = evaluate.evaluable_runs()
    st.markdown("## Evaluate a model on the test set")
    if not runs:
        st.info("No finished run yet: train one on the Train page (shipped baselines appear here by themselves).")
        st.stop()

    run = widgets.run_picker("Run", runs, key="eval_run", dataset=shell.selection().dataset)
    res = evaluate.test_results(run)
    if res is None:
        st.stop()
    evaluate.metrics_row(res)

    left, right = st.columns([1.25, 1], gap="large")
    with left:
        st.markdown("### Confusion matrix")
        st.caption("Rows: the true class; columns: the prediction. Click a cell to see its test images.")
        cell = evaluate.confusion_picker(res, key=f"cm_{run.id}")
    with right:
        st.markdown("### Per class")
        evaluate.per_class_table(res)
    evaluate.cell_gallery(res, cell)

    st.markdown("### Can you trust this map?")
    evaluate.trust_section(res)
    st.markdown("### Is its confidence honest?")
    evaluate.calibration_section([res], key=f"reliability_{run.id}")

    st.markdown("### Compare with another run")
    others = [r for r in runs if r.dataset == run.dataset and r.id != run.id]
    other = widgets.run_picker("Second run (same dataset)", others, key=f"eval_other_{run.dataset}", none="(none)")
    if other is not None and (other_res := evaluate.test_results(other)) is not None:
        evaluate.compare_runs(res, other_res)
        evaluate.calibration_section([res, other_res], key=f"reliability_{run.id}_{other.id}")
