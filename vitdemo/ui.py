"""The one module that imports Streamlit: cached model loading, the shared sidebar and the Draw page's widgets.

Pages stay thin: they call these helpers in order. Everything here renders; the work itself (preprocessing,
prediction, explanations, image maths) lives in the rest of vitdemo and is tested without a UI.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from vitdemo.checkpoints import CheckpointError, LoadedModel, load_checkpoint
from vitdemo.data import DataError, Split, class_names, load_raw
from vitdemo.inference import Analysis, Prediction, analyze
from vitdemo.registry import Registry, default_home
from vitdemo.views import display

ENV_CHECKPOINTS = "VITDEMO_CHECKPOINTS"
REPO_ROOT = Path(__file__).resolve().parent.parent
DATASETS = {"mnist": "MNIST digits", "fashion": "Fashion-MNIST"}
KINDS = {"vit": "ViT", "cnn": "CNN"}  # model kind -> the name the audience sees
EXPLANATIONS = {"vit": "attention rollout", "cnn": "Grad-CAM"}
CANVAS_PX = 280  # 10x the model input: each model pixel is a 10x10 block of the canvas
BRUSH_PX = 20  # about 2 px after the 280 -> 20 px fit: a typical MNIST stroke
SHIPPED = "shipped"  # picker value for the checkpoint that ships with the app
_SELECTION_KEY = "_vitdemo_selection"
_SHELL_KEY = "_vitdemo_shell"
_ANALYZE_LOCK = threading.Lock()  # models are shared by all sessions; Grad-CAM hooks must not interleave

CSS = """
<style>
[data-testid="stMainBlockContainer"] {padding-top: 2.2rem; padding-bottom: 2rem;}
[data-testid="stSidebarUserContent"] {padding-top: 0.5rem;}
h1, h2, h3 {letter-spacing: -0.01em;}
.vd-pred {font-size: 1.45rem; font-weight: 600; line-height: 1.05; margin: 0;}
.vd-label {font-size: 4.2rem; font-weight: 800; color: #ff7a45; vertical-align: -0.35rem;}
.vd-conf {font-size: 1.15rem; opacity: 0.85; margin: 0.35rem 0 0.4rem 0;}
.vd-truth {font-size: 1.35rem; font-weight: 600;}
.vd-right {color: #4ade80; font-weight: 700;}
.vd-wrong {color: #f87171; font-weight: 700;}
</style>
"""


# --- paths, models, registry -----------------------------------------------------------------------
def checkpoint_dir() -> Path:
    """The shipped checkpoints: $VITDEMO_CHECKPOINTS, else the repository's checkpoints/ folder."""
    return Path(os.environ.get(ENV_CHECKPOINTS) or REPO_ROOT / "checkpoints")


@contextmanager
def _single_thread() -> Iterator[None]:
    """One image through a small model: one torch thread is fastest, and on a busy CPU (a training job
    next door) several threads mostly wait for each other (measured: 12 ms instead of 40 ms)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@st.cache_resource(show_spinner=False, max_entries=16)
def _load_model_cached(path: str, mtime_ns: int) -> LoadedModel:
    del mtime_ns  # part of the cache key only: a retrained file at the same path is loaded again
    loaded = load_checkpoint(path)
    stroke = np.zeros((CANVAS_PX, CANVAS_PX, 4), np.uint8)  # RGBA, as the canvas sends it
    stroke[..., 3] = 255
    stroke[60:220, 130:150, :3] = 255  # a "1"
    with _ANALYZE_LOCK, _single_thread():  # warm-up: the first stroke on the projector is not the slow one
        analyze(stroke, {loaded.kind: loaded})
    return loaded


def load_model(path: str | os.PathLike) -> LoadedModel:
    """Load a checkpoint once per server process (shared by every session); raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return _load_model_cached(str(path.resolve()), path.stat().st_mtime_ns)


@st.cache_resource(show_spinner=False)
def _registry(home: str) -> Registry:
    return Registry(home)


def registry() -> Registry:
    """The run registry in $VITDEMO_HOME (default ./runs), opened once per process."""
    return _registry(str(default_home().resolve()))


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
        reg.sync_baselines(ckpt_dir)
        runs = reg.list_runs(status="done", kind=kind, dataset=dataset)
    except Exception as exc:  # a locked or unwritable registry must not take the Draw page down
        runs, problem = [], f"The run registry in {home} could not be read ({exc}); only shipped models are offered."
    shipped_key = str(shipped.resolve())
    for run in runs:
        if run.checkpoint and str(Path(run.checkpoint).resolve()) == shipped_key:
            label = f"Shipped {KINDS[kind]}" + (f" ({run.test_acc:.2%})" if run.test_acc is not None else "")
        elif run.checkpoint:
            choices.append(ModelChoice(kind, dataset, f"run:{run.id}", run.label, run.checkpoint))
    return [ModelChoice(kind, dataset, SHIPPED, label, str(shipped)), *choices], problem


def load_models(selection: Selection) -> tuple[dict[str, LoadedModel], dict[str, str]]:
    """Loaded models by kind, and for each side that has none a sentence saying why and what to do."""
    models, problems = {}, {}
    for kind, choice in selection.choices.items():
        name, path = KINDS[kind], Path(choice.path)
        try:
            loaded = load_model(path)
        except CheckpointError as exc:
            if path.is_file():
                problems[kind] = f"The {name} model could not be loaded: {exc}. Choose another one in the sidebar."
            else:
                problems[kind] = (
                    f"No {name} model for {DATASETS[selection.dataset]} yet: {path.name} is not in {path.parent}. "
                    "Train one on the Train page, or choose another model in the sidebar."
                )
            continue
        if loaded.kind != kind or loaded.meta.dataset != selection.dataset:
            problems[kind] = (
                f"{path.name} holds a {KINDS.get(loaded.kind, loaded.kind)} for {loaded.meta.dataset}, "
                f"not a {name} for {DATASETS[selection.dataset]}: choose another model in the sidebar."
            )
            continue
        models[kind] = loaded
    return models, problems


# --- app shell ---------------------------------------------------------------------------------------
def require_app_shell() -> None:
    """Call first on every page. A bookmarked page (say /train) that is a fresh server's first request runs in
    Streamlit's legacy `pages/` mode: the page alone, without app.py's page config, sidebar and navigation.
    Switch the process to app.py's navigation (what its first run would do anyway) and run again."""
    from streamlit.runtime.pages_manager import PagesManager  # internal, hence the getattr below

    if _SHELL_KEY not in st.session_state and getattr(PagesManager, "uses_pages_directory", None):
        PagesManager.uses_pages_directory = False
        st.rerun()


def page_setup() -> None:
    """Page config and the projector-friendly styling; call first in app.py."""
    st.session_state[_SHELL_KEY] = True  # this session has run through app.py
    st.set_page_config(page_title="ViT vs CNN", page_icon="🔢", layout="wide", initial_sidebar_state="expanded")
    st.html(CSS)


def sidebar() -> Selection:
    """The shared sidebar: dataset, then a ViT and a CNN picker. Remembers its answer for `selection()`."""
    with st.sidebar:
        st.markdown("### Models")
        dataset = st.radio("Dataset", list(DATASETS), format_func=DATASETS.get, key="dataset", horizontal=True)
        home, ckpt = str(default_home().resolve()), str(checkpoint_dir().resolve())
        picked, problems = {}, set()
        for kind in KINDS:
            options, problem = model_choices(kind, dataset, home, ckpt)
            by_key = {c.key: c for c in options}
            if st.session_state.get(f"{kind}_model_{dataset}", SHIPPED) not in by_key:  # its run was deleted
                st.session_state[f"{kind}_model_{dataset}"] = SHIPPED
            key = st.selectbox(
                f"{KINDS[kind]} model",
                list(by_key),
                format_func=lambda k, by_key=by_key: by_key[k].label,
                key=f"{kind}_model_{dataset}",
            )
            picked[kind] = by_key[key]
            problems.add(problem)
        for problem in sorted(p for p in problems if p):
            st.warning(problem)
    selection = Selection(dataset, picked["vit"], picked["cnn"])
    st.session_state[_SELECTION_KEY] = selection
    return selection


def selection() -> Selection:
    """The sidebar's current answer (app.py draws the sidebar before the page runs)."""
    found = st.session_state.get(_SELECTION_KEY)
    return found if isinstance(found, Selection) else sidebar()


def model_caption(loaded: LoadedModel) -> str:
    """'210,762 params · 98.95% test acc.'"""
    acc = loaded.meta.metrics.get("test_acc")
    return f"{loaded.num_params:,} params" + (f" · {acc:.2%} test acc." if acc is not None else "")


# --- Draw page ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputImage:
    image: np.ndarray | None  # what goes to preprocessing; None: nothing drawn or uploaded yet
    truth: str | None = None  # the true class name, for dataset test images
    hint: str = ""  # what to ask for while there is no image


def draw_canvas(key: str, *, stroke_width: int = BRUSH_PX, size: int = CANVAS_PX) -> np.ndarray | None:
    """White strokes on black; (H, W, 4) uint8 RGBA after the first stroke, None before. Tests patch this."""
    from streamlit_drawable_canvas import st_canvas  # here: importing it registers a component

    result = st_canvas(
        stroke_width=stroke_width,
        stroke_color="#ffffff",
        background_color="#000000",
        update_streamlit=True,  # rerun when a stroke is released
        height=size,
        width=size,
        drawing_mode="freedraw",
        return_image_data=True,
        key=key,
    )
    return result.image_data


def _clear_canvas() -> None:
    st.session_state["canvas_n"] = st.session_state.get("canvas_n", 0) + 1  # a new key: a blank canvas


@st.cache_resource(show_spinner=False, max_entries=2)
def _test_split(dataset: str, data_dir: str | None) -> Split:
    return load_raw(dataset, train=False, data_dir=data_dir)


def _new_test_index(key: str, n: int) -> None:
    st.session_state[key] = int(np.random.default_rng().integers(n))


def image_input(dataset: str) -> InputImage:
    """Draw, upload or pick a test image; returns the image to analyse (None until there is one)."""
    modes = {"draw": ":material/draw: Draw", "upload": ":material/upload: Upload", "test": ":material/casino: Test"}
    mode = st.segmented_control(
        "Input", list(modes), format_func=modes.get, default="draw", required=True, key="input_mode",
        label_visibility="collapsed",
    )  # fmt: skip
    if mode == "upload":
        return _upload_input()
    if mode == "test":
        return _test_input(dataset)
    st.space(16)  # room for the canvas's own toolbar, which floats above it on hover
    image = draw_canvas(f"canvas_{st.session_state.get('canvas_n', 0)}")
    st.button("Clear", icon=":material/ink_eraser:", on_click=_clear_canvas, key="clear_canvas")
    thing = "a digit" if dataset == "mnist" else "a piece of clothing"
    return InputImage(image, hint=f"Draw {thing} on the black canvas to see what the ViT and the CNN make of it.")


def _upload_input() -> InputImage:
    from vitdemo.preprocess import load_image

    hint = "Upload a picture of one digit or piece of clothing: a PNG or JPG of at most 5 MB."
    file = st.file_uploader("A PNG or JPG of one digit", type=["png", "jpg", "jpeg"], key="upload")
    if file is None:
        return InputImage(None, hint=hint)
    try:
        image = load_image(file.getvalue())
    except ValueError as exc:
        st.error(f"{file.name}: {exc}")
        return InputImage(None, hint=hint)
    st.image(display.upscale(image, CANVAS_PX), width=CANVAS_PX)
    return InputImage(image)


def _test_input(dataset: str) -> InputImage:
    try:
        split = _test_split(dataset, os.environ.get("VITDEMO_DATA_DIR"))
    except DataError as exc:
        st.error(str(exc))
        return InputImage(None)
    key = f"test_index_{dataset}"
    if key not in st.session_state:
        _new_test_index(key, len(split))
    index = st.session_state[key]
    truth = class_names(dataset)[int(split.labels[index])]
    st.image(display.upscale(split.images[index].numpy(), CANVAS_PX), width=CANVAS_PX)
    st.markdown(f'<p class="vd-truth">True label: {truth}</p>', unsafe_allow_html=True)
    st.caption(f"{DATASETS[dataset]} test image #{index}")
    st.button(
        "Another test image",
        icon=":material/casino:",
        on_click=_new_test_index,
        args=(key, len(split)),
        key="next_test",
    )
    return InputImage(split.images[index].numpy(), truth)


def explanation_settings() -> tuple[str, float]:
    """Sidebar controls for attention rollout: head fusion and discard ratio."""
    with st.sidebar:
        st.markdown("### Explanations")
        fusion = st.segmented_control(
            "Rollout head fusion", ["mean", "max", "min"], default="mean", required=True, key="head_fusion",
            help="How the attention of the heads in a layer is combined before rolling it out through the layers.",
        )  # fmt: skip
        discard = st.slider(
            "Rollout discard ratio", 0.0, 0.95, 0.0, 0.05, key="discard_ratio",
            help="Drop this fraction of the weakest attention links in every layer: higher is sharper.",
        )  # fmt: skip
    return str(fusion), float(discard)


def run_analysis(
    image: np.ndarray | None, models: dict[str, LoadedModel], head_fusion: str = "mean", discard_ratio: float = 0.0
) -> Analysis | None:
    """analyze() for the page: None when there is no image, an st.error for one that cannot be read."""
    if image is None:
        return None
    try:
        with _ANALYZE_LOCK, _single_thread():
            return analyze(image, models, head_fusion=head_fusion, discard_ratio=discard_ratio)  # type: ignore[arg-type]
    except ValueError as exc:
        st.error(f"That image could not be used: {exc}")
        return None


def prediction_text(kind: str, label: str) -> str:
    """The readable sentence on the page ('ViT predicts 7'); the browser test looks for it."""
    return f"{KINDS[kind]} predicts {label}"


def prediction_panel(
    kind: str,
    prediction: Prediction | None,
    loaded: LoadedModel | None,
    problem: str | None = None,
    truth: str | None = None,
) -> None:
    """One side: the predicted class large, its confidence (right or wrong, when the truth is known), the
    bar chart of all classes and the model's size."""
    if problem:
        st.markdown(f"### {KINDS[kind]}")
        st.warning(problem)
        return
    if prediction is None:
        return
    label = prediction.classes[prediction.label]
    st.markdown(
        f'<p class="vd-pred" aria-label="{prediction_text(kind, label)}">{KINDS[kind]} predicts '
        f'<span class="vd-label">{label}</span></p>'
        f'<p class="vd-conf">{prediction.confidence:.1%} confident{_verdict(label, truth)}</p>',
        unsafe_allow_html=True,
    )
    fig = display.probability_figure(prediction.probs, prediction.classes)
    st.plotly_chart(fig, config={"displayModeBar": False, "staticPlot": True}, key=f"probs_{kind}", theme=None)
    if loaded is not None:
        st.caption(model_caption(loaded))


def _verdict(label: str, truth: str | None) -> str:
    if truth is None:
        return ""
    if label == truth:
        return ' · <span class="vd-right">right</span>'
    return ' · <span class="vd-wrong">wrong</span>'


def empty_prompt(analysis: Analysis | None, source: InputImage) -> None:
    """The prompt shown instead of predictions while there is nothing to predict."""
    message = analysis.pre.message if analysis is not None and analysis.pre.message else source.hint
    st.info(message or "Draw a digit to get a prediction.", icon=":material/draw:")


def preprocessing_strip(analysis: Analysis, size: int = 128) -> None:
    """Every stage from the drawing to the 28x28 input, side by side, pixels shown as squares."""
    _image_row(display.stage_images(analysis.pre, size), size, gap="medium")


def _image_row(images: list[tuple[str, np.ndarray]], width: int, gap: str | None = "small") -> None:
    """Captioned images in one row (wrapping when the screen is narrow)."""
    with st.container(horizontal=True, gap=gap):
        for caption, image in images:
            st.image(image, caption=caption, width=width)


def explanation_panel(kind: str, prediction: Prediction, analysis: Analysis) -> None:
    """The model's explanation overlaid on its 28x28 input and on the drawing; the ViT's layers as small maps."""
    from vitdemo.explain import colorize, overlay

    st.markdown(f"#### {KINDS[kind]} · {EXPLANATIONS[kind]}")
    if prediction.heat is None:
        st.caption("No explanation for this model.")
        return
    pre = analysis.pre
    images = [("on the model input", display.upscale(overlay(pre.image, prediction.heat, 0.5), 168))]
    on_drawing = display.heat_on_input(prediction.heat, pre)
    if on_drawing is not None:
        drawing = display.upscale(pre.stages["input"], max(on_drawing.shape))  # the same shape as on_drawing
        images.append(("on the drawing", display.pad_square(display.upscale(overlay(drawing, on_drawing, 0.5), 168))))
    _image_row(images, 168)
    if prediction.layer_maps is not None:
        # 6 layers at 52 px with no gap fit one row of a half-width column at 1280 px
        maps = [(f"layer {i + 1}", display.upscale(colorize(m), 52)) for i, m in enumerate(prediction.layer_maps)]
        _image_row(maps, 52, gap=None)
        st.caption("What the class token attends to in each layer (brighter: more).")


def timings(analysis: Analysis) -> None:
    """The server-side time of this analysis, small."""
    named = {KINDS.get(name, name): ms for name, ms in analysis.timings_ms.items()}
    st.caption(f"Server time: {display.timing_text(named)}")


# --- Train / Evaluate / Leaderboard helpers ---
# Widgets and panels of the Train, Evaluate and Leaderboard pages. The rules live elsewhere: the form in
# vitdemo.views.forms, tables and figures in vitdemo.views.charts, runs in vitdemo.jobs and vitdemo.registry.
import time  # noqa: E402

import pandas as pd  # noqa: E402

from vitdemo import jobs  # noqa: E402
from vitdemo.config import SCHEDULES, ConfigError, TrainConfig  # noqa: E402
from vitdemo.metrics import EvalReport, evaluate_predictions  # noqa: E402
from vitdemo.registry import STATUSES, Run  # noqa: E402
from vitdemo.views import charts, forms  # noqa: E402

FORM_PREFIX = "tf_"  # the Train form's widget keys: "tf_" + a name from forms.KEYS
_FORM_SAVED = "_train_form_values"  # the form outside widget state (Streamlit drops that on other pages)
_FORM_PENDING = "_train_form_pending"  # settings sent by the Leaderboard's "use these settings"
_FOLLOWED = "_train_followed_run"  # the run this session launched last
_NOTICE = "_runs_notice"  # a message that must survive one st.rerun (e.g. after a delete)
WORKER_RETRY_S = 10.0  # a page starts at most one worker per device this often (a crashing one must not loop)
_worker_starts: dict[str, float] = {}
PRESET_HELP = {
    "fast demo": "A small model on 10,000 images for 3 epochs: about a minute on a laptop CPU.",
    "best accuracy": "The full training set for 15 epochs: minutes on a GPU, much longer on a CPU.",
}
GALLERY_PX = 112  # 4x the 28 px input


def data_dir() -> str | None:
    """Where the datasets are: $VITDEMO_DATA_DIR, else vitdemo.data's default."""
    return os.environ.get("VITDEMO_DATA_DIR") or None


def show_notice() -> None:
    """A message left by the previous script run (before an st.rerun), shown once."""
    notice = st.session_state.pop(_NOTICE, None)
    if notice:
        st.success(notice)


# --- Train page --------------------------------------------------------------------------------------
def init_train_form() -> None:
    """Call before the form: restores it after navigation and applies settings sent from the Leaderboard."""
    values = {**forms.default_values(), **(st.session_state.get(_FORM_SAVED) or {})}
    pending = st.session_state.pop(_FORM_PENDING, None)
    if pending is not None:
        source, settings = pending
        values = forms.coerce_values({**values, **settings})
        _set_form(values)
        st.info(f"The form holds the settings of run {source}: check them, change what you like and start.")
    else:
        for key, value in values.items():
            st.session_state.setdefault(FORM_PREFIX + key, value)
    st.session_state[_FORM_SAVED] = values


def _set_form(values: forms.FormValues) -> None:
    for key, value in values.items():
        st.session_state[FORM_PREFIX + key] = value
    st.session_state[_FORM_SAVED] = dict(values)


def _form_values() -> forms.FormValues:
    saved = st.session_state.get(_FORM_SAVED) or forms.default_values()
    return {k: st.session_state.get(FORM_PREFIX + k, saved.get(k)) for k in forms.KEYS}


def _apply_preset(name: str) -> None:
    _set_form(forms.apply_preset(_form_values(), name))


def preset_buttons() -> None:
    """One button per preset; each fills in the form (model kind, dataset, device and name stay)."""
    columns = st.columns(len(forms.PRESETS))
    for column, name in zip(columns, forms.PRESETS, strict=True):
        column.button(
            f"Preset: {name}", key=f"preset_{name.replace(' ', '_')}", on_click=_apply_preset, args=(name,),
            help=PRESET_HELP.get(name), width="stretch",
        )  # fmt: skip


def device_label(device: str, devices: list[str]) -> str:
    if device == "auto":
        return f"auto: {'cuda' if 'cuda' in devices else 'cpu'}"
    return device if device in devices else f"{device} (not here)"


def server_devices_caption(devices: list[str]) -> str:
    """'This server trains on: CPU (2 cores)' or '... CPU (16 cores) and CUDA (NVIDIA H100 80GB HBM3)'."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [f"CPU ({cores} cores)"]
    if "cuda" in devices:
        parts.append(f"CUDA ({torch.cuda.get_device_name(0)})")
    return "This server trains on: " + " and ".join(parts) + ". One run per device at a time; others wait in the queue."


def train_form(devices: list[str]) -> forms.FormValues:
    """The Train form's widgets (plain widgets, not st.form, so the estimate follows every change)."""
    k = FORM_PREFIX
    st.radio("Model", ["vit", "cnn"], format_func=KINDS.get, key=k + "model_kind", horizontal=True)
    c1, c2, c3 = st.columns(3)
    if st.session_state[k + "model_kind"] == "vit":
        c1.selectbox("Patch size", [4, 7, 14], key=k + "patch_size", help="4: 7x7 = 49 patches; 7: 16; 14: 4")
        c2.number_input("Embedding dim", min_value=8, step=8, key=k + "embed_dim")
        c3.number_input("Depth (blocks)", min_value=1, step=1, key=k + "vit_depth")
        c1.number_input("Heads", min_value=1, step=1, key=k + "num_heads", help="must divide the embedding dim")
        c2.number_input("MLP ratio", min_value=0.5, step=0.5, key=k + "mlp_ratio")
        c3.number_input("Dropout", min_value=0.0, step=0.05, key=k + "vit_dropout")
    else:
        c1.number_input("Width", min_value=4, step=4, key=k + "cnn_width", help="channels of the first stage")
        c2.number_input("Depth (stages)", min_value=1, step=1, key=k + "cnn_depth", help="1, 2 or 3")
        c3.number_input("Dropout", min_value=0.0, step=0.05, key=k + "cnn_dropout")
    st.markdown("**Training**")
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Dataset", list(DATASETS), format_func=DATASETS.get, key=k + "dataset")
    c2.number_input("Epochs", min_value=1, step=1, key=k + "epochs")
    c3.number_input("Batch size", min_value=1, step=32, key=k + "batch_size")
    c1.number_input("Learning rate", min_value=0.0, step=0.0005, format="%.4f", key=k + "lr", help="peak, AdamW")
    c2.number_input("Weight decay", min_value=0.0, step=0.01, format="%.3f", key=k + "weight_decay")
    c3.selectbox("Schedule", list(SCHEDULES), key=k + "schedule")
    c1.number_input("Label smoothing", min_value=0.0, step=0.05, key=k + "label_smoothing")
    c2.slider("Augmentation strength", 0.0, 3.0, step=0.25, key=k + "augment", help="1: ±10°, ±10% scale, ±2 px")
    c3.number_input("Seed", min_value=0, step=1, key=k + "seed")
    c1.selectbox("Device", ["auto", "cpu", "cuda"], format_func=lambda d: device_label(d, devices), key=k + "device")
    c2.number_input(
        "Quick subset (training images, 0 = all)", min_value=0, step=1000, key=k + "train_subset",
        help="Train on only this many images: a run in seconds instead of minutes.",
    )  # fmt: skip
    c3.text_input("Run name (optional)", key=k + "name", max_chars=100)
    st.caption(server_devices_caption(devices))
    values = _form_values()
    st.session_state[_FORM_SAVED] = values
    return values


def estimate_panel(config: TrainConfig | None, messages: list[str]) -> None:
    """The problems of the form, or what the run will cost."""
    if config is None:
        for message in messages:
            st.error(message, icon=":material/error:")
        return
    est = forms.estimate(config)
    c1, c2 = st.columns(2)
    c1.metric("Parameters", f"{est.num_params:,}")
    c2.metric("Memory (training)", f"~{forms.human_bytes(est.total_bytes)}")
    st.caption(" · ".join(forms.estimate_lines(est)[1:]))


def launch(reg: Registry, values: forms.FormValues, devices: list[str]) -> int | None:
    """Validate again, queue the run and make sure its device has a worker. Returns the run id, or None
    (with the reason on the page) when nothing was queued."""
    config, messages = forms.check_values(values, devices)
    try:
        if config is None:
            raise ConfigError(" ".join(messages))
        run_id = jobs.submit(reg, config)
    except ConfigError as exc:
        st.error(f"Nothing was queued: {exc}", icon=":material/error:")
        return None
    start_worker(reg, reg.get_run(run_id).device or "cpu", force=True)
    st.session_state[_FOLLOWED] = run_id
    st.toast(f"Run #{run_id} queued")
    return run_id


def start_worker(reg: Registry, device: str, *, force: bool = False) -> None:
    """jobs.ensure_worker, at most every WORKER_RETRY_S per device unless forced (a worker that cannot
    start must not be restarted every second by every open page)."""
    now = time.monotonic()
    if not force and now - _worker_starts.get(device, -WORKER_RETRY_S) < WORKER_RETRY_S:
        return
    _worker_starts[device] = now
    jobs.ensure_worker(reg, device, data_dir())


def _cancel(run_id: int) -> None:
    registry().request_cancel(run_id)  # the panel says "Cancelling" on the fragment's rerun


@st.fragment(run_every=1)
def live_runs() -> None:
    """The queue, every running run's progress and curves, and the latest result; refreshed every second
    from the registry (so it survives reloads and shows runs started elsewhere)."""
    reg = registry()
    reg.fail_orphans()
    running, queued = reg.list_runs(status="running"), reg.list_runs(status="queued")
    for device in sorted({r.device or "cpu" for r in queued}):
        start_worker(reg, device)  # after a server restart, or a worker that stopped while a run was queued
    st.markdown("#### Queue")
    if running or queued:
        st.dataframe(
            charts.queue_frame(running + queued),
            hide_index=True,
            column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=100)},
        )
    else:
        st.caption("Nothing is training right now.")
    for run in running:
        run_panel(reg, run)
    latest = _latest_finished(reg)
    if latest is not None:
        st.markdown("#### Latest result")
        run_panel(reg, latest)


def _latest_finished(reg: Registry) -> Run | None:
    """The run this session launched, once it has ended; else the most recent run anyone finished."""
    followed = st.session_state.get(_FOLLOWED)
    if followed is not None:
        try:
            run = reg.get_run(followed)
        except KeyError:
            run = None
        if run is not None:
            return run if run.status not in ("queued", "running") else None
    ended = [r for r in reg.list_runs() if not r.baseline and r.status in ("done", "failed", "cancelled")]
    return max(ended, key=lambda r: (r.finished_at or 0.0, r.id), default=None)


def run_panel(reg: Registry, run: Run) -> None:
    """One run: progress and a cancel button while it runs; its result, error or cancellation after."""
    with st.container(border=True):
        st.markdown(f"**{charts.run_title(run)}**")
        if run.status == "running":
            fraction, text = charts.progress_of(run)
            st.progress(fraction, text=text)
            if run.cancel_requested:
                st.caption("Cancelling: the run stops after its current step.")
            else:
                st.button(
                    "Cancel run",
                    key=f"cancel_{run.id}",
                    on_click=_cancel,
                    args=(run.id,),
                    icon=":material/stop_circle:",
                )
        elif run.status == "done":
            where = f" on {run.device}" if run.device else ""
            st.success(
                f"Done: trained in {charts.format_duration(run.train_time_s)}{where}.", icon=":material/check_circle:"
            )
            c1, c2 = st.columns(2)
            c1.metric("Test accuracy", f"{run.test_acc:.2%}" if run.test_acc is not None else "-")
            c2.metric("Macro F1", f"{run.macro_f1:.4f}" if run.macro_f1 is not None else "-")
        elif run.status == "failed":
            st.error(f"Failed: {run.error or 'no error was recorded'}", icon=":material/error:")
        elif run.status == "cancelled":
            st.warning(f"Cancelled after {run.epochs_done} of {run.epochs} epochs.", icon=":material/stop_circle:")
        epochs = reg.epochs(run.id)
        if epochs:
            fig = charts.curves_figure(epochs, stacked=True)
            st.plotly_chart(fig, key=f"curves_{run.id}", config={"displayModeBar": False})
        elif run.status == "running":
            st.caption("The loss and accuracy curves appear after the first epoch.")


# --- Evaluate page -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TestResults:
    """A run's predictions on the whole test split."""

    run: Run
    labels: np.ndarray  # (N,) int64
    probs: np.ndarray  # (N, C) float32
    classes: tuple[str, ...]
    report: EvalReport

    @property
    def preds(self) -> np.ndarray:
        return self.probs.argmax(1)  # (N,)


def evaluable_runs(reg: Registry) -> list[Run]:
    """Finished runs with a checkpoint, shipped baselines included, best first."""
    reg.sync_baselines(checkpoint_dir())
    return [r for r in reg.leaderboard() if r.checkpoint]


def run_picker(
    label: str, runs: list[Run], key: str, *, dataset: str | None = None, none: str | None = None
) -> Run | None:
    """A selectbox of runs (by id, so a new run does not reset it); starts on the best run of `dataset`.
    `none`: the label of an extra 'no run' entry."""
    by_id: dict[int | None, Run | None] = {r.id: r for r in runs}
    options: list[int | None] = ([None] if none else []) + [r.id for r in runs]
    if key not in st.session_state or st.session_state[key] not in options:
        first = next((r.id for r in runs if r.dataset == dataset), None) if dataset and not none else None
        st.session_state[key] = first if first is not None else options[0]

    def fmt(run_id: int | None) -> str:
        run = by_id.get(run_id)
        if run is None:
            return none or ""
        acc = f" · {run.test_acc:.2%}" if run.test_acc is not None else ""
        return charts.run_title(run) + acc + (" · shipped" if run.baseline else "")

    return by_id.get(st.selectbox(label, options, format_func=fmt, key=key))


@st.cache_data(show_spinner=False, max_entries=8)
def _test_probs(path: str, mtime_ns: int, data: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(labels (N,), probs (N, C)) of a checkpoint on its dataset's test split, once per file version."""
    from vitdemo.train import predict_split

    del mtime_ns  # part of the cache key only
    loaded = load_checkpoint(path)  # a private copy: no lock shared with the Draw page's explanations
    split = _test_split(loaded.meta.dataset, data)
    logits, _ = predict_split(loaded.model, split, loaded.meta.mean, loaded.meta.std, device=torch.device("cpu"))
    return split.labels.numpy(), torch.softmax(logits, dim=-1).numpy().astype(np.float32)


def test_results(run: Run) -> TestResults | None:
    """The run's test-set predictions (computed once per checkpoint file, then cached), or None with an error."""
    path = Path(run.checkpoint or "")
    try:
        if not path.is_file():
            raise CheckpointError(f"checkpoint not found: {path}")
        with st.spinner(f"Classifying the test images with run #{run.id}…"):
            labels, probs = _test_probs(str(path.resolve()), path.stat().st_mtime_ns, data_dir())
    except (CheckpointError, DataError) as exc:
        st.error(f"Run #{run.id} cannot be evaluated: {exc}")
        return None
    classes = class_names(run.dataset)
    report = evaluate_predictions(labels, probs.argmax(1), len(classes))
    return TestResults(run, labels, probs, classes, report)


def metrics_row(res: TestResults) -> None:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Test accuracy", f"{res.report.accuracy:.2%}")
    c2.metric("Macro F1", f"{res.report.macro_f1:.4f}")
    c3.metric(f"Errors (of {len(res.labels):,})", f"{len(res.report.misclassified):,}")
    c4.metric("Parameters", f"{res.run.num_params:,}" if res.run.num_params else "-")


def per_class_table(res: TestResults) -> None:
    fmt = st.column_config.NumberColumn
    st.dataframe(
        charts.per_class_frame(res.report, res.classes),
        hide_index=True,
        column_config={name: fmt(format="%.3f") for name in ("precision", "recall", "F1")},
    )


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
    cell = (st.session_state[true_key], st.session_state[pred_key])
    fig = charts.confusion_figure(cm, res.classes, selected=cell)
    st.plotly_chart(fig, key=key, on_select="rerun", selection_mode="points", config={"displayModeBar": False})
    c1, c2 = st.columns(2)
    c1.selectbox("True class", list(range(n)), format_func=lambda i: res.classes[i], key=true_key)
    c2.selectbox("Predicted class", list(range(n)), format_func=lambda i: res.classes[i], key=pred_key)
    return int(st.session_state[true_key]), int(st.session_state[pred_key])


def explanation_overlays(run: Run, images: np.ndarray) -> list[np.ndarray]:
    """Each (28, 28) uint8 test image with the model's explanation of its own prediction on top
    (attention rollout for a ViT, Grad-CAM for a CNN), upscaled for the page."""
    from vitdemo.data import to_input
    from vitdemo.explain import attention_rollout, grad_cam, overlay

    if len(images) == 0:
        return []
    loaded = load_model(run.checkpoint or "")
    x = to_input(torch.from_numpy(np.ascontiguousarray(images)), loaded.meta.mean, loaded.meta.std)  # (K, 1, 28, 28)
    with _ANALYZE_LOCK:
        if loaded.kind == "vit":
            _, heat, _ = attention_rollout(loaded.model, x)  # (K, 28, 28)
        else:
            _, heat = grad_cam(loaded.model, x)  # (K, 28, 28)
    return [display.upscale(overlay(img, h.numpy(), 0.45), GALLERY_PX) for img, h in zip(images, heat, strict=True)]


def cell_gallery(res: TestResults, cell: tuple[int, int], limit: int = 12) -> None:
    """The test images of one confusion cell, most confident first, with the explanation overlay."""
    t, p = cell
    idx = charts.cell_examples(res.labels, res.probs, t, p, limit)
    total = int(res.report.confusion[t, p])
    what = "correctly classified" if t == p else "misclassified"
    st.markdown(f"#### True {res.classes[t]}, predicted {res.classes[p]}: {total:,} {what} test images")
    if not len(idx):
        st.caption("No test image in this cell: pick another one.")
        return
    images = _test_split(res.run.dataset, data_dir()).images[idx].numpy()  # (K, 28, 28) uint8
    try:
        shown = explanation_overlays(res.run, images)
        explained = EXPLANATIONS.get(res.run.kind, "explanation")
    except (CheckpointError, RuntimeError, ValueError) as exc:
        st.caption(f"No explanation overlay ({exc}).")
        shown, explained = [display.upscale(img, GALLERY_PX) for img in images], None
    captions = [charts.image_caption(res.classes[t], res.classes[p], float(res.probs[i, p])) for i in idx]
    st.image(shown, caption=captions, width=GALLERY_PX, output_format="PNG")  # PNG: crisp pixels
    note = f" Overlay: the model's {explained} for its prediction (bright: looked at more)." if explained else ""
    st.caption(f"Showing {len(idx)} of {total:,}, the most confident predictions first.{note}")


def compare_runs(a: TestResults, b: TestResults, limit: int = 12) -> None:
    """Both confusion matrices side by side and the test images one run gets right and the other wrong."""
    left, right = st.columns(2)
    for column, res in ((left, a), (right, b)):
        with column:
            st.markdown(f"**#{res.run.id} {res.run.name}: {res.report.accuracy:.2%}**")
            fig = charts.confusion_figure(res.report.confusion, res.classes, height=420)
            st.plotly_chart(fig, key=f"compare_cm_{res.run.id}_{column is left}", config={"displayModeBar": False})
    a_only, b_only = charts.disagreements(a.labels, a.preds, b.preds)
    st.caption(f"Both wrong on {int(((a.preds != a.labels) & (b.preds != b.labels)).sum()):,} test images.")
    split = _test_split(a.run.dataset, data_dir())
    for column, (right_res, wrong_res, idx) in zip(st.columns(2), ((a, b, a_only), (b, a, b_only)), strict=True):
        with column:
            st.markdown(f"**#{right_res.run.id} right, #{wrong_res.run.id} wrong: {len(idx):,} images**")
            order = np.argsort(-wrong_res.probs[idx].max(1), kind="stable")[:limit]  # most confident mistakes
            idx = idx[order]
            if not len(idx):
                st.caption("None.")
                continue
            captions = [
                f"true {a.classes[a.labels[i]]} · #{wrong_res.run.id} said {a.classes[wrong_res.preds[i]]} "
                f"({wrong_res.probs[i].max():.0%})"
                for i in idx
            ]
            images = [display.upscale(img, 84) for img in split.images[idx].numpy()]
            st.image(images, caption=captions, width=84, output_format="PNG")


# --- Leaderboard page --------------------------------------------------------------------------------
LEADERBOARD_COLUMN_CONFIG = {
    "test accuracy": st.column_config.NumberColumn("test accuracy", format="percent"),
    "macro F1": st.column_config.NumberColumn("macro F1", format="%.4f"),
    "parameters": st.column_config.NumberColumn("parameters", format="localized"),
    "date": st.column_config.DatetimeColumn("date", format="YYYY-MM-DD HH:mm"),
    "shipped": st.column_config.CheckboxColumn("shipped", help="a baseline that ships with the app"),
}


def leaderboard_filters(frame: pd.DataFrame) -> pd.DataFrame:
    """Filters above the table: dataset, model kind, status, and a name search."""
    c1, c2, c3, c4 = st.columns([1, 1, 1.4, 1.4])
    datasets = c1.multiselect("Dataset", list(charts.DATASET_NAMES.values()), key="lb_datasets")
    kinds = c2.multiselect("Model", list(charts.KIND_NAMES.values()), key="lb_kinds")
    statuses = c3.multiselect("Status", list(STATUSES), key="lb_statuses")
    text = c4.text_input("Name contains", key="lb_text")
    return charts.filter_leaderboard(frame, datasets=datasets, kinds=kinds, statuses=statuses, text=text)


def leaderboard_table(frame: pd.DataFrame) -> None:
    """The runs, sortable by clicking a column header, and the CSV of what is shown."""
    st.dataframe(frame, hide_index=True, column_config=LEADERBOARD_COLUMN_CONFIG, key="lb_table")
    st.download_button(
        "Export CSV", charts.leaderboard_csv(frame), file_name="vitdemo-leaderboard.csv", mime="text/csv",
        icon=":material/download:", on_click="ignore", key="lb_csv",
    )  # fmt: skip


def curves_overlay(reg: Registry, runs: list[Run]) -> None:
    """Pick runs; their validation (or training) curves on one chart."""
    has_curves = reg.runs_with_curves()
    with_epochs = [r for r in runs if r.id in has_curves]
    if not with_epochs:
        st.caption("No run with training curves yet: train one on the Train page.")
        return
    by_id = {r.id: r for r in with_epochs}
    dataset = selection().dataset  # start with the shipped pair of the sidebar's dataset, so the chart is not empty
    default = [r.id for r in with_epochs if r.baseline and r.dataset == dataset][:2]
    c1, c2 = st.columns([3, 1])
    picked = c1.multiselect(
        "Runs to compare", list(by_id), default=default, format_func=lambda i: charts.run_title(by_id[i]),
        key="lb_compare", max_selections=len(charts.PALETTE),
    )  # fmt: skip
    metric = c2.selectbox("Curve", list(charts.METRICS), format_func=charts.METRICS.get, key="lb_metric")
    if picked:
        curves = {charts.run_title(by_id[i]): reg.epochs(i) for i in picked}
        st.plotly_chart(charts.overlay_figure(curves, metric), key="lb_overlay", config={"displayModeBar": False})


def use_settings(run: Run) -> None:
    """Send a run's settings to the Train form and go there."""
    try:
        values = forms.values_from_config(run.config)
    except ConfigError as exc:
        st.error(f"The settings of run #{run.id} cannot be used: {exc}")
        return
    st.session_state[_FORM_PENDING] = (f"#{run.id} {run.name}", {**values, "name": ""})  # a new name for a new run
    st.switch_page("pages/train.py")


def run_actions(reg: Registry, run: Run) -> None:
    """What can be done with one run: copy its settings, download its checkpoint, delete it."""
    c1, c2 = st.columns(2)
    if c1.button(
        "Use these settings",
        key=f"lb_use_{run.id}",
        icon=":material/content_copy:",
        help="Copy them into the Train form",
    ):
        use_settings(run)
    path = Path(run.checkpoint) if run.checkpoint else None
    if path is not None and path.is_file():
        c2.download_button(
            "Download checkpoint", path.read_bytes(), file_name=path.name, mime="application/octet-stream",
            icon=":material/download:", on_click="ignore", key=f"lb_download_{run.id}",
        )  # fmt: skip
    else:
        c2.caption("No checkpoint file for this run.")
    if run.baseline:
        st.info("Shipped baselines can't be deleted: they come with the app.")
        return
    if run.status in ("queued", "running"):
        st.info(f"Run #{run.id} is {run.status}: cancel it on the Train page before deleting it.")
        return
    confirm = st.checkbox(f"Yes, delete run #{run.id} and its checkpoint", key=f"lb_confirm_{run.id}")
    if st.button("Delete run", key=f"lb_delete_{run.id}", disabled=not confirm, icon=":material/delete:"):
        try:
            reg.delete_run(run.id)
        except (KeyError, ValueError) as exc:
            st.error(str(exc))
            return
        st.session_state[_NOTICE] = f"Run #{run.id} ({run.name}) was deleted."
        st.rerun()
