"""The "Read a number" page's widgets: a wide canvas (or an upload, or a random test number), then the two readers
side by side: the detector's boxes on the number, the captioner's answer, its beam and where it looked for each
digit it wrote. The logic is in vitdemo.numbers.analyze and the pictures in vitdemo.views.read."""

from __future__ import annotations

import numpy as np
import streamlit as st

from vitdemo.checkpoints import CheckpointError, LoadedModel
from vitdemo.data import DataError
from vitdemo.numbers.analyze import READERS, NumberAnswer, shipped_path
from vitdemo.preprocess import canvas as canvas_input
from vitdemo.preprocess.pipeline import load_image
from vitdemo.ui.shell import load_model, test_split
from vitdemo.views import read as views
from vitdemo.views.messages import data_error_text

CANVAS_W, CANVAS_H = 800, 200  # the wide canvas, in CSS pixels: 4:1, like the readers' 160x32
BRUSH_PX = 14  # about 1.5 px on the readers' canvas: a written digit's stroke
NAMES = {"captioner": "Captioner (the ViT way)", "detector": "Detector (the CNN way)"}


def draw_number_canvas(key: str) -> np.ndarray | None:
    """The wide drawing canvas; the one place that touches the component (tests patch this function). What it
    sends is bounded before it is decoded (its strokes' size, the PNG's bytes and pixels). Returns (H, W, 4)
    RGBA or None; raises CanvasRefused with a sentence for what no real canvas sends."""
    from streamlit_drawable_canvas import st_canvas  # here: importing it registers a component

    result = st_canvas(
        stroke_width=BRUSH_PX, stroke_color="#ffffff", background_color="#000000", update_streamlit=True,
        height=CANVAS_H, width=CANVAS_W, drawing_mode="freedraw", return_image_data=True, key=key,
    )  # fmt: skip
    try:
        raw = result.json_data if isinstance(result.json_data, dict) else {}
        objects, _ = canvas_input.check_strokes(raw.get("objects"))
        if not objects:
            return None
        return canvas_input.decode_png(lambda: result.image_bytes, CANVAS_W)
    except (AttributeError, TypeError, KeyError):
        raise canvas_input.CanvasRefused("The canvas sent something that is not a drawing: it was not used.") from None


def wide_canvas(key: str) -> np.ndarray | None:
    """The wide canvas in its 4:1 box (the client script keeps that shape; it squares the other canvases): the
    drawing, or None; a canvas state no real canvas sends is a sentence on the page, not a failure."""
    try:
        with st.container(key="vd_wide"):
            return draw_number_canvas(key)
    except canvas_input.CanvasRefused as exc:
        st.warning(exc.public, icon=":material/block:")
        return None


def readers() -> tuple[dict[str, LoadedModel], dict[str, str]]:
    """The shipped readers, loaded once per server; a missing or broken file is a sentence, not a failure."""
    found, problems = {}, {}
    for name in READERS:
        try:
            found[name] = load_model(shipped_path(name))
        except CheckpointError as exc:
            problems[name] = (
                f"The {name} could not be loaded ({exc}): train one with `python -m vitdemo train --model {name}`."
            )
    return found, problems


def image_input() -> tuple[np.ndarray, bool] | None:
    """The number to read (drawn, uploaded, or a random test number from t10k's digits) and whether it is already
    in the readers' form (a test number: read as it is)."""
    mode = st.radio("Input", ["Draw", "Upload", "Random test number"], horizontal=True, key="read_mode")
    if mode == "Draw":
        st.caption("Write a number of 1 to 8 digits on the wide canvas (mouse, pen or finger).")
        drawn = wide_canvas(f"read_canvas_{st.session_state.get('read_generation', 0)}")
        return None if drawn is None else (drawn, False)
    if mode == "Upload":
        file = st.file_uploader("A photo or scan of a written number (PNG or JPG)", type=["png", "jpg", "jpeg"],
                                key="read_upload")  # fmt: skip
        if file is None:
            return None
        try:
            return load_image(file.getvalue()), False
        except ValueError as exc:
            st.error(f"{file.name}: {exc}")
            return None
    number = _random_number()
    return None if number is None else (number, True)


def _random_number() -> np.ndarray | None:
    from vitdemo.numbers.synth import make_numbers

    if st.button("Another test number", icon=":material/casino:", key="read_random"):
        st.session_state["read_seed"] = int(np.random.default_rng().integers(2**31))
    try:
        split = test_split("mnist")
    except DataError as exc:
        st.warning(data_error_text(exc), icon=":material/dataset:")
        return None
    number = make_numbers(split, 1, seed=st.session_state.setdefault("read_seed", 0))
    st.caption(f"Written with MNIST test digits: the true number is **{number.texts()[0]}**.")
    return number.images[0].numpy()


def skill(loaded: LoadedModel | None) -> None:
    """How well this reader reads yet (its checkpoint's test figures), under its answer."""
    said = views.skill_sentence(loaded.meta.metrics) if loaded is not None else ""
    if said:
        st.caption(said)


def detector_panel(answer: NumberAnswer, loaded: LoadedModel | None = None) -> None:
    reading = answer.readings["detector"]
    st.markdown(f"### {NAMES['detector']}: **{reading.text or '—'}**")
    skill(loaded)
    st.caption(f"confidence {reading.confidence:.1%} (the product of its boxes' scores)")
    picture = views.boxes_picture(answer)
    if picture is not None:
        st.image(picture, caption="Each box: the digit found there and its score; read left to right.")


def captioner_panel(answer: NumberAnswer, loaded: LoadedModel | None = None) -> None:
    reading = answer.readings["captioner"]
    st.markdown(f"### {NAMES['captioner']}: **{reading.text or '—'}**")
    skill(loaded)
    st.caption(f"confidence {reading.confidence:.1%} (the probability of the whole number it wrote)")
    rows = views.beam_rows(answer)
    if rows:
        st.dataframe(rows, hide_index=True, column_config={"probability": st.column_config.ProgressColumn(
            "probability", format="percent", min_value=0.0, max_value=1.0)})  # fmt: skip
    labels = views.step_labels(answer)
    if labels:
        step = st.select_slider("Where it looked while writing", options=range(len(labels)),
                                format_func=lambda i: labels[i], key="read_step")  # fmt: skip
        st.image(views.attention_picture(answer, step), caption="Cross-attention, all layers and heads averaged")
        strip = [views.attention_picture(answer, i, scale=2) for i in range(len(labels))]
        st.image(strip, caption=labels, width=160)


def stages(answer: NumberAnswer) -> None:
    shown = [(name, img) for name, img in answer.pre.stages.items() if img.ndim == 2]
    cols = st.columns(len(shown))
    for col, (name, img) in zip(cols, shown, strict=True):
        col.image(np.clip(img, 0, 1), caption=name, width="stretch")
