"""The Evaluate page's widgets: a run on the whole test split (scored once per model file by vitdemo.evaluate,
or vitdemo.models.classic for a scikit-learn baseline, kept on disk by vitdemo.results.cache), its headline figures
and its per-class table. Its confusion matrix and the images of a cell: vitdemo.ui.confusion; whether its
explanation and its confidence can be trusted: vitdemo.ui.trust; several runs side by side: vitdemo.ui.compare."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from vitdemo.checkpoints import CheckpointError, load_checkpoint
from vitdemo.data import DataError, MissingData, class_names
from vitdemo.evaluate import score_checkpoint
from vitdemo.explain.opinions import is_classic_file
from vitdemo.metrics import EvalReport, Scores
from vitdemo.paths import shipped_dir
from vitdemo.results import cache as results_cache
from vitdemo.runs.baselines import sync_baselines
from vitdemo.runs.store import Run
from vitdemo.ui import view
from vitdemo.ui.shell import data_dir, registry, test_split
from vitdemo.views import charts
from vitdemo.views.messages import data_error_text, hide_folders
from vitdemo.views.names import is_reader
from vitdemo.views.words import say

PER_CLASS_PX = 560  # the per-class table's box: beside the confusion matrix where both fit
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
        return results_cache.cached_scores(path, labels, computed, result_folders())
    except _NotScored:
        return found[0]


class _NotScored(Exception):
    """A classic file that could not be loaded: nothing to keep."""


def result_folders() -> list[Path]:
    """Where computed results are kept and looked up (vitdemo.results.cache.places)."""
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
