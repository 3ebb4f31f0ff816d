"""The race's figures on this machine: how soon it moves, how fast each model trains, how well each learns, how soon
a knob shows, and what a class watching it costs.

    python scripts/race_bench.py                       # everything (about 6 minutes on 2 cores)
    python scripts/race_bench.py --skip-server         # the in-process figures only

Prints figures, asserts nothing. Two parts:
1. In this process, as the app runs a race (one torch thread): Play to the first trained point; each model's
   validation accuracy (500 images) after 5, 15 and 60 s on 5,000 training images; set_knobs to its mark.
2. Against `streamlit run app.py` (VITDEMO_HOME in a temporary folder), over Streamlit's websocket protocol without
   a browser (scripts/server_bench.py's way): the teacher, a session on the Race page, presses Play (the button's
   trigger in its fragment) and reads the first trained point off the websocket; the race's images per second for
   each model alone, then while N read-only sessions watch it, each asking for the live fragment every second as
   the page's timer does (p50/p95 of a refresh); a knob turn (label noise) to its mark on the teacher's
   websocket; students drawing on the Draw page while the race plays (p50/p95 of their answers); the queue's
   1-epoch CNN run (load_bench's) alone and while the race plays. The server is always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

import server_bench  # noqa: E402
from load_bench import RUN, bench_server, cpu_seconds, pct, start_run, wait_run  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402
from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402

from vitdemo import paths  # noqa: E402

SIDE = re.compile(r"■ (CNN|ViT) ([\d.]+)%.*?step ([\d,]+) · ([\d,]+) images", re.S)
TIMEOUT_S = 180.0  # the first page run loads the sidebar's models; on a loaded 2-core machine that takes a while


# -- part 1: in this process -------------------------------------------------------------------------------------
def in_process(data_dir: str | None, seconds: tuple[float, ...]) -> None:
    import torch

    from vitdemo.race.engine import Race
    from vitdemo.race.knobs import Knobs

    torch.set_num_threads(1)  # as the app's process (vitdemo.ui.shell._configure_process)
    race = Race(data_dir=data_dir)
    race.wait(lambda v: v.state == "ready", 120)
    start = time.monotonic()
    race.play()
    first = race.wait(lambda v: any(p.step > 0 and p.val_acc is not None for s in v.sides for p in s.points), 10)
    print(f"in process: Play to the first trained point {time.monotonic() - start:.2f} s (race time {first.t:.2f} s)")
    for t in seconds:
        race.touch()
        view = race.wait(lambda v, t=t: v.t >= t, t + 30)
        while view.t < t:  # points come every 0.5 s; the accuracies are the latest validations
            race.touch()
            view = race.wait(lambda v, t=t: v.t >= t, 5)
        sides = "  ".join(f"{s.kind}: {s.val_acc or 0:.1%} ({s.images:,} images, {s.images_per_s:,.0f}/s)"
                          for s in view.sides)  # fmt: skip
        print(f"  after {view.t:5.1f} s on {view.knobs.train_size:,} images  {sides}")
    latencies = []
    for lr in (2e-2, 2e-3, 2e-2, 2e-3, 2e-2):
        marks = len(race.view.marks)
        t0 = time.monotonic()
        race.set_knobs(Knobs(lr=lr))
        race.wait(lambda v, m=marks: len(v.marks) != m, 5)
        latencies.append(time.monotonic() - t0)
        time.sleep(2.5)  # apart: turns of one knob within 2 s merge into one mark
    print(f"  set_knobs to its mark: median {1000 * sorted(latencies)[2]:.0f} ms, max {1000 * max(latencies):.0f} ms")
    race.close()
    race.join(10)


# -- part 2: the server ----------------------------------------------------------------------------------------
@dataclass
class Render:
    """What one script or fragment run sent: widget ids, html bodies, the chart spec, the fragment to rerun."""

    ids: dict[str, str] = field(default_factory=dict)
    bodies: list[str] = field(default_factory=list)
    spec: str = ""
    fragment: str = ""
    seconds: float = 0.0

    def sides(self) -> dict[str, tuple[float, int, int]]:
        """kind -> (validation %, steps, images) as the page shows them."""
        text = " ".join(self.bodies)
        return {m[0]: (float(m[1]), int(m[2].replace(",", "")), int(m[3].replace(",", ""))) for m in SIDE.findall(text)}


def _take(r: Render, msg: ForwardMsg) -> None:
    kind = msg.WhichOneof("type")
    if kind == "auto_rerun":
        r.fragment = msg.auto_rerun.fragment_id
    if kind != "delta" or msg.delta.WhichOneof("type") != "new_element":
        return
    el = msg.delta.new_element
    which = el.WhichOneof("type")
    if which in ("html", "markdown"):
        r.bodies.append(el.html.body if which == "html" else el.markdown.body)
    elif which in ("button", "slider", "button_group"):
        proto = getattr(el, which)
        r.ids[proto.label] = proto.id
    elif which == "plotly_chart":
        r.spec = el.plotly_chart.spec


async def render(ws, widgets: list[WidgetState] = (), fragment: str = "") -> Render:
    """One run of the Race page (or of its live fragment), as the page asks for it; read until it finishes."""
    back = BackMsg()
    back.rerun_script.page_name = "race"
    back.rerun_script.widget_states.widgets.extend(widgets)
    if fragment:
        back.rerun_script.fragment_id = fragment
        back.rerun_script.is_auto_rerun = not widgets
    t0, r = time.monotonic(), Render(fragment=fragment)
    await ws.send(back.SerializeToString())
    while True:
        msg = ForwardMsg.FromString(await asyncio.wait_for(ws.recv(), TIMEOUT_S))
        _take(r, msg)
        finished = msg.WhichOneof("type") == "script_finished"
        if finished and ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished) != "FINISHED_EARLY_FOR_RERUN":
            r.seconds = time.monotonic() - t0
            return r


async def teacher_play(ws) -> tuple[Render, float]:
    """The teacher opens the page, waits for the race to be ready, presses Play: the first trained point's delay."""
    page = await render(ws)
    while "Play" not in page.ids or "Ready" not in " ".join(page.bodies):
        await asyncio.sleep(1.0)
        page = await render(ws, fragment=page.fragment)
    t0 = time.monotonic()
    shown = await render(ws, [WidgetState(id=page.ids["Play"], trigger_value=True)], page.fragment)
    while not shown.sides() or min(s[1] for s in shown.sides().values()) == 0:
        shown = await render(ws, fragment=page.fragment)
    return shown, time.monotonic() - t0


