"""Explanations as pure functions over tensors: attention rollout for the ViT, Grad-CAM for the CNN,
and the colour maps that turn a heat map into an image. No UI here.

- Attention rollout (Abnar & Zuidema, 2020), following jacobgil/vit-explain: fuse the heads of each
  layer, optionally drop the weakest weights, add the residual path (0.5 A + 0.5 I), renormalise the
  rows and multiply the layers together; the class token's row says how much each patch reached it.
- Grad-CAM (Selvaraju et al., 2017) and its variants (Grad-CAM++, HiResCAM, LayerCAM) on any CNN stage:
  weight the stage's activations (returned by `model(x, return_features=True)` or `return_stages=True`, no
  hooks) by the class score's gradient, sum over the channels, keep the positive part.
- Integrated gradients (Sundararajan et al., 2017) from the blank image: the CNN's explanation in the app
  (`explain_cnn`), chosen with vitdemo.explain.trust's checks: on the shipped MNIST CNN Grad-CAM's 7x7 map put half
  its weight on empty background and lost to a fixed centre blob on deletion, integrated gradients puts none
  there and beats both (the table is in `python -m vitdemo.explain.trust --cam-candidates`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitdemo import families

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
    """The class token's row over the patches (B, T, T) -> heat map (B, size, size) in [0, 1]. A distilled ViT
    (a distillation token after the patches, read by the second head) averages the rows of its two tokens.

    Upsampled bilinearly, then min-max normalised per image; a constant map becomes 0.5 everywhere.
    """
    n = patch_count(joint.shape[-1], grid)
    rows = joint[:, 0] if joint.shape[-1] == n + 1 else (joint[:, 0] + joint[:, -1]) / 2  # (B, T): both heads' tokens
    mask = rows[:, 1 : 1 + n]  # (B, N): how much of each patch reached the token(s) the answer is read from
    maps = mask.reshape(-1, 1, grid, grid)  # (B, 1, g, g), patches are row-major
    return normalize_maps(_resize(maps, size), flat_value=0.5)[:, 0]  # (B, size, size)


def layer_maps(attns: Sequence[Tensor], grid: int) -> Tensor:
    """Each layer's class-token attention to the patches, heads averaged: (B, L, grid, grid) in [0, 1]."""
    n = patch_count(attns[0].shape[-1], grid)
    cls_rows = torch.stack([a.float().mean(dim=1)[:, 0, 1 : 1 + n] for a in attns], dim=1)  # (B, L, N)
    B, L, n_patches = cls_rows.shape
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
    with eval_mode(model), torch.inference_mode():  # less bookkeeping than no_grad: the Draw page runs this
        logits, attns = model(x, return_attn=True)  # (B, classes), L x (B, heads, T, T)
    joint = rollout(attns, head_fusion, discard_ratio)  # (B, T, T)
    heat = rollout_map(joint, _grid_of(attns[0].shape[-1]), size)  # (B, size, size)
    return logits, heat, list(attns)


def _grid_of(tokens: int) -> int:
    """The side of the patch grid of T tokens: a class token, g*g patches, maybe a distillation token."""
    for extra in (1, 2):
        grid = math.isqrt(tokens - extra)
        if grid * grid == tokens - extra:
            return grid
    raise ValueError(f"{tokens} tokens are not 1 class token plus a square grid of patches")


def patch_count(tokens: int, grid: int) -> int:
    """grid * grid, checked against T tokens: 1 class token + the patches (+ 1 distillation token, last)."""
    n = grid * grid
    if tokens - n not in (1, 2):
        raise ValueError(f"{tokens - 1} patch tokens do not make a {grid}x{grid} grid")
    return n


# ---------------------------------------------------------------------------------------------------
# Grad-CAM (CNN)
# ---------------------------------------------------------------------------------------------------


CamMethod = Literal["gradcam", "gradcam++", "hirescam", "layercam"]
CAM_METHODS: tuple[str, ...] = ("gradcam", "gradcam++", "hirescam", "layercam")


