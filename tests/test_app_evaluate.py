"""The Evaluate page's "Can you trust this map?" and calibration sections under Streamlit's AppTest: the whole
app against a private registry and a tiny trained "shipped" CNN (real training, real files, real test split)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from apptest import cell_counts, matrix_tables, open_page, plotly_specs, texts, train_shipped_cnn, vega_specs
from streamlit.testing.v1 import AppTest

from vitdemo.calibration import expected_calibration_error
from vitdemo.checkpoints import load_checkpoint
from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.data import load_raw
from vitdemo.evaluate import score_checkpoint
from vitdemo.runs.store import Registry
from vitdemo.views import words

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 180  # scores 10,000 test images, then blanks and restores 100 of them 15 times each


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A folder holding one tiny trained 'shipped' CNN for MNIST (a few seconds of training)."""
    config = TrainConfig(model=CNNConfig(width=4, depth=2), epochs=1, train_subset=2000, val_size=200, device="cpu")
    return train_shipped_cnn(tmp_path_factory.mktemp("shipped"), data_dir, config)


@pytest.fixture
def env(shipped_env: Any, shipped: Path) -> Registry:
    return shipped_env(shipped)


def open_evaluate(expert: bool = True) -> AppTest:
    """The Evaluate page, in the Expert view unless asked (these tests check its technical figures)."""
    return open_page("evaluate", timeout=TIMEOUT_S, expert=expert)


def test_reliability_diagram_and_calibration_error(env: Registry, shipped: Path) -> None:
    at = open_evaluate()
    run = next(r for r in env.list_runs() if r.baseline)
    assert "### Is its confidence honest?" in texts(at, "markdown")
    scores = score_checkpoint(load_checkpoint(shipped / "cnn_mnist.safetensors"))  # calibrated, as the page
    ece = expected_calibration_error(scores.probs, scores.labels)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[f"Calibration error #{run.id}"] == f"{ece:.2%}"
    (diagram,) = [s for s in vega_specs(at) if "perfectly calibrated" in s]
    assert f"#{run.id} (ECE {ece:.2%})" in diagram
    assert any(c.startswith("Each bar is the share of right answers") for c in texts(at, "caption"))


