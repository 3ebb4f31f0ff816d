"""The teacher's class settings on the Train page: pause the queue, the limits (per student and class-wide), who
joined (rename, merge or block a name) and the wrong teacher-password guesses counted so far.

Every change goes through a function that checks the actor itself (`vitdemo.runs.queue`, `vitdemo.runs.people`):
this module only asks and shows.
"""

from __future__ import annotations

import streamlit as st

from vitdemo.classset import store as classset
from vitdemo.runs import claims, people, queue
from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.limits import Limits
from vitdemo.runs.store import Registry
from vitdemo.ui import people as who
from vitdemo.ui.classset import store as classset_store
from vitdemo.ui.resources import registry
from vitdemo.views import roster as views
from vitdemo.views.charts import literal_markdown

_PROBLEM = "_classroom_problem"
_NOTICE = "_classroom_notice"
LIMIT_KEYS = {  # the Limits field -> its widget
    "max_active_runs": "limit_runs",
    "max_params": "limit_params",
    "max_epochs": "limit_epochs",
    "max_minutes": "limit_minutes",
    "max_class_runs": "limit_class_runs",
    "max_names_per_device": "limit_names",
}


def _teacher() -> people.Actor:
    acting = who.actor()
    if acting is None or not acting.teacher:
        raise people.NotAllowed("Only the teacher can change the class settings.")
    return acting


def _act(change, notice: str | None = None) -> None:
    """Run `change(teacher)`; its refusal (one sentence) or `notice` is shown on the next run."""
    try:
        change(_teacher())
    except (RegistryError, ValueError, TypeError) as exc:
        st.session_state[_PROBLEM] = getattr(exc, "public", str(exc))
        return
    if notice:
        st.session_state[_NOTICE] = notice


def _set_pause() -> None:
    _act(lambda t: queue.set_paused(registry(), bool(st.session_state.get("teacher_pause")), t))


def _save_limits() -> None:
    values = {field: st.session_state.get(key) for field, key in LIMIT_KEYS.items()}
    limits = Limits(**{f: (float(v) if f == "max_minutes" else int(v)) for f, v in values.items() if v is not None})
    _act(lambda t: queue.set_limits(registry(), limits, t), "The class limits are saved.")


def _rename(person_id: int) -> None:
    name = st.session_state.get("roster_name", "")
    _act(lambda t: people.rename(registry(), person_id, name, t), "Renamed.")


def _block(person_id: int, blocked: bool) -> None:
    _act(lambda t: people.set_blocked(registry(), person_id, blocked, t), "Blocked." if blocked else "Unblocked.")


def _merge(source_id: int, into: people.Member | None) -> None:
    def change(t: people.Actor) -> None:
        if into is None:
            raise people.NameProblem("Pick the name to merge into.")
        people.merge(registry(), source_id, into.id, t)
        classset.reassign(classset_store(), people.person_owner(source_id), people.person_owner(into.id), into.name)

    _act(change, "Merged: that browser is now the other name, with its runs and drawings.")


def _limits(reg: Registry) -> None:
    limits = queue.get_limits(reg)
    c1, c2 = st.columns(2)
    c1.number_input("Runs in the queue per student", min_value=0, step=1, value=limits.max_active_runs,
                    key="limit_runs")  # fmt: skip
    c2.number_input("Largest model (parameters)", min_value=0, step=100_000, value=limits.max_params,
                    key="limit_params")  # fmt: skip
    c1.number_input("Most epochs", min_value=0, step=1, value=limits.max_epochs, key="limit_epochs")
    c2.number_input("Longest run (estimated minutes)", min_value=0.0, step=1.0, value=float(limits.max_minutes),
                    key="limit_minutes")  # fmt: skip
    c1.number_input("Runs in the queue, whole class", min_value=0, step=1, value=limits.max_class_runs,
                    key="limit_class_runs", help="All students' runs queued or running at once.")  # fmt: skip
    c2.number_input("Names per device", min_value=0, step=1, value=limits.max_names_per_device, key="limit_names",
                    help="How many names one computer or tablet (its network address) may give.")  # fmt: skip
    st.button("Save limits", key="limit_save", on_click=_save_limits, icon=":material/save:")
    st.caption("0 means no limit. Limits apply to the students' new runs, never to yours.")


def _roster(reg: Registry) -> None:
    members = people.roster(reg)
    st.markdown("**Who joined**")
    if not members:
        st.caption("Nobody has given a name yet.")
        return
    st.dataframe(views.roster_frame(members), hide_index=True, key="roster_table")
    by_id = {m.id: m for m in members}
    pick = st.selectbox("Name", list(by_id), format_func=lambda i: by_id[i].name, key="roster_pick")
    if pick is None:
        return
    member = by_id[pick]
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    c1.text_input("New name", key="roster_name", max_chars=people.MAX_NAME)
    c2.button("Rename", key="roster_rename", on_click=_rename, args=(pick,), width="stretch")
    others = [m for m in members if m.id != pick]
    c1.selectbox("Merge into (the same student)", others, format_func=lambda m: m.name, key="roster_into",
                 index=None, placeholder="another name")  # fmt: skip
    c2.button("Merge", key="roster_merge", on_click=_merge, width="stretch",
              args=(pick, st.session_state.get("roster_into")))  # fmt: skip
    label = "Unblock" if member.blocked else "Block"
    st.button(f"{label} {member.name}", key="roster_block", on_click=_block, args=(pick, not member.blocked),
              icon=":material/block:", help="A blocked name queues no run and submits no drawing.")  # fmt: skip


def class_settings(reg: Registry) -> None:
    """For the teacher: pause the queue, the limits of every student's new runs, who joined, and the wrong
    teacher-password guesses so far."""
    with st.expander("Class settings (teacher)", icon=":material/school:"):
        st.session_state["teacher_pause"] = claims.is_paused(reg)  # what the registry says, whoever changed it
        st.toggle(
            "Pause the queue", key="teacher_pause", on_change=_set_pause,
            help="Workers start no new run while paused; runs already training go on.",
        )  # fmt: skip
        _limits(reg)
        _roster(reg)
        st.caption(views.guesses_text(who.guard().stats()))
        problem, notice = st.session_state.pop(_PROBLEM, None), st.session_state.pop(_NOTICE, None)
        if problem:  # it may repeat a name: plain text
            st.error(literal_markdown(problem), icon=":material/error:")
        elif notice:
            st.success(notice)
