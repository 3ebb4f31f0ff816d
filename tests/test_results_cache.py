"""The disk cache of a model file's test-set results (vitdemo.results.cache): what is read back is what was
written, keyed by the file's content and the split's labels, and anything damaged or foreign is computed again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vitdemo.explain.trust import MapScores, TrustReport
from vitdemo.metrics import Scores, evaluate_predictions
from vitdemo.results import cache


def _scores(n: int = 50, seed: int = 0) -> Scores:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(10), size=n).astype(np.float32)  # (n, 10)
    labels = rng.integers(0, 10, n).astype(np.int64)
    return Scores(labels, probs, 1.25, evaluate_predictions(labels, probs.argmax(1), 10))


def _model_file(tmp_path: Path, content: bytes = b"weights") -> Path:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    return path


def test_scores_come_back_as_written_and_are_computed_once(tmp_path: Path) -> None:
    scores, model = _scores(), _model_file(tmp_path)
    calls = []
    folders = [tmp_path / "shipped", tmp_path / "home"]
    first = cache.cached_scores(model, scores.labels, lambda: calls.append(1) or scores, folders)
    again = cache.cached_scores(model, scores.labels, lambda: calls.append(1) or scores, folders)
    assert calls == [1] and first is scores
    assert np.array_equal(again.probs, scores.probs) and np.array_equal(again.labels, scores.labels)
    assert again.loss == scores.loss and again.report.accuracy == scores.report.accuracy
    assert [p.suffix for p in (tmp_path / "home").iterdir()] == [".safetensors"]  # no pickle, no temporary


def test_another_file_content_or_split_is_another_entry(tmp_path: Path) -> None:
    scores, model = _scores(), _model_file(tmp_path)
    folder = tmp_path / "home"
    cache.write_scores(folder, cache.scores_key(model, scores.labels), scores)
    assert cache.read_scores([folder], cache.scores_key(model, scores.labels), scores.labels) is not None
    other_labels = (scores.labels + 1) % 10
    assert cache.read_scores([folder], cache.scores_key(model, other_labels), other_labels) is None
    model.write_bytes(b"retrained weights")  # the same path, another model
    assert cache.read_scores([folder], cache.scores_key(model, scores.labels), scores.labels) is None


def test_a_damaged_entry_is_computed_again(tmp_path: Path) -> None:
    scores, model = _scores(), _model_file(tmp_path)
    folder = tmp_path / "home"
    key = cache.scores_key(model, scores.labels)
    folder.mkdir()
    (folder / f"{key}.safetensors").write_bytes(b"\x00not safetensors")
    assert cache.read_scores([folder], key, scores.labels) is None
    calls = []
    cache.cached_scores(model, scores.labels, lambda: calls.append(1) or scores, [folder])
    assert calls == [1] and cache.read_scores([folder], key, scores.labels) is not None  # written over


def _report() -> TrustReport:
    s = np.linspace(0, 1, 5)
    scores = {
        name: MapScores(name, 1 - s, s, 0.2 + i / 10, 0.8 - i / 10, 0.1 * i)
        for i, name in enumerate(("model", "random", "centre"))
    }
    return TrustReport("cnn", 7, s, scores, np.arange(7) / 10, np.arange(7) / 20, 3.5, {"maps": 0.5})


def test_a_trust_report_round_trips_through_json(tmp_path: Path) -> None:
    report, model = _report(), _model_file(tmp_path)
    key = cache.trust_key(model, np.arange(10), "images=7")
    assert key != cache.trust_key(model, np.arange(10), "images=8")
    cache.write_trust(tmp_path, key, report)
    back = cache.read_trust([tmp_path / "missing", tmp_path], key)
    assert back is not None and back.kind == "cnn" and back.n_images == 7
    assert back.scores["random"].deletion_auc == pytest.approx(0.3)
    assert np.allclose(back.randomization, report.randomization) and back.rank_correlation == pytest.approx(0.3)
    (tmp_path / f"{key}.json").write_text('{"kind": "cnn"}')  # foreign: read as missing
    assert cache.read_trust([tmp_path], key) is None


def test_stage_probes_come_back_as_fitted_and_a_damaged_file_is_fitted_again(tmp_path: Path) -> None:
    import torch

    from vitdemo.explain.lens import probe_module

    torch.manual_seed(0)
    probes = [probe_module(k) for k in (4, 8)]
    for probe in probes:
        probe[0].running_mean.uniform_(-1, 1)
        probe[0].running_var.uniform_(0.5, 2)
        probe.eval()
    model, labels = _model_file(tmp_path), np.arange(30) % 10
    key = cache.probes_key(model, labels)
    cache.write_probes(tmp_path / "c", key, probes)
    back = cache.read_probes([tmp_path / "nothing", tmp_path / "c"], key)
    assert back is not None and len(back) == 2
    with torch.no_grad():
        for probe, read, k in zip(probes, back, (4, 8), strict=True):
            feats = torch.randn(5, k)  # (N, K)
            assert torch.equal(probe(feats), read(feats))  # eval mode: the stored statistics, not the batch's
    assert cache.probes_key(model, labels[::-1]) != key  # other training labels: another entry
    (tmp_path / "c" / f"{key}.safetensors").write_bytes(b"broken")
    assert cache.read_probes([tmp_path / "c"], key) is None


def test_the_shipped_results_match_todays_maps(data_dir: Path) -> None:
    """The shipped trust reports are keyed by the map's version (IG steps, smoothing): a change of the map that
    leaves them stale would make every fresh checkout recompute them (the IG steps went 16 -> 12 and they did).
    Rebuild them with `python -m vitdemo.results`."""
    from vitdemo import paths
    from vitdemo.data import load_raw
    from vitdemo.explain.lens import PROBE_IMAGES
    from vitdemo.explain.trust import report_settings
    from vitdemo.results.__main__ import DEFAULT_FILES

    if not (data_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").exists():
        pytest.skip(f"MNIST not found under {data_dir}")
    labels = load_raw("mnist", train=False, data_dir=data_dir).labels
    folder = paths.shipped_dir() / cache.SHIPPED_FOLDER
    settings = report_settings(n_images=cache.PAGE_TRUST_IMAGES)
    for name in DEFAULT_FILES:
        file = paths.shipped_dir() / name
        assert cache.read_trust([folder], cache.trust_key(file, labels, settings)) is not None, name
    train = load_raw("mnist", train=True, data_dir=data_dir).labels[:PROBE_IMAGES]  # Under the hood's CNN probes
    assert cache.read_probes([folder], cache.probes_key(paths.shipped_dir() / "cnn_mnist.safetensors", train))
