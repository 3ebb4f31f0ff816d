"""The guided lesson on every page: a small banner with the teacher's current step, one plain sentence and a
link to the step's page, refreshed in a fragment (one small read every LESSON_EVERY_S, no page reload); for the
teacher, Back and Next beside it, and in the sidebar the step and the view new sessions start in. Every change
goes through `vitdemo.lesson.state`, which checks on the server that the actor is the teacher."""

from __future__ import annotations

import sqlite3

import streamlit as st

from vitdemo.lesson import state, steps
from vitdemo.runs import people
from vitdemo.runs.dbfile import RegistryError
from vitdemo.ui import people as who
from vitdemo.ui import view
from vitdemo.ui.resources import registry

STORE_ERRORS = (RegistryError, sqlite3.Error, OSError)  # a registry that cannot be read (as vitdemo.ui.shell)

# Small type, and on a phone clear of Streamlit's header bar (the page's own top padding is smaller than it).
BANNER_CSS = """<style>
.st-key-vd_lesson p {font-size: 0.95rem; line-height: 1.3; margin: 0;}
@media (max-width: 640px) { .st-key-vd_lesson {margin-top: 1.9rem;} .st-key-vd_lesson p {font-size: 0.85rem;} }
</style>"""
LESSON_EVERY_S = 4.0  # students see the teacher's new step within this many seconds
NO_LESSON = ""  # the sidebar picker's value for "no lesson running"
_PROBLEM = "_lesson_problem"
VIEW_NAMES = {"simple": "Simple", "expert": "Expert"}


def _actor() -> people.Actor | None:
    """Who asks to change the lesson: the named person, or an unlocked teacher who gave no name."""
    acting = who.actor()
    if acting is None and who.is_teacher():
        return people.Actor("teacher", "the teacher", teacher=True)
    return acting


def is_teacher() -> bool:
    acting = _actor()
    return acting is not None and acting.teacher


def _move(key: str | None) -> bool:
    """Ask the server to move the class to step `key`; a refusal is kept to show. True when it moved."""
    acting = _actor()
    try:
        if acting is None:
            raise people.NotAllowed("Only the teacher can move the lesson on.")
        state.set_step(registry(), key, acting)
    except (RegistryError, ValueError) as exc:
        st.session_state[_PROBLEM] = getattr(exc, "public", str(exc))
        return False
    return True


def _current() -> steps.Step | None:
    try:
        return state.current_step(registry())
    except STORE_ERRORS:  # the page itself says what is wrong with the registry, once
        return None


def _banner() -> None:
    current = _current()
    problem = st.session_state.pop(_PROBLEM, None)
    if problem:
        st.error(problem, icon=":material/block:")
    if current is None:
        return
    st.html(BANNER_CSS)
    with st.container(horizontal=True, vertical_alignment="center", gap="small", key="vd_lesson"):
        st.markdown(f"**{steps.banner_text(current)}**", width="content")
        st.page_link(current.page, label=f"Go to {current.page_name}", icon=":material/arrow_forward:")
        if is_teacher():
            _teacher_buttons(current)


def _teacher_buttons(current: steps.Step) -> None:
    back, ahead = steps.previous_step(current), steps.next_step(current)
    pressed = back is not None and st.button("Back", key="lesson_back", icon=":material/arrow_back:")
    if pressed and back is not None and _move(back.key):
        st.switch_page(back.page)
    label = f"Next: {ahead.title}" if ahead is not None else "End the lesson"
    if st.button(label, key="lesson_next", icon=":material/skip_next:", type="primary"):
        if _move(ahead.key if ahead is not None else None) and ahead is not None:
            st.switch_page(ahead.page)
        st.rerun()


def banner() -> None:
    """The lesson's banner at the top of every page (nothing while no lesson runs)."""
    st.fragment(_banner, run_every=LESSON_EVERY_S)()


def _set_step() -> None:
    picked = st.session_state.get("lesson_pick", NO_LESSON)
    _move(picked or None)


def _set_view() -> None:
    acting = _actor()
    try:
        if acting is None:
            raise people.NotAllowed("Only the teacher can choose the class's view.")
        state.set_class_view(registry(), str(st.session_state.get("lesson_view")), acting)
    except (RegistryError, ValueError) as exc:
        st.session_state[_PROBLEM] = getattr(exc, "public", str(exc))


def sidebar() -> None:
    """In the sidebar: the Simple/Expert switch for everyone; for the teacher, the lesson's step and the class's
    default view."""
    view.toggle()
    if not is_teacher():
        return
    with st.expander("Lesson (teacher)", icon=":material/school:"):
        try:
            reg = registry()
            current, default = state.current_step(reg), state.class_view(reg)
        except STORE_ERRORS:  # the page itself says what is wrong with the registry, once
            st.caption("The lesson's settings cannot be read now.")
            return
        options = [NO_LESSON, *(s.key for s in steps.STEPS)]
        st.session_state["lesson_pick"] = current.key if current is not None else NO_LESSON
        st.selectbox(
            "Step the class sees", options, key="lesson_pick", on_change=_set_step,
            format_func=lambda k: f"{steps.number(steps.BY_KEY[k])}. {steps.BY_KEY[k].title}" if k else "No lesson",
            help="Every student's page shows this step, with a link to its page.",
        )  # fmt: skip
        st.session_state["lesson_view"] = default
        st.radio(
            "Students start in", list(VIEW_NAMES), format_func=VIEW_NAMES.get, key="lesson_view",
            on_change=_set_view, horizontal=True,
            help="The view a student's page opens in. Each student can still switch it in their sidebar.",
        )  # fmt: skip
