"""The Draw page's widgets: the input (canvas, upload or a test image), both models' answers, what the models
see and where they look."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from vitdemo.checkpoints import LoadedModel
from vitdemo.data import DataError, class_names
from vitdemo.explain.inference import Analysis, Prediction, analyze
from vitdemo.preprocess import canvas as canvas_input
from vitdemo.preprocess.pipeline import dataset_image, load_image
from vitdemo.ui import view
from vitdemo.ui.shell import CANVAS_PX, LAST_INPUT_KEY, model_caption, test_split
from vitdemo.views import display
from vitdemo.views.colors import colorize, overlay
from vitdemo.views.messages import data_error_text
from vitdemo.views.names import EXPLANATIONS, KINDS, confidence_note, dataset_name, explanation_caption, kind_name
from vitdemo.views.sketch import CanvasObjects, Sketchbook
from vitdemo.views.words import say, share_right

LAYER_PX = 104  # a per-layer attention map on the Draw page
BRUSH_PX = 20  # about 2 px after the 280 -> 20 px fit: a typical MNIST stroke
_BOOK_KEY = "_vitdemo_sketchbook"  # the drawing and its history, shared by the Draw and Present pages
_CANVAS_PROBLEM = "_vitdemo_canvas_problem"  # why the canvas's last state was refused, for the run after


@dataclass(frozen=True)
class InputImage:
    image: np.ndarray | None  # what goes to preprocessing; None: nothing drawn or uploaded yet
    truth: str | None = None  # the true class name, for dataset test images
    hint: str = ""  # what to ask for while there is no image
    dataset: bool = False  # a dataset's own 28x28 image: the models' input as it is (no drawing checks)


# --- input -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CanvasValue:
    """What the canvas sent: its objects (one per stroke) and its image, None before it has sent anything; or,
    for something no real canvas sends, why it was refused (`vitdemo.preprocess.canvas`), with nothing else."""

    objects: CanvasObjects
    image: np.ndarray | None  # (H, W, 4) uint8 RGBA: white strokes on black
    problem: str | None = None
    weight: int = 0  # about the bytes it came in: its strokes' JSON and its PNG


def draw_canvas(
    key: str, initial: CanvasObjects = (), *, stroke_width: int = BRUSH_PX, size: int = CANVAS_PX
) -> CanvasValue:
    """The drawing canvas, built with the objects `initial`. The one place that touches the component: tests
    patch this function. What it sends is bounded before it is decoded (its strokes' size, the PNG's bytes and
    pixels): a client is not trusted to be the component."""
    from streamlit_drawable_canvas import st_canvas  # here: importing it registers a component

    try:
        result = st_canvas(
            stroke_width=stroke_width,
            stroke_color="#ffffff",
            background_color="#000000",
            update_streamlit=True,  # rerun when a stroke is released
            height=size,
            width=size,
            drawing_mode="freedraw",
            initial_drawing={"objects": list(initial)} if initial else None,
            return_image_data=True,
            key=key,
        )
        raw = result.json_data if isinstance(result.json_data, dict) else {}
        objects, weight = canvas_input.check_strokes(raw.get("objects"))
        png: list[int] = []
        image = canvas_input.decode_png(lambda: _counted(result.image_bytes, png), size)
    except (AttributeError, TypeError, KeyError):  # a state shaped like no canvas's
        return CanvasValue((), None, "The canvas sent something that is not a drawing: it was not used.")
    except canvas_input.CanvasRefused as exc:
        return CanvasValue((), None, exc.public)
    return CanvasValue(objects, image, weight=weight + sum(png))


def _counted(data: bytes | None, sizes: list[int]) -> bytes | None:
    sizes.append(len(data or b""))
    return data


@st.cache_resource(show_spinner=False)
def canvas_budget() -> canvas_input.CanvasBudget:
    """The large canvas states all sessions of this server hold at once (vitdemo.preprocess.canvas)."""
    return canvas_input.CanvasBudget()


class _Session:
    """This session, as the canvas budget holds it: weakly, so a session Streamlit has let go of stops counting."""


def _admitted(value: CanvasValue) -> CanvasValue:
    """`value`, unless the server holds too many large drawings to keep one more (then refused)."""
    if value.problem is not None or value.image is None:
        return value
    holder = st.session_state.setdefault("_vitdemo_canvas_session", _Session())
    if canvas_budget().admit(holder, value.weight):
        return value
    return CanvasValue((), None, canvas_input.BUSY_MESSAGE)


def _sketchbook() -> Sketchbook:
    book = st.session_state.get(_BOOK_KEY)
    return book if isinstance(book, Sketchbook) else Sketchbook()


def _change_book(action: str, *args: int) -> None:
    """A button's callback: undo, clear or restore, before the page runs again."""
    st.session_state[_BOOK_KEY] = getattr(_sketchbook(), action)(*args)


