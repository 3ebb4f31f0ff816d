"""The Race page's widgets: the class race (one per server, steered by the teacher, watched read-only by every
student), a student's own race (one per session, under the teacher's cap), and Present mode (the same race laid
out for a 1280x720 projector, sidebar folded away).

Everything that moves is in one fragment refreshed every RACE_EVERY_S: the buttons, the figures, the chart, the
watched digits and the knobs, so a knob turn reruns only the fragment and shows on the chart in the same refresh.
The chart is built once per race version and shared by every session that shows it (`_figure`).
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

import plotly.graph_objects as go
import streamlit as st

from vitdemo.data import class_names
from vitdemo.race.engine import Race
from vitdemo.race.knobs import Knobs, clamp_train_size
from vitdemo.race.limits import RaceCap, Roster, class_share, student_gate
from vitdemo.race.save import NothingToSave, save_race
from vitdemo.race.state import RaceView
from vitdemo.runs.dbfile import RegistryError
from vitdemo.ui import people, race_knobs
from vitdemo.ui.shell import data_dir, registry, stop_on_failure
from vitdemo.ui.view import pick
from vitdemo.ui.view import simple as simple_view
from vitdemo.ui.watching import watched_images
from vitdemo.views import learning, race_words
from vitdemo.views import race as views
from vitdemo.views.colors import MODEL_COLORS
from vitdemo.views.names import KINDS
from vitdemo.views.words import say

RACE_EVERY_S = 1.0  # the live fragment's refresh: a knob turn or a new point shows within a second
WATCH_EVERY_S = 2.0  # ... on a student's device watching the class race: 30 of them cost the race half as much
PLAY_WAIT_S = 0.9  # after Play, a render waits this long at most for the first trained point
TURN_WAIT_S = 0.5  # after a knob turn, for its mark
PRESENT_KEY = "race_present"
MODE_KEY = "race_mode"
AXIS_KEY = "race_axis"
CHART_PX = 460
PRESENT_CHART_PX = {"small": 330, "large": 560}  # Present mode at 1280x720 and at 1920x1080 (the CSS picks one)
_MINE = "_race_mine"  # this session's own race (a student's)
_PLAYED = "_race_played"
_NOTICE = "_race_notice"
_SAVING = "_race_saving"  # Save was pressed: waiting for a student's name, then saving
MODES = {"class": "The class race", "mine": "My own race"}
CSS = """
<style>
.vd-race-head {font-size: 1.05rem; margin: 0; white-space: nowrap;}
.vd-race-head b {font-size: 1.35rem;}
.vd-race-detail {font-size: 0.85rem; opacity: 0.8; margin: 0 0 0.2rem 0; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis;}
.vd-race-status {font-size: 1.05rem; font-weight: 600; margin: 0;}
.vd-race-knobs {border-collapse: collapse; width: 100%; font-size: 0.95rem;}
.vd-race-knobs td {padding: 0.25rem 0.4rem; border-bottom: 1px solid #262b36;}
.st-key-vd_race_buttons [data-testid="stColumn"] {container-type: inline-size;}
@container (max-width: 118px) {  /* icons only; the label stays the button's name for screen readers */
  .st-key-vd_race_buttons button p {position: absolute; width: 1px; height: 1px; overflow: hidden;
    clip-path: inset(50%); white-space: nowrap;}
}
.st-key-vd_race [data-testid="stHorizontalBlock"]:has(.vd-watch) {gap: 1.2rem;}
[data-testid="stMainBlockContainer"]:has(.st-key-vd_race_present) {padding: 3.3rem 1.2rem 0 1.2rem;}
.st-key-vd_race_present {--vd-u: min(1vh, 0.6vw);}
.st-key-vd_race_present [data-testid="stVerticalBlock"] {gap: 0.3rem;}
.st-key-vd_race_present .vd-race-head {font-size: calc(2.2 * var(--vd-u));}
.st-key-vd_race_present .vd-race-head b {font-size: calc(2.9 * var(--vd-u));}
.st-key-vd_race_present .vd-race-detail {font-size: calc(1.75 * var(--vd-u));}
.st-key-vd_race_present .vd-race-status {font-size: calc(2.3 * var(--vd-u));}
.st-key-vd_race_present [data-testid="stSlider"] {padding-bottom: 0;}
.st-key-vd_race_present [data-testid="stAlert"] p {font-size: calc(1.9 * var(--vd-u));}
.st-key-vd_race_chart_large {display: none;}
@media (min-width: 1600px) and (min-height: 960px) {
  .st-key-vd_race_chart_small {display: none;}
  .st-key-vd_race_chart_large {display: block;}
}
</style>
"""


class Shared:
    """The server's class race (made when the Race page is first opened: a Present page never starts one) and
    the roster of students' races."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._race: Race | None = None
        self.roster = Roster()

    def class_race(self, data: str) -> Race:
        with self._lock:
            if self._race is None:
                self._race = Race(data_dir=data, share=class_share(registry()))
            return self._race

    @property
    def current(self) -> Race | None:
        return self._race


@st.cache_resource(show_spinner=False)
def shared() -> Shared:
    return Shared()


@dataclass(frozen=True)
class Seat:
    """The race this session shows, and what it may do with it."""

    race: Race
    control: bool  # steer it (the teacher's class race, or a student's own)
    mine: bool  # a student's own race: the teacher's cap applies
    cap: RaceCap | None = None


# --- which race ------------------------------------------------------------------------------------------------
def present_toggle() -> bool:
    """Present mode, kept in the address (`?present=1`) so the projector's tab reopens in it: the teacher's."""
    if not people.is_teacher():
        return False
    if PRESENT_KEY not in st.session_state:
        st.session_state[PRESENT_KEY] = st.query_params.get("present") == "1"
    present = st.toggle("Present mode", key=PRESENT_KEY, help="Laid out for a projector: 1280x720, no sidebar")
    if present:
        st.query_params["present"] = "1"
    elif "present" in st.query_params:
        del st.query_params["present"]
    return present


def _my_race(cap: RaceCap) -> Race:
    race = st.session_state.get(_MINE)
    if not isinstance(race, Race):
        key = uuid.uuid4().hex
        knobs = clamp_train_size(Knobs(), cap.max_images)
        race = Race(knobs=knobs, data_dir=data_dir(), gate=student_gate(key, registry(), shared().roster))
        st.session_state[_MINE] = race
    return race


def seat() -> Seat:
    """The teacher steers the class race; a student watches it, or picks their own race."""
    everyone = shared().class_race(data_dir())
    if people.is_teacher():
        return Seat(everyone, control=True, mine=False)
    mode = st.segmented_control("Which race", list(MODES), format_func=MODES.get, key=MODE_KEY, default="class",
                                required=True, label_visibility="collapsed")  # fmt: skip
    if mode != "mine":
        return Seat(everyone, control=False, mine=False)
    cap = race_knobs.student_cap()
    if cap.student_races == 0 and not isinstance(st.session_state.get(_MINE), Race):
        st.info(
            "The teacher has switched students' own races off for now: watch the class race.", icon=":material/block:"
        )
        return Seat(everyone, control=False, mine=False)
    return Seat(_my_race(cap), control=True, mine=True, cap=cap)


# --- the live fragment -----------------------------------------------------------------------------------------
def live(where: Seat, present: bool) -> None:
    """Buttons, figures, the chart, the watched digits and the knobs, refreshed every RACE_EVERY_S."""
    st.html(CSS)
    st.fragment(_live, run_every=RACE_EVERY_S if where.control else WATCH_EVERY_S)(where, present)


def _live(where: Seat, present: bool) -> None:
    with stop_on_failure(), st.container(key="vd_race_present" if present else "vd_race"):
        race = where.race
        race.touch()
        view = _settled(race)
        _controls(where, view)
        left, right = st.columns([2.6, 1] if present else [2.1, 1], gap="medium")
        with left:
            _chart(race, view, present)
            _sides(view)
            _note(view)
        with right:
            if where.control:
                _knobs(where, view, present)
            else:  # a table, not a dozen disabled widgets: 30 devices refresh it (measured: README)
                st.html(views.knobs_html(view, plain=simple_view()))
                st.caption(pick(say("race", "watching"),
                                "The teacher's race: you are watching it. Pick *My own race* above to steer one yourself."))  # fmt: skip


def _knobs(where: Seat, view: RaceView, present: bool) -> None:
    cap = where.cap.max_images if where.cap is not None else 0
    race_knobs.training_knobs(where.race, view, disabled=False, max_images=cap)
    with st.popover("Models and data", icon=":material/tune:") if present else st.container(border=True):
        race_knobs.setup_knobs(where.race, view, disabled=False)


def _trained_since(view: RaceView, t: float) -> bool:
    return any(p.val_acc is not None and p.step > 0 and p.t > t for s in view.sides for p in s.points[-3:])


def _settled(race: Race) -> RaceView:
    """The view to draw: after a knob turn in this session, once its mark is in (TURN_WAIT_S at most); after Play,
    once the first trained point is (PLAY_WAIT_S at most)."""
    marks = race_knobs.expected(race)
    if marks is not None:
        return race.wait(lambda v: len(v.marks) >= marks or v.state == "failed", TURN_WAIT_S)
    if st.session_state.pop(_PLAYED, None) == id(race):
        t = race.view.t
        return race.wait(lambda v: v.state in ("waiting", "failed") or _trained_since(v, t), PLAY_WAIT_S)
    return race.view


def _play(race: Race) -> None:
    race.play()
    st.session_state[_PLAYED] = id(race)


def _controls(where: Seat, view: RaceView) -> None:
    """Play or Pause, Step, Reset and Save (for whoever steers), what the race is doing, and the x axis."""
    status = f'<p class="vd-race-status">{_escape(views.status_text(view))}</p>'
    if not where.control:
        text, axis = st.columns([3, 2], vertical_alignment="center")
        text.markdown(status, unsafe_allow_html=True)
    else:
        with st.container(key="vd_race_buttons"):  # narrow columns show the buttons' icons only (CSS)
            *buttons, text, axis = st.columns([1, 1, 1, 1, 2.7, 2.4], vertical_alignment="center")
        _buttons(where.race, view, buttons)
        text.markdown(status, unsafe_allow_html=True)
    names = race_words.axis_names() if simple_view() else views.AXES
    axis.segmented_control("x axis", list(views.AXES), format_func=names.get, key=AXIS_KEY, default="seconds",
                           required=True, label_visibility="collapsed")  # fmt: skip
    notice = st.session_state.pop(_NOTICE, None)
    if notice:
        st.success(notice, icon=":material/check_circle:")


def _buttons(race: Race, view: RaceView, cols: list) -> None:
    moving, stuck = view.state in ("playing", "waiting"), view.state in ("starting", "failed")
    if moving:
        cols[0].button("Pause", key="race_pause", icon=":material/pause:", on_click=race.pause, width="stretch")
    else:
        cols[0].button("Play", key="race_play", icon=":material/play_arrow:", type="primary", on_click=_play,
                       args=(race,), disabled=stuck, width="stretch")  # fmt: skip
    cols[1].button("Step", key="race_step", icon=":material/skip_next:", on_click=race.step, width="stretch",
                   disabled=moving or stuck, help="One step of each model")  # fmt: skip
    cols[2].button("Reset", key="race_reset", icon=":material/restart_alt:", on_click=race.reset, width="stretch",
                   help="Both models from scratch")  # fmt: skip
    if cols[3].button("Save", key="race_save", icon=":material/save:", width="stretch", disabled=not view.steps,
                      help="Keep both models as two runs, to compare on Evaluate and the Leaderboard"):  # fmt: skip
        st.session_state[_SAVING] = True
    if st.session_state.get(_SAVING):
        _save(race)


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=False)


