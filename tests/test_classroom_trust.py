"""Issue 20, without a server: the teacher's role locked by default, wrong guesses counted and slowed down, names
that hold per person (look-alikes, reserved labels, names per device, rename, merge, block), a class-wide queue
cap, an idempotent class set, and the canvas's input bounded before it is decoded or kept. Each test fails on the
code before the issue. The same probes against a real server: tests/test_trust_server.py."""

from __future__ import annotations

import gc
import io
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from browser import DIGIT_STROKES, stroke_image
from PIL import Image
from streamlit import config
from streamlit.testing.v1 import AppTest

from vitdemo.classset import store as classset
from vitdemo.classset.store import ClassSet, Refused
from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.preprocess import canvas
from vitdemo.runs import admission, limits, people, queue, teacher
from vitdemo.runs.people import NameProblem, NotAllowed
from vitdemo.runs.store import OverLimit, Registry
from vitdemo.views import sketch

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = TrainConfig(
    model=CNNConfig(width=4, depth=1), epochs=1, batch_size=100, train_subset=300, val_size=200, device="cpu"
)
TEACHER = people.Actor("person:999", "Ms K", teacher=True)
FAST = admission.Estimator(lambda model, batch, device: 1e4, threads=1)
SEVEN = stroke_image(DIGIT_STROKES["7"])


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "home")


# -- names hold per person ----------------------------------------------------------------------------------
def test_look_alike_and_reserved_names_are_refused(reg: Registry) -> None:
    people.register(reg, "Ana")
    for twin in ("\u0410na", "ANA", " a n a ", "Ána", "\uff21na", "Ana\u200b"):  # Cyrillic А, spaced, accent, wide
        with pytest.raises(NameProblem):
            people.register(reg, twin)
    for label in ("Teacher", "T\u0435acher", "teacher 2", "shipped with the app", "command line", "no name", "admin"):
        with pytest.raises(NameProblem, match="the app uses itself"):
            people.register(reg, label)
    assert people.register(reg, "Ana K").name == "Ana K"  # an initial makes another name
    assert [m.name for m in people.roster(reg)] == ["Ana", "Ana K"]


def test_one_device_gives_a_few_names_and_a_new_name_renames(reg: Registry) -> None:
    first = people.register(reg, "Ben", address="10.0.0.7", max_per_address=2)
    people.register(reg, "Cy", address="10.0.0.7", max_per_address=2)
    with pytest.raises(NameProblem, match="already given 2 names"):
        people.register(reg, "Dee", address="10.0.0.7", max_per_address=2)
    assert people.register(reg, "Dee", address="10.0.0.8", max_per_address=2).name == "Dee"  # another device
    renamed = people.rename(reg, first.id, "Benji", first.actor())  # the same browser, a new name
    assert (renamed.id, renamed.token, renamed.name) == (first.id, first.token, "Benji")
    assert people.by_token(reg, first.token).name == "Benji" and len(people.roster(reg)) == 3
    with pytest.raises(NameProblem, match="already called cy"):
        people.rename(reg, first.id, "cy", first.actor())
    with pytest.raises(NotAllowed):
        people.rename(reg, first.id, "Bob", people.register(reg, "Eve").actor())  # not someone else's name


def test_the_teacher_merges_and_blocks_names(reg: Registry, tmp_path: Path) -> None:
    queue.set_limits(reg, limits.Limits(max_active_runs=2), TEACHER)  # her merged runs may count two
    ana, twin = people.register(reg, "Ana"), people.register(reg, "Ana phone")
    run_id = queue.submit(reg, TINY, twin.actor(), estimator=FAST)
    with pytest.raises(NotAllowed):
        people.merge(reg, twin.id, ana.id, ana.actor())
    people.merge(reg, twin.id, ana.id, TEACHER)
    assert reg.get_run(run_id).owner == ana.owner and people.by_token(reg, twin.token) == ana  # her phone is her
    assert [m.name for m in people.roster(reg)] == ["Ana"]
    assert people.register(reg, "Ana phone").name == "Ana phone"  # the merged name is free again

    people.set_blocked(reg, ana.id, True, TEACHER)
    blocked = people.by_token(reg, ana.token).actor()
    assert blocked.blocked and people.roster(reg)[0].blocked
    with pytest.raises(NotAllowed, match="blocked your name"):
        queue.submit(reg, TINY, blocked, estimator=FAST)
    with pytest.raises(NotAllowed, match="blocked your name"):
        classset.submit(ClassSet(tmp_path / "home"), SEVEN, 7, blocked)
    people.set_blocked(reg, ana.id, False, TEACHER)
    assert queue.submit(reg, TINY, people.by_token(reg, ana.token).actor(), estimator=FAST) > 0


