"""A class on one server, measured: N browser sessions drawing digits while a training run goes on.

    python scripts/load_bench.py --sessions 5          # then --sessions 10, 20 if the machine allows

Prints figures, asserts nothing. Starts `streamlit run app.py` on a loopback port with VITDEMO_HOME in a temporary
folder and opens every session in ONE headless Chromium (a context each: separate Streamlit sessions). Phases:

1. alone:   one 1-epoch CNN run (the "fast demo" CNN on 10,000 images) through the real worker, no browser open;
2. idle:    N sessions on the Train page doing nothing for --idle-s seconds: the server's CPU seconds per minute
            per idle session (its live fragment polls the registry), from /proc/<server pid>/stat;
3. drawing: N sessions on the Draw page, each drawing a digit with the mouse (strokes on canvas.upper-canvas)
            in a loop, as a student does: wait for the blank canvas and the prompt after Clear, pause --reaction-ms,
            draw, wait for both answers, press Clear. First with nothing training, then while the same CNN run
            trains (after one warm-up drawing per session): time from the last mouse up to both predictions on the page (p50, p95); errors (no prediction
            within 30 s, or Clear that blanks nothing within 30 s), counted by what the page showed then (ink on
            the canvas or none, script runs since the stroke, an exception); the server's CPU per script run (runs
            counted off each page's websocket, those cut short by a newer one included) and its share of a core;
            Chromium's; the run's training time against phase 1.

Loops are bounded (--max-s per phase); the server, its worker and the browser are always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # vitdemo, and tests/browser.py

import browser  # noqa: E402
from google.protobuf.message import DecodeError  # noqa: E402
from playwright.async_api import TimeoutError as PlaywrightTimeout  # noqa: E402
from playwright.async_api import async_playwright  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402

from vitdemo import paths  # noqa: E402
from vitdemo.config import CNNConfig, TrainConfig  # noqa: E402
from vitdemo.runs import local, queue  # noqa: E402
from vitdemo.runs.people import CLI  # noqa: E402
from vitdemo.runs.store import Registry  # noqa: E402

RUN = TrainConfig(  # the "1-epoch CNN run": the fast demo preset's CNN for one epoch
    model=CNNConfig(width=16, depth=2, dropout=0.1), epochs=1, batch_size=64, lr=2e-3, schedule="onecycle",
    warmup_epochs=1 / 3, augment=0.0, train_subset=10_000, device="cpu", name="load-bench-cnn",
)  # fmt: skip
PREDICTION_TIMEOUT_MS = 30_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the server process -------------------------------------------------------------------------------------
def server_pid(port: int) -> int:
    """The `streamlit run` process listening on `port` (found by its command line)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(cmd) and str(port).encode() in cmd:
            return int(proc.name)
    raise RuntimeError(f"no streamlit process on port {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (not its children: the worker runs in its own session)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15 of stat)


def browser_cpu_seconds() -> float:
    """CPU time of every Chromium process on the machine (the headless browser that plays the students): on one
    machine it competes with the server and the training for the same cores, which a real class does not."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"chromium" in (proc / "cmdline").read_bytes().split(b"\0")[0]:
                    total += cpu_seconds(int(proc.name))
            except (OSError, IndexError):
                continue
    return total


def default_data_dir() -> str | None:
    """$VITDEMO_DATA_DIR, else the shared data folder beside the checkout when there is one."""
    shared = browser.REPO_ROOT.parent / "shared" / "data"
    return os.environ.get(paths.ENV_DATA_DIR) or (str(shared) if shared.is_dir() else None)


@contextlib.contextmanager
def bench_server(server_env: dict[str, str]) -> Iterator[tuple[str, int, Registry, str | None]]:
    """`streamlit run app.py` with VITDEMO_HOME in a temporary folder (plus `server_env`): yields its URL, pid,
    registry and data folder. The server is always stopped, and its worker let go before the folder goes."""
    with tempfile.TemporaryDirectory(prefix="vitdemo-bench-") as home:
        env = {paths.ENV_HOME: home, local.ENV_IDLE_EXIT: "5", **server_env}
        os.environ[local.ENV_IDLE_EXIT] = "5"  # the workers this script starts exit soon after the last run
        data_dir = default_data_dir()
        if data_dir:
            env[paths.ENV_DATA_DIR] = data_dir
        reg = Registry(home)
        with browser.serve_app(env, log_path=Path(home) / "streamlit.log") as url:
            yield url, server_pid(int(url.rsplit(":", 1)[1])), reg, data_dir
        deadline = time.monotonic() + 30
        while local.worker_running(reg, "cpu") and time.monotonic() < deadline:
            time.sleep(0.5)  # the worker exits 5 s after its last run, before its folder goes


# -- one training run through the worker ---------------------------------------------------------------------
def start_run(reg: Registry, data_dir: str | None, config: TrainConfig = RUN) -> int:
    return queue.submit(reg, config, CLI)  # wakes the local executor: a worker for the CPU


def wait_run(reg: Registry, run_id: int, timeout_s: float) -> float | None:
    """The run's training time (s) once done; None if it failed or took longer than `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = reg.get_run(run_id)
        if run.status == "done":
            return run.train_time_s
        if run.status in ("failed", "cancelled"):
            print(f"  run #{run_id} {run.status}: {run.error}")
            return None
        time.sleep(0.5)
    queue.request_cancel(reg, run_id, CLI)
    return None


# -- sessions ---------------------------------------------------------------------------------------------------
PROMPT = re.compile(r"^Draw a digit on the black canvas")
ANSWERS = [re.compile(r"^ViT predicts"), re.compile(r"^CNN predicts")]
ANY_ANSWER = re.compile(r"^(ViT|CNN) predicts")
FRESH_CANVAS = "canvas.upper-canvas:not([data-bench-drawn])"  # one this script has not drawn on yet
PAGE_STATE_JS = (  # what a press at (x, y) lands on, the script's state, the main area's scroll, canvases refusing strokes
    "([x, y]) => [(" + browser.HIT_JS + ")([x, y]), "
    "document.querySelector('[data-testid=\"stApp\"]').dataset.testScriptState, "
    "Math.round(document.querySelector('[data-testid=\"stMain\"]').scrollTop), "
    "[...document.querySelectorAll('[data-testid=\"stBidiComponentIsolated\"]')]"
    ".filter((h) => h.shadowRoot && h.shadowRoot.querySelector('.dc-root[data-vd-retired=\"1\"]')).length]"
)


class DrawingLost(Exception):
    """A drawing that got no prediction, with its kind: what the page showed when the wait ran out."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind} ({detail})" if detail else kind)
        self.kind = kind


@dataclass
class Session:
    """One student: a page, and the script runs the server finished for it (read off its websocket)."""

    page: Any
    index: int
    runs: Counter[str] = field(default_factory=Counter)  # ScriptFinishedStatus name -> count
    drawn: bool = False  # the canvas holds a drawing (Clear comes first)

    def watch(self) -> None:
        def on_frame(payload: str | bytes) -> None:
            if isinstance(payload, bytes) and len(payload) <= 160:  # script_finished: 44 bytes, 78 for a fragment
                try:
                    msg = ForwardMsg.FromString(payload)
                except DecodeError:
                    return
                if msg.WhichOneof("type") == "script_finished":
                    self.runs[ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)] += 1

        self.page.on("websocket", lambda ws: ws.on("framereceived", on_frame))

    def finished(self) -> int:
        return sum(self.runs.values())


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds from the last mouse up to both predictions
    errors: Counter[str] = field(default_factory=Counter)  # DrawingLost kind -> count
    t0: float = field(default_factory=time.monotonic)


async def blank_canvas(page: Any) -> Any:
    """The canvas a student would draw on next: one not drawn on yet, its box steady for 100 ms."""
    fresh = page.locator(FRESH_CANVAS).first
    try:
        await fresh.wait_for(state="visible", timeout=PREDICTION_TIMEOUT_MS)
    except PlaywrightTimeout as exc:
        raise DrawingLost("no blank canvas") from exc
    last, deadline = None, time.monotonic() + PREDICTION_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        box = await fresh.bounding_box()
        if box is not None and box == last and box["width"] > 50:
            return await fresh.element_handle()
        last = box
        await page.wait_for_timeout(100)
    raise DrawingLost("canvas never steady")


async def stroke(page: Any, box: dict[str, float], points: list[tuple[float, float]]) -> None:
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    await page.mouse.move(*xy[0])
    await page.mouse.down()
    for x, y in xy[1:]:
        await page.mouse.move(x, y, steps=8)
    await page.mouse.up()


async def why_no_answer(page: Any, canvas: Any, runs: int, at_press: str) -> DrawingLost:
    """What the page shows once a drawing has waited PREDICTION_TIMEOUT_MS for its predictions (`at_press`: what
    the page was like as the first stroke began)."""
    ink = await canvas.evaluate(browser.INK_JS)
    box = await canvas.bounding_box()
    state = await page.locator('[data-testid="stApp"]').first.get_attribute("data-test-script-state")
    detail = f"ink {ink} px, {runs} script runs since, script {state}; {at_press}; canvas now at {_box(box)}"
    alerts = page.locator('[data-testid="stAlert"]')
    if await alerts.count():
        detail += f", says {' '.join((await alerts.first.inner_text()).split())[:60]!r}"
    if await page.locator('[data-testid="stException"]').count():
        return DrawingLost("an exception on the page", detail)
    if ink == -1:
        return DrawingLost("canvas replaced under the drawing", detail)
    if ink == 0:
        return DrawingLost("stroke not on the canvas", detail)
    if runs == 0:
        return DrawingLost("drawn, no script run finished", detail)
    return DrawingLost("drawn, runs finished but no answer", detail)


async def draw_and_wait(session: Session, digit: str, reaction_ms: float) -> float:
    """Draw `digit` on the blank canvas like a student (a moment to see it, then the strokes); seconds from the
    last mouse up to both predictions."""
    page = session.page
    canvas = await blank_canvas(page)
    await page.wait_for_timeout(reaction_ms)
    await canvas.evaluate("el => { el.dataset.benchDrawn = '1'; }")
    box = await canvas.bounding_box()
    if box is None:
        raise DrawingLost("canvas replaced before the stroke")
    strokes = browser.DIGIT_STROKES[digit]
    first = (box["x"] + strokes[0][0][0] * box["width"], box["y"] + strokes[0][0][1] * box["height"])
    hit, state, scrolled, refusing = await page.evaluate(PAGE_STATE_JS, list(first))
    at_press = (f"at the press: canvas at {_box(box)}, the press lands on {hit}, script {state}, scrolled "
                f"{scrolled}, {refusing} canvases refusing strokes")  # fmt: skip
    for points in strokes:
        await stroke(page, box, points)
    t0, runs = time.perf_counter(), session.finished()
    try:
        for answer in ANSWERS:
            left_ms = PREDICTION_TIMEOUT_MS - (time.perf_counter() - t0) * 1000
            await page.get_by_text(answer).first.wait_for(timeout=max(left_ms, 1))
    except PlaywrightTimeout:
        raise await why_no_answer(page, canvas, session.finished() - runs, at_press) from None
    return time.perf_counter() - t0


def _box(box: dict[str, float] | None) -> str:
    return "nowhere" if box is None else f"({box['x']:.0f}, {box['y']:.0f}) {box['width']:.0f}x{box['height']:.0f}"


async def clear(page: Any) -> None:
    """Press Clear and wait for its run: the prompt back and the last predictions gone."""
    try:
        await page.get_by_role("button", name="Clear").click(timeout=PREDICTION_TIMEOUT_MS)
        await page.get_by_text(PROMPT).first.wait_for(timeout=PREDICTION_TIMEOUT_MS)
        await page.get_by_text(ANY_ANSWER).first.wait_for(state="detached", timeout=PREDICTION_TIMEOUT_MS)
    except PlaywrightTimeout as exc:
        raise DrawingLost("Clear did not blank the page") from exc


async def draw_loop(session: Session, stop: asyncio.Event, tally: Tally, reaction_ms: float) -> None:
    """Clear, draw a digit, wait for both predictions; again until `stop` is set. A drawing that gets no
    answer is counted by kind, and the page is loaded again (a fresh session with a blank canvas)."""
    digits = sorted(browser.DIGIT_STROKES)
    n = session.index
    while not stop.is_set():
        try:
            if session.drawn:
                await clear(session.page)
                session.drawn = False
            tally.latencies.append(await draw_and_wait(session, digits[n % len(digits)], reaction_ms))
            session.drawn = True
        except Exception as exc:  # a lost drawing, a timeout, a page that went away: count it and go on
            kind = exc.kind if isinstance(exc, DrawingLost) else type(exc).__name__
            tally.errors[kind] += 1
            print(f"  {time.monotonic() - tally.t0:5.1f} s, session {session.index}, drawing {n - session.index + 1}: "
                  f"{str(exc).splitlines()[0][:400]}")  # fmt: skip
            session.drawn = False
            with contextlib.suppress(Exception):
                await session.page.reload(timeout=PREDICTION_TIMEOUT_MS * 2)
        n += 1


async def open_sessions(chromium: Any, url: str, n: int) -> list[Session]:
    sessions = []
    for i in range(n):
        context = await chromium.new_context(viewport=browser.VIEWPORT)
        page = await context.new_page()
        page.set_default_timeout(120_000)
        session = Session(page, i)
        session.watch()
        sessions.append(session)
    await asyncio.gather(*(s.page.goto(url) for s in sessions))
    deadline = time.monotonic() + 120
    while min(s.finished() for s in sessions) == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # every session's first script run is over
    return sessions


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Usage:
    """CPU seconds of the server and of Chromium, wall seconds and script runs finished (by status)."""

    server: float
    chromium: float
    wall: float
    runs: Counter[str]

    @classmethod
    def now(cls, pid: int, sessions: list[Session]) -> Usage:
        return cls(
            cpu_seconds(pid), browser_cpu_seconds(), time.monotonic(), sum((s.runs for s in sessions), Counter())
        )

    def since(self, start: Usage) -> Usage:
        return Usage(self.server - start.server, self.chromium - start.chromium, self.wall - start.wall,
                     self.runs - start.runs)  # fmt: skip


def report(label: str, tally: Tally, used: Usage) -> None:
    if tally.latencies:
        p50, p95 = statistics.median(tally.latencies), pct(tally.latencies, 0.95)
        lat = f"mouse up -> both predictions p50 {p50:.2f} s, p95 {p95:.2f} s over {len(tally.latencies)} drawings"
    else:
        lat = "no drawing finished"
    kinds = ", ".join(f"{k} {v}" for k, v in tally.errors.most_common())
    runs = sum(used.runs.values())
    early = used.runs.get("FINISHED_EARLY_FOR_RERUN", 0)
    per_run = used.server / runs * 1000 if runs else float("nan")
    print(f"{label}: {lat}; errors {sum(tally.errors.values())}{f' ({kinds})' if kinds else ''}")
    print(f"    server CPU {used.server:.1f} s in {used.wall:.0f} s ({used.server / used.wall:.0%} of a core) over "
          f"{runs} script runs ({early} cut short by a newer one) = {per_run:.0f} ms per run; "
          f"Chromium CPU {used.chromium:.1f} s ({used.chromium / used.wall:.0%} of a core)")  # fmt: skip


async def drawing_phase(sessions: list[Session], seconds: float, reaction_ms: float, until: Any = None) -> Tally:
    """All sessions draw for `seconds`, or until `until()` is true (checked every half second)."""
    stop, tally = asyncio.Event(), Tally()
    tasks = [asyncio.create_task(draw_loop(s, stop, tally, reaction_ms)) for s in sessions]
    await asyncio.sleep(0)  # every session begins a drawing, even for 0 seconds
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and until()):
        await asyncio.sleep(0.5)
    stop.set()
    _, late = await asyncio.wait(tasks, timeout=PREDICTION_TIMEOUT_MS / 1000 * 3)
    for task in late:  # a session stuck past every timeout: stop waiting for it
        task.cancel()
    return tally


async def bench(url: str, pid: int, reg: Registry, args: argparse.Namespace, data_dir: str | None) -> None:
    print(f"phase 1: the CNN run alone ({RUN.train_subset:,} images, 1 epoch) ...")
    alone = wait_run(reg, start_run(reg, data_dir), args.max_s)
    print(f"  trained in {alone:.1f} s" if alone else "  the run did not finish")

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=str(browser.CHROMIUM), args=browser.CHROMIUM_ARGS, headless=True
        )
        try:
            print(f"phase 2: {args.sessions} idle sessions on the Train page for {args.idle_s:.0f} s ...")
            sessions = await open_sessions(chromium, url.rstrip("/") + "/train", args.sessions)
            await asyncio.sleep(5)  # the first runs (estimates, probes) are over
            start = Usage.now(pid, sessions)
            await asyncio.sleep(args.idle_s)
            used = Usage.now(pid, sessions).since(start)
            per = used.server / (used.wall / 60) / args.sessions
            print(f"  server CPU {used.server:.2f} s in {used.wall:.0f} s over {sum(used.runs.values())} live "
                  f"refreshes: {per:.2f} CPU s per minute per idle Train session")  # fmt: skip
            for session in sessions:
                await session.page.context.close()

            print(f"phase 3: {args.sessions} sessions drawing on the Draw page ...")
            sessions = await open_sessions(chromium, url, args.sessions)
            start = Usage.now(pid, sessions)
            warm = await drawing_phase(sessions, 0, args.reaction_ms)  # one drawing each, not counted below
            report("  warm-up, one drawing per session", warm, Usage.now(pid, sessions).since(start))
            start = Usage.now(pid, sessions)
            tally = await drawing_phase(sessions, args.draw_s, args.reaction_ms)
            report("  nothing training", tally, Usage.now(pid, sessions).since(start))

            run_id = start_run(reg, data_dir)
            start = Usage.now(pid, sessions)
            tally = await drawing_phase(
                sessions, args.max_s, args.reaction_ms,
                until=lambda: reg.get_run(run_id).status in ("done", "failed", "cancelled"),
            )  # fmt: skip
            report("  while the CNN trains", tally, Usage.now(pid, sessions).since(start))
        finally:
            await chromium.close()
    loaded = wait_run(reg, run_id, args.max_s)
    if alone and loaded:
        print(f"  the run trained in {loaded:.1f} s with {args.sessions} sessions drawing, {alone:.1f} s alone: "
              f"{loaded / alone:.2f}x")  # fmt: skip
    else:
        print("  the run did not finish: no slowdown figure")


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a `timeout` still stops the server and the browser
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--idle-s", type=float, default=30.0, help="length of the idle phase")
    parser.add_argument("--draw-s", type=float, default=20.0, help="drawing with nothing training")
    parser.add_argument("--max-s", type=float, default=300.0, help="the longest any phase may take")
    parser.add_argument(
        "--reaction-ms", type=float, default=300.0,
        help="a student's pause between seeing the blank canvas and drawing",
    )  # fmt: skip
    parser.add_argument(
        "--post-script-gc", choices=("on", "off"),
        help="override runner.postScriptGC (Streamlit's full gc.collect after every script run; "
        ".streamlit/config.toml turns it off)",
    )  # fmt: skip
    args = parser.parse_args()
    server_env = {}
    if args.post_script_gc:
        server_env["STREAMLIT_RUNNER_POST_SCRIPT_GC"] = "true" if args.post_script_gc == "on" else "false"
    with bench_server(server_env) as (url, pid, reg, data_dir):
        gc = args.post_script_gc or "as .streamlit/config.toml sets it"
        print(f"server pid {pid} at {url}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
              f"{args.sessions} sessions, post-script GC {gc}")  # fmt: skip
        asyncio.run(bench(url, pid, reg, args, data_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