async def watcher(url: str, stop: asyncio.Event, refreshes: list[float], errors: list[str], every_s: float) -> None:
    """A student's device showing the class race: the page, then its live fragment every `every_s` (the page's
    timer: vitdemo.ui.race.WATCH_EVERY_S for a read-only view)."""
    try:
        async with server_bench.connect(url) as ws:
            fragment = (await render(ws)).fragment
            while not stop.is_set():
                started = time.monotonic()
                refreshes.append((await render(ws, fragment=fragment)).seconds)
                await asyncio.sleep(max(0.0, every_s - (time.monotonic() - started)))
    except (TimeoutError, OSError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")


async def watched_rate(url: str, teacher, fragment: str, n: int, args: argparse.Namespace, pid: int) -> None:
    """The race's images/s for each model while `n` sessions watch it for --phase-s seconds."""
    stop, refreshes, errors, seconds = asyncio.Event(), [], [], args.phase_s
    tasks = [asyncio.create_task(watcher(url, stop, refreshes, errors, args.watch_every_s)) for _ in range(n)]
    await asyncio.sleep(3.0 if n else 0.0)  # everyone in
    before, cpu0, t0 = (await render(teacher, fragment=fragment)).sides(), cpu_seconds(pid), time.monotonic()
    me0 = time.process_time()
    await asyncio.sleep(seconds)
    after, cpu1, t1 = (await render(teacher, fragment=fragment)).sides(), cpu_seconds(pid), time.monotonic()
    me = (time.process_time() - me0) / (t1 - t0)
    stop.set()
    await asyncio.gather(*tasks)
    rates = "  ".join(f"{k} {(after[k][2] - before[k][2]) / (t1 - t0):,.0f} images/s" for k in ("CNN", "ViT"))
    fig = f"  refresh p50 {pct(refreshes, 0.5):.3f} s p95 {pct(refreshes, 0.95):.3f} s ({len(refreshes)})" if n else ""
    print(f"  {n:2d} watching: {rates}  server {(cpu1 - cpu0) / (t1 - t0):.0%} of a core, these clients {me:.0%}{fig}"
          f"{f'  errors {len(errors)}' if errors else ''}")  # fmt: skip


async def knob_latency(teacher, ids: dict[str, str], fragment: str) -> float:
    """Label noise 0% -> 10% on the teacher's page until its mark is on the chart."""
    t0 = time.monotonic()
    turn = WidgetState(id=ids["Label noise"])
    turn.string_array_value.data.extend(["10%"])
    shown = await render(teacher, [turn], fragment)
    while "noise 10%" not in shown.spec:
        shown = await render(teacher, fragment=fragment)
    notes = [a["text"] for a in json.loads(shown.spec)["layout"]["annotations"]]
    print(f"  the chart's marks now: {notes}")
    return time.monotonic() - t0


async def drawing(url: str, pid: int, n: int, seconds: float, label: str) -> None:
    """`n` students on the Draw page (server_bench's), a drawing every 2 s: the p50/p95 of their answers."""
    args = argparse.Namespace(draw_s=seconds, pause_s=2.0, max_s=seconds + 60)
    report = await server_bench.phase(f"{n} drawing, {label}", url, pid, n, args, None)
    server_bench.report(report)


async def queue_run(reg, data_dir: str | None, label: str) -> float | None:
    loop = asyncio.get_running_loop()
    took = await loop.run_in_executor(None, wait_run, reg, start_run(reg, data_dir, RUN), 600)
    print(f"  the queue's 1-epoch CNN run {label}: {took or float('nan'):.1f} s of training")
    return took


async def queue_rounds(url: str, reg, data_dir: str | None, rounds: int) -> None:
    """The queue's run alone and while the race plays, `rounds` times in turn (the machine's other load moves)."""
    async with server_bench.connect(url) as teacher:
        shown, _ = await teacher_play(teacher)
        pause = WidgetState(id=(await render(teacher, fragment=shown.fragment)).ids["Pause"], trigger_value=True)
        await render(teacher, [pause], shown.fragment)
        for _ in range(rounds):
            await queue_run(reg, data_dir, f"alone (load {os.getloadavg()[0]:.1f})")
            page = await render(teacher, fragment=shown.fragment)
            await render(teacher, [WidgetState(id=page.ids["Play"], trigger_value=True)], shown.fragment)
            keep = asyncio.create_task(_keep_watching(teacher, shown.fragment))
            await queue_run(reg, data_dir, f"with the race on (load {os.getloadavg()[0]:.1f})")
            keep.cancel()
            page = await render(teacher, fragment=shown.fragment)
            print(f"    the race meanwhile: {page.sides()}")
            await render(teacher, [WidgetState(id=page.ids["Pause"], trigger_value=True)], shown.fragment)


async def server_part(url: str, pid: int, reg, data_dir: str | None, args: argparse.Namespace) -> None:
    if args.queue_rounds:
        await queue_rounds(url, reg, data_dir, args.queue_rounds)
        return
    print("server:")
    alone = [] if args.no_queue else [await queue_run(reg, data_dir, "alone")]
    async with server_bench.connect(url) as teacher:
        shown, first_s = await teacher_play(teacher)
        print(f"  Play to the first trained point on the teacher's websocket: {first_s:.2f} s")
        for n in (0, *args.sessions):
            await watched_rate(url, teacher, shown.fragment, n, args, pid)
        print(f"  knob turn to its mark on the chart: {await knob_latency(teacher, shown.ids, shown.fragment):.2f} s")
        if args.no_queue:
            return
        keep = asyncio.create_task(_keep_watching(teacher, shown.fragment))
        await drawing(url, pid, args.drawing, args.phase_s, "race on")
        raced = await queue_run(reg, data_dir, "while the race plays (slowed to its share)")
        race_during = (await render(teacher, fragment=shown.fragment)).sides()
        keep.cancel()
        pause = WidgetState(id=(await render(teacher, fragment=shown.fragment)).ids["Pause"], trigger_value=True)
        await render(teacher, [pause], shown.fragment)
        await drawing(url, pid, args.drawing, args.phase_s, "race paused")
    alone.append(await queue_run(reg, data_dir, "alone again, the race paused"))
    known = [a for a in alone if a]
    ratio = f"{raced / (sum(known) / len(known)):.2f}x" if raced and known else "n/a"
    print(f"  the run with the race on: {ratio} its mean time alone; the race then: {race_during}")


async def _keep_watching(teacher, fragment: str) -> None:
    """The teacher's page goes on refreshing (a race nobody looks at pauses itself)."""
    while True:
        await render(teacher, fragment=fragment)
        await asyncio.sleep(1.0)


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", default="10,30", help="comma-separated numbers of watching sessions")
    parser.add_argument("--phase-s", type=float, default=20.0, help="seconds each rate is measured over")
    parser.add_argument("--drawing", type=int, default=10, help="students drawing on Draw while the race plays")
    parser.add_argument("--watch-every-s", type=float, default=2.0, help="a watching session's refresh (the page's)")
    parser.add_argument("--skip-server", action="store_true")
    parser.add_argument("--no-queue", action="store_true", help="the server part stops after the knob's latency")
    parser.add_argument(
        "--queue-rounds", type=int, default=0, help="only: the queue's run alone / with the race, N times"
    )
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE", help="for the server only")
    parser.add_argument("--skip-process", action="store_true")
    args = parser.parse_args()
    args.sessions = [int(s) for s in args.sessions.split(",") if s]
    data_dir = os.environ.get(paths.ENV_DATA_DIR) or None
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if not args.skip_process:
        in_process(data_dir, (5.0, 15.0, 60.0))
    if not args.skip_server:
        with bench_server(dict(kv.split("=", 1) for kv in args.server_env)) as (url, pid, reg, data):
            print(f"server pid {pid} at {url}, load average {os.getloadavg()[0]:.1f}")
            asyncio.run(server_part(url, pid, reg, data, args))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