def test_the_class_wide_cap_holds_however_many_names(reg: Registry) -> None:
    queue.set_limits(reg, limits.Limits(max_active_runs=2, max_class_runs=5), TEACHER)
    accepted, refusals = 0, set()
    for i in range(10):
        student = people.register(reg, f"Student {i}").actor()
        for _ in range(3):
            try:
                queue.submit(reg, TINY, student, estimator=FAST)
                accepted += 1
            except OverLimit as exc:
                refusals.add(exc.public.split(" (")[0].split(":")[0])
    assert accepted == 5 and len([r for r in reg.list_runs() if r.active]) == 5
    assert "The class queue is full" in refusals and "You already have 2 run(s) queued or running, the class limit" in {
        r.split(" (")[0] for r in refusals
    }
    assert queue.submit(reg, TINY, TEACHER, estimator=FAST) > 0  # the teacher is never limited


def test_an_older_registrys_people_get_name_keys_and_keep_their_names(tmp_path: Path) -> None:
    """A registry from before name keys, holding two names that are look-alikes: both stay."""
    home = tmp_path / "home"
    Registry(home).set_setting("paused", "0")  # a registry file, then its people table as it was before
    with sqlite3.connect(home / "registry.sqlite") as db:
        db.executescript(
            "DROP INDEX people_name_key; DROP INDEX people_address; ALTER TABLE people DROP COLUMN name_key; "
            "ALTER TABLE people DROP COLUMN address; ALTER TABLE people DROP COLUMN blocked; "
            "ALTER TABLE people DROP COLUMN merged_into;"
        )
        db.executemany(
            "INSERT INTO people (token, name, created_at) VALUES (?, ?, 1.0)", [("t1", "Ana"), ("t2", "\u0410na")]
        )
    reg = Registry(home)
    assert [p.name for p in (people.by_token(reg, "t1"), people.by_token(reg, "t2"))] == ["Ana", "\u0410na"]
    with sqlite3.connect(home / "registry.sqlite") as db:
        keys = [r[0] for r in db.execute("SELECT name_key FROM people ORDER BY id")]
    assert keys == ["ana", "ana#2"]
    with pytest.raises(NameProblem):
        people.register(reg, "ANA")


# -- the teacher's role -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("password", "address", "source"),
    [("pw", "0.0.0.0", "password"), (None, "127.0.0.1", "open"), (None, "localhost", "open"), (None, "::1", "open"),
     (None, None, "code"), (None, "0.0.0.0", "code"), (None, "192.168.1.20", "code")],
)  # fmt: skip
def test_the_teacher_role_is_locked_unless_only_this_computer_reaches_the_server(password, address, source) -> None:
    access = teacher.decide(password, address, lambda: "ABCD-EFGH-JKLM-NPQR")
    assert access.source == source and access.open == (source == "open")
    if source == "code":
        assert teacher.matches("abcd efgh jklm npqr", access) and not teacher.matches("ABCD-EFGH-JKLM-NPQS", access)
    code = teacher.new_code()
    assert len(code) == 19 and set(code.replace("-", "")) <= set(teacher.CODE_ALPHABET) and code != teacher.new_code()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_wrong_guesses_slow_down_per_session_and_for_the_server_and_lock_out() -> None:
    clock, logged = Clock(), []
    guard = teacher.GuessGuard(clock, logged.append)
    access = teacher.TeacherAccess("ninja", "password")
    verdicts = [guard.attempt("a", f"guess{i}", access) for i in range(6)]  # as fast as a script sends them
    assert [v.checked for v in verdicts] == [True] * teacher.SESSION_FREE + [False] * 3
    assert "Wait 2 seconds" in verdicts[-1].message and not guard.attempt("a", "ninja", access).unlocked  # not compared
    clock.now += 2.0
    assert guard.attempt("a", "ninja", access).unlocked  # after the wait, the right password works
    # many sessions: the server's own count makes everyone wait, then locks out
    checked = 0
    for i in range(200):
        clock.now += 0.05  # 20 guesses a second from 200 sessions
        checked += guard.attempt(f"s{i}", f"word{i}", access).checked
    assert checked <= teacher.SERVER_FREE + 2
    for _ in range(40):  # a patient attacker who waits out every delay
        clock.now += teacher.MAX_WAIT_S
        guard.attempt(f"p{clock.now}", "wrong", access)
    stats = guard.stats()
    assert stats.wrong_recent >= teacher.LOCKOUT_AFTER and stats.locked_until is not None
    assert "paused" in guard.attempt("fresh", "ninja", access).message  # 120 guesses never unlock
    guesses = ("guess", "word", "wrong", "ninja")  # every text tried above
    assert stats.wrong_total == len(logged) and not any(
        g in line.split("password")[1] for line in logged for g in guesses
    )
    clock.now += teacher.LOCKOUT_S + 1
    assert guard.attempt("fresh", "ninja", access).unlocked  # the lockout window ends


