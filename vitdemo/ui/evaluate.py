"""The Evaluate page's widgets: a run on the whole test split (scored once per model file by vitdemo.evaluate,
or vitdemo.models.classic for a scikit-learn baseline), its confusion matrix with the test images of a cell, whether its
explanation can be trusted (vitdemo.explain.trust, computed once per checkpoint file on request) and how honest its
confidence is (reliability diagram). Several runs side by side: vitdemo.ui.compare."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from vitdemo.calibration import reliability_bins
from vitdemo.checkpoints import CheckpointError, load_checkpoint
from vitdemo.data import DataError, MissingData, class_names, to_input
from vitdemo.evaluate import score_checkpoint
from vitdemo.explain.maps import explain_prediction
from vitdemo.explain.opinions import is_classic_file
from vitdemo.explain.readable import shown_maps
from vitdemo.explain.trust import TrustReport, report_settings, trust_report
from vitdemo.metrics import EvalReport, Scores
from vitdemo.paths import shipped_dir
from vitdemo.results import cache as results_cache
from vitdemo.runs.baselines import sync_baselines
from vitdemo.runs.store import Run
from vitdemo.ui import view
from vitdemo.ui.shell import data_dir, load_model, registry, test_split
from vitdemo.views import charts, display, trust_charts
from vitdemo.views.colors import overlay
from vitdemo.views.messages import data_error_text, hide_folders
from vitdemo.views.names import explanation_name, is_reader
from vitdemo.views.words import say

GALLERY_PX = 112  # 4x the 28 px input
SCORE_ENTRIES = 16  # test-set scores kept in memory per server process (about 0.4 MB each)
Progress = Callable[[float], None]


@dataclass(frozen=True, eq=False)
class TestResults:
    """A run's predictions on the whole test split."""

    run: Run
    scores: Scores
    classes: tuple[str, ...]

    @property
    def labels(self) -> np.ndarray:
        return self.scores.labels  # (N,) int64

    @property
    def probs(self) -> np.ndarray:
        return self.scores.probs  # (N, C) float32

    @property
    def preds(self) -> np.ndarray:
        return self.scores.preds  # (N,)

    @property
    def report(self) -> EvalReport:
        return self.scores.report


@dataclass(frozen=True)
class Unscored:
    """A checkpoint file version that could not be loaded, remembered like a score."""

    message: str  # with the file's name, not its folder


def evaluable_runs() -> list[Run]:
    """Finished runs with a checkpoint, shipped baselines included, best first."""
    reg = registry()
    sync_baselines(reg, shipped_dir())
    return [r for r in reg.leaderboard() if r.checkpoint and not is_reader(r.kind)]  # readers: their own table


def reader_runs() -> list[Run]:
    """Finished number readers (shipped ones included), best whole-number accuracy first."""
    reg = registry()
    sync_baselines(reg, shipped_dir())
    return [r for r in reg.leaderboard() if is_reader(r.kind)]


def _classic_scores(path: str) -> Scores | Unscored:
    """A scikit-learn baseline's file on its dataset's test split."""
    from vitdemo.models.classic import load_classic, score_classic  # here: scikit-learn takes seconds to import

    try:
        fitted = load_classic(path)
    except ValueError as exc:  # ClassicError: missing, damaged, or types this app does not load
        return Unscored(hide_folders(str(exc), path))
    return score_classic(fitted, test_split(fitted.dataset))


def _score_file(path: str, dataset: str, progress: Progress) -> Scores | Unscored:
    """A model file on its dataset's test split: from the disk cache (vitdemo.results.cache) when it was scored
    before, by this server or shipped with the app; else computed (`progress` hears how far) and kept there.
    `dataset`: its run's (a checkpoint's own header decides for a network)."""
    if is_classic_file(path):
        compute = lambda: _classic_scores(path)  # noqa: E731
    else:
        try:
            loaded = load_checkpoint(path)  # a private copy: no lock shared with the Draw page's explanations
        except CheckpointError as exc:
            return Unscored(hide_folders(str(exc), path))
        dataset = loaded.meta.dataset
        compute = lambda: score_checkpoint(loaded, test_split(dataset), progress=progress)  # noqa: E731
    labels = test_split(dataset).labels.numpy().astype(np.int64)  # (N,)
    found: list[Unscored] = []

    def computed() -> Scores:
        scores = compute()
        if isinstance(scores, Unscored):
            found.append(scores)
            raise _NotScored
        return scores

    try:
        return results_cache.cached_scores(path, labels, computed, _result_folders())
    except _NotScored:
        return found[0]


