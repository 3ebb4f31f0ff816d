"""Issue 20's probes against a real `streamlit run` server, as a mischievous student's script would send them over
Streamlit's own websocket protocol (scripts/ws_student.py's `Student`; no browser renders anything). One server
for the module, loopback only, a teacher password set and the queue paused (nothing trains). Each test fails on
the code before the issue: the canvas's PNG was decoded whatever its size, guesses were compared as fast as they
came, every session could make a name, and the class set stored a drawing once per tab."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import trust_probes as probes  # noqa: E402
import ws_student as ws  # noqa: E402
from ws_student import Student, canvas, choice, trigger  # noqa: E402

from vitdemo.runs import people  # noqa: E402
from vitdemo.runs.store import Registry  # noqa: E402

pytestmark = pytest.mark.browser  # a real `streamlit run` server (no page is rendered)
PASSWORD = "ninja"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, checkpoints_dir: Path, mnist_checkpoints: Path
) -> Iterator[ws.Server]:
    home = tmp_path_factory.mktemp("trust-home")
    reg = Registry(home)
    reg.set_setting("paused", "1")  # queued runs stay queued: nothing trains on the test machine
    reg.set_setting("limits", json.dumps({"max_active_runs": 2, "max_params": 0, "max_epochs": 0, "max_minutes": 0}))
    env = {
        "VITDEMO_HOME": str(home),
        "VITDEMO_DATA_DIR": str(data_dir),
        "VITDEMO_CHECKPOINTS": str(checkpoints_dir),
        "VITDEMO_TEACHER_PASSWORD": PASSWORD,
    }
    with ws.browser.serve_app(env, log_path=home / "streamlit.log") as url:
        yield ws.Server(url, ws.server_pid(int(url.rsplit(":", 1)[1])), home)


async def _draw(url: str, digit: str) -> ws.Reply:
    async with Student(url) as me:
        return await me.run([canvas((await me.run()).canvas_id(), ws.digit_state(digit))])


async def _canvas_attack(url: str, state: str) -> ws.Reply:
    async with Student(url) as bad:
        return await bad.run([canvas((await bad.run()).canvas_id(), state)])


def test_a_hostile_canvas_is_refused_in_one_sentence_before_it_costs_memory(server: ws.Server) -> None:
    warm = asyncio.run(_draw(server.url, "7"))  # the models are loaded
    assert warm.errors == [] and "ViT predicts 7" in warm.text
    before = ws.memory_mb(server.pid)[0]
    bomb = asyncio.run(_canvas_attack(server.url, ws.big_png_state(8000)))
    assert bomb.seconds < 10 and len(bomb.errors) == 1 and "8000x8000 pixels" in bomb.errors[0]  # one sentence
    strokes = asyncio.run(_canvas_attack(server.url, ws.long_strokes_state(0.8)))
    assert strokes.errors == ["That drawing's strokes are larger than a canvas takes (600 kB): press Clear."]
    with pytest.raises(websockets.ConnectionClosed):  # 12.5 MB: Streamlit closes the socket before parsing it
        asyncio.run(_canvas_attack(server.url, ws.long_strokes_state(12.5)))
    assert ws.memory_mb(server.pid)[0] - before < 150  # before: +1,300 MB at the peak, +400 MB kept
    classmate = asyncio.run(_draw(server.url, "1"))
    assert classmate.errors == [] and "CNN predicts 1" in classmate.text  # a classmate still draws


async def _names(url: str, n: int) -> list[str]:
    return await asyncio.gather(*(probes.name_and_train(url, f"Student {i}", 3) for i in range(n)))


def test_names_from_one_computer_hold_as_one_device(server: ws.Server) -> None:
    told = asyncio.run(_names(server.url, 5))
    db = server.home / "registry.sqlite"
    assert ws.count_rows(db, "SELECT COUNT(*) FROM people") == 3  # the default: three names per device
    assert ws.count_rows(db, "SELECT COUNT(*) FROM runs WHERE status = 'queued'") == 6  # 2 each, not 10
    assert sum("already given 3 names" in t for t in told) == 2  # the other two were told why, in one sentence


async def _submit(url: str, token: str) -> ws.Reply:
    async with Student(url, query=f"who={token}") as me:
        reply = await me.run()
        drawing = canvas(reply.canvas_id(), ws.digit_state("7"))
        reply = await me.run([drawing])
        label = choice(reply.id("cs_label_draw"), "7")
        reply = await me.run([drawing, label])
        return await me.run([drawing, label, trigger(reply.id("cs_submit_draw"))])


def test_the_same_drawing_from_three_tabs_is_one_row(server: ws.Server) -> None:
    reg = Registry(server.home)
    cleo, dan = people.register(reg, "Cleo"), people.register(reg, "Dan")
    replies = [asyncio.run(_submit(server.url, cleo.token)) for _ in range(3)]
    assert all("Added to the class set as drawing #1" in r.text for r in replies)  # the same row each time
    path = server.home / "classset" / "classset.sqlite"
    assert ws.count_rows(path, "SELECT COUNT(*) FROM submissions") == 1
    other = asyncio.run(_submit(server.url, dan.token))
    assert any("already in the class set (drawing #1)" in a for a in other.errors)


async def _guessing(url: str) -> tuple[list[tuple[int, int, float, bool]], tuple[int, int, float, bool]]:
    wrong = await asyncio.gather(*(probes.guess(url, [f"guess{s}{i}" for i in range(8)], 30.0) for s in range(4)))
    return wrong, await probes.guess(url, [PASSWORD], 30.0)


def test_teacher_guesses_slow_down_and_the_right_one_waits_too(server: ws.Server) -> None:
    """Last in the module: it leaves the server's guard waiting."""
    wrong, right = asyncio.run(_guessing(server.url))
    assert sum(sent for sent, *_ in wrong) == 32
    assert sum(checked for _, checked, *_ in wrong) <= 12  # 3 per session at most, 10 for the server
    assert right[3] is False  # the password itself, after them, waits its turn: a dictionary never gets there
    log = (server.home / "streamlit.log").read_text()
    assert "a wrong teacher password was tried" in log and "guess0" not in log  # counted, never with its text
