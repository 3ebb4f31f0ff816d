"""The seam between the queue and what executes runs: the events a training sends and the one writer that records
them, heartbeats from a thread, a result that wins over an orphan verdict, run file names, and the executor's
devices as the queue's admission sees them."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vitdemo import runfiles
from vitdemo.config import CNNConfig, ConfigError, TrainConfig, ViTConfig
from vitdemo.runs import claims, events, execute, executor, local, points, queue, record, worker
from vitdemo.runs.executor import Device
from vitdemo.runs.people import CLI, Actor
from vitdemo.runs.store import OverLimit, Registry
from vitdemo.training.resume import state_path

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = TrainConfig(
    model=CNNConfig(width=4, depth=1), epochs=1, batch_size=100, train_subset=300, val_size=200, device="cpu"
)
TEACHER = Actor("teacher", "Teacher", teacher=True)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- events ----------------------------------------------------------------------------------------------------
EVERY_EVENT = [
    events.Started("cuda", 1234),
    events.Progress({"step": 3, "total_steps": 9, "loss": 0.5, "phase": "pretraining (mae)"}),
    events.Point({"step": 3, "epoch": 1, "at_epoch": 0.3, "loss": 0.5, "lr": 1e-3, "elapsed_s": 1.0}, {"step": 3}, 50),
    events.Epoch({"epoch": 1, "train_loss": 0.4, "val_acc": 0.9}),
    events.Watch({"indices": [1, 2], "labels": [0, 1], "preds": [0, 0], "probs": [0.9, 0.6], "step": 3}),
    events.Saved(events.RunFile("run-3.resume.safetensors", b"\x00state\n")),
    events.Result(
        {"test_acc": 0.91},
        events.RunFile("run-3.safetensors", b"\x00weights\n"),
        (events.RunFile("run-3-encoder.safetensors"),),
    ),  # fmt: skip
    events.Cancelled(12.5),
    events.Failed("out of memory: try a smaller batch size or model"),
]


@pytest.mark.parametrize("event", EVERY_EVENT, ids=lambda e: type(e).__name__)
def test_every_event_goes_through_one_json_line(event: events.Event) -> None:
    line = events.encode(event)
    assert "\n" not in line and events.decode(line + "\n") == event


@pytest.mark.parametrize("line", ["", "not json", '{"event": "explode"}', '{"event": "progress", "steps": 1}', "[]"])
def test_a_line_that_is_not_an_event_is_refused(line: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        events.decode(line)


def test_a_training_only_sends_events_and_its_recorder_writes_them(reg: Registry, data_dir: Path) -> None:
    """The trainer opens no registry: the run is unchanged until its events are recorded; then it is done with
    its progress, loss points, epochs, watched answers and result, as when the trainer wrote them itself."""
    run = reg.get_run(queue.start_run(reg, TINY, os.getpid()))
    before = reg.db_path.read_bytes()
    sent: list[events.Event] = []
    assert execute.execute(run, reg.checkpoint_dir, sent.append, data_dir=str(data_dir)) is not None
    assert reg.db_path.read_bytes() == before and reg.get_run(run.id) == run  # nothing written by the trainer
    kinds = [type(e).__name__ for e in sent]
    assert kinds[0] == "Started" and kinds[-1] == "Result" and {"Point", "Epoch", "Watch"} <= set(kinds)
    result = sent[-1]
    assert result.checkpoint == events.RunFile(f"run-{run.id}.safetensors")  # on this disk: named, not sent
    assert (reg.checkpoint_dir / result.checkpoint.name).is_file()
    recorder = record.Recorder(reg, run.id, run.worker_pid)
    for event in sent:
        recorder(event)
    done = reg.get_run(run.id)
    assert recorder.outcome == "done" and done.status == "done" and done.test_acc == result.columns["test_acc"]
    assert done.checkpoint == str((reg.checkpoint_dir / result.checkpoint.name).resolve())
    assert done.device == "cpu" and done.num_params and done.epochs_done == 1 and done.progress["step"] == 3
    assert len(points.points(reg, run.id)) == done.progress["points"] and reg.live().watches[run.id]["calibrated"]


def test_a_remote_result_sends_its_bytes_and_may_only_name_its_own_files(reg: Registry) -> None:
    """An executor that does not share the disk sends the checkpoint's bytes: the recorder writes them into the run
    checkpoint folder. A file that is not the run's is refused: the run fails and nothing is written."""
    mine = queue.start_run(reg, TINY, 42)
    recorder = record.Recorder(reg, mine, 42)
    recorder(events.Result({"test_acc": 0.5}, events.RunFile(f"run-{mine}.safetensors", b"weights")))
    run = reg.get_run(mine)
    assert recorder.outcome == "done" and run.status == "done" and Path(run.checkpoint).read_bytes() == b"weights"
    assert [p.name for p in reg.checkpoint_dir.iterdir()] == [f"run-{mine}.safetensors"]  # no temporary left
    for name in (f"run-{mine}.safetensors", "../registry.sqlite", "notes.txt"):
        other = queue.start_run(reg, TINY, 42)
        record.Recorder(reg, other, 42)(events.Result({"test_acc": 0.9}, events.RunFile(name, b"x")))
        assert reg.get_run(other).status == "failed" and "not a file of run" in reg.get_run(other).error
    assert Path(reg.get_run(mine).checkpoint).read_bytes() == b"weights"
    assert not (reg.home / "registry.sqlite").read_bytes().startswith(b"x") and not (reg.home / "notes.txt").exists()


