"""Background training: the queue, a real worker process, cancel, a killed worker, invalid configs."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from vitdemo import jobs
from vitdemo.checkpoints import read_meta
from vitdemo.config import CNNConfig, ConfigError, TrainConfig, ViTConfig
from vitdemo.models import build_model, count_parameters
from vitdemo.registry import Registry, Run

TINY = TrainConfig(
    model=CNNConfig(width=4, depth=1), epochs=1, batch_size=100, train_subset=300, val_size=200, device="cpu"
)
# Long enough to be caught mid-run (hundreds of short epochs), small enough to start at once.
LONG = TrainConfig(
    model=ViTConfig(patch_size=14, embed_dim=16, depth=1, num_heads=2),
    epochs=500,
    batch_size=50,
    train_subset=500,
    val_size=100,
    device="cpu",
)
WORKER_IDLE_S = 2.0  # test workers exit soon after their last run


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "home")


def wait_for(check: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def stepping(reg: Registry, run_id: int) -> Run | None:
    """The run, once it is running and has reported at least one training step."""
    run = reg.get_run(run_id)
    return run if run.status == "running" and (run.progress or {}).get("step", 0) >= 1 else None


@pytest.fixture
def worker(reg: Registry, data_dir: Path):
    """Start a worker subprocess on demand; afterwards make sure it has exited."""

    def start() -> bool:
        return jobs.ensure_worker(reg, "cpu", str(data_dir), idle_exit_s=WORKER_IDLE_S)

    yield start
    for run in reg.list_runs():
        if run.status in ("queued", "running"):
            reg.request_cancel(run.id)
    wait_for(lambda: not jobs.worker_running(reg, "cpu"), 60, "the worker to exit")


def test_invalid_config_is_rejected_before_it_is_queued(reg: Registry) -> None:
    with pytest.raises(ConfigError, match="divisible"):
        jobs.submit(reg, TrainConfig(model=ViTConfig(embed_dim=30, num_heads=4)))
    with pytest.raises(ConfigError, match="epochs"):
        jobs.submit(reg, TrainConfig(epochs=0))
    assert reg.list_runs() == []


def test_cuda_without_a_gpu_is_rejected(reg: Registry) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert jobs.available_devices() == ["cpu"]
    with pytest.raises(ConfigError, match="no CUDA"):
        jobs.submit(reg, TrainConfig(device="cuda"))
    assert reg.list_runs() == []


def test_submit_queues_with_the_resolved_device_and_size(reg: Registry) -> None:
    run = reg.get_run(jobs.submit(reg, TINY))
    assert run.status == "queued" and run.device == "cpu"
    assert run.num_params == count_parameters(build_model(TINY.model))
    assert run.name == "cnn-mnist-w4x1-e1" and TrainConfig.from_dict(run.config) == TINY
    named = reg.get_run(jobs.submit(reg, TrainConfig(**{**TINY.__dict__, "name": "mine"})))
    assert named.name == "mine"


def test_runs_go_queued_running_done_in_a_worker_process(reg: Registry, worker) -> None:
    first = jobs.submit(reg, TINY)
    second = jobs.submit(
        reg, TrainConfig(**{**TINY.__dict__, "model": ViTConfig(patch_size=14, embed_dim=8, depth=1, num_heads=2)})
    )
    seen: dict[int, list[str]] = {first: [], second: []}
    t0 = time.monotonic()
    assert worker() is True
    assert worker() is False  # one worker per device

    def both_done() -> bool:
        runs = {r.id: r for r in reg.list_runs()}
        assert sum(r.status == "running" for r in runs.values()) <= 1  # one run at a time on a device
        for run_id, statuses in seen.items():
            if not statuses or statuses[-1] != runs[run_id].status:
                statuses.append(runs[run_id].status)
        return all(r.status in ("done", "failed", "cancelled") for r in runs.values())

    wait_for(both_done, 120, "both runs to finish", every_s=0.02)
    elapsed = time.monotonic() - t0
    assert seen == {first: ["queued", "running", "done"], second: ["queued", "running", "done"]}, reg.get_run(
        first
    ).error
    a, b = reg.get_run(first), reg.get_run(second)
    assert b.started_at >= a.finished_at  # queued runs wait for the one before them
    for run in (a, b):
        assert 0.05 < run.test_acc <= 1 and 0 < run.macro_f1 <= 1 and run.val_acc is not None
        assert 0 < run.train_time_s < elapsed and run.device == "cpu" and run.error is None
        assert run.epochs_done == 1 and [e["epoch"] for e in reg.epochs(run.id)] == [1]
        assert run.progress["step"] == run.progress["total_steps"] == 3  # 300 images / 100 per batch
        assert Path(run.checkpoint).is_file() and Path(run.checkpoint).parent == reg.checkpoint_dir.resolve()
        history = read_meta(run.checkpoint).metrics["history"]  # curves travel with the file
        assert [e["epoch"] for e in history] == [1] and history[0]["val_acc"] == reg.epochs(run.id)[0]["val_acc"]
    wait_for(lambda: not jobs.worker_running(reg, "cpu"), 30, "the idle worker to exit")


def test_cancel_stops_a_running_run_within_seconds(reg: Registry, worker) -> None:
    run_id = jobs.submit(reg, LONG)
    worker()
    wait_for(lambda: stepping(reg, run_id), 90, "the run to start training")
    t0 = time.monotonic()
    assert reg.request_cancel(run_id) == "running"
    run = wait_for(lambda: (r := reg.get_run(run_id)).status != "running" and r, 10, "the run to stop")
    assert run.status == "cancelled" and time.monotonic() - t0 < 5
    assert run.checkpoint is None and run.test_acc is None and run.finished_at is not None


def test_a_queued_run_is_cancelled_at_once(reg: Registry) -> None:
    run_id = jobs.submit(reg, TINY)
    assert reg.request_cancel(run_id) == "cancelled"
    assert reg.claim_next(os.getpid(), "cpu") is None


def test_a_killed_worker_leaves_its_run_failed_after_restart(reg: Registry, worker) -> None:
    run_id = jobs.submit(reg, LONG)
    worker()
    run = wait_for(lambda: stepping(reg, run_id), 90, "the run to start training")
    os.kill(run.worker_pid, signal.SIGKILL)
    wait_for(lambda: not jobs.worker_running(reg, "cpu"), 10, "the killed worker's lock to be released")
    assert reg.get_run(run_id).status == "running"  # nobody has noticed yet
    assert worker() is True  # a new worker (or a page load) notices
    run = wait_for(lambda: (r := reg.get_run(run_id)).status == "failed" and r, 10, "the run to be marked failed")
    assert "stopped unexpectedly" in run.error and run.finished_at is not None


def test_a_run_that_fails_is_marked_failed_with_its_error(reg: Registry) -> None:
    run_id = reg.create_run(
        name="broken", kind="vit", dataset="mnist", config={**TINY.to_dict(), "warp": 9}, device="cpu"
    )
    run = reg.claim_next(os.getpid(), "cpu")
    assert jobs.execute_run(reg, run) is None
    run = reg.get_run(run_id)
    assert run.status == "failed" and "unknown training settings: warp" in run.error and run.finished_at


def test_worker_takes_a_run_queued_while_it_was_stopping(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run submitted just as the worker decides it has been idle long enough must still be run."""
    executed: list[int] = []

    def fake_execute(registry: Registry, run: Run, **_: object) -> None:
        executed.append(run.id)
        registry.update_run(run.id, status="done")

    real_work = jobs._work
    late: list[int] = []

    def work_then_a_submit_arrives(*args: object) -> int:
        n = real_work(*args)
        if not late:  # the page queued a run and saw the worker's lock still held: it started no worker
            late.append(jobs.submit(reg, TINY))
        return n

    monkeypatch.setattr(jobs, "execute_run", fake_execute)
    monkeypatch.setattr(jobs, "_work", work_then_a_submit_arrives)
    assert jobs.run_worker(reg, "cpu", idle_exit_s=0.2) == 1
    assert executed == late and reg.get_run(late[0]).status == "done"


def test_a_second_worker_for_the_same_device_exits(reg: Registry) -> None:
    started = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        with open(reg.home / "worker-cpu.lock", "a") as lock:
            jobs.fcntl.flock(lock, jobs.fcntl.LOCK_EX)
            started.set()
            release.wait(10)

    thread = threading.Thread(target=hold_lock)
    thread.start()
    started.wait(5)
    try:
        assert jobs.worker_running(reg, "cpu")
        jobs.submit(reg, TINY)
        t0 = time.monotonic()
        assert jobs.run_worker(reg, "cpu", idle_exit_s=0.1) == 0
        assert time.monotonic() - t0 < 3
        assert reg.list_runs()[0].status == "queued"
    finally:
        release.set()
        thread.join()
    assert not jobs.worker_running(reg, "cpu")
