"""Screenshot runs side by side on Evaluate (three runs: the shipped ViT and CNN and a logistic regression) and an
extra opinion on Draw (the same logistic regression with its ten templates), at projector size (1280x720).

    python scripts/screenshot_compare.py     # -> artifacts/compare_1280_{table,grid}.png, draw_opinion_1280.png...

Fits the logistic regression here on 5,000 MNIST training images (seconds), registers it as a finished run in a
temporary VITDEMO_HOME, starts `streamlit run app.py` on a free port, drives headless Chromium (/usr/bin/chromium)
and always stops the server. The shipped checkpoints are the repository's (or $VITDEMO_CHECKPOINTS).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # vitdemo, and tests/browser.py

import browser  # noqa: E402

from vitdemo import paths  # noqa: E402

VIEWPORT = {"width": 1280, "height": 720}


def register_logreg(home: Path, data_dir: str | None) -> str:
    """A logistic regression fitted on 5,000 training images, saved and registered as a done run; its title."""
    from vitdemo.data import load_raw
    from vitdemo.models.classic import ClassicConfig, fit_classic, save_classic, score_classic
    from vitdemo.runs.store import Registry

    train = load_raw("mnist", train=True, data_dir=data_dir)
    start = time.perf_counter()
    fitted = fit_classic(ClassicConfig(max_iter=100), train.images[:5000].numpy(), train.labels[:5000].numpy())
    seconds = time.perf_counter() - start
    path = save_classic(home / "logreg-5k.skops", fitted)
    test = score_classic(fitted, load_raw("mnist", train=False, data_dir=data_dir))
    reg = Registry(home)
    run_id = reg.create_run(
        name="logreg-5k", kind="logreg", dataset="mnist", config={"kind": "logreg"}, status="done",
        checkpoint=str(path), test_acc=test.accuracy, macro_f1=test.report.macro_f1, train_time_s=seconds,
        device="cpu",
    )  # fmt: skip
    print(f"logreg on 5,000 images: {test.accuracy:.2%} test, fitted in {seconds:.1f} s (run #{run_id})")
    return f"#{run_id} logreg-5k"


def register_linear(home: Path, data_dir: str | None) -> str:
    """A linear model (pixels -> classes) trained one epoch on 5,000 images, registered as a done run; its title."""
    from vitdemo.checkpoints import make_meta, save_checkpoint
    from vitdemo.config import LinearConfig, TrainConfig
    from vitdemo.data import load_dataset
    from vitdemo.evaluate import score_model
    from vitdemo.runs.store import Registry
    from vitdemo.training.loop import train

    config = TrainConfig(model=LinearConfig(), epochs=1, train_subset=5000, val_size=500, device="cpu")
    data = load_dataset("mnist", data_dir, val_size=500, train_subset=5000)
    result = train(config, data=data)
    test = score_model(result.model, data.test, data.mean, data.std, num_classes=10)
    path = home / "linear-5k.safetensors"
    save_checkpoint(path, result.model, make_meta(config.model, "mnist", train_config=config.to_dict()))
    run_id = Registry(home).create_run(
        name="linear-5k", kind="linear", dataset="mnist", config=config.to_dict(), status="done",
        checkpoint=str(path), test_acc=test.accuracy, macro_f1=test.report.macro_f1,
        train_time_s=result.train_time_s, num_params=result.num_params, device="cpu",
    )  # fmt: skip
    print(f"linear on 5,000 images: {test.accuracy:.2%} test (run #{run_id})")
    return f"#{run_id} linear-5k"


def pick_in_multiselect(page: Any, label: str, option: str) -> None:
    """Open the multiselect labelled `label` in the main area and pick the option starting with `option`."""
    box = page.locator('[data-testid="stMain"] [data-testid="stMultiSelect"]').filter(has_text=label).first
    field = box.locator("input")
    field.click()
    field.press_sequentially(option, delay=30)  # the list narrows to it
    page.get_by_role("option").filter(has_text=option).first.click()
    page.keyboard.press("Escape")
    browser.wait_idle(page, timeout_ms=180_000)


def scroll_to(page: Any, heading: str) -> None:
    """Bring a heading to the top of the window (twice: images above it may still be growing the page)."""
    for _ in range(2):
        page.locator("h3, h4", has_text=heading).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(800)


def shoot_evaluate(page: Any, url: str, title: str, out: Path) -> None:
    page.goto(f"{url}/evaluate")
    browser.wait_for_app(page)
    browser.wait_idle(page, timeout_ms=180_000)
    browser.set_sidebar(page, False)
    page.locator('[data-testid="stMain"] button', has_text="Compare runs").first.click()
    browser.wait_idle(page, timeout_ms=180_000)
    pick_in_multiselect(page, "Runs to compare", title)
    page.mouse.move(5, 700)
    page.screenshot(path=str(out / "compare_1280_table.png"))
    scroll_to(page, "Confusion matrices")
    page.screenshot(path=str(out / "compare_1280_grid.png"))


def shoot_draw(page: Any, url: str, titles: list[str], out: Path) -> None:
    page.goto(url)
    browser.wait_for_app(page)
    browser.canvas(page)
    browser.draw_digit(page, "7")
    found = browser.read_predictions(page)
    browser.wait_idle(page)
    browser.set_sidebar(page, False)
    for title in titles:
        pick_in_multiselect(page, "Add other models", title)
    scroll_to(page, "Extra opinions")
    page.locator('[data-testid="stMain"] [data-testid="stMultiSelect"]').filter(
        has_text="Add other models"
    ).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)
    page.mouse.move(5, 700)
    page.screenshot(path=str(out / "draw_opinion_1280.png"))
    scroll_to(page, "Where they look")
    page.screenshot(path=str(out / "draw_rollout_1280.png"))
    print("Draw:", ", ".join(f"{model} {label}" for model, label in found.items()))


def shoot_leaderboard(page: Any, url: str, out: Path) -> None:
    page.goto(f"{url}/leaderboard")
    browser.wait_for_app(page)
    browser.wait_idle(page, timeout_ms=180_000)
    scroll_to(page, "How many labels does a model need?")
    page.screenshot(path=str(out / "leaderboard_budget_1280.png"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", default=str(ROOT / "artifacts"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vitdemo-shot-") as home:
        env = {paths.ENV_HOME: home}
        shared = browser.REPO_ROOT.parent / "shared" / "data"
        if not os.environ.get(paths.ENV_DATA_DIR) and shared.is_dir():
            env[paths.ENV_DATA_DIR] = str(shared)
        data_dir = env.get(paths.ENV_DATA_DIR) or os.environ.get(paths.ENV_DATA_DIR)
        title = register_logreg(Path(home), data_dir)
        linear = register_linear(Path(home), data_dir)
        with browser.serve_app(env, log_path=Path(home) / "streamlit.log") as url, sync_playwright() as pw:
            chromium = browser.launch_browser(pw)
            context = chromium.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.set_default_timeout(90_000)
            shoot_draw(page, url, [title, linear], out)
            shoot_evaluate(page, url, title, out)
            shoot_leaderboard(page, url, out)
            context.close()
            chromium.close()
    print(f"done in {time.perf_counter() - t0:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
