"""The Under the hood page under Streamlit's AppTest, with the real shipped checkpoints.

app.py's navigation belongs to the app shell; until it lists app_pages/hood.py, the page runs inside a
two-line navigation app of its own (the same shell: page setup, sidebar, models), written to a temporary folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from apptest import texts
from streamlit.testing.v1 import AppTest

from vitdemo.checkpoints import load_checkpoint
from vitdemo.data import load_raw
from vitdemo.explain.hood import neighbour_similarity, position_similarity
from vitdemo.ui.hood import DRAW_KEY
from vitdemo.views import words

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 180  # loads both models and builds a dozen figures on a busy 2-core machine
CHART_KEYS = ["hood_grid", "hood_patch_attention", "hood_cls", "hood_positions", "hood_features", "hood_filters"]
CHART_KEYS += ["hood_lens_ViT", "hood_lens_CNN"]  # when each model makes up its mind


@pytest.fixture
def hood_app(tmp_path: Path, tmp_home: Path, data_dir: Path, mnist_checkpoints: Path, monkeypatch) -> str:
    monkeypatch.setenv("VITDEMO_DATA_DIR", str(data_dir))
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(mnist_checkpoints))
    app = tmp_path / "app.py"
    app.write_text(
        "import streamlit as st\n"
        "from vitdemo.ui import shell\n"
        "shell.page_setup()\n"
        f"page = st.navigation([st.Page({str(REPO_ROOT / 'app_pages' / 'hood.py')!r}, title='Under the hood')])\n"
        "shell.sidebar()\n"
        "page.run()\n"
    )
    return str(app)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def chart_specs(at: AppTest) -> dict[str, str]:
    """Each chart's figure JSON by its widget key (the key ends the element id)."""
    specs = {}
    for chart in at.get("plotly_chart"):
        key = next((k for k in CHART_KEYS if chart.proto.id.endswith(k)), chart.proto.id)
        specs[key] = chart.proto.spec
    return specs


def test_the_page_shows_every_map_with_a_colour_scale_for_a_test_image(hood_app: str, mnist_checkpoints: Path) -> None:
    at = AppTest.from_file(hood_app, default_timeout=TIMEOUT_S)
    at.session_state["view_expert"] = True  # the Expert view's technical captions; the Simple view's below
    at = run(at)
    assert at.button_group(key="hood_source").value == "test"  # no drawing in this session
    (what,) = [c for c in texts(at, "caption") if c.startswith("Looking inside both models with")]
    match = re.search(r"test image #(\d+), labelled (\d)", what)
    assert match, what
    index, label = int(match[1]), match[2]
    test = load_raw("mnist", train=False)
    assert str(int(test.labels[index])) == label
    specs = chart_specs(at)
    assert set(specs) == set(CHART_KEYS)
    for key in CHART_KEYS[1:]:  # every map, not the input itself, has a colour bar
        assert '"colorbar"' in specs[key], key
    assert "cosine similarity" in specs["hood_positions"] and "share of its attention" in specs["hood_patch_attention"]
    # One plain sentence under every figure.
    captions = texts(at, "caption")
    for start in ("Each small map is one layer", "The class token is the extra token", "Each of the 49 small",
                  "Each square is what one filter", "The 32 filters", "The ViT ", "The CNN "):  # fmt: skip
        assert any(c.startswith(start) for c in captions), start
    assert any(
        "at the end" in c for c in captions if c.startswith("The CNN settles") or c.startswith("The CNN already")
    )
    # The figures the page shows for the position embeddings are the model's, with its learned 2-D structure.
    loaded = load_checkpoint(mnist_checkpoints / "vit_mnist.safetensors")
    near, far = neighbour_similarity(position_similarity(loaded.model))
    assert {m.label: m.value for m in at.metric}["Neighbours alike"] == f"{round(near, 2) + 0.0:+.2f}"

    at.session_state["view_expert"] = False  # a student's Simple view: the same figures, plain captions
    captions = texts(run(at), "caption")
    assert {words.say("hood", k) for k in ("cls_caption", "patch_maps", "positions", "features")} <= set(captions)
    assert not [c for c in captions if "token" in c or "embedding" in c or "convolution" in c]

    assert at.session_state["hood_test_index_mnist"] == index
    at.button(key="hood_next_test").click()
    run(at)
    shown = int(re.search(r"test image #(\d+)", next(c for c in texts(at, "caption") if "test image #" in c))[1])
    assert shown == at.session_state["hood_test_index_mnist"]  # the button drew a new one and the page shows it


