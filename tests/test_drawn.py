import numpy as np

from vitdemo.drawn import TEMPLATES, drawn_digits
from vitdemo.preprocess import preprocess


def test_drawn_set_is_reproducible_and_balanced() -> None:
    a = list(drawn_digits(2, seed=5))
    b = list(drawn_digits(2, seed=5))
    c = list(drawn_digits(2, seed=6))
    assert [label for _, label in a] == list(range(10)) * 2
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for (x, _), (y, _) in zip(a, c, strict=True))


def test_drawings_look_like_the_canvas_and_preprocess_to_digits() -> None:
    for image, label in drawn_digits(3, seed=0):
        assert image.shape == (280, 280, 4) and image.dtype == np.uint8
        assert image[..., 3].max() == 255 and image[..., 3].min() == 0  # strokes on a transparent canvas
        pre = preprocess(image)
        assert not pre.empty, label
        assert pre.image.shape == (28, 28)


def test_every_digit_has_templates() -> None:
    assert sorted(TEMPLATES) == list(range(10))
    assert all(len(t) >= 2 for t in TEMPLATES.values())
