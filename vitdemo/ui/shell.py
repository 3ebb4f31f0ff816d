"""What every page shares: page setup and styling, the app-shell guard, the sidebar's model selection, the
resources cached once per server process (models, the run registry, test splits) and the failure guard that
turns a broken registry or checkpoint into one sentence on the page."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from vitdemo import paths
from vitdemo.checkpoints import CheckpointError, LoadedModel, load_checkpoint
from vitdemo.data import Split, load_raw
from vitdemo.explain.inference import analyze
from vitdemo.runs.baselines import sync_baselines
from vitdemo.runs.dbfile import RegistryError
from vitdemo.threads import configure_threads
from vitdemo.ui import people
from vitdemo.ui.resources import _registry
from vitdemo.ui.resources import registry as registry  # the pages read it from here
from vitdemo.views.messages import hide_folders, os_error_text
from vitdemo.views.names import DATASETS, KINDS, dataset_name, kind_name

CANVAS_PX = 280  # the Draw canvas: 10x the model input, each model pixel is a 10x10 block
SHIPPED = "shipped"  # picker value for the checkpoint that ships with the app
STORE_ERRORS = (
    RegistryError,
    sqlite3.Error,
    CheckpointError,
    OSError,
)  # what a page turns into a message, not a traceback
LAST_INPUT_KEY = "last_input_28"  # the last 28x28 model input a drawing made, for the Lab and Under the hood
_SELECTION_KEY = "_vitdemo_selection"

CSS = """
<style>
[data-testid="stMainBlockContainer"] {padding-top: 2.2rem; padding-bottom: 2rem;}
[data-testid="stSidebarUserContent"] {padding-top: 0.5rem;}
[data-testid="stElementContainer"]:has(.vd-client) {display: none;}
h1, h2, h3 {letter-spacing: -0.01em;}
.vd-predbox {container-type: inline-size;}
.vd-predbox, .vd-truth, .vd-bars {overflow-wrap: normal; word-break: normal; hyphens: none;}
.vd-pred {font-size: 1.45rem; font-weight: 600; line-height: 1.05; margin: 0;}
.vd-label {
  font-size: min(var(--vd-label-max, 4.2rem), calc(100cqi / var(--vd-chars, 1)));
  font-weight: 800; color: #ff7a45; vertical-align: -0.35rem; white-space: nowrap;
}
.vd-conf {font-size: 1.15rem; opacity: 0.85; margin: 0.35rem 0 0.4rem 0;}
.vd-truth {font-size: 1.35rem; font-weight: 600;}
.vd-truth b {white-space: nowrap;}
.vd-right {color: #4ade80; font-weight: 700;}
.vd-wrong {color: #f87171; font-weight: 700;}
/* the probability bars (vitdemo.views.display.probability_bars_html): Draw, the lab, Present (sized in --vd-u) */
.vd-bars {
  display: grid; grid-template-columns: max-content 1fr 2.6em; align-items: center;
  column-gap: 0.6em; row-gap: 0.22em; font-size: calc(2.45 * var(--vd-u, 6.5px)); line-height: 1.1;
}
.vd-bar {display: contents;}
.vd-bar-name {white-space: nowrap; text-align: right;}
.vd-bar-track {height: 0.8em; background: #262b36; border-radius: 0.2em; overflow: hidden;}
.vd-bar-fill {display: block; height: 100%; background: #5b6477;}
.vd-bar-pct {text-align: right; font-variant-numeric: tabular-nums; opacity: 0.85;}
.vd-top .vd-bar-name, .vd-top .vd-bar-pct {color: #ff7a45; font-weight: 700; opacity: 1;}
.vd-top .vd-bar-fill {background: #ff7a45;}
.st-key-vd_pad {--vd-canvas-max: clamp(280px, 36vh, 440px);}
@media (pointer: coarse) { .st-key-vd_pad {--vd-canvas-max: 400px;} }
.st-key-vd_pad_buttons {width: 100%; max-width: max(var(--vd-canvas, 280px), 17rem);}
.st-key-vd_pad_buttons button {min-height: 3.1rem;}
.st-key-vd_pad_buttons button p {font-size: 1.15rem; font-weight: 600;}
.st-key-vd_gallery [data-testid="stImage"] img {border: 1px solid #3a4150; border-radius: 4px;}
.st-key-vd_gallery button {min-height: 2.2rem; padding: 0 0.4rem;}
/* Rows of small tiles (the watched digits, the class wall) in a narrow column: two rows of five (four) rather than
   percentages and names running into the next tile. */
[data-testid="stElementContainer"]:has(.vd-watch, .vd-wall) {container-type: inline-size;}
@container (max-width: 420px) {
  .vd-watch {grid-template-columns: repeat(5, minmax(0, 1fr)) !important;}
  .vd-wall-row {grid-template-columns: repeat(4, minmax(0, 1fr)) !important;}
}
/* A phone: the two answers side by side right under the canvas, both on screen with it (client.js keeps
   --vd-answer-reserve free below the canvas for them, from the canvas's bottom to the answers' big label). */
@media (max-width: 640px) {
  h2 {font-size: 1.5rem !important; padding-top: 0.25rem !important;}
  .st-key-vd_pad {--vd-answer-reserve: 10.5rem;}
  .st-key-vd_answers [data-testid="stHorizontalBlock"] {flex-wrap: nowrap; gap: 0.75rem;}
  .st-key-vd_answers [data-testid="stColumn"] {min-width: 0 !important;}
  .st-key-vd_answers .vd-pred {font-size: 1.15rem;}
  .st-key-vd_answers .vd-conf {font-size: 1rem; margin: 0.2rem 0;}
}
@media (max-width: 1199.98px) {  /* tablets and phones: the sidebar starts closed and the top bar is opaque */
  [data-testid="stMainBlockContainer"] {padding: 3.75rem 1.25rem 2rem 1.25rem;}  /* the title below the bar */
}
</style>
"""
CLIENT_JS = Path(__file__).with_name("client.js")  # canvas fitting, its toolbar hidden, the sidebar collapsed


# --- app shell -------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _configure_process() -> int:
    """Once per server process: one torch thread unless $VITDEMO_THREADS says otherwise. The app only runs single
    drawings and test-set scoring (training runs in the worker process), and on a busy CPU one thread is fastest
    (measured: 12 ms instead of 40 ms per drawing with a training job next door)."""
    return configure_threads(default=1)


def page_setup() -> None:
    """Page config and the projector-friendly styling; call first in app.py."""
    _configure_process()
    st.set_page_config(page_title="ViT vs CNN", page_icon="🔢", layout="wide", initial_sidebar_state="expanded")
    st.html(CSS)
    script = CLIENT_JS.read_text(encoding="utf-8")
    st.html(f'<div class="vd-client"></div><script>{script}</script>', unsafe_allow_javascript=True)


@contextmanager
def stop_on_failure() -> Iterator[None]:
    """Run a page (or a fragment) in this: a failing registry, checkpoint or file becomes one sentence on
    the page, without a traceback or a server folder, and the page stops there."""
    try:
        yield
    except RegistryError as exc:  # busy, damaged, read-only: its public sentence names no server path
        st.error(exc.public, icon=":material/error:")
    except sqlite3.Error as exc:
        st.error(
            f"The run registry could not be read ({hide_folders(str(exc))}): check that ${paths.ENV_HOME} "
            "is a writable folder holding a vitdemo registry, then reload the page.",
            icon=":material/error:",
        )
    except CheckpointError as exc:
        st.error(
            f"A checkpoint could not be loaded ({hide_folders(str(exc))}): choose another model, or train it again.",
            icon=":material/error:",
        )
    except OSError as exc:
        st.error(
            f"A file could not be read or written ({os_error_text(exc)}): check the disk and the folder's "
            "permissions, then reload the page.",
            icon=":material/error:",
        )
    else:
        return
    st.stop()


def data_dir() -> str:
    """The dataset root as a string (a cache key): the flag-less vitdemo.paths.data_root()."""
    return str(paths.data_root())


# --- cached resources ------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadFailure:
    """A checkpoint file version that could not be loaded, remembered so it is not rebuilt on every rerun."""

    message: str  # what went wrong, with the file's name but not its folder


def _warm_up(loaded: LoadedModel) -> None:
    """One analysis of a stroke, so that the first drawing on the projector is not the slow one."""
    stroke = np.zeros((CANVAS_PX, CANVAS_PX, 4), np.uint8)  # RGBA, as the canvas sends it
    stroke[..., 3] = 255
    stroke[60:220, 130:150, :3] = 255  # a "1"
    if loaded.meta.task == "read":  # a number reader reads it as a one-digit number, with its explanation
        from vitdemo.numbers.analyze import read_image

        read_image(stroke, {loaded.kind: loaded})
        return
    analyze(stroke, {loaded.kind: loaded})


@st.cache_resource(show_spinner=False, max_entries=16)
def _load_model_cached(path: str, mtime_ns: int) -> LoadedModel | LoadFailure:
    del mtime_ns  # part of the cache key only: a retrained file at the same path is loaded again
    try:
        loaded = load_checkpoint(path)
        _warm_up(loaded)
    except (CheckpointError, OSError, RuntimeError, ValueError) as exc:  # a failure is cached too
        return LoadFailure(hide_folders(str(exc), path))
    return loaded


def load_model(path: str | os.PathLike) -> LoadedModel:
    """Load a checkpoint once per server process and file version (shared by every session); a file that
    fails is remembered as failed until it changes. Raises CheckpointError, its message without folders."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path.name}")
    found = _load_model_cached(str(path.resolve()), path.stat().st_mtime_ns)
    if isinstance(found, LoadFailure):
        raise CheckpointError(found.message)
    return found


@st.cache_resource(show_spinner=False, max_entries=2)
def _test_split(dataset: str, data: str) -> Split:
    return load_raw(dataset, train=False, data_dir=data)


def test_split(dataset: str) -> Split:
    """A dataset's 10,000 test images, read once per process; raises DataError."""
    return _test_split(dataset, data_dir())


# --- model selection -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelChoice:
    """One entry of a model picker: the shipped checkpoint or a finished run."""

    kind: str  # "vit" or "cnn"
    dataset: str
    key: str  # picker value: "shipped" or "run:<id>"
    label: str
    path: str


@dataclass(frozen=True)
class Selection:
    """What the sidebar says: the dataset and one model for each side."""

    dataset: str
    vit: ModelChoice
    cnn: ModelChoice

    @property
    def choices(self) -> dict[str, ModelChoice]:
        return {"vit": self.vit, "cnn": self.cnn}


@st.cache_data(ttl=5, show_spinner=False)
def model_choices(kind: str, dataset: str, home: str, ckpt_dir: str) -> tuple[list[ModelChoice], str | None]:
    """The shipped checkpoint first, then every finished run of this kind and dataset; plus a problem, if any."""
    shipped = Path(ckpt_dir) / f"{kind}_{dataset}.safetensors"
    label = f"Shipped {KINDS[kind]} ({shipped.stem})"
    choices, problem = [], None
    try:
        reg = _registry(home)
        sync_baselines(reg, ckpt_dir)
        runs = reg.list_runs(status="done", kind=kind, dataset=dataset)
    except STORE_ERRORS as exc:  # a locked or unwritable registry must not take the Draw page down
        if isinstance(exc, RegistryError):
            detail = exc.public
        else:
            detail = os_error_text(exc) if isinstance(exc, OSError) else hide_folders(str(exc), home)
        runs, problem = [], f"The run registry could not be read ({detail}); only shipped models are offered."
    shipped_key = str(shipped.resolve())
    for run in runs:
        if run.checkpoint and str(Path(run.checkpoint).resolve()) == shipped_key:
            label = f"Shipped {KINDS[kind]}" + (f" ({run.test_acc:.2%})" if run.test_acc is not None else "")
        elif run.checkpoint:
            choices.append(ModelChoice(kind, dataset, f"run:{run.id}", run.label, run.checkpoint))
    return [ModelChoice(kind, dataset, SHIPPED, label, str(shipped)), *choices], problem


def _model_problem(choice: ModelChoice, loaded: LoadedModel | None, error: CheckpointError | None) -> str | None:
    """Why the side of `choice` has no model, as a sentence with what to do; None when `loaded` fits."""
    name, path, wanted = KINDS[choice.kind], Path(choice.path), dataset_name(choice.dataset)
    if error is not None and not path.is_file():
        where = "among the shipped checkpoints" if choice.key == SHIPPED else "where its run left it"
        return (
            f"No {name} model for {wanted} yet: {path.name} is not {where}. "
            "Train one on the Train page, or choose another model in the sidebar."
        )
    if error is not None:
        return f"The {name} model could not be loaded: {error}. Choose another one in the sidebar."
    if loaded is not None and (loaded.kind != choice.kind or loaded.meta.dataset != choice.dataset):
        return (
            f"{path.name} holds a {kind_name(loaded.kind)} for {loaded.meta.dataset}, "
            f"not a {name} for {wanted}: choose another model in the sidebar."
        )
    return None


def load_models(selection: Selection) -> tuple[dict[str, LoadedModel], dict[str, str]]:
    """Loaded models by kind, and for each side that has none a sentence saying why and what to do."""
    models, problems = {}, {}
    for kind, choice in selection.choices.items():
        loaded, error = None, None
        try:
            loaded = load_model(choice.path)
        except CheckpointError as exc:
            error = exc
        problem = _model_problem(choice, loaded, error)
        if problem is not None:
            problems[kind] = problem
        elif loaded is not None:
            models[kind] = loaded
    return models, problems


def model_caption(loaded: LoadedModel) -> str:
    """'210,762 params · 98.95% test acc.'"""
    acc = loaded.meta.metrics.get("test_acc")
    return f"{loaded.num_params:,} params" + (f" · {acc:.2%} test acc." if acc is not None else "")


# --- sidebar ---------------------------------------------------------------------------------------
def _model_picker(kind: str, dataset: str, home: str, ckpt: str) -> tuple[ModelChoice, str | None]:
    options, problem = model_choices(kind, dataset, home, ckpt)
    by_key = {c.key: c for c in options if c.key == SHIPPED or Path(c.path).is_file()}  # a run deleted since
    if st.session_state.get(f"{kind}_model_{dataset}", SHIPPED) not in by_key:  # its run was deleted
        st.session_state[f"{kind}_model_{dataset}"] = SHIPPED
        problem = f"The {KINDS[kind]} run you picked was deleted: the shipped {KINDS[kind]} is shown instead."
    key = st.selectbox(
        f"{KINDS[kind]} model",
        list(by_key),
        format_func=lambda k: by_key[k].label,
        key=f"{kind}_model_{dataset}",
    )
    return by_key[key], problem


def sidebar() -> Selection:
    """The shared sidebar: dataset, then a ViT and a CNN picker. Remembers its answer for `selection()`."""
    with st.sidebar:
        st.markdown("### Models")
        dataset = st.radio("Dataset", list(DATASETS), format_func=DATASETS.get, key="dataset", horizontal=True)
        home, ckpt = str(paths.home().resolve()), str(paths.shipped_dir().resolve())
        picked, problems = {}, set()
        for kind in KINDS:
            picked[kind], problem = _model_picker(kind, dataset, home, ckpt)
            problems.add(problem)
        for problem in sorted(p for p in problems if p):
            st.warning(problem)
        people.sidebar_identity()
    found = Selection(dataset, picked["vit"], picked["cnn"])
    st.session_state[_SELECTION_KEY] = found
    return found


def selection() -> Selection:
    """The sidebar's current answer (app.py draws the sidebar before the page runs)."""
    found = st.session_state.get(_SELECTION_KEY)
    return found if isinstance(found, Selection) else sidebar()
