"""The Class set page and the "stump the model" widget under Streamlit's AppTest, against a private
VITDEMO_HOME and the shipped checkpoints: galleries, the class-set leaderboard, the teacher's delete and export,
and a submission from a drawing the real models answered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from apptest import frame_with, open_page, texts
from browser import DIGIT_STROKES, stroke_image
from streamlit.testing.v1 import AppTest

from vitdemo.classset import store as classset
from vitdemo.classset.store import Answer, ClassSet
from vitdemo.runs.people import Actor
from vitdemo.views.charts import literal_markdown

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 90
NAME = "**Zoë** [x](http://e.x)"  # anyone's input: shown as typed, never as markdown


@pytest.fixture
def env(shipped_env: Any, mnist_checkpoints: Path) -> ClassSet:
    return ClassSet(shipped_env(mnist_checkpoints).home)


def open_classset() -> AppTest:
    return open_page("classset", timeout=TIMEOUT_S)


def fill(store: ClassSet) -> None:
    fooling = [Answer("vit", "shipped vit_mnist", 1, 0.8), Answer("cnn", "shipped cnn_mnist", 7, 0.99)]
    classset.submit(store, stroke_image(DIGIT_STROKES["7"]), 7, Actor("person:1", NAME), fooling)
    right = [Answer("vit", "shipped vit_mnist", 1, 0.9), Answer("cnn", "shipped cnn_mnist", 1, 0.99)]
    classset.submit(store, stroke_image(DIGIT_STROKES["1"]), 1, Actor("person:2", "Ben"), right)


def test_an_empty_class_set_says_how_to_fill_it(env: ClassSet) -> None:
    at = open_classset()
    assert any("No drawings yet" in t for t in texts(at, "info"))
    assert not env.db_path.exists()


def test_the_teacher_sees_the_galleries_the_scores_and_deletes(env: ClassSet) -> None:
    fill(env)
    at = open_classset()
    captions = texts(at, "caption")
    assert literal_markdown(f"#1 · a 7 by {NAME}") in captions  # the ViT gallery first: drawing #1 fooled it
    assert not any("Ben" in c for c in captions)  # #2 fooled nobody
    assert at.segmented_control(key="cs_gallery").value == "vit"
    at.segmented_control(key="cs_gallery").set_value("all").run()
    assert literal_markdown("#2 · a 1 by Ben") in texts(at, "caption")

    scores = frame_with(at, "class-set accuracy")
    # every MNIST model the app has (networks, fine-tunes, scikit-learn files), each scored on the two drawings
    assert {"cnn-mnist-lean", "vit-mnist-100", "logreg-mnist-c0.1"} <= set(scores["name"])
    assert set(scores["drawings"]) == {2} and scores["class-set accuracy"].notna().all()
    people = frame_with(at, "who")
    assert set(people["who"]) == {NAME, "Ben"}  # plain cells
    assert at.download_button(key="cs_export").label == "Download the class set (.zip)"

    at.button(key="cs_delete_1").click().run()
    assert "Drawing #1 was deleted from the class set." in texts(at, "success")
    assert [s.id for s in env.list()] == [2]
    assert literal_markdown(f"#1 · a 7 by {NAME}") not in texts(at, "caption")


def test_a_student_sees_the_set_but_cannot_delete_or_export(env: ClassSet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITDEMO_TEACHER_PASSWORD", "s3cret")
    fill(env)
    at = open_classset()
    assert literal_markdown(f"#1 · a 7 by {NAME}") in texts(at, "caption")
    assert not [b for b in at.button if str(b.key).startswith("cs_delete_")]
    assert not [b for b in at.get("download_button") if b.key == "cs_export"]


def widget_app() -> None:
    """A page that draws a 7, has both shipped models answer it and offers the submit widget."""
    import sys

    sys.path.insert(0, "tests")
    from browser import DIGIT_STROKES, stroke_image

    from vitdemo.explain.inference import analyze
    from vitdemo.ui import classset as classset_ui
    from vitdemo.ui import shell

    models, _ = shell.load_models(shell.selection())
    image = stroke_image(DIGIT_STROKES["7"])
    classset_ui.submit_drawing("draw", image, analyze(image, models, explain=False))


def test_the_widget_submits_a_drawing_with_both_answers(env: ClassSet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    at = AppTest.from_function(widget_app, default_timeout=TIMEOUT_S).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.button(key="cs_submit_draw").disabled  # no label picked yet
    at.segmented_control(key="cs_label_draw").set_value(7).run()
    at.button(key="cs_submit_draw").click().run()
    assert texts(at, "success") == ["Added to the class set as drawing #1. No model was fooled: they all read a 7."]
    assert at.button(key="cs_submit_draw").disabled and at.button(key="cs_submit_draw").label == "Submitted"
    (sub,) = env.list()
    assert sub.label == 7 and sub.page == "draw" and sub.owner == "home"
    assert {(a.kind, a.model, a.label) for a in sub.answers} == {
        ("vit", "shipped vit_mnist", 7),
        ("cnn", "shipped cnn_mnist", 7),
    }


def test_a_student_without_a_name_gives_it_before_submitting(env: ClassSet, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITDEMO_TEACHER_PASSWORD", "s3cret")
    monkeypatch.chdir(REPO_ROOT)
    at = AppTest.from_function(widget_app, default_timeout=TIMEOUT_S).run()
    at.segmented_control(key="cs_label_draw").set_value(3).run()
    assert at.button(key="cs_submit_draw").disabled  # nobody to file it under yet
    at.text_input(key="who_name").input("Ana")
    at.button(key="who_save").click().run()
    assert not at.button(key="cs_submit_draw").disabled
    at.button(key="cs_submit_draw").click().run()
    (sub,) = env.list()
    assert (sub.who, sub.label, sub.owner.startswith("person:")) == ("Ana", 3, True)
    assert texts(at, "success") == [
        "Added to the class set as drawing #1. It fooled the ViT (it read 7) and the CNN (it read 7)."
    ]


def evaluate_app() -> None:
    """The Evaluate page's panel for one model (the shipped CNN)."""
    from vitdemo import paths
    from vitdemo.ui import classset as classset_ui
    from vitdemo.ui import shell

    classset_ui.evaluation_panel(shell.load_model(paths.shipped_dir() / "cnn_mnist.safetensors"))


def test_the_evaluate_panel_scores_one_model_on_the_class_set(env: ClassSet) -> None:
    at = AppTest.from_function(evaluate_app, default_timeout=TIMEOUT_S).run()
    assert any("class set is empty" in t for t in texts(at, "caption"))
    fill(env)
    classset.submit(env, stroke_image(DIGIT_STROKES["1"], width=26), 4, Actor("person:2", "Ben"))  # a 1 said to be a 4
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (metric,) = at.metric
    assert metric.label == "Class-set accuracy" and metric.value == "66.7%"  # the shipped CNN reads the 7 and the 1