def _save(race: Race) -> None:
    """Save both sides as runs of whoever pressed Save (a student gives a name first: their runs carry it)."""
    actor = people.actor()
    if actor is None:
        people.name_form()  # shown on every refresh until the name is given, then the save goes on
        return
    st.session_state[_SAVING] = False
    label = "Scoring both models on the 10,000 test images and saving them…"
    bar = st.progress(0.0, text=label)  # seconds: each model reads 20,000 images
    try:
        ids = save_race(registry(), race.export(), actor.owner, lambda share: bar.progress(min(1.0, share), text=label))
    except NothingToSave as exc:
        st.warning(exc.public)
        return
    except RegistryError as exc:
        st.error(exc.public, icon=":material/error:")
        return
    finally:
        bar.empty()
    names = " and ".join(f"#{i} ({KINDS[k]})" for i, k in zip(ids, ("cnn", "vit"), strict=True))
    st.session_state[_NOTICE] = f"Saved as runs {names}: compare them on Evaluate or the Leaderboard."


@st.cache_resource(max_entries=64, show_spinner=False)
def _figure(race_id: int, version: int, axis: str, height: int, plain: bool, _view: RaceView) -> go.Figure:
    """One chart per race version, axis, size and view (Simple: `plain`), shared by every session that shows it."""
    del race_id, version  # the cache key: `_view` is not hashed
    return views.frozen(views.race_figure(_view, axis, height=height, plain=plain))  # type: ignore[arg-type]


