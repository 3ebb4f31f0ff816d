"""The teacher's role on a class server: what unlocks it, and how fast wrong guesses may come. No Streamlit.

Locked by default, the way Jupyter protects a notebook server: a configured password unlocks the role; with none,
a server that other devices can reach makes a one-time code when it starts and prints it (with a teacher link)
in the terminal that started it, and only a server listening on this computer alone (127.0.0.1) makes everyone
the teacher, as for one person at home. The Streamlit side (`vitdemo.ui.people`) passes in the password and
Streamlit's `server.address`.

Guesses: a password typed in a browser is a guess. Every wrong one is counted (`GuessGuard`), per browser session
and for the whole server, and slows the next ones down: a session waits after its first few, the server after
the class's first few, each wait twice the one before, and past LOCKOUT_AFTER wrong guesses in WINDOW_S nobody
may try for LOCKOUT_S (a teacher locked out too restarts the app: a new code, a new count). A guess made while a wait runs is not even compared. The counts are shown to the teacher;
a guess's text is never stored or logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread from a terminal
CODE_GROUPS, CODE_GROUP_LEN = 4, 4  # ABCD-EFGH-JKLM-NPQR: 80 random bits
MAX_SECRET_CHARS = 200  # a longer "password" is not compared: it is refused as a wrong guess
SESSION_FREE = 3  # wrong guesses a session makes before it waits (a teacher's typos)
SERVER_FREE = 10  # wrong guesses the whole server takes in WINDOW_S before every session waits
MAX_WAIT_S = 60.0  # the longest of the growing waits (2, 4, 8 ... seconds)
WINDOW_S = 3600.0  # the server counts the wrong guesses of the last hour
LOCKOUT_AFTER = 20  # this many wrong guesses in WINDOW_S: nobody may try for LOCKOUT_S, and after it, each wrong
LOCKOUT_S = 900.0  # guess while 20 are still in the window starts another (about 4 an hour, 120 in a day)
MAX_SESSIONS = 10_000  # sessions remembered at once (the oldest are forgotten first)

Source = Literal["password", "code", "open"]


# -- what unlocks the role --------------------------------------------------------------------------------------
def listens_locally(address: str | None) -> bool:
    """True when a server with Streamlit's `server.address` set to `address` is reachable from this computer only:
    a loopback address or "localhost". Streamlit's default (unset) listens on every interface."""
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return address.strip().lower() == "localhost"


@dataclass(frozen=True)
class TeacherAccess:
    """What unlocks the teacher's role on this server."""

    secret: str | None  # the password or the one-time code; None: everyone is the teacher
    source: Source  # "password" (configured), "code" (made at start-up) or "open" (a server only this computer reaches)

    @property
    def open(self) -> bool:
        return self.secret is None


def decide(password: str | None, address: str | None, make_code: Callable[[], str]) -> TeacherAccess:
    """The configured password; else, on a server other devices can reach, a one-time code (`make_code`: the
    process's, made once); else (127.0.0.1) nothing: everyone is the teacher."""
    if password:
        return TeacherAccess(password, "password")
    if listens_locally(address):
        return TeacherAccess(None, "open")
    return TeacherAccess(make_code(), "code")


def new_code() -> str:
    """A fresh teacher code, e.g. 'K7QM-3XNA-PW2D-HT9C' (80 random bits)."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUPS * CODE_GROUP_LEN))
    return "-".join(chars[i : i + CODE_GROUP_LEN] for i in range(0, len(chars), CODE_GROUP_LEN))


def _canonical_code(text: str) -> str:
    """A typed code as it is compared: letters and digits only, upper case ('k7qm 3xna...' is 'K7QM3XNA...')."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def matches(given: str, access: TeacherAccess) -> bool:
    """Whether `given` unlocks the role, compared in constant time; a code ignores case, spaces and dashes."""
    if access.secret is None or not isinstance(given, str) or len(given) > MAX_SECRET_CHARS:
        return False
    if access.source == "code":
        given, expected = _canonical_code(given), _canonical_code(access.secret)
    else:
        expected = access.secret
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def announcement(code: str, link: str) -> str:
    """What the terminal that started the server shows about a one-time code."""
    return (
        "\n  vitdemo: the teacher role is locked (this server can be reached from the network and no teacher\n"
        "  password is set). Unlock it in the sidebar with this code, or open the teacher link once:\n"
        f"    Teacher code: {code}\n"
        f"    Teacher link: {link}\n"
        "  Keep them off the projector. A new code is made each time the app starts.\n"
    )


