"""Issue 20's five probes, as a curious (or mischievous) student would try them, with figures before and after.

    python scripts/trust_probes.py                      # this checkout
    python scripts/trust_probes.py --root /tmp/before   # another checkout (e.g. `git worktree add /tmp/before <commit>`)

Prints figures, asserts nothing (tests/test_trust_server.py asserts the same things). Everything is loopback only
and bounded: each server is `streamlit run app.py` on 127.0.0.1 from `--root` with VITDEMO_HOME in a temporary
folder, stopped at the end of its probe; every loop has a deadline. Students are websocket clients speaking
Streamlit's own protocol (`ws_student.Student`, which the tests use too), no browser.

1. race:    a command-line training while a watcher gives up on silent runs every 0.1 s (stale after 0.5 s):
            does the finished run keep its model? (seconds until it is lost, or "kept")
2. canvas:  one canvas message carrying an 8000x8000 PNG, then stroke lists of 0.8 and 12.5 MB, then 30 strokes
            of about 0.55 MB each in one session's drawing history, then five such sessions at once (10 each), then
            forty sessions holding one each: the server's peak and kept memory, the answer
            time, and a classmate's answer time while it happens.
3. guesses: one session, then four, guessing the teacher password as fast as the server answers; then a 120-word
            list that ends with the right password: guesses per second and whether it unlocks.
4. names:   ten sessions from one computer each give a name and press Start training three times: names made
            and runs queued (limit 2 per person); look-alike and reserved names accepted.
5. no password: the same drawing submitted to the class set from three tabs (rows stored), and (without a network
            server: Streamlit's AppTest with server.address 0.0.0.0) whether a student is the teacher.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import websockets
from ws_student import (
    ROOT,
    Reply,
    Server,
    Student,
    big_png_state,
    canvas,
    choice,
    count_rows,
    digit_state,
    long_strokes_state,
    memory_mb,
    serve,
    text,
    trigger,
)

PASSWORD = "ninja"  # a common word: the 120th of the guessing probe's list

# -- 1. the race ------------------------------------------------------------------------------------------
RACE_CODE = """
import subprocess, sys, time
from pathlib import Path
try:  # where orphan verdicts live now; a checkout from before the executor seam kept them in the queue
    from vitdemo.runs.claims import fail_orphans
except ImportError:
    from vitdemo.runs.queue import fail_orphans
from vitdemo.runs.store import Registry
home = sys.argv[1]
reg = Registry(home)
cmd = [sys.executable, "-m", "vitdemo", "train", "--home", home, "--model", "cnn", "--width", "4", "--depth", "1",
       "--epochs", "1", "--batch-size", "256", "--train-subset", "4000", "--val-size", "1000", "--device", "cpu"]
t0 = time.monotonic()
child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while child.poll() is None and time.monotonic() - t0 < 240:
    fail_orphans(reg, stale_s=0.5)
    time.sleep(0.1)
