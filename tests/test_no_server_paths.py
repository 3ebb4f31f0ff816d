"""Students never see the server's folders (issue 24): every page, opened by a student on a locked class server
whose data, checkpoints and a run's checkpoint file are all missing, says what is wrong in sentences that name
no folder of the server (its data root, VITDEMO_HOME, the checkpoints folder, nor any absolute path)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.runs.store import Registry
from vitdemo.views import words

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ["draw", "present", "lab", "race", "train", "evaluate", "leaderboard", "classset", "hood"]
KINDS = ("markdown", "caption", "error", "warning", "info", "success", "exception", "text", "metric", "toast")
ABSOLUTE = re.compile(r"(?<![\w.])/(?:tmp|home|root|srv|var|work|usr|opt)/")


def shown(at: AppTest) -> list[str]:
    """Every sentence on the page and in the sidebar, with the metrics' labels and values and widgets' help."""
    found = []
    for kind in KINDS:
        for element in at.get(kind):
            value = getattr(element, "value", "")
            found += [str(value), str(getattr(element, "label", "")), str(getattr(element, "help", "") or "")]
    return [f for f in found if f]


@pytest.fixture
def bare_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A class server with a password, no data, no checkpoints and one finished run whose file has gone."""
    root = tmp_path / "server-folder-secret"
    home, data, ckpt = root / "home", root / "data", root / "checkpoints"
    for folder in (home, data, ckpt):
        folder.mkdir(parents=True)
    monkeypatch.setenv("VITDEMO_HOME", str(home))
    monkeypatch.setenv("VITDEMO_DATA_DIR", str(data))
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(ckpt))
    monkeypatch.setenv("VITDEMO_TEACHER_PASSWORD", "s3cret")
    reg = Registry(home)
    config = TrainConfig(model=CNNConfig(width=4, depth=1), epochs=1).to_dict()
    run_id = reg.create_run(name="gone", kind="cnn", dataset="mnist", config=config, status="done", test_acc=0.5)
    reg.update_run(run_id, checkpoint=str(home / "checkpoints" / f"run-{run_id}.safetensors"))
    return root


def test_no_page_shows_a_student_the_servers_folders(bare_server: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    leaks = []
    for page in PAGES:
        at.switch_page(f"app_pages/{page}.py").run()
        if page == "draw":  # the test images need the data that is missing
            at.button_group(key="input_mode").set_value("test").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        texts = shown(at)
        assert texts, page
        if page == "draw":  # Test mode without its images: what to do instead, not "Draw a digit"
            assert words.say("draw", "no_test_images") in texts and not [t for t in texts if "Draw a digit" in t]
        leaks += [(page, t) for t in texts if "server-folder-secret" in t or ABSOLUTE.search(t)]
    assert not leaks, leaks
