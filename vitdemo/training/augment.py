"""Batched training augmentation for the gap between MNIST and what people draw: pen width and a wobbly hand.

Both work on a whole batch on the training device, with per-image random amounts and no Python loop over images:
- `random_stroke_width`: thicker or thinner strokes, by grey-scale morphology (max-pool dilation; min-pool
  erosion with a plus-shaped kernel, which thins a 3 px stroke to its core instead of wiping it out), with a
  per-image amount blended continuously between whole steps;
- `elastic_offsets`: a smooth random displacement field (coarse random offsets, bicubically upsampled), added
  to the affine sampling grid of `augment` (below) so that the digit is resampled once.

Every random number comes from the caller's generator (on the CPU, as the rest of the trainer's shuffling and
augmentation), so a run is reproducible from its seed and a resumed run continues the same stream.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from vitdemo.data import Split

MAX_STROKE = 2.0  # stroke_aug: up to 2 px thicker (two 3x3 dilations) or thinner at strength 1
MAX_THIN = 1.0  # thinning never goes past one erosion step: a 2 px MNIST stroke would vanish
ELASTIC_PX = 1.5  # elastic: the displacement field's amplitude at strength 1, in pixels (of 28)
ELASTIC_CELLS = 4  # the field's coarse grid: 4x4 random offsets over the image, about 7 px apart


def dilate(x: torch.Tensor) -> torch.Tensor:
    """Grey-scale dilation with a 3x3 square: about 1 px more ink on each side. (B, C, H, W) -> (B, C, H, W)."""
    return F.max_pool2d(x, 3, stride=1, padding=1)


def erode(x: torch.Tensor, background: float) -> torch.Tensor:
    """Grey-scale erosion with a plus-shaped kernel (the pixel and its 4 neighbours): about 1 px less ink on
    each side of a stroke; outside the image counts as `background`. (B, C, H, W) -> (B, C, H, W)."""
    p = F.pad(x, (1, 1, 1, 1), value=background)  # (B, C, H+2, W+2)
    up, down, left, right = p[..., :-2, 1:-1], p[..., 2:, 1:-1], p[..., 1:-1, :-2], p[..., 1:-1, 2:]
    return torch.minimum(torch.minimum(torch.minimum(x, up), torch.minimum(down, left)), right)


def stroke_width(x: torch.Tensor, amount: torch.Tensor, background: float) -> torch.Tensor:
    """Change each image's pen by its `amount` (B,) in steps: +1 is one dilation, +2 two, -1 one erosion;
    fractions blend linearly between whole steps. Ink is bright (higher values than `background`).

    x: (B, C, H, W) float -> (B, C, H, W). Images with amount 0 come back unchanged.
    """
    a = amount.to(x.dtype).view(-1, 1, 1, 1)  # (B, 1, 1, 1)
    d1 = dilate(x)
    d2 = dilate(d1)
    e1 = erode(x, background)
    thick = x + a.clamp(0, 1) * (d1 - x) + (a - 1).clamp(0, 1) * (d2 - d1)
    thin = x + (-a).clamp(0, 1) * (e1 - x)
    return torch.where(a >= 0, thick, thin)


def random_stroke_width(
    x: torch.Tensor, strength: float, background: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A random pen for every image: thicker by up to `strength` * MAX_STROKE steps, or thinner by up to
    `strength` * MAX_THIN steps (an even chance of either). strength 0 returns x itself, drawing no numbers.

    x: (B, C, H, W) float, ink brighter than `background` -> (B, C, H, W).
    """
    if strength <= 0:
        return x
    u = torch.rand(x.shape[0], 2, generator=generator).to(x.device)  # (B, 2) in [0, 1)
    size = u[:, 0] * strength
    amount = torch.where(u[:, 1] < 0.5, size * MAX_STROKE, -(size * MAX_THIN).clamp(max=MAX_THIN))  # (B,)
    return stroke_width(x, amount, background)


