"""One student as Streamlit's server sees them: a websocket session speaking Streamlit's own protocol (no browser,
no rendering), and the servers the probes and tests drive. Used by scripts/trust_probes.py and
tests/test_trust_server.py; scripts/server_bench.py has the lighter loop its benchmark needs.

A `Student` asks for script runs with widget states, as the page's JavaScript does, and reads each run's reply:
every widget id (a widget given a key ends its id with `-<key>`), every text and alert shown, how the run ended.
`serve` starts `streamlit run app.py` from any checkout on a loopback port with VITDEMO_HOME in a temporary
folder, and always stops it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import websockets
from PIL import Image
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import browser  # noqa: E402

REPLY_TIMEOUT_S = 60.0
CANVAS_PX = 280


# -- the protocol: one student is one websocket session -------------------------------------------------------
@dataclass
class Reply:
    """What one script run sent back: every widget id (a key given to a widget ends its id: `-<key>`), every
    text shown (markdown, alerts, exceptions), how it ended and how long it took."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)  # st.error, st.warning, st.info, st.success
    errors: list[str] = field(default_factory=list)  # st.error only
    status: str = ""
    seconds: float = 0.0
    query: str = ""  # the address's query string the page set, if it set one

    def id(self, key: str) -> str:
        found = [i for i in self.ids if i.endswith(f"-{key}")]
        if not found:
            raise KeyError(f"no widget with key {key!r} on the page")
        return found[0]

    def has(self, key: str) -> bool:
        return any(i.endswith(f"-{key}") for i in self.ids)

    def canvas_id(self) -> str:
        return next(i for i in self.ids if "canvas_" in i)

    @property
    def text(self) -> str:
        return "\n".join(self.texts)


def _element_texts(element) -> list[str]:
    which = element.WhichOneof("type")
    inner = getattr(element, which)
    if which in ("markdown", "alert", "text", "heading"):
        return [inner.body]
    if which == "exception":
        return [f"{inner.type}: {inner.message}"]
    return []


def _element_id(element) -> str | None:
    inner = getattr(element, element.WhichOneof("type"))
    return getattr(inner, "id", None) or None


class Student:
    """One browser tab as the server sees it: a websocket session that asks for script runs with widget states,
    as the page's JavaScript does. `query` is the address's query string (e.g. 'who=<token>')."""

    def __init__(self, url: str, query: str = "") -> None:
        self.url, self.query = url, query
        self.ws: websockets.ClientConnection | None = None

    async def __aenter__(self) -> Student:
        ws_url = self.url.replace("http", "ws", 1) + "/_stcore/stream"
        self.ws = await websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def run(
        self, widgets: Sequence[WidgetState] = (), page: str = "", timeout_s: float = REPLY_TIMEOUT_S
    ) -> Reply:
        """One script run of `page` ('' = Draw) with these widget states; its reply once it has finished."""
        back = BackMsg()
        back.rerun_script.query_string = self.query
        back.rerun_script.page_name = page
        back.rerun_script.widget_states.widgets.extend(widgets)
        assert self.ws is not None
        t0 = time.monotonic()
        await self.ws.send(back.SerializeToString())
        reply, deadline = Reply(), t0 + timeout_s
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), max(0.1, deadline - time.monotonic()))
            msg = ForwardMsg.FromString(raw)
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                reply.texts += _element_texts(element)
                if element.WhichOneof("type") == "alert":
                    reply.alerts.append(element.alert.body)
                    if element.alert.format == element.alert.ERROR:
                        reply.errors.append(element.alert.body)
                widget_id = _element_id(element)
                if widget_id:
                    reply.ids.append(widget_id)
            elif kind == "page_info_changed":
                reply.query = self.query = msg.page_info_changed.query_string
            elif kind == "script_finished":
                reply.status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
                if reply.status != "FINISHED_EARLY_FOR_RERUN":
                    reply.seconds = time.monotonic() - t0
                    return reply


def trigger(widget_id: str) -> WidgetState:
    return WidgetState(id=widget_id, trigger_value=True)


def text(widget_id: str, value: str) -> WidgetState:
    return WidgetState(id=widget_id, string_value=value)


def choice(widget_id: str, *values: str) -> WidgetState:
    state = WidgetState(id=widget_id)
    state.string_array_value.data.extend(values)
    return state


