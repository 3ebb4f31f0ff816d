"""The only Streamlit code below the pages: `shell` (page setup, sidebar, cached models and registry, the
failure guard every page runs in) and one module per page (`draw`, `train`, `evaluate`, `leaderboard`), plus
`widgets` that two pages share.

Everything here renders; the work itself (preprocessing, prediction, explanations, scoring, runs) lives in the
rest of vitdemo, and what is shown without Streamlit (names, colours, figures, tables) in vitdemo.views.
"""
