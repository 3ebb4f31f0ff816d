"""The run registry, opened once per server process and shared by every session (shell and people read it)."""

from __future__ import annotations

import streamlit as st

from vitdemo import paths
from vitdemo.runs.store import Registry


@st.cache_resource(show_spinner=False)
def _registry(home: str) -> Registry:
    return Registry(home)


def registry() -> Registry:
    """The run registry in $VITDEMO_HOME (default ./runs), opened once per process."""
    return _registry(str(paths.home().resolve()))
