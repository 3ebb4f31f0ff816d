"""Any number of runs side by side, on the Evaluate and Leaderboard pages: pick runs (the shipped ViT and CNN of
the dataset to start with), then their metrics in one table, their training curves on one chart, their confusion
matrices in a grid with one colour scale, and the test images one gets right and another wrong. The figures and
tables are vitdemo.views.compare and vitdemo.views.charts; the test-set scores come from vitdemo.ui.evaluate."""

from __future__ import annotations

import numpy as np
import streamlit as st

from vitdemo.runs.store import Registry, Run
from vitdemo.ui.confusion import confusion_table
from vitdemo.ui.evaluate import TestResults, test_results
from vitdemo.ui.shell import test_split
from vitdemo.ui.trust import calibration_section
from vitdemo.views import charts, compare, display, matrix, teachers
from vitdemo.views.names import dataset_name

MAX_RUNS = len(charts.PALETTE)  # one colour each on the curves chart
FORMAT = st.column_config.NumberColumn
TABLE_COLUMNS = {
    "id": st.column_config.NumberColumn("id", format="%d"),
    "test accuracy": FORMAT("test accuracy", format="percent"),
    "macro F1": FORMAT("macro F1", format="%.4f"),
    "test loss": FORMAT("test loss", format="%.4f", help="Mean cross-entropy on the test images: lower is better."),
    "calibration error": FORMAT(
        "calibration error", format="percent", help="Expected calibration error: lower means honest confidence."
    ),
    "parameters": FORMAT("parameters", format="localized"),
    "training time (s)": FORMAT("training time (s)", format="%.1f"),
}


def pick_runs(runs: list[Run], key: str, dataset: str, *, label: str = "Runs to compare") -> list[Run]:
    """A multiselect of `runs` by id, starting with the shipped ViT and CNN of `dataset`; the picked runs in the
    order picked."""
    by_id = {r.id: r for r in runs}
    if key in st.session_state:  # a run deleted (or filtered out) since it was picked
        st.session_state[key] = [i for i in st.session_state[key] if i in by_id]
    picked = st.multiselect(
        label, list(by_id), default=None if key in st.session_state else compare.default_pair(runs, dataset),
        format_func=lambda i: charts.run_title(by_id[i]), key=key, max_selections=MAX_RUNS,
        placeholder="Pick runs: the shipped ViT and CNN, your runs, the classic baselines...",
    )  # fmt: skip
    return [by_id[i] for i in picked]


def metrics_table(runs: list[Run], results: dict[int, TestResults] | None = None) -> None:
    """One row per run: what was measured on the test set here, or what the registry stored."""
    scores = {i: res.scores for i, res in (results or {}).items()}
    frame = compare.comparison_frame(runs, scores)
    st.dataframe(frame, hide_index=True, column_config=TABLE_COLUMNS)


def curves_chart(reg: Registry, runs: list[Run], key: str) -> None:
    """The runs' training curves on one chart (one metric at a time); runs without curves are named."""
    has_curves = reg.runs_with_curves()
    with_curves = [r for r in runs if r.id in has_curves]
    without = [f"#{r.id}" for r in runs if r.id not in has_curves]
    if with_curves:
        metric = st.selectbox("Curve", list(charts.METRICS), format_func=charts.METRICS.get, key=f"{key}_metric")
        curves = {charts.run_title(r): reg.epochs(r.id) for r in with_curves}
        st.plotly_chart(charts.overlay_figure(curves, metric), key=key, config={"displayModeBar": False})
    if without:
        st.caption(f"No training curves for {', '.join(without)}: classic models are fitted in one go, without epochs.")


def teacher_curves(reg: Registry, runs: list[Run], key: str) -> None:
    """The ViT runs' validation accuracy against training time, with a teacher and without, once any ViT of these
    runs learned from one (the newest runs, one colour each)."""
    has_curves = reg.runs_with_curves()
    vits = [r for r in runs if r.kind == "vit" and r.id in has_curves and not r.config.get("init")]
    if not any(teachers.has_teacher(r.config) for r in vits):
        return
    st.markdown("#### ViTs with and without a teacher")
    shown = vits[-MAX_RUNS:]
    curves = {charts.run_title(r): (teachers.has_teacher(r.config), reg.epochs(r.id)) for r in shown}
    st.plotly_chart(teachers.teacher_figure(curves), key=key, config={"displayModeBar": False})
    st.caption(teachers.WHY + " Compare the curves at the same number of seconds.")


def confusion_grid(results: list[TestResults], key: str) -> None:
    """The runs' confusion matrices as coloured tables on one colour scale, as many to a row as fit (one at
    1280x720, two at 1920x1080)."""
    top = max(int(r.report.confusion.max(initial=0)) for r in results)
    with st.container(horizontal=True, gap="medium", key=key):
        for res in results:
            with st.container(width=matrix.grid_width(res.classes)):
                title = compare.short_title(f"#{res.run.id} {res.run.name} · {res.report.accuracy:.2%}")
                st.markdown(f"**{charts.literal_markdown(title)}**")
                confusion_table(res.report.confusion, res.classes, key=f"{key}_{res.run.id}", top=top)
    st.caption(
        "Rows: the true class; columns: the prediction. The same colour is the same number of test images in every "
        "matrix (a log scale, so that a few mistakes show beside the thousands on the diagonal)."
    )


