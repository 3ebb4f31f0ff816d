"""The Robustness lab's widgets: sliders that shift, rotate, scale and re-ink one image with both models'
answers updating live, and the sweep figure of accuracy against each change (cached per model files and dataset)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from vitdemo.checkpoints import LoadedModel
from vitdemo.data import DataError, class_names
from vitdemo.explain.robustness import CHANGES, Settings, SweepResult, predict_changed, sweep
from vitdemo.ui import draw, shell, view
from vitdemo.views import display
from vitdemo.views import robustness as views
from vitdemo.views.messages import data_error_text
from vitdemo.views.names import KINDS, dataset_name
from vitdemo.views.words import say

SWEEP_N = 1000  # test images per value
SWEEP_SEED = 0  # picks them: the same images for every model and every visit
IMAGE_PX = 168  # the changed image, 6x the model input
THUMB_PX = 84  # the image as it was, 3x
SLIDERS = {  # session key -> (label, min, max, step, default, format, help)
    "lab_dx": ("Shift right (px)", -10.0, 10.0, 1.0, 0.0, "%+.0f", "Move the image sideways; ink pushed out is lost."),
    "lab_dy": ("Shift down (px)", -10.0, 10.0, 1.0, 0.0, "%+.0f", "Move the image up or down."),
    "lab_degrees": ("Rotate (°)", -180.0, 180.0, 5.0, 0.0, "%+.0f°", "Turn the image anticlockwise about its centre."),
    "lab_factor": ("Scale (×)", 0.5, 1.5, 0.05, 1.0, "%.2f×", "Shrink or enlarge the image about its centre."),
    "lab_steps": ("Stroke width", -2.0, 3.0, 0.5, 0.0, "%+.1f",
                  "Thin (< 0) or thicken (> 0) the pen: each step takes or adds about a pixel on each side."),
}  # fmt: skip


@dataclass(frozen=True, eq=False)
class LabImage:
    image: np.ndarray  # (28, 28) float in [0, 1] or uint8, light ink on black
    truth: str | None  # the true class, for a test image
    caption: str
    test_key: str | None = None  # the session key of its test-image index, for "Another test image"
    test_count: int = 0  # how many test images there are to pick from


# --- the image -------------------------------------------------------------------------------------
def _last_drawing() -> np.ndarray | None:
    """The Draw page's last model input, if it left a usable (28, 28) image in the session."""
    found = st.session_state.get(shell.LAST_INPUT_KEY)
    if found is None:
        return None
    a = np.asarray(found)
    return a if a.shape == (28, 28) and np.isfinite(a).all() else None


def _new_test_index(key: str, n: int) -> None:
    st.session_state[key] = int(np.random.default_rng().integers(n))


def _test_image(dataset: str) -> LabImage | None:
    try:
        split = shell.test_split(dataset)
    except DataError as exc:
        st.warning(data_error_text(exc), icon=":material/dataset:")
        return None
    key = f"lab_test_index_{dataset}"
    if key not in st.session_state:
        _new_test_index(key, len(split))
    index = st.session_state[key]
    truth = class_names(dataset)[int(split.labels[index])]
    caption = f"{dataset_name(dataset)} test image #{index}"
    return LabImage(split.images[index].numpy(), truth, caption, key, len(split))


def lab_image(dataset: str) -> LabImage | None:
    """Your last drawing (when the Draw page left one) or a random test image, as the reader picks."""
    drawing = _last_drawing()
    if drawing is not None:
        sources = {"drawing": ":material/draw: Drawing", "test": ":material/casino: Test"}  # short: a narrow column
        source = st.segmented_control(
            "Image", list(sources), format_func=sources.get, default="drawing", required=True, key="lab_source",
            label_visibility="collapsed",
        )  # fmt: skip
        if source == "drawing":
            return LabImage(drawing, None, "your last drawing on the Draw page")
    return _test_image(dataset)


# --- the sliders -----------------------------------------------------------------------------------
def _reset_sliders() -> None:
    for key, (_, _, _, _, default, *_) in SLIDERS.items():
        st.session_state[key] = default


def sliders() -> Settings:
    """One slider per change, side by side (stacked on a phone)."""
    values = {}
    for (key, (label, lo, hi, step, default, fmt, help_text)), column in zip(
        SLIDERS.items(), st.columns(len(SLIDERS)), strict=True
    ):
        with column:
            values[key.removeprefix("lab_")] = st.slider(
                label, lo, hi, default, step, format=fmt, help=help_text, key=key
            )
    return Settings(**values)


