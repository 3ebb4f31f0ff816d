"""Who is at this browser: a display name asked for once, and the teacher's role.

Identity: a random token in the page's address (`?who=...`, st.query_params) names a row of the registry's
`people` table. Why the address and not a cookie: Streamlit can read cookies but not set them without a custom
JavaScript component, while query parameters are read and written by Streamlit itself, survive reloads and
server restarts, work in AppTest, and let one person test as two students in two tabs. The token only says whose
runs are whose; it is a classroom convenience, not a login (anyone who copies the address is that person). The
person is read from the registry on every run, so a name the teacher renamed, merged or blocked shows at once.
A second name from a browser that has one renames it (`vitdemo.runs.people.rename`): one browser, one person.

Teacher: locked by default (`vitdemo.runs.teacher`): the password from the server's secrets (`teacher_password`
in .streamlit/secrets.toml) or $VITDEMO_TEACHER_PASSWORD; with none, on a server other devices can reach, a
one-time code printed in the terminal that started the app (with a teacher link, `?teacher=<code>`, taken out of
the address once read); only a server listening on 127.0.0.1 makes everyone the teacher (one person at home, whose
runs are owned by "home"). Every guess goes through the process's `GuessGuard`: wrong ones are counted and slow
the next ones down. The role lasts for the browser session and is never put in the address, so a teacher's URL
on the projector hands out no teacher rights.
"""

from __future__ import annotations

import os
import secrets

import streamlit as st

from vitdemo.runs import people, queue, teacher
from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.people import Actor, Person
from vitdemo.runs.teacher import GuessGuard, TeacherAccess
from vitdemo.ui.resources import registry
from vitdemo.views import join
from vitdemo.views.charts import literal_markdown

QUERY_KEY = "who"
TEACHER_QUERY = "teacher"  # the teacher link's code: read once, then taken out of the address
ENV_PASSWORD = "VITDEMO_TEACHER_PASSWORD"
SECRET_NAME = "teacher_password"
_TOKEN = "_people_token"  # the token, also kept here: page switches may drop the address's query
_TEACHER = "_people_teacher"
_SESSION = "_people_session"  # this browser session's key for the guess guard


def teacher_password() -> str | None:
    """The configured teacher password, or None when there is none (no secrets file is fine)."""
    try:
        value = st.secrets[SECRET_NAME]
    except (FileNotFoundError, KeyError):  # no secrets file (StreamlitSecretNotFoundError), or no such key
        value = None
    value = value or os.environ.get(ENV_PASSWORD)
    return str(value) if value else None


@st.cache_resource(show_spinner=False)
def _process_code() -> str:
    """This server process's one-time teacher code (made on first use, printed once)."""
    return teacher.new_code()


@st.cache_resource(show_spinner=False)
def guard() -> GuessGuard:
    """The server's count of wrong teacher guesses, shared by every session."""
    return GuessGuard()


@st.cache_resource(show_spinner=False)
def _announce(code: str) -> bool:
    """Print the code and the teacher link in the terminal that started the server, once per code."""
    port, base = int(st.get_option("server.port")), st.get_option("server.baseUrlPath") or ""
    link = f"{join.join_url(join.lan_address(), port, base)}?{TEACHER_QUERY}={code}"
    print(teacher.announcement(code, link), flush=True)
    return True


def teacher_access() -> TeacherAccess:
    """What unlocks the teacher's role on this server (the password, the one-time code, or nothing at all)."""
    access = teacher.decide(teacher_password(), st.get_option("server.address"), _process_code)
    if access.source == "code" and access.secret is not None:
        _announce(access.secret)
    return access


def is_teacher() -> bool:
    """True once this session unlocked the role, and for everyone on a server only this computer reaches."""
    return teacher_access().open or st.session_state.get(_TEACHER) is True


def remember(person: Person) -> None:
    """This session is `person`: their token goes into the address (kept across reloads) and the session."""
    st.session_state[_TOKEN] = person.token
    if st.query_params.get(QUERY_KEY) != person.token:
        st.query_params[QUERY_KEY] = person.token


def current_person() -> Person | None:
    """The person this browser is, from the address's token (or the session's, after a page switch), read
    from the registry (a renamed, merged or blocked name shows at once)."""
    token = st.query_params.get(QUERY_KEY) or st.session_state.get(_TOKEN)
    if not token:
        return None
    try:
        person = people.by_token(registry(), token)
    except RegistryError:
        person = None
    if person is not None:
        remember(person)
    return person


