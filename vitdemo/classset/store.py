"""The class's own handwriting: drawings students submit with their true label ("stump the model"), kept for good.

A submission is one row of `<home>/classset/classset.sqlite` (its label, dataset, who, when, and what each model
answered at that moment) plus two files in `<home>/classset/images/`: the drawing as it was submitted (PNG) and
the 28x28 model input made from it (a uint8 PNG, white ink on black like MNIST, the image the models saw before
normalisation). The files are written first (a temporary name, then renamed into place) and the row last, so a
crash can leave a file that no row names (ignored) but never a row without its files.

Rules are enforced here, not only by a page: a label must be 0-9, a blank canvas or marks that are not a digit
are refused (`Refused`, one sentence for the student), each person may submit `max_per_minute` drawings a minute
and the set holds at most `max_total`; a name the teacher blocked submits nothing, and only the teacher may delete
(`vitdemo.runs.people.NotAllowed`). Submitting is idempotent: a drawing is known by its 28x28 input's digest
(unique per dataset), so the same drawing sent twice (a double tap, a second tab, a script) is one row.
The file shares the run registry's machinery (`vitdemo.runs.dbfile`: WAL, read-only reads that say "busy" after
a timeout, damaged files refused). No torch here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vitdemo import paths
from vitdemo.classset.images import MAX_DRAWING_PX as MAX_DRAWING_PX  # where the drawings' size limit was
from vitdemo.classset.images import drawing_png, input_digest, input_uint8, png_bytes, read_input_png
from vitdemo.preprocess.pipeline import EMPTY_MESSAGE, Preprocessed, preprocess
from vitdemo.runs.dbfile import READ_TIMEOUT_S, WRITE_TIMEOUT_S, RegistryError, RegistryFile, Upgrade
from vitdemo.runs.people import Actor, NotAllowed

FOLDER = "classset"  # under $VITDEMO_HOME
DB_NAME = "classset.sqlite"
NUM_LABELS = 10  # digits 0-9 (and Fashion-MNIST's ten classes)
MAX_PER_MINUTE = 10  # per person: a student can stump the model often, a script cannot flood the set
MAX_TOTAL = 5000  # the whole set: about 25 MB of drawings, a few seconds to score every run

SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),  -- the true class, as the student said
    dataset TEXT NOT NULL,               -- the sidebar's dataset when it was submitted ('mnist', 'fashion')
    owner TEXT NOT NULL,                 -- 'person:<id>' or 'home' (vitdemo.runs.people)
    who TEXT NOT NULL,                   -- the display name at submit time
    created_at REAL NOT NULL,
    page TEXT NOT NULL DEFAULT '',       -- where it came from: 'draw', 'present'
    drawing TEXT NOT NULL,               -- file name in images/: the drawing as submitted (PNG)
    input TEXT NOT NULL,                 -- file name in images/: the 28x28 model input (uint8 PNG, ink 255)
    digest TEXT                          -- sha256 of the 28x28 input: the same drawing is one row (NULL: older)
);
CREATE INDEX IF NOT EXISTS submissions_owner ON submissions(owner, created_at);
CREATE UNIQUE INDEX IF NOT EXISTS submissions_digest ON submissions(dataset, digest);
CREATE TABLE IF NOT EXISTS answers (     -- what each model said at submit time
    submission_id INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,                  -- 'vit', 'cnn'
    model TEXT NOT NULL,                 -- the run or checkpoint, as the picker named it
    label INTEGER NOT NULL,
    prob REAL NOT NULL,
    PRIMARY KEY (submission_id, kind)
);
CREATE TABLE IF NOT EXISTS scores (      -- a checkpoint's accuracy on the set: valid for one version and mtime
    checkpoint TEXT NOT NULL,
    dataset TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL,
    version INTEGER NOT NULL,
    n INTEGER NOT NULL,
    correct INTEGER NOT NULL,
    PRIMARY KEY (checkpoint, dataset)
);
CREATE TABLE IF NOT EXISTS changes (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
INSERT OR IGNORE INTO changes (id, version) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS submissions_insert AFTER INSERT ON submissions
    BEGIN UPDATE changes SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER IF NOT EXISTS submissions_delete AFTER DELETE ON submissions
    BEGIN UPDATE changes SET version = version + 1 WHERE id = 1; END;
"""