@st.fragment
def live_panel(dataset: str, models: dict[str, LoadedModel], problems: dict[str, str]) -> None:
    """The image as it was and as the models see it, both models' answers, and the sliders below them; a slider
    reruns only this part of the page."""
    picture, *answers = st.columns([0.9, 1, 1], gap="medium")
    with picture:
        image = lab_image(dataset)
    if image is None:
        return
    slider_row = st.container()
    with slider_row:
        settings = sliders()
    changed, predictions = predict_changed(models, image.image, settings)
    with picture:
        with st.container(horizontal=True, gap="small", vertical_alignment="bottom"):
            st.image(display.upscale(image.image, THUMB_PX), caption="as it was", width=THUMB_PX)
            st.image(display.upscale(changed, IMAGE_PX), caption="what the models see", width=IMAGE_PX)
        st.caption(image.caption + (f" · true label {image.truth}" if image.truth else ""))
        with st.container(horizontal=True, gap="small"):
            if image.test_key is not None:
                st.button(
                    "Another",
                    icon=":material/casino:",
                    on_click=_new_test_index,
                    args=(image.test_key, image.test_count),
                    key="lab_next_test",
                    help="Another test image",
                )
            st.button("Reset", icon=":material/restart_alt:", on_click=_reset_sliders, key="lab_reset",
                      help="Put every slider back to no change")  # fmt: skip
    for kind, column in zip(KINDS, answers, strict=True):
        with column:
            draw.prediction_panel(kind, predictions.get(kind), models.get(kind), problems.get(kind), image.truth)


# --- the sweep -------------------------------------------------------------------------------------
def _files(models: dict[str, LoadedModel]) -> tuple[tuple[str, str, int], ...]:
    """(kind, path, mtime) of every model: the sweep's cache key, so a retrained file is measured again."""
    found = []
    for kind, loaded in models.items():  # the order of the sidebar: ViT, then CNN
        path = Path(loaded.path) if loaded.path is not None else None
        if path is None or not path.is_file():
            continue
        found.append((kind, str(path.resolve()), path.stat().st_mtime_ns))
    return tuple(found)


@st.cache_resource(show_spinner=False)
def _measured() -> dict[tuple, SweepResult]:
    """The sweeps this server process has measured, by key, so a page shows them without asking first."""
    return {}


def _cached_sweep(files: tuple[tuple[str, str, int], ...], dataset: str, data: str, n: int, seed: int) -> SweepResult:
    """The sweep of these model files, measured once per process with a progress bar (about a minute on a CPU)."""
    key = (files, dataset, data, n, seed)
    found = _measured().get(key)
    if found is not None:
        return found
    label = f"Scoring both models on {n:,} changed test images..."
    bar = st.progress(0.0, text=label)
    try:
        models = {kind: shell.load_model(path) for kind, path, _ in files}
        found = sweep(models, shell.test_split(dataset), n=n, seed=seed, progress=lambda f: bar.progress(f, text=label))
    finally:
        bar.empty()
    if len(_measured()) >= 8:  # a few files' worth: each result is small
        _measured().pop(next(iter(_measured())))
    _measured()[key] = found
    return found


def _request() -> None:
    st.session_state["lab_sweep_asked"] = True


def sweep_section(dataset: str, models: dict[str, LoadedModel]) -> None:
    """Accuracy against each change for both models, with one sentence saying what it shows. Measured when
    asked the first time (64 model passes over 1,000 images: about a minute on one CPU thread), then kept for every
    visitor until a model file changes."""
    files = _files(models)
    if not files:
        st.info("The sweep needs at least one model: train one on the Train page.", icon=":material/info:")
        return
    key = (files, dataset, shell.data_dir(), SWEEP_N, SWEEP_SEED)
    if key not in _measured() and not st.session_state.get("lab_sweep_asked"):
        values = sum(len(c.values) for c in CHANGES)
        st.caption(
            view.pick(
                say("lab", "sweep_offer", count=f"{SWEEP_N:,}"),
                f"Both models on the same {SWEEP_N:,} test images, changed in {values} ways: a minute or two on a "
                "CPU (one batched pass per change and model), then kept for everyone until a model file changes.",
            )
        )
        st.button("Measure how accuracy falls", icon=":material/monitoring:", on_click=_request, key="lab_sweep")
        return
    try:
        result = _cached_sweep(*key)
    except DataError as exc:
        st.warning(data_error_text(exc), icon=":material/dataset:")
        return
    st.markdown(views.summary_sentence(result))
    st.plotly_chart(views.sweep_figure(result), key="lab_sweep_figure", config={"displayModeBar": False})
    if view.expert():  # seeds, passes and seconds: the Expert view's
        st.caption(
            f"{result.n:,} test images (seed {result.seed}) · {result.forwards} model passes in batches of "
            f"{result.batch_size} · "
            f"measured in {result.seconds:.1f} s on this server"
        )