def actor() -> Actor | None:
    """Who acts on the queue from this browser; None for a student who has not given a name yet (on a server
    only this computer reaches, the nameless `people.HOME`, who is the teacher)."""
    person = current_person()
    if person is not None:
        return person.actor(teacher=is_teacher())
    return people.HOME if teacher_access().open else None


def _save_name(key: str) -> None:
    """The name typed in `key`: a new person, or the new name of the person this browser already is."""
    reg, person, name = registry(), current_person(), st.session_state.get(key, "")
    try:
        if person is not None:
            remember(people.rename(reg, person.id, name, person.actor(teacher=is_teacher())))
        else:
            most = 0 if is_teacher() else queue.get_limits(reg).max_names_per_device
            remember(people.register(reg, name, address=_device_address(), max_per_address=most))
    except RegistryError as exc:  # a taken, refused or empty name, or a registry that cannot be written
        st.session_state["_people_problem"] = exc.public


LOCAL_DEVICE = "this computer"  # the device address of browsers on the server's own computer


def _device_address() -> str | None:
    """The browser's network address as the server sees it: Streamlit says None for this computer's own
    browsers (127.0.0.1), which are one device too; None where there is no browser at all (AppTest)."""
    address = st.context.ip_address
    if isinstance(address, str) and address:
        return address[:64]
    return LOCAL_DEVICE if st.context.headers.get("Host") else None


def _name_problem() -> None:
    problem = st.session_state.pop("_people_problem", None)
    if problem:  # it repeats the name typed: plain text
        st.error(literal_markdown(problem), icon=":material/error:")


def name_form() -> None:
    """Ask for a display name (once: the address keeps it)."""
    with st.container(border=True):
        st.markdown("**What's your name?** It shows next to your runs in the class queue.")
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        c1.text_input("Your name", key="who_name", max_chars=people.MAX_NAME, placeholder="e.g. Ana")
        c2.button("That's me", key="who_save", on_click=_save_name, args=("who_name",), width="stretch")
        _name_problem()
        st.caption("This page's address now remembers you: keep the tab, or bookmark it.")


def _session_key() -> str:
    if _SESSION not in st.session_state:
        st.session_state[_SESSION] = secrets.token_hex(8)
    return st.session_state[_SESSION]


def _try_unlock(given: str) -> None:
    access = teacher_access()
    if access.open:
        return
    verdict = guard().attempt(_session_key(), str(given), access)
    if verdict.unlocked:
        st.session_state[_TEACHER] = True
    else:
        st.session_state["_teacher_problem"] = verdict.message


def _unlock() -> None:
    given = st.session_state.get("teacher_pw", "")
    st.session_state["teacher_pw"] = ""
    _try_unlock(given)


def _teacher_link() -> None:
    """The teacher link (`?teacher=<code>`): one guess like any other, then out of the address."""
    if TEACHER_QUERY not in st.query_params:
        return
    given = st.query_params.get(TEACHER_QUERY) or ""
    del st.query_params[TEACHER_QUERY]
    if teacher_access().source == "code" and not is_teacher():
        _try_unlock(given)


def _lock() -> None:
    st.session_state[_TEACHER] = False


def _identity(person: Person, access: TeacherAccess) -> None:
    role = " · teacher" if is_teacher() and not access.open else ""
    blocked = " · blocked by the teacher" if person.blocked else ""
    st.caption(f"You: {literal_markdown(person.name)}{role}{blocked}")
    with st.popover("Change my name", icon=":material/badge:"):
        st.text_input("New name", key="who_rename", max_chars=people.MAX_NAME)
        st.button("Rename me", key="who_rename_save", on_click=_save_name, args=("who_rename",))
        _name_problem()


def sidebar_identity() -> None:
    """In the sidebar: who you are (and a new name, which replaces it), and the teacher's unlock (a password or
    the code printed in the terminal; nothing on a server only this computer reaches)."""
    _teacher_link()
    access, person = teacher_access(), current_person()
    if person is not None:
        _identity(person, access)
    if access.open:
        return
    if is_teacher():
        st.button("Leave teacher mode", key="teacher_lock", on_click=_lock, icon=":material/lock:")
        return
    with st.expander("Teacher", icon=":material/school:"):
        if access.source == "code":
            label, helptext = "Teacher code", "The code printed in the terminal that started the app."
        else:
            label, helptext = "Teacher password", None
        st.text_input(label, type="password", key="teacher_pw", max_chars=teacher.MAX_SECRET_CHARS, help=helptext)
        st.button("Unlock", key="teacher_unlock", on_click=_unlock)
        problem = st.session_state.pop("_teacher_problem", None)
        if problem:
            st.error(problem)