class _NotScored(Exception):
    """A classic file that could not be loaded: nothing to keep."""


def _result_folders() -> list[Path]:
    return list(results_cache.places())


@dataclass
class _ScoreStore:
    """Test-set scores by file version, shared by every session of the process (the disk keeps them longer)."""

    lock: threading.Lock
    scores: OrderedDict[tuple[str, int, str], Scores | Unscored]


@st.cache_resource(show_spinner=False)
def _score_store() -> _ScoreStore:
    return _ScoreStore(threading.Lock(), OrderedDict())


def _test_scores(path: str, mtime_ns: int, data: str, dataset: str, label: str) -> Scores | Unscored:
    """A model file on its dataset's test split, once per file version (and data folder) in this process; a
    progress bar while it is computed (the disk cache makes that once per model file)."""
    key, store = (path, mtime_ns, data), _score_store()
    slot = st.empty()  # always: the page keeps one shape whether or not the scores were ready (else, after a run
    # that showed the bar, every later element moves up a place and the page jumps when the rerun ends)
    found = store.scores.get(key)
    if found is not None:
        return found
    bar = slot.progress(0.0, text=label)
    try:
        with store.lock:  # one scoring at a time: a second session asking for the same file waits for it
            found = store.scores.get(key)
            if found is None:
                found = _score_file(path, dataset, lambda done: bar.progress(min(1.0, done), text=label))
                store.scores[key] = found
                while len(store.scores) > SCORE_ENTRIES:
                    store.scores.popitem(last=False)
    finally:
        slot.empty()
    return found


def test_results(run: Run) -> TestResults | None:
    """The run's test-set predictions (computed once per checkpoint file, then cached), or None with an error."""
    path = Path(run.checkpoint or "")
    try:
        if not run.checkpoint or not path.is_file():
            raise CheckpointError(f"checkpoint not found: {path.name}")
        label = f"Classifying the test images with run #{run.id}…"
        scores = _test_scores(str(path.resolve()), path.stat().st_mtime_ns, data_dir(), run.dataset, label)
        if isinstance(scores, Unscored):
            raise CheckpointError(scores.message)
    except MissingData as exc:
        st.warning(data_error_text(exc), icon=":material/dataset:")
        return None
    except (CheckpointError, DataError) as exc:
        st.error(f"Run #{run.id} cannot be evaluated: {hide_folders(str(exc), path)}")
        return None
    return TestResults(run, scores, class_names(run.dataset))


def metrics_row(res: TestResults) -> None:
    c1, c2, c3, c4 = st.columns(4)
    simple, n = view.simple(), len(res.labels)
    c1.metric(say("evaluate", "accuracy") if simple else "Test accuracy", f"{res.report.accuracy:.2%}")
    c2.metric(
        say("evaluate", "score") if simple else "Macro F1", f"{res.report.macro_f1:.4f}",
        help=view.tip(say("evaluate", "score_help"), "Macro F1: the mean of the ten classes' F1 scores."),
    )  # fmt: skip
    c3.metric(say("evaluate", "errors", count=f"{n:,}") if simple else f"Errors (of {n:,})",
              f"{len(res.report.misclassified):,}")  # fmt: skip
    if simple:  # no parameter counts in the Simple view: its size in words, the count in the tooltip
        count = f"{res.run.num_params:,} parameters" if res.run.num_params else "not counted"
        c4.metric(
            say("evaluate", "size"), _size_word(res.run.num_params), help=view.tip(say("evaluate", "size_help"), count)
        )
    else:
        c4.metric("Parameters", f"{res.run.num_params:,}" if res.run.num_params else "-")


