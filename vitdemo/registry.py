"""The run registry: SQLite (standard library, WAL, busy timeout) holding runs and their per-epoch metrics.

Several processes use it at once (Streamlit sessions, the training worker, the CLI), so every call opens
a short-lived connection and every write is one transaction.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitdemo.checkpoints import CheckpointError, read_meta

ENV_HOME = "VITDEMO_HOME"
STATUSES = ("queued", "running", "done", "failed", "cancelled")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    dataset TEXT NOT NULL,
    config TEXT NOT NULL,            -- TrainConfig as JSON (or the checkpoint's, for baselines)
    status TEXT NOT NULL CHECK (status IN ('queued','running','done','failed','cancelled')),
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    device TEXT,                     -- requested ('auto', 'cpu', 'cuda') until it runs, then the real one
    num_params INTEGER,
    epochs_done INTEGER NOT NULL DEFAULT 0,
    val_acc REAL,
    test_acc REAL,
    macro_f1 REAL,
    train_time_s REAL,
    checkpoint TEXT,
    error TEXT,
    baseline INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    worker_pid INTEGER,
    heartbeat REAL,
    progress TEXT                    -- latest step as JSON: step, total_steps, loss, images_per_s, eta_s
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL, lr REAL,
    images_per_s REAL, elapsed_s REAL,
    PRIMARY KEY (run_id, epoch)
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
"""


def default_home() -> Path:
    """Where runs live: $VITDEMO_HOME, else ./runs (the app and the CLI run from the project root)."""
    return Path(os.environ.get(ENV_HOME) or "runs")


@dataclass(frozen=True)
class Run:
    id: int
    name: str
    kind: str
    dataset: str
    config: dict[str, Any]
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    device: str | None
    num_params: int | None
    epochs_done: int
    val_acc: float | None
    test_acc: float | None
    macro_f1: float | None
    train_time_s: float | None
    checkpoint: str | None
    error: str | None
    baseline: bool
    cancel_requested: bool
    worker_pid: int | None
    heartbeat: float | None
    progress: dict[str, Any] | None

    @property
    def epochs(self) -> int:
        return int(self.config.get("epochs", 0) or 0)

    @property
    def label(self) -> str:
        """Short text for pickers: '#3 vit-mnist (99.12%)'."""
        acc = f" ({self.test_acc:.2%})" if self.test_acc is not None else ""
        return f"#{self.id} {self.name}{acc}"

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Run:
        d = dict(row)
        d["config"] = json.loads(d["config"])
        d["progress"] = json.loads(d["progress"]) if d["progress"] else None
        d["baseline"] = bool(d["baseline"])
        d["cancel_requested"] = bool(d["cancel_requested"])
        return cls(**d)