# -- errors -----------------------------------------------------------------------------------------------------
class ClassSetError(RegistryError):
    """The class set's file cannot be used (busy, damaged, unwritable): str() names the file, `public` does not."""

    def __init__(self, message: str, public: str) -> None:
        super().__init__(message)
        self.public = public


class Refused(RegistryError, ValueError):
    """A submission that is not added (wrong label, blank canvas, too many too fast, the set is full); the message
    is one sentence for the student. Nothing was stored."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.public = message


class SubmissionNotFound(RegistryError, KeyError):
    def __init__(self, submission_id: int) -> None:
        super().__init__(f"no submission #{submission_id} in the class set")
        self.public = f"Drawing #{submission_id} is not in the class set (it may have been deleted)."

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def _renamed(text: str) -> str:
    return text.replace("the run registry", "the class set").replace("The run registry", "The class set")


@contextmanager
def _file_errors() -> Iterator[None]:
    """The shared dbfile errors speak of "the run registry": say "the class set" instead. Our own pass through."""
    try:
        yield
    except (Refused, SubmissionNotFound, NotAllowed, ClassSetError):
        raise
    except RegistryError as exc:
        raise ClassSetError(_renamed(str(exc)), _renamed(exc.public)) from exc


# -- rows -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """One model's answer to a drawing when it was submitted."""

    kind: str  # 'vit', 'cnn'
    model: str  # the run or checkpoint
    label: int
    prob: float  # its (calibrated) probability for `label`


@dataclass(frozen=True)
class Submission:
    id: int
    label: int
    dataset: str
    owner: str
    who: str
    created_at: float
    page: str
    drawing: str  # file names in ClassSet.image_dir
    input: str
    answers: tuple[Answer, ...] = ()

    def answer(self, kind: str) -> Answer | None:
        return next((a for a in self.answers if a.kind == kind), None)

    def fooled(self, kind: str) -> bool:
        """True when the model of `kind` answered, and wrongly."""
        a = self.answer(kind)
        return a is not None and a.label != self.label


class Predicted(Protocol):
    """What `answers_from` reads of a prediction (vitdemo.explain.inference.Prediction has it)."""

    @property
    def label(self) -> int: ...

    @property
    def confidence(self) -> float: ...


def answers_from(predictions: Mapping[str, Predicted], models: Mapping[str, str]) -> list[Answer]:
    """kind -> prediction (and kind -> model name) as the answers to store."""
    return [Answer(kind, models.get(kind, kind), int(p.label), float(p.confidence)) for kind, p in predictions.items()]


