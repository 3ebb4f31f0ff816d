"""The robustness lab: change the test images the way a hand or a camera would (shift, rotate, scale, a thicker
or thinner pen) and measure how each model's accuracy falls.

The transforms are pure, batched and device-agnostic functions of (B, 28, 28) float images in [0, 1] (light ink on
a black background, before normalisation), so the page's sliders and the sweep share them. Geometric changes are
one affine resample about the image centre (`affine`); the stroke width is grey-scale morphology (`stroke`).
`sweep` transforms all n images at once for every value and runs every model over them in batches (of 100).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from vitdemo.checkpoints import LoadedModel
from vitdemo.data import Split
from vitdemo.explain.inference import Prediction, model_input, predict_probs

Transform = Callable[[torch.Tensor, float], torch.Tensor]  # (B, H, W), value -> (B, H, W)


# --- transforms ------------------------------------------------------------------------------------
def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in 0..255 -> float32 in [0, 1]; float images are only cast to float32. Same shape."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


def affine(
    x: torch.Tensor, *, degrees: float = 0.0, factor: float = 1.0, dx: float = 0.0, dy: float = 0.0
) -> torch.Tensor:
    """Rotate by `degrees` (counter-clockwise on screen), scale by `factor` (>1 enlarges) about the image centre,
    then shift by (dx, dy) pixels (right, down); one bilinear resample, black (0) where the image has no pixels.

    x: (B, H, W) float in [0, 1] -> (B, H, W). The identity returns x itself.
    """
    if degrees == 0 and factor == 1 and dx == 0 and dy == 0:
        return x
    if factor <= 0:
        raise ValueError(f"scale factor must be positive, got {factor}")
    B, H, W = x.shape
    angle = math.radians(degrees)
    cos, sin = math.cos(angle) / factor, math.sin(angle) / factor
    # output -> input sampling in normalised [-1, 1] coordinates (align_corners=False: pixel centres at
    # (2i + 1) / n - 1, so a whole-pixel shift is 2 / n and moves every pixel exactly onto another one)
    tx, ty = -2.0 * dx / W, -2.0 * dy / H
    theta = torch.tensor(
        [[cos, -sin * H / W, cos * tx - sin * ty * H / W], [sin * W / H, cos, sin * tx * W / H + cos * ty]],
        dtype=x.dtype,
        device=x.device,
    ).expand(B, 2, 3)  # (B, 2, 3): the same change for the whole batch
    k = max(1, math.ceil(1 / factor - 1e-6))  # shrinking: average k x k samples per pixel, else strokes alias away
    grid = F.affine_grid(theta, [B, 1, k * H, k * W], align_corners=False)  # (B, kH, kW, 2)
    out = F.grid_sample(x.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return F.avg_pool2d(out, k).squeeze(1) if k > 1 else out.squeeze(1)  # (B, H, W)


def shift(x: torch.Tensor, dx: float, dy: float = 0.0) -> torch.Tensor:
    """Move the image `dx` pixels right and `dy` down. (B, H, W) -> (B, H, W); ink pushed out is lost."""
    return affine(x, dx=dx, dy=dy)


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate counter-clockwise by `degrees` about the centre. (B, H, W) -> (B, H, W)."""
    return affine(x, degrees=degrees)


def scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Zoom about the centre: 2.0 doubles the digit's size, 0.5 halves it. (B, H, W) -> (B, H, W)."""
    return affine(x, factor=factor)


def _dilate(x: torch.Tensor) -> torch.Tensor:
    """Grey-scale dilation with a 3x3 square: every pixel takes its neighbourhood's maximum. (B, H, W)."""
    return F.max_pool2d(x.unsqueeze(1), 3, stride=1, padding=1).squeeze(1)


def _erode(x: torch.Tensor) -> torch.Tensor:
    """Grey-scale erosion with a 3x3 square (the minimum); the border counts as background. (B, H, W)."""
    padded = F.pad(x.unsqueeze(1), (1, 1, 1, 1), value=0.0)  # (B, 1, H+2, W+2): outside the image is black
    return -F.max_pool2d(-padded, 3, stride=1).squeeze(1)


