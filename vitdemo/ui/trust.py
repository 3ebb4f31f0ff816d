"""Evaluate's "can you trust it?" sections: whether a run's explanation can be trusted (deletion and insertion
against a random map, the randomised-model check: vitdemo.explain.trust, computed once per checkpoint file on
request, then kept on disk) and how honest its confidence is (the reliability diagram, for one run or several)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from vitdemo.calibration import reliability_bins
from vitdemo.checkpoints import CheckpointError
from vitdemo.data import DataError
from vitdemo.explain.opinions import is_classic_file
from vitdemo.explain.trust import TrustReport, report_settings, trust_report
from vitdemo.results import cache as results_cache
from vitdemo.runs.store import Run
from vitdemo.ui import view
from vitdemo.ui.evaluate import Progress, TestResults, result_folders
from vitdemo.ui.shell import data_dir, load_model, test_split
from vitdemo.views import trust_charts
from vitdemo.views.messages import hide_folders
from vitdemo.views.names import explanation_name
from vitdemo.views.words import say

# --- can you trust this map? ---------------------------------------------------------------------------------
TRUST_ENTRIES = 16  # reports kept per server process (a few KB each)
TRUST_IMAGES = results_cache.PAGE_TRUST_IMAGES  # the page's checks: 100 seeded test images


@dataclass
class _TrustStore:
    """Trust reports by checkpoint file version, shared by every session of the process."""

    lock: threading.Lock
    reports: OrderedDict[tuple[str, int, str], TrustReport]


@st.cache_resource(show_spinner=False)
def _trust_store() -> _TrustStore:
    return _TrustStore(threading.Lock(), OrderedDict())


def _trust_key(run: Run) -> tuple[str, int, str]:
    path = Path(run.checkpoint or "")
    return str(path.resolve()), path.stat().st_mtime_ns, data_dir()


def _disk_key(run: Run) -> str:
    """The run's trust report's key in the disk cache (vitdemo.results.cache)."""
    labels = test_split(run.dataset).labels
    return results_cache.trust_key(run.checkpoint or "", labels, report_settings(n_images=TRUST_IMAGES))


def cached_trust_report(run: Run) -> TrustReport | None:
    """The run's trust report if this checkpoint file version was checked before: by any session of this server,
    kept on disk by an earlier one, or shipped with the app."""
    try:
        key, store = _trust_key(run), _trust_store()
        found = store.reports.get(key)
        if found is None:
            found = results_cache.read_trust(result_folders(), _disk_key(run))
            if found is not None:
                store.reports[key] = found
        return found
    except (OSError, DataError):
        return None


def compute_trust_report(run: Run, n_images: int = TRUST_IMAGES, progress: Progress | None = None) -> TrustReport:
    """Check the run's explanation on n_images seeded test images, once per checkpoint file version (then kept on
    disk). One check at a time per process: a second session asking for the same file waits for the first."""
    key, store = _trust_key(run), _trust_store()
    with store.lock:
        found = store.reports.get(key)
        if found is None:
            split = test_split(run.dataset)
            disk_key = results_cache.trust_key(key[0], split.labels, report_settings(n_images=n_images))

            def compute() -> TrustReport:
                return trust_report(load_model(key[0]), split, n_images=n_images, progress=progress)

            found = results_cache.cached_trust(disk_key, compute, result_folders())
            store.reports[key] = found
            while len(store.reports) > TRUST_ENTRIES:
                store.reports.popitem(last=False)
        return found


def trust_section(res: TestResults) -> None:
    """Deletion and insertion curves of the run's explanation against a random map and a centre blob, and the
    randomised-model check; computed when asked for (it takes seconds), then kept for the file version."""
    run = res.run
    if is_classic_file(run.checkpoint or ""):
        st.caption("The checks test a network's map of where it looked: a scikit-learn baseline has none here.")
        return
    explained = explanation_name(run.kind)
    report = cached_trust_report(run)
    if report is None:
        offer = st.empty()  # the offer goes once the checks have run
        with offer.container():
            st.caption(
                view.pick(
                    say("evaluate", "trust_offer"),
                    f"Checks the {explained} on {TRUST_IMAGES} test images: blanking the pixels it marks first "
                    "should make the model lose its answer faster than blanking random ones. Takes from seconds to "
                    "a minute on a CPU.",
                )
            )
            clicked = st.button("Run the checks", icon=":material/fact_check:", key=f"trust_run_{run.id}")
        if not clicked:
            return
        offer.empty()
        label = f"Blanking and restoring pixels of {TRUST_IMAGES} test images with run #{run.id}…"
        bar = st.progress(0.0, text=label)
        try:
            report = compute_trust_report(run, progress=lambda done: bar.progress(min(1.0, done), text=label))
        except (CheckpointError, DataError, OSError) as exc:
            st.error(f"The checks could not run: {hide_folders(str(exc), run.checkpoint or '')}")
            return
        finally:
            bar.empty()
    with st.container(key=f"trust_curves_{run.id}"):
        for panel, column in zip(("deletion", "insertion"), st.columns(2), strict=True):  # stacked on a phone
            chart = trust_charts.trust_chart(report, panel, explanation=explained, plain=view.simple())
            plain = say("evaluate", "trust_deletion" if panel == "deletion" else "trust_insertion")
            title = view.pick(plain, trust_charts.CURVES[panel][0].capitalize())
            column.markdown(f"**{title}**")
            column.altair_chart(chart, width="stretch", key=f"trust_{panel}_{run.id}")
    st.caption(
        view.pick(
            say("evaluate", "trust_read"),
            "How to read it: the faster the orange curve falls on the left (low deletion AUC) and the faster it "
            "rises on the right (high insertion AUC), the better the map points at the pixels the model really "
            "uses; it should beat the random map clearly, and the centre blob too.",
        )
    )
    fmt = st.column_config.NumberColumn
    if view.expert():  # the AUC table: Expert only
        st.dataframe(
            trust_charts.trust_frame(report),
            hide_index=True,
            column_config={
                "deletion AUC": fmt(format="%.3f", help="Area under the deletion curve: lower is better."),
                "insertion AUC": fmt(format="%.3f", help="Area under the insertion curve: higher is better."),
                "background share": fmt(format="%.2f", help="Share of the map's weight on empty background."),
            },
        )
    left, right = st.columns([1, 3], gap="medium")
    left.metric(
        "Same as untrained?",
        f"{report.rank_correlation_on_ink:+.2f}",
        help=view.tip(
            say("evaluate", "untrained_help"),
            "Spearman rank correlation, on the ink, between this map and the map of a randomly initialised model "
            "of the same configuration, averaged over the images: near 0 means the map depends on what the model "
            f"learned, near 1 that it only shows the input. Over the whole image: {report.rank_correlation:+.2f} "
            "(a map that is 0 on every blank pixel shares that with any model).",
        ),
    )
    right.caption(
        view.pick(
            say("evaluate", "trust_untrained"),
            "The map of an untrained model of the same size should rank the pixels differently (a score near 0): "
            f"otherwise the map shows the input, not what was learned. {report.n_images} seeded test images, "
            f"{len(report.fractions) - 1} steps, computed in {report.seconds:.1f} s on this server, once per "
            "checkpoint file. Petsiuk et al. 2018 (deletion, insertion); Adebayo et al. 2018 (randomised model).",
        )
    )


# --- is its confidence honest? -------------------------------------------------------------------------------
def calibration_section(results: list[TestResults], key: str) -> None:
    """Reliability diagram of the runs' calibrated test-set probabilities, with each run's ECE."""
    curves = {f"#{r.run.id}": reliability_bins(r.probs, r.labels) for r in results}
    cols = st.columns(len(curves) + 2)
    for column, (name, rel) in zip(cols, curves.items(), strict=False):
        column.metric(
            f"Calibration error {name}",
            f"{rel.ece:.2%}",
            help=view.tip(
                say("evaluate", "calibration_help"),
                "Expected calibration error: the gap between the confidence the model states and how often it is "
                "right, averaged over 15 confidence bins weighted by how many predictions fall in each.",
            ),
        )
    st.altair_chart(trust_charts.reliability_chart(curves), width="stretch", key=key)
    st.altair_chart(trust_charts.count_chart(curves), width="stretch", key=f"{key}_counts")
    st.caption(
        view.pick(
            say("evaluate", "calibration"),
            "Each bar is the share of right answers among the predictions made with that confidence: bars on the "
            "dashed diagonal mean that when the model says 90% it is right 9 times in 10 (a small calibration error).",
        )
    )
