"""Calibrated confidence: temperature scaling recovers a known T, ECE is ~0 for calibrated data, the shipped
checkpoints carry a fitted T that lowers their test ECE without changing a single prediction, and refitting
rewrites only the header."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from vitdemo import calibration
from vitdemo.calibration import (
    confidence_when_right,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    softmax_t,
)
from vitdemo.checkpoints import (
    CheckpointError,
    LoadedModel,
    load_checkpoint,
    make_meta,
    read_meta,
    rewrite_header,
    save_checkpoint,
)
from vitdemo.config import CNNConfig, TrainConfig, ViTConfig
from vitdemo.data import Split, load_raw
from vitdemo.evaluate import predict_logits
from vitdemo.explain.inference import explain_one
from vitdemo.models import build_model


def _synthetic(n: int, true_t: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (n, 10) and labels drawn from softmax(logits / true_t): T = true_t is exactly calibrated."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 10, generator=g) * 3.0  # (n, 10)
    labels = torch.multinomial(torch.softmax(logits / true_t, dim=1), 1, generator=g)[:, 0]  # (n,)
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_temperature_recovers_a_known_temperature(true_t: float) -> None:
    logits, labels = _synthetic(20_000, true_t)
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(true_t, rel=0.05)
    assert fit_temperature(logits.numpy(), labels.numpy()) == fitted  # deterministic, numpy or torch


def test_fit_temperature_refuses_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"logits \(N, C\)"):
        fit_temperature(torch.zeros(0, 10), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"logits \(N, C\)"):
        fit_temperature(torch.zeros(5, 10), torch.zeros(4, dtype=torch.long))


def test_ece_is_zero_for_calibrated_data_and_large_for_overconfident_data() -> None:
    logits, labels = _synthetic(50_000, 1.0, seed=1)
    assert expected_calibration_error(softmax_t(logits), labels.numpy()) < 0.01
    assert expected_calibration_error(softmax_t(logits, 0.5), labels.numpy()) > 0.05  # sharpened: overconfident
    assert expected_calibration_error(softmax_t(logits, 2.0), labels.numpy()) > 0.05  # flattened: underconfident


def test_reliability_bins_by_hand() -> None:
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.55, 0.45]])  # top: .95 .9 .7 .6 .55
    labels = np.array([0, 1, 1, 0, 1])  # right, wrong, right, right, wrong
    rel = reliability_bins(probs, labels, bins=4)  # (0, .25], (.25, .5], (.5, .75], (.75, 1]
    assert rel.count.tolist() == [0, 0, 3, 2]
    assert rel.confidence[2:] == pytest.approx([(0.7 + 0.6 + 0.55) / 3, (0.95 + 0.9) / 2])
    assert rel.accuracy[2:] == pytest.approx([2 / 3, 1 / 2])
    assert np.isnan(rel.confidence[:2]).all() and np.isnan(rel.accuracy[:2]).all()
    expected = (3 * abs(2 / 3 - 1.85 / 3) + 2 * abs(0.5 - 0.925)) / 5
    assert expected_calibration_error(probs, labels, bins=4) == pytest.approx(expected)
    assert confidence_when_right(probs, labels) == pytest.approx((0.95 + 0.7 + 0.6) / 3)


# --- the checkpoint side --------------------------------------------------------------------------------------


def _tiny(path: Path, config=None, val_size: int = 500) -> Path:
    config = config or ViTConfig(patch_size=7, embed_dim=16, depth=2, num_heads=2)
    torch.manual_seed(0)
    train = TrainConfig(model=config, dataset="mnist", epochs=1, val_size=val_size, seed=3).to_dict()
    meta = make_meta(config, "mnist", metrics={"val_acc": 0.1}, train_config=train, name="tiny")
    return save_checkpoint(path, build_model(config), meta)


def _parts(path: Path) -> tuple[dict, bytes]:
    """A safetensors file's tensor index (without its metadata) and its raw weight bytes."""
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    index = json.loads(data[8 : 8 + n])
    index.pop("__metadata__")
    return index, data[8 + n :]


def test_rewrite_header_keeps_the_weights_byte_identical(tmp_path: Path) -> None:
    path = _tiny(tmp_path / "m.safetensors")
    before = _parts(path)
    meta = read_meta(path)
    rewrite_header(path, meta.__class__(**{**meta.__dict__, "temperature": 0.42, "name": "renamed"}))
    assert _parts(path) == before
    loaded = load_checkpoint(path)
    assert loaded.meta.temperature == 0.42 and loaded.meta.name == "renamed"
    assert loaded.meta.model_config == meta.model_config and loaded.meta.train_config == meta.train_config
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]  # no temporary left