def test_trust_section_runs_on_request_and_is_kept_per_file_version(env: Registry, shipped: Path) -> None:
    at = open_evaluate()
    run = next(r for r in env.list_runs() if r.baseline)
    assert "### Can you trust this map?" in texts(at, "markdown")
    assert not any("deletion" in s for s in vega_specs(at))  # not computed on a plain visit
    at.button(key=f"trust_run_{run.id}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception]
    curves = [s for s in vega_specs(at) if "AUC" in s]  # deletion and insertion, each map's AUCs in the legend
    assert len(curves) == 2 and '"deletion"' in curves[0] and '"insertion"' in curves[1]
    assert {"**Deletion (lower is better)**", "**Insertion (higher is better)**"} <= set(texts(at, "markdown"))
    assert all("centre blob" in c and "random map" in c for c in curves)
    table = at.dataframe[-1].value
    assert list(table["map"]) == ["the model's map", "random map", "centre blob"]
    ours, rand = table.iloc[0], table.iloc[1]
    assert ours["deletion AUC"] < rand["deletion AUC"]  # even a 1-epoch CNN's map beats random pixels
    assert ours["background share"] < 0.05  # integrated gradients: nothing on the empty background
    assert "Same as untrained?" in {m.label for m in at.metric}
    assert any(c.startswith("How to read it:") for c in texts(at, "caption"))

    again = open_evaluate()  # a new session: the report of this file version is kept
    assert any("deletion" in s for s in vega_specs(again)) and not any(
        b.key == f"trust_run_{run.id}" for b in again.button
    )

    checkpoint = shipped / "cnn_mnist.safetensors"
    stamp = time.time() + 5
    os.utime(checkpoint, (stamp, stamp))  # touched, the same weights: the report kept on disk still holds
    touched = open_evaluate()
    assert any("deletion" in s for s in vega_specs(touched))
    assert list((env.home / "cache").glob("trust-*.json"))  # kept as JSON, keyed by the file's content

    for stored in (env.home / "cache").glob("trust-*.json"):
        stored.unlink()  # as for a file with other weights: checked again only when asked
    os.utime(checkpoint, (stamp + 5, stamp + 5))
    changed = open_evaluate()
    assert not any("deletion" in s for s in vega_specs(changed))
    assert any(b.key == f"trust_run_{run.id}" for b in changed.button)


def copied_run(env: Registry, shipped: Path, name: str, epochs: int = 0) -> int:
    """A done run whose checkpoint is a copy of the shipped CNN, with `epochs` epochs of made-up curves."""
    run_id = env.create_run(
        name=name, kind="cnn", dataset="mnist", config=TrainConfig(model=CNNConfig(width=4, depth=2)).to_dict(),
        status="done", device="cpu", test_acc=0.5, macro_f1=0.5, finished_at=time.time(),
    )  # fmt: skip
    path = env.checkpoint_dir / f"run-{run_id}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shipped / "cnn_mnist.safetensors", path)
    env.update_run(run_id, checkpoint=str(path))
    for epoch in range(1, epochs + 1):
        env.add_epoch(run_id, {"epoch": epoch, "train_loss": 1 / epoch, "val_loss": 1 / epoch, "val_acc": 0.5})
    return run_id


@pytest.fixture(scope="module")
def tiny_logreg(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A logistic regression fitted on 500 MNIST training images (a second), as a skops file."""
    from vitdemo.models.classic import ClassicConfig, fit_classic, save_classic

    train_split = load_raw("mnist", train=True, data_dir=data_dir)
    config = ClassicConfig(kind="logreg", max_iter=100)
    fitted = fit_classic(config, train_split.images[:500].numpy(), train_split.labels[:500].numpy())
    return save_classic(tmp_path_factory.mktemp("classic") / "logreg.skops", fitted)


def open_comparison(run_ids: list[int]) -> AppTest:
    at = open_evaluate()
    at.button_group(key="eval_view").set_value("compare").run()
    at.multiselect(key="eval_compare_mnist").set_value(run_ids).run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + texts(at, "error")
    return at


def test_comparing_two_runs_shows_both_calibration_curves(env: Registry, shipped: Path) -> None:
    at = open_evaluate()
    baseline = next(r for r in env.list_runs() if r.baseline)
    other = copied_run(env, shipped, "twin")
    at = open_comparison([baseline.id, other])
    both = [s for s in vega_specs(at) if "perfectly calibrated" in s and f"#{other} (ECE" in s]
    assert len(both) == 1 and f"#{baseline.id} (ECE" in both[0]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[f"Calibration error #{other}"] == metrics[f"Calibration error #{baseline.id}"]  # same weights
    # the same weights: neither gets anything right that the other gets wrong
    assert f"**#{baseline.id} right, #{other} wrong: 0 images**" in texts(at, "markdown")


def test_three_runs_side_by_side_of_three_families(env: Registry, shipped: Path, tiny_logreg: Path) -> None:
    from vitdemo.models.classic import load_classic, score_classic

    open_evaluate()  # registers the shipped CNN
    baseline = next(r for r in env.list_runs() if r.baseline)
    assert env.get_run(baseline.id).kind == "cnn"
    with_curves = copied_run(env, shipped, "[twin](http://x)", epochs=3)
    logreg = env.create_run(
        name="pixels-logreg", kind="logreg", dataset="mnist", config={"kind": "logreg"}, status="done",
        checkpoint=str(tiny_logreg), test_acc=0.8, macro_f1=0.8, train_time_s=1.5,
    )  # fmt: skip
    at = open_comparison([baseline.id, with_curves, logreg])

    table = next(d.value for d in at.dataframe if "calibration error" in d.value.columns)
    assert list(table["id"]) == [baseline.id, with_curves, logreg]
    assert list(table["family"]) == ["CNN", "CNN", "Classic"]
    assert list(table["model"]) == ["CNN", "CNN", "Logistic regression"]
    assert table["run"][1] == "[twin](http://x)"  # the name as typed: a table cell is never markdown
    expected = score_classic(load_classic(tiny_logreg), load_raw("mnist", train=False))  # measured here, not stored
    assert table["test accuracy"][2] == pytest.approx(expected.accuracy) and expected.accuracy != 0.8
    assert table["test loss"][2] == pytest.approx(expected.loss, rel=1e-5)
    assert table["test accuracy"][0] == pytest.approx(table["test accuracy"][1])  # the same weights
    assert table["calibration error"].notna().all()

    grid = matrix_tables(at)  # the three matrices, as coloured tables on one scale
    assert len(grid) == 3 and all(cell_counts(t).sum() == 10_000 for t in grid)
    assert not any("<button" in t for t in grid)  # side by side they are pictures: a click picks nothing
    (curves,) = [s for s in plotly_specs(at) if "validation accuracy" in s]
    assert "twin" in curves and "pixels-logreg" not in curves  # a classic model has no epochs...
    assert any(c.startswith(f"No training curves for #{baseline.id}, #{logreg}") for c in texts(at, "caption"))
    assert any(f"#{baseline.id} right, #{with_curves} wrong" in m for m in texts(at, "markdown"))


def test_the_family_filter_narrows_the_runs(env: Registry, shipped: Path, tiny_logreg: Path) -> None:
    logreg = env.create_run(
        name="pixels-logreg", kind="logreg", dataset="mnist", config={}, status="done", checkpoint=str(tiny_logreg),
        test_acc=0.8,
    )  # fmt: skip
    at = open_evaluate()
    assert at.multiselect(key="eval_families").options == ["Classic", "CNN"]
    at.multiselect(key="eval_families").set_value(["classic"]).run()
    assert not at.exception
    assert at.selectbox(key="eval_run").value == logreg  # the one classic run, scored on the test split
    assert {m.label for m in at.metric} >= {"Test accuracy", "Macro F1"}
    assert any("a scikit-learn baseline has none here" in c for c in texts(at, "caption"))  # no trust checks


def test_a_student_reads_the_evaluate_page_in_plain_words(env: Registry, shipped: Path) -> None:
    at = open_evaluate(expert=False)
    labels = {m.label for m in at.metric}
    assert {words.say("evaluate", "accuracy"), words.say("evaluate", "size")} <= labels
    assert not labels & {"Test accuracy", "Macro F1", "Parameters"}  # no method names or parameter counts
    shown = " ".join(texts(at, "caption"))
    assert words.say("evaluate", "trust_offer") in shown and words.say("evaluate", "calibration") in shown
    assert not [w for w in ("AUC", "Petsiuk", "calibration error", "deletion") if w in shown]
    headings = " ".join(texts(at, "markdown"))  # seen on the screenshots: the matrix and the table kept their names
    assert "Confusion matrix" not in headings and words.say("evaluate", "matrix_title") in headings
    (table,) = [d for d in at.dataframe if "precision" in d.value.columns]
    columns = json.dumps(table.proto.columns)  # each column's Simple label, its technical name in the help
    assert words.say("evaluate", "col_precision") in columns and "In technical words: precision" in columns
