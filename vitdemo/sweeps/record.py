"""A sweep's row and its trials' rows in the run registry: the study's only record (no second database).

`sweeps` holds what was asked (the SweepSpec as JSON, whose it is) and `sweep_trials` maps each trial to its run
with the values it tried and whether the pruner stopped it. Everything else a study needs (a trial's state, its
value, its per-epoch validation accuracy) is read from the run itself, so the study is rebuilt from the runs
(vitdemo.sweeps.study). Both tables are created by the first sweep written (CREATE IF NOT EXISTS in that write:
a registry without sweeps is left as it is). No torch, no optuna.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from vitdemo.runs.store import Registry
from vitdemo.sweeps.space import SweepSpec

TABLES = (
    """CREATE TABLE IF NOT EXISTS sweeps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,        -- whose runs its trials are ('person:<id>', 'cli', ...)
        owner_name TEXT NOT NULL,
        teacher INTEGER NOT NULL DEFAULT 0,
        spec TEXT NOT NULL,         -- vitdemo.sweeps.space.SweepSpec as JSON
        created_at REAL NOT NULL,
        stop_requested INTEGER NOT NULL DEFAULT 0,
        ended_at REAL
    )""",
    """CREATE TABLE IF NOT EXISTS sweep_trials (
        run_id INTEGER PRIMARY KEY,  -- the trial's run (a deleted run leaves its trial out of the study)
        sweep_id INTEGER NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
        number INTEGER NOT NULL,     -- the order it was asked in
        params TEXT NOT NULL,        -- the values it tried, as JSON
        pruned INTEGER NOT NULL DEFAULT 0
    )""",
)


@dataclass(frozen=True)
class Sweep:
    id: int
    name: str
    owner: str
    owner_name: str
    teacher: bool
    spec: SweepSpec
    created_at: float
    stop_requested: bool
    ended_at: float | None


@dataclass(frozen=True)
class TrialRow:
    run_id: int
    number: int
    params: dict[str, Any]
    pruned: bool


def _ensure(db: sqlite3.Connection) -> None:
    for statement in TABLES:
        db.execute(statement)


def _has_tables(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sweeps'").fetchone() is not None


def create_sweep(reg: Registry, spec: SweepSpec, *, owner: str, owner_name: str, teacher: bool, name: str) -> int:
    spec.validate()
    with reg.writing() as db:
        _ensure(db)
        cur = db.execute(
            "INSERT INTO sweeps (name, owner, owner_name, teacher, spec, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (name, owner, owner_name, int(teacher), spec.to_json(), time.time()),
        )
        return int(cur.lastrowid or 0)


def add_trial(reg: Registry, sweep_id: int, run_id: int, number: int, params: dict[str, Any]) -> None:
    with reg.writing() as db:
        _ensure(db)
        db.execute(
            "INSERT INTO sweep_trials (run_id, sweep_id, number, params) VALUES (?, ?, ?, ?)",
            (run_id, sweep_id, number, json.dumps(params, sort_keys=True)),
        )


def mark_pruned(reg: Registry, run_id: int) -> None:
    with reg.writing() as db:
        db.execute("UPDATE sweep_trials SET pruned = 1 WHERE run_id = ?", (run_id,))


def request_stop(reg: Registry, sweep_id: int) -> None:
    """Ask the sweep's driver to start no more trials (those running finish)."""
    with reg.writing() as db:
        _ensure(db)
        db.execute("UPDATE sweeps SET stop_requested = 1 WHERE id = ?", (sweep_id,))


def mark_ended(reg: Registry, sweep_id: int) -> None:
    with reg.writing() as db:
        db.execute("UPDATE sweeps SET ended_at = ? WHERE id = ? AND ended_at IS NULL", (time.time(), sweep_id))


def _sweep(row: sqlite3.Row) -> Sweep:
    d = dict(row)
    d["spec"] = SweepSpec.from_dict(json.loads(d["spec"]))
    d["teacher"], d["stop_requested"] = bool(d["teacher"]), bool(d["stop_requested"])
    return Sweep(**d)


def list_sweeps(reg: Registry) -> list[Sweep]:
    """Every sweep, newest first (none in a registry that never had one)."""
    with reg.reading() as db:
        if not _has_tables(db):
            return []
        return [_sweep(r) for r in db.execute("SELECT * FROM sweeps ORDER BY id DESC")]


def get_sweep(reg: Registry, sweep_id: int) -> Sweep:
    with reg.reading() as db:
        row = db.execute("SELECT * FROM sweeps WHERE id = ?", (sweep_id,)).fetchone() if _has_tables(db) else None
    if row is None:
        raise ValueError(f"there is no sweep #{sweep_id}")
    return _sweep(row)


def trials(reg: Registry, sweep_id: int) -> list[TrialRow]:
    """A sweep's trials in the order they were asked."""
    with reg.reading() as db:
        if not _has_tables(db):
            return []
        rows = db.execute(
            "SELECT run_id, number, params, pruned FROM sweep_trials WHERE sweep_id = ? ORDER BY number", (sweep_id,)
        ).fetchall()
    return [TrialRow(r["run_id"], r["number"], json.loads(r["params"]), bool(r["pruned"])) for r in rows]
