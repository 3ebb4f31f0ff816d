"""scikit-learn baselines on real MNIST subsets, and their skops files: round trips and refusals."""

import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from vitdemo.config import ConfigError
from vitdemo.data import Split, load_dataset
from vitdemo.models.classic import (
    ClassicConfig,
    ClassicError,
    ClassicModel,
    file_types,
    fit_classic,
    fit_run,
    flatten,
    load_classic,
    logreg_templates,
    predict_proba,
    read_header,
    save_classic,
    score_classic,
    stored_numbers,
)
from vitdemo.runconfig import ClassicRun

SMALL = {  # small enough for a test: a few seconds each on 3000 images
    "logreg": ClassicConfig(kind="logreg", max_iter=100),
    "knn": ClassicConfig(kind="knn", knn_max_train=2000),
    "svm": ClassicConfig(kind="svm", pca_components=30),
    "forest": ClassicConfig(kind="forest", n_estimators=20, max_depth=10),
}


@pytest.fixture(scope="module")
def mnist(data_dir: str):
    data = load_dataset("mnist", data_dir, val_size=0, seed=0, train_subset=3000)
    return (
        data.train.images.numpy(),
        data.train.labels.numpy(),
        data.test.images[:1000].numpy(),
        data.test.labels[:1000].numpy(),
    )


@pytest.fixture(scope="module")
def fitted(mnist) -> dict[str, ClassicModel]:
    x, y, _, _ = mnist
    return {kind: fit_classic(config, x, y) for kind, config in SMALL.items()}


@pytest.mark.parametrize("kind", list(SMALL))
def test_each_baseline_beats_chance_by_far_and_round_trips(fitted, mnist, tmp_path: Path, kind: str) -> None:
    _, _, xt, yt = mnist
    probs = predict_proba(fitted[kind], xt)
    assert probs.shape == (1000, 10) and probs.dtype == np.float32
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (probs.argmax(1) == yt).mean() > 0.82  # 3000 training images; chance is 0.10
    scores = score_classic(fitted[kind], Split(torch.from_numpy(xt), torch.from_numpy(yt)))
    assert scores.accuracy == pytest.approx((probs.argmax(1) == yt).mean())
    assert 0 < scores.loss < 2.3  # better than the uniform guess, log(10)
    path = save_classic(tmp_path / f"{kind}.skops", fitted[kind])
    back = load_classic(path)
    assert back.config == SMALL[kind]
    again = predict_proba(back, xt)
    assert np.allclose(again, probs, atol=1e-6) and np.array_equal(again.argmax(1), probs.argmax(1))


def test_knn_keeps_only_its_seeded_subsample(fitted) -> None:
    pca_knn = fitted["knn"].estimator
    assert pca_knn[-1].n_samples_fit_ == 2000 and pca_knn[0].n_components_ == 30


def test_logreg_templates_are_its_decision_function(fitted, mnist) -> None:
    _, _, xt, _ = mnist
    templates = logreg_templates(fitted["logreg"])
    assert templates.shape == (10, 28, 28)
    est = fitted["logreg"].estimator
    scores = flatten(xt) @ templates.reshape(10, -1).T + est.intercept_  # (N, 10)
    assert np.allclose(scores, est.decision_function(flatten(xt)), atol=1e-4)
    with pytest.raises(ClassicError, match="only logistic regression"):
        logreg_templates(fitted["forest"])


def test_missing_classes_get_zero_probability(mnist) -> None:
    x, y, xt, _ = mnist
    keep = y < 5
    probs = predict_proba(fit_classic(SMALL["logreg"], x[keep], y[keep]), xt)
    assert probs.shape == (1000, 10) and np.all(probs[:, 5:] == 0)


def _rewrite_schema(src: Path, dst: Path, edit) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "schema.json":
                data = json.dumps(edit(json.loads(data))).encode()
            zout.writestr(item, data)
    return dst


def test_tampered_schema_naming_another_callable_is_refused(fitted, tmp_path: Path) -> None:
    good = save_classic(tmp_path / "good.skops", fitted["logreg"])
    text = json.dumps(json.loads(zipfile.ZipFile(good).read("schema.json")))
    assert "LogisticRegression" in text

    def swap(schema):  # a hand-edited file that would have skops build os.system instead of the model
        return json.loads(
            text.replace('"sklearn.linear_model._logistic"', '"os"').replace("LogisticRegression", "system")
        )

    bad = _rewrite_schema(good, tmp_path / "bad.skops", swap)
    assert "os.system" in file_types(bad)
    with pytest.raises(ClassicError, match="does not load: os.system"):
        load_classic(bad)