# -- the canvas --------------------------------------------------------------------------------------------------
def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def test_the_canvas_is_bounded_before_anything_is_decoded() -> None:
    real = canvas.decode_png(lambda: _png(SEVEN), 280)
    assert real.shape == (280, 280, 4)
    bomb = _png(np.zeros((8000, 8000), np.uint8))  # 0.1 MB that would decode to 64 MB (256 MB as RGBA)
    t0 = time.perf_counter()
    with pytest.raises(canvas.CanvasRefused, match="8000x8000 pixels"):
        canvas.decode_png(lambda: bomb, 280)
    assert time.perf_counter() - t0 < 0.5
    with pytest.raises(canvas.CanvasRefused, match="not a PNG"):
        canvas.decode_png(lambda: b"GIF89a" + bytes(100), 280)
    with pytest.raises(canvas.CanvasRefused, match="not a PNG"):
        canvas.decode_png(lambda: (_ for _ in ()).throw(ValueError("no base64")), 280)

    stroke = {"type": "path", "path": [["M", 1.5, 2.5], *(["Q", 1.0, 2.0, 3.0, 4.0] for _ in range(200))]}
    objects, weight = canvas.check_strokes([stroke] * 20)  # a coloured-in canvas is fine
    assert len(objects) == 20 and 100_000 < weight < 300_000
    huge = [{"type": "path", "path": [["L", 1.0, 2.0]] * 600_000}]  # about 10 MB of JSON
    t0 = time.perf_counter()
    with pytest.raises(canvas.CanvasRefused, match="larger than a canvas takes"):
        canvas.check_strokes(huge)
    many = [{"type": "path", "path": [1.5] * 250_000}]  # under the items' lower bound: walked until it passes
    with pytest.raises(canvas.CanvasRefused, match="larger than a canvas takes"):
        canvas.check_strokes(many)
    assert time.perf_counter() - t0 < 0.5  # refused as soon as the bound is passed: no walk over all of it
    for bad in ([stroke] * 501, [["not", "an", "object"]], [{"a": {"b": [[[[[[[[[1]]]]]]]]]}}], "text"):
        with pytest.raises(canvas.CanvasRefused):
            canvas.check_strokes(bad)


class Session:
    """Stands for a Streamlit session: the budget holds it weakly."""


def test_the_server_holds_a_bounded_amount_of_large_drawings() -> None:
    budget = canvas.CanvasBudget(total=1000, small=100)
    a, b, c = Session(), Session(), Session()
    assert budget.admit(a, 600) and not budget.admit(b, 600)  # over the server's total: refused
    assert budget.admit(b, 50)  # a drawing of a few strokes always passes
    assert budget.admit(a, 900) and budget.held == 900  # a session's new state replaces its last
    del a  # Streamlit let the session go
    gc.collect()
    assert budget.admit(c, 600) and budget.held == 600


def test_a_sessions_drawing_history_stays_within_its_budget() -> None:
    rng = np.random.default_rng(0)
    book = sketch.Sketchbook()
    points = [["L", float(x), float(y)] for x, y in rng.uniform(0, 280, (20_000, 2))]  # random: compresses badly
    for i in range(12):  # strokes near the most a canvas takes: about 0.3 MB each once packed
        book = book.record(({"type": "path", "path": points, "n": i},), SEVEN)
        if i == 4:
            book = book.clear()  # into the gallery
    assert len(book.steps) + len(book.gallery) < 12  # the oldest went
    assert book.nbytes <= sketch.MAX_BOOK_BYTES and book.current is not None  # the newest drawing always stays
    assert book.current.objects[0]["n"] == 11 and np.array_equal(book.current.image, SEVEN)


