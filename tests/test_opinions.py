"""Extra opinions on one drawing (vitdemo.explain.opinions) and how they are drawn (vitdemo.views.opinions): real fitted
scikit-learn models and real (small, untrained) networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vitdemo.checkpoints import LoadedModel, make_meta
from vitdemo.config import CNNConfig, TransferConfig, ViTConfig
from vitdemo.data import load_raw
from vitdemo.explain.opinions import classic_opinion, is_classic_file, to_pixels, torch_opinion
from vitdemo.models import build_model
from vitdemo.models.classic import (
    ClassicConfig,
    fit_classic,
    load_classic,
    logreg_templates,
    predict_proba,
    save_classic,
)
from vitdemo.views import opinions as views
from vitdemo.views.display import ACCENT


@pytest.fixture(scope="module")
def train_images(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    split = load_raw("mnist", train=True, data_dir=data_dir)
    return split.images[:400].numpy(), split.labels[:400].numpy()  # (400, 28, 28) uint8, (400,)


@pytest.fixture(scope="module")
def fitted(train_images, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A logistic regression and a kNN fitted on 400 training images, each through its skops file."""
    x, y = train_images
    folder = tmp_path_factory.mktemp("classic")
    out = {}
    for kind, config in {"logreg": ClassicConfig(max_iter=100), "knn": ClassicConfig(kind="knn")}.items():
        out[kind] = load_classic(save_classic(folder / f"{kind}.skops", fit_classic(config, x, y)))
    return out


def test_a_classic_opinion_is_its_model_on_the_drawing_pixels(fitted, train_images) -> None:
    x, y = train_images
    image = x[7].astype(np.float32) / 255.0  # a training digit as the preprocessing hands it over: [0, 1]
    assert np.array_equal(to_pixels(image)[0], x[7])  # back to exactly the pixels the model was fitted on
    opinion = classic_opinion(fitted["logreg"], image)
    assert np.allclose(opinion.prediction.probs, predict_proba(fitted["logreg"], x[7:8])[0])
    assert opinion.prediction.classes[opinion.prediction.label] == str(y[7])  # a digit it was fitted on
    assert opinion.explanation == "weight templates"
    assert np.array_equal(opinion.templates, logreg_templates(fitted["logreg"])) and opinion.templates.shape == (
        10,
        28,
        28,
    )
    knn = classic_opinion(fitted["knn"], image)
    assert knn.explanation is None and knn.templates is None and knn.prediction.heat is None
    assert is_classic_file("runs/logreg.skops") and not is_classic_file("runs/cnn.safetensors")


@pytest.mark.parametrize(
    ("config", "explanation"),
    [
        (ViTConfig(depth=2, embed_dim=32, num_heads=2), "attention rollout"),
        (CNNConfig(width=4, depth=1), "integrated gradients"),
        (TransferConfig(arch="alexnet", image_px=64, pretrained=False), "integrated gradients"),
    ],
    ids=["vit", "cnn", "transfer"],
)
def test_a_network_opinion_comes_with_its_map(config, explanation: str, train_images) -> None:
    torch.manual_seed(0)
    loaded = LoadedModel(build_model(config).eval(), make_meta(config, "mnist"))
    image = train_images[0][3].astype(np.float32) / 255.0
    opinion = torch_opinion(loaded, image, head_fusion="max", discard_ratio=0.5)
    p = opinion.prediction
    assert p.probs.shape == (10,) and p.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert opinion.explanation == explanation
    assert p.heat.shape == (28, 28) and p.heat.min() >= 0.0 and p.heat.max() <= 1.0
    if explanation == "integrated gradients":  # it cannot paint the blank background
        assert p.heat[image == 0].max() == 0.0


def test_templates_share_one_scale_and_frame_the_prediction() -> None:
    templates = np.zeros((10, 28, 28), np.float32)
    templates[3, 0, 0], templates[3, 0, 1], templates[5, 0, 0] = 2.0, -2.0, 1.0
    colors = views.weight_colors(templates)
    assert tuple(colors[3, 0, 0]) == tuple(views.FOR_RGB.astype(np.uint8))  # the strongest vote for: full red
    assert tuple(colors[3, 0, 1]) == tuple(views.AGAINST_RGB.astype(np.uint8))  # against: full blue
    assert tuple(colors[3, 5, 5]) == tuple(views.ZERO_RGB.astype(np.uint8))  # no vote
    assert colors[5, 0, 0, 0] < colors[3, 0, 0, 0]  # half the weight, on the same scale: less red
    images = views.template_images(templates, highlight=3, size=56, frame=3)
    assert len(images) == 10 and all(img.shape == (62, 62, 3) for img in images)
    accent = tuple(int(ACCENT[i : i + 2], 16) for i in (1, 3, 5))
    assert tuple(images[3][0, 0]) == accent and tuple(images[4][0, 0]) != accent  # the prediction framed
    assert tuple(images[3][3, 3]) == tuple(colors[3, 0, 0])  # its pixels at full brightness, 2x2 squares
    assert images[5][3, 3, 0] < colors[5, 0, 0, 0]  # the others dimmed
    assert views.class_captions(["0", "1"], np.array([0.25, 0.75])) == ["0 · 25%", "1 · 75%"]


def test_an_opinion_line_escapes_names() -> None:
    html = views.opinion_html("#3 <b>x</b>", "T-shirt/top", 0.931, ' · <span class="vd-right">right</span>')
    assert 'aria-label="#3 &lt;b&gt;x&lt;/b&gt; predicts T-shirt/top"' in html
    assert "93.1% confident" in html and 'class="vd-right"' in html