# -- wrong guesses ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """The answer to one guess: unlocked or not, and the sentence for the page when not."""

    unlocked: bool
    message: str = ""
    checked: bool = True  # False: a wait was running, the guess was not compared


@dataclass(frozen=True)
class GuessStats:
    """What the teacher sees about the guesses made on this server."""

    wrong_total: int  # since the server started
    wrong_recent: int  # in the last WINDOW_S (an hour)
    last_wrong_at: float | None
    locked_until: float | None  # nobody may try until then (a lockout), None when nobody waits


def wait_after(wrong: int, free: int) -> float:
    """Seconds to wait after `wrong` wrong guesses, the first `free` of them free: 2, 4, 8 ... up to MAX_WAIT_S."""
    return 0.0 if wrong < free else min(2.0 ** (wrong - free + 1), MAX_WAIT_S)


def _seconds(s: float) -> str:
    return f"{s / 60:.0f} minutes" if s >= 90 else f"{max(1, round(s))} seconds"


class GuessGuard:
    """The wrong guesses of one server process, per session and in all (thread-safe: every Streamlit session
    runs in a thread of the same process). `clock` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, log: Callable[[str], None] | None = None) -> None:
        self.clock = clock
        self.log = log if log is not None else (lambda line: print(line, file=sys.stderr, flush=True))
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[int, float]] = {}  # session -> (wrong guesses, time of the last)
        self._recent: deque[float] = deque()  # times of the server's wrong guesses in WINDOW_S
        self._total = 0
        self._last_wrong: float | None = None
        self._locked_until = 0.0
        self._wall_offset = time.time() - clock()  # to show the teacher clock times

    def attempt(self, session: str, given: str, access: TeacherAccess) -> Verdict:
        """Check one guess from `session`, unless a wait runs for it or the server; count it when wrong."""
        with self._lock:
            now = self.clock()
            self._forget(now)
            wait = self._wait(session, now)
            if wait is not None:
                return Verdict(False, wait, checked=False)
            if matches(given, access):
                self._sessions.pop(session, None)
                return Verdict(True)
            return Verdict(False, self._count_wrong(session, now, access.source))

    def _wait(self, session: str, now: float) -> str | None:
        if now < self._locked_until:
            return (
                "Too many wrong teacher passwords were tried on this server: unlocking is paused for "
                f"{_seconds(self._locked_until - now)} (restarting the app ends the pause)."
            )
        wrong, last = self._sessions.get(session, (0, 0.0))
        until = max(last + wait_after(wrong, SESSION_FREE), self._server_until())
        if now < until:
            return f"Wait {_seconds(until - now)} before trying again: wrong guesses slow down."
        return None

    def _server_until(self) -> float:
        if not self._recent:
            return 0.0
        return self._recent[-1] + wait_after(len(self._recent), SERVER_FREE)

    def _count_wrong(self, session: str, now: float, source: Source) -> str:
        wrong = self._sessions.get(session, (0, 0.0))[0] + 1
        self._sessions[session] = (wrong, now)
        if len(self._sessions) > MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        self._recent.append(now)
        self._total += 1
        self._last_wrong = now
        if len(self._recent) >= LOCKOUT_AFTER:
            self._locked_until = now + LOCKOUT_S
        self.log(f"vitdemo: a wrong teacher {source} was tried ({len(self._recent)} in the last hour)")
        what = "code" if source == "code" else "password"
        wait = max(wait_after(wrong, SESSION_FREE), self._server_until() - now)
        later = f" Wait {_seconds(wait)} before the next try." if wait > 0 else ""
        return f"That is not the teacher {what}.{later}"

    def _forget(self, now: float) -> None:
        while self._recent and now - self._recent[0] > WINDOW_S:
            self._recent.popleft()
        for session in [s for s, (_, last) in self._sessions.items() if now - last > WINDOW_S]:
            del self._sessions[session]

    def stats(self) -> GuessStats:
        with self._lock:
            now = self.clock()
            self._forget(now)
            last = self._last_wrong + self._wall_offset if self._last_wrong is not None else None
            until = max(self._locked_until, self._server_until())
            return GuessStats(self._total, len(self._recent), last, until + self._wall_offset if until > now else None)
