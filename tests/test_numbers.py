"""Written numbers (vitdemo.numbers): the generator, its splits, the wide-image preprocessing, the readers' decoding
and their metrics. Tiny models and a few numbers: the shipped checkpoints are what accuracy is measured on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitdemo.data import Split, load_dataset, load_raw
from vitdemo.numbers import CANVAS_H, CANVAS_W
from vitdemo.numbers.evaluate import edits, score_texts, single_digits
from vitdemo.numbers.splits import TEST_SEED, load_numbers
from vitdemo.numbers.synth import HANDWRITING, INK, NumberStyle, make_numbers
from vitdemo.preprocess.number import EMPTY, NOT_WRITING, TOO_LONG, preprocess_number


@pytest.fixture(scope="module")
def t10k() -> Split:
    return load_raw("mnist", train=False)


def test_the_same_seed_writes_the_same_numbers_and_lengths_are_balanced(t10k: Split) -> None:
    a, b = make_numbers(t10k, 80, seed=3), make_numbers(t10k, 80, seed=3)
    c = make_numbers(t10k, 80, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.boxes, b.boxes) and a.texts() == b.texts()
    assert not torch.equal(a.images, c.images)
    assert a.images.shape == (80, CANVAS_H, CANVAS_W) and a.images.dtype == torch.uint8
    assert torch.bincount(a.lengths, minlength=9)[1:].tolist() == [10] * 8  # 1..8 digits, 10 of each
    assert all(len(t) == int(n) for t, n in zip(a.texts(), a.lengths, strict=True))


def test_every_ink_pixel_lies_in_a_box_of_its_own_number(t10k: Split) -> None:
    numbers = make_numbers(t10k, 64, seed=1, style=HANDWRITING)
    ys, xs = torch.meshgrid(torch.arange(CANVAS_H) + 0.5, torch.arange(CANVAS_W) + 0.5, indexing="ij")
    for img, boxes, n in zip(numbers.images, numbers.boxes, numbers.lengths, strict=True):
        inside = torch.zeros(CANVAS_H, CANVAS_W, dtype=torch.bool)
        for x0, y0, x1, y1 in boxes[: int(n)].tolist():
            assert 0 <= x0 < x1 <= CANVAS_W and 0 <= y0 < y1 <= CANVAS_H  # a real box, on the canvas
            inside |= (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
        ink = img.float() / 255 > INK + 1 / 255  # ink once rounded to a byte
        assert ink.any() and not (ink & ~inside).any()


def test_numbers_use_only_their_pool_and_the_styles_share() -> None:
    threes = Split(load_raw("mnist", train=False).images[:50], torch.full((50,), 3))
    sevens = Split(threes.images.flip(1), torch.full((50,), 7))  # stand-ins: only the labels matter here
    only_pool = make_numbers(threes, 20, seed=0)
    assert set("".join(only_pool.texts())) == {"3"}
    all_styles = make_numbers(threes, 20, seed=0, style=NumberStyle(styles_ratio=1.0), styles=sevens)
    assert set("".join(all_styles.texts())) == {"7"}


def test_the_splits_use_the_projects_digit_splits_and_t10k_for_test() -> None:
    data = load_numbers(val_numbers=16, test_numbers=16)
    digits = load_dataset("mnist")
    assert len(data.train) == 55000 and torch.equal(data.train.images, digits.train.images)
    assert torch.equal(data.test.images, make_numbers(digits.test, 16, TEST_SEED).images)  # t10k's digits only
    assert torch.equal(data.val.images, make_numbers(digits.val, 16, 0x5A11).images)  # the held-out 5,000


def test_single_digits_place_every_test_image_once(t10k: Split) -> None:
    part = Split(t10k.images[:30], t10k.labels[:30])
    numbers = single_digits(part)
    assert numbers.texts() == [str(int(d)) for d in part.labels]


def test_edits_name_substitutions_misses_and_extras() -> None:
    assert edits("2026", "2026") == []
    assert edits("2026", "2028") == ["6 -> 8"]
    assert edits("2026", "226") == ["missed 0"]
    assert edits("17", "117") == ["extra 1"]
    report = score_texts(["2026", "7", "123"], ["2026", "1", "12"])
    assert report.accuracy == pytest.approx(1 / 3) and report.cer == pytest.approx(2 / 8)
    assert report.by_length == {1: 0.0, 3: 0.0, 4: 1.0}
    assert report.misread == [(1, "7", "1"), (2, "123", "12")]


def _canvas_of(numbers, i: int) -> np.ndarray:
    """A written number as a drawing on a 280-high white page (dark ink), as an upload would come."""
    from PIL import Image

    img = Image.fromarray(255 - numbers.images[i].numpy()).resize((CANVAS_W * 5, CANVAS_H * 5))
    return np.asarray(img)


def test_a_wide_drawing_is_fitted_to_the_canvas_and_boxes_map_back(t10k: Split) -> None:
    numbers = make_numbers(t10k, 8, seed=2)
    page = _canvas_of(numbers, 7)
    pre = preprocess_number(page)
    assert pre.message == "" and pre.image is not None and pre.image.shape == (CANVAS_H, CANVAS_W)
    top, left, bottom, right = pre.bbox
    x0, y0, x1, y1 = pre.to_input_box((0.0, 0.0, float(CANVAS_W), float(CANVAS_H)))
    assert x0 <= left and y0 <= top and x1 >= right and y1 >= bottom  # the whole canvas covers the ink's box


def test_what_is_not_a_number_gets_one_sentence() -> None:
    assert preprocess_number(np.zeros((280, 280), np.uint8)).message == EMPTY
    rng = np.random.default_rng(0)
    room = (rng.random((240, 320, 3)) * 255).astype(np.uint8)  # a photo's texture everywhere
    assert preprocess_number(room).message == NOT_WRITING
    long_line = np.zeros((40, 2000), np.uint8)
    for i in range(0, 1980, 40):  # twenty and more strokes in a row: far more than 8 digits
        long_line[5:35, i : i + 4] = 255
    assert preprocess_number(long_line).message == TOO_LONG
