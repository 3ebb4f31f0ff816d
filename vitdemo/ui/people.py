"""Who is at this browser: a display name asked for once, and the teacher's role.

Identity: a random token in the page's address (`?who=...`, st.query_params) names a row of the registry's
`people` table. Why the address and not a cookie: Streamlit can read cookies but not set them without a custom
JavaScript component, while query parameters are read and written by Streamlit itself, survive reloads and
server restarts, work in AppTest, and let one person test as two students in two tabs. The token only says whose
runs are whose; it is a classroom convenience, not a login (anyone who copies the address is that person).

With no teacher password set (one person at home) nobody is asked for a name: every browser is the teacher, and
its runs are owned by "home". With one, a student gives a name before their first run.

Teacher: unlocked with the password from the server's secrets (`teacher_password` in .streamlit/secrets.toml)
or $VITDEMO_TEACHER_PASSWORD, compared in constant time. The role lasts for the browser session and is never
put in the address, so a teacher's URL on the projector hands out no teacher rights. With no password set
(one person at home) everyone is the teacher.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

from vitdemo.runs import claims, people, queue
from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.limits import Limits
from vitdemo.runs.people import Actor, Person
from vitdemo.runs.store import Registry
from vitdemo.ui.resources import registry
from vitdemo.views.charts import literal_markdown

QUERY_KEY = "who"
ENV_PASSWORD = "VITDEMO_TEACHER_PASSWORD"
SECRET_NAME = "teacher_password"
_TOKEN = "_people_token"  # the token, also kept here: page switches may drop the address's query
_PERSON = "_people_person"
_TEACHER = "_people_teacher"


def teacher_password() -> str | None:
    """The configured teacher password, or None when there is none (no secrets file is fine)."""
    try:
        value = st.secrets[SECRET_NAME]
    except (FileNotFoundError, KeyError):  # no secrets file (StreamlitSecretNotFoundError), or no such key
        value = None
    value = value or os.environ.get(ENV_PASSWORD)
    return str(value) if value else None


def password_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def is_teacher() -> bool:
    """True once this session gave the password, and for everyone when no password is set."""
    return teacher_password() is None or st.session_state.get(_TEACHER) is True


def remember(person: Person) -> None:
    """This session is `person`: their token goes into the address (kept across reloads) and the session."""
    st.session_state[_TOKEN], st.session_state[_PERSON] = person.token, person
    if st.query_params.get(QUERY_KEY) != person.token:
        st.query_params[QUERY_KEY] = person.token


def current_person() -> Person | None:
    """The person this browser is, from the address's token (or the session's, after a page switch)."""
    token = st.query_params.get(QUERY_KEY) or st.session_state.get(_TOKEN)
    if not token:
        return None
    cached = st.session_state.get(_PERSON)
    if isinstance(cached, Person) and cached.token == token:
        person: Person | None = cached
    else:
        try:
            person = people.by_token(registry(), token)
        except RegistryError:
            person = None
    if person is not None:
        remember(person)
    return person


def actor() -> Actor | None:
    """Who acts on the queue from this browser; None for a student who has not given a name yet (with no
    teacher password set, the nameless `people.HOME`, who is the teacher)."""
    person = current_person()
    if person is not None:
        return person.actor(teacher=is_teacher())
    return people.HOME if teacher_password() is None else None


def _save_name() -> None:
    try:
        remember(people.register(registry(), st.session_state.get("who_name", "")))
    except RegistryError as exc:  # a taken or empty name, or a registry that cannot be written
        st.session_state["_people_problem"] = exc.public


def name_form() -> None:
    """Ask for a display name (once: the address keeps it)."""
    with st.container(border=True):
        st.markdown("**What's your name?** It shows next to your runs in the class queue.")
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        c1.text_input("Your name", key="who_name", max_chars=people.MAX_NAME, placeholder="e.g. Ana")
        c2.button("That's me", key="who_save", on_click=_save_name, width="stretch")
        problem = st.session_state.pop("_people_problem", None)
        if problem:  # it repeats the name typed: plain text
            st.error(literal_markdown(problem), icon=":material/error:")
        st.caption("This page's address now remembers you: keep the tab, or bookmark it.")


def _unlock() -> None:
    expected = teacher_password()
    given = st.session_state.get("teacher_pw", "")
    st.session_state["teacher_pw"] = ""
    if expected is not None and password_matches(given, expected):
        st.session_state[_TEACHER] = True
    else:
        st.session_state["_teacher_problem"] = "That is not the teacher password."


def _lock() -> None:
    st.session_state[_TEACHER] = False


def sidebar_identity() -> None:
    """In the sidebar: who you are, and the teacher's unlock (only where a password is set)."""
    person = current_person()
    teacher = is_teacher()
    if person is not None:
        role = " · teacher" if teacher and teacher_password() is not None else ""
        st.caption(f"You: {literal_markdown(person.name)}{role}")
    if teacher_password() is None:
        return
    if teacher:
        st.button("Leave teacher mode", key="teacher_lock", on_click=_lock, icon=":material/lock:")
        return
    with st.expander("Teacher", icon=":material/school:"):
        st.text_input("Teacher password", type="password", key="teacher_pw")
        st.button("Unlock", key="teacher_unlock", on_click=_unlock)
        problem = st.session_state.pop("_teacher_problem", None)
        if problem:
            st.error(problem)


# --- the teacher's class settings ----------------------------------------------------------------------------
def _set_pause() -> None:
    acting = actor()
    if acting is not None:
        try:
            queue.set_paused(registry(), bool(st.session_state.get("teacher_pause")), acting)
        except RegistryError as exc:
            st.session_state["_teacher_problem"] = exc.public


def _save_limits() -> None:
    acting = actor()
    values = [st.session_state.get(k) for k in ("limit_runs", "limit_params", "limit_epochs", "limit_minutes")]
    try:
        if acting is None:
            raise people.NotAllowed("Only the teacher can change the class limits.")
        limits = Limits(int(values[0]), int(values[1]), int(values[2]), float(values[3]))
        queue.set_limits(registry(), limits, acting)
    except (RegistryError, ValueError, TypeError) as exc:
        st.session_state["_teacher_problem"] = getattr(exc, "public", str(exc))


def class_settings(reg: Registry) -> None:
    """For the teacher: pause the queue, and the limits of every student's new runs."""
    with st.expander("Class settings (teacher)", icon=":material/school:"):
        st.session_state["teacher_pause"] = claims.is_paused(reg)  # what the registry says, whoever changed it
        st.toggle(
            "Pause the queue", key="teacher_pause", on_change=_set_pause,
            help="Workers start no new run while paused; runs already training go on.",
        )  # fmt: skip
        limits = queue.get_limits(reg)
        c1, c2 = st.columns(2)
        c1.number_input("Runs in the queue per student", min_value=0, step=1, value=limits.max_active_runs,
                        key="limit_runs")  # fmt: skip
        c2.number_input("Largest model (parameters)", min_value=0, step=100_000, value=limits.max_params,
                        key="limit_params")  # fmt: skip
        c1.number_input("Most epochs", min_value=0, step=1, value=limits.max_epochs, key="limit_epochs")
        c2.number_input("Longest run (estimated minutes)", min_value=0.0, step=1.0, value=float(limits.max_minutes),
                        key="limit_minutes")  # fmt: skip
        st.button("Save limits", key="limit_save", on_click=_save_limits, icon=":material/save:")
        st.caption("0 means no limit. Limits apply to the students' new runs, never to yours.")
        problem = st.session_state.pop("_teacher_problem", None)
        if problem:
            st.error(problem, icon=":material/error:")
