"""A class on one server, measured: N browser sessions drawing digits while a training run goes on.

    python scripts/load_bench.py --sessions 5          # then --sessions 10, 20 if the machine allows

Prints figures, asserts nothing. Starts `streamlit run app.py` on a loopback port with VITDEMO_HOME in a temporary
folder and opens every session in ONE headless Chromium (a context each: separate Streamlit sessions). Phases:

1. alone:   one 1-epoch CNN run (the "fast demo" CNN on 10,000 images) through the real worker, no browser open;
2. idle:    N sessions on the Train page doing nothing for --idle-s seconds: the server's CPU seconds per minute
            per idle session (its live fragment polls the registry), from /proc/<server pid>/stat;
3. drawing: N sessions on the Draw page, each clearing the canvas and drawing a digit with the mouse
            (strokes on canvas.upper-canvas) in a loop, first with nothing training, then while the same CNN run
            trains: time from releasing the mouse to both predictions on the page (p50, p95), errors (no
            prediction within 30 s), the server's CPU per rerun, and the run's training time against phase 1.

Loops are bounded (--max-s per phase); the server, its worker and the browser are always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # vitdemo, and tests/browser.py

import browser  # noqa: E402

from vitdemo import paths  # noqa: E402
from vitdemo.config import CNNConfig, TrainConfig  # noqa: E402
from vitdemo.runs import queue, worker  # noqa: E402
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


# -- one training run through the worker ---------------------------------------------------------------------
def start_run(reg: Registry, data_dir: str | None) -> int:
    run_id = queue.submit(reg, RUN, CLI)
    worker.ensure_worker(reg, "cpu", data_dir)
    return run_id


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
@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds from mouse up to both predictions
    errors: int = 0
    reruns: int = 0  # script runs asked of the server (a clear and a stroke per drawing)


async def find_canvas(page: Any) -> tuple[Any, dict[str, float]]:
    """The drawing surface (in the canvas component's frame) and its box."""
    deadline = time.monotonic() + PREDICTION_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        for frame in page.frames:
            if frame.is_detached():
                continue
            found = frame.locator("canvas.upper-canvas")
            if await found.count():
                box = await found.first.bounding_box()
                if box is not None and box["width"] > 50:
                    return frame, box
        await page.wait_for_timeout(50)
    raise TimeoutError("no new canvas.upper-canvas")


async def stroke(page: Any, box: dict[str, float], points: list[tuple[float, float]]) -> None:
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    await page.mouse.move(*xy[0])
    await page.mouse.down()
    for x, y in xy[1:]:
        await page.mouse.move(x, y, steps=8)
    await page.mouse.up()


async def draw_loop(page: Any, index: int, stop: asyncio.Event, tally: Tally) -> None:
    """Clear, draw a digit, wait for both predictions; again until `stop` is set."""
    digits = sorted(browser.DIGIT_STROKES)
    n, frame = index, None
    hint = page.get_by_text(re.compile(r"^Draw a digit on the black canvas"))
    predicted = page.get_by_text(re.compile(r"^CNN predicts"))
    while not stop.is_set():
        try:
            if frame is not None:
                await page.get_by_role("button", name="Clear").click()
                tally.reruns += 1
                await hint.first.wait_for(timeout=PREDICTION_TIMEOUT_MS)  # the rerun after Clear is over
                await page.wait_for_timeout(300)  # the new, blank canvas mounts
            frame, box = await find_canvas(page)
            t0 = time.perf_counter()
            for points in browser.DIGIT_STROKES[digits[n % len(digits)]]:
                await stroke(page, box, points)
            tally.reruns += 1
            await page.get_by_text(re.compile(r"^ViT predicts")).first.wait_for(timeout=PREDICTION_TIMEOUT_MS)
            await predicted.first.wait_for(timeout=PREDICTION_TIMEOUT_MS)
            tally.latencies.append(time.perf_counter() - t0)
        except Exception as exc:  # a timeout or a page that went away: count it and go on
            tally.errors += 1
            print(f"  session {index}: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
        n += 1


async def open_sessions(chromium: Any, url: str, n: int) -> list[Any]:
    pages = []
    for _ in range(n):
        context = await chromium.new_context(viewport=browser.VIEWPORT)
        page = await context.new_page()
        page.set_default_timeout(120_000)
        pages.append(page)
    await asyncio.gather(*(p.goto(url) for p in pages))
    await asyncio.gather(*(p.locator('[data-testid="stMainBlockContainer"]').first.wait_for() for p in pages))
    return pages


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(label: str, tally: Tally, cpu: float, wall: float, browser_cpu: float) -> None:
    if tally.latencies:
        p50, p95 = statistics.median(tally.latencies), pct(tally.latencies, 0.95)
        lat = f"stroke -> predictions p50 {p50:.2f} s, p95 {p95:.2f} s over {len(tally.latencies)} drawings"
    else:
        lat = "no drawing finished"
    per_rerun = cpu / tally.reruns if tally.reruns else float("nan")
    print(f"{label}: {lat}; errors {tally.errors}; server CPU {cpu:.1f} s in {wall:.0f} s "
          f"= {per_rerun * 1000:.0f} ms per rerun ({tally.reruns} reruns); Chromium CPU {browser_cpu:.1f} s")  # fmt: skip


async def drawing_phase(pages: list[Any], seconds: float, until: Any = None) -> Tally:
    """All sessions draw for `seconds`, or until `until()` is true (checked every half second)."""
    stop, tally = asyncio.Event(), Tally()
    tasks = [asyncio.create_task(draw_loop(p, i, stop, tally)) for i, p in enumerate(pages)]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and until()):
        await asyncio.sleep(0.5)
    stop.set()
    _, late = await asyncio.wait(tasks, timeout=PREDICTION_TIMEOUT_MS / 1000 * 3)
    for task in late:  # a session stuck past every timeout: stop waiting for it
        task.cancel()
    return tally


async def bench(url: str, pid: int, reg: Registry, args: argparse.Namespace, data_dir: str | None) -> None:
    from playwright.async_api import async_playwright

    print(f"phase 1: the CNN run alone ({RUN.train_subset:,} images, 1 epoch) ...")
    alone = wait_run(reg, start_run(reg, data_dir), args.max_s)
    print(f"  trained in {alone:.1f} s" if alone else "  the run did not finish")

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=str(browser.CHROMIUM), args=browser.CHROMIUM_ARGS, headless=True
        )
        try:
            print(f"phase 2: {args.sessions} idle sessions on the Train page for {args.idle_s:.0f} s ...")
            pages = await open_sessions(chromium, url.rstrip("/") + "/train", args.sessions)
            await asyncio.sleep(5)  # the first runs (estimates, probes) are over
            c0, t0 = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(args.idle_s)
            cpu, wall = cpu_seconds(pid) - c0, time.monotonic() - t0
            per = cpu / (wall / 60) / args.sessions
            print(f"  server CPU {cpu:.2f} s in {wall:.0f} s: {per:.2f} CPU s per minute per idle Train session")
            for page in pages:
                await page.context.close()

            print(f"phase 3: {args.sessions} sessions drawing on the Draw page ...")
            pages = await open_sessions(chromium, url, args.sessions)
            await asyncio.sleep(3)
            c0, b0, t0 = cpu_seconds(pid), browser_cpu_seconds(), time.monotonic()
            tally = await drawing_phase(pages, args.draw_s)
            cpu, wall, bcpu = cpu_seconds(pid) - c0, time.monotonic() - t0, browser_cpu_seconds() - b0
            report("  nothing training", tally, cpu, wall, bcpu)

            run_id = start_run(reg, data_dir)
            c0, b0, t0 = cpu_seconds(pid), browser_cpu_seconds(), time.monotonic()
            tally = await drawing_phase(
                pages, args.max_s, until=lambda: reg.get_run(run_id).status in ("done", "failed", "cancelled")
            )
            cpu, wall, bcpu = cpu_seconds(pid) - c0, time.monotonic() - t0, browser_cpu_seconds() - b0
            report("  while the CNN trains", tally, cpu, wall, bcpu)
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
        "--no-post-script-gc", action="store_true",
        help="run the server with runner.postScriptGC off (Streamlit's full gc.collect after every script run)",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vitdemo-load-") as home:
        env = {paths.ENV_HOME: home, worker.ENV_IDLE_EXIT: "5"}
        os.environ[worker.ENV_IDLE_EXIT] = "5"  # the workers this script starts exit soon after the last run
        if args.no_post_script_gc:
            env["STREAMLIT_RUNNER_POST_SCRIPT_GC"] = "false"
        shared = browser.REPO_ROOT.parent / "shared" / "data"
        if not os.environ.get(paths.ENV_DATA_DIR) and shared.is_dir():
            env[paths.ENV_DATA_DIR] = str(shared)
        data_dir = env.get(paths.ENV_DATA_DIR) or os.environ.get(paths.ENV_DATA_DIR)
        reg = Registry(home)
        with browser.serve_app(env, log_path=Path(home) / "streamlit.log") as url:
            pid = server_pid(int(url.rsplit(":", 1)[1]))
            gc = "off" if args.no_post_script_gc else "on (Streamlit's default)"
            print(f"server pid {pid} at {url}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
                  f"{args.sessions} sessions, post-script GC {gc}")  # fmt: skip
            asyncio.run(bench(url, pid, reg, args, data_dir))
        deadline = time.monotonic() + 30
        while worker.worker_running(reg, "cpu") and time.monotonic() < deadline:
            time.sleep(0.5)  # the worker exits 5 s after its last run, before its folder goes
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
