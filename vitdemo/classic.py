"""Classic baselines with scikit-learn on the 784 pixels: logistic regression, kNN, an SVM, a random forest.

Pixels go in as (N, 28, 28) uint8 and are flattened and scaled to [0, 1]. Probabilities come out as (N, 10)
whatever subset of classes an estimator saw. Files are skops archives, never pickles: before anything is
built, every type named in the file is checked against an explicit allowlist, then skops loads it with only
the allowlisted types trusted, and the result must have the structure its kind builds. Anything else is refused.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import SVC

from vitdemo.config import ConfigError
from vitdemo.data import Split
from vitdemo.evaluate import Scores
from vitdemo.metrics import evaluate_predictions

KINDS = ("logreg", "knn", "svm", "forest")
FORMAT = "vitdemo-classic"
FORMAT_VERSION = 1
NUM_CLASSES = 10

# Every type a file may name, skops's default-trusted ones included: anything else is refused before loading.
ALLOWED_TYPES = frozenset(
    {
        "builtins.dict",
        "builtins.list",
        "builtins.str",
        "builtins.tuple",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "numpy.ndarray",
        "numpy.float32",
        "numpy.float64",
        "numpy.int32",
        "numpy.int64",
        "numpy.intp",
        "numpy.dtype",
        "sklearn.pipeline.Pipeline",
        "sklearn.decomposition._pca.PCA",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.neighbors._classification.KNeighborsClassifier",
        "sklearn.svm._classes.SVC",
        "sklearn.calibration.CalibratedClassifierCV",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._tree.Tree",
    }
)


class ClassicError(ValueError):
    """A classic-model file is missing, damaged or holds something this app does not load."""


@dataclass(frozen=True)
class ClassicConfig:
    """One scikit-learn baseline. Defaults: the best MNIST accuracy that fits in <= 5 MB and ~1 CPU minute."""

    kind: Literal["logreg", "knn", "svm", "forest"] = "logreg"
    logreg_c: float = 0.1  # inverse L2 strength: 0.1 converges in ~100 lbfgs steps; 1.0 needs more, scores the same
    svm_c: float = 10.0  # RBF SVM on PCA features: C=10 is the usual MNIST optimum (gamma='scale')
    pca_components: int = 50  # SVM (and kNN below): 50 components keep ~82% of the variance and all the digits
    knn_components: int = 30  # kNN stores its training set: 30 dims x 35k images x 4 B = 4 MB
    knn_max_train: int = 35000  # a seeded subsample; 0 = all (55k x 30 x 4 B = 6.6 MB, over the 5 MB budget)
    n_neighbors: int = 3  # distance-weighted; 3 to 5 score the same on MNIST
    n_estimators: int = 40  # forest: file size grows with trees x 2**depth nodes; 40 x depth 12 is ~4.5 MB
    max_depth: int = 12  # deeper trees gain <1 point and double the file
    max_iter: int = 200  # logistic regression's lbfgs iterations
    seed: int = 0

    def validate(self) -> None:
        _check(self.kind in KINDS, f"kind must be one of {', '.join(KINDS)}")
        _check(0 < self.logreg_c <= 1e4 and 0 < self.svm_c <= 1e4, "logreg_c and svm_c must be in (0, 10000]")
        _check(2 <= self.pca_components <= 784, "pca_components must be between 2 and 784")
        _check(2 <= self.knn_components <= 784, "knn_components must be between 2 and 784")
        _check(self.knn_max_train >= 0, "knn_max_train must be >= 0 (0 keeps every training image)")
        _check(1 <= self.n_neighbors <= 50, "n_neighbors must be between 1 and 50")
        _check(1 <= self.n_estimators <= 500, "n_estimators must be between 1 and 500")
        _check(1 <= self.max_depth <= 40, "max_depth must be between 1 and 40")
        _check(10 <= self.max_iter <= 5000, "max_iter must be between 10 and 5000")


@dataclass(frozen=True)
class ClassicModel:
    """A fitted baseline with what it needs to describe itself."""

    config: ClassicConfig
    estimator: Any  # a fitted scikit-learn classifier (see build_estimator)
    dataset: str = "mnist"
    metrics: dict[str, Any] = field(default_factory=dict)


def flatten(images: Any) -> np.ndarray:
    """(N, 28, 28) uint8 (numpy or a CPU tensor) -> (N, 784) float32 in [0, 1]."""
    x = np.asarray(images)
    return x.reshape(len(x), -1).astype(np.float32) / 255.0


def build_estimator(config: ClassicConfig) -> Any:
    """An unfitted scikit-learn classifier for `config.kind`."""
    config.validate()
    seed = config.seed
    if config.kind == "logreg":
        return LogisticRegression(C=config.logreg_c, max_iter=config.max_iter)
    if config.kind == "knn":
        knn = KNeighborsClassifier(config.n_neighbors, weights="distance", algorithm="brute")  # brute: no tree to store
        return make_pipeline(PCA(config.knn_components, random_state=seed), knn)
    if config.kind == "svm":
        svm = make_pipeline(PCA(config.pca_components, random_state=seed), SVC(C=config.svm_c, random_state=seed))
        # Platt scaling on 3-fold out-of-fold scores; one SVM on all the data predicts (what probability=True did).
        return CalibratedClassifierCV(svm, method="sigmoid", cv=3, ensemble=False)
    return RandomForestClassifier(
        config.n_estimators, max_depth=config.max_depth, random_state=seed, n_jobs=1
    )  # n_jobs=1: the machine's cores are shared


def fit_classic(config: ClassicConfig, images: Any, labels: Any, *, dataset: str = "mnist") -> ClassicModel:
    """Fit on (N, 28, 28) uint8 images and (N,) labels; kNN first takes its seeded subsample."""
    x, y = flatten(images), np.asarray(labels).astype(np.int64)
    if config.kind == "knn" and 0 < config.knn_max_train < len(x):
        keep = np.random.default_rng(config.seed).permutation(len(x))[: config.knn_max_train]
        x, y = x[keep], y[keep]
    estimator = build_estimator(config)
    estimator.fit(x, y)
    return ClassicModel(config, estimator, dataset)


def predict_proba(fitted: ClassicModel, images: Any) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 10) float32 probabilities; classes never seen in training get 0."""
    est = fitted.estimator
    probs = est.predict_proba(flatten(images))  # (N, len(classes_))
    out = np.zeros((len(probs), NUM_CLASSES), dtype=np.float32)
    out[:, np.asarray(est.classes_, dtype=np.int64)] = probs
    return out