def sketch_pad(page: str, extra_button: Callable[[], None] | None = None) -> np.ndarray | None:
    """The canvas with big Undo and Clear buttons (`extra_button` draws one more in their row) and the last
    drawings as thumbnails to go back to. Shared by the Draw and Present pages: a drawing follows the user from
    one to the other. Returns the current drawing (RGBA), None while the canvas is blank."""
    with st.container(key="vd_pad"):
        book = _sketchbook()
        key = f"canvas_{page}_{book.generation}"
        if book.needs_rebuild(key in st.session_state):
            book = book.rebuild()
            key = f"canvas_{page}_{book.generation}"
        value = _admitted(draw_canvas(key, book.base))
        if value.problem is not None:
            _refuse_canvas(key, value.problem)
        book = book.record(value.objects, value.image)
        st.session_state[_BOOK_KEY] = book
        problem = st.session_state.pop(_CANVAS_PROBLEM, None)
        if problem:
            st.error(problem, icon=":material/block:")
        with st.container(horizontal=True, key="vd_pad_buttons"):
            st.button(
                "Undo", icon=":material/undo:", on_click=_change_book, args=("undo",), key="pad_undo",
                disabled=not book.steps, width="stretch", help="Take back the last stroke",
            )  # fmt: skip
            st.button(
                "Clear", icon=":material/ink_eraser:", on_click=_change_book, args=("clear",), key="clear_canvas",
                disabled=book.current is None, width="stretch", help="A blank canvas; this drawing goes below",
            )  # fmt: skip
            if extra_button is not None:
                extra_button()
        _gallery(book)
    return book.current.image if book.current is not None else None


def _refuse_canvas(key: str, problem: str) -> None:
    """A canvas state that was refused: dropped from the session with its widget (a new canvas, showing the last
    drawing kept, replaces it), and the page runs again to say why."""
    st.session_state.pop(key, None)
    st.session_state[_BOOK_KEY] = _sketchbook().rebuild()
    st.session_state[_CANVAS_PROBLEM] = problem
    st.rerun()


def _gallery(book: Sketchbook, size: int = 52) -> None:
    """The earlier drawings, newest first, each with a button that brings it back."""
    if not book.gallery:
        return
    with st.container(horizontal=True, key="vd_gallery", gap="small"):
        for i, drawing in enumerate(book.gallery):
            with st.container(width=size + 8, gap=None):
                st.image(drawing.thumbnail(size), width=size)
                st.button(
                    f"{i + 1}", icon=":material/history:", key=f"pad_restore_{i}", on_click=_change_book,
                    args=("restore", i), help="Back to this drawing", width="stretch",
                )  # fmt: skip


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
    image = sketch_pad("draw")
    return InputImage(image, hint=draw_hint(dataset))


def draw_hint(dataset: str) -> str:
    thing = "a digit" if dataset == "mnist" else "a piece of clothing"
    return f"Draw {thing} on the black canvas to see what the ViT and the CNN make of it."


