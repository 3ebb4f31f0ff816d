"""Explanations as pure functions over tensors: attention rollout for the ViT, Grad-CAM for the CNN,
and the colour maps that turn a heat map into an image. No UI here.

- Attention rollout (Abnar & Zuidema, 2020), following jacobgil/vit-explain: fuse the heads of each
  layer, optionally drop the weakest weights, add the residual path (0.5 A + 0.5 I), renormalise the
  rows and multiply the layers together; the class token's row says how much each patch reached it.
- Grad-CAM (Selvaraju et al., 2017): weight the channels of the CNN's last-stage activations (returned by
  `model(x, return_features=True)`, no hooks) by the spatial mean of the class score's gradient, sum
  them, keep the positive part.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HeadFusion = Literal["mean", "max", "min"]
HEAD_FUSIONS: tuple[str, ...] = ("mean", "max", "min")

# A span below this fraction of the map's largest value counts as a constant map (float noise, not signal).
_FLAT_RTOL = 1e-5

# ---------------------------------------------------------------------------------------------------
# Attention rollout (ViT)
# ---------------------------------------------------------------------------------------------------


def fuse_heads(attn: Tensor, mode: HeadFusion = "mean") -> Tensor:
    """(B, H, T, T) attention weights -> (B, T, T), combining the heads by mean, max or min."""
    if mode == "mean":
        return attn.mean(dim=1)
    if mode == "max":
        return attn.amax(dim=1)
    if mode == "min":
        return attn.amin(dim=1)
    raise ValueError(f"unknown head fusion {mode!r}: expected one of {', '.join(HEAD_FUSIONS)}")


def discard_lowest(fused: Tensor, ratio: float) -> Tensor:
    """Zero the lowest `ratio` of each image's T*T weights, never the class token's own (flat index 0)."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1], got {ratio}")
    B, T, _ = fused.shape
    k = min(int(T * T * ratio), T * T - 1)
    if k == 0:
        return fused
    flat = fused.reshape(B, T * T)  # (B, T*T)
    protected = flat.clone()
    protected[:, 0] = math.inf  # the class token's attention to itself is never the lowest
    idx = protected.topk(k, dim=-1, largest=False).indices  # (B, k)
    return flat.scatter(1, idx, 0.0).view(B, T, T)


def rollout(attns: Sequence[Tensor], head_fusion: HeadFusion = "mean", discard_ratio: float = 0.0) -> Tensor:
    """Attention rollout over the layers: list of (B, H, T, T) -> joint attention (B, T, T), rows sum to 1.

    Per layer: 1. fuse the heads; 2. drop the weakest weights; 3. add the residual path, A = 0.5 A + 0.5 I;
    4. renormalise the rows; 5. joint = A @ joint, starting from the identity before layer 0.
    """
    if len(attns) == 0:
        raise ValueError("rollout needs the attention of at least one layer")
    B, _, T, _ = attns[0].shape
    eye = torch.eye(T, device=attns[0].device)  # (T, T)
    joint = eye.expand(B, T, T)  # (B, T, T)
    for attn in attns:
        a = discard_lowest(fuse_heads(attn.float(), head_fusion), discard_ratio)  # (B, T, T)
        a = 0.5 * a + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)  # every row sums to >= 0.5 before this: no division by 0
        joint = a @ joint  # (B, T, T)
    return joint


def rollout_map(joint: Tensor, grid: int, size: int = 28) -> Tensor:
    """The class token's row over the patches (B, T, T) -> heat map (B, size, size) in [0, 1].

    Upsampled bilinearly, then min-max normalised per image; a constant map becomes 0.5 everywhere.
    """
    mask = joint[:, 0, 1:]  # (B, N): how much of each patch reached the class token
    if mask.shape[1] != grid * grid:
        raise ValueError(f"{mask.shape[1]} patch tokens do not make a {grid}x{grid} grid")
    maps = mask.reshape(-1, 1, grid, grid)  # (B, 1, g, g), patches are row-major
    return normalize_maps(_resize(maps, size), flat_value=0.5)[:, 0]  # (B, size, size)


def layer_maps(attns: Sequence[Tensor], grid: int) -> Tensor:
    """Each layer's class-token attention to the patches, heads averaged: (B, L, grid, grid) in [0, 1]."""
    cls_rows = torch.stack([a.float().mean(dim=1)[:, 0, 1:] for a in attns], dim=1)  # (B, L, N)
    B, L, n_patches = cls_rows.shape
    if n_patches != grid * grid:
        raise ValueError(f"{n_patches} patch tokens do not make a {grid}x{grid} grid")
    maps = normalize_maps(cls_rows.reshape(B * L, n_patches), flat_value=0.5)  # each map on its own scale
    return maps.reshape(B, L, grid, grid)


