"""What a run is, for every model family: the configs a run stores that are not one TrainConfig.

A run's stored config (`runs.config`, JSON) is one of three things, told apart by `run_config_from_dict`:
1. a TrainConfig (a ViT, a CNN, a linear model, an MLP, a transfer model; a fine-tune is one with `init`);
2. a `ClassicRun`: a scikit-learn baseline (`model.kind` in CLASSIC_KINDS) and the data it is fitted on;
3. a `PretrainRun`: a TrainConfig plus a "pretrain" entry: first pretrain an encoder without labels (MAE for a
   ViT, SimCLR for a CNN), then fine-tune it as that TrainConfig with `init` set to the new encoder.

Plain dataclasses, no torch and no scikit-learn: the queue, the Train form and the cost estimates read them
without loading either.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from vitdemo.config import DATASETS, SUPERVISED_INIT, ConfigError, TrainConfig, default_run_name

CLASSIC_KINDS = ("logreg", "knn", "svm", "forest")
CLASSIC_EXPLANATIONS = {"logreg": "weight templates"}  # kNN, SVM and forests explain nothing
PRETRAIN_METHODS: dict[str, str] = {"mae": "vit", "simclr": "cnn"}  # method -> the model kind it pretrains
PRETRAIN_KEY = "pretrain"  # the stored config's entry that makes a TrainConfig a PretrainRun
ENCODER_TAG = "pretrained_encoder"  # a checkpoint's metrics key holding the method: the file's head is untrained
NEW_ENCODER = "(the encoder this run pretrains)"  # stands in for `init` while a PretrainRun is checked


def init_method(metrics: dict[str, Any]) -> str:
    """A TrainConfig.init_method from the init checkpoint's header metrics: the pretraining method of an encoder
    ("mae", "simclr"), else "supervised" (a trained classifier)."""
    return str(metrics.get(ENCODER_TAG) or SUPERVISED_INIT)


@dataclass(frozen=True)
class ClassicConfig:
    """One scikit-learn baseline. Defaults: the best MNIST accuracy that fits in <= 5 MB and ~1 CPU minute."""

    kind: Literal["logreg", "knn", "svm", "forest"] = "logreg"
    logreg_c: float = 0.1  # inverse L2 strength: 0.1 converges in ~100 lbfgs steps; 1.0 needs more, scores the same
    svm_c: float = 10.0  # RBF SVM on PCA features: C=10 is the usual MNIST optimum (gamma='scale')
    pca_components: int = 50  # SVM (and kNN below): 50 components keep ~82% of the variance and all the digits
    knn_components: int = 30  # kNN stores its training set: 30 dims x 35k images x 4 B = 4 MB
    knn_max_train: int = 35000  # a seeded subsample; 0 = all (55k x 30 x 4 B = 6.6 MB, over the 5 MB budget)
    n_neighbors: int = 3  # distance-weighted; 3 to 5 score the same on MNIST
    n_estimators: int = 40  # forest: file size grows with trees x 2**depth nodes; 40 x depth 12 is ~4.5 MB
    max_depth: int = 12  # deeper trees gain <1 point and double the file
    max_iter: int = 200  # logistic regression's lbfgs iterations
    seed: int = 0

    def validate(self) -> None:
        _check(self.kind in CLASSIC_KINDS, f"kind must be one of {', '.join(CLASSIC_KINDS)}")
        _check(0 < self.logreg_c <= 1e4 and 0 < self.svm_c <= 1e4, "logreg_c and svm_c must be in (0, 10000]")
        _check(2 <= self.pca_components <= 784, "pca_components must be between 2 and 784")
        _check(2 <= self.knn_components <= 784, "knn_components must be between 2 and 784")
        _check(self.knn_max_train >= 0, "knn_max_train must be >= 0 (0 keeps every training image)")
        _check(1 <= self.n_neighbors <= 50, "n_neighbors must be between 1 and 50")
        _check(1 <= self.n_estimators <= 500, "n_estimators must be between 1 and 500")
        _check(1 <= self.max_depth <= 40, "max_depth must be between 1 and 40")
        _check(10 <= self.max_iter <= 5000, "max_iter must be between 10 and 5000")


@dataclass(frozen=True)
class ClassicRun:
    """A scikit-learn baseline as a run: the estimator's settings and the images it is fitted on (the same
    training/validation split as a TrainConfig with the same `val_size` and `split_seed`). Always on the CPU."""

    model: ClassicConfig = field(default_factory=ClassicConfig)
    dataset: str = "mnist"
    val_size: int = 5000
    split_seed: int = 0
    train_subset: int = 0  # >0: fit on only this many training images
    name: str = ""
    device: Literal["cpu"] = "cpu"  # scikit-learn: CPU only (kept so every run config names its device)

    @property
    def epochs(self) -> int:
        return 1  # one fit: the class limits count it as one epoch

    def validate(self) -> None:
        self.model.validate()
        _check(self.dataset in DATASETS, f"dataset must be one of {', '.join(DATASETS)}")
        _check(0 <= self.val_size <= 20000, "val_size must be between 0 and 20000")
        _check(self.train_subset >= 0, "train_subset must be >= 0")
        _check(isinstance(self.split_seed, int) and self.split_seed >= 0, "split_seed must be a whole number >= 0")
        _check(len(self.name) <= 100, "name must be at most 100 characters")
        _check(self.device == "cpu", "classic models train on the CPU only")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassicRun:
        data = dict(data)
        model = _known(ClassicConfig, dict(data.pop("model", {})), "classic model")
        return cls(model=ClassicConfig(**model), **_known(cls, data, "classic run"))


@dataclass(frozen=True)
class PretrainConfig:
    epochs: int = 2  # MNIST is small: 1-3 epochs already separate the digits (see the report's table)
    batch_size: int = 256  # SimCLR's negatives come from the batch: 2 x 256 - 2 per image
    lr: float = 1.5e-3  # AdamW peak, cosine decay
    weight_decay: float = 0.05
    warmup_epochs: float = 0.2
    seed: int = 0

    def validate(self) -> None:
        _check(1 <= self.epochs <= 500, "epochs must be between 1 and 500")
        _check(8 <= self.batch_size <= 8192, "batch_size must be between 8 and 8192")
        _check(0 < self.lr <= 1, "lr must be in (0, 1]")
        _check(0 <= self.warmup_epochs <= self.epochs, "warmup_epochs must be in [0, epochs]")


@dataclass(frozen=True)
class PretrainRun:
    """Pretrain an encoder on the training images without their labels, then fine-tune it as `train` (whose
    `init` stays empty here: the run fills it with the encoder it has just pretrained)."""

    method: str = "mae"
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def epochs(self) -> int:
        return self.train.epochs

    @property
    def dataset(self) -> str:
        return self.train.dataset

    @property
    def device(self) -> str:
        return self.train.device

    def validate(self) -> None:
        _check(self.method in PRETRAIN_METHODS, f"method must be one of {', '.join(PRETRAIN_METHODS)}")
        kind = PRETRAIN_METHODS[self.method]
        _check(self.train.model.kind == kind, f"{self.method} pretrains a {kind}, not a {self.train.model.kind}")
        _check(not self.train.init, "a run that pretrains its own encoder starts from it: init must be empty")
        stem = getattr(self.train.model, "stem", "patch")  # MAE hides patches: a conv stem would let tokens see them
        _check(
            self.method != "mae" or stem == "patch", f"MAE pretraining needs the ViT's plain patch stem, not '{stem}'"
        )
        self.pretrain.validate()
        self.with_encoder(NEW_ENCODER).validate()

    def with_encoder(self, path: str) -> TrainConfig:
        """The fine-tuning run, starting from the encoder at `path`."""
        return dataclasses.replace(self.train, init=path, init_method=self.method)

    def to_dict(self) -> dict[str, Any]:
        return {**self.train.to_dict(), PRETRAIN_KEY: {"method": self.method, **asdict(self.pretrain)}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainRun:
        data = dict(data)
        pre = dict(data.pop(PRETRAIN_KEY))
        method = pre.pop("method", "")
        return cls(method, PretrainConfig(**_known(PretrainConfig, pre, "pretraining")), TrainConfig.from_dict(data))


RunConfig = TrainConfig | ClassicRun | PretrainRun


def run_family(data: dict[str, Any]) -> Literal["train", "classic", "pretrain"]:
    """Which kind of run a stored config describes."""
    model = data.get("model")
    if isinstance(model, dict) and model.get("kind") in CLASSIC_KINDS:
        return "classic"
    return "pretrain" if PRETRAIN_KEY in data else "train"


def run_config_from_dict(data: dict[str, Any]) -> RunConfig:
    """A stored run config back as its dataclass (ConfigError for unknown settings)."""
    family = run_family(data)
    if family == "classic":
        return ClassicRun.from_dict(data)
    if family == "pretrain":
        return PretrainRun.from_dict(data)
    return TrainConfig.from_dict(data)


def model_kind(config: RunConfig) -> str:
    """The registry's `kind` column: 'vit', 'cnn', ..., or the classic kind ('logreg', 'svm', ...)."""
    return config.train.model.kind if isinstance(config, PretrainRun) else config.model.kind


def classic_shape(model: ClassicConfig) -> str:
    """A short tag of a classic model's settings for run names: 'c0.1', 'pca50-c10', 'k3-pca30', 't40-d12'."""
    if model.kind == "logreg":
        return f"c{model.logreg_c:g}"
    if model.kind == "svm":
        return f"pca{model.pca_components}-c{model.svm_c:g}"
    if model.kind == "knn":
        return f"k{model.n_neighbors}-pca{model.knn_components}"
    return f"t{model.n_estimators}-d{model.max_depth}"


def run_name(config: RunConfig) -> str:
    """The run's name: its own, else 'svm-mnist-pca50-c10', 'vit-mnist-p4-d64x6-e40-l100-mae', ..."""
    if isinstance(config, ClassicRun):
        subset = f"-n{config.train_subset}" if config.train_subset else ""
        return config.name or f"{config.model.kind}-{config.dataset}-{classic_shape(config.model)}{subset}"
    if isinstance(config, PretrainRun):
        return config.train.name or f"{default_run_name(config.train)}-{config.method}"
    return config.name or default_run_name(config)


def _known(cls: type, data: dict[str, Any], what: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    _check(not unknown, f"unknown {what} settings: {', '.join(sorted(unknown))}")
    return data


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