def stroke(x: torch.Tensor, steps: float) -> torch.Tensor:
    """Thicken (steps > 0) or thin (steps < 0) the pen: each whole step is one 3x3 dilation or erosion, about a
    pixel more or less on each side of a stroke; a fractional step blends linearly towards the next one.

    x: (B, H, W) float in [0, 1] -> (B, H, W). 0 returns x itself.
    """
    op = _dilate if steps > 0 else _erode
    whole, frac = divmod(abs(float(steps)), 1.0)
    for _ in range(int(whole)):
        x = op(x)
    if frac > 1e-9:
        x = x + frac * (op(x) - x)
    return x


@dataclass(frozen=True)
class Change:
    """One kind of change the lab sweeps: its transform, the values tried and how a page names them."""

    name: str  # "shift", "rotate", "scale", "stroke"
    label: str  # the axis title
    values: tuple[float, ...]  # the grid, in the transform's own unit
    identity: float  # the value that leaves the image alone
    fn: Transform


CHANGES: tuple[Change, ...] = (
    # +-10 px: within +-6 px both shipped MNIST models stay above 97%; ink starts leaving the frame after 4-6 px
    Change("shift", "shift right (px)", tuple(float(v) for v in range(-10, 11, 2)), 0.0, lambda x, v: shift(x, v)),
    Change("rotate", "rotation (degrees)", tuple(float(v) for v in range(-60, 61, 15)), 0.0, rotate),
    Change("scale", "scale (factor)", tuple(0.5 + 0.125 * i for i in range(9)), 1.0, scale),
    # one step thins or thickens a stroke by about 2 px: -2 leaves almost no ink, +3 fills most loops
    Change("stroke", "stroke width (steps)", tuple(float(v) for v in range(-2, 4)), 0.0, stroke),
)  # 11 + 9 + 9 + 6 = 35 values; the identity of each is scored once: 32 passes over the n images per model


def change(name: str) -> Change:
    return next(c for c in CHANGES if c.name == name)


@dataclass(frozen=True)
class Settings:
    """The lab's sliders: one change of each kind, applied together."""

    dx: float = 0.0  # pixels right
    dy: float = 0.0  # pixels down
    degrees: float = 0.0  # counter-clockwise
    factor: float = 1.0  # >1 enlarges
    steps: float = 0.0  # stroke: >0 thicker, <0 thinner


def apply_settings(x: torch.Tensor, s: Settings) -> torch.Tensor:
    """The pen first (on the strokes as drawn), then one affine resample. (B, H, W) in [0, 1] -> (B, H, W)."""
    return affine(stroke(x, s.steps), degrees=s.degrees, factor=s.factor, dx=s.dx, dy=s.dy)


def predict_changed(
    models: Mapping[str, LoadedModel], image: np.ndarray, settings: Settings
) -> tuple[np.ndarray, dict[str, Prediction]]:
    """One (28, 28) image (float in [0, 1] or uint8) changed by `settings`, and every model's calibrated
    prediction for it (no explanation). Returns the changed image (28, 28) float32 in [0, 1] and the predictions."""
    x = to_unit(torch.as_tensor(np.asarray(image)))[None]  # (1, 28, 28)
    changed = apply_settings(x, settings)[0].clamp(0.0, 1.0).numpy()  # (28, 28)
    predictions = {}
    for name, loaded in models.items():
        probs = predict_probs(loaded, model_input(changed, loaded))[0]  # (C,)
        predictions[name] = Prediction(loaded.kind, probs, None, classes=loaded.meta.classes)
    return changed, predictions


# --- the sweep -------------------------------------------------------------------------------------
# Images per forward. On one CPU thread, batches of 100 run the shipped MNIST CNN about twice as fast per image as
# one batch of 1,000 (its 32-channel 28x28 activations then stay in cache); measured 0.7 s vs 1.6 s per 1,000.
BATCH = 100


