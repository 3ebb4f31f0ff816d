"""The maps as a projector shows them: an explanation whose weight the back of the room can see.

Integrated gradients (the CNN's map, vitdemo.explain.maps) is exact but sparse: a few stroke pixels carry most of
the attribution, and min-max normalised by the single largest one the rest of the digit stays dark. Beside the
ViT's rollout (a 7x7 grid upsampled: a broad glow) the CNN then seemed to look at nothing. Shown here:
1. smoothed with a small Gaussian (`gaussian_blur`: torchvision's, written out), so that neighbouring evidence
   reads as one patch of light rather than specks;
2. divided by a high quantile of its lit pixels instead of its maximum, so that a stroke's typical pixel is
   bright, not only its one strongest.
The attention rollout is already a glow and is shown as computed. The trust checks on Evaluate
(vitdemo.explain.trust) test the map as shown, so what the class sees is what passed.

`visual_weight` is the measure the two maps are compared by: the share of the image at least half bright.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vitdemo import families

SIGMA_PX = 1.0  # on the 28x28 map: about a stroke's half-width, so that a stroke's pixels join into one glow
QUANTILE = 0.5  # of the lit pixels: half of them saturate, so a stroke that mattered reads bright, not one pixel
LIT = 0.02  # a pixel below this fraction of the map's largest value is not lit (blur tails, float noise)
HALF = 0.5  # visual_weight's threshold


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Maps x (B, 1, H, W) smoothed by a Gaussian of `sigma` pixels over 2 * ceil(3 sigma) + 1 taps, the edges
    reflected: what torchvision's `gaussian_blur` computes (tests/test_readable.py compares them), written out
    because importing torchvision costs the first page that shows a map seconds (it pulls in torch._dynamo)."""
    half = math.ceil(3 * sigma)
    offsets = torch.arange(-half, half + 1, dtype=x.dtype)  # (K,)
    taps = torch.softmax(-0.5 * (offsets / sigma) ** 2, dim=0)  # (K,), summing to 1
    x = F.pad(x, (half, half, half, half), mode="reflect")  # (B, 1, H + 2 half, W + 2 half)
    x = F.conv2d(x, taps.view(1, 1, 1, -1))  # along the rows: (B, 1, H + 2 half, W)
    return F.conv2d(x, taps.view(1, 1, -1, 1))  # along the columns: (B, 1, H, W)


def readable_maps(heat: Tensor, *, sigma: float = SIGMA_PX, quantile: float = QUANTILE) -> Tensor:
    """Sparse maps (B, H, W) >= 0 -> maps (B, H, W) in [0, 1], smoothed and scaled by a high quantile of their
    lit pixels (clipped at 1). An all-zero map stays all zero."""
    x = heat.detach().float().clamp_min(0)[:, None]  # (B, 1, H, W)
    if sigma > 0:
        x = gaussian_blur(x, sigma)
    flat = x.flatten(1)  # (B, P)
    lit = flat > LIT * flat.amax(dim=1, keepdim=True)  # (B, P); nothing is lit in an all-zero map
    scale = torch.nanquantile(torch.where(lit, flat, torch.nan), quantile, dim=1, keepdim=True)  # (B, 1)
    scale = torch.where(torch.isnan(scale) | (scale <= 0), torch.ones_like(scale), scale)
    return (flat / scale).clamp(0.0, 1.0).view(heat.shape)


def shown_maps(kind: str, heat: Tensor) -> Tensor:
    """The family's maps (B, H, W) as the pages show them: the rollout as it is, gradient maps made readable."""
    if families.get(kind).explainer == "rollout":
        return heat
    return readable_maps(heat)


def shown_map(kind: str, heat: np.ndarray) -> np.ndarray:
    """shown_maps for one (H, W) map as a page holds it: float32 in [0, 1]."""
    return shown_maps(kind, torch.from_numpy(np.asarray(heat, dtype=np.float32))[None])[0].numpy()


def visual_weight(heat: Tensor) -> Tensor:
    """Maps (B, H, W) in [0, 1] -> (B,): the share of each map at least half bright, what a projector shows."""
    return (heat.flatten(1) >= HALF).float().mean(dim=1)
