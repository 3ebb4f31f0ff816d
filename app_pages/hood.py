"""Under the hood: what the ViT and the CNN compute for one input, layer by layer."""

import streamlit as st

from vitdemo.ui import hood, shell
from vitdemo.ui.view import pick
from vitdemo.views.words import say

with shell.stop_on_failure():
    selection = shell.selection()
    models, problems = shell.load_models(selection)
    st.markdown("## Under the hood")
    image, what = hood.current_input(selection.dataset)
    if image is None:
        st.stop()
    st.caption(f"Looking inside both models with {what}.")
    vit_tab, cnn_tab = st.tabs(
        [
            pick(say("hood", "vit_tab"), "ViT: patches and attention"),
            pick(say("hood", "cnn_tab"), "CNN: feature maps and filters"),
        ]
    )
    with vit_tab:
        hood.vit_section(models.get("vit"), problems.get("vit"), image)
    with cnn_tab:
        hood.cnn_section(models.get("cnn"), problems.get("cnn"), image)
