"""When does each model make up its mind: the ViT's logit lens and the CNN's stage probes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vitdemo.checkpoints import load_checkpoint
from vitdemo.data import load_raw, to_input
from vitdemo.explain.lens import Lens, cnn_lens, fit_probes, pooled_stages, vit_lens


@pytest.fixture(scope="module")
def shipped(mnist_checkpoints: Path) -> dict:
    return {k: load_checkpoint(mnist_checkpoints / f"{k}_mnist.safetensors") for k in ("vit", "cnn")}


@pytest.fixture(scope="module")
def test_digits(data_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    test = load_raw("mnist", train=False, data_dir=data_dir)
    return test.images[:200], test.labels[:200]


def test_the_vit_lens_ends_with_the_models_own_answer(shipped: dict, test_digits) -> None:
    vit = shipped["vit"]
    x = to_input(test_digits[0][:1], vit.meta.mean, vit.meta.std)  # (1, 1, 28, 28)
    lens = vit_lens(vit.model, x)
    assert lens.probs.shape == (vit.meta.model_config.depth, 10) and np.allclose(lens.probs.sum(1), 1, atol=1e-5)
    with torch.no_grad():
        own = torch.softmax(vit.model(x), -1)[0].numpy()
    assert np.allclose(lens.probs[-1], own, atol=1e-5)  # the last block, read as the model reads it
    assert lens.names[0] == "after block 1"


def test_cnn_probes_read_more_as_the_stages_go_deeper(shipped: dict, data_dir: Path, test_digits) -> None:
    cnn = shipped["cnn"]
    train = load_raw("mnist", train=True, data_dir=data_dir)
    heard: list[float] = []  # the page's progress bar
    x = to_input(train.images[:1500], cnn.meta.mean, cnn.meta.std)
    probes = fit_probes(cnn.model, x, train.labels[:1500], progress=heard.append)
    assert heard == sorted(heard) and heard[0] < 0.5 and heard[-1] == 1.0 and len(heard) >= 10
    images, labels = test_digits
    x = to_input(images, cnn.meta.mean, cnn.meta.std)
    feats = pooled_stages(cnn.model, x)
    with torch.no_grad():
        accs = [float((p(f).argmax(1) == labels).float().mean()) for p, f in zip(probes, feats, strict=True)]
    assert max(accs[1:]) > accs[0] + 0.05 and accs[-1] > 0.95, accs  # deeper stages know more than the first
    lens = cnn_lens(cnn.model, probes, x[:1])
    assert lens.probs.shape == (len(probes) + 1, 10) and lens.names[-1] == "the CNN's answer"
    with torch.no_grad():
        assert lens.probs[-1].argmax() == int(cnn.model(x[:1]).argmax())


def test_decided_at_is_the_first_layer_that_keeps_the_final_answer() -> None:
    eye = np.eye(10)
    assert Lens(eye[[3, 7, 7, 7]], ("a", "b", "c", "d")).decided_at() == 1
    assert Lens(eye[[7, 3, 7]], ("a", "b", "c")).decided_at() == 2  # changed its mind: counted from the last change
    assert Lens(eye[[7, 7]], ("a", "b")).decided_at() == 0
