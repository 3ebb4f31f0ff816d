"""Read a number: two ways a machine reads a whole number, side by side (the detector and the captioner)."""

import streamlit as st

from vitdemo.numbers.analyze import read_image
from vitdemo.ui import read, shell
from vitdemo.ui.view import pick
from vitdemo.views.words import say

with shell.stop_on_failure():
    technical = "Read a number · a Faster R-CNN that boxes each digit beside a ViT that writes what it sees"
    st.markdown(f"## {pick(say('read', 'title'), technical)}")
    models, problems = read.readers()
    for problem in problems.values():
        st.warning(problem, icon=":material/warning:")
    picked = read.image_input()
    if picked is None:
        st.info("Write a number of 1 to 8 digits, upload a photo of one, or pick a random test number.")
        st.stop()
    image, prepared = picked
    answer = read_image(image, models, prepared=prepared)
    if answer.message:
        st.info(answer.message, icon=":material/info:")
    if answer.readings:
        left, right = st.columns(2, gap="large")
        with left:
            if "detector" in answer.readings:
                read.detector_panel(answer, models.get("detector"))
        with right:
            if "captioner" in answer.readings:
                read.captioner_panel(answer, models.get("captioner"))
    st.markdown("### What the readers see")
    read.stages(answer)
