"""Who is asking: the people of a class (a display name and a browser's secret token) and the actor that every
queue call that changes someone's run takes. No torch, no Streamlit.

A person is created once per browser, when they first give their name; the page keeps their random token in its
address, so a reload is still them, and a new name from the same browser renames them (`rename`): one browser is
one person. A run belongs to its owner ("person:<id>", or a label for the runs no person started: shipped
baselines, command-line runs, runs from before owners). Only the owner or the teacher may cancel or delete it
(`vitdemo.runs.queue` checks, `NotAllowed` says no).

Names hold per person, not per string: a name is unique under its key (`vitdemo.runs.namekey`: case, spacing,
accents and look-alike letters do not make a new name), the app's own labels and "Teacher" are refused, and one
device (its network address) gives at most the teacher's `max_names_per_device` names. The teacher sees who
joined (`roster`) and can rename, merge (`merge`: the same student from two browsers) or block (`set_blocked`: no
more runs or drawings) a name.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
import unicodedata
from dataclasses import dataclass

from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.namekey import name_key, reserved_keys
from vitdemo.runs.schema import CLI_OWNER, EARLIER_OWNER, HOME_OWNER, SHIPPED_OWNER
from vitdemo.runs.store import Registry, Run

MAX_NAME = 40
OWNER_LABELS = {
    SHIPPED_OWNER: "shipped with the app",
    CLI_OWNER: "command line",
    EARLIER_OWNER: "before names",
    HOME_OWNER: "no name",
}
RESERVED = reserved_keys(
    ("teacher", "the teacher", "admin", "administrator", "someone", "everyone", "nobody", "vitdemo",
     SHIPPED_OWNER, CLI_OWNER, EARLIER_OWNER, HOME_OWNER, *OWNER_LABELS.values())
)  # fmt: skip
MERGE_HOPS = 8  # a merged person's token follows at most this many merges


@dataclass(frozen=True)
class Actor:
    """Who does something to the queue: an owner label, the name to show, and whether they are the teacher."""

    owner: str
    name: str
    teacher: bool = False
    blocked: bool = False  # the teacher blocked this name: it may queue no run and submit no drawing

    def may_change(self, run: Run) -> bool:
        """The run's owner or the teacher."""
        return self.teacher or run.owner == self.owner


CLI = Actor(CLI_OWNER, OWNER_LABELS[CLI_OWNER], teacher=True)  # whoever has a terminal on the server
HOME = Actor(HOME_OWNER, OWNER_LABELS[HOME_OWNER], teacher=True)  # a browser where no teacher password is set


@dataclass(frozen=True)
class Person:
    id: int
    token: str  # secret: whoever has it is this person
    name: str
    blocked: bool = False

    @property
    def owner(self) -> str:
        return person_owner(self.id)

    def actor(self, *, teacher: bool = False) -> Actor:
        return Actor(self.owner, self.name, teacher, blocked=self.blocked and not teacher)


@dataclass(frozen=True)
class Member:
    """One row of the teacher's roster: a person, when they joined, from which device, and their runs."""

    id: int
    name: str
    joined_at: float
    address: str | None
    blocked: bool
    active_runs: int  # queued or running
    runs: int


class NotAllowed(RegistryError, PermissionError):
    """Someone tried to change a run that is not theirs, or a class setting without being the teacher."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.public = message


class NameProblem(RegistryError, ValueError):
    """A display name that is empty, too long, or already someone else's."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.public = message


def person_owner(person_id: int) -> str:
    return f"person:{person_id}"


def clean_name(name: str) -> str:
    """The name as it is stored: spaces collapsed; refused (NameProblem) when empty, too long, holding control
    characters, or one of the app's own labels or "Teacher" in any spelling."""
    name = " ".join(str(name)[: 4 * MAX_NAME].split())
    if not name:
        raise NameProblem("Type a name (your first name is enough) so that your runs show as yours.")
    if len(name) > MAX_NAME:
        raise NameProblem(f"That name is {len(name)} characters long: use at most {MAX_NAME}.")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise NameProblem("That name holds invisible control characters: type it again with letters only.")
    key = name_key(name)
    if not key:
        raise NameProblem("A name needs at least one letter or digit.")
    if key in RESERVED or key.startswith("teacher"):
        raise NameProblem(f"{name} is a name the app uses itself: type your own name.")
    return name


def _taken(name: str) -> NameProblem:
    return NameProblem(f"Someone in this class is already called {name} (or a name that looks the same): add an "
                       f"initial, like {name} K.")  # fmt: skip


def register(store: Registry, name: str, *, address: str | None = None, max_per_address: int = 0) -> Person:
    """A new person with a fresh random token. NameProblem when the name (under its key) is taken or refused, or
    when `address` (the device's) has already given `max_per_address` names (0: no limit); both are checked in
    the inserting transaction."""
    name = clean_name(name)
    token = secrets.token_urlsafe(16)
    try:
        with store.writing() as db:
            if address and max_per_address:
                (given,) = db.execute("SELECT COUNT(*) FROM people WHERE address = ?", (address,)).fetchone()
                if given >= max_per_address:
                    raise NameProblem(
                        f"This device has already given {given} names, the class limit: ask your teacher to rename "
                        "yours, or to raise the limit."
                    )
            cur = db.execute(
                "INSERT INTO people (token, name, created_at, name_key, address) VALUES (?, ?, ?, ?, ?)",
                (token, name, time.time(), name_key(name), address),
            )
            person_id = int(cur.lastrowid)
    except RegistryError as exc:
        if isinstance(exc.__cause__, sqlite3.IntegrityError):
            raise _taken(name) from None
        raise
    return Person(person_id, token, name)


