"""The worker: real worker processes and their training children, cancel mid-step, a killed worker, a failed
run, a registry that cannot record a result, and files left by a training that was killed mid-write."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vitdemo.checkpoints import read_meta
from vitdemo.config import CNNConfig, TrainConfig, ViTConfig
from vitdemo.models.classic import load_classic
from vitdemo.pretrain import is_pretrained_encoder
from vitdemo.runconfig import ClassicConfig, ClassicRun, PretrainConfig, PretrainRun
from vitdemo.runs import claims, events, execute, local, points, queue, worker
from vitdemo.runs.dbfile import RegistryUnavailable
from vitdemo.runs.local import ensure_worker  # the real one: conftest's worker_starts replaces local's
from vitdemo.runs.people import CLI
from vitdemo.runs.store import Registry, Run
from vitdemo.training.watch import WatchRow

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
# Every step takes seconds on one thread (6 s on a busy 2-core machine; ~1 GB): a cancel must not wait for it.
SLOW_STEPS = TrainConfig(
    model=ViTConfig(patch_size=4, embed_dim=384, depth=4, num_heads=6),
    epochs=1,
    batch_size=128,
    train_subset=512,
    val_size=100,
    device="cpu",
)
WORKER_IDLE_S = 2.0  # test workers exit soon after their last run


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


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


@pytest.fixture
def start_worker(reg: Registry, data_dir: Path):
    """Start a worker subprocess on demand; afterwards make sure it has exited."""

    def start() -> bool:
        return ensure_worker(reg, "cpu", str(data_dir), idle_exit_s=WORKER_IDLE_S)

    yield start
    for run in reg.list_runs():
        if run.status in ("queued", "running"):
            queue.request_cancel(reg, run.id, CLI)
    wait_for(lambda: not local.worker_running(reg, "cpu"), 60, "the worker to exit")


def test_runs_go_queued_running_done_in_a_worker_process(reg: Registry, start_worker) -> None:
    first = queue.submit(reg, TINY, CLI)
    second = queue.submit(
        reg, TrainConfig(**{**TINY.__dict__, "model": ViTConfig(patch_size=14, embed_dim=8, depth=1, num_heads=2)}), CLI
    )
    seen: dict[int, list[str]] = {first: [], second: []}
    t0 = time.monotonic()
    assert start_worker() is True
    assert start_worker() is False  # one worker per device

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
        meta = read_meta(run.checkpoint)
        assert meta.metrics["test_acc"] == run.test_acc  # scored once, by vitdemo.evaluate, and recorded as such
        history = meta.metrics["history"]  # curves travel with the file
        assert [e["epoch"] for e in history] == [1] and history[0]["val_acc"] == reg.epochs(run.id)[0]["val_acc"]
    wait_for(lambda: not local.worker_running(reg, "cpu"), 30, "the idle worker to exit")


def test_cancel_stops_a_run_within_seconds_even_inside_a_long_step(
    reg: Registry, start_worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VITDEMO_THREADS", "1")  # the worker's training process: slow steps on any machine
    run_id = queue.submit(reg, SLOW_STEPS, CLI)
    start_worker()
    run = wait_for(lambda: stepping(reg, run_id), 120, "the first slow step to finish")
    assert run.progress["step"] == 1 and run.progress["total_steps"] == 4
    (child,) = wait_for(lambda: children(run.worker_pid), 5, "the worker's training process")
    t0 = time.monotonic()  # the second step has just begun and takes seconds
    assert queue.request_cancel(reg, run_id, CLI) == "running"
    run = wait_for(lambda: (r := reg.get_run(run_id)).status != "running" and r, 30, "the run to stop", every_s=0.01)
    latency = time.monotonic() - t0
    print(f"\ncancel -> cancelled in {latency:.2f} s (a step takes {run.progress['elapsed_s']:.1f} s)")
    assert run.status == "cancelled" and run.finished_at is not None
    assert run.progress["step"] == 1  # the step in progress was cut short, not waited for
    assert run.checkpoint is None and run.test_acc is None
    assert latency < 10  # typically under a second; generous for a loaded machine
    wait_for(lambda: not local.pid_alive(child), 5, "the training process to be gone")
    assert local.worker_running(reg, "cpu")  # the worker lives on, idle, holding no model and no torch
    assert "libtorch" not in Path(f"/proc/{run.worker_pid}/maps").read_text()


def test_a_killed_worker_leaves_its_run_failed_after_restart(reg: Registry, start_worker) -> None:
    run_id = queue.submit(reg, LONG, CLI)
    start_worker()
    run = wait_for(lambda: stepping(reg, run_id), 90, "the run to start training")
    (child,) = children(run.worker_pid)
    os.kill(run.worker_pid, signal.SIGKILL)
    wait_for(lambda: not local.pid_alive(child), 10, "the training process to follow its worker")
    wait_for(lambda: not local.worker_running(reg, "cpu"), 10, "the killed worker's lock to be released")
    assert reg.get_run(run_id).status == "running"  # nobody has noticed yet
    assert start_worker() is True  # a new worker (or a page load) notices
    run = wait_for(lambda: (r := reg.get_run(run_id)).status == "failed" and r, 10, "the run to be marked failed")
    assert "stopped unexpectedly" in run.error and run.finished_at is not None


def test_a_run_that_fails_is_marked_failed_with_its_error(reg: Registry) -> None:
    run_id = reg.create_run(
        name="broken", kind="vit", dataset="mnist", config={**TINY.to_dict(), "warp": 9}, device="cpu"
    )
    run = claims.claim_next(reg, os.getpid(), "cpu")
    assert execute.execute_run(reg, run) is None
    run = reg.get_run(run_id)
    assert run.status == "failed" and "unknown training settings: warp" in run.error and run.finished_at


class FullDisk(Registry):
    """The disk fills up once the checkpoint is written: recording the end of a run fails `failures` times."""

    def __init__(self, home: Path, failures: int) -> None:
        super().__init__(home)
        self.failures = failures

    def _full(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RegistryUnavailable(
                f"the run registry {self.db_path} could not be written (database or disk is full)"
            )

    def finish_run(self, run_id: int, worker_pid: int | None, **fields) -> bool:
        self._full()
        return super().finish_run(run_id, worker_pid, **fields)

    def transition(self, run_id: int, status: str, **kwargs) -> bool:
        if status == "failed":
            self._full()
        return super().transition(run_id, status, **kwargs)


def test_a_result_that_cannot_be_recorded_leaves_the_run_failed_and_no_file(reg: Registry, data_dir: Path) -> None:
    run = reg.get_run(queue.start_run(reg, TINY, os.getpid()))
    assert execute.execute_run(FullDisk(reg.home, failures=1), run, data_dir=str(data_dir)) is None
    run = reg.get_run(run.id)
    assert run.status == "failed" and run.checkpoint is None and "disk is full" in run.error
    assert "could not be recorded" in run.error
    assert list(reg.checkpoint_dir.iterdir()) == []  # the checkpoint was written, then removed


def test_a_run_that_cannot_even_be_marked_failed_is_failed_at_the_next_worker_start(
    reg: Registry, data_dir: Path
) -> None:
    run_id = queue.submit(reg, TINY, CLI)
    gone = claims.claim(reg, run_id, pid=_dead_pid())  # its worker: a process that has since ended
    assert execute.execute_run(FullDisk(reg.home, failures=99), gone, data_dir=str(data_dir)) is None
    assert reg.get_run(run_id).status == "running" and list(reg.checkpoint_dir.iterdir()) == []
    assert local.run_worker(reg, "cpu", idle_exit_s=0.1) == 0
    run = reg.get_run(run_id)
    assert run.status == "failed" and "stopped unexpectedly" in run.error


def test_worker_start_removes_files_left_by_killed_trainings(reg: Registry) -> None:
    def run(status: str, **fields) -> int:
        return reg.create_run(name=status, kind="cnn", dataset="mnist", config={}, status=status, **fields)

    now, live = time.time(), os.getpid()
    failed, cancelled, done = run("failed"), run("cancelled"), run("done")
    running = run("running", worker_pid=live, heartbeat=now)  # still training elsewhere (a CLI run)
    orphan = run("running", worker_pid=_dead_pid(), heartbeat=now)  # its worker was killed mid-write
    folder = reg.checkpoint_dir
    folder.mkdir(parents=True)
    files = {
        "stale": folder / f".run-{failed}.safetensors.k2j4.tmp",
        "orphan": folder / f".run-{orphan}.safetensors.a8x1.tmp",
        "unknown": folder / ".run-999.safetensors.zz.tmp",
        "cancelled": folder / f"run-{cancelled}.safetensors",
        "writing": folder / f".run-{running}.safetensors.q0q0.tmp",
        "done": folder / f"run-{done}.safetensors",
        "other": folder / "notes.txt",
    }
    for path in files.values():
        path.write_bytes(b"partial weights")
    reg.update_run(done, checkpoint=str(files["done"].resolve()))
    assert local.run_worker(reg, "cpu", idle_exit_s=0.1) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(files[k].name for k in ("writing", "done", "other"))
    assert reg.get_run(orphan).status == "failed" and reg.get_run(running).status == "running"


class Instant:
    """An execution that has already ended with the run done (it stands in for a child that trains at once)."""

    def __init__(self, registry: Registry, run: Run) -> None:
        self.result = [events.Result({"test_acc": 0.5}, events.RunFile(f"run-{run.id}.safetensors"))]
        registry.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        (registry.checkpoint_dir / f"run-{run.id}.safetensors").write_bytes(b"weights")

    def poll(self) -> list:
        out, self.result = self.result, []
        return out

    def ended(self) -> bool:
        return not self.result

    def alive(self) -> bool:
        return False

    def exit_error(self) -> str:
        return "never asked"

    def cancel(self) -> None:
        pass


def test_worker_takes_a_run_queued_while_it_was_stopping(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run submitted just as the worker decides it has been idle long enough must still be run."""
    executed: list[int] = []

    def instant(self, registry: Registry, run: Run, device: str) -> Instant:
        executed.append(run.id)
        return Instant(registry, run)

    real_work = worker.work
    late: list[int] = []

    def work_then_a_submit_arrives(*args: object, **kwargs: object) -> int:
        n = real_work(*args, **kwargs)
        if not late:  # the page queued a run and saw the worker's lock still held: it started no worker
            late.append(queue.submit(reg, TINY, CLI))
        return n

    monkeypatch.setattr(local.LocalExecutor, "start", instant)
    monkeypatch.setattr(worker, "work", work_then_a_submit_arrives)
    assert local.run_worker(reg, "cpu", idle_exit_s=0.2) == 1
    assert executed == late and reg.get_run(late[0]).status == "done"


