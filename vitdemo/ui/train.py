"""The Train page's widgets: the form (with presets and settings sent from the Leaderboard), the cost
estimate, queueing a run and starting its worker, and the live view of the queue and the runs.

The rules live elsewhere: the form in vitdemo.views.forms, tables and figures in vitdemo.views.charts, the
queue and the workers in vitdemo.runs (every call to them is in this module).
"""

from __future__ import annotations

import os
import time

import streamlit as st
import torch

from vitdemo.config import SCHEDULES, ConfigError, TrainConfig
from vitdemo.runs import queue, worker
from vitdemo.runs.store import Registry, Run
from vitdemo.ui.shell import data_dir, registry, stop_on_failure
from vitdemo.views import charts, forms
from vitdemo.views.messages import hide_folders
from vitdemo.views.names import DATASETS, KINDS

FORM_PREFIX = "tf_"  # the Train form's widget keys: "tf_" + a name from forms.KEYS
_FORM_SAVED = "_train_form_values"  # the form outside widget state (Streamlit drops that on other pages)
_FORM_PENDING = "_train_form_pending"  # settings sent by the Leaderboard's "use these settings"
_FOLLOWED = "_train_followed_run"  # the run this session launched last
WORKER_RETRY_S = 10.0  # a page starts at most one worker per device this often (a crashing one must not loop)
_worker_starts: dict[str, float] = {}
PRESET_HELP = {
    "fast demo": "A small model on 10,000 images for 3 epochs: about a minute on a laptop CPU.",
    "best accuracy": "The full training set for 15 epochs: minutes on a GPU, much longer on a CPU.",
}


def open_registry() -> Registry:
    """The registry, with the runs of workers that died while nobody watched marked failed (not running forever)."""
    reg = registry()
    queue.fail_orphans(reg)
    return reg


def devices() -> list[str]:
    """The devices this server can train on."""
    return queue.available_devices()


# --- the form --------------------------------------------------------------------------------------
def prefill_form(source: str, values: forms.FormValues) -> None:
    """Send settings to the Train form (shown on its next run, with a note naming `source`)."""
    st.session_state[_FORM_PENDING] = (source, values)


def init_train_form() -> None:
    """Call before the form: restores it after navigation and applies settings sent from the Leaderboard."""
    values = {**forms.default_values(), **(st.session_state.get(_FORM_SAVED) or {})}
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
    saved = st.session_state.get(_FORM_SAVED) or forms.default_values()
    return {k: st.session_state.get(FORM_PREFIX + k, saved.get(k)) for k in forms.KEYS}


def _apply_preset(name: str) -> None:
    _set_form(forms.apply_preset(_form_values(), name))


def preset_buttons() -> None:
    """One button per preset; each fills in the form (model kind, dataset, device and name stay)."""
    columns = st.columns(len(forms.PRESETS))
    for column, name in zip(columns, forms.PRESETS, strict=True):
        column.button(
            f"Preset: {name}", key=f"preset_{name.replace(' ', '_')}", on_click=_apply_preset, args=(name,),
            help=PRESET_HELP.get(name), width="stretch",
        )  # fmt: skip


def device_label(device: str, devices: list[str]) -> str:
    if device == "auto":
        return f"auto: {'cuda' if 'cuda' in devices else 'cpu'}"
    return device if device in devices else f"{device} (not here)"


def server_devices_caption(devices: list[str]) -> str:
    """'This server trains on: CPU (2 cores)' or '... CPU (16 cores) and CUDA (NVIDIA H100 80GB HBM3)'."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [f"CPU ({cores} cores)"]
    if "cuda" in devices:
        parts.append(f"CUDA ({torch.cuda.get_device_name(0)})")
    return "This server trains on: " + " and ".join(parts) + ". One run per device at a time; others wait in the queue."


def _model_fields() -> None:
    k = FORM_PREFIX
    c1, c2, c3 = st.columns(3)
    if st.session_state[k + "model_kind"] == "vit":
        c1.selectbox("Patch size", [4, 7, 14], key=k + "patch_size", help="4: 7x7 = 49 patches; 7: 16; 14: 4")
        c2.number_input("Embedding dim", min_value=8, step=8, key=k + "embed_dim")
        c3.number_input("Depth (blocks)", min_value=1, step=1, key=k + "vit_depth")
        c1.number_input("Heads", min_value=1, step=1, key=k + "num_heads", help="must divide the embedding dim")
        c2.number_input("MLP ratio", min_value=0.5, step=0.5, key=k + "mlp_ratio")
        c3.number_input("Dropout", min_value=0.0, step=0.05, key=k + "vit_dropout")
    else:
        c1.number_input("Width", min_value=4, step=4, key=k + "cnn_width", help="channels of the first stage")
        c2.number_input("Depth (stages)", min_value=1, step=1, key=k + "cnn_depth", help="1, 2 or 3")
        c3.number_input("Dropout", min_value=0.0, step=0.05, key=k + "cnn_dropout")


def _training_fields(devices: list[str]) -> None:
    k = FORM_PREFIX
    c1, c2, c3 = st.columns(3)
    c1.selectbox("Dataset", list(DATASETS), format_func=DATASETS.get, key=k + "dataset")
    c2.number_input("Epochs", min_value=1, step=1, key=k + "epochs")
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
    c3.text_input("Run name (optional)", key=k + "name", max_chars=100)


def train_form(devices: list[str]) -> forms.FormValues:
    """The Train form's widgets (plain widgets, not st.form, so the estimate follows every change)."""
    st.radio("Model", list(KINDS), format_func=KINDS.get, key=FORM_PREFIX + "model_kind", horizontal=True)
    _model_fields()
    st.markdown("**Training**")
    _training_fields(devices)
    st.caption(server_devices_caption(devices))
    values = _form_values()
    st.session_state[_FORM_SAVED] = values
    return values