def cam_from_gradients(acts: Tensor, grads: Tensor, method: CamMethod = "gradcam") -> Tensor:
    """One stage's activations and the class score's gradient, both (B, K, h, w) -> map (B, 1, h, w) >= 0.

    - gradcam (Selvaraju et al. 2017): channel weights = the gradient's spatial mean; sum_k w_k A_k.
    - gradcam++ (Chattopadhay et al. 2018): channel weights from positive gradients, weighted per position.
    - hirescam (Draelos & Carin 2020): sum_k g_k * A_k position by position (gradient x activation).
    - layercam (Jiang et al. 2021): sum_k relu(g_k) * A_k position by position.
    The positive part is kept: what speaks for the class.
    """
    if method == "gradcam":
        cam = (grads.mean(dim=(2, 3), keepdim=True) * acts).sum(dim=1, keepdim=True)
    elif method == "gradcam++":
        g2, g3 = grads.pow(2), grads.pow(3)
        denom = 2 * g2 + (acts * g3).sum(dim=(2, 3), keepdim=True)  # (B, K, 1, 1) + (B, K, h, w)
        alpha = g2 / torch.where(denom != 0, denom, torch.ones_like(denom))
        weights = (alpha * F.relu(grads)).sum(dim=(2, 3), keepdim=True)  # (B, K, 1, 1)
        cam = (weights * acts).sum(dim=1, keepdim=True)
    elif method == "hirescam":
        cam = (grads * acts).sum(dim=1, keepdim=True)
    elif method == "layercam":
        cam = (F.relu(grads) * acts).sum(dim=1, keepdim=True)
    else:
        raise ValueError(f"unknown CAM method {method!r}: expected one of {', '.join(CAM_METHODS)}")
    return F.relu(cam)  # (B, 1, h, w)


def grad_cam(
    model: nn.Module,
    x: Tensor,
    target: int | Tensor | None = None,
    size: int = 28,
    *,
    stages: Sequence[int] = (-1,),
    method: CamMethod = "gradcam",
) -> tuple[Tensor, Tensor]:
    """Grad-CAM for x (B, C, H, W) -> (logits (B, C), heat (B, size, size) in [0, 1]).

    `stages=(-1,)` reads `model(x, return_features=True)` -> (logits, last-stage activations (B, K, h, w));
    other stages read `model(x, return_stages=True)` -> (logits, [every stage's activations]), as
    `vitdemo.models.CNN` returns them (in the graph, no hooks). Several stages: each map is upsampled and
    normalised, then they are averaged. `target`: a class for every image, one class per image (B,), or None
    for each image's prediction. Runs in eval mode even when grad is globally off; restores the model's
    modes and leaves every parameter's `requires_grad` and `.grad` as they were. An image without any positive
    evidence gets an all-zero map. Nothing is registered on or stored in the model, so threads may explain
    with one shared model at once (in eval mode, as loaded checkpoints are: a model in train mode is switched
    to eval for the call).
    """
    if not stages:
        raise ValueError("grad_cam needs at least one stage")
    # inference_mode(False): an input made under inference mode is cloned into an ordinary tensor.
    with eval_mode(model), torch.inference_mode(False), torch.enable_grad():
        # The input asks for grad so the activations join the graph even when every weight is frozen.
        x = x.detach().clone().requires_grad_(True)
        if tuple(stages) == (-1,):
            logits, last = model(x, return_features=True)  # (B, classes), (B, K, h, w)
            acts = [last]
        else:
            logits, every = model(x, return_stages=True)  # (B, classes), depth x (B, K_i, h_i, w_i)
            acts = [every[i] for i in stages]
        classes = _target_classes(target, logits)  # (B,)
        score = logits.gather(1, classes[:, None]).sum()  # images are independent in eval mode
        # autograd.grad, not backward(): only d score / d acts is computed; no parameter's .grad changes.
        grads = torch.autograd.grad(score, acts)  # each (B, K_i, h_i, w_i)
    maps = [_resize(cam_from_gradients(a.detach(), g, method), size) for a, g in zip(acts, grads, strict=True)]
    if len(maps) == 1:
        heat = normalize_maps(maps[0], flat_value=0.0)  # (B, 1, size, size)
    else:
        heat = normalize_maps(torch.stack([normalize_maps(m, flat_value=0.0) for m in maps]).mean(0), flat_value=0.0)
    return logits.detach(), heat[:, 0]


# ---------------------------------------------------------------------------------------------------
# Integrated gradients (the CNN's explanation in the app)
# ---------------------------------------------------------------------------------------------------

