"""Under the hood: what the ViT and the CNN compute for one input, layer by layer."""

import streamlit as st

from vitdemo.ui import hood, shell

with shell.stop_on_failure():
    selection = shell.selection()
    models, problems = shell.load_models(selection)
    st.markdown("## Under the hood")
    image, what = hood.current_input(selection.dataset)
    if image is None:
        st.stop()
    st.caption(f"Looking inside both models with {what}.")
    vit_tab, cnn_tab = st.tabs(["ViT: patches and attention", "CNN: feature maps and filters"])
    with vit_tab:
        hood.vit_section(models.get("vit"), problems.get("vit"), image)
    with cnn_tab:
        hood.cnn_section(models.get("cnn"), problems.get("cnn"), image)