# -- the store --------------------------------------------------------------------------------------------------
class ClassSet:
    """The submissions in `<home>/classset/`. Constructing one touches no file: the first submission creates it."""

    def __init__(
        self,
        home: str | os.PathLike | None = None,
        *,
        max_per_minute: int = MAX_PER_MINUTE,
        max_total: int = MAX_TOTAL,
        read_timeout_s: float = READ_TIMEOUT_S,
        write_timeout_s: float = WRITE_TIMEOUT_S,
    ) -> None:
        self.home = paths.home(home)
        self.folder = self.home / FOLDER
        self.image_dir = self.folder / "images"
        self.db_path = self.folder / DB_NAME
        self.max_per_minute, self.max_total = max_per_minute, max_total
        self._file = RegistryFile(
            self.db_path, SCHEMA, read_timeout_s=read_timeout_s, write_timeout_s=write_timeout_s,
            upgrade=Upgrade(_needs_digest, _add_digest),
        )  # fmt: skip

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection (a missing file reads as an empty set)."""
        with _file_errors(), self._file.read() as db:
            yield db

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE), creating the file if it is missing."""
        with _file_errors(), self._file.write() as db:
            yield db

    def version(self) -> int:
        """Goes up with every submission and every delete: a cache of anything computed on the set keys on it."""
        with self.reading() as db:
            return int(db.execute("SELECT version FROM changes WHERE id = 1").fetchone()[0])

    def list(self, dataset: str | None = None, *, owner: str | None = None) -> list[Submission]:
        """Submissions, newest first, of one dataset and one owner if given."""
        where, args = _where(dataset=dataset, owner=owner)
        with self.reading() as db:
            rows = db.execute(f"SELECT * FROM submissions{where} ORDER BY id DESC", args).fetchall()
            answers = _answers(db, [int(r["id"]) for r in rows])
        return [_submission(r, answers.get(int(r["id"]), ())) for r in rows]

    def get(self, submission_id: int) -> Submission:
        with self.reading() as db:
            row = db.execute("SELECT * FROM submissions WHERE id = ?", (int(submission_id),)).fetchone()
            if row is None:
                raise SubmissionNotFound(submission_id)
            return _submission(row, _answers(db, [int(submission_id)]).get(int(submission_id), ()))

    def latest(self, dataset: str, limit: int) -> list[Submission]:
        """The newest `limit` submissions of `dataset`, newest first: one indexed read, for the live class wall."""
        with self.reading() as db:
            rows = db.execute(
                "SELECT * FROM submissions WHERE dataset = ? ORDER BY id DESC LIMIT ?", (dataset, int(limit))
            ).fetchall()
            answers = _answers(db, [int(r["id"]) for r in rows])
        return [_submission(r, answers.get(int(r["id"]), ())) for r in rows]

    def fooled_counts(self, dataset: str) -> dict[str, int]:
        """'' -> how many submissions of `dataset`, and kind -> how many of them fooled that model (its answer at
        submit time was wrong): one aggregate query."""
        with self.reading() as db:
            total = db.execute("SELECT COUNT(*) FROM submissions WHERE dataset = ?", (dataset,)).fetchone()[0]
            rows = db.execute(
                "SELECT a.kind, COUNT(*) FROM answers a JOIN submissions s ON s.id = a.submission_id "
                "WHERE s.dataset = ? AND a.label != s.label GROUP BY a.kind",
                (dataset,),
            ).fetchall()
        return {"": int(total), **{str(kind): int(n) for kind, n in rows}}

    def count(self, dataset: str | None = None) -> int:
        where, args = _where(dataset=dataset)
        with self.reading() as db:
            return int(db.execute(f"SELECT COUNT(*) FROM submissions{where}", args).fetchone()[0])

    def input_image(self, sub: Submission) -> np.ndarray:
        """The 28x28 model input, (28, 28) uint8 with ink at 255. OSError/ValueError when the file is unreadable."""
        return read_input_png(self.image_dir / sub.input)

    def drawing_bytes(self, sub: Submission) -> bytes:
        return (self.image_dir / sub.drawing).read_bytes()


def _needs_digest(db: sqlite3.Connection) -> bool:
    """A set written before submissions were idempotent (its rows keep no digest: they stay as they are)."""
    columns = {r[1] for r in db.execute("PRAGMA table_info(submissions)")}
    return bool(columns) and "digest" not in columns


def _add_digest(db: sqlite3.Connection) -> None:
    if _needs_digest(db):
        db.execute("ALTER TABLE submissions ADD COLUMN digest TEXT")
    db.execute("CREATE UNIQUE INDEX IF NOT EXISTS submissions_digest ON submissions(dataset, digest)")


def _where(**filters: Any) -> tuple[str, tuple[Any, ...]]:
    given = {k: v for k, v in filters.items() if v is not None}
    clause = " AND ".join(f"{k} = ?" for k in given)
    return (f" WHERE {clause}" if clause else ""), tuple(given.values())


