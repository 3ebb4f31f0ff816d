"""The Train page's "Resume" for a stopped run: continue it from its last saved epoch (vitdemo.training.resume), with
more epochs if asked. The owner or the teacher may; the queue checks that again, and the class limits."""

from __future__ import annotations

import streamlit as st

from vitdemo.config import ConfigError
from vitdemo.runs import queue
from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.store import Registry, Run
from vitdemo.training.resume import ResumeError, saved_epoch
from vitdemo.ui import people
from vitdemo.views import charts


def resume_controls(reg: Registry, run: Run) -> None:
    """For a run that stopped (done, cancelled, failed) with a saved epoch, and that this browser may change:
    "Train to epoch N" and a Resume button (the queue wakes its executor, as after Start)."""
    acting = people.actor()
    if run.active or run.baseline or acting is None or not acting.may_change(run):
        return
    done = saved_epoch(reg.checkpoint_dir, run.id)  # reads one file header; None: nothing saved to go on from
    if done is None:
        return
    planned = int(run.epochs or done)
    c1, c2 = st.columns([1, 1], vertical_alignment="bottom")
    epochs = c1.number_input(
        "Train to epoch", min_value=done + 1, value=max(planned, done + 1), step=1, key=f"resume_epochs_{run.id}",
        help="More epochs than planned stretch its learning-rate schedule to the new end.",
    )  # fmt: skip
    if not c2.button(f"Resume from epoch {done}", key=f"resume_{run.id}", icon=":material/play_arrow:"):
        return
    try:
        new_id = queue.resume(reg, run.id, acting, epochs=int(epochs))
    except (ResumeError, ConfigError) as exc:
        st.error(f"Not resumed: {charts.literal_markdown(str(exc))}", icon=":material/error:")
        return
    except RegistryError as exc:  # not yours, over a class limit, or a registry that cannot be written
        st.error(f"Not resumed: {charts.literal_markdown(exc.public)}", icon=":material/error:")
        return
    st.toast(f"Run #{new_id} queued: run #{run.id} goes on from epoch {done}")