class Registry:
    def __init__(self, home: str | os.PathLike | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.home.mkdir(parents=True, exist_ok=True)
        self.db_path = self.home / "registry.sqlite"
        self.checkpoint_dir = self.home / "checkpoints"
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=30000")
        db.execute("PRAGMA foreign_keys=ON")
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- writing -----------------------------------------------------------------------------------
    def create_run(
        self, *, name: str, kind: str, dataset: str, config: dict[str, Any], status: str = "queued", **fields: Any
    ) -> int:
        with self._transaction() as db:
            return _insert_run(db, name=name, kind=kind, dataset=dataset, config=config, status=status, **fields)

    def update_run(self, run_id: int, **fields: Any) -> None:
        if "progress" in fields and fields["progress"] is not None:
            fields["progress"] = json.dumps(fields["progress"])
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"unknown status {fields['status']!r}: expected one of {', '.join(STATUSES)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._transaction() as db:
            db.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))

    def add_epoch(self, run_id: int, metrics: dict[str, float]) -> None:
        with self._transaction() as db:
            _insert_epoch(db, run_id, metrics)
            db.execute("UPDATE runs SET epochs_done = ? WHERE id = ?", (int(metrics["epoch"]), run_id))

    def claim_next(self, pid: int, device: str | None = None) -> Run | None:
        """Atomically move the oldest queued run (for `device`, if given) to running."""
        with self._transaction() as db:
            query = "SELECT id FROM runs WHERE status = 'queued'"
            args: tuple[Any, ...] = ()
            if device is not None:
                query += " AND device = ?"
                args = (device,)
            row = db.execute(query + " ORDER BY id LIMIT 1", args).fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute(
                "UPDATE runs SET status='running', started_at=?, worker_pid=?, heartbeat=? WHERE id=?",
                (now, pid, now, row["id"]),
            )
        return self.get_run(row["id"])

    def request_cancel(self, run_id: int) -> str:
        """Queued runs are cancelled at once; running ones when the worker next checks. Returns the status."""
        with self._transaction() as db:
            row = db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(f"no run #{run_id}")
            if row["status"] == "queued":
                db.execute("UPDATE runs SET status='cancelled', finished_at=? WHERE id=?", (time.time(), run_id))
                return "cancelled"
            if row["status"] == "running":
                db.execute("UPDATE runs SET cancel_requested=1 WHERE id=?", (run_id,))
            return row["status"]

    def cancel_requested(self, run_id: int) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row["cancel_requested"])

    def fail_orphans(self, alive: set[int] | None = None, stale_s: float = 300.0) -> list[int]:
        """Mark running runs whose worker is gone (dead pid or no heartbeat for `stale_s`) as failed.

        The update is conditional (still running, same worker), so a run that finished between the listing
        and the check keeps its result.
        """
        now, failed = time.time(), []
        for run in self.list_runs(status="running"):
            dead = run.worker_pid is None or not _pid_alive(run.worker_pid)
            if alive is not None:
                dead = dead or run.worker_pid not in alive
            stale = run.heartbeat is None or now - run.heartbeat > stale_s
            if not (dead or stale):
                continue
            error = (
                "the training worker stopped unexpectedly (killed or crashed) during this run"
                if dead
                else f"the training worker sent no progress for over {stale_s:.0f} s and was given up on"
            )
            with self._transaction() as db:
                cur = db.execute(
                    "UPDATE runs SET status='failed', finished_at=?, error=? "
                    "WHERE id=? AND status='running' AND worker_pid IS ?",
                    (now, error, run.id, run.worker_pid),
                )
            if cur.rowcount:
                failed.append(run.id)
        return failed

    def delete_run(self, run_id: int) -> None:
        """Remove a run, its epochs and its checkpoint file. Shipped baselines cannot be deleted."""
        run = self.get_run(run_id)
        if run.baseline:
            raise ValueError("shipped baseline runs cannot be deleted")
        if run.status in ("queued", "running"):
            raise ValueError(f"run #{run_id} is {run.status}: cancel it first")
        with self._transaction() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        if run.checkpoint:
            path = Path(run.checkpoint)
            if path.is_file() and self.checkpoint_dir.resolve() in path.resolve().parents:
                path.unlink()

    def sync_baselines(self, checkpoint_dir: str | os.PathLike) -> list[int]:
        """Register every shipped checkpoint in `checkpoint_dir` once, as a finished baseline run.

        Idempotent, also when several processes or sessions call it at once: the check and the inserts are
        one transaction.
        """
        found = []
        for path in sorted(Path(checkpoint_dir).glob("*.safetensors")):
            try:
                found.append((path, read_meta(path)))
            except CheckpointError:
                continue  # a broken file is reported where it is loaded, not here
        if not found:
            return []
        added = []
        with self._transaction() as db:
            known = {r["checkpoint"] for r in db.execute("SELECT checkpoint FROM runs WHERE baseline = 1")}
            for path, meta in found:
                key = str(path.resolve())
                if key in known:
                    continue
                m = meta.metrics
                run_id = _insert_run(
                    db,
                    name=meta.name or path.stem,
                    kind=meta.model_config.kind,
                    dataset=meta.dataset,
                    config=meta.train_config or {"model": meta.model_config.__dict__, "dataset": meta.dataset},
                    status="done",
                    device=m.get("device"),
                    num_params=m.get("num_params"),
                    epochs_done=int(m.get("epochs", 0) or 0),
                    val_acc=m.get("val_acc"),
                    test_acc=m.get("test_acc"),
                    macro_f1=m.get("macro_f1"),
                    train_time_s=m.get("train_time_s"),
                    checkpoint=key,
                    baseline=1,
                    finished_at=path.stat().st_mtime,
                )
                for row in m.get("history") or []:  # the curves it was trained with, when the file has them
                    if isinstance(row, dict) and "epoch" in row:
                        _insert_epoch(db, run_id, row)
                added.append(run_id)
        return added

    # -- reading -----------------------------------------------------------------------------------
    def get_run(self, run_id: int) -> Run:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"no run #{run_id}")
        return Run.from_row(row)

    def list_runs(
        self,
        *,
        status: str | None = None,
        dataset: str | None = None,
        kind: str | None = None,
        device: str | None = None,
    ) -> list[Run]:
        """Runs matching every filter given, oldest first."""
        query, args = "SELECT * FROM runs WHERE 1=1", []
        for col, val in (("status", status), ("dataset", dataset), ("kind", kind), ("device", device)):
            if val is not None:
                query += f" AND {col} = ?"
                args.append(val)
        with self._connect() as db:
            return [Run.from_row(r) for r in db.execute(query + " ORDER BY id", args)]

    def leaderboard(self, dataset: str | None = None) -> list[Run]:
        """Finished runs, best test accuracy first."""
        runs = [r for r in self.list_runs(status="done", dataset=dataset)]
        return sorted(runs, key=lambda r: (-(r.test_acc or 0.0), -(r.macro_f1 or 0.0), r.id))

    def epochs(self, run_id: int) -> list[dict[str, float]]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,)).fetchall()
        return [dict(r) for r in rows]

    def runs_with_curves(self) -> set[int]:
        """Ids of the runs that have at least one epoch recorded."""
        with self._connect() as db:
            return {int(r[0]) for r in db.execute("SELECT DISTINCT run_id FROM epochs")}


def _insert_run(
    db: sqlite3.Connection, *, name: str, kind: str, dataset: str, config: dict[str, Any], status: str, **fields: Any
) -> int:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}: expected one of {', '.join(STATUSES)}")
    row = {"name": name, "kind": kind, "dataset": dataset, "config": json.dumps(config, sort_keys=True)}
    row |= {"status": status, "created_at": time.time(), **fields}
    if row.get("progress") is not None:
        row["progress"] = json.dumps(row["progress"])
    cols = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    cur = db.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", tuple(row.values()))
    return int(cur.lastrowid)


EPOCH_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s", "elapsed_s")


def _insert_epoch(db: sqlite3.Connection, run_id: int, metrics: dict[str, Any]) -> None:
    cols = ", ".join(EPOCH_COLUMNS)
    db.execute(
        f"INSERT OR REPLACE INTO epochs (run_id, {cols}) VALUES (?{', ?' * len(EPOCH_COLUMNS)})",
        (run_id, *(metrics.get(c) for c in EPOCH_COLUMNS)),
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped) still answers kill(0): check /proc where there is one
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
