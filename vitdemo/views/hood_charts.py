"""Figures for the Under the hood page: the input with the ViT's patch grid, attention maps per layer and head,
position-embedding similarities, the CNN's feature maps and first-layer filters. Plotly over numpy; no Streamlit.

Every map figure carries a colour bar; maps that are compared share one colour scale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vitdemo.explain.hood import mosaic, tile_origin
from vitdemo.views.charts import HEAT_COLORS

GREYS = [[0.0, "#03020d"], [1.0, "#ffffff"]]  # light ink on dark, as the models see it
DIVERGING = [[0.0, "#2c7bb6"], [0.5, "#f7f7f7"], [1.0, "#d7191c"]]  # negative blue, 0 white, positive red
GRID_COLOR = "#56ccf2"
PICK_COLOR = "#3fb68b"


def _square_axes(fig: go.Figure) -> None:
    """No ticks or grid; image rows top to bottom; every map square (its pixels square, whatever the width)."""
    fig.update_xaxes(
        showticklabels=False, ticks="", showgrid=False, zeroline=False, fixedrange=True, constrain="domain"
    )
    fig.update_yaxes(
        showticklabels=False, ticks="", showgrid=False, zeroline=False, fixedrange=True, autorange="reversed",
        constrain="domain",
    )  # fmt: skip
    for name in fig.layout:  # each subplot's y axis keeps the scale of its own x axis
        if name.startswith("yaxis"):
            fig.layout[name].scaleanchor = "x" + name.removeprefix("yaxis")


def patch_grid_figure(
    image: np.ndarray, grid: int, selected: tuple[int, int] | None = None, *, height: int = 360
) -> go.Figure:
    """The 28x28 input (H, W) in [0, 1] with the ViT's patch grid drawn over it; `selected` (row, col) is
    outlined. Each patch carries an invisible marker whose customdata is [row, col], so clicking picks it."""
    img = np.asarray(image, dtype=np.float64)
    size = img.shape[0]
    patch = size / grid
    fig = go.Figure(go.Heatmap(z=img, colorscale=GREYS, zmin=0, zmax=1, showscale=False, hoverinfo="skip"))
    for k in range(1, grid):
        edge = k * patch - 0.5
        fig.add_shape(type="line", x0=edge, x1=edge, y0=-0.5, y1=size - 0.5, line={"color": GRID_COLOR, "width": 1})
        fig.add_shape(type="line", x0=-0.5, x1=size - 0.5, y0=edge, y1=edge, line={"color": GRID_COLOR, "width": 1})
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    centres = (np.arange(grid) + 0.5) * patch - 0.5
    fig.add_trace(
        go.Scatter(
            x=centres[cols.ravel()],
            y=centres[rows.ravel()],
            mode="markers",
            marker={"size": max(8, int(height / grid * 0.8)), "color": "rgba(0,0,0,0)", "symbol": "square"},
            customdata=np.stack([rows.ravel(), cols.ravel()], axis=1).tolist(),
            hovertemplate="patch row %{customdata[0]}, column %{customdata[1]}<extra></extra>",
            showlegend=False,
            name="patches",
        )
    )
    if selected is not None:
        r, c = selected
        fig.add_shape(
            type="rect",
            x0=c * patch - 0.5,
            x1=(c + 1) * patch - 0.5,
            y0=r * patch - 0.5,
            y1=(r + 1) * patch - 0.5,
            line={"color": PICK_COLOR, "width": 4},
        )
    _square_axes(fig)
    fig.update_layout(
        height=height, width=height, margin={"l": 0, "r": 0, "t": 0, "b": 0}, clickmode="event+select", dragmode=False
    )
    return fig


def selected_patch(event: Any) -> tuple[int, int] | None:
    """(row, col) from st.plotly_chart's selection event on a patch_grid_figure, or None."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points or []:
        data = point.get("customdata")
        if isinstance(data, dict):  # a typed array's row can arrive as {"0": r, "1": c}
            data = [data[k] for k in sorted(data, key=int)]
        if isinstance(data, list | tuple) and len(data) == 2:
            return int(data[0]), int(data[1])
    return None


