"""The run registry: SQLite in WAL mode shared by the app, the worker and the CLI."""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vitdemo import registry as registry_module
from vitdemo.checkpoints import make_meta, save_checkpoint
from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.models import build_model
from vitdemo.registry import Registry


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "home")


def _queued(reg: Registry, name: str = "run", **fields) -> int:
    return reg.create_run(name=name, kind="vit", dataset="mnist", config=TrainConfig().to_dict(), **fields)


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_wal_mode_is_on(reg: Registry) -> None:
    with sqlite3.connect(reg.db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_create_update_get_and_list(reg: Registry) -> None:
    config = TrainConfig(epochs=3).to_dict()
    a = reg.create_run(name="a", kind="vit", dataset="mnist", config=config, device="cpu")
    b = reg.create_run(name="b", kind="cnn", dataset="fashion", config={"model": {"kind": "cnn"}}, status="done")
    run = reg.get_run(a)
    assert (run.name, run.kind, run.dataset, run.status, run.device) == ("a", "vit", "mnist", "queued", "cpu")
    assert run.config == config and run.epochs == 3 and run.progress is None and not run.baseline
    reg.update_run(a, status="running", progress={"step": 5, "total_steps": 10}, worker_pid=123)
    run = reg.get_run(a)
    assert run.status == "running" and run.progress == {"step": 5, "total_steps": 10} and run.worker_pid == 123
    assert [r.id for r in reg.list_runs()] == [a, b]
    assert [r.id for r in reg.list_runs(status="done")] == [b]
    assert [r.id for r in reg.list_runs(kind="vit", dataset="mnist")] == [a]
    assert [r.id for r in reg.list_runs(device="cpu")] == [a]
    assert reg.list_runs(dataset="fashion", kind="vit") == []
    with pytest.raises(ValueError, match="unknown status"):
        reg.update_run(a, status="exploded")
    with pytest.raises(KeyError, match="no run #999"):
        reg.get_run(999)


def test_leaderboard_order(reg: Registry) -> None:
    ids = {}
    for name, acc, f1 in [("ok", 0.95, 0.95), ("best", 0.99, 0.98), ("tie-worse-f1", 0.95, 0.90), ("none", None, None)]:
        ids[name] = _queued(reg, name, status="done", test_acc=acc, macro_f1=f1)
    _queued(reg, "still running", status="running", test_acc=1.0)
    assert [r.name for r in reg.leaderboard()] == ["best", "ok", "tie-worse-f1", "none"]
    fashion = _queued(reg, "fashion", status="done", test_acc=0.5)
    reg.update_run(fashion, dataset="fashion")
    reg.update_run(ids["ok"], dataset="fashion")
    assert [r.name for r in reg.leaderboard("fashion")] == ["ok", "fashion"]


def test_epochs_are_stored_in_order_and_counted(reg: Registry) -> None:
    run_id = _queued(reg)
    for epoch in (2, 1):
        reg.add_epoch(run_id, {"epoch": epoch, "train_loss": 1.0 / epoch, "val_acc": 0.5 + epoch / 10})
    reg.add_epoch(run_id, {"epoch": 2, "train_loss": 0.25, "val_acc": 0.8})  # a retried epoch replaces its row
    rows = reg.epochs(run_id)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["train_loss"] == 0.25 and rows[1]["val_acc"] == 0.8 and rows[0]["val_loss"] is None
    assert reg.get_run(run_id).epochs_done == 2
    other = _queued(reg)
    assert reg.epochs(other) == [] and reg.runs_with_curves() == {run_id}


def test_request_cancel(reg: Registry) -> None:
    queued, running, done = _queued(reg), _queued(reg, status="running"), _queued(reg, status="done")
    assert reg.request_cancel(queued) == "cancelled"
    assert reg.get_run(queued).status == "cancelled" and reg.get_run(queued).finished_at is not None
    assert reg.request_cancel(running) == "running" and reg.cancel_requested(running)
    assert reg.request_cancel(done) == "done" and not reg.cancel_requested(done)
    with pytest.raises(KeyError):
        reg.request_cancel(12345)


def test_delete_removes_the_run_its_epochs_and_its_checkpoint(reg: Registry, tmp_path: Path) -> None:
    run_id = _queued(reg, status="done")
    path = reg.checkpoint_dir / f"run-{run_id}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    reg.update_run(run_id, checkpoint=str(path))
    reg.add_epoch(run_id, {"epoch": 1, "train_loss": 1.0})
    reg.delete_run(run_id)
    assert not path.exists()
    with pytest.raises(KeyError):
        reg.get_run(run_id)
    with sqlite3.connect(reg.db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM epochs WHERE run_id = ?", (run_id,)).fetchone()[0] == 0

    outside = tmp_path / "elsewhere.safetensors"  # a file the registry did not write is never removed
    outside.write_bytes(b"x")
    other = _queued(reg, status="failed", checkpoint=str(outside))
    reg.delete_run(other)
    assert outside.exists()


@pytest.mark.parametrize("status", ["queued", "running"])
def test_active_runs_cannot_be_deleted(reg: Registry, status: str) -> None:
    run_id = _queued(reg, status=status)
    with pytest.raises(ValueError, match="cancel it first"):
        reg.delete_run(run_id)
    assert reg.get_run(run_id).status == status


HISTORY = [
    {"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.8, "val_loss": 1.1 / e, "val_acc": 0.9 + e / 100, "lr": 1e-3}
    for e in (1, 2)
]


def _shipped(folder: Path, name: str, dataset: str = "mnist") -> Path:
    meta = make_meta(
        CNNConfig(width=4, depth=1),
        dataset,
        metrics={
            "test_acc": 0.97,
            "macro_f1": 0.96,
            "num_params": 123,
            "epochs": 2,
            "device": "cuda",
            "history": HISTORY,
        },
        train_config=TrainConfig(model=CNNConfig(width=4, depth=1), dataset=dataset, epochs=2).to_dict(),
        name=name,
    )
    return save_checkpoint(folder / f"{name}.safetensors", build_model(meta.model_config), meta)


def test_baselines_sync_once_and_cannot_be_deleted(reg: Registry, tmp_path: Path) -> None:
    shipped = tmp_path / "shipped"
    a = _shipped(shipped, "cnn_mnist")
    _shipped(shipped, "cnn_fashion", "fashion")
    (shipped / "broken.safetensors").write_bytes(b"not a checkpoint")
    added = reg.sync_baselines(shipped)
    assert len(added) == 2
    assert reg.sync_baselines(shipped) == []  # idempotent
    runs = {r.name: r for r in reg.list_runs()}
    assert set(runs) == {"cnn_mnist", "cnn_fashion"}
    base = runs["cnn_mnist"]
    assert base.baseline and base.status == "done" and base.test_acc == 0.97 and base.macro_f1 == 0.96
    assert base.num_params == 123 and base.epochs_done == 2 and base.device == "cuda"
    assert base.checkpoint == str(a.resolve()) and base.config["epochs"] == 2
    curves = reg.epochs(base.id)  # the training curves travel inside the shipped file
    assert [e["epoch"] for e in curves] == [1, 2] and curves[1]["val_acc"] == pytest.approx(0.92)
    with pytest.raises(ValueError, match="baseline"):
        reg.delete_run(base.id)
    assert a.exists() and reg.get_run(base.id).baseline

    _shipped(shipped, "vit_late")  # a checkpoint added later is picked up on the next sync
    assert len(reg.sync_baselines(shipped)) == 1 and len(reg.list_runs()) == 3


def test_concurrent_baseline_syncs_register_each_file_once(reg: Registry, tmp_path: Path) -> None:
    shipped = tmp_path / "shipped"
    for i in range(3):
        _shipped(shipped, f"cnn_{i}")
    barrier = threading.Barrier(4)
    results: list[list[int]] = []

    def sync() -> None:
        barrier.wait()
        results.append(Registry(reg.home).sync_baselines(shipped))

    threads = [threading.Thread(target=sync) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results) == [0, 0, 0, 3]
    assert len(reg.list_runs()) == 3


def _claim_all(home: str, barrier, out) -> None:
    """In a child process: claim queued runs until none is left; report the ids."""
    reg = Registry(home)
    barrier.wait()
    claimed = []
    while (run := reg.claim_next(os.getpid())) is not None:
        claimed.append(run.id)
    out.put(claimed)


def test_concurrent_claims_never_take_a_run_twice(reg: Registry) -> None:
    ids = {_queued(reg, f"r{i}", device="cpu") for i in range(40)}
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(str(reg.home), barrier, out)) for _ in range(2)]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    first, second = map(set, claimed)
    assert not first & second
    assert first | second == ids
    assert len(claimed[0]) + len(claimed[1]) == len(ids)
    runs = reg.list_runs()
    assert all(r.status == "running" and r.worker_pid in {p.pid for p in procs} for r in runs)


def test_claim_next_takes_the_oldest_run_of_its_device(reg: Registry) -> None:
    gpu = _queued(reg, "gpu", device="cuda")
    cpu1, cpu2 = _queued(reg, "cpu1", device="cpu"), _queued(reg, "cpu2", device="cpu")
    run = reg.claim_next(42, "cpu")
    assert run.id == cpu1 and run.status == "running" and run.worker_pid == 42 and run.heartbeat is not None
    assert reg.claim_next(42, "cuda").id == gpu
    assert reg.claim_next(42, "cuda") is None
    assert reg.claim_next(42).id == cpu2


def test_fail_orphans_marks_runs_of_dead_or_silent_workers(reg: Registry) -> None:
    now = time.time()
    dead = _queued(reg, "dead", status="running", worker_pid=_dead_pid(), heartbeat=now)
    alive = _queued(reg, "alive", status="running", worker_pid=os.getpid(), heartbeat=now)
    silent = _queued(reg, "silent", status="running", worker_pid=os.getpid(), heartbeat=now - 1000)
    done = _queued(reg, "done", status="done", worker_pid=_dead_pid())
    assert sorted(reg.fail_orphans(stale_s=300)) == sorted([dead, silent])
    assert reg.get_run(dead).status == "failed" and "stopped unexpectedly" in reg.get_run(dead).error
    assert reg.get_run(silent).status == "failed" and "no progress" in reg.get_run(silent).error
    assert reg.get_run(alive).status == "running" and reg.get_run(done).status == "done"
    assert reg.fail_orphans() == []


def test_fail_orphans_keeps_a_result_written_meanwhile(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker finishes the run and exits between fail_orphans' listing and its check: the run stays done."""
    run_id = _queued(reg, status="running", worker_pid=12345, heartbeat=time.time())

    def worker_finishes_then_exits(pid: int) -> bool:
        reg.update_run(run_id, status="done", test_acc=0.9)
        return False

    monkeypatch.setattr(registry_module, "_pid_alive", worker_finishes_then_exits)
    assert reg.fail_orphans() == []
    run = reg.get_run(run_id)
    assert run.status == "done" and run.test_acc == 0.9 and run.error is None
