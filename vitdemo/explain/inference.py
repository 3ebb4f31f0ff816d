"""One drawing in, everything the Draw page and `predict` need out: preprocessing stages, predictions
and explanations for a ViT and a CNN. Pure functions over loaded models; no UI here.

Two things keep the Draw page instant (`python -m vitdemo bench` prints the pipeline's figure): a loaded CNN runs
with its batch norms folded into its convs and channels-last weights (`inference_model`), and each model remembers its last answers by the
exact 28x28 input, and the drawing's preprocessing by its bytes (`ANSWERS`), so that a rerun of the page for the same drawing (a slider moved, a button pressed)
costs no model pass at all.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

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


_FOLDED: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()


def inference_model(loaded: LoadedModel) -> nn.Module:
    """The network that answers for a loaded checkpoint: a CNN with its batch norms folded into its convs, its weights
    channels-last (built once per loaded model: loaded checkpoints are never trained in place), any other model as
    it is."""
    model = loaded.model
    if loaded.kind != "cnn" or model.training:
        return model
    found = _FOLDED.get(model)
    if found is None:
        from vitdemo.models.cnn import fast_inference_copy

        found = _FOLDED[model] = fast_inference_copy(model)  # type: ignore[arg-type]
    return found


class AnswerCache:
    """The last `size` drawings' preprocessing, by their exact bytes, and the last `size` predictions of each model,
    by the exact input and the explanation's settings. Weakly keyed by the model, so a model dropped by the app drops
    its answers; a lock, since sessions are threads."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._by_model: weakref.WeakKeyDictionary[nn.Module, OrderedDict[tuple, Prediction]] = (
            weakref.WeakKeyDictionary()
        )
        self._drawings: OrderedDict[tuple, Preprocessed] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(x: torch.Tensor, *settings: object) -> tuple:
        return (hashlib.blake2b(x.detach().cpu().numpy().tobytes(), digest_size=16).digest(), *settings)

    def preprocessed(self, image: np.ndarray | bytes) -> Preprocessed:
        """`preprocess(image)`, remembered for the last `size` drawings by their exact bytes (and shape)."""
        raw = np.ascontiguousarray(image) if isinstance(image, np.ndarray) else image
        shape = raw.shape if isinstance(raw, np.ndarray) else ()
        key = (
            hashlib.blake2b(memoryview(raw).cast("B"), digest_size=16).digest(),
            shape,
            str(getattr(raw, "dtype", "")),
        )
        with self._lock:
            found = self._drawings.get(key)
            if found is not None:
                self._drawings.move_to_end(key)
                return found
        found = preprocess(image)
        with self._lock:
            self._drawings[key] = found
            while len(self._drawings) > self.size:
                self._drawings.popitem(last=False)
        return found

    def get(self, model: nn.Module, key: tuple) -> Prediction | None:
        with self._lock:
            answers = self._by_model.get(model)
            if answers is None or key not in answers:
                return None
            answers.move_to_end(key)
            return answers[key]

    def put(self, model: nn.Module, key: tuple, prediction: Prediction) -> None:
        with self._lock:
            answers = self._by_model.setdefault(model, OrderedDict())
            answers[key] = prediction
            while len(answers) > self.size:
                answers.popitem(last=False)


ANSWERS = AnswerCache()


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
        inference_model(loaded), x, loaded.kind, mean=meta.mean, std=meta.std, head_fusion=head_fusion,
        discard_ratio=discard_ratio,
    )  # (1, C), (1, 28, 28), per-layer attention for a transformer  # fmt: skip
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
    cache: AnswerCache | None = ANSWERS,
) -> Analysis:
    """Preprocess once, then predict (and explain) with every model. Empty drawings get no prediction. An input
    already prepared (`Preprocessed`, e.g. `pipeline.dataset_image` for a test image) is used as it is. A model's
    answer to an input it answered before comes from `cache` (None: always run the models)."""
    t0 = time.perf_counter()
    if isinstance(image, Preprocessed):
        pre = image
    else:
        pre = cache.preprocessed(image) if cache is not None else preprocess(image)
    timings = {"preprocess": (time.perf_counter() - t0) * 1e3}
    predictions: dict[str, Prediction] = {}
    if pre.empty or pre.image is None:
        return Analysis(pre, predictions, timings)
    for name, loaded in models.items():
        t = time.perf_counter()
        x = model_input(pre.image, loaded)
        key = AnswerCache.key(x, explain, head_fusion, discard_ratio) if cache is not None else ()
        found = cache.get(loaded.model, key) if cache is not None else None
        if found is None:
            found = explain_one(loaded, x, explain=explain, head_fusion=head_fusion, discard_ratio=discard_ratio)
            if cache is not None:
                cache.put(loaded.model, key, found)
        predictions[name] = found
        timings[name] = (time.perf_counter() - t) * 1e3
    timings["total"] = (time.perf_counter() - t0) * 1e3
    return Analysis(pre, predictions, timings)