def canvas(widget_id: str, state: str) -> WidgetState:
    return WidgetState(id=widget_id, json_value=state)


def canvas_state(objects: list[dict], png: bytes) -> str:
    """The canvas component's state: Fabric.js objects and the PNG as a data URL, as streamlit-drawable-canvas
    sends them."""
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    return json.dumps({"drawing": {"raw": {"objects": objects, "background": "#000000"}, "data": url}})


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def digit_state(digit: str = "7") -> str:
    """A real drawing of `digit` (280x280 RGBA and its strokes)."""
    strokes = browser.DIGIT_STROKES[digit]
    objects = [
        {"type": "path", "stroke": "#ffffff", "strokeWidth": 20,
         "path": [["M" if i == 0 else "L", x * CANVAS_PX, y * CANVAS_PX] for i, (x, y) in enumerate(s)]}
        for s in strokes
    ]  # fmt: skip
    return canvas_state(objects, png_bytes(browser.stroke_image(strokes, CANVAS_PX)))


def big_png_state(side: int = 8000) -> str:
    """A black `side` x `side` PNG with one stroke: a few hundred kB that decode to side*side*4 bytes."""
    image = np.zeros((side, side), np.uint8)
    image[side // 4 : 3 * side // 4, side // 2 - side // 40 : side // 2 + side // 40] = 255
    return canvas_state([{"type": "path", "path": [["M", 10, 10], ["L", 200, 200]]}], png_bytes(image))


def long_strokes_state(megabytes: float, seed: int = 0) -> str:
    """A 280x280 drawing whose stroke list is about `megabytes` of JSON (a scripted client's, not a hand's)."""
    rng = np.random.default_rng(seed)
    points = int(megabytes * 1e6 / 24)  # about 24 bytes of JSON per ["L", x, y]
    path = [["L", round(float(x), 3), round(float(y), 3)] for x, y in rng.uniform(0, 280, (points, 2))]
    objects = [{"type": "path", "stroke": "#ffffff", "strokeWidth": 20, "path": [["M", 10, 10], *path]}]
    return canvas_state(objects, png_bytes(browser.stroke_image(browser.DIGIT_STROKES["7"], CANVAS_PX)))


# -- servers -----------------------------------------------------------------------------------------------
def server_pid(port: int) -> int:
    """The `streamlit run` process listening on `port` (found by its command line)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
                if b"streamlit" in b" ".join(cmd) and str(port).encode() in cmd:
                    return int(proc.name)
    raise RuntimeError(f"no streamlit process on port {port}")


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident now, peak resident so far) of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    home: Path


def prepare_home(root: Path, home: Path, settings: dict[str, str]) -> None:
    """A registry with these settings (`paused`, `limits`), written by the checkout under test."""
    code = (
        "import json, sys; from vitdemo.runs.store import Registry; r = Registry(sys.argv[1]); "
        "[r.set_setting(k, v) for k, v in json.loads(sys.argv[2]).items()]"
    )
    subprocess.run([sys.executable, "-c", code, str(home), json.dumps(settings)], cwd=root, check=True, timeout=120)


@contextlib.contextmanager
def serve(root: Path, env: dict[str, str] | None = None, settings: dict[str, str] | None = None) -> Iterator[Server]:
    """`streamlit run app.py` from `root` on a loopback port, VITDEMO_HOME in a temporary folder; always stopped."""
    with tempfile.TemporaryDirectory(prefix="vitdemo-trust-") as tmp:
        home = Path(tmp)
        server_env = {
            "VITDEMO_HOME": tmp,
            "VITDEMO_CHECKPOINTS": str(root / "checkpoints"),
            "VITDEMO_WORKER_IDLE_S": "2",
            **({"VITDEMO_DATA_DIR": os.environ["VITDEMO_DATA_DIR"]} if "VITDEMO_DATA_DIR" in os.environ else {}),
            **(env or {}),
        }
        server_env.setdefault("VITDEMO_TEACHER_PASSWORD", "")
        if settings:
            prepare_home(root, home, settings)
        with browser.serve_app(server_env, log_path=home / "streamlit.log", root=root) as url:
            yield Server(url, server_pid(int(url.rsplit(":", 1)[1])), home)


def count_rows(path: Path, query: str) -> int:
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return int(db.execute(query).fetchone()[0])
