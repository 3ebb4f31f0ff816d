"""Model families and runs side by side, without a browser: the family of every kind of run (vitdemo.views.names),
the comparison table and the confusion-matrix grid (vitdemo.views.compare), the leaderboard's family column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vitdemo.calibration import expected_calibration_error
from vitdemo.config import CNNConfig, LinearConfig, MLPConfig, TrainConfig, TransferConfig, ViTConfig
from vitdemo.metrics import Scores, evaluate_predictions
from vitdemo.runs.store import NewRun, Registry
from vitdemo.views import charts, compare
from vitdemo.views.names import FAMILIES, family_name, family_of, kind_name, model_name


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "home")


@pytest.mark.parametrize(
    ("kind", "config", "family"),
    [
        ("logreg", {}, "classic"),
        ("knn", {}, "classic"),
        ("svm", {}, "classic"),
        ("forest", {}, "classic"),
        ("classic", {"kind": "forest"}, "classic"),  # a generic classic run names its estimator
        ("linear", TrainConfig(model=LinearConfig()).to_dict(), "linear"),
        ("mlp", TrainConfig(model=MLPConfig()).to_dict(), "mlp"),
        ("cnn", TrainConfig(model=CNNConfig()).to_dict(), "cnn"),
        ("vit", TrainConfig(model=ViTConfig()).to_dict(), "vit"),
        ("transfer", TrainConfig(model=TransferConfig(arch="vgg16")).to_dict(), "transfer"),
        ("transfer", TrainConfig(model=TransferConfig(arch="alexnet", pretrained=False)).to_dict(), "transfer"),
        ("vit", TrainConfig(model=ViTConfig(), init="mae_vit_mnist.safetensors", labels=100).to_dict(), "pretrained"),
        ("cnn", TrainConfig(model=CNNConfig(), init="simclr.safetensors", probe=True).to_dict(), "pretrained"),
        ("vit", {"model": {"kind": "vit", "pretrain": {"epochs": 3}}}, "pretrained"),  # an encoder's own run
        # A fine-tune of a trained classifier (the shipped ViT on drawn digits, a class-set run) stays a ViT / CNN;
        # from an encoder it is pretrained; stored before init_method was, any init counts as an encoder.
        (
            "vit",
            TrainConfig(model=ViTConfig(), init="vit_mnist.safetensors", init_method="supervised").to_dict(),
            "vit",
        ),
        (
            "cnn",
            TrainConfig(model=CNNConfig(), init="cnn_mnist.safetensors", init_method="supervised").to_dict(),
            "cnn",
        ),
        (
            "cnn",
            TrainConfig(model=CNNConfig(), init="simclr.safetensors", init_method="simclr").to_dict(),
            "pretrained",
        ),
        ("vit", {"model": {"kind": "vit"}, "init": "vit_mnist.safetensors"}, "pretrained"),
        ("cnn", {}, "cnn"),  # a run stored without a config
        ("resnet18", None, "transfer"),
        ("capsule", {}, "other"),
    ],
)
def test_every_kind_of_run_has_its_family(kind: str, config: dict | None, family: str) -> None:
    assert family_of(kind, config) == family
    assert family in FAMILIES or family == "other"


def test_names_mirror_the_config_constants() -> None:
    """vitdemo.views.names keeps its own copies (it imports no config): they must say the same."""
    from vitdemo import config
    from vitdemo import runconfig as families
    from vitdemo.views import names

    assert names.SUPERVISED_INIT == config.SUPERVISED_INIT and names.TRANSFER_ARCHS == config.ARCHS
    assert names.CLASSIC_KINDS == families.CLASSIC_KINDS
    assert set(families.PRETRAIN_METHODS) | {config.SUPERVISED_INIT, ""} == set(config.INIT_METHODS)


def test_display_names_of_models_and_families() -> None:
    transfer = TrainConfig(model=TransferConfig(arch="resnet18")).to_dict()
    assert model_name("transfer", transfer) == "ResNet-18" and model_name("transfer", {}) == "Transfer"
    assert model_name("classic", {"kind": "knn"}) == "k-nearest neighbours"
    assert kind_name("logreg") == "Logistic regression" and kind_name("vit") == "ViT" and kind_name("x") == "x"
    assert [family_name(f) for f in FAMILIES] == [
        "Classic",
        "Linear",
        "MLP",
        "CNN",
        "ViT",
        "Transfer",
        "Number readers",
        "Pretrained",
    ]
    assert family_name("other") == "Other"


def _run(reg: Registry, name: str, kind: str, config: dict, **fields) -> int:
    return reg.create_run(name=name, kind=kind, dataset="mnist", config=config, status="done", **fields)


def test_the_leaderboard_shows_and_filters_families(registry: Registry) -> None:
    vit = _run(registry, "vit", "vit", TrainConfig().to_dict(), test_acc=0.98)
    mae = _run(registry, "mae", "vit", TrainConfig(init="enc.safetensors", labels=100).to_dict(), test_acc=0.75)
    tl = _run(registry, "tl", "transfer", TrainConfig(model=TransferConfig(arch="vgg16")).to_dict(), test_acc=0.9)
    lr = _run(registry, "lr", "logreg", {"kind": "logreg"}, test_acc=0.92)
    frame = charts.leaderboard_frame(registry.list_runs())
    by_id = frame.set_index("id")
    assert by_id.loc[tl, "kind"] == "VGG16" and by_id.loc[tl, "family"] == "Transfer"
    assert by_id.loc[mae, "family"] == "Pretrained" and by_id.loc[vit, "family"] == "ViT"
    assert by_id.loc[lr, "kind"] == "Logistic regression" and by_id.loc[lr, "family"] == "Classic"
    assert list(charts.filter_leaderboard(frame, families=["Pretrained", "Classic"])["id"]) == [lr, mae]
    assert charts.run_title(registry.get_run(tl)) == f"#{tl} tl (VGG16, MNIST)"
    runs = registry.list_runs()
    assert compare.family_options(runs) == ["classic", "vit", "transfer", "pretrained"]  # the ladder's order
    assert [r.id for r in compare.in_families(runs, ["vit"])] == [vit]  # not the pretrained ViT
    assert compare.in_families(runs, []) == runs


def _new(fields: dict) -> NewRun:
    return NewRun({**fields, "finished_at": 1.0})


def test_the_default_pair_is_the_shipped_vit_and_cnn_of_the_dataset(registry: Registry) -> None:
    def shipped(name: str, kind: str, dataset: str, config: dict | None = None) -> int:
        run = {"name": name, "kind": kind, "dataset": dataset, "config": config or {}, "checkpoint": f"/c/{name}"}
        return registry.add_baselines([_new(run)])[0]

    shipped("mae_vit_mnist.safetensors", "vit", "mnist", {"init": "x"})  # a pretrained ViT is not "the ViT"
    cnn_f = shipped("cnn_fashion.safetensors", "cnn", "fashion")
    vit = shipped("vit_mnist.safetensors", "vit", "mnist")
    _run(registry, "mine", "cnn", {})
    runs = registry.list_runs()
    assert compare.default_pair(runs, "mnist") == [vit]  # no shipped MNIST CNN here
    assert compare.default_pair(runs, "fashion") == [cnn_f]


def _scores(labels: np.ndarray, probs: np.ndarray) -> Scores:
    report = evaluate_predictions(labels, probs.argmax(1), probs.shape[1])
    loss = float(-np.log(probs[np.arange(len(labels)), labels]).mean())
    return Scores(labels, probs.astype(np.float32), loss, report)


def test_comparison_frame_measures_what_was_scored_and_keeps_what_was_stored(registry: Registry) -> None:
    a = _run(registry, "a", "cnn", {}, test_acc=0.5, macro_f1=0.4, num_params=1234, train_time_s=12.345)
    b = _run(registry, "=b", "logreg", {}, test_acc=0.7)
    runs = [registry.get_run(b), registry.get_run(a)]  # the order picked, not the accuracy's
    labels = np.array([0, 1, 2, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.7], [0.6, 0.2, 0.2]])
    frame = compare.comparison_frame(runs, {a: _scores(labels, probs)})
    assert list(frame.columns) == list(compare.COMPARE_COLUMNS) and list(frame["id"]) == [b, a]
    scored, stored = frame.iloc[1], frame.iloc[0]
    assert scored["test accuracy"] == 0.75 and scored["test accuracy"] != 0.5  # measured now
    assert scored["test loss"] == pytest.approx(-np.log([0.8, 0.8, 0.7, 0.2]).mean())
    assert scored["calibration error"] == pytest.approx(expected_calibration_error(probs, labels))
    assert scored["parameters"] == 1234 and scored["training time (s)"] == 12.3 and scored["family"] == "CNN"
    assert stored["test accuracy"] == 0.7 and np.isnan(stored["test loss"]) and np.isnan(stored["calibration error"])
    assert stored["run"] == "=b" and stored["model"] == "Logistic regression" and stored["family"] == "Classic"