def test_a_second_worker_for_the_same_device_exits(reg: Registry) -> None:
    started = threading.Event()
    release = threading.Event()
    reg.home.mkdir(parents=True)

    def hold_lock() -> None:
        with open(reg.home / "worker-cpu.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            started.set()
            release.wait(10)

    thread = threading.Thread(target=hold_lock)
    thread.start()
    started.wait(5)
    try:
        assert local.worker_running(reg, "cpu")
        queue.submit(reg, TINY, CLI)
        t0 = time.monotonic()
        assert local.run_worker(reg, "cpu", idle_exit_s=0.1) == 0
        assert time.monotonic() - t0 < 3
        assert reg.list_runs()[0].status == "queued"
    finally:
        release.set()
        thread.join()
    assert not local.worker_running(reg, "cpu")


def test_a_finished_run_is_calibrated_on_its_validation_split(reg: Registry, data_dir: Path) -> None:
    """The worker fits a temperature on the run's validation images and stores it: the probabilities shown for a
    new run are calibrated like the shipped ones (a label-smoothed model is under-confident, so T < 1)."""
    run = reg.get_run(queue.start_run(reg, TINY, os.getpid()))
    assert execute.execute_run(reg, run, data_dir=str(data_dir)) is not None
    meta = read_meta(reg.get_run(run.id).checkpoint)
    assert meta.temperature != 1.0 and 0.05 < meta.temperature < 1.0
    assert meta.metrics["kept"] == TINY.keep


def test_a_run_records_its_loss_points_and_its_watched_images(reg: Registry, data_dir: Path) -> None:
    """While it trains a run writes loss points (from its first step to its last) and its answers on the ten
    watched test images; when it is done, those of the weights it keeps, calibrated."""
    run = reg.get_run(queue.start_run(reg, TINY, os.getpid()))
    assert execute.execute_run(reg, run, data_dir=str(data_dir)) is not None
    done = reg.get_run(run.id)
    got = points.points(reg, run.id)
    assert got[0]["step"] == 1 and got[-1]["step"] == 3 and got[-1]["at_epoch"] == 1.0  # 3 steps: 300 / 100
    assert done.progress["points"] == len(got) and all(p["loss"] > 0 for p in got)
    row = WatchRow.from_dict(reg.live().watches[run.id])
    assert row.labels == tuple(range(10)) and row.calibrated and row.step == 3 and row.epoch == 1
    assert all(0.1 <= p <= 1 for p in row.probs)


# -- the other families: scikit-learn baselines and pretrain-then-fine-tune runs --------------------------------
TINY_CLASSIC = ClassicRun(model=ClassicConfig(kind="logreg", max_iter=50), train_subset=600, val_size=200)
TINY_VIT = ViTConfig(patch_size=7, embed_dim=16, depth=1, num_heads=2)
TINY_PRETRAIN = PretrainRun(
    "mae",
    PretrainConfig(epochs=1, batch_size=100),
    TrainConfig(model=TINY_VIT, epochs=1, batch_size=50, train_subset=400, val_size=100, labels=100, device="cpu"),
)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_classic_run_is_fitted_scored_and_saved_by_a_worker(reg: Registry, start_worker) -> None:
    run_id = queue.submit(reg, TINY_CLASSIC, CLI)
    queued = reg.get_run(run_id)
    assert queued.kind == "logreg" and queued.device == "cpu" and queued.name == "logreg-mnist-c0.1-n600"
    assert queued.config == TINY_CLASSIC.to_dict() and queued.num_params is None  # known once it is fitted
    start_worker()
    run = wait_for(lambda: (r := reg.get_run(run_id)).status not in ("queued", "running") and r, 120, "the fit")
    assert run.status == "done", run.error
    assert 0.5 < run.test_acc <= 1 and 0.5 < run.macro_f1 <= 1 and 0.5 < run.val_acc <= 1
    assert run.num_params == 7850 and run.epochs_done == 1 and run.train_time_s > 0 and run.device == "cpu"
    path = Path(run.checkpoint)
    assert path.name == f"run-{run_id}.skops" and path.parent == reg.checkpoint_dir.resolve()
    fitted = load_classic(path)  # through the allowlist, like a shipped file
    assert fitted.metrics["test_acc"] == run.test_acc and fitted.metrics["train_images"] == 600
    assert fitted.config == TINY_CLASSIC.model


def test_a_pretrain_run_pretrains_its_encoder_then_fine_tunes_it(reg: Registry, data_dir: Path) -> None:
    run = reg.get_run(queue.start_run(reg, TINY_PRETRAIN, os.getpid()))
    assert run.kind == "vit" and run.name == "vit-mnist-p7-d16x1-e1-l100-mae"
    assert execute.execute_run(reg, run, data_dir=str(data_dir)) is not None
    run = reg.get_run(run.id)
    assert run.status == "done" and run.test_acc is not None, run.error
    encoder = reg.checkpoint_dir / f"run-{run.id}-encoder.safetensors"
    meta = read_meta(encoder)
    assert is_pretrained_encoder(meta) and meta.metrics["pretrain_images"] == 400  # the run's training images
    tuned = read_meta(run.checkpoint).train_config
    assert tuned["init"] == str(encoder.resolve()) and tuned["labels"] == 100  # the fine-tune started from it
    assert run.config == TINY_PRETRAIN.to_dict()  # the run still says what it was asked to do


def test_a_cancel_stops_pretraining_and_leaves_no_encoder(reg: Registry, data_dir: Path) -> None:
    run = reg.get_run(queue.start_run(reg, TINY_PRETRAIN, os.getpid()))
    reg.update_run(run.id, cancel_requested=1)  # asked before the first pretraining step ends
    assert execute.execute_run(reg, run, data_dir=str(data_dir)) is None
    run = reg.get_run(run.id)
    assert run.status == "cancelled" and run.checkpoint is None
    assert not reg.checkpoint_dir.exists() or list(reg.checkpoint_dir.iterdir()) == []


def test_worker_start_removes_the_other_families_leftover_files(reg: Registry) -> None:
    """Classic runs write run-<id>.skops, pretrain runs run-<id>-encoder.safetensors: a failed run's, and the
    encoder of a deleted run, are leftovers too (they were kept before); a done run's encoder is kept."""

    def run(status: str, **fields) -> int:
        return reg.create_run(name=status, kind="vit", dataset="mnist", config={}, status=status, **fields)

    failed, done = run("failed"), run("done")
    folder = reg.checkpoint_dir
    folder.mkdir(parents=True)
    files = {
        "failed skops": folder / f"run-{failed}.skops",
        "failed encoder": folder / f"run-{failed}-encoder.safetensors",
        "skops tmp": folder / f".run-{failed}.skops.x1.tmp",
        "deleted encoder": folder / "run-999-encoder.safetensors",
        "done": folder / f"run-{done}.safetensors",
        "done encoder": folder / f"run-{done}-encoder.safetensors",
    }
    for path in files.values():
        path.write_bytes(b"weights")
    reg.update_run(done, checkpoint=str(files["done"].resolve()))
    assert local.run_worker(reg, "cpu", idle_exit_s=0.1) == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(files[k].name for k in ("done", "done encoder"))
