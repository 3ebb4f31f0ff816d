"""Faults and bad input: preprocessing never raises on a decodable image, and refuses what is not a digit.

Every image here goes through a real file on disk (PNG or JPEG bytes), as an upload or `predict` gets it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sklearn.datasets
from PIL import Image

from vitdemo.preprocess.pipeline import EMPTY_MESSAGE, NOT_A_DIGIT_MESSAGE, SPECK_MESSAGE, preprocess
from vitdemo.synth.drawn import drawn_digits
from vitdemo.synth.paper import smooth_noise

PHOTOS = Path(sklearn.datasets.__file__).parent / "images"  # real photos that scikit-learn ships


def saved(tmp_path: Path, array: np.ndarray, name: str = "image.png") -> bytes:
    """Write the array as an image file and read the file back, as an upload would arrive."""
    path = tmp_path / name
    Image.fromarray(array).save(path)
    return path.read_bytes()


def single_pixel() -> np.ndarray:
    a = np.zeros((100, 100), dtype=np.uint8)
    a[50, 50] = 255
    return a


def sparse_dots() -> np.ndarray:
    a = np.zeros((280, 280), dtype=np.uint8)
    a[::9, ::7] = 255  # lone dots on a grid, none touching another
    return a


def dotted_strip() -> np.ndarray:
    a = np.zeros((1, 2000), dtype=np.uint8)
    a[0, ::2] = 255
    return a


# --- never raises ---------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [single_pixel, sparse_dots, dotted_strip], ids=lambda f: f.__name__)
def test_marks_that_vanish_when_cleaned_are_no_digit(make, tmp_path: Path) -> None:
    """These raised IndexError (an empty mask after despeckling): a traceback on the Draw page."""
    pre = preprocess(saved(tmp_path, make()))
    assert pre.empty and pre.image is None
    assert pre.message == SPECK_MESSAGE
    assert "input" in pre.stages


@pytest.mark.parametrize(
    "array",
    [
        np.full((1, 1), 255, dtype=np.uint8),
        np.zeros((1, 1), dtype=np.uint8),
        np.array([[0, 255]], dtype=np.uint8),
        np.full((1, 2000), 255, dtype=np.uint8),  # a solid strip: all "ink", no background
        np.tile(np.array([[0], [255]], dtype=np.uint8), (1000, 1)),  # 2000x1 alternating
        np.eye(300, dtype=np.uint8) * 255,  # a 1 px diagonal
        np.pad(np.full((3, 3), 255, dtype=np.uint8), 1),  # a 5x5 image, a 3x3 blob
        np.random.default_rng(1).integers(0, 256, (3, 700), dtype=np.uint8),
    ],
    ids=["1x1-white", "1x1-black", "1x2", "solid-strip", "2000x1-stripes", "diagonal", "5x5-blob", "3x700-noise"],
)
def test_odd_shapes_and_contents_never_raise(array: np.ndarray, tmp_path: Path) -> None:
    pre = preprocess(saved(tmp_path, array))
    assert pre.empty == (pre.image is None)
    assert pre.empty == bool(pre.message)
    if pre.image is not None:
        assert pre.image.shape == (28, 28) and np.isfinite(pre.image).all()


def test_random_images_never_raise(tmp_path: Path) -> None:
    """A seeded fuzz: random sizes, modes, densities and contrasts, each through a PNG file."""
    rng = np.random.default_rng(0)
    for i in range(150):
        h, w = (int(x) for x in rng.integers(1, 120, 2))
        channels = [(), (3,), (4,)][i % 3]
        density = rng.uniform(0, 1) ** 3
        low, high = sorted(int(x) for x in rng.integers(0, 256, 2))
        a = np.where(rng.random((h, w, *channels)) < density, high, low).astype(np.uint8)
        pre = preprocess(saved(tmp_path, a, f"fuzz{i}.png"))
        assert pre.empty == (pre.image is None), i


def test_float_arrays_with_nan_and_inf_never_raise() -> None:
    a = np.zeros((50, 50), dtype=np.float64)
    a[10:40, 24:27] = np.inf
    a[0, 0] = np.nan
    pre = preprocess(a)
    assert pre.image is None or np.isfinite(pre.image).all()
    assert preprocess(np.full((20, 20), np.nan)).message == EMPTY_MESSAGE


# --- not a digit ----------------------------------------------------------------------------------


def noise_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "uniform-280": rng.integers(0, 256, (280, 280), dtype=np.uint8),
        "uniform-28": rng.integers(0, 256, (28, 28), dtype=np.uint8),
        "uniform-rgb": rng.integers(0, 256, (300, 400, 3), dtype=np.uint8),
        "uniform-1000": rng.integers(0, 256, (1000, 1000), dtype=np.uint8),
        "gaussian-faint": np.clip(128 + rng.normal(0, 5, (280, 280)), 0, 255).astype(np.uint8),
        "gaussian-strong": np.clip(128 + rng.normal(0, 60, (280, 280)), 0, 255).astype(np.uint8),
        "salt-and-pepper": np.where(rng.random((280, 280)) < 0.02, 255, 0).astype(np.uint8),
        "salt-and-pepper-dense": np.where(rng.random((280, 280)) < 0.3, 255, 0).astype(np.uint8),
        "fine-clouds": ((smooth_noise((280, 280), 40, rng) + 1) * 127).astype(np.uint8),
    }


@pytest.mark.parametrize("name", list(noise_images()))
def test_noise_is_not_a_digit(name: str, tmp_path: Path) -> None:
    """Pure noise was accepted as a digit (ViT "8" 42%, CNN "0" 63%)."""
    pre = preprocess(saved(tmp_path, noise_images()[name]))
    assert pre.empty and pre.image is None
    if pre.not_digit:
        assert pre.message == NOT_A_DIGIT_MESSAGE
    else:  # faint enough to be nothing at all is fine too, but never a digit
        assert pre.message in (EMPTY_MESSAGE, SPECK_MESSAGE)


def test_a_photo_is_not_a_digit(tmp_path: Path) -> None:
    photo = np.asarray(Image.open(PHOTOS / "china.jpg"))  # a real 427x640 photo of a building
    for name, array in (("photo.jpg", photo), ("photo-gray.png", np.asarray(Image.fromarray(photo).convert("L")))):
        pre = preprocess(saved(tmp_path, array, name))
        assert pre.empty and pre.not_digit and pre.message == NOT_A_DIGIT_MESSAGE, name
        assert pre.bbox is not None and "crop" in pre.stages  # what was found is still shown


def test_not_a_digit_is_a_flag_and_a_message() -> None:
    pre = preprocess(noise_images()["uniform-280"])
    assert pre.not_digit and pre.empty and pre.image is None and pre.message == NOT_A_DIGIT_MESSAGE
    ok = preprocess(next(drawn_digits(1))[0])
    assert not ok.not_digit and not ok.empty and ok.message == ""


# --- a real digit is never refused ----------------------------------------------------------------


def test_no_mnist_test_digit_is_refused(data_dir: Path) -> None:
    """The whole MNIST test split, each digit as an image through preprocess: none refused (about 5 s)."""
    from vitdemo.data import load_raw

    test = load_raw("mnist", train=False, data_dir=data_dir)
    refused = [i for i, image in enumerate(test.images.numpy()) if preprocess(image).empty]
    assert len(test.labels) == 10_000
    assert refused == []


def test_no_drawn_digit_is_refused() -> None:
    refused = [(i, label) for i, (image, label) in enumerate(drawn_digits(30)) if preprocess(image).empty]
    assert refused == []
