"""One drawing in, everything the Draw page and `predict` need out: preprocessing stages, predictions
and explanations for a ViT and a CNN. Pure functions over loaded models; no UI here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from vitdemo.checkpoints import LoadedModel
from vitdemo.explain.maps import HeadFusion, explain_prediction, layer_maps
from vitdemo.preprocess.pipeline import Preprocessed, normalize, preprocess


@dataclass(frozen=True)
class Prediction:
    kind: str  # "vit" or "cnn"
    probs: np.ndarray  # (C,) float, sums to 1
    heat: np.ndarray | None  # (28, 28) in [0, 1]: attention rollout (ViT) or Grad-CAM (CNN)
    layer_maps: np.ndarray | None = None  # (L, g, g) per-layer class-token attention, ViT only
    classes: tuple[str, ...] = tuple(str(i) for i in range(10))

    @property
    def label(self) -> int:
        return int(self.probs.argmax())

    @property
    def confidence(self) -> float:
        return float(self.probs.max())

    def top(self, k: int = 3) -> list[tuple[int, float]]:
        order = np.argsort(-self.probs)[:k]
        return [(int(i), float(self.probs[i])) for i in order]


@dataclass(frozen=True)
class Analysis:
    pre: Preprocessed
    predictions: dict[str, Prediction] = field(default_factory=dict)  # keyed by the caller's names
    timings_ms: dict[str, float] = field(default_factory=dict)


def model_input(image: np.ndarray, loaded: LoadedModel) -> torch.Tensor:
    """(28, 28) in [0, 1] -> (1, 1, 28, 28) normalised with the checkpoint's own statistics."""
    return normalize(image, loaded.meta.mean, loaded.meta.std)


@torch.inference_mode()
def predict_probs(loaded: LoadedModel, x: torch.Tensor) -> np.ndarray:
    """Calibrated class probabilities (B, C) for already normalised inputs (B, 1, 28, 28)."""
    return loaded.probabilities(loaded.model(x)).numpy()


def explain_one(
    loaded: LoadedModel,
    x: torch.Tensor,
    *,
    explain: bool = True,
    head_fusion: HeadFusion = "mean",
    discard_ratio: float = 0.0,
) -> Prediction:
    """Probabilities plus the model's explanation for one input (1, 1, 28, 28)."""
    classes = loaded.meta.classes
    if not explain:
        return Prediction(loaded.kind, predict_probs(loaded, x)[0], None, classes=classes)
    meta = loaded.meta
    logits, heat, attns = explain_prediction(
        loaded.model, x, loaded.kind, mean=meta.mean, std=meta.std, head_fusion=head_fusion, discard_ratio=discard_ratio
    )  # (1, C), (1, 28, 28), per-layer attention for a transformer
    maps = None if attns is None else layer_maps(attns, meta.model_config.grid)[0].numpy()  # (L, g, g)
    probs = loaded.probabilities(logits)[0].numpy()
    return Prediction(loaded.kind, probs, heat[0].numpy(), maps, classes)


def analyze(
    image: np.ndarray | bytes | Preprocessed,
    models: dict[str, LoadedModel],
    *,
    explain: bool = True,
    head_fusion: HeadFusion = "mean",
    discard_ratio: float = 0.0,
) -> Analysis:
    """Preprocess once, then predict (and explain) with every model. Empty drawings get no prediction. An input
    already prepared (`Preprocessed`, e.g. `pipeline.dataset_image` for a test image) is used as it is."""
    t0 = time.perf_counter()
    pre = image if isinstance(image, Preprocessed) else preprocess(image)
    timings = {"preprocess": (time.perf_counter() - t0) * 1e3}
    predictions: dict[str, Prediction] = {}
    if pre.empty or pre.image is None:
        return Analysis(pre, predictions, timings)
    for name, loaded in models.items():
        t = time.perf_counter()
        x = model_input(pre.image, loaded)
        predictions[name] = explain_one(
            loaded, x, explain=explain, head_fusion=head_fusion, discard_ratio=discard_ratio
        )
        timings[name] = (time.perf_counter() - t) * 1e3
    timings["total"] = (time.perf_counter() - t0) * 1e3
    return Analysis(pre, predictions, timings)
