"""The robustness lab's transforms on real MNIST test images, the sweep with the shipped checkpoints, and what
the page reads off a sweep (its figure and its one sentence)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vitdemo.checkpoints import load_checkpoint
from vitdemo.data import Split, load_raw
from vitdemo.evaluate import score_checkpoint
from vitdemo.explain.robustness import (
    CHANGES,
    Settings,
    SweepResult,
    apply_settings,
    fixed_subset,
    predict_changed,
    rotate,
    scale,
    shift,
    stroke,
    sweep,
    to_unit,
)
from vitdemo.views.robustness import summary_sentence, sweep_figure


@pytest.fixture(scope="module")
def test_split(data_dir: Path) -> Split:
    return load_raw("mnist", train=False, data_dir=data_dir)


@pytest.fixture(scope="module")
def digits(test_split: Split) -> torch.Tensor:
    """32 real test digits, (32, 28, 28) float in [0, 1]."""
    return to_unit(test_split.images[:32])


def ink(x: torch.Tensor) -> torch.Tensor:
    return x.sum(dim=(-2, -1))  # (B,)


def centre_of_mass(x: torch.Tensor) -> torch.Tensor:
    """(B, H, W) -> (B, 2) as (row, column)."""
    rows = torch.arange(x.shape[-2], dtype=x.dtype)
    cols = torch.arange(x.shape[-1], dtype=x.dtype)
    total = ink(x)
    return torch.stack([(x.sum(-1) * rows).sum(-1) / total, (x.sum(-2) * cols).sum(-1) / total], dim=1)


def spread(x: torch.Tensor) -> torch.Tensor:
    """Radius of gyration of the ink around its centre of mass, (B,)."""
    rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    com = centre_of_mass(x)
    d2 = (rows - com[:, 0, None, None]) ** 2 + (cols - com[:, 1, None, None]) ** 2  # (B, 28, 28)
    return ((x * d2).sum(dim=(-2, -1)) / ink(x)).sqrt()


# --- transforms ------------------------------------------------------------------------------------
def test_every_transform_is_the_identity_at_its_neutral_value(digits: torch.Tensor) -> None:
    for change in CHANGES:
        assert torch.equal(change.fn(digits, change.identity), digits), change.name
    assert torch.equal(apply_settings(digits, Settings()), digits)


def test_transforms_keep_the_batch_shape_and_dtype(digits: torch.Tensor) -> None:
    for change in CHANGES:
        for value in change.values:
            out = change.fn(digits, value)
            assert out.shape == digits.shape and out.dtype == digits.dtype, (change.name, value)
            assert float(out.min()) >= -1e-6 and float(out.max()) <= 1 + 1e-6, (change.name, value)


@pytest.mark.parametrize(("dx", "dy"), [(3, 0), (0, -2), (-2, 3), (1.5, 0.5)])
def test_shift_moves_the_centre_of_mass_by_the_asked_pixels(digits: torch.Tensor, dx: float, dy: float) -> None:
    moved = shift(digits, dx, dy)
    kept = torch.isclose(ink(moved), ink(digits), rtol=1e-4)  # digits whose ink stayed inside the frame
    assert kept.sum() >= 16
    delta = centre_of_mass(moved[kept]) - centre_of_mass(digits[kept])  # (K, 2) as (row, column)
    torch.testing.assert_close(delta, torch.tensor([[float(dy), float(dx)]]).expand_as(delta), atol=1e-3, rtol=0)


def test_rotation_by_90_degrees_four_times_is_the_identity(digits: torch.Tensor) -> None:
    x = digits
    for _ in range(4):
        x = rotate(x, 90)
    torch.testing.assert_close(x, digits, atol=1e-4, rtol=0)


def test_rotation_turns_anticlockwise_on_screen(digits: torch.Tensor) -> None:
    torch.testing.assert_close(rotate(digits, 90), torch.rot90(digits, 1, dims=(-2, -1)), atol=1e-4, rtol=0)
    torch.testing.assert_close(rotate(digits, -90), torch.rot90(digits, -1, dims=(-2, -1)), atol=1e-4, rtol=0)


def test_scale_changes_the_size_by_the_factor(digits: torch.Tensor) -> None:
    for factor in (0.75, 1.25):
        ratio = spread(scale(digits, factor)) / spread(digits)  # (B,)
        assert abs(float(ratio.median()) - factor) < 0.05 * factor, factor
    torch.testing.assert_close(ink(scale(digits, 0.5)), ink(digits) * 0.25, rtol=0.02, atol=0.5)  # area / 4


def test_thickening_adds_ink_and_thinning_removes_it(digits: torch.Tensor) -> None:
    amounts = [ink(stroke(digits, steps)) for steps in (-2, -1, -0.5, 0, 0.5, 1, 2, 3)]
    for thinner, thicker in zip(amounts, amounts[1:], strict=False):
        assert bool((thicker >= thinner).all())
    assert bool((amounts[5] > 1.3 * amounts[3]).all())  # one step adds about a pixel on each side
    assert bool((amounts[2] < amounts[3]).all())


def test_predict_changed_uses_calibrated_probabilities(mnist_checkpoints: Path, test_split: Split) -> None:
    models = {k: load_checkpoint(mnist_checkpoints / f"{k}_mnist.safetensors") for k in ("vit", "cnn")}
    image = test_split.images[0].numpy()  # a 7
    changed, predictions = predict_changed(models, image, Settings())
    np.testing.assert_allclose(changed, image / 255.0, atol=1e-6)
    for kind, loaded in models.items():
        x = (to_unit(test_split.images[:1]) - loaded.meta.mean) / loaded.meta.std  # (1, 28, 28)
        with torch.inference_mode():
            expected = loaded.probabilities(loaded.model(x[:, None]))[0].numpy()
        np.testing.assert_allclose(predictions[kind].probs, expected, atol=1e-5)
        assert predictions[kind].classes[predictions[kind].label] == "7"
    _, upside_down = predict_changed(models, image, Settings(degrees=180))
    assert {k: p.label for k, p in upside_down.items()} != {"vit": 7, "cnn": 7}


# --- the sweep -------------------------------------------------------------------------------------
def test_fixed_subset_is_the_same_for_a_seed(test_split: Split) -> None:
    a, b, c = fixed_subset(test_split, 50, 0), fixed_subset(test_split, 50, 0), fixed_subset(test_split, 50, 1)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)


def test_sweep_with_the_shipped_models(mnist_checkpoints: Path, test_split: Split) -> None:
    models = {k: load_checkpoint(mnist_checkpoints / f"{k}_mnist.safetensors") for k in ("vit", "cnn")}
    result = sweep(models, test_split, n=200, seed=0)
    subset = fixed_subset(test_split, 200, 0)
    assert result.n == 200
    values = sum(len(c.values) for c in CHANGES)
    assert result.forwards == 2 * (1 + values - len(CHANGES))  # the unchanged images are scored once per model
    for kind, loaded in models.items():
        plain = score_checkpoint(loaded, subset).accuracy
        assert result.plain[kind] == pytest.approx(plain, abs=1e-9)
        for change in CHANGES:
            assert result.accuracy[kind][change.name].shape == (len(change.values),)
            assert result.at(kind, change.name, change.identity) == pytest.approx(plain, abs=1e-9)
        far = max(result.at(kind, "shift", -10), result.at(kind, "shift", 10))
        assert far < plain - 0.2, (kind, far, plain)  # pushed 10 px sideways, digits are lost
        assert result.at(kind, "rotate", 60) < plain - 0.2
        assert result.at(kind, "stroke", -2) < 0.5  # the pen thinned away
        assert np.all((result.true_prob[kind]["rotate"] > 0) & (result.true_prob[kind]["rotate"] <= 1))


# --- what the page shows ---------------------------------------------------------------------------
def synthetic_result(vit: dict[str, list[float]], cnn: dict[str, list[float]]) -> SweepResult:
    values = {name: np.array([-1.0, 0.0, 1.0]) for name in vit}
    as_arrays = {"vit": {k: np.array(v) for k, v in vit.items()}, "cnn": {k: np.array(v) for k, v in cnn.items()}}
    return SweepResult(
        n=1000,
        seed=0,
        values=values,
        accuracy=as_arrays,
        true_prob=as_arrays,
        plain={"vit": 0.99, "cnn": 0.99},
        seconds=1.0,
        labels={k: k for k in vit},
    )


def test_the_sentence_says_which_model_holds_up_under_which_change() -> None:
    result = synthetic_result(
        vit={"shift": [0.5, 0.99, 0.5], "rotate": [0.9, 0.99, 0.9], "scale": [0.9, 0.99, 0.9]},
        cnn={"shift": [0.8, 0.99, 0.8], "rotate": [0.7, 0.99, 0.7], "scale": [0.905, 0.99, 0.9]},
    )
    sentence = summary_sentence(result)
    assert sentence.endswith(".") and ". " not in sentence  # one sentence
    assert "the CNN holds up better under shift (86.3% vs 66.3%)" in sentence
    assert "the ViT holds up better under rotation (93.0% vs 79.7%)" in sentence
    assert "within a point of each other under scale" in sentence
    assert sentence.startswith("Averaged over each range on 1,000 test images")


def test_the_sweep_figure_has_one_panel_per_change_and_one_line_per_model() -> None:
    result = synthetic_result(
        vit={c: [0.5, 0.9, 0.4] for c in ("shift", "rotate", "scale", "stroke")},
        cnn={c: [0.6, 0.9, 0.3] for c in ("shift", "rotate", "scale", "stroke")},
    )
    fig = sweep_figure(result)
    assert [a.text for a in fig.layout.annotations] == ["shift", "rotation", "scale", "stroke width"]
    assert len(fig.data) == 8
    assert [t.name for t in fig.data if t.showlegend] == ["ViT", "CNN"]
    assert list(fig.data[1].y) == [0.6, 0.9, 0.3]
