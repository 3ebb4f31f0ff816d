"""Under the hood: what is inside each model for one input, as plain tensors (no UI here).

ViT: the attention of every layer and head (where one patch looks, where the class token looks) and the learned
position embeddings as cosine-similarity maps. CNN: every stage's feature maps and the first layer's filters.
Mosaics lay many small maps out as one array (NaN between them), so a page draws them as one heat map with one
colour scale.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitdemo.explain.maps import eval_mode


# --- ViT --------------------------------------------------------------------------------------------------
@torch.no_grad()
def vit_attention(model: nn.Module, x: Tensor) -> Tensor:
    """Every layer's attention weights for one input x (1, C, H, W): (L, heads, T, T), T = 1 + patches.
    Row q of a map is where token q looks (it sums to 1); token 0 is the class token."""
    if x.shape[0] != 1:
        raise ValueError(f"one input at a time, got a batch of {x.shape[0]}")
    with eval_mode(model):
        _, attns = model(x, return_attn=True)  # L x (1, heads, T, T)
    return torch.stack([a[0].float() for a in attns])  # (L, heads, T, T)


def grid_of(attn: Tensor) -> int:
    """The side of the patch grid of (..., T, T) attention with T = 1 + grid**2."""
    tokens = attn.shape[-1]
    for extra in (1, 2):  # a class token, and a distillation token (last) in a ViT trained with a teacher
        grid = math.isqrt(tokens - extra)
        if grid * grid == tokens - extra:
            return grid
    raise ValueError(f"{tokens} tokens are not 1 class token plus a square grid of patches")


def token_attention(attn: Tensor, token: int) -> Tensor:
    """Where one token looks, over the patches: (L, heads, T, T) -> (L, heads, g, g), each map the share of
    that token's attention given to each patch (what it gives the class token is left out)."""
    g = grid_of(attn)
    if not 0 <= token < attn.shape[-1]:
        raise ValueError(f"token {token} is out of range 0..{attn.shape[-1] - 1}")
    L, H = attn.shape[:2]
    return attn[:, :, token, 1 : 1 + g * g].reshape(L, H, g, g)  # a distillation token (last) is left out too


def patch_attention(attn: Tensor, row: int, col: int) -> Tensor:
    """Where the patch at (row, col) of the grid looks, per layer and head: (L, heads, g, g)."""
    g = grid_of(attn)
    if not (0 <= row < g and 0 <= col < g):
        raise ValueError(f"patch ({row}, {col}) is outside the {g}x{g} grid")
    return token_attention(attn, 1 + row * g + col)  # patches are row-major after the class token


def class_token_attention(attn: Tensor) -> Tensor:
    """Where the class token (the one the prediction is read from) looks: (L, heads, T, T) -> (L, heads, g, g)."""
    return token_attention(attn, 0)


def with_head_mean(maps: Tensor) -> Tensor:
    """(L, heads, g, g) -> (L, heads + 1, g, g): the mean over the heads first, then each head."""
    return torch.cat([maps.mean(dim=1, keepdim=True), maps], dim=1)


def position_similarity(model: nn.Module) -> Tensor:
    """Cosine similarity of each patch's learned position embedding with every patch's: (N, g, g), N = g * g.
    Map i shows which positions the model treats as close to patch i (the class token's is left out)."""
    pos = model.pos_embed.detach()[0, 1:].float()  # (N, D)
    g = math.isqrt(pos.shape[0])
    if g * g != pos.shape[0]:
        raise ValueError(f"{pos.shape[0]} position embeddings are not a square grid")
    unit = F.normalize(pos, dim=1)  # (N, D)
    return (unit @ unit.T).reshape(-1, g, g)  # (N, g, g)


def neighbour_similarity(sim: Tensor) -> tuple[float, float]:
    """(mean cosine similarity of grid neighbours, mean of all other pairs) for (N, g, g) similarity maps:
    learned 2-D structure shows as neighbours more alike than the rest."""
    N, g, _ = sim.shape
    rows, cols = torch.arange(N) // g, torch.arange(N) % g  # (N,) each
    dist = (rows[:, None] - rows[None, :]).abs() + (cols[:, None] - cols[None, :]).abs()  # (N, N) city-block
    flat = sim.reshape(N, N)
    return float(flat[dist == 1].mean()), float(flat[dist > 1].mean())


# --- CNN --------------------------------------------------------------------------------------------------
@torch.no_grad()
def cnn_stages(model: nn.Module, x: Tensor) -> list[Tensor]:
    """Every stage's feature maps for one input x (1, C, H, W): [(K_i, h_i, w_i)], after each stage's last ReLU."""
    if x.shape[0] != 1:
        raise ValueError(f"one input at a time, got a batch of {x.shape[0]}")
    with eval_mode(model):
        return [a[0].float() for a in model.forward_stages(x)]


def most_varied_channels(acts: Tensor, k: int) -> Tensor:
    """Indices of the k channels of (K, h, w) whose response varies most over the image (spatial standard
    deviation), most varied first: (k,) int64. The channels with the largest mean are often the ones that
    answer the empty background everywhere, which shows nothing."""
    return acts.flatten(1).std(dim=1).argsort(descending=True, stable=True)[: min(k, acts.shape[0])]


def first_filters(model: nn.Module) -> Tensor:
    """The first convolution's kernels (K, k, k), input channels summed (a grey input has one)."""
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    return conv.weight.detach().float().sum(dim=1)  # (K, k, k)


# --- layout -----------------------------------------------------------------------------------------------
def mosaic(maps: Tensor | np.ndarray, cols: int, pad: int = 1) -> np.ndarray:
    """Small maps (N, h, w) laid out row by row, `cols` to a row, `pad` NaN pixels between them:
    -> (rows * (h + pad) - pad, cols * (w + pad) - pad) float64, NaN where there is no map."""
    a = np.asarray(maps, dtype=np.float64)
    if a.ndim != 3 or cols < 1:
        raise ValueError(f"need maps (N, h, w) and cols >= 1, got shape {a.shape} and cols {cols}")
    n, h, w = a.shape
    rows = max(1, math.ceil(n / cols))
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan)
    for i in range(n):  # at most a few hundred small maps: a loop over tiles, not pixels
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = a[i]
    return out


def tile_origin(index: int, cols: int, shape: tuple[int, int], pad: int = 1) -> tuple[int, int]:
    """(row, col) of the top-left pixel of tile `index` in a mosaic of (h, w) tiles, `cols` to a row."""
    r, c = divmod(index, cols)
    return r * (shape[0] + pad), c * (shape[1] + pad)