def _size_word(num_params: int | None) -> str:
    """A model's size in one word for the Simple view (a CNN of about 200,000 parameters is 'medium')."""
    if not num_params:
        return "-"
    return "small" if num_params < 50_000 else "medium" if num_params < 1_000_000 else "large"


PER_CLASS_WORDS = {  # column -> (its Simple label's key, its help's key)
    "precision": ("col_precision", "help_precision"), "recall": ("col_recall", "help_recall"),
    "F1": ("col_f1", "help_f1"), "support": ("col_support", "help_support"), "errors": ("col_errors", "help_errors"),
}  # fmt: skip


def per_class_table(res: TestResults) -> None:
    """Precision, recall, F1, support and errors per class; in the Simple view in plain words, the technical
    names in each column's help."""
    fmt = st.column_config.NumberColumn
    config = {name: fmt(format="%.3f") for name in ("precision", "recall", "F1")}
    if view.simple():
        for name, (label, help_key) in PER_CLASS_WORDS.items():
            config[name] = fmt(
                say("evaluate", label), help=view.tip(say("evaluate", help_key), name),
                format="%.3f" if name in ("precision", "recall", "F1") else None,
            )  # fmt: skip
    st.dataframe(charts.per_class_frame(res.report, res.classes), hide_index=True, column_config=config)


def confusion_picker(res: TestResults, key: str) -> tuple[int, int]:
    """The confusion heatmap; clicking a cell (or the two selectboxes below it) picks (true, predicted).
    Starts on the most frequent mistake."""
    true_key, pred_key, last_key = f"{key}_true", f"{key}_pred", f"{key}_last"
    cm, n = res.report.confusion, len(res.classes)
    if true_key not in st.session_state or pred_key not in st.session_state:
        off = cm.copy()
        np.fill_diagonal(off, -1)
        i, j = np.unravel_index(int(off.argmax()), off.shape)
        st.session_state[true_key], st.session_state[pred_key] = int(i), int(j)
    clicked = charts.selected_cell(st.session_state.get(key), res.classes)  # from the previous run's chart
    if clicked != st.session_state.get(last_key):
        st.session_state[last_key] = clicked
        if clicked is not None:
            st.session_state[true_key], st.session_state[pred_key] = clicked
            st.session_state[_SCROLL_KEY] = clicked  # its images are below the fold: scroll there once
    cell = (st.session_state[true_key], st.session_state[pred_key])
    fig = charts.confusion_figure(cm, res.classes, selected=cell)
    st.plotly_chart(fig, key=key, on_select="rerun", selection_mode="points", config={"displayModeBar": False})
    c1, c2 = st.columns(2)
    c1.selectbox("True class", list(range(n)), format_func=lambda i: res.classes[i], key=true_key)
    c2.selectbox("Predicted class", list(range(n)), format_func=lambda i: res.classes[i], key=pred_key)
    return int(st.session_state[true_key]), int(st.session_state[pred_key])


def explanation_overlays(run: Run, images: np.ndarray) -> list[np.ndarray]:
    """Each (28, 28) uint8 test image with the model's explanation of its own prediction on top
    (attention rollout for a ViT, integrated gradients for a CNN), upscaled for the page."""
    if len(images) == 0:
        return []
    loaded = load_model(run.checkpoint or "")
    x = to_input(torch.from_numpy(np.ascontiguousarray(images)), loaded.meta.mean, loaded.meta.std)  # (K, 1, 28, 28)
    # every explanation is safe on a model shared by every session (no hooks, no state)
    _, heat, _ = explain_prediction(loaded.model, x, loaded.kind, mean=loaded.meta.mean, std=loaded.meta.std)
    heat = shown_maps(loaded.kind, heat)  # as Draw shows it (vitdemo.explain.readable)
    return [display.upscale(overlay(img, h.numpy(), 0.45), GALLERY_PX) for img, h in zip(images, heat, strict=True)]


