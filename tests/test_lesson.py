"""The guided lesson (issue 24): its path, the teacher's step kept on the server (only the teacher moves it,
checked in vitdemo.lesson.state with real SQLite), and every student's page showing it with a link; the Simple
view by default, the Expert view on the sidebar's switch, and the class default only the teacher sets."""

from __future__ import annotations

from pathlib import Path

import pytest
from apptest import open_as, texts
from streamlit.testing.v1 import AppTest

from vitdemo.lesson import state, steps
from vitdemo.runs import people
from vitdemo.runs.people import Actor, NotAllowed
from vitdemo.runs.store import Registry

REPO_ROOT = Path(__file__).resolve().parent.parent
TEACHER = Actor("person:999", "Ms Smith", teacher=True)


def test_the_path_runs_draw_look_fool_race_compare_with_one_sentence_a_step() -> None:
    assert [s.key for s in steps.STEPS] == ["draw", "look", "fool", "race", "compare"]
    for s in steps.STEPS:
        assert (REPO_ROOT / s.page).is_file(), s.page  # each step links to a real page
        assert s.sentence.endswith((".", "?")) and s.sentence[0].isupper()
    chain, at = [], steps.next_step(None)  # no lesson yet: "next" starts it
    while at is not None:
        chain.append(at.key)
        at = steps.next_step(at)
    assert chain == [s.key for s in steps.STEPS]
    assert steps.banner_text(steps.BY_KEY["look"]).startswith("Step 2 of 5 · Where they look: ")


def test_only_the_teacher_moves_the_lesson_and_sets_the_class_view(reg: Registry) -> None:
    ana = people.register(reg, "Ana").actor()
    assert state.current_step(reg) is None and state.class_view(reg) == "simple"
    with pytest.raises(NotAllowed, match="Only the teacher"):
        state.set_step(reg, "look", ana)
    assert state.current_step(reg) is None  # refused on the server: nothing changed
    assert state.set_step(reg, "look", TEACHER) == steps.BY_KEY["look"]
    assert state.current_step(reg) == steps.BY_KEY["look"]
    with pytest.raises(NotAllowed):
        state.set_step(reg, None, ana)  # a student cannot end it either
    with pytest.raises(ValueError, match="no lesson step"):
        state.set_step(reg, "dance", TEACHER)
    assert state.current_step(reg) == steps.BY_KEY["look"]
    with pytest.raises(NotAllowed):
        state.set_class_view(reg, "expert", ana)
    state.set_class_view(reg, "expert", TEACHER)
    assert state.class_view(reg) == "expert"
    state.set_step(reg, None, TEACHER)
    assert state.current_step(reg) is None


@pytest.fixture
def class_app(tmp_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A locked class server (a teacher password) with no checkpoints: the pages run light."""
    empty = tmp_path / "no-checkpoints"
    empty.mkdir()
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(empty))
    monkeypatch.setenv("VITDEMO_TEACHER_PASSWORD", "s3cret")
    return Registry(tmp_home)


def banner(at: AppTest) -> list[str]:
    return [m for m in texts(at, "markdown") if m.startswith("**Step ")]


@pytest.mark.parametrize("page", ["classset", "leaderboard", "train"])
def test_every_students_page_shows_the_teachers_step_with_a_link(class_app: Registry, page: str) -> None:
    at = open_as(page)
    assert banner(at) == []  # no lesson running: no banner
    state.set_step(class_app, "race", TEACHER)
    at.run()  # the banner's fragment reads the step again (in a browser: every few seconds)
    assert banner(at) == [f"**{steps.banner_text(steps.BY_KEY['race'])}**"]
    links = [link for link in at.get("page_link") if link.proto.label == "Go to Race"]
    assert len(links) == 1 and links[0].proto.page.endswith("race")
    assert not [b for b in at.button if b.key in ("lesson_next", "lesson_back")]  # a student moves nothing
    assert not [e for e in at.sidebar.expander if "Lesson" in e.label]


def test_the_teachers_next_moves_every_student_on(class_app: Registry) -> None:
    state.set_step(class_app, "draw", TEACHER)
    teacher = open_as("classset", password="s3cret")
    assert [e for e in teacher.sidebar.expander if "Lesson" in e.label]
    teacher.button(key="lesson_next").click().run()
    assert not teacher.exception, [e.value for e in teacher.exception]
    assert state.current_step(class_app) == steps.BY_KEY["look"]
    student = open_as("leaderboard")
    assert banner(student) == [f"**{steps.banner_text(steps.BY_KEY['look'])}**"]
    teacher.selectbox(key="lesson_pick").set_value("compare").run()  # or straight to a step from the sidebar
    assert state.current_step(class_app) == steps.BY_KEY["compare"]
    teacher.radio(key="lesson_view").set_value("expert").run()
    assert state.class_view(class_app) == "expert"
    fresh = open_as("classset")
    assert fresh.toggle(key="view_expert").value is True  # a new session starts in the class's view


def test_students_start_in_the_simple_view_and_switch_to_expert(class_app: Registry) -> None:
    at = open_as("train")
    assert at.toggle(key="view_expert").value is False
    assert not [m for m in at.metric if m.label == "Parameters"]  # no parameter counts in the Simple view
    assert [e for e in at.expander if e.label == "More settings"]  # the technical settings folded away
    at.toggle(key="view_expert").set_value(True).run()
    assert [m for m in at.metric if m.label == "Parameters"]
    assert not [e for e in at.expander if e.label == "More settings"]
    at.switch_page("app_pages/leaderboard.py").run()
    assert at.toggle(key="view_expert").value is True  # kept for the session, page to page