def _teacher_or_self(actor: Actor, person_id: int, what: str) -> None:
    if not actor.teacher and actor.owner != person_owner(person_id):
        raise NotAllowed(f"Only the teacher can {what} someone else's name.")


def rename(store: Registry, person_id: int, name: str, actor: Actor) -> Person:
    """Give person `person_id` a new name (the teacher, or the person themself: a new name from the same browser
    replaces the old one). NameProblem when it is taken or refused."""
    _teacher_or_self(actor, person_id, "change")
    name = clean_name(name)
    try:
        with store.writing() as db:
            cur = db.execute("UPDATE people SET name = ?, name_key = ? WHERE id = ? AND merged_into IS NULL",
                             (name, name_key(name), int(person_id)))  # fmt: skip
            if cur.rowcount == 0:
                raise NameProblem("That name is no longer in the class (it was merged into another).")
            row = db.execute("SELECT token, blocked FROM people WHERE id = ?", (int(person_id),)).fetchone()
    except RegistryError as exc:
        if isinstance(exc.__cause__, sqlite3.IntegrityError):
            raise _taken(name) from None
        raise
    return Person(int(person_id), row["token"], name, bool(row["blocked"]))


def set_blocked(store: Registry, person_id: int, blocked: bool, actor: Actor) -> None:
    """Block a name (no new runs or drawings; its name stays taken) or let it go again: the teacher only."""
    if not actor.teacher:
        raise NotAllowed("Only the teacher can block a name.")
    with store.writing() as db:
        db.execute("UPDATE people SET blocked = ? WHERE id = ?", (int(bool(blocked)), int(person_id)))


def merge(store: Registry, source_id: int, into_id: int, actor: Actor) -> None:
    """The same student under two names (two browsers): `source_id`'s runs become `into_id`'s, and its browser's
    token now opens `into_id`; its name is freed. The teacher only. (The class set's drawings are moved by
    `vitdemo.classset.store.reassign`.)"""
    if not actor.teacher:
        raise NotAllowed("Only the teacher can merge names.")
    if int(source_id) == int(into_id):
        raise NameProblem("Pick two different names to merge.")
    with store.writing() as db:
        found = db.execute("SELECT COUNT(*) FROM people WHERE id IN (?, ?) AND merged_into IS NULL",
                           (int(source_id), int(into_id))).fetchone()[0]  # fmt: skip
        if found != 2:
            raise NameProblem("One of those names is no longer in the class: reload the page.")
        db.execute("UPDATE people SET merged_into = ?, name = ?, name_key = NULL WHERE id = ?",
                   (int(into_id), f"#{int(source_id)} (merged into #{int(into_id)})", int(source_id)))  # fmt: skip
        db.execute("UPDATE runs SET owner = ? WHERE owner = ?", (person_owner(into_id), person_owner(source_id)))


def by_token(store: Registry, token: str | None) -> Person | None:
    """The person holding `token` (or the one it was merged into), or None (unknown token, or a registry older
    than people)."""
    if not token or store.outdated or len(str(token)) > 100:
        return None
    with store.reading() as db:
        row = db.execute("SELECT * FROM people WHERE token = ?", (str(token),)).fetchone()
        for _ in range(MERGE_HOPS):
            if row is None or row["merged_into"] is None:
                break
            row = db.execute("SELECT * FROM people WHERE id = ?", (row["merged_into"],)).fetchone()
    if row is None or row["merged_into"] is not None:
        return None
    return Person(int(row["id"]), row["token"], row["name"], bool(row["blocked"]))


def roster(store: Registry) -> list[Member]:
    """Everyone who joined (merged names left out), in the order they joined, with their runs."""
    if store.outdated:
        return []
    query = """
        SELECT p.id, p.name, p.created_at, p.address, p.blocked,
               COUNT(r.id) AS runs, SUM(r.status IN ('queued', 'running')) AS active
        FROM people AS p LEFT JOIN runs AS r ON r.owner = 'person:' || p.id
        WHERE p.merged_into IS NULL GROUP BY p.id ORDER BY p.id"""
    with store.reading() as db:
        rows = db.execute(query).fetchall()
    return [
        Member(int(r["id"]), r["name"], float(r["created_at"]), r["address"], bool(r["blocked"]),
               int(r["active"] or 0), int(r["runs"]))
        for r in rows
    ]  # fmt: skip


def owner_names(store: Registry) -> dict[str, str]:
    """Owner -> the name to show, for every person and every label."""
    names = dict(OWNER_LABELS)
    if store.outdated:
        return names
    with store.reading() as db:
        names |= {person_owner(int(r["id"])): r["name"] for r in db.execute("SELECT id, name FROM people")}
    return names


def owner_name(owner: str, names: dict[str, str]) -> str:
    """What a table shows for `owner`: the person's name, a label, or 'someone' for a name not known here."""
    return names.get(owner) or OWNER_LABELS.get(owner) or "someone"
