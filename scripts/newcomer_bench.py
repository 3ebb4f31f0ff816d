"""How long a newcomer waits: from README's first command to a first prediction, and to a first finished run.

    VITDEMO_DATA_DIR=../shared/data python scripts/newcomer_bench.py [--repeat 2] [--json out.json]

What is timed, from one clock that starts when `streamlit run app.py` is started (README's first command, without
its `pip install`: installing packages is left out, its time depends on the network and the cache), in a fresh
VITDEMO_HOME (no registry, no cache, no worker), the datasets already on disk as in CI:
  1. the server answers (its health check);
  2. the Draw page is on screen in a headless Chromium (1280x720);
  3. a 7 drawn with the mouse has both answers on screen (the first prediction);
  4. on the Train page, "Start training" pressed on the form as it opens (the default preset), the run is
     queued, the worker starts, trains, tests and saves it, and the page says "Done" (the first finished run).
Each figure is printed in seconds from the start; with --repeat the whole thing again from a fresh home.
Run it on a quiet machine, or note the load (it is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # vitdemo, and tests/browser.py

import browser  # noqa: E402

from vitdemo import paths  # noqa: E402

RUN_LIMIT_S = 600.0  # the first run must be done within this


def _run_parts(home: str) -> dict[str, float]:
    """Where the run's time went, from the registry: queued until the worker took it (the worker's start),
    training, and the rest (testing on 10,000 images, calibration, saving)."""
    from vitdemo.runs.store import Registry

    run = max(Registry(home).list_runs(), key=lambda r: r.id)  # the newest: the one just trained
    if run.started_at is None or run.finished_at is None:
        return {}
    train = run.train_time_s or 0.0
    return {
        "  queued until a worker took it": run.started_at - run.created_at,
        "  training": train,
        "  testing, calibrating, saving": run.finished_at - run.started_at - train,
    }


def once(data_dir: str | None) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    marks: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="vitdemo-newcomer-") as home:
        env = {paths.ENV_HOME: home, "VITDEMO_WORKER_IDLE_S": "5"}
        if data_dir:
            env[paths.ENV_DATA_DIR] = data_dir
        t0 = time.perf_counter()
        with browser.serve_app(env, log_path=Path(home) / "streamlit.log") as url, sync_playwright() as pw:
            marks["server answers"] = time.perf_counter() - t0
            chromium = browser.launch_browser(pw)
            page = chromium.new_page(viewport=browser.VIEWPORT)
            page.set_default_timeout(120_000)
            page.goto(url)
            browser.wait_for_app(page)
            browser.canvas(page)
            marks["Draw page on screen"] = time.perf_counter() - t0
            browser.draw_digit(page, "7")
            said = browser.read_predictions(page, timeout_ms=120_000)
            marks["first prediction"] = time.perf_counter() - t0
            if said != {"ViT": "7", "CNN": "7"}:
                print(f"  (the models read {said})")
            browser.go_to_page(page, "Train")
            page.get_by_role("button", name="Start training").click()
            started = time.perf_counter()
            done = page.get_by_text(re.compile(r"^Done: trained in "))
            failed = page.get_by_text(re.compile(r"^Failed: "))
            while done.count() == 0:
                if failed.count():
                    raise RuntimeError(f"the run failed: {failed.first.inner_text()}")
                if time.perf_counter() - started > RUN_LIMIT_S:
                    raise RuntimeError(f"no finished run within {RUN_LIMIT_S:.0f} s")
                page.wait_for_timeout(200)
            marks["first finished run"] = time.perf_counter() - t0
            marks["of which the run (press to Done)"] = time.perf_counter() - started
            marks.update(_run_parts(home))
            chromium.close()
    return marks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    data_dir = os.environ.get(paths.ENV_DATA_DIR)
    shared = ROOT.parent / "shared" / "data"
    if not data_dir and shared.is_dir():
        data_dir = str(shared)
    rows = []
    for i in range(args.repeat):
        load = os.getloadavg()[0]
        marks = once(data_dir)
        rows.append({"load_before": round(load, 2), **{k: round(v, 1) for k, v in marks.items()}})
        print(f"try {i + 1} (load average {load:.1f} before; pip install not counted):")
        for name, seconds in marks.items():
            print(f"  {name:<34} {seconds:6.1f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
