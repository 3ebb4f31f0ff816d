"""A training run as it learns: its loss every second or so (`points`) and its answers on ten watched test images
(`watches`), in the registry's file. No torch here.

Neither table bumps the registry's change counter: a training writes each point in the same transaction as its
progress (one `runs` update, one bump), and its watched images while that progress bumps the counter anyway; the
live query (`Registry.live`) reads the watched images with the runs, a page reads the points when the run's
progress says a new one was written (`progress["points"]`, see vitdemo.runs.execute.EventCallback).
"""

from __future__ import annotations

import json
import time
from typing import Any

from vitdemo.runs.schema import has_table
from vitdemo.runs.store import Registry

POINT_COLUMNS = ("step", "epoch", "at_epoch", "loss", "lr", "elapsed_s")
MAX_POINTS = 2000  # a run keeps at most this many points: past it, every second one goes

# Every second point of a run (?1) but its first and its newest.
_THIN = """
DELETE FROM points WHERE run_id = ?1 AND step IN (
    SELECT step FROM (
        SELECT step, ROW_NUMBER() OVER (ORDER BY step) AS n, COUNT(*) OVER () AS total FROM points WHERE run_id = ?1)
    WHERE n % 2 = 0 AND n < total)
"""


def add_point(
    reg: Registry,
    run_id: int,
    point: dict[str, float],
    *,
    progress: dict[str, Any] | None = None,
    heartbeat: float | None = None,
    keep_at_most: int = MAX_POINTS,
) -> int:
    """Record a point of a run (POINT_COLUMNS; one at the same step is replaced) and, in the same transaction, its
    `progress` and `heartbeat` when given. Past `keep_at_most` points every second one is removed (the first and
    the newest stay): a long run keeps its whole curve, at a coarser grain. Returns how many points it holds now."""
    cols = ", ".join(POINT_COLUMNS)
    with reg.writing() as db:
        db.execute(
            f"INSERT OR REPLACE INTO points (run_id, {cols}) VALUES (?{', ?' * len(POINT_COLUMNS)})",
            (run_id, *(point.get(c) for c in POINT_COLUMNS)),
        )
        if progress is not None or heartbeat is not None:
            db.execute(
                "UPDATE runs SET progress = COALESCE(?, progress), heartbeat = COALESCE(?, heartbeat) WHERE id = ?",
                (json.dumps(progress) if progress is not None else None, heartbeat, run_id),
            )
        (count,) = db.execute("SELECT COUNT(*) FROM points WHERE run_id = ?", (run_id,)).fetchone()
        if count > keep_at_most:
            count -= db.execute(_THIN, (run_id,)).rowcount
    return int(count)


def held_after(count: int, keep_at_most: int = MAX_POINTS) -> int:
    """How many points a run holds once `add_point` has stored its `count`-th (thinned past `keep_at_most`, as
    `_THIN` does: every second of them but the first and the newest): the trainer, which never reads the
    registry, knows from it when its curve was thinned."""
    return count - (count - 1) // 2 if count > keep_at_most else count


def points(reg: Registry, run_id: int) -> list[dict[str, float]]:
    """A run's points by step ([] for a registry older than points)."""
    with reg.reading() as db:
        if reg.outdated and not has_table(db, "points"):
            return []
        rows = db.execute("SELECT * FROM points WHERE run_id = ? ORDER BY step", (run_id,)).fetchall()
    return [{c: r[c] for c in POINT_COLUMNS} for r in rows]


def set_watch(reg: Registry, run_id: int, data: dict[str, Any]) -> None:
    """Store a run's latest answers on its watched test images (vitdemo.training.watch.WatchRow.to_dict())."""
    with reg.writing() as db:
        db.execute(
            "INSERT OR REPLACE INTO watches (run_id, data, updated_at) VALUES (?, ?, ?)",
            (run_id, json.dumps(data), time.time()),
        )
