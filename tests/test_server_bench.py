"""scripts/server_bench.py speaks Streamlit's websocket protocol as the Draw page does: checked against the real
server, so the figures it prints come from drawings the app really read (and a protocol change fails here)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import server_bench  # noqa: E402
from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402

pytestmark = pytest.mark.browser  # a real `streamlit run` server (no page is rendered)


async def _draw_clear_draw(url: str) -> list[server_bench.ScriptRun]:
    async with server_bench.connect(url) as ws:
        opened = await server_bench.script_run(ws, [])
        seven = WidgetState(id=opened.ids["canvas"], json_value=server_bench.canvas_state("7"))
        drawn = await server_bench.script_run(ws, [seven])
        clear = WidgetState(id=drawn.ids["Clear"], trigger_value=True)
        cleared = await server_bench.script_run(ws, [clear, seven])
        one = WidgetState(id=cleared.ids["canvas"], json_value=server_bench.canvas_state("1"))
        return [opened, drawn, cleared, await server_bench.script_run(ws, [one])]


def test_a_protocol_student_draws_clears_and_draws_again(app_url: str, mnist_checkpoints: Path) -> None:
    opened, drawn, cleared, again = asyncio.run(_draw_clear_draw(app_url))
    assert opened.status == "FINISHED_SUCCESSFULLY" and opened.answers == {}  # a blank canvas: no answer
    assert drawn.answers == {"ViT": "7", "CNN": "7"} and drawn.answer_s is not None
    assert cleared.answers == {} and cleared.ids["canvas"] != opened.ids["canvas"]  # Clear: a new, blank canvas
    assert again.answers == {"ViT": "1", "CNN": "1"}