@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare with ==
class SweepResult:
    """Each model's accuracy on the same fixed test images at every value of every change."""

    n: int  # images per value
    seed: int  # picks the images
    values: dict[str, np.ndarray]  # change -> (V,) the values tried
    accuracy: dict[str, dict[str, np.ndarray]]  # model -> change -> (V,) accuracy in [0, 1]
    true_prob: dict[str, dict[str, np.ndarray]]  # model -> change -> (V,) mean calibrated probability of the truth
    plain: dict[str, float]  # model -> accuracy on the unchanged images
    seconds: float  # wall time of the whole sweep
    forwards: int = 0  # passes of a model over the n images (each in batches of `BATCH`)
    labels: dict[str, str] = field(default_factory=dict)  # change -> axis title
    batch_size: int = BATCH  # images per forward

    def at(self, model: str, change: str, value: float) -> float:
        """The accuracy of `model` at one value of `change`."""
        i = int(np.argmin(np.abs(self.values[change] - value)))
        return float(self.accuracy[model][change][i])

    def to_dict(self) -> dict:
        """Plain lists and numbers (JSON)."""
        return {
            "n": self.n,
            "seed": self.seed,
            "seconds": self.seconds,
            "forwards": self.forwards,
            "plain": self.plain,
            "values": {k: v.tolist() for k, v in self.values.items()},
            "accuracy": {m: {k: v.tolist() for k, v in by.items()} for m, by in self.accuracy.items()},
            "true_prob": {m: {k: v.tolist() for k, v in by.items()} for m, by in self.true_prob.items()},
        }


def fixed_subset(split: Split, n: int, seed: int) -> Split:
    """`n` test images picked by `seed` (the same ones on every call), in their original order."""
    n = min(n, len(split))
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return Split(split.images[idx], split.labels[idx])


@torch.inference_mode()
def _score(loaded: LoadedModel, x: torch.Tensor, labels: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """(accuracy, mean calibrated probability of the true class) of one model on (N, H, W) images in [0, 1]."""
    correct, truth = 0, 0.0
    for i in range(0, len(labels), batch_size):
        chunk, y = x[i : i + batch_size], labels[i : i + batch_size]  # (B, H, W), (B,)
        inputs = ((chunk - loaded.meta.mean) / loaded.meta.std).unsqueeze(1)  # (B, 1, H, W) normalised
        probs = loaded.probabilities(loaded.model(inputs))  # (B, C)
        correct += int((probs.argmax(1) == y).sum())
        truth += float(probs.gather(1, y[:, None]).sum())
    return correct / len(labels), truth / len(labels)


def sweep(
    models: Mapping[str, LoadedModel],
    split: Split,
    n: int = 1000,
    seed: int = 0,
    *,
    changes: tuple[Change, ...] = CHANGES,
    batch_size: int = BATCH,
    progress: Callable[[float], None] | None = None,
) -> SweepResult:
    """Every model's accuracy on `n` fixed images of `split` at every value of every change.

    Each value is one transform of all `n` images at once, then one pass of each model over them in batches of
    `batch_size`, on the device the models are on (CPU or GPU alike), with each model's own normalisation and
    its calibrated probabilities. `progress` hears the share of the values done after each one.
    """
    t0 = time.perf_counter()
    if not models:
        raise ValueError("sweep needs at least one model")
    device = next(next(iter(models.values())).model.parameters()).device
    subset = fixed_subset(split, n, seed)
    images = to_unit(subset.images.to(device))  # (N, 28, 28) in [0, 1]
    labels = subset.labels.to(device)  # (N,)
    accuracy: dict[str, dict[str, np.ndarray]] = {m: {} for m in models}
    true_prob: dict[str, dict[str, np.ndarray]] = {m: {} for m in models}
    plain_scores = {name: _score(loaded, images, labels, batch_size) for name, loaded in models.items()}
    forwards, done, total = len(models), 0, sum(len(c.values) for c in changes)
    for c in changes:
        scores: dict[str, list[tuple[float, float]]] = {m: [] for m in models}
        for value in c.values:
            changed = None if value == c.identity else c.fn(images, value)  # (N, 28, 28)
            for name, loaded in models.items():
                scores[name].append(
                    plain_scores[name] if changed is None else _score(loaded, changed, labels, batch_size)
                )
            forwards += 0 if changed is None else len(models)
            done += 1
            if progress is not None:
                progress(done / total)
        for name, found in scores.items():
            accuracy[name][c.name] = np.array([a for a, _ in found])  # (V,)
            true_prob[name][c.name] = np.array([p for _, p in found])  # (V,)
    return SweepResult(
        n=len(subset),
        seed=seed,
        values={c.name: np.array(c.values) for c in changes},
        accuracy=accuracy,
        true_prob=true_prob,
        plain={name: acc for name, (acc, _) in plain_scores.items()},
        seconds=time.perf_counter() - t0,
        forwards=forwards,
        labels={c.name: c.label for c in changes},
        batch_size=batch_size,
    )