def map_grid_figure(
    maps: np.ndarray,
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    colorbar: str,
    zmin: float = 0.0,
    zmax: float | None = None,
    colorscale: Any = None,
    mark: tuple[int, int] | None = None,
    percent: bool = True,
    tile_px: int = 110,
) -> go.Figure:
    """Maps (R, C, g, g) as an R x C grid of heat maps with one shared colour scale (0..zmax, default the
    largest value); `mark` (row, col) outlines one cell in every map (the patch that looks)."""
    maps = np.asarray(maps, dtype=np.float64)
    R, C, g, _ = maps.shape
    zmax = float(np.nanmax(maps)) if zmax is None else zmax
    fig = make_subplots(
        rows=R,
        cols=C,
        column_titles=list(col_labels),
        row_titles=list(row_labels),
        horizontal_spacing=0.012,
        vertical_spacing=0.012,
    )
    fmt = "%{z:.1%}" if percent else "%{z:.3f}"
    for r in range(R):
        for c in range(C):
            fig.add_trace(
                go.Heatmap(
                    z=maps[r, c],
                    coloraxis="coloraxis",
                    hovertemplate=f"{row_labels[r]}, {col_labels[c]}<br>row %{{y}}, column %{{x}}: {fmt}<extra></extra>",
                ),
                row=r + 1,
                col=c + 1,
            )
            if mark is not None:
                fig.add_shape(
                    type="rect",
                    x0=mark[1] - 0.5,
                    x1=mark[1] + 0.5,
                    y0=mark[0] - 0.5,
                    y1=mark[0] + 0.5,
                    line={"color": PICK_COLOR, "width": 2},
                    row=r + 1,
                    col=c + 1,
                )
    _square_axes(fig)
    fig.update_layout(
        coloraxis={
            "colorscale": colorscale or HEAT_COLORS,
            "cmin": zmin,
            "cmax": zmax,
            "colorbar": {  # below the maps, so that a narrow screen gives its width to the maps
                "title": {"text": colorbar, "side": "top"},
                "tickformat": ".0%" if percent else None,
                "orientation": "h",
                "x": 0,
                "xanchor": "left",
                "y": -0.02,
                "yanchor": "top",
                "len": 0.6,
                "thickness": 12,
            },
        },
        height=R * tile_px + 110,
        margin={"l": 0, "r": 10, "t": 30, "b": 70},
    )
    return fig


def mosaic_figure(
    maps: np.ndarray,
    *,
    cols: int,
    colorbar: str,
    colorscale: Any = None,
    zmin: float | None = None,
    zmax: float | None = None,
    tile_names: Sequence[str] | None = None,
    height: int = 520,
    percent: bool = False,
) -> go.Figure:
    """Many small maps (N, h, w) as one heat map, `cols` to a row with gaps between them, one colour scale;
    hovering a pixel names its map (`tile_names`) and value."""
    maps = np.asarray(maps, dtype=np.float64)
    n, h, w = maps.shape
    big = mosaic(maps, cols)  # (rows * (h + 1) - 1, cols * (w + 1) - 1), NaN between tiles
    names = np.full(big.shape, "", dtype=object)  # hover text: which map, which pixel
    for i in range(n):
        r0, c0 = tile_origin(i, cols, (h, w))
        name = tile_names[i] if tile_names else f"map {i + 1}"
        cells = [[f"{name} · row {y}, column {x}" for x in range(w)] for y in range(h)]
        names[r0 : r0 + h, c0 : c0 + w] = np.array(cells, dtype=object)
    fmt = "%{z:.1%}" if percent else "%{z:.3f}"
    fig = go.Figure(
        go.Heatmap(
            z=big,
            customdata=names,
            colorscale=colorscale or HEAT_COLORS,
            zmin=zmin,
            zmax=zmax,
            hoverongaps=False,
            colorbar={"title": {"text": colorbar, "side": "right"}, "tickformat": ".0%" if percent else None},
            hovertemplate=f"%{{customdata}}: {fmt}<extra></extra>",
        )
    )
    _square_axes(fig)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10}, plot_bgcolor="rgba(0,0,0,0)")
    return fig


def lens_figure(probs: np.ndarray, layers: Sequence[str], classes: Sequence[str]) -> go.Figure:
    """What each layer would answer (vitdemo.explain.lens): one row a layer, one column a class, each cell its
    probability with the percentage written on it; the first layer at the top, the model's answer at the bottom."""
    fig = go.Figure(
        go.Heatmap(
            z=probs * 100,
            x=list(classes),
            y=list(layers),
            zmin=0,
            zmax=100,
            colorscale=HEAT_COLORS,
            text=[[f"{p:.0%}" if p >= 0.05 else "" for p in row] for row in probs],
            texttemplate="%{text}",
            colorbar={"title": "%", "thickness": 10},
            hovertemplate="%{y}: %{x} %{z:.0f}%<extra></extra>",
        )  # fmt: skip
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", title="answer")
    fig.update_layout(height=60 + 32 * len(layers), margin={"l": 10, "r": 10, "t": 10, "b": 40})
    return fig


def lens_sentence(model: str, names: Sequence[str], probs: np.ndarray, decided: int, classes: Sequence[str]) -> str:
    """'The ViT has made up its mind after block 3 of 6: 7 (98% at the end).'"""
    answer = int(probs[-1].argmax())
    where = "only at the very end" if decided == len(names) - 1 else names[decided]
    return (
        f"The {model} settles on {classes[answer]} {where} and keeps it "
        f"({probs[-1, answer]:.0%} at the end); before that, earlier layers would have answered otherwise."
        if decided > 0
        else f"The {model} already answers {classes[answer]} {names[0]} and keeps it ({probs[-1, answer]:.0%} at the end)."
    )
