"""Present's number mode: the projector's screen for "now write the year". The wide canvas beside the join panel,
then the two readers side by side, each as large as the screen allows: the detector's boxes on the number and the
captioner's answer with where it looked for each digit it wrote. The Read a number page has the rest (upload, a
random test number, the beam, the preprocessing stages); the logic is vitdemo.numbers.analyze."""

from __future__ import annotations

import streamlit as st

from vitdemo.numbers.analyze import NumberAnswer, read_image
from vitdemo.ui import present, shell
from vitdemo.ui import read as read_ui
from vitdemo.views import read as views

MODE_KEY = "vd_present_number"  # True: Present shows the number readers instead of the digit models
_GENERATION = "vd_present_number_gen"  # bumped by Clear: a new canvas
STRIP_SCALE = 2  # the captioner's per-digit attention pictures: 2x the readers' 160x32 canvas


def chosen() -> bool:
    """Whether this session's Present shows the number readers."""
    return bool(st.session_state.get(MODE_KEY, False))


def switch_button() -> None:
    """The button that swaps the digit models for the number readers, and back. It sits inside a fragment, so
    the switch reruns the whole page (the other mode is another layout)."""
    number = chosen()
    if st.button(
        "One digit" if number else "Whole number", icon=":material/draw:" if number else ":material/pin:",
        key="present_number_switch",
        help="Back to the ViT and the CNN on one digit" if number else
        "Write a whole number (a year, an age): two readers read it, one boxes each digit, one writes what it sees",
    ):  # fmt: skip
        st.session_state[MODE_KEY] = not number
        st.rerun(scope="app")


def _clear() -> None:
    st.session_state[_GENERATION] = int(st.session_state.get(_GENERATION, 0)) + 1


@st.fragment  # a stroke reruns the canvas and the readers, not the page's style or the sidebar
def number_view() -> None:
    with shell.stop_on_failure():
        models, problems = read_ui.readers()
        pad, side = st.columns(
            [1.4, 1], gap="medium"
        )  # the join panel keeps its QR and address side by side on a tablet
        with pad:
            drawn = read_ui.wide_canvas(f"present_number_{st.session_state.get(_GENERATION, 0)}")
            with st.container(horizontal=True, gap="small", key="vd_present_number_buttons"):
                st.button("Clear", icon=":material/ink_eraser:", key="present_number_clear", on_click=_clear)
                switch_button()
                present.join_button()
        with side:
            present.join_panel()
        for problem in problems.values():
            st.warning(problem, icon=":material/warning:")
        if drawn is None:
            st.info("Write a number of 1 to 8 digits on the wide canvas: a year, your age, a phone number.")
            return
        answer = read_image(drawn, models)
        if answer.message:
            st.info(answer.message, icon=":material/info:")
        left, right = st.columns(2, gap="large")
        with left:
            if "detector" in answer.readings:
                _detector(answer)
        with right:
            if "captioner" in answer.readings:
                _captioner(answer)


def _detector(answer: NumberAnswer) -> None:
    reading = answer.readings["detector"]
    st.markdown(f"### {read_ui.NAMES['detector']}: **{reading.text or '—'}**")
    picture = views.boxes_picture(answer)
    if picture is not None:
        st.image(picture, caption=f"Each box: a digit it found and its score. Sure of it all: {reading.confidence:.0%}")


def _captioner(answer: NumberAnswer) -> None:
    reading = answer.readings["captioner"]
    st.markdown(f"### {read_ui.NAMES['captioner']}: **{reading.text or '—'}**")
    labels = views.step_labels(answer)
    pictures = [views.attention_picture(answer, i, scale=STRIP_SCALE) for i in range(len(labels))]
    shown = [(p, label) for p, label in zip(pictures, labels, strict=True) if p is not None]
    if shown:
        st.image([p for p, _ in shown], caption=[label for _, label in shown], width=160)
        st.caption(f"Where it looked as it wrote each digit. Sure of it all: {reading.confidence:.0%}")
