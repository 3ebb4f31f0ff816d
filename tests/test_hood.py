"""vitdemo.explain.hood: attention per layer and head, position-embedding similarity, CNN stages and filters, mosaics;
hand-made cases with known answers, then the real shipped checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vitdemo.checkpoints import load_checkpoint
from vitdemo.data import load_raw, to_input
from vitdemo.explain.hood import (
    class_token_attention,
    cnn_stages,
    first_filters,
    grid_of,
    mosaic,
    most_varied_channels,
    neighbour_similarity,
    patch_attention,
    position_similarity,
    tile_origin,
    token_attention,
    vit_attention,
    with_head_mean,
)
from vitdemo.families.cnn import stage_sides


def hand_attention(layers: int = 2, heads: int = 3, grid: int = 2) -> torch.Tensor:
    """(L, heads, T, T) with entry [l, h, q, k] = 1000 l + 100 h + 10 q + k: every value says where it came from."""
    T = 1 + grid * grid
    layer, h, q, k = torch.meshgrid(
        *(torch.arange(n, dtype=torch.float32) for n in (layers, heads, T, T)), indexing="ij"
    )
    return 1000 * layer + 100 * h + 10 * q + k


def test_token_and_patch_attention_read_the_right_rows() -> None:
    attn = hand_attention()  # T = 5: class token + a 2x2 grid
    assert grid_of(attn) == 2
    cls = class_token_attention(attn)  # (L, heads, 2, 2)
    assert cls.shape == (2, 3, 2, 2)
    assert cls[1, 2].tolist() == [[1201, 1202], [1203, 1204]]  # query 0, keys 1..4 in row-major order
    patch = patch_attention(attn, 1, 0)  # row 1, column 0 -> token 1 + 2 = 3
    assert patch[0, 1].tolist() == [[131, 132], [133, 134]]
    assert torch.equal(patch, token_attention(attn, 3))
    with pytest.raises(ValueError, match="outside"):
        patch_attention(attn, 2, 0)
    with pytest.raises(ValueError, match="out of range"):
        token_attention(attn, 5)
    with pytest.raises(ValueError, match="square grid"):
        grid_of(torch.zeros(1, 1, 7, 7))  # neither 1 + g*g nor 1 + g*g + 1 (a distilled ViT's token after them)
    distilled = torch.arange(6.0).expand(1, 1, 6, 6)  # class token, 2x2 patches, distillation token
    assert grid_of(distilled) == 2 and token_attention(distilled, 0)[0, 0].tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_with_head_mean_puts_the_mean_first() -> None:
    maps = torch.arange(2 * 3 * 4.0).view(2, 3, 2, 2)
    out = with_head_mean(maps)
    assert out.shape == (2, 4, 2, 2)
    assert torch.equal(out[:, 0], maps.mean(1)) and torch.equal(out[:, 1:], maps)


class Positions(nn.Module):
    def __init__(self, pos: torch.Tensor) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(pos)


def test_position_similarity_on_hand_made_embeddings() -> None:
    # A 2x2 grid: the class token, then patches whose embeddings are e0, e0, e1, -e1.
    pos = torch.tensor([[[9.0, 9.0], [1.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, -1.0]]])  # (1, T=5, D=2)
    sim = position_similarity(Positions(pos))  # (4, 2, 2)
    assert sim.shape == (4, 2, 2)
    assert sim[0].tolist() == [[1.0, 1.0], [0.0, 0.0]]  # the same direction as patch 1, orthogonal to 2 and 3
    assert sim[3].tolist() == [[0.0, 0.0], [-1.0, 1.0]]
    near, far = neighbour_similarity(sim)
    # Neighbours: (0,1) 1, (0,2) 0, (1,3) 0, (2,3) -1, both ways -> mean 0; the diagonals (0,3), (1,2): 0.
    assert near == pytest.approx(0.0) and far == pytest.approx(0.0)


def test_mosaic_lays_tiles_out_row_by_row_with_gaps() -> None:
    maps = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)  # 5 tiles of 2x3
    out = mosaic(maps, cols=2)
    assert out.shape == (3 * 3 - 1, 2 * 4 - 1)  # 3 rows of tiles, 2 columns, 1-pixel gaps
    assert [tile_origin(i, 2, (2, 3)) for i in range(5)] == [(0, 0), (0, 4), (3, 0), (3, 4), (6, 0)]
    assert np.array_equal(out[0:2, 0:3], maps[0]) and np.array_equal(out[0:2, 4:7], maps[1])
    assert np.array_equal(out[6:8, 0:3], maps[4])
    assert np.isnan(out[2]).all() and np.isnan(out[:, 3]).all() and np.isnan(out[6:8, 4:7]).all()
    assert tile_origin(3, cols=2, shape=(7, 7)) == (8, 8)
    with pytest.raises(ValueError, match="maps"):
        mosaic(np.zeros((2, 2)), cols=1)


def test_most_varied_channels() -> None:
    acts = torch.zeros(4, 2, 2)
    acts[2] = 9.0  # the largest mean, but flat: shows nothing
    acts[0, 0, 0] = 1.0
    acts[3, 0, 0] = 8.0
    acts[1, 1] = 0.5
    assert most_varied_channels(acts, 3).tolist() == [3, 0, 1]
    assert most_varied_channels(acts, 10).tolist() == [3, 0, 1, 2]


# --------------------------------------------------------------------------------------------------
# The real shipped checkpoints
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digit(data_dir: Path) -> torch.Tensor:
    if not (data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        pytest.skip(f"MNIST not found under {data_dir} (set VITDEMO_DATA_DIR)")
    return load_raw("mnist", train=False, data_dir=data_dir).images[:1]  # (1, 28, 28) uint8, a 7


def test_vit_attention_of_the_shipped_vit(mnist_checkpoints: Path, digit: torch.Tensor) -> None:
    loaded = load_checkpoint(mnist_checkpoints / "vit_mnist.safetensors")
    cfg = loaded.meta.model_config
    x = to_input(digit, loaded.meta.mean, loaded.meta.std)
    attn = vit_attention(loaded.model, x)
    T = 1 + cfg.grid**2
    assert attn.shape == (cfg.depth, cfg.num_heads, T, T) and not attn.requires_grad
    assert torch.allclose(attn.sum(-1), torch.ones(cfg.depth, cfg.num_heads, T), atol=1e-5)
    _, expected = loaded.model(x, return_attn=True)
    assert torch.equal(attn[2], expected[2][0])
    cls = class_token_attention(attn)  # what the class token gives the patches
    assert cls.shape == (cfg.depth, cfg.num_heads, cfg.grid, cfg.grid)
    assert torch.allclose(cls.sum((2, 3)) + attn[:, :, 0, 0], torch.ones(cfg.depth, cfg.num_heads), atol=1e-5)
    with pytest.raises(ValueError, match="one input"):
        vit_attention(loaded.model, x.expand(2, -1, -1, -1))


def test_the_shipped_vit_learned_a_2d_grid_of_positions(mnist_checkpoints: Path) -> None:
    loaded = load_checkpoint(mnist_checkpoints / "vit_mnist.safetensors")
    sim = position_similarity(loaded.model)  # (49, 7, 7)
    assert sim.shape == (49, 7, 7)
    assert torch.allclose(sim.reshape(49, 49).diagonal(), torch.ones(49), atol=1e-5)
    assert torch.allclose(sim.reshape(49, 49), sim.reshape(49, 49).T, atol=1e-6)
    near, far = neighbour_similarity(sim)
    assert near > far + 0.3, (near, far)  # measured 0.68 against 0.00
    # Each map is brightest around its own patch: the most similar other patch is a neighbour for most patches.
    flat = sim.reshape(49, 49).clone().fill_diagonal_(-2)
    best = flat.argmax(1)
    rows, cols = torch.arange(49) // 7, torch.arange(49) % 7
    touching = ((rows - rows[best]).abs() + (cols - cols[best]).abs()) <= 2
    assert touching.float().mean() > 0.8


def test_cnn_stages_and_filters_of_the_shipped_cnn(mnist_checkpoints: Path, digit: torch.Tensor) -> None:
    loaded = load_checkpoint(mnist_checkpoints / "cnn_mnist.safetensors")
    cfg = loaded.meta.model_config
    assert cfg.design == "lean"  # one conv a stage, pooled before its norm (issue 21)
    x = to_input(digit, loaded.meta.mean, loaded.meta.std)
    stages = cnn_stages(loaded.model, x)
    assert [tuple(a.shape) for a in stages] == [(cfg.width * 2**i, s, s) for i, s in enumerate(stage_sides(cfg))]
    assert [a.shape[-1] for a in stages] == [12, 5]  # 28 -> 24 (5x5 conv) -> 12 (pool) -> 10 (3x3) -> 5
    assert all(a.min() >= 0 and not a.requires_grad for a in stages)  # after the ReLU
    _, last = loaded.model(x, return_features=True)
    assert torch.equal(stages[-1], last[0])
    # A first-stage pixel sees 6x6 pixels (a 2x2 pool of 5x5 convs): with no ink there, it answers as to a blank image.
    blank = cnn_stages(loaded.model, to_input(torch.zeros_like(digit), loaded.meta.mean, loaded.meta.std))[0]
    ink = (digit > 0).float()[None]  # (1, 1, 28, 28)
    far = torch.nn.functional.max_pool2d(ink, 6, stride=2)[0, 0] == 0  # (12, 12)
    assert far.sum() > 40 and torch.allclose(stages[0][:, far], blank[:, far], atol=1e-5)
    varied = most_varied_channels(stages[0], 8)
    assert (stages[0][varied] - blank[varied]).abs().amax() > 1.0  # and differently near the digit
    filters = first_filters(loaded.model)
    assert filters.shape == (cfg.width, 5, 5)
    assert torch.equal(filters, loaded.model.stages[0][0].weight.detach()[:, 0])


# --------------------------------------------------------------------------------------------------
# The page's figures (vitdemo.views.hood_charts)
# --------------------------------------------------------------------------------------------------


def test_patch_grid_figure_lets_a_click_pick_a_patch() -> None:
    from vitdemo.views.hood_charts import patch_grid_figure, selected_patch

    fig = patch_grid_figure(np.zeros((28, 28)), grid=7, selected=(1, 5))
    patches = next(t for t in fig.data if t.name == "patches")
    assert len(patches.customdata) == 49 and list(patches.customdata[1 * 7 + 5]) == [1, 5]
    assert patches.x[5] == pytest.approx(5.5 * 4 - 0.5) and patches.y[7] == pytest.approx(1.5 * 4 - 0.5)
    outline = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(outline) == 1 and (outline[0].x0, outline[0].y0) == (19.5, 3.5)  # column 5, row 1
    assert len([s for s in fig.layout.shapes if s.type == "line"]) == 12  # 6 inner lines each way
    assert selected_patch({"selection": {"points": [{"customdata": [2, 3]}]}}) == (2, 3)
    assert selected_patch({"selection": {"points": [{"customdata": {"0": 4, "1": 0}}]}}) == (4, 0)
    assert selected_patch({"selection": {"points": []}}) is None and selected_patch(None) is None


def test_map_grid_and_mosaic_figures_share_one_colour_scale_and_keep_maps_square() -> None:
    from vitdemo.views.hood_charts import map_grid_figure, mosaic_figure

    maps = np.random.default_rng(0).random((2, 3, 4, 4))
    fig = map_grid_figure(maps, row_labels=["a", "b"], col_labels=["1", "2", "3"], colorbar="share", mark=(1, 2))
    assert len(fig.data) == 6 and all(t.coloraxis == "coloraxis" for t in fig.data)
    assert fig.layout.coloraxis.cmax == pytest.approx(maps.max()) and fig.layout.coloraxis.cmin == 0
    assert fig.layout.yaxis3.scaleanchor == "x3"  # every map square
    assert len(fig.layout.shapes) == 6  # the marked patch in every map
    mosaic_fig = mosaic_figure(maps[0], cols=2, colorbar="v", tile_names=["x", "y", "z"])
    (heat,) = mosaic_fig.data
    assert np.asarray(heat.z).shape == (2 * 5 - 1, 2 * 5 - 1)
    assert heat.customdata[5][0] == "z · row 0, column 0" and heat.customdata[0][5] == "y · row 0, column 0"
