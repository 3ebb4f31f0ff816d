"""One run inside a Ray task, on whichever node the cluster chose: the body of vitdemo.runs.ray_exec's task, with
no Ray in it (the task hands over what Ray knows: the images, the files, where it runs).

The node shares no disk with the worker that records the run: the run's dataset comes from the cluster's object
store (`provided_splits`), the files its config names (an init checkpoint, pretrained weights, a class-set
snapshot, a resume file) come as bytes and are written into a private folder whose paths replace the worker's,
and what the run makes comes back as events with bytes: the checkpoint and encoder in its Result, the resume
file after every epoch (`events.Saved`), so that a run stopped on a node can be resumed from the worker's disk.
Training runs in a thread; the task's generator hands its events out as JSON lines (vitdemo.runs.events).
"""

from __future__ import annotations

import queue as stdqueue
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from vitdemo.runs import events
from vitdemo.runs.events import Event, RunFile
from vitdemo.runs.store import Run

SENT_KEYS = ("init", "weights_path", "extra_data", "resume")  # config keys that name a file of the worker's disk
FINAL = (events.Result, events.Cancelled, events.Failed)
HAND_OUT_EVERY_S = 0.2  # how often the task looks for new events and a new resume file


def named_files(config: Mapping[str, Any]) -> list[str]:
    """The file paths a run config names (nested configs too: a pretrain run's fine-tune), in order."""
    found: list[str] = []
    for key, value in config.items():
        if isinstance(value, Mapping):
            found += named_files(value)
        elif key in SENT_KEYS and isinstance(value, str) and value.strip() and Path(value).is_absolute():
            found.append(value)
    return found


def files_to_send(config: Mapping[str, Any]) -> dict[str, bytes]:
    """path -> bytes of every file the config names that exists here (a missing one fails on the node, with
    the trainer's own sentence)."""
    return {p: Path(p).read_bytes() for p in dict.fromkeys(named_files(config)) if Path(p).is_file()}


def localised(config: Mapping[str, Any], places: Mapping[str, str]) -> dict[str, Any]:
    """The config with every sent file's path replaced by its copy on this node (`places`: old -> new)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out[key] = localised(value, places)
        else:
            out[key] = places.get(value, value) if key in SENT_KEYS and isinstance(value, str) else value
    return out


def _write_files(files: Mapping[str, bytes], folder: Path) -> dict[str, str]:
    places = {}
    for i, (old, data) in enumerate(files.items()):
        new = folder / f"sent-{i}-{Path(old).name}"
        new.write_bytes(data)
        places[old] = str(new)
    return places


def splits_of(dataset: str, arrays: Mapping[str, Any]) -> dict[tuple[str, bool], Any]:
    """The object store's numpy arrays (read-only, shared by every task on the node) as the trainer's uint8
    splits; indexing them later copies what a run keeps."""
    import numpy as np
    import torch

    from vitdemo.data import Split

    def split(images: np.ndarray, labels: np.ndarray) -> Split:
        return Split(torch.from_numpy(np.array(images)), torch.from_numpy(np.array(labels, dtype=np.int64)))

    return {(dataset, True): split(*arrays["train"]), (dataset, False): split(*arrays["test"])}


def _resume_if_new(path: Path, seen: list[float]) -> Event | None:
    """The run's resume file with its bytes when it was written since the last look (save_state renames it into
    place whole: its modification time changes once per epoch)."""
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    if seen and seen[0] == mtime:
        return None
    seen[:] = [mtime]
    return events.Saved(RunFile.sent(path))


def run_events(
    run: Run, arrays: Mapping[str, Any], files: Mapping[str, bytes], *, where: str, threads: int
) -> Iterator[str]:
    """Train `run` here with `threads` torch threads (the cores the task asked for) and yield its events as JSON
    lines: first a Progress that says `where`, then the trainer's, each resume file as it is saved (before the
    final event), and last its Result, Cancelled or Failed (vitdemo.runs.execute.execute never raises for a
    problem of the run)."""
    import torch

    from vitdemo.data import provided_splits
    from vitdemo.runs.execute import execute
    from vitdemo.training.resume import state_path

    torch.set_num_threads(max(1, threads))
    yield events.encode(events.Progress({"phase": "starting", "where": where}))
    with tempfile.TemporaryDirectory(prefix=f"vitdemo-run-{run.id}-") as tmp:
        folder = Path(tmp)
        node_run = Run(**{**run.__dict__, "config": localised(run.config, _write_files(files, folder))})
        out: stdqueue.SimpleQueue[Event] = stdqueue.SimpleQueue()
        done = threading.Event()

        def train() -> None:
            try:
                with provided_splits(splits_of(run.dataset, arrays)):
                    execute(node_run, folder, out.put, send_files=True)
            finally:
                done.set()

        threading.Thread(target=train, name=f"train-{run.id}", daemon=True).start()
        resume, seen = state_path(folder, run.id), []
        while True:
            finished = done.wait(HAND_OUT_EVERY_S)
            while not out.empty():
                event = out.get_nowait()
                if isinstance(event, FINAL) and (saved := _resume_if_new(resume, seen)) is not None:
                    yield events.encode(saved)
                yield events.encode(event)
            if (saved := _resume_if_new(resume, seen)) is not None:
                yield events.encode(saved)
            if finished and out.empty():
                return
