"""The app's one colour map: heat maps as images (colorize, overlay) and the confusion matrix's colour scale."""

from __future__ import annotations

import numpy as np

from vitdemo.views import charts
from vitdemo.views.colors import INFERNO, colorize, colorscale, hex_color, overlay


def test_colorize_is_a_dark_to_bright_colour_map() -> None:
    heat = np.linspace(0, 1, 256).reshape(16, 16)
    rgb = colorize(heat)
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    lo, hi = colorize(np.zeros((1, 1)))[0, 0], colorize(np.ones((1, 1)))[0, 0]
    assert lo.tolist() == [0, 0, 4] and hi.tolist() == [252, 255, 164]  # inferno's two ends
    luma = rgb.reshape(-1, 3).astype(float) @ np.array([0.2126, 0.7152, 0.0722])
    assert np.all(np.diff(luma) >= -0.5)  # brighter as the heat rises: readable without colour
    assert np.array_equal(colorize(np.array([[-1.0, np.nan, 2.0]])), colorize(np.array([[0.0, 0.0, 1.0]])))


def test_overlay_blends_image_and_resized_heat() -> None:
    image = np.zeros((28, 28))
    image[10:18, 12:16] = 1.0
    heat = np.zeros((4, 4))
    heat[0, 0] = 1.0
    out = overlay(image, heat)
    assert out.shape == (28, 28, 3) and out.dtype == np.uint8
    assert not np.array_equal(out[0, 0], out[27, 27])  # hot corner versus cold corner
    assert np.array_equal(overlay((image * 255).astype(np.uint8), heat), out)  # uint8 or [0, 1] floats
    assert np.array_equal(overlay(image, heat, alpha=0.0), np.repeat((image * 255).astype(np.uint8)[..., None], 3, -1))
    full = np.kron(heat, np.ones((7, 7)))  # already (28, 28): used as is
    assert np.array_equal(overlay(image, full, alpha=1.0), colorize(full))


def test_the_confusion_matrix_uses_the_overlay_colours() -> None:
    scale = colorscale()
    assert scale == charts.HEAT_COLORS
    positions = [at for at, _ in scale]
    assert positions[0] == 0.0 and positions[-1] == 1.0 and positions == sorted(positions)
    for at, color in scale[1:]:  # each stop is exactly what colorize paints at that heat
        assert color == "#{:02x}{:02x}{:02x}".format(*colorize(np.array([[at]]))[0, 0])
    assert hex_color(INFERNO[-1]) == scale[-1][1] == "#fcffa4"
    # Streamlit turns "#0000xx" into its theme's colours: inferno's darkest "#000004" must not reach plotly
    assert not any(color.startswith("#0000") for _, color in scale)
    assert scale[0][1] == "#03020d"
