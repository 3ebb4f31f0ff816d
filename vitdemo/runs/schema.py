"""The registry's tables, and the upgrade of a registry written before owners, people and class settings, or
before training runs reported their loss every second and their ten watched test images.

A new file gets `SCHEMA` at once. An older one (runs and epochs only, or without `points` and `watches`, or
people without name keys) is upgraded by its first write, inside that write's transaction (`upgrade`): its runs
are kept, each gets an owner (shipped baselines `shipped`, the rest `earlier`), the new tables and triggers are
added, and every person gets the key their name is unique under (`vitdemo.runs.namekey`; two earlier names that
turn out to be look-alikes keep both, the later one's key marked with its id). Every statement is idempotent, so
two processes upgrading at once, or a crash halfway, leave a correct file. No torch here.
"""

from __future__ import annotations

import sqlite3

from vitdemo.runs.namekey import name_key

# Owner labels of runs that no person started (a person's runs are owned by "person:<id>").
SHIPPED_OWNER = "shipped"  # the checkpoints that come with the app
CLI_OWNER = "cli"  # `python -m vitdemo train`
EARLIER_OWNER = "earlier"  # runs of a registry written before runs had owners
HOME_OWNER = "home"  # runs started from a browser on a server with no teacher password (no names asked)

RUNS_AND_EPOCHS = """
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
    progress TEXT,                   -- latest step as JSON: step, total_steps, loss, images_per_s, eta_s
    owner TEXT NOT NULL DEFAULT 'earlier'  -- 'person:<id>', 'shipped', 'cli', 'home' or 'earlier'
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

_BUMP = "UPDATE changes SET version = version + 1 WHERE id = 1;"
# Added by the classroom upgrade, one statement each (they run inside the upgrading write's transaction).
CLASSROOM_STATEMENTS: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS runs_owner ON runs(owner, status)",
    """CREATE TABLE IF NOT EXISTS people (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        token TEXT NOT NULL UNIQUE,           -- the browser's secret, in its address (?who=...)
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        created_at REAL NOT NULL,
        name_key TEXT,                        -- vitdemo.runs.namekey.name_key(name): look-alikes are one name
        address TEXT,                         -- the device's network address when the name was given
        blocked INTEGER NOT NULL DEFAULT 0,   -- the teacher blocked this name: no runs, no drawings
        merged_into INTEGER                   -- the teacher merged this person into another: its token is theirs
    )""",
    "CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",  # class limits, the pause
    # One counter that every change of runs, epochs or settings increments: a page polls it with the active runs
    # in one query and rebuilds nothing while it stays the same.
    "CREATE TABLE IF NOT EXISTS changes (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO changes (id, version) VALUES (1, 0)",
    *(
        f"CREATE TRIGGER IF NOT EXISTS {table}_{event.lower()} AFTER {event} ON {table} BEGIN {_BUMP} END"
        for table in ("runs", "epochs", "settings")
        for event in ("INSERT", "UPDATE", "DELETE")
    ),
)
# Added by the "watch it learn" upgrade. No triggers on purpose: a training writes its points in the same
# transaction as its progress (one `runs` update, which bumps `changes` once), and its watched images every few
# seconds while that progress already bumps the counter twice a second; a page reads both with the run.
LEARNING_STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS points (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        step INTEGER NOT NULL,             -- global, 1-based
        epoch INTEGER NOT NULL,            -- 1-based
        at_epoch REAL NOT NULL,            -- epochs of training done at this step: 1.5 is half-way through epoch 2
        loss REAL,                         -- mean training loss of the steps since the previous point
        lr REAL,
        elapsed_s REAL,
        PRIMARY KEY (run_id, step)
    )""",
    """CREATE TABLE IF NOT EXISTS watches (
        run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        data TEXT NOT NULL,                -- the ten watched test images' answers as JSON (vitdemo.training.watch.WatchRow)
        updated_at REAL NOT NULL
    )""",
)
# Added by the trust upgrade (issue 20), after the people table has its name keys.
PEOPLE_COLUMNS = {
    "name_key": "TEXT",
    "address": "TEXT",
    "blocked": "INTEGER NOT NULL DEFAULT 0",
    "merged_into": "INTEGER",
}
TRUST_STATEMENTS: tuple[str, ...] = (
    "CREATE UNIQUE INDEX IF NOT EXISTS people_name_key ON people(name_key)",
    "CREATE INDEX IF NOT EXISTS people_address ON people(address)",
)
NEW_TABLES = frozenset({"people", "settings", "changes", "points", "watches"})
SCHEMA = RUNS_AND_EPOCHS + "".join(f"{s};\n" for s in CLASSROOM_STATEMENTS + LEARNING_STATEMENTS + TRUST_STATEMENTS)
TRIGGER_COUNT = 9


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}


def has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def needs_upgrade(db: sqlite3.Connection) -> bool:
    """True for a vitdemo registry written before owners and people, or before points and watches (a file without a runs table is not ours:
    it is left alone, and refused as damaged where it is used)."""
    names = _tables(db)
    if "runs" not in names:
        return False
    owner = any(r[1] == "owner" for r in db.execute("PRAGMA table_info(runs)"))
    triggers = sum(n.endswith(("_insert", "_update", "_delete")) for n in names)
    keys = "people" in names and "name_key" in _columns(db, "people")
    return not owner or not NEW_TABLES.issubset(names) or triggers < TRIGGER_COUNT or not keys


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def _upgrade_people(db: sqlite3.Connection) -> None:
    """The people columns of the trust upgrade, and a name key for everyone (look-alikes already there: the
    later one's key gets its id, so both keep their names)."""
    have = _columns(db, "people")
    for column, kind in PEOPLE_COLUMNS.items():
        if column not in have:
            db.execute(f"ALTER TABLE people ADD COLUMN {column} {kind}")
    taken = {r[0] for r in db.execute("SELECT name_key FROM people WHERE name_key IS NOT NULL")}
    for row in db.execute("SELECT id, name FROM people WHERE name_key IS NULL ORDER BY id").fetchall():
        key = name_key(row[1])
        key = key if key and key not in taken else f"{key}#{row[0]}"
        taken.add(key)
        db.execute("UPDATE people SET name_key = ? WHERE id = ?", (key, row[0]))


def upgrade(db: sqlite3.Connection) -> None:
    """Bring an older registry up to SCHEMA inside the caller's write transaction; keeps every run."""
    if "runs" not in _tables(db):
        return
    if not any(r[1] == "owner" for r in db.execute("PRAGMA table_info(runs)")):
        db.execute(f"ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '{EARLIER_OWNER}'")
        db.execute("UPDATE runs SET owner = ? WHERE baseline = 1", (SHIPPED_OWNER,))
    for statement in CLASSROOM_STATEMENTS + LEARNING_STATEMENTS:
        db.execute(statement)
    _upgrade_people(db)
    for statement in TRUST_STATEMENTS:
        db.execute(statement)