def elastic_offsets(
    batch: int, height: int, width: int, strength: float, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """A smooth random displacement field for each image, in grid_sample's normalised coordinates.

    Random offsets in [-1, 1] on a coarse ELASTIC_CELLS x ELASTIC_CELLS grid are upsampled bicubically to the
    image, then scaled so that `strength` 1 moves pixels by up to about ELASTIC_PX pixels.
    Returns (B, H, W, 2): add it to an `F.affine_grid` grid (x offsets first, as grid_sample reads them).
    """
    coarse = torch.rand(batch, 2, ELASTIC_CELLS, ELASTIC_CELLS, generator=generator).to(device) * 2 - 1
    field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)  # (B, 2, H, W)
    field = field.clamp(-1.0, 1.0)  # bicubic overshoots a little: keep the promised amplitude
    px = torch.tensor([2.0 / width, 2.0 / height], device=device).view(1, 2, 1, 1)  # one pixel in [-1, 1] units
    return (field * px * ELASTIC_PX * strength).permute(0, 2, 3, 1)  # (B, H, W, 2)


def mix_in(
    images: torch.Tensor, labels: torch.Tensor, pool: Split, ratio: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch plus `ratio` of its size (at least one image) drawn at random from `pool` (synthetic styles).

    images (B, H, W), labels (B,) -> (B + k, H, W), (B + k,); the batch's own images first. An empty pool or
    ratio 0 returns the batch itself, drawing no numbers.
    """
    if ratio <= 0 or len(pool) == 0:
        return images, labels
    k = max(1, round(ratio * len(labels)))
    idx = torch.randint(len(pool), (k,), generator=generator).to(pool.images.device)  # (k,)
    return torch.cat([images, pool.images[idx]]), torch.cat([labels, pool.labels[idx]])


def augment(
    x: torch.Tensor,
    strength: float,
    generator: torch.Generator | None = None,
    hflip: bool = False,
    elastic: float = 0.0,
) -> torch.Tensor:
    """Random rotation, scale and translation of a whole batch at once, plus an optional elastic wobble, in one
    resample.

    x: (B, C, H, W) float. strength 1.0 means up to +-10 degrees, +-10% scale and +-2 px (of 28) shift.
    hflip mirrors half the images left-right: right for clothes, wrong for digits (a mirrored 2 is not a 2).
    elastic > 0 adds a smooth random displacement field (`elastic_offsets`: about 1.5 px at 1.0);
    its random numbers are drawn after the affine ones, and only when it is on, so runs without it are unchanged.
    The background (after normalisation) is whatever x has at its corners, so padding uses the border value.
    """
    if strength <= 0 and elastic <= 0:
        return x
    import torch
    import torch.nn.functional as F

    B, _, H, W = x.shape
    if strength > 0:
        theta = _random_affine(B, H, strength, generator, hflip).to(x.device, x.dtype)  # (B, 2, 3)
    else:
        theta = torch.eye(2, 3, dtype=x.dtype, device=x.device).expand(B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    if elastic > 0:
        grid = grid + elastic_offsets(B, H, W, elastic, generator, x.device).to(grid.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _random_affine(
    batch: int, size: int, strength: float, generator: torch.Generator | None, hflip: bool
) -> torch.Tensor:
    """(B, 2, 3) output -> input sampling matrices: rotation, scale, shift and (hflip) a mirror per image."""
    import torch

    rand = torch.rand(batch, 5 if hflip else 4, generator=generator) * 2 - 1  # (B, 4|5) in [-1, 1]
    angle = rand[:, 0] * math.radians(10.0) * strength
    scale = 1.0 + rand[:, 1] * 0.10 * strength
    shift = rand[:, 2:4] * (2.0 * 2.0 / size) * strength  # 2 px in normalised [-1, 1] coordinates
    mirror = torch.where(rand[:, 4] < 0, -1.0, 1.0) if hflip else torch.ones_like(angle)  # (B,) x-axis sign
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    return torch.stack(
        [torch.stack([cos * mirror, -sin, shift[:, 0]], dim=1), torch.stack([sin * mirror, cos, shift[:, 1]], dim=1)],
        dim=1,
    )  # (B, 2, 3): mirror flips the output's x axis