# Points on the path from the blank image. 12, not 16: on the shipped MNIST CNN (200 test images, seeds 0 and 1; `python
# -m vitdemo.explain.trust --cam-candidates`) deletion AUC 0.174/0.172 vs 0.177/0.168, insertion 0.948/0.957 vs
# 0.941/0.954, for a quarter less time; 6 and 8 steps were worse (deletion 0.236, 0.263) and 4 lost 0.01 on both.
IG_STEPS = 12
# A lean CNN (vitdemo.families.cnn: one conv a stage, pooled before its norm) needs fewer: on the shipped lean MNIST
# CNN (200 test images, the same command) 4 steps gave deletion AUC 0.181 and insertion 0.934 against 0.186 and 0.931
# at 12 (8: 0.186 / 0.927), and the Draw page's map took 2.7 ms instead of 4.4.
IG_STEPS_BY_DESIGN = {"lean": 4}
IG_CHUNK = 256  # interpolated images per forward and backward pass: bounds the memory of a large batch
BLANK_ATOL = 1e-5  # a pixel this close to the blank value is blank (float rounding; one grey level is ~0.013)


def _ig_path(x: Tensor, baseline: float, steps: int) -> tuple[Tensor, Tensor]:
    """The midpoints alphas (S,) of the straight path from the blank image, and x's step delta (B, C, H, W) from
    it, with blank pixels exactly 0."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps  # (S,) midpoints in (0, 1)
    delta = x.detach() - baseline  # (B, C, H, W)
    return alphas, torch.where(delta.abs() < BLANK_ATOL, torch.zeros_like(delta), delta)


def ig_attributions(model: nn.Module, x: Tensor, classes: Tensor, *, baseline: float, steps: int) -> Tensor:
    """Integrated-gradients attributions (B, C, H, W) of x (B, C, H, W) to the scores of classes (B,): (x - baseline)
    times the score's gradient averaged over `steps` images on the straight path from the blank image (midpoint
    rule). They add up to about score(x) - score(blank) (exactly for a model linear in x). Grad must be enabled."""
    B = x.shape[0]
    alphas, delta = _ig_path(x, baseline, steps)  # (S,), (B, C, H, W)
    total = torch.zeros_like(delta)
    per_chunk = max(1, IG_CHUNK // steps)  # images whose whole path fits in one pass
    for i in range(0, B, per_chunk):
        d = delta[i : i + per_chunk]  # (b, C, H, W)
        path = (baseline + alphas[:, None, None, None, None] * d).flatten(0, 1)  # (S * b, C, H, W), step-major
        path.requires_grad_(True)
        score = model(path).gather(1, classes[i : i + per_chunk].repeat(steps)[:, None]).sum()
        (grads,) = torch.autograd.grad(score, path)  # (S * b, C, H, W)
        total[i : i + per_chunk] = grads.view(steps, -1, *x.shape[1:]).mean(0)
    return total * delta


def ig_with_logits(
    model: nn.Module, x: Tensor, target: int | Tensor | None, *, baseline: float, steps: int
) -> tuple[Tensor, Tensor]:
    """The logits (B, C) of x (B, C, H, W) and the integrated-gradients attributions (B, C, H, W) to the scores of
    `target` (None: each image's prediction) from one forward and one backward pass: each image rides in the same
    batch as its path (images are independent in eval mode), so its prediction costs no pass of its own. Equal to
    `ig_attributions` with the predicted classes (tests/test_explain.py). Eval mode and grad enabled."""
    B = x.shape[0]
    alphas, delta = _ig_path(x, baseline, steps)  # (S,), (B, C, H, W)
    total, logits = torch.zeros_like(delta), []
    per_chunk = max(1, IG_CHUNK // (steps + 1))  # images whose path and own row fit in one pass
    for i in range(0, B, per_chunk):
        d = delta[i : i + per_chunk]  # (b, C, H, W)
        b = d.shape[0]
        path = (baseline + alphas[:, None, None, None, None] * d).flatten(0, 1)  # (S * b, C, H, W), step-major
        batch = torch.cat([path, x[i : i + b].detach()]).requires_grad_(True)  # (S * b + b, C, H, W)
        out = model(batch)  # (S * b + b, classes)
        n_path = steps * b
        own = out[n_path:].detach()  # (b, classes): the images' own logits
        classes = _target_classes(_chunk_of(target, i, b, B), own)  # (b,)
        score = out[:n_path].gather(1, classes.repeat(steps)[:, None]).sum()
        (grads,) = torch.autograd.grad(score, batch)  # (S * b + b, C, H, W); the own rows' are 0
        total[i : i + b] = grads[:n_path].view(steps, b, *x.shape[1:]).mean(0)
        logits.append(own)
    return torch.cat(logits), total * delta


def _chunk_of(target: int | Tensor | None, start: int, n: int, total: int) -> int | Tensor | None:
    """The part of a per-image target (B,) that belongs to images start..start+n; a shared target stays as it is."""
    if isinstance(target, Tensor) and target.ndim == 1 and len(target) == total:
        return target[start : start + n]
    return target


def integrated_gradients(
    model: nn.Module,
    x: Tensor,
    target: int | Tensor | None = None,
    size: int = 28,
    *,
    baseline: float = 0.0,
    steps: int = IG_STEPS,
) -> tuple[Tensor, Tensor]:
    """Integrated gradients (Sundararajan et al. 2017) for x (B, C, H, W) -> (logits (B, C), heat (B, size, size)).

    `baseline`: the value of every pixel of the blank image the path starts from (the normalised value of black,
    see blank_value). The map keeps the positive part of the attributions summed over the input channels, what
    speaks for the class, and is 0 wherever the input equals the blank image: it cannot paint empty background.
    `target` as for grad_cam. One forward and one backward pass (`ig_with_logits`). Eval mode for the call; the
    model's modes, `requires_grad` and `.grad` are left as they were; no hooks, so threads may share one model.
    """
    with eval_mode(model), torch.inference_mode(False):
        x = x.detach().clone()  # an input made under inference mode becomes an ordinary tensor
        with torch.enable_grad():
            logits, attribution = ig_with_logits(model, x, target, baseline=baseline, steps=steps)
    heat = normalize_maps(_resize(F.relu(attribution.sum(1, keepdim=True)), size), flat_value=0.0)[:, 0]
    return logits.detach(), heat  # (B, C), (B, size, size)


def ig_steps(model: nn.Module) -> int:
    """The app's number of integrated-gradients steps for a CNN: by its design (IG_STEPS_BY_DESIGN), else IG_STEPS."""
    design = getattr(getattr(model, "config", None), "design", None)
    return IG_STEPS_BY_DESIGN.get(design, IG_STEPS) if isinstance(design, str) else IG_STEPS


def blank_value(mean: float, std: float) -> float:
    """A black pixel after normalisation with (mean, std): the blank image integrated gradients starts from."""
    return (0.0 - mean) / std


def explain_cnn(
    model: nn.Module, x: Tensor, *, mean: float, std: float, target: int | Tensor | None = None, size: int = 28
) -> tuple[Tensor, Tensor]:
    """The app's explanation of a CNN's prediction: integrated gradients from the blank image of a checkpoint
    normalised with (mean, std). Chosen over Grad-CAM by vitdemo.explain.trust's checks: Grad-CAM's 7x7 last-stage map
    put half its weight on empty background and lost to a fixed centre blob on deletion."""
    return integrated_gradients(model, x, target, size, baseline=blank_value(mean, std), steps=ig_steps(model))


def explain_prediction(
    model: nn.Module,
    x: Tensor,
    kind: str,
    *,
    mean: float,
    std: float,
    size: int = 28,
    head_fusion: HeadFusion = "mean",
    discard_ratio: float = 0.0,
) -> tuple[Tensor, Tensor, list[Tensor] | None]:
    """The app's explanation of each prediction, by the family's explainer (vitdemo.families: attention rollout
    for a ViT, integrated gradients for the rest): (logits (B, C), maps (B, size, size), per-layer attention or
    None). An unknown kind is a ConfigError naming the known ones, never explained as another kind."""
    if families.get(kind).explainer == "rollout":
        return attention_rollout(model, x, head_fusion, discard_ratio, size=size)
    logits, heat = explain_cnn(model, x, mean=mean, std=std, size=size)
    return logits, heat, None


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
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the block, then every submodule's own mode back (even a mix of train and eval). Only the
    modules in training mode are touched: a model the Draw page serves is in eval already, and setting the flag on
    each of a ViT's 77 modules twice cost 0.8 ms of a 4 ms explanation."""
    training = [module for module in model.modules() if module.training]
    for module in training:
        module.training = False
    try:
        yield model
    finally:
        for module in training:
            module.training = True