def test_a_remote_resume_file_is_written_only_under_its_own_name(reg: Registry) -> None:
    """A remote trainer sends its resume file after each epoch (so a run stopped on a node can be resumed here);
    any other name, or another run's resume file, is ignored and the run trains on."""
    run_id = queue.start_run(reg, TINY, 42)
    recorder = record.Recorder(reg, run_id, 42)
    recorder(events.Saved(events.RunFile(f"run-{run_id}.resume.safetensors", b"epoch 1")))
    recorder(events.Saved(events.RunFile(f"run-{run_id}.resume.safetensors", b"epoch 2")))
    for name in (f"run-{run_id + 1}.resume.safetensors", "../registry.sqlite", f"run-{run_id}.safetensors"):
        recorder(events.Saved(events.RunFile(name, b"x")))
    assert sorted(p.name for p in reg.checkpoint_dir.iterdir()) == [f"run-{run_id}.resume.safetensors"]
    assert state_path(reg.checkpoint_dir, run_id).read_bytes() == b"epoch 2"
    assert reg.get_run(run_id).status == "running" and recorder.outcome is None


# -- the end of a run: one conditional UPDATE --------------------------------------------------------------------
def test_a_run_given_up_on_while_it_scores_keeps_its_result(
    reg: Registry, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scoring a big model takes long without a training step. The run must not look dead meanwhile (its heartbeat
    is kept from a thread), and should a sweep give up on it anyway, the result it then finishes with is kept:
    done, with its checkpoint and resume file. (Before, the heartbeat came only with progress, the sweep failed
    the run, and recording the result then raised, so its checkpoint and resume file were deleted.)"""
    monkeypatch.setattr(record, "HEARTBEAT_EVERY_S", 0.1)
    run = reg.get_run(queue.start_run(reg, TINY, os.getpid()))
    score, verdicts = execute._score_test, []

    def slow_scoring(*args: object):
        time.sleep(1.5)  # no step, no progress
        verdicts.append(claims.fail_orphans(reg, stale_s=1.0))  # a worker's sweep: alive, by its heartbeat
        # one that gives up on everything: its cut-off a minute ahead, so a heartbeat the run's thread writes
        # between the sweep's listing and its update (every 0.1 s here) cannot save it (with 0 s it could, and
        # did once on a loaded machine: the sweep then failed nothing)
        verdicts.append(claims.fail_orphans(reg, stale_s=-60.0))
        return score(*args)

    monkeypatch.setattr(execute, "_score_test", slow_scoring)
    assert execute.execute_run(reg, run, data_dir=str(data_dir)) is not None
    assert verdicts == [[], [run.id]]
    done = reg.get_run(run.id)
    assert done.status == "done" and done.error is None and done.test_acc is not None
    assert Path(done.checkpoint).is_file() and state_path(reg.checkpoint_dir, run.id).is_file()


def test_the_cli_beats_its_runs_heartbeat_from_a_thread(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m vitdemo train` records its own run: a worker's sweep during its long scoring finds it alive."""
    from vitdemo.cli.main import main

    monkeypatch.setattr(record, "HEARTBEAT_EVERY_S", 0.1)
    home, score, verdicts = tmp_path / "home", execute._score_test, []

    def slow_scoring(*args: object):
        time.sleep(1.5)
        verdicts.append(claims.fail_orphans(Registry(home), stale_s=1.0))
        return score(*args)

    monkeypatch.setattr(execute, "_score_test", slow_scoring)
    args = ["--model", "cnn", "--width", "4", "--train-subset", "300", "--val-size", "200", "--epochs", "1"]
    assert main(["train", *args, "--device", "cpu", "--home", str(home), "--data-dir", str(data_dir)]) == 0
    (run,) = Registry(home).list_runs()
    assert verdicts == [[]] and run.status == "done" and run.worker_pid == os.getpid()


def test_a_result_that_loses_the_race_deletes_nothing(reg: Registry) -> None:
    """A run cancelled (or another worker's) when its result arrives: the result is not recorded and the files
    stay where they are: whether they are leftovers is the sweep's call, from the run's status."""
    run_id = queue.start_run(reg, TINY, 42)
    reg.checkpoint_dir.mkdir(parents=True)
    kept = [runfiles.path(reg.checkpoint_dir, run_id), runfiles.path(reg.checkpoint_dir, run_id, runfiles.RESUME)]
    for path in kept:
        path.write_bytes(b"weights")
    strangers = record.Recorder(reg, run_id, 43)  # another worker's run: not its result to record
    strangers(events.Result({"test_acc": 0.9}, events.RunFile(kept[0].name)))
    assert strangers.outcome == "lost" and reg.get_run(run_id).status == "running"
    reg.transition(run_id, "cancelled", only_from=("running",))
    recorder = record.Recorder(reg, run_id, 42)
    recorder(events.Result({"test_acc": 0.9}, events.RunFile(kept[0].name)))
    assert recorder.outcome == "lost" and reg.get_run(run_id).status == "cancelled"
    assert all(path.read_bytes() == b"weights" for path in kept)


def test_a_stale_verdict_is_part_of_the_update(reg: Registry) -> None:
    run_id = queue.start_run(reg, TINY, os.getpid())
    cutoff = time.time()
    reg.beat([run_id], at=cutoff + 1)  # beaten after the sweep looked
    assert not reg.transition(run_id, "failed", only_from=("running",), heartbeat_before=cutoff)
    assert reg.transition(run_id, "failed", only_from=("running",), heartbeat_before=cutoff + 2)


# -- heartbeats --------------------------------------------------------------------------------------------------
def test_the_heartbeat_is_kept_from_a_thread_while_the_process_is_busy(reg: Registry) -> None:
    running = queue.start_run(reg, TINY, os.getpid())
    ended = queue.start_run(reg, TINY, os.getpid())
    reg.update_run(ended, status="done")
    old = time.time() - 1000
    for run_id in (running, ended):
        reg.update_run(run_id, heartbeat=old)
    with record.Heartbeat(reg, [running, ended], every_s=0.05) as heartbeat:
        time.sleep(0.4)  # busy: no progress, no step
        beaten = reg.get_run(running).heartbeat
        assert beaten > time.time() - 0.3 and reg.get_run(ended).heartbeat == old  # only running runs beat
        heartbeat.set_runs([])
        time.sleep(0.2)
        stopped_at = reg.get_run(running).heartbeat
        time.sleep(0.2)
        assert reg.get_run(running).heartbeat == stopped_at
    assert claims.fail_orphans(reg, stale_s=1.0) == []


def test_the_trainer_knows_when_its_points_were_thinned(reg: Registry) -> None:
    """points.held_after predicts add_point's count: the trainer, which reads no registry, slows its points down
    exactly when the recorder thinned them."""
    run_id = queue.start_run(reg, TINY, os.getpid())
    held = 0
    for step in range(1, 60):
        stored = points.add_point(reg, run_id, {"step": step, "epoch": 1, "at_epoch": step / 60}, keep_at_most=7)
        held = points.held_after(held + 1, keep_at_most=7)
        assert stored == held


# -- the worker's sweep: orphans and leftovers ---------------------------------------------------------------------
def test_the_sweep_leaves_the_files_of_a_run_whose_process_lives_on(reg: Registry) -> None:
    """A run given up on may still finish (and keep its result): while its process lives, its files stay."""
    alive = reg.create_run(name="a", kind="cnn", dataset="mnist", config={}, status="failed", worker_pid=os.getpid())
    dead = reg.create_run(name="d", kind="cnn", dataset="mnist", config={}, status="failed", worker_pid=_dead_pid())
    reg.checkpoint_dir.mkdir(parents=True)
    names = [
        runfiles.name(alive),
        f".{runfiles.name(alive)}.x1.tmp",
        runfiles.name(dead),
        f".{runfiles.name(dead)}.y2.tmp",
    ]
    for name in names:
        (reg.checkpoint_dir / name).write_bytes(b"weights")
    worker.sweep(reg, local.LocalExecutor())
    assert sorted(p.name for p in reg.checkpoint_dir.iterdir()) == sorted(names[:2])


def test_run_file_names_are_built_in_one_place() -> None:
    folder = Path("/x")
    assert runfiles.path(folder, 7) == folder / "run-7.safetensors" == Path(runfiles.path(folder, 7))
    assert (
        runfiles.name(7, runfiles.CLASSIC) == "run-7.skops"
        and runfiles.name(7, runfiles.ENCODER) == "run-7-encoder.safetensors"
    )
    assert state_path(folder, 7) == folder / "run-7.resume.safetensors"
    assert runfiles.result_owner("run-7-encoder.safetensors") == (7, True) and runfiles.result_owner("run-7.skops") == (
        7,
        False,
    )
    assert runfiles.result_owner("run-7.resume.safetensors") is None  # kept to resume from: never a leftover
    assert runfiles.tmp_prefix(state_path(folder, 7)) == ".run-7.safetensors.resume."
    for tmp in (".run-7.safetensors.a1.tmp", ".run-7.safetensors.resume.b2.tmp", ".run-7.skops.c3.tmp"):
        assert runfiles.tmp_owner(tmp) == runfiles.run_of(tmp) == 7 and runfiles.is_tmp(tmp)
    with pytest.raises(ValueError, match="suffix"):
        runfiles.name(7, ".pt")
    built = re.compile(r"""f["']\.?run-\{""")  # f"run-{...}": a run file name built by hand
    elsewhere = [str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "vitdemo").rglob("*.py")
                 if p.name != "runfiles.py" and built.search(p.read_text())]  # fmt: skip
    assert elsewhere == []