# -- the class set ------------------------------------------------------------------------------------------------
def test_the_same_drawing_twice_is_one_row(tmp_path: Path) -> None:
    store = ClassSet(tmp_path / "home", max_per_minute=100)
    ana, ben = people.Actor("person:1", "Ana"), people.Actor("person:2", "Ben")
    results: list[object] = []

    def tap() -> None:
        try:
            results.append(classset.submit(store, SEVEN, 7, ana))
        except Refused as exc:
            results.append(exc)

    threads = [threading.Thread(target=tap) for _ in range(4)]  # a double tap, two tabs, a script
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.id for r in results if isinstance(r, classset.Submission)} == {1} and store.count() == 1
    assert len(list(store.image_dir.glob("*.png"))) == 2  # the repeats left no file
    with pytest.raises(Refused, match="already in the class set"):
        classset.submit(store, SEVEN, 7, ben)
    assert classset.reassign(store, "person:1", "person:3", "Ana L") == 1 and store.get(1).who == "Ana L"


# -- the app (no models loaded: the sidebar's identity and the teacher's class settings only) -------------------
def identity_app() -> None:
    """The sidebar's identity, then the teacher's class settings, or the name form for anyone else."""
    import streamlit as st

    from vitdemo.ui import classroom, people
    from vitdemo.ui.resources import registry

    with st.sidebar:
        people.sidebar_identity()
    acting = people.actor()
    if acting is not None and acting.teacher:
        classroom.class_settings(registry())
    elif acting is None:
        people.name_form()


def test_with_no_password_a_network_server_locks_the_teacher_role_behind_a_code(
    tmp_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vitdemo.ui import people as ui_people

    monkeypatch.delenv("VITDEMO_TEACHER_PASSWORD", raising=False)
    monkeypatch.setattr(ui_people, "_process_code", lambda: "K7QM-3XNA-PW2D-HT9C")
    monkeypatch.setattr(ui_people, "_announce", ui_people._announce.__wrapped__)  # printed here, whatever ran before
    config.set_option("server.address", "0.0.0.0")
    student = AppTest.from_function(identity_app, default_timeout=30).run()
    assert not student.exception
    assert [t.label for t in student.sidebar.text_input] == ["Teacher code"]  # locked, and says with what
    assert [t.key for t in student.text_input if t.key == "who_name"]  # a name is asked: not the teacher
    out = capsys.readouterr().out
    assert "Teacher code: K7QM-3XNA-PW2D-HT9C" in out and "?teacher=K7QM-3XNA-PW2D-HT9C" in out  # in the terminal

    link = AppTest.from_function(identity_app, default_timeout=30)
    link.query_params["teacher"] = "k7qm-3xna-pw2d-ht9c"  # the teacher link, as typed or opened
    link.run()
    assert [b.key for b in link.sidebar.button if b.key == "teacher_lock"] and "teacher" not in link.query_params


def test_the_teacher_sees_who_joined_and_renames_merges_or_blocks_a_name(
    tmp_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VITDEMO_TEACHER_PASSWORD", "s3cret")
    reg = Registry(tmp_home)
    ana, phone = people.register(reg, "Ana", address="10.0.0.5"), people.register(reg, "Ana phone")
    at = AppTest.from_function(identity_app, default_timeout=30).run()
    at.text_input(key="teacher_pw").input("s3cret")
    at.button(key="teacher_unlock").click().run()
    at.text_input(key="who_name").input("Ms K")
    at.button(key="who_save").click().run()  # the teacher's own name (no device limit for the teacher)
    table = next(d.value for d in at.dataframe if "device" in d.value.columns)
    assert list(table["name"]) == ["Ana", "Ana phone", "Ms K"] and list(table["device"])[0] == "10.0.0.5"
    assert any("No wrong teacher password" in c.value for c in at.caption)

    at.selectbox(key="roster_pick").set_value(ana.id).run()
    at.text_input(key="roster_name").input("Ana L")
    at.button(key="roster_rename").click().run()
    at.button(key="roster_block").click().run()
    assert people.by_token(reg, ana.token) == people.Person(ana.id, ana.token, "Ana L", blocked=True)
    at.selectbox(key="roster_pick").set_value(phone.id).run()
    at.selectbox(key="roster_into").set_value(next(m for m in people.roster(reg) if m.id == ana.id)).run()
    at.button(key="roster_merge").click().run()
    assert not at.exception and people.by_token(reg, phone.token).id == ana.id  # her phone is her now