def _chart(race: Race, view: RaceView, present: bool) -> None:
    """The one chart. Present mode draws it at two heights and the screen's size picks one (CSS): with the digits
    and the note under it, the small one fits 1280x720, the large one fills 1920x1080. Plotly cannot be zoomed or
    stretched by CSS, and the projector is one session: twice the chart there costs the server little."""
    axis = st.session_state.get(AXIS_KEY) or "seconds"
    sizes = PRESENT_CHART_PX if present else {"": CHART_PX}
    for name, height in sizes.items():
        fig = _figure(id(race), view.version, axis, height, simple_view(), view)
        with st.container(key=f"vd_race_chart_{name}" if name else "vd_race_chart"):
            st.plotly_chart(fig, key=f"race_chart{name}", config={"displayModeBar": False}, width="stretch")


def _sides(view: RaceView) -> None:
    """Side by side, each model's accuracy and watched digits right, its step counter and speed, and its answers
    on the ten watched test digits."""
    if not view.sides:  # still starting
        return
    classes = class_names(view.config.dataset)
    detail = race_words.side_text if simple_view() else views.side_text
    for side, col in zip(view.sides, st.columns(len(view.sides)), strict=True):
        with col:
            acc = "–" if side.val_acc is None else f"{side.val_acc:.1%}"
            watched = views.watch_text(side.watch)
            st.html(
                f'<p class="vd-race-head"><b style="color:{MODEL_COLORS[side.kind]}">■ {KINDS[side.kind]} {acc}</b>'
                f"{' · ' + watched if watched else ''}</p>"
                f'<p class="vd-race-detail">{_escape(detail(side))}</p>'
            )
            if side.watch is not None:
                uris = watched_images(view.config.dataset, side.watch.indices)
                st.html(learning.digit_row_html(side.watch, classes, uris, font_size="0.72rem"))


