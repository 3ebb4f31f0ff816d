"""Presentation without Streamlit: figures, tables, colour maps, form <-> config, display names.

Everything here is plain Python over numpy, pandas and plotly, tested without a browser; `vitdemo.ui` renders it.
"""
