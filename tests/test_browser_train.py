"""The real thing: `streamlit run app.py`, Chromium, a training run started on the Train page, watched while
it runs in the background worker, and found on the Leaderboard once done."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import browser as helpers
import pytest

from vitdemo.views.forms import PRESETS

pytestmark = pytest.mark.browser

RUN_NAME = "browser-quick-run"
QUICK_SUBSET = (
    6000  # "fast demo": a few seconds of steps, so the live view (1 s refresh) shows some; 2,000 could end unseen
)
EPOCHS = PRESETS["fast demo"]["epochs"]
STEPS = EPOCHS * -(-QUICK_SUBSET // PRESETS["fast demo"]["batch_size"])


@pytest.fixture(scope="module")
def app_env(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, checkpoints_dir: Path) -> dict[str, str]:
    """The shared fixture's environment, plus workers that exit 5 s after their last run (no leftovers)."""
    home = tmp_path_factory.mktemp("train-home")
    return {
        "VITDEMO_HOME": str(home),
        "VITDEMO_DATA_DIR": str(data_dir),
        "VITDEMO_CHECKPOINTS": str(checkpoints_dir),
        "VITDEMO_WORKER_IDLE_S": "5",
    }


def go_to(page: Any, title: str) -> None:
    page.get_by_role("link", name=title, exact=True).click()
    page.wait_for_url(re.compile(rf"/{title.lower()}$"))
    helpers.wait_for_app(page)


def set_number(page: Any, label: str, value: int | str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    helpers.wait_idle(page)


def test_a_bookmarked_page_opens_inside_the_app_on_a_fresh_server(chromium_browser: Any, app_url: str) -> None:
    """First in this module on purpose: the server has served no page yet, the case where Streamlit would run
    app_pages/leaderboard.py alone (no sidebar, no page config) instead of through app.py."""
    context = chromium_browser.new_context(viewport=helpers.VIEWPORT)
    try:
        page = context.new_page()
        page.goto(app_url.rstrip("/") + "/leaderboard")
        helpers.wait_for_app(page)
        page.get_by_role("heading", name="Leaderboard").wait_for()
        page.get_by_role("link", name="Draw", exact=True).wait_for(state="visible")  # app.py's titles, not file names
        assert page.get_by_role("link", name="app").count() == 0
        page.get_by_role("heading", name="Models").wait_for(state="visible")  # the shared sidebar
        assert page.url.endswith("/leaderboard")
    finally:
        context.close()


def test_train_a_quick_run_and_find_it_on_the_leaderboard(app_page: Any, app_env: dict[str, str]) -> None:
    page = app_page
    go_to(page, "Train")
    page.get_by_text("Expert view", exact=True).click()  # every setting in view (Simple folds them away)
    helpers.wait_idle(page)
    page.get_by_text("ViT", exact=True).first.click()  # the form opens on the CNN of the quick lesson preset
    helpers.wait_idle(page)
    page.get_by_role("button", name="Preset: fast demo").click()
    helpers.wait_idle(page)
    assert page.get_by_role("combobox", name="Patch size").input_value() == "7"  # the preset filled the form in
    set_number(page, "Quick subset (training images, 0 = all)", QUICK_SUBSET)
    name = page.get_by_label("Run name (optional)")
    name.fill(RUN_NAME)
    name.press("Enter")
    helpers.wait_idle(page)
    assert page.get_by_text(f"{QUICK_SUBSET:,} training images").count() == 1  # the estimate followed

    page.get_by_role("button", name="Start training").click()
    progress_seen: list[str] = []
    watched_while_running = False  # the ten watched test digits, answered from the first step on
    deadline = time.monotonic() + 180
    done = page.get_by_text(re.compile(r"^Done: trained in .* on cpu\.$"))
    while time.monotonic() < deadline and done.count() == 0:
        for text in page.locator('[data-testid="stProgress"]').all_inner_texts():
            if "step" in text and text not in progress_seen:
                progress_seen.append(text)
                watched_while_running = watched_while_running or page.locator(".vd-watch-digit").count() == 10
        failed = page.get_by_text(re.compile(r"^Failed: "))
        if failed.count():
            log = Path(app_env["VITDEMO_HOME"]) / "worker-cpu.log"
            pytest.fail(f"the run failed: {failed.first.inner_text()}\n{helpers.log_tail(log)}")
        page.wait_for_timeout(100)
    assert done.count() == 1, f"no result within 180 s; progress seen: {progress_seen}"
    assert progress_seen, "the progress bar never showed a training step"
    pattern = rf"epoch \d/{EPOCHS} · step \d+/{STEPS} · [\d,]+ images/s"
    assert re.search(pattern, " ".join(progress_seen)), progress_seen
    assert watched_while_running, "the watched test digits never showed while the run trained"
    # The kept weights' answers, calibrated: the panel draws "Done" first, then the metrics and the resume controls,
    # then the ten digits, so on a busy machine they come a moment later (a first look once saw none).
    page.get_by_text(re.compile(r"of 10 right; calibrated probabilities")).wait_for()
    assert page.locator(".vd-watch-digit").count() == 10
    accuracy = page.locator('[data-testid="stMetric"]').filter(has_text="Test accuracy")
    assert re.search(r"\d+\.\d\d%", accuracy.inner_text())
    # The loss and accuracy curves: the first Plotly chart a page shows waits for Plotly's script to load.
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(state="visible", timeout=30_000)

    go_to(page, "Leaderboard")
    search = page.get_by_label("Name contains")
    search.fill(RUN_NAME)
    search.press("Enter")
    helpers.wait_idle(page)
    text = page.get_by_role("combobox", name="Run", exact=True).input_value()  # the picker under the table
    assert re.search(rf"#\d+ {RUN_NAME} \(ViT, MNIST\) · \d+\.\d\d%", text), text
    table = page.locator('[data-testid="stDataFrame"]').first
    table.wait_for(state="visible")  # the table's code loads on first use: wait, not one look