def attention_rollout(
    model: nn.Module,
    x: Tensor,
    head_fusion: HeadFusion = "mean",
    discard_ratio: float = 0.0,
    size: int = 28,
) -> tuple[Tensor, Tensor, list[Tensor]]:
    """Run a ViT once in eval mode on x (B, C, H, W) -> (logits (B, C), heat (B, size, size), attns).

    The model's train/eval modes are restored afterwards; nothing is recorded for autograd.
    """
    with _eval_mode(model), torch.no_grad():
        logits, attns = model(x, return_attn=True)  # (B, classes), L x (B, heads, T, T)
    joint = rollout(attns, head_fusion, discard_ratio)  # (B, T, T)
    heat = rollout_map(joint, _grid_of(attns[0].shape[-1]), size)  # (B, size, size)
    return logits, heat, list(attns)


def _grid_of(tokens: int) -> int:
    grid = math.isqrt(tokens - 1)
    if grid * grid != tokens - 1:
        raise ValueError(f"{tokens} tokens are not 1 class token plus a square grid of patches")
    return grid


# ---------------------------------------------------------------------------------------------------
# Grad-CAM (CNN)
# ---------------------------------------------------------------------------------------------------


def grad_cam(model: nn.Module, x: Tensor, target: int | Tensor | None = None, size: int = 28) -> tuple[Tensor, Tensor]:
    """Grad-CAM for x (B, C, H, W) -> (logits (B, C), heat (B, size, size) in [0, 1]).

    `model(x, return_features=True)` must return (logits, activations (B, K, h, w)) with the activations in
    the graph, as `vitdemo.models.CNN` does. `target`: a class for every image, one class per image (B,), or
    None for each image's prediction. Runs in eval mode even when grad is globally off; restores the model's
    modes and leaves every parameter's `requires_grad` and `.grad` as they were. An image without any positive
    evidence gets an all-zero map. Nothing is registered on or stored in the model, so threads may explain
    with one shared model at once (in eval mode, as loaded checkpoints are: a model in train mode is switched
    to eval for the call).
    """
    # inference_mode(False): an input made under inference mode is cloned into an ordinary tensor.
    with _eval_mode(model), torch.inference_mode(False), torch.enable_grad():
        # The input asks for grad so the activations join the graph even when every weight is frozen.
        x = x.detach().clone().requires_grad_(True)
        logits, acts = model(x, return_features=True)  # (B, classes), (B, K, h, w)
        classes = _target_classes(target, logits)  # (B,)
        score = logits.gather(1, classes[:, None]).sum()  # images are independent in eval mode
        # autograd.grad, not backward(): only d score / d acts is computed; no parameter's .grad changes.
        (grads,) = torch.autograd.grad(score, acts)  # (B, K, h, w)
    weights = grads.mean(dim=(2, 3), keepdim=True)  # (B, K, 1, 1): how much each channel helps the class
    cam = F.relu((weights * acts.detach()).sum(dim=1, keepdim=True))  # (B, 1, h, w)
    heat = normalize_maps(_resize(cam, size), flat_value=0.0)[:, 0]  # (B, size, size)
    return logits.detach(), heat


def _target_classes(target: int | Tensor | None, logits: Tensor) -> Tensor:
    """None -> the predicted classes; an int or a 0-d tensor -> that class for all; (B,) -> as given."""
    B, C = logits.shape
    if target is None:
        classes = logits.argmax(dim=1)
    else:
        classes = torch.as_tensor(target, device=logits.device).long().reshape(-1).expand(B)  # (B,)
    if bool(((classes < 0) | (classes >= C)).any()):
        raise ValueError(f"target class out of range 0..{C - 1}: {target}")
    return classes


# ---------------------------------------------------------------------------------------------------
# Shared tensor helpers
# ---------------------------------------------------------------------------------------------------


def normalize_maps(maps: Tensor, flat_value: float = 0.5) -> Tensor:
    """Min-max normalise each map of (B, ...) to [0, 1]; a constant map (no NaN) becomes `flat_value`."""
    flat = maps.reshape(maps.shape[0], -1)  # (B, P)
    lo = flat.amin(dim=1, keepdim=True)  # (B, 1)
    hi = flat.amax(dim=1, keepdim=True)  # (B, 1)
    span = hi - lo
    is_flat = span <= _FLAT_RTOL * torch.maximum(hi.abs(), lo.abs())  # also true for an all-zero map
    scaled = (flat - lo) / torch.where(is_flat, torch.ones_like(span), span)
    out = torch.where(is_flat, torch.full_like(flat, flat_value), scaled)
    return out.clamp(0.0, 1.0).reshape(maps.shape)


def _resize(maps: Tensor, size: int) -> Tensor:
    """(B, 1, h, w) -> (B, 1, size, size), bilinear."""
    if maps.shape[-2:] == (size, size):
        return maps
    return F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=False)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the block, then every submodule's own mode back (even a mix of train and eval)."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
