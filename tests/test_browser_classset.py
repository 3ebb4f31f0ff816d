"""The Class set page in a real browser: a drawing submitted through vitdemo.classset.store (as the Draw page's widget
does) shows in the gallery of the model it fooled, and the teacher (no password set: everyone) deletes it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import browser as helpers
import pytest

from vitdemo.classset import store as classset
from vitdemo.classset.store import Answer, ClassSet
from vitdemo.runs.people import Actor

pytestmark = pytest.mark.browser


def test_a_fooling_drawing_is_in_the_gallery_and_the_teacher_deletes_it(
    app_page: Any, app_url: str, app_env: dict[str, str], mnist_checkpoints: Path
) -> None:
    store = ClassSet(app_env["VITDEMO_HOME"])
    answers = [Answer("vit", "shipped vit_mnist", 1, 0.8), Answer("cnn", "shipped cnn_mnist", 7, 0.99)]
    sub = classset.submit(store, helpers.stroke_image(helpers.DIGIT_STROKES["7"]), 7, Actor("person:1", "Ana"), answers)

    page = app_page
    page.goto(app_url.rstrip("/") + "/classset")
    helpers.wait_for_app(page)
    page.get_by_role("heading", name="The class's own handwriting").wait_for()
    page.get_by_text(f"#{sub.id} · a 7 by Ana").wait_for()  # in "Fooled the ViT", the gallery shown first
    # The gallery picker is a segmented control whose code the browser loads on first use, so on a busy machine the
    # tile above can show before it: wait for its labels rather than look once (CI failed on the one look).
    page.get_by_text("Fooled the ViT (1)").wait_for(state="visible")
    page.get_by_text("Fooled the CNN (0)").wait_for(state="visible")
    page.get_by_text("vit-mnist-100").first.wait_for(state="attached")  # the class-set leaderboard (a canvas grid)
    if os.environ.get("VITDEMO_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["VITDEMO_SCREENSHOTS"], "classset.png"), full_page=True)

    page.get_by_role("button", name="Delete").first.click()  # the popover
    page.get_by_role("button", name=f"Delete drawing #{sub.id}").click()
    page.get_by_text(f"Drawing #{sub.id} was deleted from the class set.").wait_for()
    helpers.wait_idle(page)
    assert store.list() == [] and not (store.image_dir / sub.input).exists()
    page.get_by_text("No drawings yet").wait_for(state="visible")
    assert page.locator('[data-testid="stException"]').count() == 0
