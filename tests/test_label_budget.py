"""The label-budget results file (written by scripts/compare_label_budget.py --json), its table and its plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vitdemo.views import label_budget as lb


def row(dataset: str, model: str, labels: int, test_acc: float, **more) -> dict:
    return {"dataset": dataset, "model": model, "labels": labels, "test_acc": test_acc, **more}


ROWS = [
    row("mnist", "ViT + MAE", 100, 0.756, pretrain_s=120.0),
    row("mnist", "ViT", 100, 0.372, train_acc=1.0, val_acc=0.37, test_loss=2.1, finetune_s=30.0),
    row("mnist", "CNN", 100, 0.933),
    row("mnist", "CNN + SimCLR", 100, 0.946),
    row("mnist", "ViT", 0, 0.99),
    row("mnist", "ViT", 600, 0.80),
    row("fashion", "CNN", 100, 0.70),
]


def test_rows_are_written_merged_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "out" / lb.FILE_NAME
    lb.write_results(path, ROWS[:3], note="first")
    lb.write_results(path, [row("mnist", "ViT", 100, 0.40), row("fashion", "ViT", 100, 0.6)])  # MNIST again
    rows, note = lb.read_results(path)
    assert note == "first"  # kept when no new note is given
    keys = [(r["dataset"], r["model"], r["labels"]) for r in rows]
    assert keys == [("fashion", "ViT", 100), ("mnist", "CNN", 100), ("mnist", "ViT", 100), ("mnist", "ViT + MAE", 100)]
    assert next(r for r in rows if r["model"] == "ViT" and r["dataset"] == "mnist")["test_acc"] == 0.40  # replaced
    assert json.loads(path.read_text())["format"] == lb.FORMAT
    assert not list(path.parent.glob(".*.tmp"))  # written atomically, nothing left over


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "could not be read as JSON"),
        (json.dumps({"rows": []}), "is not a label-budget results file"),
        (json.dumps({"format": lb.FORMAT, "version": 99, "rows": []}), "newer vitdemo"),
        (json.dumps({"format": lb.FORMAT, "rows": [{"dataset": "mnist"}]}), "row 1: every row needs"),
        (json.dumps({"format": lb.FORMAT, "rows": [row("mnist", "ViT", -1, 0.5)]}), "labels must be"),
        (json.dumps({"format": lb.FORMAT, "rows": [row("mnist", "ViT", 100, "high")]}), "test_acc must be a number"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_only(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "secret" / "results.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(lb.BudgetFileError, match=message) as caught:
        lb.read_results(path)
    assert "secret" not in str(caught.value) and "results.json" in str(caught.value)


def test_the_table_orders_models_and_budgets() -> None:
    frame = lb.budget_frame(ROWS)
    assert list(frame.columns) == list(lb.TABLE_COLUMNS)
    mnist = frame[frame["dataset"] == "MNIST"]
    assert list(mnist["model"]) == ["CNN", "CNN + SimCLR", "ViT", "ViT", "ViT", "ViT + MAE"]
    assert list(mnist[mnist["model"] == "ViT"]["labels"]) == ["100", "600", "all"]
    vit = mnist.iloc[2]
    assert vit["test acc"] == 0.372 and vit["train acc"] == 1.0 and vit["fine-tune (s)"] == 30.0
    assert frame["val loss"].isna().all()  # not measured: empty, not 0


def test_the_plot_has_a_panel_per_dataset_and_dashes_the_pretrained_runs() -> None:
    fig = lb.budget_figure(ROWS)
    traces = {(t.name, t.xaxis): t for t in fig.data}
    vit = traces[("ViT", "x")]
    assert list(vit.x) == ["100", "600", "all"] and list(vit.y) == [0.372, 0.80, 0.99]
    assert traces[("ViT + MAE", "x")].line.dash == "dash" and vit.line.dash is None
    assert traces[("ViT + MAE", "x")].line.color == vit.line.color  # the same model, pretrained
    assert ("CNN", "x2") in traces  # Fashion-MNIST on the right
    assert [t.showlegend for t in fig.data if t.name == "CNN"] == [True, False]  # each model once in the legend
    assert list(fig.layout.xaxis.categoryarray) == ["100", "600", "6,000", "all"]
    assert [a.text for a in fig.layout.annotations] == ["MNIST digits", "Fashion-MNIST"]


def test_the_summary_gives_the_gain_of_pretraining_at_100_labels() -> None:
    assert lb.budget_summary(ROWS) == [
        "MNIST, 100 labels: ViT + MAE 75.6% against ViT 37.2% (+38.4 points); "
        "CNN + SimCLR 94.6% against CNN 93.3% (+1.3 points)"
    ]  # Fashion-MNIST has no pair at 100 labels
    assert lb.budget_summary(ROWS, labels=600) == []
