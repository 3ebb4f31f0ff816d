"""The Evaluate page's "Can you trust this map?" and calibration sections under Streamlit's AppTest: the whole
app against a private registry and a tiny trained "shipped" CNN (real training, real files, real test split)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vitdemo.calibration import expected_calibration_error
from vitdemo.checkpoints import load_checkpoint, make_meta, save_checkpoint
from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.data import load_dataset
from vitdemo.evaluate import score_checkpoint
from vitdemo.runs.store import Registry
from vitdemo.train import train

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 180  # scores 10,000 test images, then blanks and restores 100 of them 15 times each


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A folder holding one tiny trained 'shipped' CNN for MNIST (a few seconds of training)."""
    folder = tmp_path_factory.mktemp("shipped")
    config = TrainConfig(model=CNNConfig(width=4, depth=2), epochs=1, train_subset=2000, val_size=200, device="cpu")
    data = load_dataset("mnist", data_dir, val_size=200, train_subset=2000)
    result = train(config, data=data)
    meta = make_meta(config.model, "mnist", metrics={"epochs": 1}, train_config=config.to_dict(), name="cnn_mnist")
    save_checkpoint(folder / "cnn_mnist.safetensors", result.model, meta)
    return folder


@pytest.fixture
def env(tmp_home: Path, shipped: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(shipped))
    monkeypatch.setenv("VITDEMO_DATA_DIR", str(data_dir))
    return Registry(tmp_home)


def open_evaluate() -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=TIMEOUT_S)
    at.run()
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def specs(at: AppTest) -> list[str]:
    return [chart.proto.spec for chart in at.get("plotly_chart")]


def test_reliability_diagram_and_calibration_error(env: Registry, shipped: Path) -> None:
    at = open_evaluate()
    run = next(r for r in env.list_runs() if r.baseline)
    assert "### Is its confidence honest?" in texts(at, "markdown")
    scores = score_checkpoint(load_checkpoint(shipped / "cnn_mnist.safetensors"))  # calibrated, as the page
    ece = expected_calibration_error(scores.probs, scores.labels)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[f"Calibration error #{run.id}"] == f"{ece:.2%}"
    (diagram,) = [s for s in specs(at) if "perfectly calibrated" in s]
    assert f"#{run.id} (ECE {ece:.2%})" in diagram
    assert any(c.startswith("Each bar is the share of right answers") for c in texts(at, "caption"))


def test_trust_section_runs_on_request_and_is_kept_per_file_version(env: Registry, shipped: Path) -> None:
    at = open_evaluate()
    run = next(r for r in env.list_runs() if r.baseline)
    assert "### Can you trust this map?" in texts(at, "markdown")
    assert not any("deletion" in s for s in specs(at))  # not computed on a plain visit
    at.button(key=f"trust_run_{run.id}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception]
    (curves,) = [s for s in specs(at) if "deletion" in s]
    assert "insertion" in curves and "centre blob" in curves and "random map" in curves
    table = at.dataframe[-1].value
    assert list(table["map"]) == ["the model's map", "random map", "centre blob"]
    ours, rand = table.iloc[0], table.iloc[1]
    assert ours["deletion AUC"] < rand["deletion AUC"]  # even a 1-epoch CNN's map beats random pixels
    assert ours["background share"] < 0.05  # integrated gradients: nothing on the empty background
    assert "Same as untrained?" in {m.label for m in at.metric}
    assert any(c.startswith("How to read it:") for c in texts(at, "caption"))

    again = open_evaluate()  # a new session: the report of this file version is kept
    assert any("deletion" in s for s in specs(again)) and not any(b.key == f"trust_run_{run.id}" for b in again.button)

    checkpoint = shipped / "cnn_mnist.safetensors"
    stamp = time.time() + 5
    os.utime(checkpoint, (stamp, stamp))  # a new file version: checked again only when asked
    changed = open_evaluate()
    assert not any("deletion" in s for s in specs(changed))
    assert any(b.key == f"trust_run_{run.id}" for b in changed.button)


def test_comparing_two_runs_shows_both_calibration_curves(env: Registry, shipped: Path) -> None:
    at = open_evaluate()
    baseline = next(r for r in env.list_runs() if r.baseline)
    other = env.create_run(
        name="twin", kind="cnn", dataset="mnist", config=TrainConfig(model=CNNConfig(width=4, depth=2)).to_dict(),
        status="done", device="cpu", test_acc=0.5, macro_f1=0.5, finished_at=time.time(),
    )  # fmt: skip
    path = env.checkpoint_dir / f"run-{other}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shipped / "cnn_mnist.safetensors", path)
    env.update_run(other, checkpoint=str(path))
    at = open_evaluate()
    at.selectbox(key="eval_run").set_value(baseline.id).run()
    at.selectbox(key="eval_other_mnist").set_value(other).run()
    assert not at.exception
    both = [s for s in specs(at) if "perfectly calibrated" in s and f"#{other} (ECE" in s]
    assert len(both) == 1 and f"#{baseline.id} (ECE" in both[0]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[f"Calibration error #{other}"] == metrics[f"Calibration error #{baseline.id}"]  # same weights
