"""The run store: real SQLite files, typed status changes, and a file that is locked, damaged or read-only."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from seed import lock_registry, queued_run

from vitdemo.config import TrainConfig
from vitdemo.runs import points, schema
from vitdemo.runs.dbfile import RegistryBusy, RegistryDamaged
from vitdemo.runs.store import IllegalTransition, Registry, RunNotFound

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_store_and_charts_import_without_torch() -> None:
    """Tables and figures, the store, the queue, the worker loop and the local executor's worker process: none of
    them loads torch."""
    modules = (
        "vitdemo.views.charts, vitdemo.runs.store, vitdemo.runs.queue, vitdemo.runs.worker, vitdemo.cli.main, "
        "vitdemo.runs.points, vitdemo.views.learning, vitdemo.training.watch, vitdemo.runs.local, "
        "vitdemo.runs.executor, vitdemo.runs.events, vitdemo.runs.record, vitdemo.runfiles"
    )
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_nothing_is_created_until_the_first_write(reg: Registry) -> None:
    assert reg.list_runs() == [] and reg.leaderboard() == [] and reg.runs_with_curves() == set()
    with pytest.raises(RunNotFound, match="no run #1"):
        reg.get_run(1)
    assert not reg.home.exists()
    run_id = queued_run(reg)
    assert reg.db_path.is_file() and reg.get_run(run_id).status == "queued"
    assert not [p.name for p in reg.home.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind
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
    with pytest.raises(RunNotFound):
        reg.update_run(999, error="x")


def test_update_accepts_known_columns_only(reg: Registry) -> None:
    """Column names are never taken from the caller into SQL: anything unknown is refused before SQL is built."""
    run_id = queued_run(reg)
    with pytest.raises(ValueError, match="unknown run column"):
        reg.update_run(run_id, **{"error = 'x', status": "done"})
    with pytest.raises(ValueError, match="unknown run column.*id"):
        reg.update_run(run_id, id=5)
    with pytest.raises(ValueError, match="unknown run column"):
        reg.create_run(name="x", kind="vit", dataset="mnist", config={}, bogus=1)
    run = reg.get_run(run_id)
    assert run.status == "queued" and run.error is None and [r.id for r in reg.list_runs()] == [run_id]


@pytest.mark.parametrize(
    ("path", "legal"),
    [
        (["queued", "running", "done"], True),
        (["queued", "running", "failed"], True),
        (["queued", "running", "cancelled"], True),
        (["queued", "cancelled"], True),
        (["queued", "done"], False),
        (["queued", "failed"], False),
        (["queued", "running", "queued"], False),
        (["queued", "running", "done", "running"], False),
        (["queued", "running", "failed", "done"], False),
        (["queued", "cancelled", "running"], False),
        (["queued", "running", "running"], False),
    ],
)
def test_status_transitions(reg: Registry, path: list[str], legal: bool) -> None:
    run_id = queued_run(reg)
    *steps, last = path[1:]
    for status in steps:
        reg.update_run(run_id, status=status)
    if legal:
        reg.update_run(run_id, status=last, error="why")
        assert reg.get_run(run_id).status == last and reg.get_run(run_id).error == "why"
    else:
        before = reg.get_run(run_id)
        with pytest.raises(IllegalTransition, match=f"is {before.status}: it cannot become {last}"):
            reg.update_run(run_id, status=last, error="why")
        assert reg.get_run(run_id) == before  # nothing of the update was written


def test_transition_is_conditional(reg: Registry) -> None:
    run_id = queued_run(reg, status="running", worker_pid=7)
    assert not reg.transition(run_id, "failed", worker_pid_is=8)  # another worker's run: untouched
    assert not reg.transition(run_id, "cancelled", only_from=("queued",))
    assert reg.get_run(run_id).status == "running"
    assert reg.transition(run_id, "done", worker_pid_is=7, test_acc=0.5)
    assert not reg.transition(run_id, "failed")  # a result is never overwritten
    assert reg.get_run(run_id).status == "done" and reg.get_run(run_id).test_acc == 0.5
    assert not reg.transition(12345, "done")


def test_leaderboard_order(reg: Registry) -> None:
    ids = {}
    for name, acc, f1 in [("ok", 0.95, 0.95), ("best", 0.99, 0.98), ("tie-worse-f1", 0.95, 0.90), ("none", None, None)]:
        ids[name] = queued_run(reg, name, status="done", test_acc=acc, macro_f1=f1)
    queued_run(reg, "still running", status="running", test_acc=1.0)
    assert [r.name for r in reg.leaderboard()] == ["best", "ok", "tie-worse-f1", "none"]
    fashion = queued_run(reg, "fashion", status="done", test_acc=0.5)
    reg.update_run(fashion, dataset="fashion")
    reg.update_run(ids["ok"], dataset="fashion")
    assert [r.name for r in reg.leaderboard("fashion")] == ["ok", "fashion"]


def test_epochs_are_stored_in_order_and_counted(reg: Registry) -> None:
    run_id = queued_run(reg)
    for epoch in (2, 1):
        reg.add_epoch(run_id, {"epoch": epoch, "train_loss": 1.0 / epoch, "val_acc": 0.5 + epoch / 10})
    reg.add_epoch(run_id, {"epoch": 2, "train_loss": 0.25, "val_acc": 0.8})  # a retried epoch replaces its row
    rows = reg.epochs(run_id)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["train_loss"] == 0.25 and rows[1]["val_acc"] == 0.8 and rows[0]["val_loss"] is None
    assert reg.get_run(run_id).epochs_done == 2
    other = queued_run(reg)
    assert reg.epochs(other) == [] and reg.runs_with_curves() == {run_id}


def test_delete_removes_the_run_its_epochs_and_its_checkpoint(reg: Registry, tmp_path: Path) -> None:
    run_id = queued_run(reg, status="done")
    path = reg.checkpoint_dir / f"run-{run_id}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights")
    reg.update_run(run_id, checkpoint=str(path))
    beside = [reg.checkpoint_dir / f"run-{run_id}{s}" for s in (".resume.safetensors", "-encoder.safetensors")]
    for file in beside:  # its resume state and its encoder were left behind before (4.8 MB for a CNN)
        file.write_bytes(b"state")
    reg.add_epoch(run_id, {"epoch": 1, "train_loss": 1.0})
    reg.delete_run(run_id)
    assert not path.exists() and not any(file.exists() for file in beside)
    with pytest.raises(KeyError):
        reg.get_run(run_id)
    with sqlite3.connect(reg.db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM epochs WHERE run_id = ?", (run_id,)).fetchone()[0] == 0

    outside = tmp_path / "elsewhere.safetensors"  # a file the registry did not write is never removed
    outside.write_bytes(b"x")
    other = queued_run(reg, status="failed", checkpoint=str(outside))
    reg.delete_run(other)
    assert outside.exists()


def _point(step: int) -> dict[str, float]:
    return {"step": step, "epoch": 1, "at_epoch": step / 100, "loss": 1.0 / step, "lr": 1e-3, "elapsed_s": step}


def test_points_are_thinned_past_the_cap_keeping_the_first_and_the_newest(reg: Registry) -> None:
    run_id = queued_run(reg, status="running")
    held = [points.add_point(reg, run_id, _point(s), keep_at_most=10) for s in range(1, 12)]
    assert held == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 6]  # the 11th point: every second one goes
    assert [p["step"] for p in points.points(reg, run_id)] == [1, 3, 5, 7, 9, 11]
    assert points.points(reg, run_id)[-1] == _point(11)
    assert points.add_point(reg, run_id, {**_point(11), "loss": 9.0}, keep_at_most=10) == 6  # same step: replaced
    assert points.points(reg, run_id)[-1]["loss"] == 9.0
    other = queued_run(reg, status="running")
    assert points.points(reg, other) == [] and other not in reg.live().watches


def test_a_point_and_its_progress_bump_the_change_counter_once_and_watches_not_at_all(reg: Registry) -> None:
    """Every open page polls the counter: a training's second must rebuild them at most once."""
    run_id = queued_run(reg, status="running")
    before = reg.live().version
    points.add_point(reg, run_id, _point(1), progress={"step": 1, "total_steps": 10}, heartbeat=123.0)
    run = reg.get_run(run_id)
    assert reg.live().version == before + 1 and run.progress == {"step": 1, "total_steps": 10}
    assert run.heartbeat == 123.0
    points.set_watch(reg, run_id, {"preds": [1, 2]})
    live = reg.live()
    assert live.version == before + 1 and live.watches == {run_id: {"preds": [1, 2]}}  # read with the runs
    points.add_point(reg, run_id, _point(2))  # a point alone changes no run: no bump
    assert reg.live().version == before + 1 and reg.get_run(run_id).progress == {"step": 1, "total_steps": 10}