def test_types_skops_trusts_by_default_are_still_refused(tmp_path: Path) -> None:
    """skops trusts many scikit-learn types; this app accepts only the few its kinds build."""
    path = tmp_path / "scaler.skops"
    payload = {
        "format": "vitdemo-classic",
        "version": 1,
        "config": "{}",
        "estimator": StandardScaler().fit([[0.0], [1.0]]),
    }
    sio.dump(payload, path)
    assert sio.get_untrusted_types(file=path) == []  # skops alone would load it
    with pytest.raises(ClassicError, match="StandardScaler"):
        load_classic(path)


def test_a_model_that_is_not_what_its_config_says_is_refused(tmp_path: Path, mnist) -> None:
    x, y, _, _ = mnist
    liar = ClassicModel(ClassicConfig(kind="forest"), LogisticRegression(max_iter=300).fit(flatten(x[:300]), y[:300]))
    path = save_classic(tmp_path / "liar.skops", liar)
    with pytest.raises(ClassicError, match="does not hold the forest model"):
        load_classic(path)


def test_junk_and_missing_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.skops"
    junk.write_bytes(b"\x80\x04 not a zip")  # e.g. a pickle renamed: never unpickled
    with pytest.raises(ClassicError, match="not a readable classic-model file"):
        load_classic(junk)
    with pytest.raises(ClassicError, match="not found"):
        load_classic(tmp_path / "nope.skops")


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ConfigError, match="kind"):
        replace(ClassicConfig(), kind="xgboost").validate()
    with pytest.raises(ConfigError, match="n_neighbors"):
        ClassicConfig(kind="knn", n_neighbors=0).validate()


def test_a_header_is_read_without_building_the_estimator(fitted, tmp_path: Path, monkeypatch) -> None:
    """The registry lists a .skops file from its header: the strings of its schema, never its estimator."""
    named = replace(fitted["svm"], metrics={"test_acc": 0.9, "val_size": 1000, "split_seed": 3}, name="my svm")
    path = save_classic(tmp_path / "svm.skops", named)
    monkeypatch.setattr(sio, "load", lambda *a, **k: pytest.fail("the header read built the model"))
    header = read_header(path)
    assert header.config == SMALL["svm"] and header.name == "my svm" and header.metrics["test_acc"] == 0.9
    assert header.run() == ClassicRun(model=SMALL["svm"], val_size=1000, split_seed=3, name="my svm")
    with pytest.raises(ClassicError, match="not a vitdemo classic-model file"):
        read_header(_rewrite_schema(path, tmp_path / "other.skops", lambda s: {**s, "content": {}}))


def test_fit_run_scores_like_a_network_and_counts_what_it_stores(data_dir: str) -> None:
    run = ClassicRun(model=SMALL["forest"], train_subset=2000, val_size=500, split_seed=1, name="f")
    data = load_dataset("mnist", data_dir, val_size=500, seed=1, train_subset=2000)
    fitted = fit_run(run, data)
    m = fitted.metrics
    assert m["test_acc"] == score_classic(fitted, data.test).accuracy > 0.8 and m["train_images"] == 2000
    assert m["val_acc"] == score_classic(fitted, data.val).accuracy and m["train_time_s"] > 0
    assert (m["val_size"], m["split_seed"], m["train_subset"], fitted.name) == (500, 1, 2000, "f")
    trees = fitted.estimator.estimators_
    assert m["num_params"] == sum(t.tree_.node_count * 12 for t in trees) == stored_numbers(fitted)


def test_stored_numbers_of_each_kind(fitted) -> None:
    assert stored_numbers(fitted["logreg"]) == 7850  # 10 x 784 weights + 10 biases
    knn = fitted["knn"].estimator
    assert stored_numbers(fitted["knn"]) == 30 * 784 + 784 + 2000 * 30  # PCA, its mean, the stored features
    svm = fitted["svm"].estimator.calibrated_classifiers_[0].estimator[-1]
    assert stored_numbers(fitted["svm"]) == 30 * 784 + 784 + svm.support_vectors_.size + svm.dual_coef_.size + 45
    assert knn[0].n_components_ == 30