_SCROLL_KEY = "_vd_scroll_to_cell"  # the cell just clicked on the chart: the page scrolls to its images once
GALLERY_KEY = "vd_cell_gallery"
# Runs in the page (st.html with JavaScript, as vitdemo/ui/client.js): the gallery is drawn after this element,
# so it waits for it (up to 3 s), then scrolls its heading to the top of the window.
SCROLL_JS = """(() => { const t0 = Date.now(); const go = () => {
  const el = window.parent.document.querySelector('.st-key-%s') || document.querySelector('.st-key-%s');
  if (el) { el.scrollIntoView({behavior: 'smooth', block: 'start'}); return; }
  if (Date.now() - t0 < 3000) setTimeout(go, 100); }; setTimeout(go, 50); })();"""


def scroll_script(cell: tuple[int, int]) -> str:
    """The page's one-shot scroll to the gallery of `cell` (its number makes each click's element new)."""
    js = SCROLL_JS % (GALLERY_KEY, GALLERY_KEY)
    return f'<div class="vd-client" data-cell="{int(cell[0])}-{int(cell[1])}"></div><script>{js}</script>'


def cell_gallery(res: TestResults, cell: tuple[int, int], limit: int = 12) -> None:
    """The test images of one confusion cell, most confident first, with the explanation overlay; after a click
    on the chart, the page scrolls down to them."""
    with st.container(key=GALLERY_KEY):
        _cell_gallery(res, cell, limit)
    if st.session_state.pop(_SCROLL_KEY, None) == cell:
        st.html(scroll_script(cell), unsafe_allow_javascript=True)


def _cell_gallery(res: TestResults, cell: tuple[int, int], limit: int) -> None:
    t, p = cell
    idx = charts.cell_examples(res.labels, res.probs, t, p, limit)
    total = int(res.report.confusion[t, p])
    what = "correctly classified" if t == p else "misclassified"
    st.markdown(f"#### True {res.classes[t]}, predicted {res.classes[p]}: {total:,} {what} test images")
    if not len(idx):
        st.caption("No test image in this cell: pick another one.")
        return
    images = test_split(res.run.dataset).images[idx].numpy()  # (K, 28, 28) uint8
    shown, explained = [display.upscale(img, GALLERY_PX) for img in images], None
    if not is_classic_file(res.run.checkpoint or ""):  # a scikit-learn baseline has no map of its own here
        try:
            shown, explained = explanation_overlays(res.run, images), explanation_name(res.run.kind)
        except (CheckpointError, RuntimeError, ValueError) as exc:
            st.caption(f"No explanation overlay ({hide_folders(str(exc))}).")
    captions = [charts.image_caption(res.classes[t], res.classes[p], float(res.probs[i, p])) for i in idx]
    st.image(shown, caption=captions, width=GALLERY_PX, output_format="PNG")  # PNG: crisp pixels
    note = f" Overlay: the model's {explained} for its prediction (bright: mattered more)." if explained else ""
    note = (" " + say("evaluate", "gallery_overlay") if explained else "") if view.simple() else note
    st.caption(f"Showing {len(idx)} of {total:,}, the most confident predictions first.{note}")


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
            found = results_cache.read_trust(_result_folders(), _disk_key(run))
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

            found = results_cache.cached_trust(disk_key, compute, _result_folders())
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
    fig = trust_charts.trust_figure(report, explanation=explained)
    st.plotly_chart(fig, key=f"trust_curves_{run.id}", config={"displayModeBar": False})
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
    fig = trust_charts.reliability_figure(curves)
    st.plotly_chart(fig, key=key, config={"displayModeBar": False})
    st.caption(
        view.pick(
            say("evaluate", "calibration"),
            "Each bar is the share of right answers among the predictions made with that confidence: bars on the "
            "dashed diagonal mean that when the model says 90% it is right 9 times in 10 (a small calibration error).",
        )
    )
