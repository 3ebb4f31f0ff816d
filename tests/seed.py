"""Registry seeding and locking shared by the store, queue and CLI tests (conftest puts tests/ on sys.path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vitdemo.config import TrainConfig
from vitdemo.runs.store import Registry


def queued_run(reg: Registry, name: str = "run", **fields: object) -> int:
    """A queued ViT run on MNIST (its config TrainConfig's defaults); `fields` are the registry's columns."""
    return reg.create_run(name=name, kind="vit", dataset="mnist", config=TrainConfig().to_dict(), **fields)


def lock_registry(db_path: Path, *, shut_out_readers: bool) -> subprocess.Popen:
    """Another process holding the registry locked for 45 s (the test kills it): a BEGIN EXCLUSIVE transaction,
    which in WAL mode still lets readers read, or with locking_mode=EXCLUSIVE (`shut_out_readers`), which shuts
    them out too."""
    pragma = "db.execute('PRAGMA locking_mode=EXCLUSIVE'); " if shut_out_readers else ""
    code = (
        f"import sqlite3, time; db = sqlite3.connect({str(db_path)!r}, isolation_level=None); {pragma}"
        "db.execute('BEGIN EXCLUSIVE'); db.execute('UPDATE runs SET error = error'); print('locked', flush=True); "
        "time.sleep(45)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc
