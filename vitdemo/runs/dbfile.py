"""The registry's SQLite file: created in one step, read without writing, refused when damaged. No torch here.

Several processes share it (Streamlit sessions, the worker and its training child, the CLI), so every call opens
a short-lived connection. Two kinds:

- `read()` opens the file read-only (`mode=ro`): it never writes or creates the file (a missing registry reads
  as empty), and gives up with `RegistryBusy` after `read_timeout_s` when another program holds the file locked;
- `write()` is one transaction (BEGIN IMMEDIATE ... COMMIT); it creates a missing registry (built under a
  temporary name and linked into place, so nobody sees it half made) and waits up to `write_timeout_s`.

An existing file that is empty, truncated or not SQLite is refused (`RegistryDamaged`), never recreated: a new,
empty registry would hand out run ids again, and `evaluate 7` would score another model.
Every sqlite3 error leaves here as a `RegistryError` whose message is one sentence saying what to do.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

READ_TIMEOUT_S = 2.0  # a page or `leaderboard` says "busy" after this, rather than hanging
WRITE_TIMEOUT_S = 30.0  # a worker recording a result waits longer: losing it costs a training
SQLITE_MAGIC = b"SQLite format 3\x00"


class RegistryError(Exception):
    """The run registry cannot do what was asked; str() is one sentence saying what to do (for a terminal or a
    log: it names the file), `public` the same without server paths (for a browser)."""

    public = "The run registry could not be used; the server's log says why."


class RegistryBusy(RegistryError):
    """Another program holds the registry locked for longer than this call waits."""

    public = "The run registry is busy (another program is using it); try again in a moment."


class RegistryDamaged(RegistryError):
    """The registry file exists but is empty, truncated or not a vitdemo SQLite database."""

    public = "The run registry file is damaged: whoever runs this server must move it aside (see the server's log)."

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        super().__init__(
            f"the run registry {path} is {what}; move it aside (mv {path} {path}.broken) "
            "and vitdemo will start a new, empty one"
        )


class RegistryUnavailable(RegistryError):
    """The registry file or its folder cannot be opened or written (read-only folder, full disk, I/O error)."""

    public = "The run registry cannot be written (a read-only folder or a full disk): runs cannot be saved now."


@dataclass(frozen=True)
class Upgrade:
    """How an older file is brought up to the schema: `needed(db)` looks, `apply(db)` changes it inside a write
    transaction (idempotently: another process may have done it meanwhile)."""

    needed: Callable[[sqlite3.Connection], bool]
    apply: Callable[[sqlite3.Connection], None]


class RegistryFile:
    """Connections to one SQLite file holding `schema` (an older file is upgraded by `upgrade` once, on its
    first use: by the first write, or before the first read)."""

    def __init__(
        self,
        path: Path,
        schema: str,
        *,
        read_timeout_s: float,
        write_timeout_s: float,
        upgrade: Upgrade | None = None,
    ) -> None:
        self.path, self.schema, self.upgrade = path, schema, upgrade
        self.read_timeout_s, self.write_timeout_s = read_timeout_s, write_timeout_s
        self._current = upgrade is None  # known to hold the latest schema
        self.outdated = False  # an older file that cannot be upgraded now (read-only, busy): read as it is

    def translate(self, exc: sqlite3.Error, writing: bool) -> RegistryError:
        name = getattr(exc, "sqlite_errorname", "")
        text = str(exc)
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
            return RegistryBusy(
                f"the run registry {self.path} is busy (another program holds it locked); try again in a moment"
            )
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text or "not a database" in text:
            return RegistryDamaged(self.path, f"damaged or truncated ({text})")
        if "no such table" in text or "no such column" in text:
            return RegistryDamaged(self.path, f"a SQLite database but not a vitdemo run registry ({text})")
        if writing:
            return RegistryUnavailable(
                f"the run registry {self.path} could not be written ({text}): "
                "free some disk space or make its folder writable"
            )
        return RegistryUnavailable(f"the run registry {self.path} could not be read ({text})")

    def check(self) -> None:
        """Refuse an existing file that is not a SQLite database (SQLite takes an empty file for a new one)."""
        try:
            size = self.path.stat().st_size
            with open(self.path, "rb") as f:
                head = f.read(100)
        except OSError as exc:
            raise RegistryUnavailable(f"the run registry {self.path} could not be read ({exc})") from exc
        if size == 0:
            raise RegistryDamaged(self.path, "an empty file")
        if not head.startswith(SQLITE_MAGIC):
            raise RegistryDamaged(self.path, "not a SQLite database")
        if len(head) < 100:
            raise RegistryDamaged(self.path, "truncated")

    def create(self) -> None:
        """Make the file in one step: built under a temporary name, then linked into place (a file that another
        process linked first wins, and is used)."""
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}-", suffix=".tmp", dir=folder)
            os.close(fd)
        except OSError as exc:
            raise RegistryUnavailable(
                f"the run registry could not be created in {folder} ({exc}): make the folder writable"
            ) from exc
        try:
            db = sqlite3.connect(tmp, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")  # stored in the file: every later connection uses WAL
                db.executescript(self.schema)
            finally:
                db.close()
            with contextlib.suppress(FileExistsError):
                os.link(tmp, self.path)
        except sqlite3.Error as exc:
            raise self.translate(exc, writing=True) from exc
        except OSError as exc:
            raise RegistryUnavailable(f"the run registry {self.path} could not be created ({exc})") from exc
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(tmp + suffix).unlink(missing_ok=True)

    def _open_read(self) -> sqlite3.Connection:
        if not self.path.exists():  # nothing recorded yet: answer from an empty in-memory registry
            if self.path.parent.exists() and not self.path.parent.is_dir():
                exc = RegistryUnavailable(
                    f"the run registry could not be read: {self.path.parent} is a file, not a folder "
                    "(point VITDEMO_HOME or --home at a folder)"
                )
                exc.public = "The run registry could not be read: the server's runs folder is a file, not a folder."
                raise exc
            db = sqlite3.connect(":memory:", isolation_level=None)
            db.executescript(self.schema)
            return db
        self.check()
        uri = self.path.resolve().as_uri() + "?mode=ro"
        db = sqlite3.connect(uri, uri=True, timeout=self.read_timeout_s, isolation_level=None)
        try:
            db.execute("PRAGMA schema_version").fetchone()
        except sqlite3.OperationalError as exc:
            db.close()
            if not self._unwritable_folder(exc):
                raise
            # A WAL reader needs its -shm index beside the file. A folder that cannot take one cannot take a
            # writer's -wal either, so the file is complete and nobody can change it: read it as immutable.
            db = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None)
        return db

    def _unwritable_folder(self, exc: sqlite3.OperationalError) -> bool:
        if Path(f"{self.path}-wal").exists():
            return False
        name = getattr(exc, "sqlite_errorname", "")
        return name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL")) or any(
            s in str(exc) for s in ("readonly", "unable to open", "disk I/O", "full")
        )

    def _bring_up_to_date(self) -> None:
        """Before the first read of an existing file: upgrade it if it is older than the schema (one write). A file
        that cannot be written is read as it is (`outdated`); a damaged one is left for the read to report."""
        assert self.upgrade is not None
        try:
            db = self._open_read()
            try:
                needed = self.upgrade.needed(db)
            finally:
                db.close()
        except (sqlite3.Error, RegistryError):
            return
        if needed:
            try:
                with self.write():
                    pass  # write() upgrades inside its transaction
            except RegistryBusy:  # try again at the next read
                self.outdated = True
                return
            except RegistryUnavailable:  # read-only (or a full disk): read it as it is from now on
                self._current = self.outdated = True
                return
        self._current, self.outdated = True, False

    def is_outdated(self) -> bool:
        """True for an older file that cannot be upgraded now (it is looked at, and upgraded, on the first call)."""
        if not self._current and self.path.exists():
            self._bring_up_to_date()
        return self.outdated

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection: it cannot write, and gives up after `read_timeout_s` when the file is locked."""
        if not self._current and self.path.exists():
            self._bring_up_to_date()
        db = None
        try:
            db = self._open_read()
            db.row_factory = sqlite3.Row
            yield db
        except sqlite3.Error as exc:
            raise self.translate(exc, writing=False) from exc
        finally:
            if db is not None:
                db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, creating the file if it is missing."""
        if not self.path.exists():
            self.create()
        self.check()
        db = None
        try:
            db = sqlite3.connect(self.path, timeout=self.write_timeout_s, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; a power cut may lose the last commits
            db.execute("BEGIN IMMEDIATE")
            try:
                if not self._current and self.upgrade is not None and self.upgrade.needed(db):
                    self.upgrade.apply(db)
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            self._current, self.outdated = True, False
        except sqlite3.Error as exc:
            raise self.translate(exc, writing=True) from exc
        finally:
            if db is not None:
                db.close()