# -- the executor as the queue and the pages see it --------------------------------------------------------------------
class FakeExecutor:
    """An executor somewhere else: a GPU with 1 GB, a CPU that gives a run 3 threads; it records its wakes."""

    def __init__(self, offered: tuple[Device, ...]) -> None:
        self.offered, self.woken = offered, []

    def devices(self) -> tuple[Device, ...]:
        return self.offered

    def wake(self, registry: Registry, kind: str, *, force: bool = False) -> list[str]:
        self.woken.append((kind, force))
        return [kind]


CPU = Device("cpu", "cpu", "CPU (64 cores)", 512 * 2**30, threads=3)
GPU = Device("cuda:0", "cuda", "Tiny GPU", 2**30, runs_at_once=4)


def test_the_queue_checks_runs_against_the_executors_devices_and_wakes_it(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = FakeExecutor((CPU, GPU))
    monkeypatch.setattr(queue, "configured_executor", lambda: remote)
    assert queue.available_devices() == ["cpu", "cuda"] and queue.time_estimator().threads == 3
    run = reg.get_run(queue.submit(reg, dataclasses.replace(TINY, device="auto"), CLI))
    assert run.device == "cuda" and remote.woken == [("cuda", True)]  # its GPU, though this machine has none
    big = TrainConfig(model=ViTConfig(embed_dim=1024, depth=8, num_heads=8), device="cuda")
    with pytest.raises(OverLimit, match="memory but the server's cuda has 1.0 GB"):
        queue.submit(reg, big, CLI)  # fits this machine's RAM, not the executor's GPU
    assert queue.submit(reg, dataclasses.replace(big, device="cpu"), CLI)  # its CPU has room
    queue.set_paused(reg, True, TEACHER)
    assert queue.wake(reg) == []  # a paused queue wakes nobody
    queue.set_paused(reg, False, TEACHER)
    assert remote.woken[-2:] == [("cpu", True), ("cuda", True)]  # resumed: every device with queued runs

    monkeypatch.setattr(queue, "configured_executor", lambda: FakeExecutor((CPU,)))
    with pytest.raises(ConfigError, match="no CUDA"):
        queue.submit(reg, dataclasses.replace(TINY, device="cuda"), CLI)


def test_the_local_executor_describes_this_machine() -> None:
    offered = local.LocalExecutor().devices()
    cpu = executor.device_of(offered, "cpu")
    assert cpu.name == "cpu" and cpu.memory_bytes > 2**28 and cpu.threads >= 1 and cpu.runs_at_once == 1
    assert re.fullmatch(r"CPU \(\d+ cores\)", cpu.label)
    assert all(d.kind == "cuda" and d.name == f"cuda:{i}" for i, d in enumerate(offered[1:]))


def test_pages_start_no_process_read_no_pid_and_count_no_gpu() -> None:
    """The Train page and the Leaderboard ask the queue; the executor does the rest."""
    banned = ("runs.worker", "runs.local", "fail_orphans", "ensure_worker", "subprocess", "torch.cuda", "pid_alive")
    sources = [*(REPO_ROOT / "vitdemo" / "ui").glob("*.py"), *(REPO_ROOT / "app_pages").glob("*.py")]
    found = [(p.name, b) for p in sources for b in banned if b in p.read_text()]
    assert found == []
