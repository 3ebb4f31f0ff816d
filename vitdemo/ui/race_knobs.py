"""The race's knobs as widgets, and the teacher's cap on students' races.

A race is shared (the class race by every session on the server), so the widgets follow the race, not the other
way round: before they are drawn, a session whose widgets show other knobs than the race has (another teacher's
tab turned one) takes the race's values. A turn calls `Race.set_knobs`, and the next render of the live fragment
waits a moment for the race to mark it, so the turn shows on the chart in the same refresh.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from vitdemo.classset.data import ClassSetEmpty, freeze
from vitdemo.config import ConfigError
from vitdemo.race import knobs as k
from vitdemo.race.engine import Race
from vitdemo.race.limits import RaceCap, get_cap, set_cap
from vitdemo.race.state import RaceView
from vitdemo.runs.dbfile import RegistryError
from vitdemo.ui import people
from vitdemo.ui import view as view_mode
from vitdemo.ui.classset import store as classset_store
from vitdemo.ui.resources import registry
from vitdemo.views import race_words
from vitdemo.views.names import DATASETS_SHORT
from vitdemo.views.words import say

KEYS = {f.name: f"race_{f.name}" for f in dataclasses.fields(k.Knobs) if f.name != "extra_data"}
CLASS_KEY = "race_class"  # the class drawings toggle (Knobs.extra_data is a snapshot's path)
DATASET_KEY = "race_dataset"
EXPECT = "_race_expect"  # (race id, marks) the next render waits for
PROBLEM = "_race_problem"
_SEEN = "_race_seen"  # (race id, knobs, dataset) the widgets show
AUGMENTS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)
NOISES = (0.0, 0.1, 0.2, 0.3, 0.5, 0.8)
HELP = {
    "lr": "AdamW's step size, for both models. Turn it up ten times and watch the loss.",
    "batch_size": "Images per step. Bigger: fewer, steadier steps.",
    "weight_decay": "How hard the weights are pulled toward zero at every step.",
    "augment": "Random turns, scaling and shifts of each training image: 1 = ±10°, ±10%, ±2 px.",
    "label_noise": "The share of training labels swapped for a wrong class: watch the models learn them by heart.",
    "train_size": "How many training images both models share.",
}


def _lr_text(v: float) -> str:
    return f"{v:g}"


def _percent(v: float) -> str:
    return f"{v:.0%}"


def _sync(race: Race, view: RaceView) -> None:
    """Show the race's knobs (and dataset) in this session's widgets, when they show something else."""
    seen = (id(race), view.knobs, view.config.dataset)
    if st.session_state.get(_SEEN) == seen:
        return
    for name, key in KEYS.items():
        st.session_state[key] = getattr(view.knobs, name)
    st.session_state[CLASS_KEY] = bool(view.knobs.extra_data)
    st.session_state[DATASET_KEY] = view.config.dataset
    st.session_state[_SEEN] = seen


def _turn(race: Race) -> None:
    """A widget moved: ask the race for the knobs the widgets now show."""
    view = race.view
    wanted = dataclasses.replace(view.knobs, **{name: st.session_state[key] for name, key in KEYS.items()})
    try:
        done = race.set_knobs(wanted)
    except ConfigError as exc:
        st.session_state[PROBLEM] = str(exc)
        return
    st.session_state[EXPECT] = (id(race), len(view.marks) + len(done))


def _class_drawings(race: Race) -> None:
    """The class drawings toggle: a snapshot of the class set as it is now joins (or leaves) the training set."""
    view = race.view
    path = ""
    if st.session_state.get(CLASS_KEY):
        try:
            path = str(freeze(classset_store(), view.config.dataset))
        except (ClassSetEmpty, RegistryError, OSError) as exc:
            st.session_state[CLASS_KEY] = False
            st.session_state[PROBLEM] = getattr(exc, "public", str(exc))
            return
    done = race.set_knobs(dataclasses.replace(view.knobs, extra_data=path))
    st.session_state[EXPECT] = (id(race), len(view.marks) + len(done))


def _dataset(race: Race) -> None:
    """Another dataset is another race: both models start again (the class drawings are per dataset)."""
    view = race.view
    dataset = st.session_state.get(DATASET_KEY) or view.config.dataset
    race.set_knobs(dataclasses.replace(view.knobs, extra_data=""))
    race.reset(dataclasses.replace(view.config, dataset=dataset))


def _help(name: str, label: str) -> str | None:
    """The knob's help: in the Simple view its plain words, then its technical name and what it does."""
    if view_mode.expert():
        return HELP.get(name)
    technical = f"{label}: {HELP[name]}" if name in HELP else label
    plain = race_words.knob_help(name)
    return view_mode.tip(plain, technical) if plain else f"In technical words: {technical}"


