"""The Train page's widgets: the form (with presets and settings sent from the Leaderboard), the cost and
time estimate, queueing a run (the queue wakes its executor: a page never starts a process), and the live view:
your runs, the class queue, your latest result.

The rules live elsewhere: the form in vitdemo.views.forms, limits in vitdemo.runs.limits, time estimates in vitdemo.runs.admission,
tables and figures in vitdemo.views.charts, who may do what in vitdemo.runs (every call to the queue is in this
module and checks the actor there). The live view is a fragment that reads the registry with one query
(`Registry.live`) and rebuilds nothing while the registry's change counter stays the same.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from vitdemo import units
from vitdemo.classset.data import freeze_config
from vitdemo.config import CLASS_SET, SCHEDULES, ConfigError, TrainConfig
from vitdemo.runconfig import RunConfig
from vitdemo.runs import admission, points, queue
from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.limits import counted_epochs, limit_problems
from vitdemo.runs.people import OWNER_LABELS, Actor, NotAllowed
from vitdemo.runs.store import LiveRuns, Registry, Run
from vitdemo.ui import people, view
from vitdemo.ui import train_form as train_form_widgets
from vitdemo.ui.shell import data_dir, registry, stop_on_failure
from vitdemo.ui.train_resume import resume_controls
from vitdemo.ui.waits import expected_starts
from vitdemo.ui.watching import watch_row
from vitdemo.views import charts, estimates, forms, learning
from vitdemo.views.messages import dataset_missing, hide_folders
from vitdemo.views.names import DATASETS
from vitdemo.views.words import say

FORM_PREFIX = "tf_"  # the Train form's widget keys: "tf_" + a name from forms.KEYS
_FORM_SAVED = "_train_form_values"  # the form outside widget state (Streamlit drops that on other pages)
_FORM_PENDING = "_train_form_pending"  # settings sent by the Leaderboard's "use these settings"
_LIVE_CACHE = "_train_live_cache"  # (registry version, what the live view shows), rebuilt when the version moves
LIVE_EVERY_S = 1.0  # the live view's refresh while you have a run queued or running
IDLE_EVERY_S = 3.0  # ... and while you have none (the class queue is all it shows then)
PRESET_HELP = {
    "quick lesson": "Small models on 10,000 images for 2 epochs: under 30 seconds on a 2-core CPU (the CNN reads "
    "98% of the test digits, the ViT about 75%). The form starts here.",
    "fast demo": "A small model on 10,000 images for 3 epochs: about a minute on a laptop CPU.",
    "best accuracy": "The full training set for 15 epochs: minutes on a GPU, much longer on a CPU.",
    "seed recipe": "The ViT this app grew from: 7x7 patches, hidden size 128, 4 layers, 4 heads, Adam 3e-4, "
    "batch 64, 10 epochs, rotations and flips (97.77% published).",
    "few labels": "Epochs, batch and rate for the chosen label budget (100 if none): a few hundred steps, "
    "about a minute on a CPU for 100 labels.",
}
RECIPE_NOTES = {
    "seed-vit": "Seed recipe: also mirrors digits left-right, no warm-up and no gradient clipping, as published "
    "(published test accuracy 97.77%; see checkpoints/README.md for what it gets here).",
}


def open_registry() -> Registry:
    """The registry (runs whose worker died are marked failed by the workers, never by a page)."""
    return registry()


def devices() -> list[str]:
    """The devices this server can train on (its executor's: vitdemo.runs.queue.offered_devices)."""
    return queue.available_devices()


# --- the form --------------------------------------------------------------------------------------
def prefill_form(source: str, values: forms.FormValues) -> None:
    """Send settings to the Train form (shown on its next run, with a note naming `source`)."""
    st.session_state[_FORM_PENDING] = (source, values)


def init_train_form() -> None:
    """Call before the form: restores it after navigation and applies settings sent from the Leaderboard."""
    values = {**forms.start_values(), **(st.session_state.get(_FORM_SAVED) or {})}
    pending = st.session_state.pop(_FORM_PENDING, None)
    if pending is not None:
        source, settings = pending
        values = forms.coerce_values({**values, **settings})
        _set_form(values)
        st.info(f"The form holds the settings of run {source}: check them, change what you like and start.")
    else:
        for key, value in values.items():
            st.session_state.setdefault(FORM_PREFIX + key, value)
    st.session_state[_FORM_SAVED] = values


def _set_form(values: forms.FormValues) -> None:
    for key, value in values.items():
        st.session_state[FORM_PREFIX + key] = value
    st.session_state[_FORM_SAVED] = dict(values)


def _form_values() -> forms.FormValues:
    saved = st.session_state.get(_FORM_SAVED) or forms.start_values()
    return {k: st.session_state.get(FORM_PREFIX + k, saved.get(k)) for k in forms.KEYS}


def _apply_preset(name: str) -> None:
    _set_form(forms.apply_preset(_form_values(), name))


def preset_buttons() -> None:
    """One button per preset, two a row; each fills in the form (dataset, device and name stay; the seed recipe
    picks the ViT)."""
    columns = st.columns(2)
    for i, name in enumerate(forms.PRESETS):
        column = columns[i % 2]
        column.button(
            f"Preset: {name}", key=f"preset_{name.replace(' ', '_')}", on_click=_apply_preset, args=(name,),
            help=PRESET_HELP.get(name), width="stretch",
        )  # fmt: skip
    if view.expert():  # convolutions and inductive bias: the Expert view's
        st.caption(learning.why_more_epochs())


def device_label(device: str, devices: list[str]) -> str:
    if device == "auto":
        return f"auto: {'cuda' if 'cuda' in devices else 'cpu'}"
    return device if device in devices else f"{device} (not here)"


def server_devices_caption(devices: list[str]) -> str:
    """'This server trains on: CPU (2 cores)' or '... CPU (16 cores) and CUDA (NVIDIA H100 80GB HBM3)', as its
    executor describes its devices."""
    offered = queue.offered_devices()
    parts = [d.label for d in offered if d.kind == "cpu"][:1]
    cpu = next((d for d in offered if d.kind == "cpu"), None)
    gpu = next((d for d in offered if d.kind == "cuda"), None)
    if gpu is not None and "cuda" in devices:
        parts.append(f"CUDA ({gpu.label})")
    gpus = f"; on each GPU up to {gpu.runs_at_once} at once" if gpu is not None and "cuda" in devices else ""
    cpus = f"Up to {cpu.runs_at_once} runs at once on the CPUs" if cpu is not None and cpu.runs_at_once > 1 else ""
    return (
        "This server trains on: "
        + " and ".join(parts)
        + f". {cpus or 'One run at a time on the CPU'}{gpus}; others wait in the queue."
    )


def _model_fields(kind: str | None = None) -> None:
    """The model settings of the chosen family (`kind`: a ViT's or a CNN's, for an encoder a run pretrains)."""
    train_form_widgets.family_fields(kind or st.session_state[FORM_PREFIX + "model_kind"], _model_fields)
    if kind is None and st.session_state[FORM_PREFIX + "model_kind"] == "vit":
        train_form_widgets.teacher_field(open_registry().list_runs(status="done", kind="cnn"))


def _training_fields(devices: list[str]) -> None:
    k = FORM_PREFIX
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Dataset", list(DATASETS), format_func=DATASETS.get, key=k + "dataset")
    if st.session_state[k + "model_kind"] == "classic":  # one fit on the CPU: no epochs, batches or rates
        c2.number_input("Seed", min_value=0, step=1, key=k + "seed")
        c3.number_input("Quick subset (training images, 0 = all)", min_value=0, step=1000, key=k + "train_subset")
        c1.text_input("Run name (optional)", key=k + "name", max_chars=100)
        return
    c2.number_input("Epochs", min_value=1, step=1, key=k + "epochs", help="How many times it sees every picture.")
    if view.simple():  # the rest, with their technical names, folded away (still sent with the run)
        c3.text_input("Run name (optional)", key=k + "name", max_chars=100)
        with st.expander("More settings", icon=":material/tune:"):
            st.caption(say("train", "more_settings"))
            _more_fields(devices, *st.columns(3))
        return
    c3.number_input("Batch size", min_value=1, step=32, key=k + "batch_size")
    _more_fields(devices, c1, c2, c3, name=True)


def _more_fields(devices: list[str], c1, c2, c3, *, name: bool = False) -> None:
    """The training settings past the dataset and the epochs (in the Simple view: inside 'More settings')."""
    k = FORM_PREFIX
    if not name:
        c3.number_input("Batch size", min_value=1, step=32, key=k + "batch_size")
    c1.number_input("Learning rate", min_value=0.0, step=0.0005, format="%.4f", key=k + "lr", help="peak, AdamW")
    c2.number_input("Weight decay", min_value=0.0, step=0.01, format="%.3f", key=k + "weight_decay")
    c3.selectbox("Schedule", list(SCHEDULES), key=k + "schedule")
    c1.number_input("Label smoothing", min_value=0.0, step=0.05, key=k + "label_smoothing")
    c2.slider("Augmentation strength", 0.0, 3.0, step=0.25, key=k + "augment", help="1: ±10°, ±10% scale, ±2 px")
    c3.number_input("Seed", min_value=0, step=1, key=k + "seed")
    c1.selectbox("Device", ["auto", "cpu", "cuda"], format_func=lambda d: device_label(d, devices), key=k + "device")
    c2.number_input(
        "Quick subset (training images, 0 = all)", min_value=0, step=1000, key=k + "train_subset",
        help="Train on only this many images: a run in seconds instead of minutes.",
    )  # fmt: skip
    train_form_widgets.label_budget_field(c3)
    if name:
        c1.text_input("Run name (optional)", key=k + "name", max_chars=100)
    c2.selectbox(
        "Extra training images", ["", CLASS_SET], key=k + "extra_data",
        format_func=lambda v: "the class set's drawings" if v else "none",
        help=view.tip(
            say("train", "extra_help"),
            "Also train on the drawings the class submitted (each shown 20 times an epoch), as they are when the "
            "run is queued; validation and test stay the dataset's. Start from a shipped model to fine-tune it.",
        ),
    )  # fmt: skip


def train_form(devices: list[str]) -> forms.FormValues:
    """The Train form's widgets (plain widgets, not st.form, so the estimate follows every change)."""
    st.radio("Model", list(forms.FAMILIES), format_func=forms.FAMILIES.get, key=FORM_PREFIX + "model_kind",
             horizontal=True)  # fmt: skip
    if view.simple():  # the model's own settings carry technical names: folded away in the Simple view
        with st.expander("Model settings", icon=":material/settings:"):
            st.caption(say("train", "more_settings"))
            _model_fields()
    else:
        _model_fields()
    st.markdown("**Training**")
    _training_fields(devices)
    recipe = st.session_state.get(FORM_PREFIX + "recipe")
    if recipe and st.session_state[FORM_PREFIX + "model_kind"] == "vit":
        st.caption(RECIPE_NOTES.get(recipe, f"Starts from the {recipe} recipe."))
    st.caption(server_devices_caption(devices))
    values = _form_values()
    st.session_state[_FORM_SAVED] = values
    return values


def encoders() -> dict[str, forms.EncoderChoice]:
    """The encoders a fine-tune may start from (shipped, or made by pretrain runs)."""
    return train_form_widgets.encoder_choices()


def _device_of(config: RunConfig, devices: list[str]) -> str:
    return ("cuda" if "cuda" in devices else "cpu") if config.device == "auto" else config.device


def time_estimate(config: RunConfig, device: str) -> admission.TimeEstimate | None:
    """The run's time on this server's device, measured once per model (None if the probe itself failed)."""
    try:
        return queue.time_estimator().estimate(config, device)
    except (RuntimeError, ValueError, OSError):  # out of memory in the probe, a device gone
        return None


def _time_help(timing: admission.TimeEstimate | None, device: str) -> str:
    if timing is None:
        return "The time could not be measured on this server."
    how = {
        "measured": "timed on a few steps of this model",
        "scaled": "scaled from a small model's speed",
        "constant": "from this algorithm's measured time on the full training set",
    }.get(timing.how, timing.how)
    return f"On this server's {device.upper()} when nothing else trains ({how}); other runs in the queue come first."


def _cost(config: RunConfig) -> tuple[str, str, int | None, list[str]]:
    """(memory, parameters, parameter count, caption lines) shown before a run starts."""
    trained = forms.trained_config(config)
    if trained is None:  # a scikit-learn baseline: its size is known once it is fitted
        return "-", "after the fit", None, forms.classic_lines(config)
    est = forms.estimate(trained)
    return units.human_bytes(est.total_bytes), f"{est.num_params:,}", est.num_params, forms.estimate_lines(est)[1:]


def estimate_panel(
    config: RunConfig | None, messages: list[str], devices: list[str], actor: Actor | None
) -> Callable[[], None]:
    """The problems of the form, or what the run will cost: size and memory at once, the time on this server and
    the class limits it is over (a student's run over them is refused when queued) in places kept for them.
    Returns the function that fills those in: call it last, as timing a new model takes a second or two."""
    if config is None:
        for message in messages:
            st.error(message, icon=":material/error:")
        return lambda: None
    missing = dataset_missing(config, data_dir())
    if missing:  # said before anything else: this run cannot start on this server
        st.warning(missing, icon=":material/dataset:")
    device = _device_of(config, devices)
    memory, params, num_params, lines = _cost(config)
    c1, c2 = st.columns(2)
    time_slot = c1.empty()
    time_slot.metric("Time", "…", help="timing a few training steps on this server")
    if view.expert():  # sizes and steps: the Expert view's
        c2.metric("Memory", memory, help="an upper bound while training")
        c1.metric("Parameters", params)
        st.caption(" · ".join(lines))
    warnings = st.container()

    def finish() -> None:
        timing = time_estimate(config, device)
        text = f"~{units.rough_duration(timing.seconds)}" if timing else "-"
        time_slot.metric("Time", text, help=_time_help(timing, device))
        with warnings:
            _limit_warnings(config, num_params or 0, timing, actor)

    return finish


def _limit_warnings(
    config: RunConfig, num_params: int, timing: admission.TimeEstimate | None, actor: Actor | None
) -> None:
    if actor is not None and not actor.teacher:
        limits, minutes = queue.get_limits(registry()), (timing.minutes if timing else None)
        epochs = counted_epochs(config)
        for problem in limit_problems(limits, num_params=num_params, epochs=epochs, minutes=minutes):
            st.warning(problem, icon=":material/block:")
    elif timing is not None and timing.minutes > 60:
        st.warning(
            f"This run would take about {units.format_minutes(timing.minutes)} here.", icon=":material/hourglass:"
        )


# --- the queue -------------------------------------------------------------------------------------
def launch(reg: Registry, values: forms.FormValues, devices: list[str], actor: Actor) -> int | None:
    """Validate again and queue the run for `actor` (the queue checks the class limits and wakes its executor).
    Returns the run id, or None (with the reason on the page) when nothing was queued."""
    config, messages = forms.check_values(values, devices, encoders())
    try:
        if config is None:
            raise ConfigError(" ".join(messages))
        missing = dataset_missing(config, data_dir())
        if missing:  # refused now, not 5 s later in the worker
            st.warning(f"Nothing was queued. {missing}", icon=":material/dataset:")
            return None
        if isinstance(config, TrainConfig):  # the class set as it is now: the run is reproducible
            config = freeze_config(config, reg.home)
        run_id = queue.submit(reg, config, actor)
    except ConfigError as exc:
        st.error(f"Nothing was queued: {exc}", icon=":material/error:")
        return None
    except RegistryError as exc:  # over a limit (the message names it), or a registry that cannot be written
        st.error(f"Nothing was queued: {charts.literal_markdown(exc.public)}", icon=":material/error:")
        return None
    st.toast(f"Run #{run_id} queued")
    return run_id


def _cancel(run_id: int) -> None:
    actor = people.actor()
    try:
        if actor is None:
            raise NotAllowed("Give your name first: only a run's owner or the teacher can cancel it.")
        queue.request_cancel(registry(), run_id, actor)  # the panel says "Cancelling" on the fragment's rerun
    except RegistryError as exc:  # not yours, or gone
        st.session_state["_train_problem"] = exc.public


# --- live view -------------------------------------------------------------------------------------
def live_runs() -> None:
    """Your runs (progress, curves, cancel), the class queue (read only) and your latest result, refreshed
    every second while you have a run queued or running, every three seconds otherwise."""
    actor = people.actor()
    snapshot = _snapshot(registry(), actor)
    busy = actor is not None and any(r.owner == actor.owner for r in snapshot.active)
    st.fragment(_live_view, run_every=LIVE_EVERY_S if busy else IDLE_EVERY_S)()


def _snapshot(reg: Registry, actor: Actor | None) -> LiveRuns:
    """The live query. Its latest ended run: yours; anyone's for the teacher; nobody's before you have a name."""
    whose = None if actor is not None and actor.teacher else (actor.owner if actor else "")
    return reg.live(whose)


def _live_view() -> None:
    with stop_on_failure():  # a fragment reruns on its own, outside the page's guard
        reg, actor = registry(), people.actor()
        live = _snapshot(reg, actor)
        queued = {r.device or "cpu" for r in live.active if r.status == "queued"}
        if queued:  # e.g. after a server restart: the queue's executor takes them (it tries every few seconds)
            queue.wake(reg, queued, paused=live.paused)
        problem = st.session_state.pop("_train_problem", None)
        if problem:  # it may name someone: shown as plain text
            st.error(charts.literal_markdown(problem), icon=":material/error:")
        if live.paused:
            st.warning("The teacher has paused the queue: queued runs wait until it resumes.", icon=":material/pause:")
        unreachable = queue.executor_problem(reg, queued=bool(queued))
        if unreachable:  # a Ray cluster out of reach: said once, here, and the queue waits for it
            st.warning(charts.literal_markdown(unreachable), icon=":material/cloud_off:")
        _your_runs(reg, live, actor)
        st.markdown("#### Class queue")
        placed = any(charts.where_of(r) for r in live.active)  # a cluster says which node trains each run
        shown = ["place", "name", "by", "starts", "progress"]
        shown += ["device"] if len({r.device for r in live.active}) > 1 or placed else []
        st.dataframe(
            _queue_table(live), hide_index=True, column_config=QUEUE_COLUMNS, column_order=shown, key="class_queue"
        )
        if actor is not None and actor.teacher and live.active:
            _teacher_cancel(live)
        latest = [r for r in live.runs if not r.active]
        if latest:
            st.markdown("#### Your latest result")
            run_panel(reg, latest[-1], live.watches.get(latest[-1].id))


QUEUE_COLUMNS = {
    "place": st.column_config.TextColumn("place", help="training, or the place in the queue (1 starts next)"),
    "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=100),
    "starts": st.column_config.TextColumn(
        "starts", help="When it should start, from the time estimates of the runs ahead of it on its device"
    ),  # fmt: skip
}


def _queue_table(live: LiveRuns):
    """The class queue's frame, rebuilt only when the registry changed since this session last drew it."""
    cached = st.session_state.get(_LIVE_CACHE)
    if cached is not None and live.version is not None and cached[0] == live.version:
        return cached[1]
    names = {**OWNER_LABELS, **live.names}
    frame = charts.queue_frame(live.active, names)
    starts = expected_starts(live.active)
    frame["starts"] = [estimates.start_text(starts[i]) if i in starts else "now" for i in frame["id"]]
    st.session_state[_LIVE_CACHE] = (live.version, frame)
    return frame


def _your_runs(reg: Registry, live: LiveRuns, actor: Actor | None) -> None:
    """Your running runs with progress and curves, and your place in the queue for each queued one; the teacher
    also sees everyone's running runs."""
    mine = [r for r in live.active if actor is not None and r.owner == actor.owner]
    if actor is not None and actor.teacher:
        mine += [r for r in live.active if r.status == "running" and r not in mine]
    if not mine:
        return
    st.markdown("#### Your runs" if actor is None or not actor.teacher else "#### Training now")
    places, starts = charts.queue_places(live.active), expected_starts(live.active)
    for run in sorted(mine, key=lambda r: r.id):
        if run.status == "running":
            run_panel(reg, run, live.watches.get(run.id))
            continue
        c1, c2 = st.columns([3, 1], vertical_alignment="center")
        when = estimates.start_text(starts.get(run.id))
        c1.markdown(
            f"{charts.literal_markdown(charts.run_title(run))}: **{_ordinal(places.get(run.id, 0))} in line**"
            + (f" · starts {when}" if when != "-" else "")
        )
        c2.button("Cancel", key=f"cancel_{run.id}", on_click=_cancel, args=(run.id,), icon=":material/cancel:")


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _teacher_cancel(live: LiveRuns) -> None:
    """The teacher can cancel anyone's run."""
    by_id = {r.id: r for r in live.active}
    with st.container(horizontal=True, vertical_alignment="bottom", key="vd_teacher_cancel"):  # the button never cut
        picked = st.selectbox("Cancel a run (teacher)", list(by_id), format_func=lambda i: charts.run_title(by_id[i]),
                              key="teacher_cancel_pick")  # fmt: skip
        if picked is not None:
            st.button("Cancel it", key="teacher_cancel", on_click=_cancel, args=(picked,), icon=":material/cancel:")


@st.cache_resource(show_spinner=False, max_entries=64)
def _curves(home: str, run_id: int, epochs_done: int, points_written: int):
    """A run's curves, built once per new epoch or loss point for every session (the figure is read, never
    changed): two small reads, only when the run's progress says something new was written."""
    del epochs_done, points_written  # part of the cache key only
    reg = registry()
    epochs, pts = reg.epochs(run_id), points.points(reg, run_id)
    return learning.live_curves_figure(epochs, pts) if epochs or pts else None


def _run_status(run: Run) -> None:
    """Progress and a cancel button while a run runs; its result, error or cancellation after."""
    if run.status == "running":
        fraction, text = charts.progress_of(run)
        st.progress(fraction, text=text)
        if charts.where_of(run):
            st.caption(f"Training on {charts.literal_markdown(charts.where_of(run))}")
        if run.cancel_requested:
            st.caption("Cancelling: the run stops within a second or two.")
        else:
            st.button(
                "Cancel run", key=f"cancel_{run.id}", on_click=_cancel, args=(run.id,), icon=":material/stop_circle:"
            )
    elif run.status == "done":
        where = f" on {run.device}" if run.device else ""
        st.success(
            f"Done: trained in {units.format_duration(run.train_time_s)}{where}.", icon=":material/check_circle:"
        )
        c1, c2 = st.columns(2)
        c1.metric("Test accuracy", f"{run.test_acc:.2%}" if run.test_acc is not None else "-")
        c2.metric("Macro F1", f"{run.macro_f1:.4f}" if run.macro_f1 is not None else "-")
    elif run.status == "failed":
        error = charts.literal_markdown(hide_folders(run.error or "no error was recorded"))
        st.error(f"Failed: {error}", icon=":material/error:")
    elif run.status == "cancelled":
        st.warning(f"Cancelled after {run.epochs_done} of {run.epochs} epochs.", icon=":material/stop_circle:")


def run_panel(reg: Registry, run: Run, watch: dict | None = None) -> None:
    """One run: its status, its answers on the watched test images (`watch`, from the live query), then its
    loss (every second or so) and accuracy (every epoch) curves."""
    with st.container(border=True):
        st.markdown(f"**{charts.literal_markdown(charts.run_title(run))}**")
        _run_status(run)
        if not run.active:
            resume_controls(reg, run)
        watch_row(run, watch)
        written = int((run.progress or {}).get("points") or 0)
        fig = _curves(str(reg.home), run.id, run.epochs_done, written) if run.epochs_done or written else None
        if fig is not None:
            st.plotly_chart(fig, key=f"curves_{run.id}", config={"displayModeBar": False})
        elif run.status == "running":
            st.caption(view.pick(say("train", "curve_wait"), "The loss curve appears after 1 s of training."))