def _upload_input() -> InputImage:
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
        split = test_split(dataset)
    except DataError as exc:
        st.warning(data_error_text(exc), icon=":material/dataset:")
        return InputImage(None, hint=say("draw", "no_test_images"))  # not "Draw a digit": this is Test mode
    key = f"test_index_{dataset}"
    if key not in st.session_state:
        _new_test_index(key, len(split))
    index = st.session_state[key]
    truth = class_names(dataset)[int(split.labels[index])]
    st.image(display.upscale(split.images[index].numpy(), CANVAS_PX), width=CANVAS_PX)
    st.markdown(f'<p class="vd-truth">True label: <b>{truth}</b></p>', unsafe_allow_html=True)
    st.caption(f"{dataset_name(dataset)} test image #{index}")
    st.button(
        "Another test image",
        icon=":material/casino:",
        on_click=_new_test_index,
        args=(key, len(split)),
        key="next_test",
    )
    return InputImage(split.images[index].numpy(), truth, dataset=True)


# --- the rollout's settings: in plain words, beside the ViT's map ------------------------------------------
HEAD_FUSIONS = {"mean": "average", "max": "strongest", "min": "weakest"}  # head fusion -> what the page says
FUSION_HELP = (
    "Head fusion: a layer's attention heads each look at the drawing their own way. 'average' takes their mean "
    "attention, 'strongest' the largest of them for every patch, 'weakest' the smallest, before the layers are "
    "rolled out into one map."
)
IGNORE_HELP = (
    "Discard ratio: in every layer, the weakest links of attention between patches are dropped before the "
    "rollout. Higher: a sharper map that keeps only what the ViT attended to most."
)
FUSION_KEY, IGNORE_KEY = "rollout_heads", "rollout_ignore"  # the widgets beside the map
_ROLLOUT_KEPT = "_vd_rollout"  # the settings while the map (and so its widgets) is not on the page


def rollout_settings() -> tuple[str, float]:
    """(head fusion, discard ratio) for this run of the page, read before the analysis: from the widgets beside
    the ViT's map (rollout_controls), or as they were left when the map was last shown."""
    fusion, ignore = st.session_state.get(_ROLLOUT_KEPT, ("mean", 0.0))
    fusion = st.session_state.get(FUSION_KEY, fusion)
    ignore = float(st.session_state.get(IGNORE_KEY, ignore))
    if fusion not in HEAD_FUSIONS:
        fusion = "mean"
    st.session_state[_ROLLOUT_KEPT] = (fusion, ignore)
    return str(fusion), ignore


def rollout_controls() -> None:
    """The rollout's two settings in plain words (the technical names in their help), drawn beside its map."""
    fusion, ignore = st.session_state.get(_ROLLOUT_KEPT, ("mean", 0.0))
    # Set through the Session State API on every run, not only when missing: the widgets then send the browser
    # their value each time. Else a control the browser draws anew (its place moved: Draw -> Test) shows its
    # empty default, no option selected, while the server still uses the last one.
    st.session_state[FUSION_KEY] = st.session_state.get(FUSION_KEY, fusion)
    st.session_state[IGNORE_KEY] = st.session_state.get(IGNORE_KEY, ignore)
    with st.container(horizontal=True, gap="medium", key="vd_rollout_controls"):
        st.segmented_control(
            view.pick(say("draw", "fusion_label"), "Combine heads by"), list(HEAD_FUSIONS),
            format_func=HEAD_FUSIONS.get, required=True, key=FUSION_KEY,
            help=view.tip(say("draw", "fusion_help"), FUSION_HELP),
        )  # fmt: skip
        st.slider(
            view.pick(say("draw", "ignore_label"), "Ignore the weakest links of attention"), 0.0, 0.95, step=0.05,
            format="percent", key=IGNORE_KEY, help=view.tip(say("draw", "ignore_help"), IGNORE_HELP),
        )  # fmt: skip


