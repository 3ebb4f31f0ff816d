"""Evaluate's gallery of misread numbers: for one number reader, the test numbers it gets wrong (what it wrote
under what was written), and for the one picked, the reader's own explanation as on the Read a number page
(the detector's boxes, or where the captioner looked for each digit). The logic: vitdemo.numbers.gallery."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from vitdemo.checkpoints import CheckpointError
from vitdemo.data import DataError
from vitdemo.numbers.analyze import read_image
from vitdemo.numbers.gallery import Misread, gallery_numbers, misreads
from vitdemo.numbers.synth import Numbers
from vitdemo.runs.store import Run
from vitdemo.ui import read as read_ui
from vitdemo.ui.shell import data_dir, load_model
from vitdemo.views.messages import data_error_text

SHOWN = 12  # pictures in the gallery's grid (least confident first); every misread can be explained


@st.cache_resource(show_spinner=False, max_entries=1)
def _numbers(folder: str) -> Numbers:
    return gallery_numbers(folder)


@st.cache_resource(show_spinner=False)
def _found() -> dict[tuple[str, int], list[Misread]]:
    """(checkpoint, its mtime) -> its misreads: read once per server and file version, for every visitor."""
    return {}


def _misreads(path: str, numbers: Numbers) -> list[Misread]:
    key = (path, _mtime(path))
    found = _found()
    if key not in found:
        loaded = load_model(path)
        bar = st.progress(0.0, text="Reading the test numbers…")
        found[key] = misreads(loaded.model, numbers, lambda done, total: bar.progress(done / total,
                              text=f"Reading the test numbers… {done} of {total}"))  # fmt: skip
        bar.empty()
    return found[key]


def _mtime(path: str) -> int:
    return Path(path).stat().st_mtime_ns


def misread_gallery(runs: list[Run]) -> None:
    """The gallery for a reader picked among `runs` (finished readers with a checkpoint)."""
    runs = [r for r in runs if r.checkpoint]
    if not runs:
        return
    run = st.selectbox("Reader", runs, format_func=lambda r: f"#{r.id} {r.name} ({r.kind})", key="misread_run")
    try:
        numbers = _numbers(data_dir())
        wrong = _misreads(run.checkpoint, numbers)
    except DataError as exc:
        st.warning(data_error_text(exc), icon=":material/dataset:")
        return
    except CheckpointError as exc:
        st.warning(f"This reader could not be loaded: {exc}", icon=":material/warning:")
        return
    if not wrong:
        st.success(f"It read all {len(numbers)} gallery numbers right.")
        return
    st.caption(f"It misread {len(wrong)} of {len(numbers)} test numbers. The least sure first: what it wrote, "
               "then what was written.")  # fmt: skip
    shown = wrong[:SHOWN]
    st.image([_picture(numbers, m) for m in shown], caption=[_label(m) for m in shown], width=200)
    picked = st.selectbox("Explain one", wrong, format_func=_label, key="misread_pick")
    answer = read_image(numbers.images[picked.index].numpy(), {run.kind: load_model(run.checkpoint)}, prepared=True)
    if run.kind in answer.readings:
        panel = read_ui.detector_panel if run.kind == "detector" else read_ui.captioner_panel
        panel(answer)


def _label(m: Misread) -> str:
    return f"wrote {m.wrote or 'nothing'} · was {m.truth}"


def _picture(numbers: Numbers, m: Misread) -> np.ndarray:
    return numbers.images[m.index].numpy()
