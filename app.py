"""vitdemo: entry point. Page config, the shared sidebar and navigation; no model logic here."""

import streamlit as st

from vitdemo.ui import shell

shell.page_setup()
pages = [
    st.Page("pages/draw.py", title="Draw", icon=":material/draw:", default=True),
    st.Page("pages/present.py", title="Present", icon=":material/co_present:"),
    st.Page("pages/lab.py", title="Robustness lab", icon=":material/tune:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
    st.Page("pages/classset.py", title="Class set", icon=":material/groups:"),
    st.Page("pages/hood.py", title="Under the hood", icon=":material/memory:"),
]
page = st.navigation(pages)
shell.sidebar()
page.run()