def run_analysis(
    image: np.ndarray | None,
    models: dict[str, LoadedModel],
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    *,
    dataset: bool = False,
) -> Analysis | None:
    """analyze() for the page: None when there is no image, an st.error for one that cannot be read. The model
    input it made is left in the session for the Robustness lab and Under the hood (`shell.LAST_INPUT_KEY`).
    `dataset`: the image is a dataset's own 28x28 input (`InputImage.dataset`), given to the models as it is."""
    if image is None:
        return None
    try:
        given = dataset_image(image) if dataset else image
        analysis = analyze(given, models, head_fusion=head_fusion, discard_ratio=discard_ratio)  # type: ignore[arg-type]
    except ValueError as exc:
        st.error(f"That image could not be used: {exc}")
        return None
    if analysis.pre.image is not None:
        st.session_state[LAST_INPUT_KEY] = analysis.pre.image  # (28, 28) float32 in [0, 1]
    return analysis


# --- answers ---------------------------------------------------------------------------------------
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
    verdict = _verdict(label, truth)
    st.markdown(display.prediction_html(KINDS[kind], label, prediction.confidence, verdict), unsafe_allow_html=True)
    # HTML bars, as on Present: no chart library to load for a session's first drawing, and half a phone's width
    st.html(
        display.probability_bars_html(
            prediction.probs, prediction.classes, title=f"{KINDS[kind]}: probability of each class"
        )
    )
    if loaded is not None:
        calibrated = loaded.meta.temperature != 1.0
        st.caption(
            view.pick(say("draw", "calibrated" if calibrated else "not_calibrated"), confidence_note(calibrated))
        )
        st.caption(model_caption(loaded) if view.expert() else simple_caption(loaded))


def simple_caption(loaded: LoadedModel) -> str:
    """The Simple view's line under a model's bars: how often it was right, without its size."""
    acc = loaded.meta.metrics.get("test_acc")
    return say("draw", "model_score", score=share_right(acc)) if isinstance(acc, float) else ""


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


def timings(analysis: Analysis) -> None:
    """The server-side time of this analysis, small; only in the Expert view."""
    if not view.expert():
        return
    named = {kind_name(name): ms for name, ms in analysis.timings_ms.items()}
    st.caption(f"Server time: {display.timing_text(named)}")


# --- what the models see, where they look ----------------------------------------------------------
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
    st.markdown(f"#### {KINDS[kind]} · {view.pick(say('draw', 'map_title'), EXPLANATIONS[kind])}")
    st.caption(view.pick(say("draw", "vit_map" if kind == "vit" else "cnn_map"), explanation_caption(kind)))
    if prediction.heat is None:
        st.caption(view.pick(say("draw", "no_map"), "No explanation for this model."))
        return
    pre, heat = analysis.pre, display.shown_heat(kind, prediction.heat)
    images = [("on the model input", display.upscale(overlay(pre.image, heat, 0.5), 168))]
    on_drawing = display.heat_on_input(heat, pre)
    if on_drawing is not None:
        drawing = display.upscale(pre.stages["input"], max(on_drawing.shape))  # the same shape as on_drawing
        images.append(("on the drawing", display.pad_square(display.upscale(overlay(drawing, on_drawing, 0.5), 168))))
    _image_row(images, 168)
    st.html(display.colour_scale_html(2 * 168))
    if kind == "vit" and view.expert():  # the rollout's settings: technical, Expert only
        rollout_controls()
    if prediction.layer_maps is not None:
        st.caption(view.pick(say("draw", "layers"), "What the class token attends to in each layer (brighter: more)."))
        # three 104 px maps a row: readable from the back of a room, two rows in a half-width column at 1280 px
        maps = [(f"layer {i + 1}", display.upscale(colorize(m), LAYER_PX)) for i, m in enumerate(prediction.layer_maps)]
        for start in range(0, len(maps), 3):
            _image_row(maps[start : start + 3], LAYER_PX)
