"""The class on one server without the browser: N students speaking Streamlit's own websocket protocol.

    python scripts/server_bench.py --sessions 5,10,20,30

Prints figures, asserts nothing. scripts/load_bench.py plays the class in one headless Chromium, whose rendering
takes most of the 2 cores that the server and the training need; in a classroom every student's device renders
its own page. Here each student is a websocket client (the `websockets` package Streamlit already depends on)
that does what the page's JavaScript does, and no rendering: it opens the Draw page (a script run), then in a
loop sends a drawing as the canvas component's state (a PNG and its strokes, as streamlit-drawable-canvas sends
them), reads the server's answer off the websocket, looks at it for --pause-s / 2, presses Clear (the button's
trigger) and waits --pause-s / 2 more, as a student reading the answer and drawing the next digit would.

Phases, with the same server (`streamlit run app.py` on a loopback port, VITDEMO_HOME in a temporary folder):
1. alone:   one 1-epoch CNN run (load_bench's: the "fast demo" CNN on 10,000 images; --epochs for a longer
            one) through the real worker;
2. for each N: N students draw for --draw-s seconds with nothing training, then while the same run trains.
For each: time from sending a drawing to both models' answers on the websocket (p50, p95), errors (no answer
within 30 s, or a failed script run), the server's CPU seconds per drawing and its share of a core, and the
run's training time against phase 1. Loops are bounded (--max-s); the server and its worker are always stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field, replace

import websockets
from load_bench import RUN, bench_server, browser, cpu_seconds, pct, start_run, wait_run
from PIL import Image
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

from vitdemo.runs.store import Registry

ANSWER = re.compile(r'aria-label="(ViT|CNN) predicts ([^"]+)"')
ANSWER_TIMEOUT_S = 30.0
CANVAS_PX = 280


def canvas_state(digit: str) -> str:
    """The canvas component's state after drawing `digit`: the Fabric.js strokes and the PNG, as JSON."""
    strokes = browser.DIGIT_STROKES[digit]
    png = io.BytesIO()
    Image.fromarray(browser.stroke_image(strokes, CANVAS_PX)).save(png, format="PNG")
    paths_ = [
        {"type": "path", "stroke": "#ffffff", "strokeWidth": 20,
         "path": [["M" if i == 0 else "L", x * CANVAS_PX, y * CANVAS_PX] for i, (x, y) in enumerate(s)]}
        for s in strokes
    ]  # fmt: skip
    url = "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()
    return json.dumps({"drawing": {"raw": {"objects": paths_, "background": "#000000"}, "data": url}})


@dataclass
class ScriptRun:
    """What one script run sent back: the widget ids a student needs, and how many answers arrived when."""

    ids: dict[str, str] = field(default_factory=dict)  # "canvas" / a button's label -> its widget id
    answers: dict[str, str] = field(default_factory=dict)  # "ViT" / "CNN" -> what it read, e.g. "7"
    answer_s: float | None = None  # seconds from the request to the second model's answer
    status: str = ""


