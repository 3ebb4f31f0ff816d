"""Simple or Expert: which words this browser session reads. Simple (plain words, no parameter counts, timings or
method names) is the default for students; Expert is the whole app. A toggle in the sidebar, kept for the
session; a new session starts in the class's default, which the teacher sets (`vitdemo.lesson.state`)."""

from __future__ import annotations

import sqlite3

import streamlit as st

from vitdemo.lesson import state
from vitdemo.runs.dbfile import RegistryError
from vitdemo.ui.resources import registry
from vitdemo.views.words import say

EXPERT_KEY = "view_expert"  # the sidebar toggle's key: True in the Expert view
_KEPT = "_view_expert"  # the choice, kept when a page shows no sidebar toggle (widget state is dropped then)


def _class_default() -> bool:
    try:
        return state.class_view(registry()) == "expert"
    except (RegistryError, sqlite3.Error, OSError):  # the page says what is wrong with the registry
        return False


def expert() -> bool:
    """True when this session reads the Expert view (every figure and technical name)."""
    if EXPERT_KEY in st.session_state:
        return bool(st.session_state[EXPERT_KEY])
    if _KEPT not in st.session_state:
        st.session_state[_KEPT] = _class_default()
    return bool(st.session_state[_KEPT])


def simple() -> bool:
    return not expert()


def _keep() -> None:
    st.session_state[_KEPT] = bool(st.session_state.get(EXPERT_KEY))


def toggle() -> None:
    """The sidebar's switch between the Simple and the Expert view."""
    st.session_state.setdefault(EXPERT_KEY, expert())
    st.toggle(
        "Expert view", key=EXPERT_KEY, on_change=_keep,
        help=say("lesson", "view_help"),
    )  # fmt: skip


def pick(plain: str, technical: str) -> str:
    """`plain` in the Simple view, `technical` in the Expert view."""
    return technical if expert() else plain


def tip(plain: str, technical: str) -> str:
    """A help tooltip: the technical words in the Expert view; in the Simple view the plain sentence first, and
    the technical names after it, for whoever wants them."""
    return technical if expert() else f"{plain}\n\nIn technical words: {technical}"