def score_classic(fitted: ClassicModel, split: Split) -> Scores:
    """The same Scores as vitdemo.evaluate.score_model gives a network, so pages and reports treat both alike."""
    probs = predict_proba(fitted, split.images.cpu().numpy())  # (N, 10)
    labels = split.labels.cpu().numpy().astype(np.int64)
    if len(labels) == 0:
        raise ClassicError("there are no images to score")
    loss = float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
    return Scores(labels, probs, loss, evaluate_predictions(labels, probs.argmax(1), NUM_CLASSES))


def logreg_templates(fitted: ClassicModel) -> np.ndarray:
    """Logistic regression's weights as ten 28x28 templates: red where ink votes for the class, blue against."""
    if fitted.config.kind != "logreg":
        raise ClassicError(f"only logistic regression has weight templates, not {fitted.config.kind}")
    est = fitted.estimator
    coef = np.zeros((NUM_CLASSES, 784), dtype=np.float32)
    coef[np.asarray(est.classes_, dtype=np.int64)] = est.coef_  # (C_seen, 784) -> (10, 784)
    return coef.reshape(NUM_CLASSES, 28, 28)


def save_classic(path: str | os.PathLike, fitted: ClassicModel) -> Path:
    """Write a compressed skops archive atomically; returns the final path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": json.dumps(asdict(fitted.config), sort_keys=True),
        "dataset": fitted.dataset,
        "metrics": json.dumps(fitted.metrics, sort_keys=True),
        "estimator": fitted.estimator,
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        sio.dump(payload, tmp, compression=zipfile.ZIP_DEFLATED)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def file_types(path: str | os.PathLike) -> set[str]:
    """Every 'module.Class' a skops file names, read from its schema without building anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ClassicError(f"{Path(path).name} is not a readable classic-model file ({type(exc).__name__})") from exc
    found: set[str] = set()
    _collect_types(schema, found)
    return found


def load_classic(path: str | os.PathLike) -> ClassicModel:
    """Load a file written by save_classic; refuses unknown types, tampered payloads and other structures."""
    path = Path(path)
    if not path.is_file():
        raise ClassicError(f"classic-model file not found: {path.name}")
    unknown = file_types(path) - ALLOWED_TYPES
    if unknown:
        raise ClassicError(f"{path.name} holds types this app does not load: {', '.join(sorted(unknown))}")
    try:
        payload = sio.load(path, trusted=sorted(ALLOWED_TYPES))
    except Exception as exc:  # skops raises UntrustedTypesFoundException, TypeError, ValueError, KeyError...
        raise ClassicError(f"{path.name} could not be loaded ({type(exc).__name__})") from exc
    return _from_payload(payload, path.name)


def _from_payload(payload: Any, name: str) -> ClassicModel:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ClassicError(f"{name} is not a vitdemo classic-model file")
    if int(payload.get("version", 0)) > FORMAT_VERSION:
        raise ClassicError(f"{name} was written by a newer vitdemo (format {payload['version']})")
    try:
        config = ClassicConfig(**json.loads(payload["config"]))
        config.validate()
        metrics = json.loads(payload.get("metrics") or "{}")
    except (TypeError, ValueError, KeyError) as exc:
        raise ClassicError(f"{name} has a damaged config ({exc})") from exc
    estimator = payload.get("estimator")
    if not _has_structure(config.kind, estimator):
        raise ClassicError(f"{name} does not hold the {config.kind} model its config names")
    return ClassicModel(config, estimator, str(payload.get("dataset", "mnist")), dict(metrics))


def _has_structure(kind: str, est: Any) -> bool:
    """The estimator is exactly what build_estimator makes for `kind` (types only, not values)."""
    if kind == "logreg":
        return type(est) is LogisticRegression
    if kind == "forest":
        return type(est) is RandomForestClassifier
    if kind == "svm":
        if type(est) is not CalibratedClassifierCV:
            return False
        est = est.estimator
        expected: tuple[type, ...] = (PCA, SVC)
    else:
        expected = (PCA, KNeighborsClassifier)
    return type(est) is Pipeline and tuple(type(step) for _, step in est.steps) == expected


def _collect_types(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        if "__class__" in node:
            found.add(f"{node.get('__module__', '')}.{node['__class__']}")
        for value in node.values():
            _collect_types(value, found)
    elif isinstance(node, list):
        for value in node:
            _collect_types(value, found)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