def _note(view: RaceView) -> None:
    """What to look for after the latest knob turn."""
    if view.marks:
        mark = view.marks[-1]
        words = race_words if simple_view() else views
        st.info(f"**{words.knob_label(mark.change)}** at {mark.t:.1f} s: {words.look_for(mark.change)}",
                icon=":material/visibility:")  # fmt: skip


# --- elsewhere -------------------------------------------------------------------------------------------------
def present_strip() -> None:
    """On the Present page: one line while the class race plays, linking to it in Present mode."""
    st.fragment(_present_strip, run_every=2.0)()


def _present_strip() -> None:
    race = shared().current
    view = race.view if race is not None else None
    if view is None or view.state not in ("playing", "waiting"):  # the canvas keeps its room otherwise
        return
    parts = [f"{KINDS[s.kind]} {s.val_acc:.1%}" for s in view.sides if s.val_acc is not None]
    label = f"Race: {' · '.join(parts)} after {view.t:.0f} s"
    st.page_link("app_pages/race.py", label=label, icon=":material/sprint:", query_params={"present": "1"})


def explainer() -> None:
    with st.expander("How the race works", icon=":material/help:"):
        if simple_view():
            st.markdown(say("race", "explainer"))
            return
        st.markdown(
            "Both models train at the same time on the same images, in the same order, with the same knobs, on "
            "one core of this server, taking turns so that each gets the same compute time. The top panel is the "
            "training loss (lower is better), the bottom one the accuracy on 500 validation images they never "
            "train on. Switch the x axis to *images seen* to compare what each model learns per image, whatever "
            "its speed. " + learning.why_more_epochs()
        )