def test_rewrite_header_refuses_a_bad_header_and_keeps_the_file(tmp_path: Path) -> None:
    path = _tiny(tmp_path / "m.safetensors")
    before = path.read_bytes()
    meta = read_meta(path)
    with pytest.raises(CheckpointError, match="temperature"):
        rewrite_header(path, meta.__class__(**{**meta.__dict__, "temperature": float("nan")}))
    assert path.read_bytes() == before


@pytest.mark.parametrize("config", [None, CNNConfig(width=4, depth=2)], ids=["vit", "cnn"])
def test_the_shown_probabilities_use_the_temperature(tmp_path: Path, config) -> None:
    loaded = load_checkpoint(_tiny(tmp_path / "m.safetensors", config))
    x = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = loaded.model(x)  # (1, 10)
    cold = LoadedModel(loaded.model, loaded.meta.__class__(**{**loaded.meta.__dict__, "temperature": 0.1}))
    for explain in (False, True):
        plain, sharp = explain_one(loaded, x, explain=explain), explain_one(cold, x, explain=explain)
        assert plain.probs == pytest.approx(torch.softmax(logits, -1)[0].numpy(), abs=1e-5)
        assert sharp.probs == pytest.approx(torch.softmax(logits / 0.1, -1)[0].numpy(), abs=1e-5)
        assert sharp.label == plain.label and sharp.confidence > plain.confidence


def test_the_command_fits_on_the_validation_split_and_rewrites_only_the_header(tmp_path: Path, data_dir: Path) -> None:
    path = _tiny(tmp_path / "m.safetensors", val_size=500)
    weights = _parts(path)
    assert calibration.main([str(path), "--data-dir", str(data_dir)]) == 0
    assert _parts(path) == weights
    loaded = load_checkpoint(path)
    logits, labels = calibration.logits_on_val_split(loaded, data_dir)
    assert len(labels) == 500
    assert loaded.meta.temperature == pytest.approx(fit_temperature(logits, labels))
    stored = loaded.meta.metrics["calibration"]
    assert stored["split"] == "val" and stored["n"] == 500 and stored["nll_after"] <= stored["nll_before"]
    assert loaded.meta.metrics["val_acc"] == 0.1 and loaded.meta.name == "tiny"  # the rest of the header is kept


def test_the_command_refuses_a_checkpoint_without_a_validation_split(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _tiny(tmp_path / "m.safetensors", val_size=0)
    before = path.read_bytes()
    assert calibration.main([str(path), "--data-dir", str(data_dir)]) == 2
    assert "no validation split" in capsys.readouterr().err
    assert path.read_bytes() == before


@pytest.mark.parametrize("kind", ["vit", "cnn"])
def test_shipped_mnist_models_are_calibrated(kind: str, mnist_checkpoints: Path, data_dir: Path) -> None:
    """On 3,000 test images (never used for fitting): lower ECE, the same predictions, confident when right."""
    loaded = load_checkpoint(mnist_checkpoints / f"{kind}_mnist.safetensors")
    assert loaded.meta.temperature < 1.0  # label smoothing made the raw model underconfident
    test = load_raw("mnist", train=False, data_dir=data_dir)
    test = Split(test.images[:3000], test.labels[:3000])
    logits = predict_logits(loaded.model, test, loaded.meta.mean, loaded.meta.std, num_classes=10)  # (3000, 10)
    labels = test.labels.numpy()
    before, after = softmax_t(logits), loaded.probabilities(logits).numpy()
    assert (after.argmax(1) == before.argmax(1)).all()
    ece_before, ece_after = expected_calibration_error(before, labels), expected_calibration_error(after, labels)
    assert ece_after <= ece_before
    assert ece_after <= 0.015 and confidence_when_right(after, labels) >= 0.97


def test_logits_on_the_validation_split_match_the_stored_accuracy(mnist_checkpoints: Path, data_dir: Path) -> None:
    """The validation split is rebuilt from the stored settings: the same images the trainer held out."""
    loaded = load_checkpoint(mnist_checkpoints / "cnn_mnist.safetensors")
    logits, labels = calibration.logits_on_val_split(loaded, data_dir)
    val_acc = float((logits.argmax(1) == labels).float().mean())
    assert val_acc == pytest.approx(loaded.meta.metrics["val_acc"], abs=1e-4)
