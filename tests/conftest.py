"""Shared fixtures: where the data and checkpoints are, a private VITDEMO_HOME, and the real app in Chromium."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import browser` from any test module

import browser as browser_helpers  # noqa: E402

from vitdemo.threads import configure_threads  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER") and not os.environ.get("VITDEMO_THREADS"):  # `pytest -n N`: the cores are
    # shared, so each worker (and the servers and commands it starts, which inherit this) gets its share of them
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    os.environ["VITDEMO_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
configure_threads()  # as every entry point does: $VITDEMO_THREADS, else every core

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))
# Every test reads the shared data, never a download: code that is given no data folder (load_raw("mnist") in a
# test module, a CLI run in a subprocess) finds it through $VITDEMO_DATA_DIR, set here when the caller did not.
os.environ.setdefault("VITDEMO_DATA_DIR", str(REPO_ROOT.parent / "shared" / "data"))


# The modules that take longest run first: `pytest -n 2 --dist loadfile` (scripts/check) hands out whole modules in
# collection order, and a long one handed out last leaves the other worker idle (longest-first scheduling).
# Measured with --durations=0; the order within a module is kept (its module-scoped servers start once).
LONGEST_FIRST = (
    "test_bench.py", "test_cli.py", "test_worker.py", "test_browser_layout.py", "test_ray.py", "test_shipped.py",
    "test_browser_touch.py", "test_browser_train.py", "test_cli_families.py", "test_browser_load.py",
    "test_browser_lesson.py", "test_browser_race.py", "test_classic.py", "test_browser.py", "test_robustness.py",
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
    # A real browser against a real server on two loaded cores: a page may be a refresh late where a test looks.
    # Such a test gets one more try (pytest-rerunfailures; the report lists it as RERUN): a broken page fails both.
    for item in items:
        if item.get_closest_marker("browser") and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))


def _skip_or_fail(reason: str) -> None:
    """Outside CI a missing prerequisite skips; in CI it fails (these tests must run there)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """$VITDEMO_DATA_DIR, else the shared data folder next to the repository."""
    return Path(os.environ.get("VITDEMO_DATA_DIR") or REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def checkpoints_dir() -> Path:
    """$VITDEMO_CHECKPOINTS, else the repository's shipped checkpoints."""
    return Path(os.environ.get("VITDEMO_CHECKPOINTS") or REPO_ROOT / "checkpoints")


@pytest.fixture(scope="session")
def mnist_checkpoints(checkpoints_dir: Path) -> Path:
    """The shipped MNIST ViT and CNN, needed where a test checks that predictions are right."""
    missing = [k for k in ("vit", "cnn") if not (checkpoints_dir / f"{k}_mnist.safetensors").is_file()]
    if missing:
        names = " and ".join(f"{kind}_mnist.safetensors" for kind in missing)
        _skip_or_fail(f"needs trained checkpoints: {names} not in {checkpoints_dir}")
    return checkpoints_dir


@pytest.fixture
def tmp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """VITDEMO_HOME in a fresh temporary folder, so no test touches ./runs."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)  # the `reg` fixture may have made it: the same registry
    monkeypatch.setenv("VITDEMO_HOME", str(home))
    return home


@pytest.fixture
def reg(tmp_path: Path) -> Any:
    """A fresh run registry in a temporary folder."""
    from vitdemo.runs.store import Registry

    return Registry(tmp_path / "home")


@pytest.fixture(autouse=True)
def worker_starts(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """No test starts a worker process by accident: queueing a run wakes the local executor
    (vitdemo.runs.queue.submit), whose `ensure_worker` is replaced here by a recorder of its arguments
    (registry, device, data folder). A test that wants a real worker calls the original, imported at module level
    (`from vitdemo.runs.local import ensure_worker`), or runs one as a subprocess."""
    from vitdemo.runs import local

    calls: list[tuple] = []
    monkeypatch.setattr(local, "ensure_worker", lambda *args, **kwargs: calls.append(args) or True)
    return calls


@pytest.fixture(autouse=True)
def loopback_app() -> Iterator[None]:
    """AppTest starts no server, and Streamlit's default `server.address` (unset) is a server the whole network
    reaches, where the teacher's role is locked with a one-time code (vitdemo.runs.teacher). The app under AppTest
    is told it listens on 127.0.0.1, where everyone is the teacher, as at home; a test of the locked role sets
    another address (or a password) itself."""
    from streamlit import config

    from vitdemo.ui import people

    config.set_option("server.address", "127.0.0.1")
    people.guard.clear()  # the server's guess guard lives as long as the process: each test starts with a new one
    yield
    config.set_option("server.address", None)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium: skip without it, unless CI is set (then fail)."""
    if not browser_helpers.CHROMIUM.exists():
        _skip_or_fail(f"{browser_helpers.CHROMIUM} is missing")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _skip_or_fail("the playwright package is not installed")
    return browser_helpers.CHROMIUM


@pytest.fixture(scope="module")
def app_env(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, checkpoints_dir: Path) -> dict[str, str]:
    """Environment for a `streamlit run` server: its own VITDEMO_HOME, the data and the checkpoints."""
    home = tmp_path_factory.mktemp("app-home")
    return {"VITDEMO_HOME": str(home), "VITDEMO_DATA_DIR": str(data_dir), "VITDEMO_CHECKPOINTS": str(checkpoints_dir)}


@pytest.fixture(scope="module")
def app_url(app_env: dict[str, str], chromium: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free loopback port for one test module; stopped afterwards.
    Its output is in $VITDEMO_HOME/streamlit.log (the tail is in the error if it does not start)."""
    log = Path(app_env["VITDEMO_HOME"]) / "streamlit.log"
    with browser_helpers.serve_app(app_env, log_path=log) as url:
        yield url


@pytest.fixture(scope="module")
def chromium_browser(chromium: Path) -> Iterator[Any]:
    """One headless Chromium per test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = browser_helpers.launch_browser(pw)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def app_page(chromium_browser: Any, app_url: str) -> Iterator[Any]:
    """A fresh 1280x720 page (a new session) on the app's default page, fully rendered."""
    context = chromium_browser.new_context(viewport=browser_helpers.VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(app_url)
    browser_helpers.wait_for_app(page)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def shipped_env(tmp_home: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """For AppTest: a private registry (returned) in VITDEMO_HOME, the shared data, and `use_checkpoints(folder)`
    to point VITDEMO_CHECKPOINTS at a folder of shipped files."""
    from vitdemo.runs.store import Registry

    monkeypatch.setenv("VITDEMO_DATA_DIR", str(data_dir))
    monkeypatch.delenv("VITDEMO_TEACHER_PASSWORD", raising=False)

    def use_checkpoints(folder: Path) -> Registry:
        monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(folder))
        return Registry(tmp_home)

    return use_checkpoints