child.wait(timeout=60)
run = reg.list_runs()[-1]
kept = bool(run.checkpoint) and Path(run.checkpoint).is_file()
print(run.status, int(kept), round(time.monotonic() - t0, 1))
"""


def probe_race(root: Path, tries: int) -> str:
    """A command-line run trained while a watcher marks runs silent for 0.5 s as failed, `tries` times."""
    results = []
    for _ in range(tries):
        with tempfile.TemporaryDirectory(prefix="vitdemo-race-") as home:
            out = subprocess.run(
                [sys.executable, "-c", RACE_CODE, home], cwd=root, capture_output=True, text=True, timeout=400
            )
        if out.returncode != 0:
            return f"the probe failed: {out.stderr.strip().splitlines()[-1:]}"
        status, kept, seconds = out.stdout.split()
        results.append((status, kept == "1", float(seconds)))
        if not results[-1][1]:
            break
    lost = [r for r in results if not r[1]]
    if lost:
        return (
            f"model lost after {sum(r[2] for r in results):.1f} s ({len(results)} run(s)); the run ended {lost[0][0]}"
        )
    return f"{len(results)} run(s), {sum(r[2] for r in results):.0f} s: every model kept (ended {results[-1][0]})"


# -- 2. the canvas ------------------------------------------------------------------------------------------
async def _classmate(url: str, stop: asyncio.Event, latencies: list[float]) -> None:
    """A student drawing a 7 every second while the attack goes on."""
    async with Student(url) as me:
        ids = (await me.run()).canvas_id()
        drawing = digit_state("7")
        while not stop.is_set():
            reply = await me.run([canvas(ids, drawing)])
            latencies.append(reply.seconds)
            ids = (await me.run([trigger(reply.id("clear_canvas")), canvas(ids, drawing)])).canvas_id()
            await asyncio.sleep(1.0)


async def _send_canvas(url: str, states: list[str]) -> tuple[float, str]:
    """One session sends each canvas state in turn; (seconds for the whole, what the last reply said or how the
    connection ended)."""
    t0, said = time.monotonic(), ""
    try:
        async with Student(url) as bad:
            reply = await bad.run()
            for state in states:
                reply = await bad.run([canvas(reply.canvas_id(), state)])
            said = reply.errors[0] if reply.errors else f"{reply.status}, no error shown"
    except (websockets.ConnectionClosed, TimeoutError) as exc:
        said = f"connection closed ({type(exc).__name__})"
    return time.monotonic() - t0, said


async def _sample_peak(pid: int, stop: asyncio.Event, peak: list[float]) -> None:
    """The largest resident memory of `pid` seen every 20 ms until `stop`."""
    while not stop.is_set():
        peak[0] = max(peak[0], memory_mb(pid)[0])
        await asyncio.sleep(0.02)


async def _attack(server: Server, label: str, states: list[str]) -> str:
    base = memory_mb(server.pid)[0]
    stop, peak = asyncio.Event(), [base]
    sampler = asyncio.create_task(_sample_peak(server.pid, stop, peak))
    seconds, said = await _send_canvas(server.url, states)
    await asyncio.sleep(1.0)
    stop.set()
    await sampler
    size = sum(len(s) for s in states) / 1e6
    return (
        f"  {label:<27} {size:5.1f} MB sent in {seconds:4.1f} s; server memory {base:.0f} MB -> peak {peak[0]:.0f} MB "
        f"(+{peak[0] - base:.0f}), {memory_mb(server.pid)[0]:.0f} MB after; reply: {said[:100]}"
    )


def _many_states(sessions: int, steps: int) -> list[list[str]]:
    """`steps` different 0.55 MB stroke lists for each of `sessions` sessions."""
    return [[long_strokes_state(0.55, seed=100 * n + i) for i in range(steps)] for n in range(sessions)]


async def _attack_many(server: Server, states: list[list[str]]) -> str:
    """One session per list of `states`, all at once, each sending its states in turn (its drawing's history)."""
    base = memory_mb(server.pid)[0]
    stop, peak = asyncio.Event(), [base]
    sampler = asyncio.create_task(_sample_peak(server.pid, stop, peak))
    t0 = time.monotonic()
    said = await asyncio.gather(*(_send_canvas(server.url, s) for s in states))
    refused = sum("as many large drawings" in reply for _, reply in said)
    seconds = time.monotonic() - t0
    await asyncio.sleep(1.0)
    stop.set()
    await sampler
    size = sum(len(x) for s in states for x in s) / 1e6
    label = f"{len(states)} sessions x {len(states[0])} steps"
    return (
        f"  {label:<27} {size:5.1f} MB sent in {seconds:4.1f} s; server memory {base:.0f} MB -> peak {peak[0]:.0f} MB "
        f"(+{peak[0] - base:.0f}), {memory_mb(server.pid)[0]:.0f} MB after; {refused} told the server is full"
    )


async def _canvas_attacks(server: Server) -> list[str]:
    async with Student(server.url) as warm:  # the first drawing loads and warms the models: not the attack's
        await warm.run([canvas((await warm.run()).canvas_id(), digit_state("1"))])
    # Every message is made before the classmate starts: making them blocks this loop, which would count in the
    # classmate's answer times.
    single = {
        "one 8000x8000 PNG": [big_png_state(8000)],
        "a 0.8 MB stroke list": [long_strokes_state(0.8)],
        "a 12.5 MB stroke list": [long_strokes_state(12.5)],
        "30 steps of 0.55 MB strokes": [long_strokes_state(0.55, seed=i) for i in range(30)],
    }
    many = [_many_states(5, 10), _many_states(40, 1)]
    stop, latencies = asyncio.Event(), []
    classmate = asyncio.create_task(_classmate(server.url, stop, latencies))
    await asyncio.sleep(3.0)
    lines = [await _attack(server, label, states) for label, states in single.items()]
    lines += [await _attack_many(server, states) for states in many]
    stop.set()
    await asyncio.wait_for(classmate, 120)
    lat = sorted(latencies)
    median, worst = (lat[len(lat) // 2], lat[-1]) if lat else (float("nan"), float("nan"))
    lines.append(f"  a classmate drawing meanwhile: {len(lat)} answers, median {median:.2f} s, worst {worst:.2f} s")
    return lines


def probe_canvas(root: Path) -> list[str]:
    with serve(root) as server:
        return asyncio.run(_canvas_attacks(server))


# -- 3. guessing the teacher password ---------------------------------------------------------------------------
async def guess(url: str, words: Sequence[str], deadline_s: float) -> tuple[int, int, float, bool]:
    """One session tries `words` in turn (as fast as the server answers, until `deadline_s`): (guesses sent,
    guesses the server compared: it said "not the teacher ...", not "wait", seconds, unlocked)."""
    t0, sent, checked = time.monotonic(), 0, 0
    async with Student(url) as me:
        reply = await me.run()
        for word in words:
            if time.monotonic() - t0 > deadline_s:
                break
            reply = await me.run([text(reply.id("teacher_pw"), word), trigger(reply.id("teacher_unlock"))])
            sent += 1
            checked += any("not the teacher" in t for t in reply.alerts) or not reply.alerts
            if reply.has("teacher_lock"):
                return sent, checked, time.monotonic() - t0, True
    return sent, checked, time.monotonic() - t0, False


def wordlist(n: int, last: str = PASSWORD) -> list[str]:
    return [f"word{i:03d}" for i in range(n - 1)] + [last]


async def _guessing(server: Server) -> list[str]:
    async with Student(server.url) as warm:  # the first page loads the models: not a guess's time
        await warm.run()
    one = await guess(server.url, wordlist(21, "wrong"), 20.0)
    four = await asyncio.gather(*(guess(server.url, wordlist(21, "wrong"), 20.0) for _ in range(4)))
    four_s = max(max(g[2] for g in four), 1e-9)
    sent, checked, seconds, unlocked = await guess(server.url, wordlist(120), 60.0)
    return [
        f"  one session: {one[0]} guesses sent in {one[2]:.1f} s ({one[0] / max(one[2], 1e-9):.0f}/s), {one[1]} compared;"
        f" four sessions at once: {sum(g[0] for g in four)} sent in {four_s:.1f} s"
        f" ({sum(g[0] for g in four) / four_s:.0f}/s), {sum(g[1] for g in four)} compared",
        f"  120-word list ending with the password (a fresh session): {sent} sent in {seconds:.1f} s, {checked} compared,"
        f" {'UNLOCKED' if unlocked else 'not unlocked'}",
    ]


def probe_guesses(root: Path) -> list[str]:
    with serve(root, {"VITDEMO_TEACHER_PASSWORD": PASSWORD}) as server:
        return asyncio.run(_guessing(server))


# -- 4. names ------------------------------------------------------------------------------------------------
NO_LIMITS_BUT_RUNS = json.dumps({"max_active_runs": 2, "max_params": 0, "max_epochs": 0, "max_minutes": 0})


async def name_and_train(url: str, name: str, presses: int) -> str:
    """A new session on the Train page gives `name` and presses Start training `presses` times; what it was told."""
    async with Student(url) as me:
        reply = await me.run(page="train")
        if not reply.has("who_save"):
            return "no name asked"
        reply = await me.run([text(reply.id("who_name"), name), trigger(reply.id("who_save"))], page="train")
        for _ in range(presses):
            if not reply.has("start_training"):
                break
            reply = await me.run([trigger(reply.id("start_training"))], page="train")
        return reply.text


async def save_names(url: str, names: Sequence[str]) -> list[str]:
    """One session saves each name in turn; what it was told after each."""
    told = []
    async with Student(url) as me:
        reply = await me.run(page="train")
        for name in names:
            if not reply.has("who_save"):
                break
            reply = await me.run([text(reply.id("who_name"), name), trigger(reply.id("who_save"))], page="train")
            told.append(reply.text)
    return told


async def _names(server: Server) -> list[str]:
    db = server.home / "registry.sqlite"
    t0 = time.monotonic()
    await asyncio.gather(*(name_and_train(server.url, f"Student {i}", 3) for i in range(10)))
    seconds = time.monotonic() - t0
    people = count_rows(db, "SELECT COUNT(*) FROM people")
    runs = count_rows(db, "SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')")
    tricky = ["Ana", "\u0410na", "Teacher", "shipped with the app", "command line"]  # "Аna": a Cyrillic А
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:  # now any number of names per device
        no_cap = json.dumps({**json.loads(NO_LIMITS_BUT_RUNS), "max_names_per_device": 0})
        conn.execute("UPDATE settings SET value = ? WHERE key = 'limits'", (no_cap,))
    before = count_rows(db, "SELECT COUNT(*) FROM people")
    for name in tricky:
        await save_names(server.url, [name])
    accepted = count_rows(db, "SELECT COUNT(*) FROM people") - before
    await asyncio.gather(*(name_and_train(server.url, f"Device {i}", 3) for i in range(10)))
    total = count_rows(db, "SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running')")
    return [
        f"  ten sessions from one computer, {seconds:.1f} s: {people} names, {runs} runs queued (2 per person allowed)",
        f"  'Ana', then 'Аna' (Cyrillic А), 'Teacher', 'shipped with the app', 'command line': "
        f"{accepted - 1} of the 4 look-alike or reserved names accepted",
        f"  then ten more names as if from ten devices (no cap on names per device): {total} runs queued in all "
        "(class-wide cap: 20)",
    ]


def probe_names(root: Path) -> list[str]:
    settings = {"paused": "1", "limits": NO_LIMITS_BUT_RUNS}
    with serve(root, {"VITDEMO_TEACHER_PASSWORD": PASSWORD}, settings) as server:
        return asyncio.run(_names(server))


# -- 5. no password ---------------------------------------------------------------------------------------------
async def submit_drawing(url: str, digit: str = "7") -> Reply:
    """A new session draws `digit` on Draw, picks its label and presses Submit to the class set."""
    async with Student(url) as me:
        reply = await me.run()
        drawing = canvas(reply.canvas_id(), digit_state(digit))
        reply = await me.run([drawing])
        label = choice(reply.id("cs_label_draw"), digit)
        reply = await me.run([drawing, label])
        return await me.run([drawing, label, trigger(reply.id("cs_submit_draw"))])


STUDENT_IS_TEACHER = """
import sys
from streamlit import config
from streamlit.testing.v1 import AppTest
config.set_option("server.address", "0.0.0.0")
at = AppTest.from_string("from vitdemo.ui import people\\nimport streamlit as st\\nst.write(people.is_teacher())")
at.run(timeout=60)
print(at.markdown[0].value)
"""


def probe_no_password(root: Path) -> list[str]:
    env = {**os.environ, "VITDEMO_TEACHER_PASSWORD": ""}
    with tempfile.TemporaryDirectory() as home:
        env["VITDEMO_HOME"] = home
        out = subprocess.run(
            [sys.executable, "-c", STUDENT_IS_TEACHER], cwd=root, env=env, capture_output=True, text=True, timeout=120
        )
    teacher = out.stdout.strip().splitlines()[-1:] or [out.stderr.strip()[-200:]]
    with serve(root) as server:
        for _ in range(3):  # the button is disabled once pressed (Streamlit enforces that): three tabs
            asyncio.run(submit_drawing(server.url))
        rows = count_rows(server.home / "classset" / "classset.sqlite", "SELECT COUNT(*) FROM submissions")
    return [
        f"  a student on a server listening on 0.0.0.0 with no password is the teacher: {teacher[0]}",
        f"  the same drawing submitted to the class set from three tabs: {rows} row(s) stored",
    ]


PROBES = {
    "race": lambda root, tries: ["  " + probe_race(root, tries)],
    "canvas": lambda root, _: probe_canvas(root),
    "guesses": lambda root, _: probe_guesses(root),
    "names": lambda root, _: probe_names(root),
    "nopassword": lambda root, _: probe_no_password(root),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app is probed")
    parser.add_argument("--only", default=",".join(PROBES), help="comma-separated: " + ", ".join(PROBES))
    parser.add_argument("--race-tries", type=int, default=3, help="command-line runs in the race probe")
    args = parser.parse_args()
    root = args.root.resolve()
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout
    print(f"probing {root} ({rev.strip()}), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for name in args.only.split(","):
        t0 = time.monotonic()
        print(f"{name}:", flush=True)
        lines = PROBES[name](root, args.race_tries)
        print("\n".join(lines) + f"\n  ({time.monotonic() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