def _slider(race: Race, name: str, label: str, options: tuple, disabled: bool, fmt=str) -> None:
    """A knob, labelled in the session's view (the technical name in the Expert view and in the help)."""
    st.select_slider(view_mode.pick(race_words.knob_name(name), label), options=options, key=KEYS[name],
                     format_func=fmt, on_change=_turn, args=(race,), disabled=disabled,
                     help=_help(name, label))  # fmt: skip


def training_knobs(race: Race, view: RaceView, *, disabled: bool, max_images: int = 0) -> None:
    """The knobs that act on both models at the next step."""
    _sync(race, view)
    _slider(race, "lr", "Learning rate", k.LEARNING_RATES, disabled, _lr_text)
    _slider(race, "batch_size", "Batch size", k.BATCH_SIZES, disabled)
    sizes = tuple(s for s in k.TRAIN_SIZES if not max_images or s <= max_images) or k.TRAIN_SIZES[:1]
    _slider(race, "train_size", "Training images", sizes, disabled, lambda v: f"{v:,}")
    _slider(race, "label_noise", "Label noise", NOISES, disabled, _percent)
    _slider(race, "augment", "Augmentation", AUGMENTS, disabled, lambda v: f"{v:g}")
    _slider(race, "weight_decay", "Weight decay", k.WEIGHT_DECAYS, disabled, lambda v: f"{v:g}")
    problem = st.session_state.pop(PROBLEM, None)
    if problem:
        st.error(problem, icon=":material/error:")


def setup_knobs(race: Race, view: RaceView, *, disabled: bool) -> None:
    """Architecture (each restarts its own model), dataset and the class drawings."""
    _sync(race, view)
    st.caption(
        view_mode.pick(
            say("race", "setup_caption"), "Each of these starts its own model again; the old curve stays faded."
        )
    )
    a, b = st.columns(2)
    with a:
        _slider(race, "vit_patch", "ViT patch size", k.VIT_PATCHES, disabled, lambda v: f"{v} px")
        _slider(race, "vit_depth", "ViT depth", k.VIT_DEPTHS, disabled)
    with b:
        _slider(race, "cnn_width", "CNN width", k.CNN_WIDTHS, disabled)
        _slider(race, "cnn_depth", "CNN depth", k.CNN_DEPTHS, disabled)
    label = view_mode.pick(say("race", "dataset_label"), "Dataset (starts both again)")
    st.segmented_control(label, list(DATASETS_SHORT), format_func=DATASETS_SHORT.get, key=DATASET_KEY,
                         on_change=_dataset, args=(race,), disabled=disabled, required=True)  # fmt: skip
    technical = "The drawings submitted on Draw and Present join the training images (20 copies each)."
    st.toggle("Add the class's drawings", key=CLASS_KEY, on_change=_class_drawings, args=(race,), disabled=disabled,
              help=view_mode.tip(say("race", "help_extra_data"), technical))  # fmt: skip


def expected(race: Race) -> int | None:
    """The number of marks the last turn in this session will have made (None: no turn waits)."""
    found = st.session_state.pop(EXPECT, None)
    return found[1] if found and found[0] == id(race) else None


# --- the teacher's cap on students' races ---------------------------------------------------------------------
def _save_cap() -> None:
    acting = people.actor()
    try:
        if acting is None:
            raise PermissionError("Only the teacher can change what students' races may do.")
        cap = RaceCap(int(st.session_state["race_cap_races"]), int(st.session_state["race_cap_images"]),
                      bool(st.session_state["race_cap_runs"]))  # fmt: skip
        set_cap(registry(), cap, acting)
    except (RegistryError, PermissionError, ValueError, TypeError) as exc:
        st.session_state[PROBLEM] = getattr(exc, "public", str(exc))


def cap_settings() -> None:
    """For the teacher (where a password is set): how many students' races may train at once, and how big."""
    with st.expander("Students' own races (teacher)", icon=":material/school:"):
        cap = get_cap(registry())
        st.number_input("Students' races training at once", min_value=0, max_value=30, step=1,
                        value=cap.student_races, key="race_cap_races",
                        help="Each takes most of a core while it plays; 0 switches them off.")  # fmt: skip
        st.select_slider("Largest training set", options=(0, *k.TRAIN_SIZES), value=cap.max_images,
                         key="race_cap_images", format_func=lambda v: "no cap" if v == 0 else f"{v:,}")  # fmt: skip
        st.toggle("Go on while a queued run trains", value=cap.while_runs, key="race_cap_runs",
                  help="Off: students' races wait while a run from the queue trains on the CPU.")  # fmt: skip
        st.button("Save", key="race_cap_save", on_click=_save_cap, icon=":material/save:")


def student_cap() -> RaceCap:
    try:
        return get_cap(registry())
    except RegistryError:
        return RaceCap()
