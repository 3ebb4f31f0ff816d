"""Classic baselines with scikit-learn on the 784 pixels: logistic regression, kNN, an SVM, a random forest.

Pixels go in as (N, 28, 28) uint8 and are flattened and scaled to [0, 1]. Probabilities come out as (N, 10)
whatever subset of classes an estimator saw. Files are skops archives, never pickles: before anything is
built, every type named in the file is checked against an explicit allowlist, then skops loads it with only
the allowlisted types trusted, and the result must have the structure its kind builds. Anything else is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.svm import SVC

from vitdemo.data import DatasetSplits, Split
from vitdemo.metrics import Scores, evaluate_predictions
from vitdemo.runconfig import CLASSIC_KINDS, ClassicConfig, ClassicRun

KINDS = CLASSIC_KINDS
SUFFIX = ".skops"
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
class ClassicModel:
    """A fitted baseline with what it needs to describe itself."""

    config: ClassicConfig
    estimator: Any  # a fitted scikit-learn classifier (see build_estimator)
    dataset: str = "mnist"
    metrics: dict[str, Any] = field(default_factory=dict)
    name: str = ""


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


def fit_run(run: ClassicRun, data: DatasetSplits) -> ClassicModel:
    """Fit `run` on the training split and score it on the test (and validation) split: the one path the CLI
    and the worker share. The metrics say how it did and on which data."""
    start = time.perf_counter()
    fitted = fit_classic(run.model, data.train.images.numpy(), data.train.labels.numpy(), dataset=run.dataset)
    fit_s = time.perf_counter() - start
    test = score_classic(fitted, data.test)
    metrics: dict[str, Any] = {
        "val_acc": score_classic(fitted, data.val).accuracy if len(data.val) else None,
        "test_acc": test.accuracy,
        "macro_f1": test.report.macro_f1,
        "test_loss": test.loss,
        "train_time_s": fit_s,
        "train_images": len(data.train),
        "num_params": stored_numbers(fitted),
        "device": "cpu",
        "split_seed": run.split_seed,
        "val_size": run.val_size,
        "train_subset": run.train_subset,
    }
    return dataclasses.replace(fitted, metrics=metrics, name=run.name)


def stored_numbers(fitted: ClassicModel) -> int:
    """How many numbers the fitted model keeps to answer (the "parameters" column of the leaderboard): weights
    (logistic regression), stored training features (kNN), support vectors with their coefficients (SVM),
    split thresholds, features and leaf class counts (forest); plus the PCA projection where there is one."""
    est = fitted.estimator
    if fitted.config.kind == "logreg":
        return int(est.coef_.size + est.intercept_.size)
    if fitted.config.kind == "forest":
        return int(sum(t.tree_.node_count * (2 + t.tree_.value.shape[-1]) for t in est.estimators_))
    pipeline = est.calibrated_classifiers_[0].estimator if fitted.config.kind == "svm" else est
    pca, model = pipeline.steps[0][1], pipeline.steps[1][1]
    numbers = int(pca.components_.size + pca.mean_.size)
    if fitted.config.kind == "knn":
        return numbers + int(model._fit_X.size)
    return numbers + int(model.support_vectors_.size + model.dual_coef_.size + model.intercept_.size)


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
        "name": fitted.name,
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


def _schema(path: str | os.PathLike) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ClassicError(f"{Path(path).name} is not a readable classic-model file ({type(exc).__name__})") from exc
    if not isinstance(schema, dict):
        raise ClassicError(f"{Path(path).name} is not a vitdemo classic-model file")
    return schema


def file_types(path: str | os.PathLike) -> set[str]:
    """Every 'module.Class' a skops file names, read from its schema without building anything."""
    found: set[str] = set()
    _collect_types(_schema(path), found)
    return found


@dataclass(frozen=True)
class ClassicHeader:
    """What a classic-model file says about itself, read without building its estimator (a registry listing)."""

    config: ClassicConfig
    dataset: str
    metrics: dict[str, Any]
    name: str

    def run(self) -> ClassicRun:
        """The run that made the file, as far as the file tells (the data settings are in its metrics)."""
        m = self.metrics
        return ClassicRun(
            model=self.config,
            dataset=self.dataset,
            val_size=int(m.get("val_size", 5000)),
            split_seed=int(m.get("split_seed", 0)),
            train_subset=int(m.get("train_subset", 0)),
            name=self.name,
        )


def read_header(path: str | os.PathLike) -> ClassicHeader:
    """The config, dataset, metrics and name of a file written by save_classic: the strings of its schema,
    never its arrays or estimator (ClassicError for anything else)."""
    name = Path(path).name
    content = _schema(path).get("content")
    strings: dict[str, Any] = {}
    for key in ("format", "config", "dataset", "metrics", "name"):
        node = content.get(key) if isinstance(content, dict) else None
        if isinstance(node, dict) and node.get("__class__") == "str" and isinstance(node.get("content"), str):
            with contextlib.suppress(ValueError):
                strings[key] = json.loads(node["content"])
    if strings.get("format") != FORMAT:
        raise ClassicError(f"{name} is not a vitdemo classic-model file")
    config, metrics = _config_and_metrics(strings, name)
    dataset, title = strings.get("dataset", "mnist"), strings.get("name", "")
    return ClassicHeader(config, str(dataset), metrics if isinstance(metrics, dict) else {}, str(title))


def _config_and_metrics(fields: dict[str, Any], name: str) -> tuple[ClassicConfig, Any]:
    """The validated config and the metrics stored (as JSON text) in a file's header or payload."""
    try:
        config = ClassicConfig(**json.loads(fields["config"]))
        config.validate()
        return config, json.loads(fields.get("metrics") or "{}")
    except (TypeError, ValueError, KeyError) as exc:
        raise ClassicError(f"{name} has a damaged config ({exc})") from exc


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
    config, metrics = _config_and_metrics(payload, name)
    estimator = payload.get("estimator")
    if not _has_structure(config.kind, estimator):
        raise ClassicError(f"{name} does not hold the {config.kind} model its config names")
    return ClassicModel(
        config, estimator, str(payload.get("dataset", "mnist")), dict(metrics), str(payload.get("name", ""))
    )


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