def estimate_panel(config: TrainConfig | None, messages: list[str]) -> None:
    """The problems of the form, or what the run will cost."""
    if config is None:
        for message in messages:
            st.error(message, icon=":material/error:")
        return
    est = forms.estimate(config)
    c1, c2 = st.columns(2)
    c1.metric("Parameters", f"{est.num_params:,}")
    c2.metric("Memory (training)", f"~{forms.human_bytes(est.total_bytes)}")
    st.caption(" · ".join(forms.estimate_lines(est)[1:]))


# --- queue and workers -----------------------------------------------------------------------------
def launch(reg: Registry, values: forms.FormValues, devices: list[str]) -> int | None:
    """Validate again, queue the run and make sure its device has a worker. Returns the run id, or None
    (with the reason on the page) when nothing was queued."""
    config, messages = forms.check_values(values, devices)
    try:
        if config is None:
            raise ConfigError(" ".join(messages))
        run_id = queue.submit(reg, config)
    except ConfigError as exc:
        st.error(f"Nothing was queued: {exc}", icon=":material/error:")
        return None
    start_worker(reg, reg.get_run(run_id).device or "cpu", force=True)
    st.session_state[_FOLLOWED] = run_id
    st.toast(f"Run #{run_id} queued")
    return run_id


def start_worker(reg: Registry, device: str, *, force: bool = False) -> None:
    """worker.ensure_worker, at most every WORKER_RETRY_S per device unless forced (a worker that cannot
    start must not be restarted every second by every open page)."""
    now = time.monotonic()
    if not force and now - _worker_starts.get(device, -WORKER_RETRY_S) < WORKER_RETRY_S:
        return
    _worker_starts[device] = now
    worker.ensure_worker(reg, device, data_dir())


def _cancel(run_id: int) -> None:
    queue.request_cancel(registry(), run_id)  # the panel says "Cancelling" on the fragment's rerun


# --- live view -------------------------------------------------------------------------------------
@st.fragment(run_every=1)
def live_runs() -> None:
    """The queue, every running run's progress and curves, and the latest result; refreshed every second
    from the registry (so it survives reloads and shows runs started elsewhere)."""
    with stop_on_failure():  # a fragment reruns on its own, outside the page's guard
        reg = open_registry()
        running, queued = reg.list_runs(status="running"), reg.list_runs(status="queued")
        for device in sorted({r.device or "cpu" for r in queued}):
            start_worker(reg, device)  # after a server restart, or a worker that stopped while a run was queued
        st.markdown("#### Queue")
        if running or queued:
            st.dataframe(
                charts.queue_frame(running + queued),
                hide_index=True,
                column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=100)},
            )
        else:
            st.caption("Nothing is training right now.")
        for run in running:
            run_panel(reg, run)
        latest = _latest_finished(reg)
        if latest is not None:
            st.markdown("#### Latest result")
            run_panel(reg, latest)


def _latest_finished(reg: Registry) -> Run | None:
    """The run this session launched, once it has ended; else the most recent run anyone finished."""
    followed = st.session_state.get(_FOLLOWED)
    if followed is not None:
        try:
            run = reg.get_run(followed)
        except KeyError:
            run = None
        if run is not None:
            return run if run.status not in ("queued", "running") else None
    ended = [r for r in reg.list_runs() if not r.baseline and r.status in ("done", "failed", "cancelled")]
    return max(ended, key=lambda r: (r.finished_at or 0.0, r.id), default=None)


def _run_status(run: Run) -> None:
    """Progress and a cancel button while a run runs; its result, error or cancellation after."""
    if run.status == "running":
        fraction, text = charts.progress_of(run)
        st.progress(fraction, text=text)
        if run.cancel_requested:
            st.caption("Cancelling: the run stops within a second or two.")
        else:
            st.button(
                "Cancel run", key=f"cancel_{run.id}", on_click=_cancel, args=(run.id,), icon=":material/stop_circle:"
            )
    elif run.status == "done":
        where = f" on {run.device}" if run.device else ""
        st.success(
            f"Done: trained in {charts.format_duration(run.train_time_s)}{where}.", icon=":material/check_circle:"
        )
        c1, c2 = st.columns(2)
        c1.metric("Test accuracy", f"{run.test_acc:.2%}" if run.test_acc is not None else "-")
        c2.metric("Macro F1", f"{run.macro_f1:.4f}" if run.macro_f1 is not None else "-")
    elif run.status == "failed":
        st.error(f"Failed: {hide_folders(run.error or 'no error was recorded')}", icon=":material/error:")
    elif run.status == "cancelled":
        st.warning(f"Cancelled after {run.epochs_done} of {run.epochs} epochs.", icon=":material/stop_circle:")


def run_panel(reg: Registry, run: Run) -> None:
    """One run: its status, then its loss and accuracy curves."""
    with st.container(border=True):
        st.markdown(f"**{charts.run_title(run)}**")
        _run_status(run)
        epochs = reg.epochs(run.id)
        if epochs:
            fig = charts.curves_figure(epochs, stacked=True)
            st.plotly_chart(fig, key=f"curves_{run.id}", config={"displayModeBar": False})
        elif run.status == "running":
            st.caption("The loss and accuracy curves appear after the first epoch.")