async def script_run(ws: websockets.ClientConnection, widgets: list[WidgetState]) -> ScriptRun:
    """Ask for a script run with these widget states (as the page does after a stroke or a click); read it."""
    back = BackMsg()
    back.rerun_script.query_string = ""  # the default page: Draw
    back.rerun_script.widget_states.widgets.extend(widgets)
    t0 = time.monotonic()
    await ws.send(back.SerializeToString())
    run = ScriptRun()
    deadline = t0 + ANSWER_TIMEOUT_S
    while True:
        msg = ForwardMsg.FromString(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
        kind = msg.WhichOneof("type")
        if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element
            which = element.WhichOneof("type")
            if which == "bidi_component":
                run.ids["canvas"] = element.bidi_component.id
            elif which == "button":
                run.ids[element.button.label] = element.button.id
            elif which == "markdown" and run.answer_s is None:
                run.answers.update(ANSWER.findall(element.markdown.body))
                if len(run.answers) >= 2:
                    run.answer_s = time.monotonic() - t0
        elif kind == "script_finished":
            run.status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
            if run.status != "FINISHED_EARLY_FOR_RERUN":
                return run


def connect(url: str) -> websockets.connect:
    """A websocket to the app at `url`, as the page opens it (a new Streamlit session)."""
    return websockets.connect(
        url.replace("http", "ws", 1) + "/_stcore/stream", subprotocols=["streamlit"], max_size=None
    )


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def student(url: str, n: int, stop: asyncio.Event, tally: Tally, states: list[str], pause_s: float) -> None:
    """One student on the Draw page: draw, wait for both answers, look, Clear, draw again, until `stop`."""
    async with connect(url) as ws:
        ids = (await script_run(ws, [])).ids
        await asyncio.sleep(n * 0.05)  # the class does not press at the same instant
        i = n
        while not stop.is_set():
            drawing = WidgetState(id=ids["canvas"], json_value=states[i % len(states)])
            try:
                run = await script_run(ws, [drawing])
            except TimeoutError:
                tally.errors.append(f"no answer within {ANSWER_TIMEOUT_S:.0f} s")
                return  # the websocket is now out of step with the page
            if run.answer_s is None:
                tally.errors.append(f"script run {run.status} without both answers")
            else:
                tally.latencies.append(run.answer_s)
            await asyncio.sleep(pause_s / 2)
            clear = WidgetState(id=run.ids["Clear"], trigger_value=True)
            ids = (await script_run(ws, [clear, drawing])).ids  # a new canvas (a new widget id) after Clear
            await asyncio.sleep(pause_s / 2)
            i += 1


@dataclass
class Phase:
    label: str
    tally: Tally
    seconds: float
    server_cpu_s: float
    runs: int  # script runs: two per drawing (the drawing, then Clear)


async def phase(
    label: str, url: str, pid: int, n: int, args: argparse.Namespace, until: asyncio.Future | None
) -> Phase:
    """N students drawing for --draw-s seconds, or until `until` is done (bounded by --max-s)."""
    states = [canvas_state(d) for d in sorted(browser.DIGIT_STROKES)]
    stop, tally = asyncio.Event(), Tally()
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    tasks = [asyncio.create_task(student(url, i, stop, tally, states, args.pause_s)) for i in range(n)]
    wait = until if until is not None else asyncio.sleep(args.draw_s)
    try:
        await asyncio.wait_for(asyncio.shield(wait) if until is not None else wait, args.max_s)
    except TimeoutError:
        tally.errors.append(f"phase stopped after --max-s {args.max_s:.0f} s")
    stop.set()
    for result in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(result, BaseException):
            tally.errors.append(f"{type(result).__name__}: {result}")
    seconds = time.monotonic() - t0
    return Phase(label, tally, seconds, cpu_seconds(pid) - cpu0, 2 * len(tally.latencies) + n)


def report(p: Phase) -> None:
    lat = p.tally.latencies
    per_run = 1000 * p.server_cpu_s / max(p.runs, 1)
    print(f"  {p.label:<22} {len(lat):5d} drawings  p50 {pct(lat, 0.5):6.3f} s  p95 {pct(lat, 0.95):6.3f} s  "
          f"errors {len(p.tally.errors)}  server {per_run:5.1f} ms/script run, "
          f"{p.server_cpu_s / p.seconds:5.0%} of a core")  # fmt: skip
    for error, count in sorted({e: p.tally.errors.count(e) for e in p.tally.errors}.items()):
        print(f"      {count} x {error}")


async def bench(url: str, pid: int, reg: Registry, args: argparse.Namespace, data_dir: str | None) -> None:
    loop = asyncio.get_running_loop()
    config = replace(RUN, epochs=args.epochs)
    run_id = start_run(reg, data_dir, config)
    alone = await loop.run_in_executor(None, wait_run, reg, run_id, args.max_s)
    print(f"alone: the {args.epochs}-epoch CNN run trained in {alone or float('nan'):.1f} s")
    for n in args.sessions:
        print(f"N = {n} students, {args.pause_s:.1f} s between an answer and the next drawing")
        report(await phase("nothing training", url, pid, n, args, None))
        run_id = start_run(reg, data_dir, config)
        training = loop.run_in_executor(None, wait_run, reg, run_id, args.max_s)
        report(await phase("while the CNN trains", url, pid, n, args, training))
        loaded = await training
        ratio = f"{loaded / alone:.2f}x" if loaded and alone else "n/a (the run did not finish)"
        print(
            f"  the run trained in {loaded or float('nan'):.1f} s against {alone or float('nan'):.1f} s alone: {ratio}"
        )


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a `timeout` still stops the server
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", default="5,10,20", help="comma-separated class sizes, run in turn")
    parser.add_argument("--draw-s", type=float, default=20.0, help="drawing with nothing training")
    parser.add_argument(
        "--pause-s", type=float, default=2.0, help="a student's time from an answer to the next drawing"
    )
    parser.add_argument("--epochs", type=int, default=1, help="the CNN run's epochs (1: the issue's run)")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE", help="for the server only")
    parser.add_argument("--max-s", type=float, default=300.0, help="the longest any phase may take")
    args = parser.parse_args()
    args.sessions = [int(s) for s in args.sessions.split(",")]
    with bench_server(dict(kv.split("=", 1) for kv in args.server_env)) as (url, pid, reg, data_dir):
        print(f"server pid {pid} at {url}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        asyncio.run(bench(url, pid, reg, args, data_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
