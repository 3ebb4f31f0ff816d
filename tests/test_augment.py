"""Pen width, elastic wobble and synthetic styles: batched, seeded, and off by default."""

import dataclasses

import numpy as np
import pytest
import torch
from measure import center_of_mass

from vitdemo.config import CNNConfig, ConfigError, TrainConfig
from vitdemo.data import Split, load_raw, to_input
from vitdemo.synth.styles import GLYPHS, style_pool
from vitdemo.training.augment import ELASTIC_PX, augment, elastic_offsets, mix_in, random_stroke_width, stroke_width

MEAN, STD = 0.1307, 0.3081
BG = -MEAN / STD  # the background after normalisation


@pytest.fixture(scope="module")
def digits(data_dir) -> torch.Tensor:
    return to_input(load_raw("mnist", train=False, data_dir=data_dir).images[:32], MEAN, STD)  # (32, 1, 28, 28)


def ink(x: torch.Tensor) -> torch.Tensor:
    """Ink mass per image, (B,)."""
    return (x * STD + MEAN).clamp(0, 1).sum(dim=(1, 2, 3))


def test_stroke_width_thickens_and_thins_each_image_by_its_own_amount(digits) -> None:
    x = digits[:4]
    amounts = torch.tensor([0.0, 1.0, 2.0, -1.0])
    out = stroke_width(x, amounts, BG)
    assert torch.equal(out[0], x[0])  # amount 0: unchanged
    base = ink(x)
    mass = ink(out)
    assert mass[1] > 1.3 * base[1] and mass[2] > 1.2 * ink(stroke_width(x[2:3], torch.ones(1), BG))[0]
    assert mass[3] < 0.8 * base[3] and mass[3] > 0.15 * base[3]  # thinner, not wiped out
    alone = stroke_width(x[1:2], torch.tensor([1.0]), BG)
    assert torch.allclose(alone[0], out[1])  # one image's amount does not touch the others


def test_random_stroke_width_is_seeded_batched_and_off_at_zero(digits) -> None:
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    assert random_stroke_width(digits, 0.0, BG, g) is digits and torch.equal(g.get_state(), state)  # no draws
    a = random_stroke_width(digits, 1.0, BG, torch.Generator().manual_seed(1))
    b = random_stroke_width(digits, 1.0, BG, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    ratio = ink(a) / ink(digits)
    assert (ratio > 1.2).sum() >= 5 and (ratio < 0.9).sum() >= 5  # some thicker, some thinner


def test_elastic_field_is_smooth_and_bounded() -> None:
    g = torch.Generator().manual_seed(0)
    field = elastic_offsets(16, 28, 28, 1.0, g, torch.device("cpu"))  # (16, 28, 28, 2)
    px = field * 28 / 2  # in pixels
    assert field.shape == (16, 28, 28, 2)
    assert px.abs().max() <= ELASTIC_PX * 1.05 and px.abs().mean() > 0.2
    step = (px[:, 1:] - px[:, :-1]).abs().max()  # neighbouring pixels move together
    assert step < 0.6  # far from folding the image over itself (1 px per px)


def test_elastic_off_leaves_the_affine_stream_as_it_was(digits) -> None:
    """Runs without the new augmentation draw exactly the random numbers they drew before it existed."""
    a = augment(digits, 1.0, torch.Generator().manual_seed(3))
    b = augment(digits, 1.0, torch.Generator().manual_seed(3), elastic=0.0)
    c = augment(digits, 1.0, torch.Generator().manual_seed(3), elastic=1.0)
    assert torch.equal(a, b) and not torch.equal(a, c)
    only_elastic = augment(digits, 0.0, torch.Generator().manual_seed(3), elastic=1.0)
    assert only_elastic.shape == digits.shape and not torch.equal(only_elastic, digits)
    ratio = ink(only_elastic) / ink(digits)  # moved, not lost: locally squeezed or stretched, about as much ink
    assert ratio.min() > 0.7 and ratio.max() < 1.4 and abs(ratio.mean() - 1) < 0.1


def test_mix_in_adds_a_share_of_the_pool() -> None:
    pool = Split(torch.full((10, 28, 28), 7, dtype=torch.uint8), torch.arange(10))
    images, labels = torch.zeros(40, 28, 28, dtype=torch.uint8), torch.full((40,), 3)
    out_images, out_labels = mix_in(images, labels, pool, 0.1, torch.Generator().manual_seed(0))
    assert out_images.shape == (44, 28, 28) and torch.equal(out_images[:40], images)
    assert torch.equal(out_labels[:40], labels) and (out_images[40:] == 7).all()
    assert mix_in(images, labels, pool, 0.0)[0] is images
    assert len(mix_in(images[:3], labels[:3], pool, 0.05)[1]) == 4  # at least one


def test_style_pool_is_mnist_shaped_reproducible_and_covers_every_digit() -> None:
    images, labels = style_pool(300, seed=0)
    again, _ = style_pool(300, seed=0)
    other, _ = style_pool(300, seed=1)
    assert images.shape == (300, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images, again) and not np.array_equal(images, other)
    assert set(labels.tolist()) == set(range(10)) == {g.label for g in GLYPHS.values()}
    for img in images[:50]:
        rows, cols = np.nonzero(img > 40)
        assert 18 <= max(np.ptp(rows), np.ptp(cols)) + 1 <= 22  # the longer side fitted to about 20 px, as MNIST
        cy, cx = center_of_mass(img.astype(np.float32))
        assert abs(cy - 14.0) < 0.5 and abs(cx - 14.0) < 0.5  # centre of mass where MNIST has it


def test_handwriting_settings_default_off_and_are_validated() -> None:
    config = TrainConfig()
    assert (config.stroke_aug, config.elastic, config.styles_ratio) == (0.0, 0.0, 0.0)
    old = {k: v for k, v in config.to_dict().items() if k not in ("stroke_aug", "elastic", "styles_ratio", "resume")}
    assert TrainConfig.from_dict(old) == config  # a run or checkpoint stored before these settings loads unchanged
    for field, bad in (("stroke_aug", 2.5), ("elastic", -1.0), ("styles_ratio", 0.6)):
        with pytest.raises(ConfigError, match=field):
            dataclasses.replace(config, **{field: bad}).validate()
    with pytest.raises(ConfigError, match="MNIST only"):
        TrainConfig(model=CNNConfig(), dataset="fashion", styles_ratio=0.05).validate()
