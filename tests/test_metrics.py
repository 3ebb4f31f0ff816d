"""Metrics against small examples worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vitdemo.metrics import (
    ClassReport,
    EvalReport,
    accuracy,
    evaluate_predictions,
    format_confusion,
)

# Six samples over four classes; class 3 never occurs and is never predicted.
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 0, 2])
# By hand: precision = TP / predicted, recall = TP / true, F1 = 2PR / (P + R); 0 where undefined.
PRECISION = [1 / 2, 2 / 3, 1 / 1, 0.0]
RECALL = [1 / 2, 2 / 2, 1 / 2, 0.0]
F1 = [0.5, 0.8, 2 / 3, 0.0]
CONFUSION = [
    [1, 1, 0, 0],
    [0, 2, 0, 0],
    [1, 0, 1, 0],
    [0, 0, 0, 0],
]


@pytest.fixture
def report() -> EvalReport:
    return evaluate_predictions(Y_TRUE, Y_PRED, num_classes=4)


def test_accuracy():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    assert accuracy([1, 2, 3], [1, 2, 3]) == 1.0
    assert accuracy([1, 2], [0, 0]) == 0.0


def test_confusion_matrix_rows_true_cols_predicted(report):
    assert report.confusion.dtype == np.int64 and report.confusion.shape == (4, 4)
    np.testing.assert_array_equal(report.confusion, CONFUSION)
    assert report.confusion.sum() == len(Y_TRUE)


def test_per_class_scores_with_a_missing_class(report):
    assert isinstance(report.per_class, ClassReport)
    np.testing.assert_allclose(report.per_class.precision, PRECISION)
    np.testing.assert_allclose(report.per_class.recall, RECALL)
    np.testing.assert_allclose(report.per_class.f1, F1)
    np.testing.assert_array_equal(report.per_class.support, [2, 2, 2, 0])


def test_macro_f1_counts_every_class(report):
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3 + 0.0) / 4)
    three = evaluate_predictions(Y_TRUE, Y_PRED, num_classes=3)  # the same without the empty class
    assert three.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_misclassified_indices(report):
    assert report.misclassified.dtype == np.int64
    np.testing.assert_array_equal(report.misclassified, [1, 4])


def test_perfect_predictions():
    y = np.arange(10).repeat(3)
    r = evaluate_predictions(y, y)
    assert r.accuracy == 1.0 and r.macro_f1 == 1.0
    np.testing.assert_array_equal(r.confusion, np.diag(np.full(10, 3)))
    assert r.misclassified.size == 0


def test_torch_tensors_are_accepted():
    r = evaluate_predictions(torch.tensor(Y_TRUE), torch.tensor(Y_PRED), num_classes=4)
    np.testing.assert_array_equal(r.confusion, CONFUSION)
    assert accuracy(torch.tensor(Y_TRUE), Y_PRED.tolist()) == pytest.approx(4 / 6)


def test_to_dict_is_json_and_round_trips(report):
    d = json.loads(json.dumps(report.to_dict()))
    assert d["accuracy"] == pytest.approx(4 / 6)
    assert d["confusion"] == CONFUSION
    assert d["misclassified"] == [1, 4]
    assert d["per_class"]["support"] == [2, 2, 2, 0]
    back = EvalReport.from_dict(d)
    np.testing.assert_array_equal(back.confusion, report.confusion)
    np.testing.assert_allclose(back.per_class.f1, report.per_class.f1)
    assert back.macro_f1 == report.macro_f1 and back.num_classes == 4


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([0, 1, 2], [0, 1], "differ in length"),
        ([0, 1, 10], [0, 1, 2], "outside"),
        ([0, 1, 2], [0, -1, 2], "outside"),
        ([], [], "No predictions"),
        (np.zeros((2, 3)), np.zeros((2, 3)), "shape"),
        ([0, 1], [0.5, 1.0], "whole numbers"),
    ],
)
def test_bad_inputs_raise(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        evaluate_predictions(y_true, y_pred)


def test_format_confusion_is_an_aligned_table():
    text = format_confusion(np.array(CONFUSION))
    lines = text.splitlines()
    assert len(lines) == 5  # header + one row per class
    assert len({len(line) for line in lines}) == 1  # aligned
    assert lines[2].split() == ["1", "0", "2", "0", "0"]  # true class 1: two predicted as 1
    assert lines[3].split() == ["2", "1", "0", "1", "0"]


def test_format_confusion_with_names_and_wide_numbers():
    text = format_confusion(np.array([[1234, 5], [67, 890]]), ["cat", "dog"])
    lines = text.splitlines()
    assert lines[0].split()[1:] == ["cat", "dog"]
    assert lines[1].split() == ["cat", "1234", "5"]
    assert lines[2].split() == ["dog", "67", "890"]
    assert len({len(line) for line in lines}) == 1
    with pytest.raises(ValueError):
        format_confusion(np.array([[1, 2], [3, 4]]), ["only one"])
    with pytest.raises(ValueError):
        format_confusion(np.zeros((2, 3)))