def test_deleting_a_run_deletes_its_points_and_watched_images(reg: Registry) -> None:
    run_id = queued_run(reg, status="running")
    points.add_point(reg, run_id, _point(1))
    points.set_watch(reg, run_id, {"preds": [3]})
    reg.transition(run_id, "cancelled")
    reg.delete_run(run_id)
    with sqlite3.connect(reg.db_path) as db:
        for table in ("points", "watches"):
            assert db.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (run_id,)).fetchone()[0] == 0


@pytest.mark.parametrize("status", ["queued", "running"])
def test_active_runs_cannot_be_deleted(reg: Registry, status: str) -> None:
    run_id = queued_run(reg, status=status)
    with pytest.raises(ValueError, match="cancel it first"):
        reg.delete_run(run_id)
    assert reg.get_run(run_id).status == status


# -- a file that is damaged, locked or read-only ------------------------------------------------------------
def _real_registry(reg: Registry, runs: int = 40) -> bytes:
    """A registry file of many pages, written by the store, its WAL folded into the file."""
    queued_run(reg, "first", status="done", test_acc=0.5)
    with sqlite3.connect(reg.db_path) as db:  # the rest in one transaction: a commit per row would take seconds
        db.executemany(
            "INSERT INTO runs (name, kind, dataset, config, status, created_at) VALUES (?, 'vit', 'mnist', ?, 'done', 0)",
            [(f"r{i}", json.dumps(TrainConfig(seed=i).to_dict())) for i in range(runs)],
        )
        db.executemany(
            "INSERT INTO epochs (run_id, epoch) VALUES (?, ?)", [(1 + i, e) for i in range(runs) for e in (1, 2, 3)]
        )
    with sqlite3.connect(reg.db_path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return reg.db_path.read_bytes()


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated", "short", "foreign"])
def test_a_damaged_registry_is_refused_never_recreated(reg: Registry, damage: str) -> None:
    data = _real_registry(reg)
    assert len(data) > 8192
    if damage == "foreign":  # a SQLite file, but not ours
        reg.db_path.unlink()
        with sqlite3.connect(reg.db_path) as db:
            db.execute("CREATE TABLE notes (text TEXT)")
    else:
        contents = {"empty": b"", "garbage": b"these are my notes\n" * 50, "truncated": data[: len(data) // 2]}
        reg.db_path.write_bytes(contents.get(damage, data[:60]))
    before = reg.db_path.read_bytes()
    for call in (reg.list_runs, lambda: reg.get_run(1), lambda: queued_run(reg), lambda: reg.update_run(1, error="x")):
        with pytest.raises(RegistryDamaged) as err:
            call()
        message = str(err.value)
        assert str(reg.db_path) in message and "move it aside" in message and "\n" not in message
        assert str(reg.home) not in err.value.public and "move it aside" in err.value.public  # for a browser
    assert reg.db_path.read_bytes() == before  # never recreated: ids are not handed out again


def test_a_locked_registry_reads_busy_within_seconds_and_writes_wait(reg: Registry, tmp_path: Path) -> None:
    run_id = queued_run(reg, status="done")
    holder = lock_registry(reg.db_path, shut_out_readers=True)
    try:
        t0 = time.monotonic()
        with pytest.raises(RegistryBusy, match="busy.*try again") as err:
            reg.list_runs()
        assert "try again" in err.value.public and str(reg.home) not in err.value.public
        waited = time.monotonic() - t0
        assert waited < 10  # READ_TIMEOUT_S is 2 s; the old registry waited 30 s (generous bound for a busy CI)
        impatient = Registry(reg.home, write_timeout_s=0.2)
        with pytest.raises(RegistryBusy):
            impatient.update_run(run_id, error="x")
    finally:
        holder.kill()
        holder.wait()
    assert reg.get_run(run_id).error is None  # and it works again once the lock is gone


def test_reads_do_not_write(reg: Registry) -> None:
    _real_registry(reg, runs=3)
    run_id = reg.list_runs()[0].id
    stat, data = reg.db_path.stat(), reg.db_path.read_bytes()
    with reg._file.read() as db, pytest.raises(sqlite3.OperationalError, match="readonly"):
        db.execute("UPDATE runs SET error = 'x'")
    time.sleep(0.05)  # mtime resolution
    reg.list_runs(), reg.get_run(run_id), reg.epochs(run_id), reg.leaderboard(), reg.cancel_requested(run_id)
    assert reg.db_path.read_bytes() == data and reg.db_path.stat().st_mtime_ns == stat.st_mtime_ns
    assert reg.get_run(run_id).error is None


def test_a_read_only_home_can_still_be_read(reg: Registry, tmp_path: Path) -> None:
    """A real read-only folder: as root, the reading process runs without CAP_DAC_OVERRIDE (permission bits then
    apply to it too); otherwise plain permission bits do. No -wal/-shm may exist, so SQLite cannot share them."""
    run_id = queued_run(reg, "readable", status="done", test_acc=0.9)
    code = (
        "import sys; from vitdemo.runs.store import Registry; r = Registry(sys.argv[1]); "
        "print([x.name for x in r.leaderboard()]); "
        "from vitdemo.runs.dbfile import RegistryError\n"
        "try: r.update_run(int(sys.argv[2]), error='x')\nexcept RegistryError as e: print('write refused:', e)"
    )
    cmd = [sys.executable, "-c", code, str(reg.home), str(run_id)]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", *cmd]
    reg.db_path.chmod(0o444)
    reg.home.chmod(0o555)
    try:
        assert sorted(p.name for p in reg.home.iterdir()) == ["registry.sqlite"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    except FileNotFoundError:
        pytest.skip("setpriv is not installed (util-linux)")
    finally:
        reg.home.chmod(0o755)
        reg.db_path.chmod(0o644)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "['readable']"
    assert lines[1].startswith("write refused: the run registry") and "could not be written" in lines[1]
    assert reg.get_run(run_id).error is None


# -- a registry written before points and watches ---------------------------------------------------------------
def classroom_registry(home: Path) -> Path:
    """A registry as vitdemo wrote it before points and watches (owners, people, settings, the change counter):
    a person's finished run with its epochs."""
    home.mkdir(parents=True)
    path = home / "registry.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema.RUNS_AND_EPOCHS + "".join(f"{s};\n" for s in schema.CLASSROOM_STATEMENTS))
        db.execute("INSERT INTO people (token, name, created_at) VALUES ('t', 'Ana', 1)")
        db.execute(
            "INSERT INTO runs (name, kind, dataset, config, status, created_at, finished_at, owner, test_acc) "
            "VALUES ('mine', 'vit', 'mnist', '{\"epochs\": 1}', 'done', 1, 2, 'person:1', 0.97)"
        )
        db.execute("INSERT INTO epochs (run_id, epoch, val_acc) VALUES (1, 1, 0.9)")
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def test_a_registry_from_before_points_is_upgraded_and_keeps_its_runs(tmp_path: Path) -> None:
    path = classroom_registry(tmp_path / "home")
    with sqlite3.connect(path) as db:
        assert schema.needs_upgrade(db)
    reg = Registry(tmp_path / "home")
    (run,) = reg.list_runs()  # the first read upgrades the file
    assert run.name == "mine" and run.owner == "person:1" and reg.epochs(run.id)[0]["val_acc"] == 0.9
    with sqlite3.connect(path) as db:
        assert not schema.needs_upgrade(db)
        assert schema.has_table(db, "points") and schema.has_table(db, "watches")
    new = queued_run(reg, status="running")
    points.add_point(reg, new, _point(1))
    points.set_watch(reg, new, {"preds": [7]})
    live = reg.live(None)
    assert live.names == {"person:1": "Ana"} and live.watches == {new: {"preds": [7]}}
    assert points.points(reg, new) == [_point(1)]


def test_a_read_only_registry_from_before_points_still_has_its_live_view(tmp_path: Path) -> None:
    path = classroom_registry(tmp_path / "home")
    code = (
        "import sys; from vitdemo.runs.store import Registry; from vitdemo.runs import points; "
        "r = Registry(sys.argv[1]); live = r.live(None); "
        "print(r.outdated, live.version, live.names, [x.name for x in live.runs], live.watches, "
        "points.points(r, 1))"
    )
    cmd = [sys.executable, "-c", code, str(path.parent)]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", *cmd]
    path.chmod(0o444)
    path.parent.chmod(0o555)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    except FileNotFoundError:
        pytest.skip("setpriv is not installed (util-linux)")
    finally:
        path.parent.chmod(0o755)
        path.chmod(0o644)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True 2 {'person:1': 'Ana'} ['mine'] {} []"
