"""The Race page under Streamlit's AppTest, on tiny models: Play shows a trained point and moves the step counters,
a knob turn is marked on the chart with its sentence, pause; a student watches the class race read-only and races
their own under the teacher's cap; Present mode lives in the address."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vitdemo.race import engine
from vitdemo.race.limits import RaceCap, set_cap
from vitdemo.runs.people import CLI
from vitdemo.runs.store import Registry
from vitdemo.ui import race as race_ui

REPO_ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("test_race_engine")  # tests/ is on the path (conftest): the tiny config lives there
from test_race_engine import CONFIG, KNOBS  # noqa: E402


@pytest.fixture
def env(tmp_home: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """A private registry; every race the page makes is a tiny one, and is stopped afterwards."""
    monkeypatch.setenv("VITDEMO_DATA_DIR", str(data_dir))
    monkeypatch.setattr(engine, "RaceConfig", lambda: CONFIG)
    monkeypatch.setattr(engine, "Knobs", lambda: KNOBS)
    monkeypatch.setattr(race_ui, "Knobs", lambda: KNOBS)
    race_ui.shared.clear()
    yield Registry(tmp_home)
    engine.close_all(10.0)
    race_ui.shared.clear()


def open_race(**env: str) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("app_pages/race.py").run()
    assert not at.exception, [e.value for e in at.exception]
    race = race_ui.shared().current
    assert race is not None
    race.wait(lambda v: v.state == "ready", 30)
    at.run()  # the fragment's next refresh: the race is ready
    return at


def html_of(at: AppTest, cls: str) -> list[str]:
    """The markdown and st.html bodies that hold an element of class `cls`."""
    bodies = [m.value for m in at.markdown] + [h.proto.body for h in at.get("html")]
    return [b for b in bodies if cls in b]


def test_play_shows_a_point_and_a_knob_turn_is_marked(env: Registry) -> None:
    """In the Simple view (a student's default) in plain words, the technical names in the help; in the Expert
    view the technical words."""
    at = open_race()
    assert "Ready" in html_of(at, "vd-race-status")[0]
    at.button(key="race_play").click().run()
    assert "Training" in html_of(at, "vd-race-status")[0]
    sides = html_of(at, '<p class="vd-race-head">')
    assert len(sides) == 2 and all("pictures seen" in s and "step " not in s for s in sides), sides
    assert all(re.search(r"(CNN|ViT) \d+\.\d%</b>", s) for s in sides)  # a trained, validated point is in
    lr = at.select_slider(key="race_lr")
    assert lr.label == "Learning speed" and "Learning rate: AdamW" in lr.help
    lr.set_value(KNOBS.lr * 10).run()  # 2e-3 -> 2e-2
    (note,) = at.info
    assert note.value.startswith("**Learning speed ×10** at ") and "watch the mistakes jump" in note.value
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [a["text"] for a in spec["layout"]["annotations"]] == ["Learning speed ×10"]
    assert spec["layout"]["yaxis"]["title"]["text"] == "mistakes"
    at.session_state["view_expert"] = True
    at.run()
    (note,) = at.info
    assert note.value.startswith("**lr ×10** at ") and "watch the loss jump" in note.value
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [a["text"] for a in spec["layout"]["annotations"]] == ["lr ×10"]
    assert spec["layout"]["yaxis"]["title"]["text"] == "training loss"
    assert {t["line"]["color"] for t in spec["data"]} == {"#5b8def", "#ff7a45"}
    assert at.select_slider(key="race_lr").label == "Learning rate"
    assert all("step " in s for s in html_of(at, '<p class="vd-race-head">'))
    at.button(key="race_pause").click().run()
    race = race_ui.shared().current
    assert race.sync().state == "paused"
    at.run()
    assert "Paused" in html_of(at, "vd-race-status")[0]
    assert not at.exception


def test_a_student_watches_the_class_race_and_races_under_the_cap(
    env: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VITDEMO_TEACHER_PASSWORD", "secret")
    at = open_race()
    assert [b.key for b in at.button if b.key and b.key.startswith("race_")] == []  # no Play, Step, Reset, Save
    assert not at.select_slider  # no knobs: the race's settings as a table
    (table,) = html_of(at, '<table class="vd-race-knobs">')
    assert "<td>Learning speed</td><td><b>0.002</b></td>" in table  # the Simple view's words
    set_cap(env, RaceCap(student_races=0), CLI)
    at.segmented_control(key=race_ui.MODE_KEY).set_value("mine").run()
    assert any("switched students' own races off" in i.value for i in at.info)
    set_cap(env, RaceCap(student_races=1, max_images=2000), CLI)
    at.run()
    assert at.button(key="race_play") is not None
    sizes = at.select_slider(key="race_train_size")
    assert not sizes.disabled and sizes.options[-1] == "2,000"  # the teacher's cap on the training set
    mine = at.session_state[race_ui._MINE]
    assert mine is not race_ui.shared().current and mine.gate is not None


def test_present_mode_is_kept_in_the_address(env: Registry) -> None:
    at = open_race()
    at.toggle(key=race_ui.PRESENT_KEY).set_value(True).run()
    assert at.query_params.get("present") == "1"
    at.toggle(key=race_ui.PRESENT_KEY).set_value(False).run()
    assert "present" not in at.query_params
    assert not at.exception