def _one_sided_mistakes(right: TestResults, wrong: TestResults, idx: np.ndarray, limit: int) -> None:
    """The test images `right` gets right and `wrong` gets wrong, `wrong`'s most confident mistakes first."""
    st.markdown(f"**#{right.run.id} right, #{wrong.run.id} wrong: {len(idx):,} images**")
    order = np.argsort(-wrong.probs[idx].max(1), kind="stable")[:limit]
    idx = idx[order]
    if not len(idx):
        st.caption("None.")
        return
    classes = right.classes
    captions = [
        f"true {classes[right.labels[i]]} · #{wrong.run.id} said {classes[wrong.preds[i]]} ({wrong.probs[i].max():.0%})"
        for i in idx
    ]
    images = [display.upscale(img, 84) for img in test_split(right.run.dataset).images[idx].numpy()]
    st.image(images, caption=captions, width=84, output_format="PNG")


def disagreement_gallery(results: list[TestResults], key: str, limit: int = 12) -> None:
    """Two of the runs (picked here): the test images one gets right and the other wrong, both ways."""
    by_id = {r.run.id: r for r in results}
    ids = list(by_id)
    c1, c2 = st.columns(2)
    a = c1.selectbox("First run", ids, index=0, format_func=lambda i: charts.run_title(by_id[i].run), key=f"{key}_a")
    b = c2.selectbox("Second run", ids, index=1, format_func=lambda i: charts.run_title(by_id[i].run), key=f"{key}_b")
    if a == b:
        st.caption("Pick two different runs.")
        return
    ra, rb = by_id[a], by_id[b]
    a_only, b_only = charts.disagreements(ra.labels, ra.preds, rb.preds)
    both = int(((ra.preds != ra.labels) & (rb.preds != rb.labels)).sum())
    st.caption(f"Both wrong on {both:,} test images.")
    for column, (right, wrong, idx) in zip(st.columns(2), ((ra, rb, a_only), (rb, ra, b_only)), strict=True):
        with column:
            _one_sided_mistakes(right, wrong, idx, limit)


def scored(runs: list[Run]) -> dict[int, TestResults]:
    """Each run's test-set results (cached per checkpoint file); a run that cannot be scored says why and is left
    out."""
    found = {}
    for run in runs:
        res = test_results(run)
        if res is not None:
            found[run.id] = res
    return found


def evaluate_comparison(reg: Registry, runs: list[Run], dataset: str) -> None:
    """The Evaluate page's comparison: every picked run of the sidebar's dataset scored on its test split."""
    runs = [r for r in runs if r.dataset == dataset]
    teacher_curves(reg, runs, key=f"eval_teacher_{dataset}")
    picked = pick_runs(runs, f"eval_compare_{dataset}", dataset, label=f"Runs to compare ({dataset_name(dataset)})")
    if not picked:
        st.info("Pick runs to compare: the dataset is chosen in the sidebar.")
        return
    results = scored(picked)
    shown = [r for r in picked if r.id in results]
    if not shown:
        return
    metrics_table(shown, results)
    st.markdown("#### Training curves")
    curves_chart(reg, shown, key=f"eval_curves_{dataset}")
    st.markdown("#### Confusion matrices")
    confusion_grid([results[r.id] for r in shown], key=f"eval_grid_{dataset}")
    st.markdown("#### Is their confidence honest?")
    calibration_section([results[r.id] for r in shown], key=f"eval_reliability_{dataset}")
    if len(shown) >= 2:
        st.markdown("#### Where two of them disagree")
        disagreement_gallery([results[r.id] for r in shown], key=f"eval_pair_{dataset}")


def leaderboard_comparison(reg: Registry, runs: list[Run], dataset: str) -> None:
    """The Leaderboard's comparison: the stored metrics and the curves at once; the test-set scores (loss,
    calibration error, confusion matrices) when asked for, since they classify the test images."""
    done = [r for r in runs if r.status == "done"]
    picked = pick_runs(done, "lb_compare", dataset)
    if not picked:
        st.caption("Pick runs to compare their metrics, curves and confusion matrices.")
        return
    deep = st.toggle(
        "Confusion matrices, loss and calibration", key="lb_score",
        help="Classifies the test images with each picked run (seconds per run, once per model file).",
    )  # fmt: skip
    datasets = {r.dataset for r in picked}
    results = scored([r for r in picked if r.checkpoint]) if deep else {}
    metrics_table(picked, results)
    curves_chart(reg, picked, key="lb_overlay")
    if not results:
        return
    if len(datasets) > 1:
        st.caption("Confusion matrices need runs of one dataset: pick runs of one dataset to see them.")
        return
    confusion_grid([results[r.id] for r in picked if r.id in results], key="lb_grid")
