"""Classification metrics: accuracy, per-class precision/recall/F1, confusion matrix, a text report.

scikit-learn does the counting; this module fixes the label set (so classes that never appear still
get a row) and packs the results into one serialisable report. Labels may be numpy arrays or tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare with ==
class ClassReport:
    precision: np.ndarray  # (C,) float64; 0 where a class is never predicted
    recall: np.ndarray  # (C,) float64; 0 where a class never occurs
    f1: np.ndarray  # (C,) float64
    support: np.ndarray  # (C,) int64, true samples per class


@dataclass(frozen=True, eq=False)
class EvalReport:
    accuracy: float  # fraction in [0, 1]
    macro_f1: float  # unweighted mean of per_class.f1 over all C classes
    per_class: ClassReport
    confusion: np.ndarray  # (C, C) int64, rows = true, cols = predicted
    misclassified: np.ndarray  # (M,) int64 indices where pred != true

    @property
    def num_classes(self) -> int:
        return int(self.confusion.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: plain floats, ints and lists."""
        return {
            "accuracy": float(self.accuracy),
            "macro_f1": float(self.macro_f1),
            "per_class": {
                "precision": self.per_class.precision.tolist(),
                "recall": self.per_class.recall.tolist(),
                "f1": self.per_class.f1.tolist(),
                "support": self.per_class.support.tolist(),
            },
            "confusion": self.confusion.tolist(),
            "misclassified": self.misclassified.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvalReport:
        """Inverse of `to_dict`."""
        c = d["per_class"]
        per_class = ClassReport(
            precision=np.asarray(c["precision"], dtype=np.float64),
            recall=np.asarray(c["recall"], dtype=np.float64),
            f1=np.asarray(c["f1"], dtype=np.float64),
            support=np.asarray(c["support"], dtype=np.int64),
        )
        return cls(
            accuracy=float(d["accuracy"]),
            macro_f1=float(d["macro_f1"]),
            per_class=per_class,
            confusion=np.asarray(d["confusion"], dtype=np.int64),
            misclassified=np.asarray(d["misclassified"], dtype=np.int64),
        )


def as_labels(y: Any) -> np.ndarray:
    """Labels from a list, numpy array or torch tensor (any device) -> (N,) int64."""
    if hasattr(y, "detach"):  # a torch tensor, without importing torch here
        y = y.detach().cpu().numpy()
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"Expected labels of shape (N,), got {a.shape}.")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"Labels must be numbers, got dtype {a.dtype}.")
    whole = a.dtype.kind != "f" or bool(np.all(np.mod(a, 1) == 0))
    if not whole:
        raise ValueError("Labels must be whole numbers (class indices, not scores).")
    return a.astype(np.int64)


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = as_labels(y_true), as_labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape[0]} vs {p.shape[0]}.")
    return t, p


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of predictions equal to the truth, in [0, 1]."""
    t, p = _pair(y_true, y_pred)
    if t.size == 0:
        raise ValueError("No predictions to score.")
    return float(np.mean(t == p))


def evaluate_predictions(y_true: Any, y_pred: Any, num_classes: int = 10) -> EvalReport:
    """Everything the Evaluate page and the run registry need, over classes 0..num_classes-1.

    Classes that never occur or are never predicted get precision/recall/F1 of 0 and still count
    in the macro F1.
    """
    t, p = _pair(y_true, y_pred)
    if t.size == 0:
        raise ValueError("No predictions to score.")
    for name, y in (("y_true", t), ("y_pred", p)):
        if y.min() < 0 or y.max() >= num_classes:
            raise ValueError(f"{name} holds labels outside 0..{num_classes - 1}.")
    labels = np.arange(num_classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        t, p, labels=labels, average=None, zero_division=0
    )  # each (C,)
    per_class = ClassReport(
        precision=np.asarray(precision, dtype=np.float64),
        recall=np.asarray(recall, dtype=np.float64),
        f1=np.asarray(f1, dtype=np.float64),
        support=np.asarray(support, dtype=np.int64),
    )
    return EvalReport(
        accuracy=float(np.mean(t == p)),
        macro_f1=float(per_class.f1.mean()),
        per_class=per_class,
        confusion=confusion_matrix(t, p, labels=labels).astype(np.int64),  # (C, C)
        misclassified=np.flatnonzero(t != p).astype(np.int64),
    )


def format_confusion(confusion: np.ndarray, class_names: list[str] | None = None) -> str:
    """Aligned text table of a (C, C) confusion matrix: rows true, columns predicted."""
    cm = np.asarray(confusion)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"Expected a square (C, C) matrix, got shape {cm.shape}.")
    names = [str(i) for i in range(cm.shape[0])] if class_names is None else list(class_names)
    if len(names) != cm.shape[0]:
        raise ValueError(f"{len(names)} class names for {cm.shape[0]} classes.")
    corner = "true\\pred"
    cells = [[str(int(v)) for v in row] for row in cm]
    width = max([len(n) for n in names] + [len(c) for row in cells for c in row])
    label_width = max([len(corner)] + [len(n) for n in names])
    lines = [corner.ljust(label_width) + "".join(f" {n:>{width}}" for n in names)]
    for name, row in zip(names, cells, strict=True):
        lines.append(name.rjust(label_width) + "".join(f" {c:>{width}}" for c in row))
    return "\n".join(lines)


@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare with ==
class Scores:
    """A model's answers on one split."""

    labels: np.ndarray  # (N,) int64, the true classes
    probs: np.ndarray  # (N, C) float32, softmax(logits / temperature): the calibrated probabilities
    loss: float  # mean cross-entropy; NaN for an empty split
    report: EvalReport

    @property
    def preds(self) -> np.ndarray:
        return self.probs.argmax(1)  # (N,)

    @property
    def accuracy(self) -> float:
        return self.report.accuracy
