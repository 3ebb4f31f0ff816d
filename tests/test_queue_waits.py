"""The class queue shows when each run should start (issue 24): from the estimates of the runs ahead of it on
its device, a running run counting only what it has left; a device that trains several at once fills its slots."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from apptest import APP, frame_with, texts
from streamlit.testing.v1 import AppTest

from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.runs import admission, people, queue
from vitdemo.runs.people import CLI
from vitdemo.runs.store import Registry, Run
from vitdemo.views.estimates import expected_starts, start_text, time_left

TINY = TrainConfig(model=CNNConfig(width=4, depth=1), epochs=1, batch_size=100, train_subset=300, val_size=200)
BASE = Run(
    id=0, name="", kind="cnn", dataset="mnist", config={"epochs": 1}, status="queued", created_at=0.0,
    started_at=None, finished_at=None, device="cpu", num_params=None, epochs_done=0, val_acc=None, test_acc=None,
    macro_f1=None, train_time_s=None, checkpoint=None, error=None, baseline=False, cancel_requested=False,
    worker_pid=None, heartbeat=None, progress=None,
)  # fmt: skip


def run(run_id: int, status: str = "queued", device: str = "cpu", **progress: float) -> Run:
    return dataclasses.replace(BASE, id=run_id, status=status, device=device, progress=progress or None)


def test_a_queued_run_starts_when_the_runs_ahead_on_its_device_are_done() -> None:
    runs = [run(3), run(1, "running", step=50, total_steps=100), run(2), run(4, device="cuda")]
    seconds = {1: 100.0, 2: 60.0, 3: 30.0, 4: 500.0}
    starts = expected_starts(runs, seconds)
    assert starts == {2: 50.0, 3: 110.0, 4: 0.0}  # half of run 1 is left; 3 waits for 1 and 2; the GPU is free
    assert start_text(starts[4]) == "next" and start_text(starts[3]) == "in about 2 min"


def test_a_running_run_counts_its_trainers_own_time_left() -> None:
    running = run(1, "running", step=10, total_steps=100, eta_s=20.0)
    assert time_left(running, 1000.0) == 20.0  # measured, not 90% of the estimate
    assert expected_starts([running, run(2)], {1: 1000.0, 2: 5.0}) == {2: 20.0}


def test_a_device_with_two_slots_starts_two_runs_at_once() -> None:
    runs = [run(1, device="cuda"), run(2, device="cuda"), run(3, device="cuda")]
    starts = expected_starts(runs, {1: 40.0, 2: 10.0, 3: 5.0}, slots={"cuda": 2})
    assert starts == {1: 0.0, 2: 0.0, 3: 10.0}


def test_a_run_ahead_without_an_estimate_leaves_the_rest_unknown() -> None:
    starts = expected_starts([run(1), run(2), run(3)], {1: None, 2: 5.0, 3: 5.0})
    assert starts == {1: 0.0, 2: None, 3: None}
    assert start_text(None) == "-"


def test_the_class_queue_shows_when_each_run_starts(tmp_home: Path, tmp_path: Path, monkeypatch, worker_starts) -> None:
    """On the Train page (AppTest, the server's own estimator): the queue's 'starts' column and your place."""
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    reg = Registry(tmp_home)
    ana = people.register(reg, "Ana")
    fixed = admission.Estimator(lambda model, batch, device: 1e4, threads=1)
    first = queue.submit(reg, TINY, CLI, estimator=fixed)
    mine = queue.submit(reg, TINY, ana.actor(), estimator=fixed)
    assert [r.status for r in reg.list_runs() if not r.baseline] == ["queued", "queued"]  # no worker in tests
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["who"] = ana.token
    at.run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    table = frame_with(at, "starts").set_index("id")
    assert table.loc[first, "starts"] == "next"
    assert re.fullmatch(r"in about \d+ s", table.loc[mine, "starts"])  # after the first run's estimated time
    assert [m for m in texts(at, "markdown") if "2nd in line** · starts in about" in m]
