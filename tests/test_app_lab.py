"""The Robustness lab page under Streamlit's AppTest: the shared shell and sidebar, the live sliders with the
shipped models, and the sweep (with tiny untrained checkpoints, so measuring 1,000 images takes seconds).

Until app.py lists app_pages/lab.py, the page runs in a navigation script of its own, built like app.py's."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from vitdemo.checkpoints import make_meta, save_checkpoint
from vitdemo.config import CNNConfig, ViTConfig
from vitdemo.data import load_raw
from vitdemo.explain.robustness import CHANGES
from vitdemo.models import build_model

REPO_ROOT = Path(__file__).resolve().parent.parent
APP = REPO_ROOT / "app.py"
PAGE = REPO_ROOT / "app_pages" / "lab.py"
PREDICTION = re.compile(r'aria-label="(ViT|CNN) predicts ([^"]+)"')
TIMEOUT_S = 180  # the first run imports torch and loads both models; the sweep scores 1,000 images 35 times
NAVIGATION = f"""
import streamlit as st
from vitdemo.ui import shell

shell.page_setup()
page = st.navigation([st.Page({str(PAGE)!r}, title="Robustness lab", icon=":material/tune:", default=True)])
shell.sidebar()
page.run()
"""


def open_lab(**state: object) -> AppTest:
    """The app on the lab page, with `state` in the session before the first run."""
    if "app_pages/lab.py" in APP.read_text():
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
        at.run()
        at.switch_page("app_pages/lab.py")
    else:
        at = AppTest.from_string(NAVIGATION, default_timeout=TIMEOUT_S)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def predictions(at: AppTest) -> dict[str, str]:
    return dict(m for md in at.markdown for m in PREDICTION.findall(md.value))


@pytest.fixture
def lab_env(tmp_home: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VITDEMO_DATA_DIR", str(data_dir))
    return tmp_home


@pytest.fixture
def tiny_checkpoints(tmp_path: Path, lab_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An untrained tiny ViT and CNN as the 'shipped' MNIST models: the page needs files, not accuracy."""
    folder = tmp_path / "tiny"
    configs = {"vit": ViTConfig(patch_size=7, embed_dim=16, depth=1, num_heads=2), "cnn": CNNConfig(width=4, depth=1)}
    for kind, config in configs.items():
        save_checkpoint(folder / f"{kind}_mnist.safetensors", build_model(config), make_meta(config, "mnist"))
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(folder))
    return folder


def _bars(at: object) -> int:
    """How many probability bar charts (HTML, vitdemo.views.display.probability_bars_html) the page shows."""
    return sum(h.proto.body.count('class="vd-bars"') for h in at.get("html"))


def test_sliders_change_what_both_shipped_models_see(lab_env: Path, mnist_checkpoints: Path) -> None:
    at = open_lab(lab_test_index_mnist=0)  # test image #0 is a 7
    assert predictions(at) == {"ViT": "7", "CNN": "7"}
    captions = [c for image in at.image for c in image.captions]
    assert captions == ["as it was", "what the models see"]
    assert any("true label 7" in c.value for c in at.caption)
    assert _bars(at) == 2 and not at.get("plotly_chart")  # both models' probability bars; the sweep waits

    at.slider(key="lab_degrees").set_value(180.0).run()
    assert predictions(at) == {"ViT": "6", "CNN": "6"}  # an upside-down 7 reads as a 6 to both

    at.button(key="lab_reset").click().run()
    assert at.slider(key="lab_degrees").value == 0.0
    assert predictions(at) == {"ViT": "7", "CNN": "7"}


def test_the_last_drawing_is_offered_first(lab_env: Path, mnist_checkpoints: Path, data_dir: Path) -> None:
    seven = load_raw("mnist", train=False, data_dir=data_dir).images[0].numpy().astype(np.float32) / 255
    at = open_lab(last_input_28=seven)
    assert any("your last drawing" in c.value for c in at.caption)
    assert predictions(at) == {"ViT": "7", "CNN": "7"}


def test_the_sweep_is_measured_when_asked_then_kept_for_every_visitor(tiny_checkpoints: Path) -> None:
    at = open_lab(view_expert=True)  # the Expert view: the sweep's passes and seconds under it
    assert _bars(at) == 2 and not at.get("plotly_chart")  # the probability bars (HTML) only
    at.button(key="lab_sweep").click().run()
    assert not at.exception, [e.value for e in at.exception]
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    sentence = [md.value for md in at.markdown if md.value.startswith("Averaged over each range")]
    assert len(sentence) == 1 and "1,000 test images" in sentence[0]
    values = sum(len(c.values) for c in CHANGES)
    forwards = 2 * (1 + values - len(CHANGES))
    assert any(f"{forwards} model passes" in c.value for c in at.caption)

    again = open_lab()  # a new visitor: the process has measured these files already
    assert len(again.get("plotly_chart")) == 1
    assert not any(b.key == "lab_sweep" for b in again.button)
    assert not any("model passes" in c.value for c in again.caption)  # a student's Simple view: no such figures


def test_without_checkpoints_the_page_says_what_to_do(lab_env: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    at = open_lab()
    warnings = [w.value for w in at.warning]
    assert any("No ViT model" in w for w in warnings) and any("No CNN model" in w for w in warnings)
    assert any("Train page" in i.value for i in at.info)  # the sweep has nothing to measure
    assert not at.error and not predictions(at)
