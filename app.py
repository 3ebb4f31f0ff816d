"""vitdemo: entry point. Page config, the shared sidebar and navigation; no model logic here."""

import streamlit as st

from vitdemo.ui import lesson, shell

shell.page_setup()
pages = [
    st.Page("app_pages/draw.py", title="Draw", icon=":material/draw:", default=True),
    st.Page("app_pages/present.py", title="Present", icon=":material/co_present:"),
    st.Page("app_pages/lab.py", title="Robustness lab", icon=":material/tune:"),
    st.Page("app_pages/race.py", title="Race", icon=":material/sprint:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    st.Page("app_pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
    st.Page("app_pages/classset.py", title="Class set", icon=":material/groups:"),
    st.Page("app_pages/hood.py", title="Under the hood", icon=":material/memory:"),
]
page = st.navigation(pages)
shell.sidebar()
with st.sidebar:
    lesson.sidebar()  # the Simple/Expert switch; the lesson's step for the teacher
lesson.banner()  # the teacher's current step, on every page
page.run()