def _answers(db: sqlite3.Connection, ids: Sequence[int]) -> dict[int, tuple[Answer, ...]]:
    found: dict[int, list[Answer]] = {}
    for start in range(0, len(ids), 500):  # SQLite limits the number of ? in one statement
        chunk = ids[start : start + 500]
        rows = db.execute(
            f"SELECT * FROM answers WHERE submission_id IN ({', '.join('?' * len(chunk))}) ORDER BY kind DESC", chunk
        )
        for r in rows:
            found.setdefault(int(r["submission_id"]), []).append(
                Answer(r["kind"], r["model"], int(r["label"]), float(r["prob"]))
            )
    return {k: tuple(v) for k, v in found.items()}


def _submission(row: sqlite3.Row, answers: tuple[Answer, ...]) -> Submission:
    d = dict(row)
    return Submission(
        int(d["id"]), int(d["label"]), d["dataset"], d["owner"], d["who"], float(d["created_at"]), d["page"],
        d["drawing"], d["input"], answers,
    )  # fmt: skip


def _write_new(folder: Path, suffix: str, data: bytes) -> Path:
    """`data` in a new file of `folder` with a random name: written under a temporary name, then renamed."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        path = folder / f"{secrets.token_hex(8)}{suffix}"
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# -- submit and delete -------------------------------------------------------------------------------------------
def check_label(label: Any) -> int:
    """The true label as an int 0-9 (Refused otherwise)."""
    ok = isinstance(label, int | np.integer) and not isinstance(label, bool) and 0 <= int(label) < NUM_LABELS
    if not ok:
        raise Refused(f"Pick the digit you drew (0 to 9) before submitting: {label!r} is not one.")
    return int(label)


def check_drawing(drawing: np.ndarray | None, pre: Preprocessed | None = None) -> Preprocessed:
    """The drawing's preprocessing (`pre`, or made here); Refused for a blank canvas, a speck or marks that are
    not a digit (preprocess's `empty` and `not_digit` flags), with what to do."""
    if drawing is None or np.asarray(drawing).size == 0:
        raise Refused("The canvas is blank: draw a digit, then submit it.")
    if pre is None:
        try:
            pre = preprocess(np.asarray(drawing))
        except ValueError as exc:
            raise Refused(f"That image cannot be used: {exc}") from None
    if pre.not_digit:
        raise Refused("That does not look like a handwritten digit, so it was not added: draw one digit.")
    if pre.empty or pre.image is None:
        if pre.message == EMPTY_MESSAGE:
            raise Refused("The canvas is blank: draw a digit, then submit it.")
        raise Refused("That is only a dot or a speck: draw a whole digit before submitting it.")
    return pre


def _check_room(db: sqlite3.Connection, store: ClassSet, owner: str, now: float) -> None:
    """Refused when `owner` submitted `max_per_minute` drawings in the last minute, or the set is full. Counted in
    the inserting transaction, so two quick clicks cannot both pass."""
    (recent,) = db.execute(
        "SELECT COUNT(*) FROM submissions WHERE owner = ? AND created_at > ?", (owner, now - 60.0)
    ).fetchone()
    if recent >= store.max_per_minute:
        raise Refused(
            f"That is {recent} drawings in the last minute, the most one person may add: wait a minute and try again."
        )
    (total,) = db.execute("SELECT COUNT(*) FROM submissions").fetchone()
    if total >= store.max_total:
        raise Refused(
            f"The class set is full ({total:,} drawings): the teacher can export it and delete some to make room."
        )


def submit(
    store: ClassSet,
    drawing: np.ndarray | None,
    label: Any,
    actor: Actor,
    answers: Iterable[Answer] = (),
    *,
    dataset: str = "mnist",
    page: str = "",
    pre: Preprocessed | None = None,
    now: float | None = None,
) -> Submission:
    """Add `drawing` with its true `label`, by `actor`, with what the models answered. Refused (nothing stored)
    for a bad label, a drawing with no digit in it, too many drawings a minute, a full set or a drawing someone
    else already added; NotAllowed for a blocked name. The same drawing again from `actor` returns the row it
    already made (idempotent). `pre` is the drawing's preprocessing when the caller has it (the Draw page does),
    else it is made here."""
    if actor.blocked:
        raise NotAllowed("The teacher has blocked your name: ask them before you submit drawings.")
    label = check_label(label)
    pre = check_drawing(drawing, pre)
    answers = list(answers)
    kinds = [a.kind for a in answers]
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"one answer per model kind: got {kinds}")
    digest = input_digest(pre.image)
    with store.reading() as db:
        known = db.execute("SELECT id, owner FROM submissions WHERE dataset = ? AND digest = ?", (dataset, digest))
        known = known.fetchone()
    if known is not None:  # read first: a repeat writes no file
        return _known(store, int(known["id"]), known["owner"], actor)
    now = time.time() if now is None else float(now)
    drawing_path = _write_new(store.image_dir, ".png", drawing_png(np.asarray(drawing)))
    input_path = _write_new(store.image_dir, "-28.png", png_bytes(input_uint8(pre.image)))
    row = (label, dataset, actor.owner, actor.name, now, page, drawing_path.name, input_path.name, digest)
    try:
        with store.writing() as db:
            again = db.execute("SELECT id, owner FROM submissions WHERE dataset = ? AND digest = ?", (dataset, digest))
            again = again.fetchone()
            if again is not None:  # another tab's submit of the same drawing won the race
                raise _Known(int(again["id"]), again["owner"])
            _check_room(db, store, actor.owner, now)
            cur = db.execute(
                "INSERT INTO submissions (label, dataset, owner, who, created_at, page, drawing, input, digest) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            sub_id = int(cur.lastrowid)
            db.executemany(
                "INSERT INTO answers (submission_id, kind, model, label, prob) VALUES (?, ?, ?, ?, ?)",
                [(sub_id, a.kind, a.model, int(a.label), float(a.prob)) for a in answers],
            )
    except BaseException as exc:
        for path in (drawing_path, input_path):  # no row names them: remove them now rather than leave orphans
            path.unlink(missing_ok=True)
        if isinstance(exc, _Known):
            return _known(store, exc.id, exc.owner, actor)
        raise
    return Submission(sub_id, *row[:-1], tuple(answers))


class _Known(Exception):
    """The drawing is already row `id` (of `owner`): leaves the insert's transaction without writing."""

    def __init__(self, submission_id: int, owner: str) -> None:
        super().__init__(submission_id)
        self.id, self.owner = submission_id, owner


def _known(store: ClassSet, submission_id: int, owner: str, actor: Actor) -> Submission:
    """The row a drawing already is, when it is `actor`'s (a repeat is no new row); Refused when someone else's."""
    if owner != actor.owner:
        raise Refused(f"That exact drawing is already in the class set (drawing #{submission_id}): draw a new one.")
    return store.get(submission_id)


def reassign(store: ClassSet, old_owner: str, new_owner: str, who: str) -> int:
    """The drawings of `old_owner` become `new_owner`'s, shown as `who` (the teacher merged two names). Returns
    how many moved."""
    with store.writing() as db:
        cur = db.execute("UPDATE submissions SET owner = ?, who = ? WHERE owner = ?", (new_owner, who, old_owner))
    return cur.rowcount


def delete(store: ClassSet, submission_id: int, actor: Actor) -> None:
    """Remove a submission and its files: the teacher only (NotAllowed), SubmissionNotFound when it is gone. The
    row goes first; a file that cannot be removed afterwards is an orphan, which nothing reads."""
    if not actor.teacher:
        raise NotAllowed("Only the teacher can delete drawings from the class set.")
    with store.writing() as db:
        row = db.execute("SELECT drawing, input FROM submissions WHERE id = ?", (int(submission_id),)).fetchone()
        if row is None:
            raise SubmissionNotFound(submission_id)
        db.execute("DELETE FROM submissions WHERE id = ?", (int(submission_id),))
    for name in (row["drawing"], row["input"]):
        with contextlib.suppress(OSError):
            (store.image_dir / name).unlink(missing_ok=True)


def fooled(subs: Iterable[Submission], kinds: Sequence[str]) -> list[Submission]:
    """The submissions that fooled every model in `kinds` (each answered, and wrongly)."""
    return [s for s in subs if all(s.fooled(k) for k in kinds)]
