"""The class set's storage: real SQLite, real PNG files, real threads. Submissions survive a restart, bad ones are
refused with nothing stored, the rate limit and the cap hold under concurrency, and only the teacher deletes."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from browser import DIGIT_STROKES, stroke_image
from PIL import Image

from vitdemo.classset import store as classset
from vitdemo.classset.store import Answer, ClassSet, ClassSetError, Refused, SubmissionNotFound
from vitdemo.preprocess.pipeline import preprocess
from vitdemo.runs.people import HOME, Actor, NotAllowed

ANA = Actor("person:1", "Ana")
BEN = Actor("person:2", "Ben")
TEACHER = Actor("person:3", "Ms K", teacher=True)
SEVEN = stroke_image(DIGIT_STROKES["7"])  # (280, 280, 4) RGBA, white on black, as the canvas sends it
ONE = stroke_image(DIGIT_STROKES["1"])
OTHER_ONE = stroke_image(DIGIT_STROKES["1"], width=26)
SEVENS = [stroke_image(DIGIT_STROKES["7"], width=w) for w in (26, 14, 24, 16)]  # other drawings of a 7: pen widths
FOOLED_VIT = (Answer("vit", "shipped vit_mnist", 1, 0.81), Answer("cnn", "shipped cnn_mnist", 7, 0.99))


@pytest.fixture
def store(tmp_path: Path) -> ClassSet:
    return ClassSet(tmp_path / "home")


def files(store: ClassSet) -> list[str]:
    return sorted(p.name for p in store.image_dir.glob("*")) if store.image_dir.exists() else []


def test_a_submission_is_a_row_and_two_files_that_survive_a_restart(store: ClassSet) -> None:
    assert store.list() == [] and not store.db_path.exists()  # reading creates nothing
    sub = classset.submit(store, SEVEN, 7, ANA, FOOLED_VIT, page="draw", now=1000.0)
    assert (sub.id, sub.label, sub.owner, sub.who, sub.page, sub.dataset) == (1, 7, "person:1", "Ana", "draw", "mnist")

    again = ClassSet(store.home)  # a new process: everything comes back from the files
    (found,) = again.list()
    assert found == sub and found.fooled("vit") and not found.fooled("cnn") and found.answer("cnn").prob == 0.99
    assert np.array_equal(np.array(Image.open(again.image_dir / found.drawing)), SEVEN)  # the drawing as sent
    expected = classset.input_uint8(preprocess(SEVEN).image)  # (28, 28) uint8, ink 255 on 0: the MNIST way
    assert np.array_equal(again.input_image(found), expected) and expected.max() == 255 and expected[0, 0] == 0
    assert files(again) == sorted([found.drawing, found.input])
    assert again.version() == 1 and again.count() == 1 and again.count("fashion") == 0
    journal = store._file  # the shared dbfile machinery: WAL, set when the file was created
    with journal.read() as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("label", [10, -1, True, "7", 7.0, None])
def test_a_label_outside_0_to_9_is_refused_and_nothing_is_stored(store: ClassSet, label: object) -> None:
    with pytest.raises(Refused, match="Pick the digit you drew"):
        classset.submit(store, SEVEN, label, ANA)
    assert store.list() == [] and files(store) == []


def test_a_blank_canvas_a_speck_and_noise_are_refused_with_what_to_do(store: ClassSet) -> None:
    blank = np.zeros((280, 280, 4), np.uint8)
    blank[..., 3] = 255
    speck = blank.copy()
    speck[140:143, 140:143, :3] = 255
    noise = (np.random.default_rng(0).random((280, 280)) * 255).astype(np.uint8)
    assert preprocess(noise).not_digit  # the flag the refusal reads
    cases = [(blank, "canvas is blank"), (None, "canvas is blank"), (speck, "dot or a speck"), (noise, "not look like")]
    for image, message in cases:
        with pytest.raises(Refused, match=message):
            classset.submit(store, image, 3, ANA)
    assert store.list() == [] and files(store) == []


def test_each_person_may_add_a_few_drawings_a_minute(tmp_path: Path) -> None:
    store = ClassSet(tmp_path, max_per_minute=2)
    classset.submit(store, SEVEN, 7, ANA, now=100.0)
    classset.submit(store, ONE, 1, ANA, now=110.0)
    with pytest.raises(Refused, match="2 drawings in the last minute"):
        classset.submit(store, SEVENS[0], 7, ANA, now=150.0)
    classset.submit(store, SEVENS[0], 7, BEN, now=150.0)  # someone else is not held back
    classset.submit(store, SEVENS[1], 7, ANA, now=161.0)  # a minute after the first
    assert [s.who for s in store.list()] == ["Ana", "Ben", "Ana", "Ana"]
    assert len(files(store)) == 8  # the refused one left no file


def test_the_set_has_a_cap(tmp_path: Path) -> None:
    store = ClassSet(tmp_path, max_total=2)
    classset.submit(store, SEVEN, 7, ANA)
    classset.submit(store, ONE, 1, BEN)
    with pytest.raises(Refused, match="class set is full"):
        classset.submit(store, SEVENS[0], 7, TEACHER)
    assert store.count() == 2


def test_quick_double_submits_cannot_both_pass_the_limit(tmp_path: Path) -> None:
    store = ClassSet(tmp_path, max_per_minute=1)
    results: list[object] = []

    def tap(image: np.ndarray) -> None:
        try:
            results.append(classset.submit(store, image, 7, ANA))
        except Refused as exc:
            results.append(exc)

    threads = [threading.Thread(target=tap, args=(image,)) for image in SEVENS]  # four different drawings
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, classset.Submission) for r in results) == 1
    assert store.count() == 1 and len(files(store)) == 2  # the refused taps removed their files


def test_only_the_teacher_deletes_and_the_files_go_too(store: ClassSet) -> None:
    sub = classset.submit(store, SEVEN, 7, ANA, FOOLED_VIT)
    keep = classset.submit(store, ONE, 1, BEN)
    with pytest.raises(NotAllowed, match="Only the teacher"):
        classset.delete(store, sub.id, ANA)  # not even the one who drew it
    assert store.count() == 2
    classset.delete(store, sub.id, TEACHER)
    classset.delete(ClassSet(store.home), keep.id, HOME)  # at home (no password) everyone is the teacher
    assert store.list() == [] and files(store) == [] and store.version() == 4
    with store.reading() as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 0  # cascaded
    with pytest.raises(SubmissionNotFound, match="no submission #1"):
        classset.delete(store, sub.id, TEACHER)


def test_a_failed_insert_leaves_no_file_and_an_orphan_file_is_ignored(store: ClassSet) -> None:
    classset.submit(store, SEVEN, 7, ANA)
    (store.image_dir / "0123456789abcdef.png").write_bytes(b"left by a crash before its row")  # an orphan
    store.db_path.write_bytes(b"not a database at all, but long enough to be read as a file header..." * 3)
    with pytest.raises(ClassSetError) as caught:
        classset.submit(store, ONE, 1, BEN)
    assert "class set" in caught.value.public and "registry" not in caught.value.public
    assert str(store.home) not in caught.value.public  # no server path for a browser
    assert len(files(store)) == 3  # the first submission's two files and the orphan: nothing new

    fresh = ClassSet(store.home / "other")
    classset.submit(fresh, SEVEN, 7, ANA)
    (fresh.image_dir / "fedcba9876543210-28.png").write_bytes(b"orphan")
    assert [s.id for s in fresh.list()] == [1]  # rows only: the orphan is not a submission


def test_a_huge_upload_is_stored_shrunk(store: ClassSet) -> None:
    photo = np.full((1500, 3000), 255, np.uint8)
    photo[500:1000, 1400:1480] = 0  # a dark "1" on white paper
    sub = classset.submit(store, photo, 1, ANA)
    with Image.open(store.image_dir / sub.drawing) as img:
        assert img.size == (classset.MAX_DRAWING_PX, classset.MAX_DRAWING_PX // 2)


def test_groups_and_counts(store: ClassSet) -> None:
    a = classset.submit(store, SEVEN, 7, ANA, FOOLED_VIT)
    b = classset.submit(store, ONE, 1, BEN, [Answer("vit", "v", 7, 0.6), Answer("cnn", "c", 7, 0.7)])
    c = classset.submit(store, OTHER_ONE, 1, ANA, [Answer("vit", "v", 1, 0.9)])
    subs = store.list()
    assert [s.id for s in classset.fooled(subs, ["vit"])] == [b.id, a.id]
    assert [s.id for s in classset.fooled(subs, ["vit", "cnn"])] == [b.id]
    assert not c.fooled("cnn")  # no CNN answer: not fooled


def test_the_class_wall_reads_the_newest_and_counts_who_was_fooled(store: ClassSet) -> None:
    from vitdemo.views import classset as views

    assert store.fooled_counts("mnist") == {"": 0} and store.latest("mnist", 8) == []
    assert views.wall_text(store.fooled_counts("mnist")).startswith("No class drawings yet")
    a = classset.submit(store, SEVEN, 7, ANA, FOOLED_VIT)
    b = classset.submit(store, ONE, 1, BEN, [Answer("vit", "v", 7, 0.6), Answer("cnn", "c", 7, 0.7)])
    c = classset.submit(store, OTHER_ONE, 1, ANA, [Answer("vit", "v", 1, 0.9)])
    classset.submit(store, SEVENS[0], 7, BEN, FOOLED_VIT, dataset="fashion")  # another dataset: not on this wall
    assert [s.id for s in store.latest("mnist", 2)] == [c.id, b.id]
    counts = store.fooled_counts("mnist")
    assert counts == {"": 3, "vit": 2, "cnn": 1}
    assert views.wall_text(counts) == "3 drawings · fooled the ViT 2 · the CNN 1"
    tile = views.wall_tile_html(None, a)
    assert 'class="vd-wrong">ViT ✗' in tile and 'class="vd-right">CNN ✓' in tile and "a 7: ViT read 1" in tile
    assert "CNN" not in views.wall_tile_html(None, c)  # no CNN answer: no mark
    html = views.wall_html("<b>x</b>", [tile])
    assert "&lt;b&gt;x" in html and html.count('class="vd-wall-tile"') == 1
