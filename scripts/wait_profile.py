"""Where a wait goes: the server's script run (sampled with py-spy) or the browser's drawing. For one wait of
scripts/wait_bench.py at a time, in a real browser on a fresh server:

    python scripts/wait_profile.py evaluate      # opening Evaluate (after one visit to Draw)
    python scripts/wait_profile.py leaderboard   # the Leaderboard's "Confusion matrices" switch
    python scripts/wait_profile.py evaluate --pyspy /tmp/evaluate.txt   # and where the server's time goes

Prints a timeline from the browser's side: when the first and the last websocket message of the script run
arrived (the server's work, plus the page's own loading for a fresh tab) and when the chart was on screen (the
rest is the browser: loading the chart library and drawing). With --pyspy (`pip install py-spy`) the server
process is sampled for the whole wait; the file holds collapsed stacks (`--format raw`), and the script prints the
page's own functions that took the most samples. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import browser  # noqa: E402
import wait_bench  # noqa: E402

TIMEOUT_MS = 180_000


def server_pid(url: str) -> int | None:
    """The process that serves `url` (its port on the command line)."""
    port = url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(args) and port.encode() in args:
            return int(proc.name)
    return None


class Frames:
    """Websocket messages from the server, with the time each arrived (perf_counter)."""

    def __init__(self, page: Any) -> None:
        self.times: list[tuple[float, int, bytes]] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._got))

    def _got(self, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else str(payload).encode()
        self.times.append((time.perf_counter(), len(data), data))

    def first_with(self, needle: bytes) -> float | None:
        return next((t for t, _, d in self.times if needle in d), None)


def timeline(frames: Frames, t0: float, shown: float, needle: bytes) -> None:
    if not frames.times:
        print("  no websocket message seen")
        return
    first, last = frames.times[0][0], frames.times[-1][0]
    chart = frames.first_with(needle)
    print(f"  first message        {first - t0:6.2f} s")
    if chart is not None:
        print(f"  the chart's message  {chart - t0:6.2f} s")
    print(f"  chart on screen      {shown - t0:6.2f} s")
    print(f"  last message         {last - t0:6.2f} s  ({len(frames.times)} messages, "
          f"{sum(n for _, n, _ in frames.times) / 1e6:.2f} MB)")  # fmt: skip


def profile_evaluate(chromium: Any, url: str, start: Any) -> None:
    wait_bench._new_page(chromium, url).context.close()  # Draw first: imports and models are not Evaluate's
    page = chromium.new_context(viewport=browser.VIEWPORT).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    frames = Frames(page)
    stop = start()
    t0 = time.perf_counter()
    for visit in ("first visit", "next tab"):  # a new browser, then another tab of it (its cache warm)
        page.goto(f"{url}/evaluate", wait_until="commit")
        heading = wait_bench._until(page, "text=Evaluate a model on the test set", t0)
        shown = t0 + wait_bench._until(page, wait_bench.TABLE % "cm_", t0)
        browser.wait_idle(page, TIMEOUT_MS)
        print(f"evaluate: {visit} {shown - t0:.2f} s (the page's heading on screen at {heading:.2f} s)")
        timeline(frames, t0, shown, b"cm_")
        page = page.context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        frames = Frames(page)
        t0 = time.perf_counter()
    stop()
    page.context.close()


def profile_leaderboard(chromium: Any, url: str, start: Any) -> None:
    page = wait_bench._new_page(chromium, f"{url}/leaderboard")
    frames = Frames(page)
    page.reload()
    browser.wait_for_app(page, TIMEOUT_MS)
    switch = page.get_by_text("Confusion matrices, loss and calibration").first
    switch.scroll_into_view_if_needed()
    frames.times.clear()
    stop = start()
    t0 = time.perf_counter()
    switch.click()
    shown = t0 + wait_bench._until(page, wait_bench.TABLE % "lb_grid", t0)
    browser.wait_idle(page, TIMEOUT_MS)
    stop()
    print(f"leaderboard: matrices {shown - t0:.2f} s")
    timeline(frames, t0, shown, b"lb_grid")
    page.context.close()


def sampler(pid: int | None, out: str | None) -> Any:
    """start() -> stop(): py-spy on the server for what happens in between (nothing without `out`)."""

    def start() -> Any:
        if not out or pid is None:
            return lambda: None
        cmd = ["py-spy", "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--output", out]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaches

        def stop() -> None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)

        return stop

    return start


def top_functions(path: str, limit: int = 25) -> None:
    """The functions of the app (vitdemo/, app_pages/) with the most samples anywhere on the stack, in the
    script-runner thread."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if "ScriptRunner" not in stack and "exec_func_with_error_handling" not in stack:
            continue
        total += int(n)
        seen = set()
        for frame in stack.split(";"):
            if ("vitdemo/" in frame or "app_pages/" in frame or "plotly" in frame) and frame not in seen:
                seen.add(frame)
                counts[frame] += int(n)
    print(f"  script thread: {total / 200:.2f} s sampled")
    for frame, n in counts.most_common(limit):
        print(f"  {n / 200:6.2f} s  {frame}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wait", choices=["evaluate", "leaderboard"])
    parser.add_argument("--pyspy", help="sample the server with py-spy into this file (collapsed stacks)")
    parser.add_argument("--root", default=str(ROOT), help="the checkout whose app is timed")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} cores)", flush=True)
    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="vitdemo-profile-") as home:
        chromium = browser.launch_browser(pw)
        env = wait_bench._env(home)
        with browser.serve_app(env, log_path=Path(home) / "streamlit.log", root=args.root) as url:
            start = sampler(server_pid(url), args.pyspy)
            {"evaluate": profile_evaluate, "leaderboard": profile_leaderboard}[args.wait](chromium, url, start)
        chromium.close()
    if args.pyspy and Path(args.pyspy).is_file():
        top_functions(args.pyspy)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
