"""The run registry: runs and their per-epoch metrics in one SQLite file (WAL mode). No torch here.

Reads never write and say "busy" within seconds; writes wait longer; a damaged file is refused, never recreated
(all in `vitdemo.runs.dbfile`). Statuses move queued -> running -> done | failed | cancelled (a queued run may
also be cancelled); any other change is an `IllegalTransition`, and `transition` is a conditional update, so a
run changed meanwhile by another process is never overwritten. One exception, decided in `finish_run`'s single
conditional UPDATE: a run given up on as failed (no heartbeat) whose own worker then delivers its result is done.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vitdemo import paths, runfiles
from vitdemo.runs import schema
from vitdemo.runs.dbfile import READ_TIMEOUT_S, WRITE_TIMEOUT_S, RegistryError, RegistryFile, Upgrade
from vitdemo.runs.schema import EARLIER_OWNER, SCHEMA, SHIPPED_OWNER

Status = Literal["queued", "running", "done", "failed", "cancelled"]
STATUSES: tuple[Status, ...] = ("queued", "running", "done", "failed", "cancelled")
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled"}),
    "running": frozenset({"done", "failed", "cancelled"}),
    "done": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
DB_NAME = "registry.sqlite"
PAUSED_KEY = "paused"  # settings key: "1" while the teacher holds the queue (no worker claims a run)
_NOT_PAUSED = f"NOT EXISTS (SELECT 1 FROM settings WHERE key = '{PAUSED_KEY}' AND value = '1')"

EPOCH_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_s", "elapsed_s")
_ANY = object()  # "do not filter on this" for transition(worker_pid_is=...)


# -- errors (those of the file itself are in vitdemo.runs.dbfile) ------------------------------------------
class RunNotFound(RegistryError, KeyError):
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        super().__init__(f"no run #{run_id}")
        self.public = f"Run #{run_id} does not exist (it may have been deleted)."

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class IllegalTransition(RegistryError, ValueError):
    def __init__(self, run_id: int, current: str, new: str) -> None:
        self.run_id, self.current, self.new = run_id, current, new
        super().__init__(f"run #{run_id} is {current}: it cannot become {new}")
        self.public = f"Run #{run_id} is {current}: it cannot become {new}."


class OverLimit(RegistryError, ValueError):
    """A run the class limits do not allow (the message names the limit); nothing was queued."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.public = message


def check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}: expected one of {', '.join(STATUSES)}")


def sources(status: str) -> tuple[str, ...]:
    """The statuses a run may move to `status` from."""
    check_status(status)
    return tuple(s for s in STATUSES if status in TRANSITIONS[s])


# -- rows ---------------------------------------------------------------------------------------------------
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
    owner: str = EARLIER_OWNER  # "person:<id>", or a label: "shipped", "cli", "earlier" (vitdemo.runs.schema)

    @property
    def epochs(self) -> int:
        return int(self.config.get("epochs", 0) or 0)

    @property
    def label(self) -> str:
        """Short text for pickers: '#3 vit-mnist (99.12%)'."""
        acc = f" ({self.test_acc:.2%})" if self.test_acc is not None else ""
        return f"#{self.id} {self.name}{acc}"

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Run:
        d = dict(row)
        d["config"] = json.loads(d["config"])
        d["progress"] = json.loads(d["progress"]) if d["progress"] else None
        d["baseline"] = bool(d["baseline"])
        d["cancel_requested"] = bool(d["cancel_requested"])
        d.setdefault("owner", SHIPPED_OWNER if d["baseline"] else EARLIER_OWNER)  # a file not yet upgraded
        return cls(**{k: v for k, v in d.items() if not k.startswith("_")})


@dataclass(frozen=True)
class NewRun:
    """A run to insert with its epochs, e.g. a shipped baseline: `fields` are run columns."""

    fields: dict[str, Any]
    epochs: list[dict[str, Any]] = field(default_factory=list)


RUN_COLUMNS = tuple(f.name for f in dataclasses.fields(Run) if f.name != "id")


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    """Known run columns only (ValueError names the others), JSON-encoded where the column holds JSON."""
    unknown = sorted(set(fields) - set(RUN_COLUMNS))
    if unknown:
        raise ValueError(f"unknown run column(s): {', '.join(unknown)}")
    out = dict(fields)
    for key in ("config", "progress"):
        if key in out and out[key] is not None and not isinstance(out[key], str):
            out[key] = json.dumps(out[key], sort_keys=key == "config")
    return out


