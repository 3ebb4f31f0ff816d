"""Readable maps (vitdemo.explain.readable): on a projector the CNN's integrated-gradients map must carry about as
much visual weight as the ViT's attention rollout, measured the same way for both (the share of the map at least
half bright), on the shipped models and real test digits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vitdemo.checkpoints import load_checkpoint
from vitdemo.data import load_raw, to_input
from vitdemo.explain import readable
from vitdemo.explain.maps import explain_prediction
from vitdemo.explain.trust import fixed_indices


def test_a_sparse_map_becomes_a_glow_and_a_blank_one_stays_blank() -> None:
    heat = torch.zeros(2, 28, 28)
    heat[0, 10:18, 13:15] = torch.linspace(0.05, 1.0, 16).view(8, 2)  # a stroke, one pixel far brighter than most
    shown = readable.readable_maps(heat)
    assert shown.shape == heat.shape and float(shown.min()) >= 0.0 and float(shown.max()) <= 1.0
    assert readable.visual_weight(shown)[0] > 2 * readable.visual_weight(heat)[0]
    assert float(shown[1].abs().max()) == 0.0  # nothing to show: nothing shown
    assert float(shown[0, 0, 0]) == 0.0  # far from the stroke: dark


def test_the_rollout_is_shown_as_computed_and_gradient_maps_made_readable() -> None:
    heat = torch.rand(1, 28, 28) ** 8
    assert torch.equal(readable.shown_maps("vit", heat), heat)
    assert not torch.equal(readable.shown_maps("cnn", heat), heat)
    assert readable.shown_map("cnn", heat[0].numpy()).shape == (28, 28)


def test_the_blur_is_torchvisions_without_importing_it() -> None:
    from torchvision.transforms.v2.functional import gaussian_blur  # here only: the app does not import it

    heat = torch.rand(3, 1, 28, 28) ** 4
    for sigma in (0.6, 1.0, 2.0):
        kernel = 2 * -(-3 * sigma // 1) + 1
        expected = gaussian_blur(heat, kernel_size=[int(kernel)] * 2, sigma=[sigma, sigma])
        assert torch.allclose(readable.gaussian_blur(heat, sigma), expected, atol=1e-6)


def test_the_cnn_map_weighs_about_as_much_as_the_vits_on_real_digits(mnist_checkpoints: Path, data_dir: Path) -> None:
    split = load_raw("mnist", train=False, data_dir=str(data_dir))
    raw = split.images[fixed_indices(len(split), 32, seed=3)]  # (32, 28, 28) uint8
    weight, before = {}, 0.0
    for kind in ("vit", "cnn"):
        loaded = load_checkpoint(mnist_checkpoints / f"{kind}_mnist.safetensors")
        x = to_input(raw, loaded.meta.mean, loaded.meta.std)  # (32, 1, 28, 28)
        _, heat, _ = explain_prediction(loaded.model, x, kind, mean=loaded.meta.mean, std=loaded.meta.std)
        weight[kind] = float(readable.visual_weight(readable.shown_maps(kind, heat)).mean())
        if kind == "cnn":
            before = float(readable.visual_weight(heat).mean())
    # measured: ViT 0.22; the CNN's raw map 0.013 (a grey digit with specks), shown 0.19
    assert before < 0.25 * weight["vit"], "the measure tells the raw maps apart (else this test could not fail)"
    assert weight["cnn"] == pytest.approx(weight["vit"], rel=0.35), weight
