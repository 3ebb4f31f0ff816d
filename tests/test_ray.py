"""The Ray executor against a real local Ray instance (2 CPUs, a small object store; one for the module): runs
train as Ray tasks and are recorded by the worker with their checkpoint and resume file, two at once, a cancel
ends the task's process within seconds, a killed task fails its run with a sentence, a tiny sweep prunes, and
the command line trains and resumes there. The web server's import graph never reaches Ray
(tests/test_import_graph.py). No mocks of Ray."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vitdemo import runfiles
from vitdemo.config import LinearConfig, TrainConfig
from vitdemo.runs import cluster, queue, worker
from vitdemo.runs.people import CLI
from vitdemo.runs.store import Registry

ray = pytest.importorskip("ray", reason="Ray is an extra: pip install -r requirements-ray.txt")
ray_exec = pytest.importorskip("vitdemo.runs.ray_exec")

# a linear model on 300 images: the task's time is Ray's and the process's, not the training's
TINY = TrainConfig(model=LinearConfig(), epochs=2, batch_size=100, train_subset=300, val_size=200, device="cpu")
LONG = dataclasses.replace(TINY, epochs=400, train_subset=2000)  # trains far longer than any test waits


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    """One local Ray instance for the session (only this module uses it: it is shut down when the module ends, so
    the rest of the suite does not share the cores with its idle workers): 2 CPUs, an 80 MB object store, no
    dashboard. (Ray 2.60 binds a local instance to the machine's address even when told 127.0.0.1, and guards it
    with a token.)"""
    ray_exec.connect("", num_cpus=2, object_store_memory=80 * 2**20)
    yield
    ray.shutdown()


@pytest.fixture
def on_ray(ray_instance: None, reg: Registry, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> ray_exec.RayExecutor:
    chosen = ray_exec.RayExecutor("", str(data_dir), reg)
    monkeypatch.setattr(queue, "configured_executor", lambda: chosen)
    return chosen


def _train_tasks() -> list[int]:
    """The pids of the processes running a training task now (Ray titles them `ray::_train_task`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::_train_task"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait(condition, timeout_s: float, every_s: float = 0.1) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every_s)
    return condition()


def _working(reg: Registry, chosen: ray_exec.RayExecutor) -> threading.Thread:
    thread = threading.Thread(target=worker.work, args=(reg, chosen, "cpu"), kwargs={"idle_exit_s": 1.0})
    thread.start()
    return thread


def test_two_runs_train_at_once_on_the_cluster_and_come_back_with_their_files(
    reg: Registry, on_ray: ray_exec.RayExecutor
) -> None:
    assert on_ray.capacity("cpu") == 2 and on_ray.devices()[0].label.startswith("Ray cluster: 1 node, 2 CPUs")
    ids = [queue.submit(reg, dataclasses.replace(TINY, seed=s), CLI) for s in (1, 2)]
    worker.work(reg, on_ray, "cpu", idle_exit_s=0.5)
    first, second = (reg.get_run(i) for i in ids)
    for run in (first, second):
        assert run.status == "done", run.error
        assert Path(run.checkpoint).is_file() and run.test_acc > 0.3
        assert runfiles.path(reg.checkpoint_dir, run.id, runfiles.RESUME).is_file()  # sent back, so resumable
        assert len(reg.epochs(run.id)) == 2
        assert cluster.where(run.progress) == f"node {ray.nodes()[0]['NodeManagerAddress']} · CPU"
    assert first.started_at < second.finished_at and second.started_at < first.finished_at  # at the same time
    assert len(on_ray._data) == 1  # one object for the dataset, however many runs read it
    state = cluster.read_state(reg)
    assert state is not None and state.connected and state.devices[0].runs_at_once == 2


def test_a_cancel_ends_the_task_within_seconds(reg: Registry, on_ray: ray_exec.RayExecutor) -> None:
    run_id = queue.submit(reg, LONG, CLI)
    thread = _working(reg, on_ray)
    assert _wait(lambda: int((reg.get_run(run_id).progress or {}).get("step") or 0) > 0, 60)
    assert _train_tasks()
    asked = time.monotonic()
    queue.request_cancel(reg, run_id, CLI)
    assert _wait(lambda: reg.get_run(run_id).status == "cancelled", 10)
    assert _wait(lambda: not _train_tasks(), 10)  # the task's process is gone, not only the record
    took = time.monotonic() - asked
    thread.join(30)
    assert took < 8.0


def test_a_killed_ray_worker_fails_its_run_with_a_sentence(reg: Registry, on_ray: ray_exec.RayExecutor) -> None:
    run_id = queue.submit(reg, LONG, CLI)
    thread = _working(reg, on_ray)
    assert _wait(lambda: int((reg.get_run(run_id).progress or {}).get("step") or 0) > 0, 60)
    for pid in _train_tasks():
        os.kill(pid, signal.SIGKILL)
    assert _wait(lambda: reg.get_run(run_id).status == "failed", 20)
    thread.join(30)
    run = reg.get_run(run_id)
    assert run.error == ray_exec.DIED and "Traceback" not in run.error


def test_a_tiny_sweep_runs_its_trials_as_runs_and_prunes_the_hopeless(
    reg: Registry, on_ray: ray_exec.RayExecutor, capsys: pytest.CaptureFixture
) -> None:
    from optuna.trial import TrialState

    from vitdemo.cli.main import main
    from vitdemo.sweeps import drive, record, report, study
    from vitdemo.sweeps.space import Param, SweepSpec

    base = dataclasses.replace(TINY, epochs=40, train_subset=1000)  # long enough for the pruner to see epoch 1
    grid = (Param("lr", choices=(0.05, 1e-9)), Param("seed", choices=(1, 2)))  # 1e-9 learns nothing: hopeless
    # one at a time, in a seeded order (good, good, then the hopeless two): the verdicts do not depend on timing
    spec = SweepSpec(base, grid, budget=4, sampler="grid", parallel=1, seed=4)
    sweep_id = record.create_sweep(reg, spec, owner=CLI.owner, owner_name=CLI.name, teacher=True, name="tiny")
    sweep = record.get_sweep(reg, sweep_id)
    assert drive.slots(dataclasses.replace(sweep, spec=dataclasses.replace(spec, parallel=0))) == 2  # the cluster's

    stop = threading.Event()

    def claim() -> None:
        while not stop.is_set():
            worker.work(reg, on_ray, "cpu", idle_exit_s=0.5)

    thread = threading.Thread(target=claim)
    thread.start()
    try:
        drive.drive(reg, sweep_id, poll_s=0.1)
    finally:
        stop.set()
        thread.join(30)
    summary = report.summarise(reg, record.get_sweep(reg, sweep_id))
    assert len(summary.rows) == 4 and summary.pruned >= 1
    runs = {r["run_id"]: reg.get_run(r["run_id"]) for r in summary.rows}
    for row in summary.rows:
        run = runs[row["run_id"]]
        assert run.owner == CLI.owner and run.name.startswith("tiny · trial")  # ordinary, owned, listed runs
        if row["state"] == "pruned":
            assert run.status == "cancelled" and run.epochs_done < 40 and row["params"]["lr"] == 1e-9
    assert summary.best is not None and summary.best["params"]["lr"] == 0.05 and summary.best["value"] > 0.6
    assert summary.best_config is not None and summary.best_config.lr == 0.05
    rebuilt = study.rebuild(spec, drive.load_trials(reg, sweep_id))  # the study, from the runs alone
    states = [t.state for t in rebuilt.trials]
    assert states.count(TrialState.PRUNED) == summary.pruned and TrialState.RUNNING not in states

    assert main(["sweep", "--home", str(reg.home), "--show", str(sweep_id)]) == 0
    out = capsys.readouterr().out
    assert f"{summary.pruned} pruned" in out and f"best: run #{summary.best['run_id']}" in out


def test_the_command_line_trains_on_the_cluster_and_resumes_there_from_the_bytes_it_sends(
    reg: Registry, ray_instance: None, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train --executor ray`, then `--resume` of that run: its resume file (on this disk only) goes to the task as
    bytes, and the resumed run picks up at its second epoch."""
    from vitdemo.cli.main import main

    monkeypatch.setattr(queue, "_configured", {})  # the CLI makes its connection the process's executor
    monkeypatch.setattr(queue, "_chosen", {})
    where = ["--home", str(reg.home), "--data-dir", str(data_dir), "--executor", "ray"]
    tiny = ["--model", "linear", "--epochs", "1", "--train-subset", "300", "--val-size", "200", "--device", "cpu"]
    assert main(["train", *tiny, *where]) == 0
    (first,) = reg.list_runs()
    assert first.status == "done" and cluster.where(first.progress).startswith("node ")
    assert main(["train", "--resume", str(first.id), "--epochs", "2", *where]) == 0
    resumed = next(r for r in reg.list_runs() if r.id != first.id)
    assert resumed.status == "done" and resumed.config["resume"].endswith(f"run-{first.id}.resume.safetensors")
    assert [e["epoch"] for e in reg.epochs(resumed.id)] == [1, 2]  # epoch 1 carried over, epoch 2 trained there


def test_a_pretrain_run_sends_its_encoder_back(reg: Registry, on_ray: ray_exec.RayExecutor) -> None:
    """A pretrain-then-fine-tune run makes two files on its node: both come back as bytes."""
    from vitdemo.config import CNNConfig
    from vitdemo.runconfig import PretrainConfig, PretrainRun

    fine_tune = dataclasses.replace(TINY, model=CNNConfig(width=4, depth=1), epochs=1, labels=100)
    run_id = queue.submit(reg, PretrainRun("simclr", PretrainConfig(epochs=1, batch_size=64), fine_tune), CLI)
    worker.work(reg, on_ray, "cpu", idle_exit_s=0.5)
    run = reg.get_run(run_id)
    assert run.status == "done", run.error
    made = sorted(p.name for p in reg.checkpoint_dir.iterdir())
    assert made == [
        f"run-{run_id}-encoder.safetensors",
        f"run-{run_id}.resume.safetensors",
        f"run-{run_id}.safetensors",
    ]
