"""Extra opinions on one drawing: any finished run beside the ViT and the CNN, a scikit-learn baseline stored with
skops or a torch checkpoint (linear, MLP, CNN, ViT, transfer), each with its explanation where it has one:
attention rollout for a ViT, integrated gradients for the other networks, the weight templates for logistic
regression. Pure functions over loaded models and the preprocessed 28x28 input; no UI here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vitdemo import families
from vitdemo.checkpoints import LoadedModel
from vitdemo.data import class_names
from vitdemo.explain.inference import Prediction, explain_one, model_input
from vitdemo.explain.maps import HeadFusion
from vitdemo.runconfig import CLASSIC_EXPLANATIONS

if TYPE_CHECKING:  # scikit-learn is imported only when a classic run is asked for (about a second)
    from vitdemo.models.classic import ClassicModel

CLASSIC_SUFFIX = ".skops"  # vitdemo.models.classic's files; every other run file is a safetensors checkpoint


@dataclass(frozen=True, eq=False)
class Opinion:
    """One run's answer for the current drawing."""

    prediction: Prediction  # probabilities, classes and, for a network, its heat map (28, 28)
    explanation: str | None  # what explains it ('attention rollout', 'weight templates'...); None: nothing does
    templates: np.ndarray | None = None  # (C, 28, 28) logistic regression's weights, one template per class


def is_classic_file(path: str | os.PathLike) -> bool:
    """A scikit-learn baseline (loaded with vitdemo.models.classic.load_classic), not a torch checkpoint."""
    return Path(path).suffix == CLASSIC_SUFFIX


def to_pixels(image: np.ndarray) -> np.ndarray:
    """The model input (28, 28) float in [0, 1] -> (1, 28, 28) uint8, as the classic baselines were fitted."""
    return np.round(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)[None]


def classic_opinion(fitted: ClassicModel, image: np.ndarray) -> Opinion:
    """A scikit-learn baseline on the (28, 28) model input; logistic regression brings its ten templates."""
    from vitdemo.models.classic import logreg_templates, predict_proba

    probs = predict_proba(fitted, to_pixels(image))[0]  # (10,)
    kind = fitted.config.kind
    prediction = Prediction(kind, probs, None, classes=class_names(fitted.dataset))
    if kind == "logreg":
        return Opinion(prediction, explanation_of(kind), logreg_templates(fitted))
    return Opinion(prediction, None)


def torch_opinion(
    loaded: LoadedModel, image: np.ndarray, *, head_fusion: HeadFusion = "mean", discard_ratio: float = 0.0
) -> Opinion:
    """A network on the (28, 28) model input, normalised with its own statistics, with its explanation."""
    prediction = explain_one(loaded, model_input(image, loaded), head_fusion=head_fusion, discard_ratio=discard_ratio)
    return Opinion(prediction, explanation_of(loaded.kind) if prediction.heat is not None else None)


def explanation_of(kind: str) -> str | None:
    """How a kind explains a prediction ('weight templates' for 'logreg'); None when it does not."""
    return families.get(kind).explanation if families.is_kind(kind) else CLASSIC_EXPLANATIONS.get(kind)
