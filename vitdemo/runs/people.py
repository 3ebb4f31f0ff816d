"""Who is asking: the people of a class (a display name and a browser's secret token) and the actor that every
queue call that changes someone's run takes. No torch, no Streamlit.

A person is created once per browser, when they first give their name; the page keeps their random token in its
address, so a reload is still them. A run belongs to its owner ("person:<id>", or a label for the runs no person
started: shipped baselines, command-line runs, runs from before owners). Only the owner or the teacher may cancel
or delete it (`vitdemo.runs.queue` checks, `NotAllowed` says no).
"""

from __future__ import annotations

import secrets
import sqlite3
import time
import unicodedata
from dataclasses import dataclass

from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.schema import CLI_OWNER, EARLIER_OWNER, HOME_OWNER, SHIPPED_OWNER
from vitdemo.runs.store import Registry, Run

MAX_NAME = 40
OWNER_LABELS = {
    SHIPPED_OWNER: "shipped with the app",
    CLI_OWNER: "command line",
    EARLIER_OWNER: "before names",
    HOME_OWNER: "no name",
}


@dataclass(frozen=True)
class Actor:
    """Who does something to the queue: an owner label, the name to show, and whether they are the teacher."""

    owner: str
    name: str
    teacher: bool = False

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

    @property
    def owner(self) -> str:
        return person_owner(self.id)

    def actor(self, *, teacher: bool = False) -> Actor:
        return Actor(self.owner, self.name, teacher)


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
    """The name as it is stored: spaces collapsed, control characters refused (NameProblem)."""
    name = " ".join(str(name).split())
    if not name:
        raise NameProblem("Type a name (your first name is enough) so that your runs show as yours.")
    if len(name) > MAX_NAME:
        raise NameProblem(f"That name is {len(name)} characters long: use at most {MAX_NAME}.")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise NameProblem("That name holds invisible control characters: type it again with letters only.")
    return name


def register(store: Registry, name: str) -> Person:
    """A new person with a fresh random token. NameProblem when the name is taken (in any letter case)."""
    name = clean_name(name)
    token = secrets.token_urlsafe(16)
    try:
        with store.writing() as db:
            cur = db.execute(
                "INSERT INTO people (token, name, created_at) VALUES (?, ?, ?)", (token, name, time.time())
            )
            person_id = int(cur.lastrowid)
    except RegistryError as exc:
        if isinstance(exc.__cause__, sqlite3.IntegrityError):
            raise NameProblem(
                f"Someone in this class is already called {name}: add an initial, like {name} K."
            ) from None
        raise
    return Person(person_id, token, name)


def by_token(store: Registry, token: str | None) -> Person | None:
    """The person holding `token`, or None (unknown token, or a registry older than people)."""
    if not token or store.outdated:
        return None
    with store.reading() as db:
        row = db.execute("SELECT id, token, name FROM people WHERE token = ?", (str(token),)).fetchone()
    return None if row is None else Person(int(row["id"]), row["token"], row["name"])


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