def test_controls_pick_the_patch_the_head_and_the_stage(hood_app: str) -> None:
    at = run(AppTest.from_file(hood_app, default_timeout=TIMEOUT_S))
    assert "#### Where the square in row 3, column 3 looks" in texts(at, "markdown")  # the middle one first
    at.slider(key="hood_patch_row").set_value(1)
    at.slider(key="hood_patch_col").set_value(5)
    run(at)
    assert "#### Where the square in row 1, column 5 looks" in texts(at, "markdown")  # the Simple view's words
    before = chart_specs(at)["hood_cls"]
    at.button_group(key="hood_cls_head").set_value(2)
    run(at)
    assert chart_specs(at)["hood_cls"] != before  # head 3 alone, not the mean
    last = len(at.radio(key="hood_stage").options) - 1  # the shipped CNN's last stage (the lean one has 2)
    at.radio(key="hood_stage").set_value(last)
    at.select_slider(key="hood_channels").set_value(8)
    run(at)
    assert last >= 1 and f"#### What stage {last + 1} sees" in texts(at, "markdown")
    assert chart_specs(at)["hood_features"].count("filter ") >= 8


def test_the_last_drawing_comes_first(hood_app: str) -> None:
    at = AppTest.from_file(hood_app, default_timeout=TIMEOUT_S)
    drawing = np.zeros((28, 28), np.float32)
    drawing[4:24, 13:16] = 1.0  # a "1"
    at.session_state[DRAW_KEY] = drawing
    run(at)
    assert at.button_group(key="hood_source").value == "drawing"
    assert "Looking inside both models with your last drawing on the Draw page." in texts(at, "caption")
    assert any(m.startswith("The ViT predicts **1**") for m in texts(at, "markdown"))
    at.button_group(key="hood_source").set_value("test")
    run(at)
    assert any("test image #" in c for c in texts(at, "caption"))
    at.session_state[DRAW_KEY] = np.roll(drawing, 3, axis=1)  # a new drawing on the Draw page: shown again
    run(at)
    assert at.button_group(key="hood_source").value == "drawing"


def test_a_bad_drawing_in_the_session_is_ignored(hood_app: str) -> None:
    at = AppTest.from_file(hood_app, default_timeout=TIMEOUT_S)
    at.session_state[DRAW_KEY] = torch.zeros(3, 3).numpy()  # not a 28x28 input
    run(at)
    assert at.button_group(key="hood_source").value == "test"
    assert "drawing" not in at.button_group(key="hood_source").options


def test_a_cnn_without_shipped_probes_is_probed_once_and_kept_on_disk(
    hood_app: str, tmp_path: Path, tmp_home: Path, data_dir: Path, mnist_checkpoints: Path, monkeypatch
) -> None:
    """The shipped CNN's probes ship in checkpoints/results/; another CNN's are fitted on the page (a progress
    bar) and kept in $VITDEMO_HOME/cache/ for the next server."""
    from apptest import train_shipped_cnn

    from vitdemo.config import CNNConfig, TrainConfig

    folder = tmp_path / "shipped"
    folder.mkdir()
    (folder / "vit_mnist.safetensors").write_bytes((mnist_checkpoints / "vit_mnist.safetensors").read_bytes())
    config = TrainConfig(model=CNNConfig(width=4, depth=2), epochs=1, train_subset=1000, val_size=200, device="cpu")
    train_shipped_cnn(folder, data_dir, config)  # a tiny CNN of its own: no probes for it anywhere yet
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(folder))
    at = run(AppTest.from_file(hood_app, default_timeout=TIMEOUT_S))
    assert "hood_lens_CNN" in chart_specs(at)
    assert len(list((tmp_home / "cache").glob("probes-*.safetensors"))) == 1