# -- the store ----------------------------------------------------------------------------------------------
class Registry:
    """Runs and epochs in `<home>/registry.sqlite`; run checkpoints go to `<home>/checkpoints/`.

    Constructing one touches no file: the registry is created by the first write.
    """

    def __init__(
        self,
        home: str | os.PathLike | None = None,
        *,
        read_timeout_s: float = READ_TIMEOUT_S,
        write_timeout_s: float = WRITE_TIMEOUT_S,
    ) -> None:
        self.home = paths.home(home)
        self.db_path = self.home / DB_NAME
        self.checkpoint_dir = self.home / "checkpoints"
        self._file = RegistryFile(
            self.db_path,
            SCHEMA,
            read_timeout_s=read_timeout_s,
            write_timeout_s=write_timeout_s,
            upgrade=Upgrade(schema.needs_upgrade, schema.upgrade),
        )

    def reading(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read-only connection (for the other modules of vitdemo.runs: people, settings)."""
        return self._file.read()

    def writing(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction (for the other modules of vitdemo.runs)."""
        return self._file.write()

    @property
    def outdated(self) -> bool:
        """An older registry that could not be upgraded yet (read-only): no people, settings or owners in it."""
        return self._file.is_outdated()

    # -- writing --------------------------------------------------------------------------------------------
    def create_run(
        self,
        *,
        name: str,
        kind: str,
        dataset: str,
        config: dict[str, Any],
        status: str = "queued",
        active_limit: int | None = None,
        class_limit: int | None = None,
        **fields: Any,
    ) -> int | None:
        """Insert a run in any status (a CLI run starts as running, a baseline as done). Returns its id, or None
        when its owner already has `active_limit` runs queued or running, or everyone together has `class_limit`
        (counted in the same transaction, so two quick clicks, or ten names clicking at once, cannot all pass)."""
        with self._file.write() as db:
            for limit, owner in ((active_limit, fields.get("owner", EARLIER_OWNER)), (class_limit, None)):
                if limit is None:
                    continue
                (active,) = db.execute(
                    "SELECT COUNT(*) FROM runs WHERE (?1 IS NULL OR owner = ?1) AND status IN ('queued', 'running')",
                    (owner,),
                ).fetchone()
                if active >= limit:
                    return None
            return _insert_run(db, {"name": name, "kind": kind, "dataset": dataset, "config": config} | fields, status)

    def transition(
        self,
        run_id: int,
        status: str,
        *,
        only_from: Iterable[str] | None = None,
        worker_pid_is: Any = _ANY,
        unless_paused: bool = False,
        heartbeat_before: float | None = None,
        **fields,
    ) -> bool:
        """Move a run to `status` (setting `fields` too) if its status may change to it, and is in `only_from`
        and its worker is `worker_pid_is` when given (and the queue is not paused, with `unless_paused`; and its
        heartbeat is missing or older than `heartbeat_before`, when given). False when the run was not in such a
        state (it may have changed meanwhile: the update is conditional, so a result written by someone else, or a
        heartbeat beaten since the caller looked, is never overwritten).
        """
        allowed = [s for s in sources(status) if only_from is None or s in set(only_from)]
        if not allowed:
            return False
        sets = _columns(fields)
        where = f"id = ? AND status IN ({', '.join('?' * len(allowed))})"
        args: list[Any] = [run_id, *allowed]
        if worker_pid_is is not _ANY:
            where += " AND worker_pid IS ?"
            args.append(worker_pid_is)
        if heartbeat_before is not None:
            where += " AND (heartbeat IS NULL OR heartbeat < ?)"
            args.append(heartbeat_before)
        if unless_paused:
            where += f" AND {_NOT_PAUSED}"
        assignments = ", ".join(["status = ?", *(f"{k} = ?" for k in sets)])
        with self._file.write() as db:
            cur = db.execute(f"UPDATE runs SET {assignments} WHERE {where}", (status, *sets.values(), *args))
        return cur.rowcount > 0

    def finish_run(self, run_id: int, worker_pid: int | None, **fields: Any) -> bool:
        """Record run `run_id` as done with its result (`fields`: its scores, checkpoint, finished_at), in one
        conditional UPDATE: only while it is `worker_pid`'s and running, or failed because someone gave up on it
        (no heartbeat for too long) while it was in fact still working: the result its own worker delivers wins
        over that verdict. (Its worker never records a result after failing a run itself: the run had ended.)
        False when the run was cancelled, deleted, already done, or is another worker's: the caller lost the race
        and must leave the run's files alone."""
        sets = _columns({**fields, "error": None})
        assignments = ", ".join(["status = 'done'", *(f"{k} = ?" for k in sets)])
        where = "id = ? AND worker_pid IS ? AND status IN ('running', 'failed')"
        with self._file.write() as db:
            cur = db.execute(f"UPDATE runs SET {assignments} WHERE {where}", (*sets.values(), run_id, worker_pid))
        return cur.rowcount > 0

    def beat(self, run_ids: Iterable[int], at: float | None = None) -> int:
        """Set the heartbeat of those of `run_ids` that are running (to `at`, default now): the sign that their
        executor still works on them. Returns how many were running."""
        ids = sorted({int(i) for i in run_ids})
        if not ids:
            return 0
        marks = ", ".join("?" * len(ids))
        with self._file.write() as db:
            cur = db.execute(
                f"UPDATE runs SET heartbeat = ? WHERE status = 'running' AND id IN ({marks})",
                (time.time() if at is None else at, *ids),
            )
        return cur.rowcount

    def update_run(self, run_id: int, **fields: Any) -> None:
        """Set known columns of a run. A `status` change must be legal (IllegalTransition otherwise)."""
        if "status" in fields:
            status = fields.pop("status")
            if not self.transition(run_id, status, **fields):
                raise IllegalTransition(run_id, self.get_run(run_id).status, status)
            return
        sets = _columns(fields)
        if not sets:
            return
        with self._file.write() as db:
            cur = db.execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?", (*sets.values(), run_id)
            )
        if cur.rowcount == 0:
            raise RunNotFound(run_id)

    def add_epoch(self, run_id: int, metrics: dict[str, float]) -> None:
        with self._file.write() as db:
            _insert_epoch(db, run_id, metrics)
            db.execute("UPDATE runs SET epochs_done = ? WHERE id = ?", (int(metrics["epoch"]), run_id))

    def add_baselines(self, runs: Sequence[NewRun]) -> list[int]:
        """Insert each baseline (status done) unless one with its checkpoint exists: check and inserts are one
        transaction, so several processes syncing at once add each file once. Returns the new ids."""
        added = []
        with self._file.write() as db:
            known = {r["checkpoint"] for r in db.execute("SELECT checkpoint FROM runs WHERE baseline = 1")}
            for new in runs:
                if new.fields.get("checkpoint") in known:
                    continue
                run_id = _insert_run(db, {**new.fields, "baseline": 1, "owner": SHIPPED_OWNER}, "done")
                for row in new.epochs:
                    _insert_epoch(db, run_id, row)
                known.add(new.fields.get("checkpoint"))
                added.append(run_id)
        return added

    def delete_run(self, run_id: int, *, owner: str | None = None) -> bool:
        """Remove a run, its epochs, points and watched images (ON DELETE CASCADE), its checkpoint file, resume
        state and encoder (only if it is `owner`'s, when given: the check and the delete are one statement). Shipped baselines and active runs cannot be deleted (ValueError).
        Who may delete what is decided by `vitdemo.runs.queue.delete_run`. False when nothing was deleted."""
        run = self.get_run(run_id)
        if run.baseline:
            raise ValueError("shipped baseline runs cannot be deleted")
        if run.active:
            raise ValueError(f"run #{run_id} is {run.status}: cancel it first")
        where, args = "id = ? AND status = ?", [run_id, run.status]
        if owner is not None:
            where += " AND owner = ?"
            args.append(owner)
        with self._file.write() as db:
            deleted = db.execute(f"DELETE FROM runs WHERE {where}", args).rowcount > 0
        if deleted and run.checkpoint and self.owns(Path(run.checkpoint)):
            Path(run.checkpoint).unlink(missing_ok=True)
        if deleted:  # the files a run keeps beside its checkpoint: its resume state, its pretrained encoder
            for suffix in runfiles.KEPT_BESIDE:
                runfiles.path(self.checkpoint_dir, run_id, suffix).unlink(missing_ok=True)
        return deleted

    def owns(self, path: Path) -> bool:
        """True for a file inside this registry's checkpoint folder (the only files it may remove)."""
        return self.checkpoint_dir.resolve() in path.resolve().parents

    # -- reading --------------------------------------------------------------------------------------------
    def get_run(self, run_id: int) -> Run:
        with self._file.read() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(run_id)
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
        with self._file.read() as db:
            return [Run.from_row(r) for r in db.execute(query + " ORDER BY id", args)]

    def leaderboard(self, dataset: str | None = None) -> list[Run]:
        """Finished runs, best test accuracy first."""
        runs = self.list_runs(status="done", dataset=dataset)
        return sorted(runs, key=lambda r: (-(r.test_acc or 0.0), -(r.macro_f1 or 0.0), r.id))

    def epochs(self, run_id: int) -> list[dict[str, float]]:
        with self._file.read() as db:
            rows = db.execute("SELECT * FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,)).fetchall()
        return [dict(r) for r in rows]

    def first_reached(self, val_acc: float) -> dict[int, dict[str, float]]:
        """run id -> the first epoch row (epoch, elapsed_s, val_acc...) whose validation accuracy reached `val_acc`,
        for every run that reached it: one query over every run's curves."""
        query = (
            "SELECT e.* FROM epochs e JOIN (SELECT run_id, MIN(epoch) AS first FROM epochs WHERE val_acc >= ? "
            "GROUP BY run_id) f ON e.run_id = f.run_id AND e.epoch = f.first"
        )
        with self._file.read() as db:
            return {int(r["run_id"]): dict(r) for r in db.execute(query, (val_acc,))}

    def runs_with_curves(self) -> set[int]:
        """Ids of the runs that have at least one epoch recorded."""
        with self._file.read() as db:
            return {int(r[0]) for r in db.execute("SELECT DISTINCT run_id FROM epochs")}

    def cancel_requested(self, run_id: int) -> bool:
        with self._file.read() as db:
            row = db.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return bool(row and row["cancel_requested"])

    def live(self, owner: str | None = None) -> LiveRuns:
        """What a live panel shows, in ONE query: the change counter, the pause, every queued and running run with
        its owner's name and its watched images, and `owner`'s latest ended run (anyone's for None). Cheap enough
        for every open page every second."""
        query = _LIVE_QUERY
        if self.outdated:
            with self._file.read() as db:
                classroom = schema.has_table(db, "changes") and schema.has_table(db, "people")
            if not classroom:
                return LiveRuns(None, False, [r for r in self.list_runs() if r.active], {})
            query = _LIVE_QUERY_NO_WATCHES  # a read-only registry older than watches
        with self._file.read() as db:
            rows = db.execute(query, (owner,)).fetchall()
        version = int(rows[0]["_version"]) if rows and rows[0]["_version"] is not None else None
        paused = bool(rows) and rows[0]["_paused"] == "1"
        rows = [r for r in rows if r["id"] is not None]
        runs = [Run.from_row(r) for r in rows]
        names = {r["owner"]: r["_owner_name"] for r in rows if r["_owner_name"] is not None}
        watches = {int(r["id"]): json.loads(r["_watch"]) for r in rows if r["_watch"]}
        return LiveRuns(version, paused, runs, names, watches)

    def get_setting(self, key: str) -> str | None:
        if self.outdated:
            return None
        with self._file.read() as db:
            row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        with self._file.write() as db:
            db.execute("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                       (key, value, value))  # fmt: skip

    def baseline_checkpoints(self) -> set[str]:
        """The checkpoint paths already registered as baselines."""
        with self._file.read() as db:
            return {r[0] for r in db.execute("SELECT checkpoint FROM runs WHERE baseline = 1")}


@dataclass(frozen=True)
class LiveRuns:
    """One live query's answer (`Registry.live`)."""

    version: int | None  # the change counter: the same number means nothing changed (None: an older file)
    paused: bool  # the teacher holds the queue
    runs: list[Run]  # queued and running runs by id, and the asker's latest ended run
    names: dict[str, str]  # owner -> display name, for the people who own these runs
    watches: dict[int, dict[str, Any]] = field(default_factory=dict)  # run id -> its watched images' answers

    @property
    def active(self) -> list[Run]:
        return [r for r in self.runs if r.active]


_LIVE_TEMPLATE = f"""
SELECT c.version AS _version, (SELECT value FROM settings WHERE key = '{PAUSED_KEY}') AS _paused,
       p.name AS _owner_name, {{watch}} AS _watch, r.*
FROM changes AS c
LEFT JOIN runs AS r ON r.status IN ('queued', 'running') OR r.id = (
    SELECT id FROM runs WHERE (?1 IS NULL OR owner = ?1) AND baseline = 0 AND status IN ('done', 'failed', 'cancelled')
    ORDER BY finished_at DESC, id DESC LIMIT 1)
LEFT JOIN people AS p ON r.owner = 'person:' || p.id {{join}}
WHERE c.id = 1
ORDER BY r.id
"""
_LIVE_QUERY = _LIVE_TEMPLATE.format(watch="w.data", join="LEFT JOIN watches AS w ON w.run_id = r.id")
_LIVE_QUERY_NO_WATCHES = _LIVE_TEMPLATE.format(watch="NULL", join="")


def _insert_run(db: sqlite3.Connection, fields: dict[str, Any], status: str) -> int:
    check_status(status)
    row = _columns({"created_at": time.time(), **fields, "status": status})
    marks = ", ".join("?" for _ in row)
    cur = db.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({marks})", tuple(row.values()))
    return int(cur.lastrowid)


def _insert_epoch(db: sqlite3.Connection, run_id: int, metrics: dict[str, Any]) -> None:
    cols = ", ".join(EPOCH_COLUMNS)
    db.execute(
        f"INSERT OR REPLACE INTO epochs (run_id, {cols}) VALUES (?{', ?' * len(EPOCH_COLUMNS)})",
        (run_id, *(metrics.get(c) for c in EPOCH_COLUMNS)),
    )
