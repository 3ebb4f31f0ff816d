"""Frozen configs for models and training runs, with validation and (de)serialisation."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from vitdemo import families
from vitdemo.families.cnn import CNNConfig
from vitdemo.families.linear import LinearConfig
from vitdemo.families.mlp import MLPConfig
from vitdemo.families.spec import CLASSIFY, ConfigError, ModelConfig, setting
from vitdemo.families.spec import check as _check
from vitdemo.families.transfer import ARCHS, MIN_IMAGE_PX, TransferConfig
from vitdemo.families.vit import ViTConfig

DATASETS = ("mnist", "fashion")
DEVICES = ("auto", "cpu", "cuda")
SCHEDULES = ("cosine", "onecycle", "constant")
INIT_METHODS = ("", "mae", "simclr", "supervised")  # TrainConfig.init_method
SUPERVISED_INIT = "supervised"  # init is a trained classifier, not a self-supervised encoder
CLASS_SET = "class"  # TrainConfig.extra_data: the class's own drawings (vitdemo.classset.data)
MAX_SEED = 2**64 - 1  # torch.manual_seed and torch.Generator.manual_seed overflow above this (numpy gets seed % 2**32)
# Kept importable here: most of the house reads configs from this module.
__all__ = ["ARCHS", "MIN_IMAGE_PX", "CNNConfig", "ConfigError", "LinearConfig", "MLPConfig", "ModelConfig"]
__all__ += ["TrainConfig", "TransferConfig", "ViTConfig", "default_run_name", "model_config_from_dict"]
MODEL_CONFIGS = families.model_configs()  # kind -> config class, from the family registry


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Every field is a plain value so a run can be stored and replayed."""

    model: ModelConfig = field(default_factory=ViTConfig)  # --model KIND and that family's own settings
    dataset: str = setting("mnist", "dataset", choices=DATASETS, always=True)
    epochs: int = setting(10, "epochs", minimum=1, step=1, always=True)
    batch_size: int = setting(128, "batch size", minimum=1, step=32, always=True)
    lr: float = setting(2e-3, "learning rate", help="peak, AdamW", always=True)  # peak learning rate (AdamW)
    weight_decay: float = setting(0.05, "weight decay", minimum=0.0, step=0.01, always=True)
    warmup_epochs: float = setting(1.0, "warm-up epochs", form=False, always=True)
    schedule: str = setting("cosine", "schedule", choices=SCHEDULES, always=True)
    label_smoothing: float = setting(0.1, "label smoothing", minimum=0.0, step=0.05, always=True)
    # max global grad norm; 0 disables
    grad_clip: float = setting(1.0, "gradient clipping", form=False, help="max global norm; 0 disables", always=True)
    # 0 = off; 1 = +-10 deg, +-10% scale, +-2 px shift
    augment: float = setting(1.0, "augmentation", help="1: ±10°, ±10% scale, ±2 px; 0 = off", always=True)
    # also mirror half the digits left-right (Fashion-MNIST is always mirrored)
    hflip: bool = setting(False, "mirror", form=False, help="also mirror digits left-right")
    # The gap between MNIST and what people draw (vitdemo.training.augment, vitdemo.synth.styles); 0 = off, as
    # runs before them.
    stroke_aug: float = setting(0.0, "pen width", form=False, help="1 = up to 2 px thicker or 1 px thinner, per image")
    elastic: float = setting(0.0, "wobble", form=False, help="a smooth random wobble of the strokes: 1 = about 1.5 px")
    # synthetic handwriting styles MNIST lacks, added to each batch: 0.05 = 5% more images
    styles_ratio: float = setting(
        0.0, "synthetic styles", form=False, help="add this share of synthetic handwriting styles (flagged 1, "
        "crossed 7, open 4...) to each batch, e.g. 0.05; MNIST only"
    )  # fmt: skip
    seed: int = setting(0, "seed", minimum=0, step=1, always=True)  # initialisation, shuffling, augmentation
    # which images are held out for validation: the same for runs that differ only in `seed`
    split_seed: int = setting(
        0, "split seed", form=False, help="picks the validation images (--seed drives initialisation, shuffling and "
        "augmentation)"
    )  # fmt: skip
    device: str = setting("auto", "device", choices=DEVICES, command=False)
    val_size: int = setting(5000, "validation size", form=False, always=True)  # held out from the 60k images
    # >0: use only this many training images (tests, quick demos)
    train_subset: int = setting(0, "quick subset", minimum=0, step=1000, help="training images, 0 = all")
    compile: bool = setting(False, "compile", form=False, help="torch.compile the model (CPU needs a C++ compiler)")
    amp: bool = setting(True, "bf16 autocast", form=False, help="--no-amp: no bf16 autocast on CUDA")
    keep: Literal["best", "last"] = setting("best", "keep", choices=("best", "last"), form=False, always=True)
    name: str = setting("", "run name", help="default: derived from the settings")
    # Where the weights start (vitdemo.training.loop.prepare_model). Paths are stored as given: the CLI makes them
    # absolute.
    # >0: train on a seeded class-balanced subset of this many labelled images; 0 = every label
    labels: int = setting(0, "label budget", help="train on a class-balanced subset of this many labelled images")
    # a vitdemo checkpoint (e.g. a pretrained encoder) whose matching weights start the model
    init: str = setting("", "start from", form=False, help="a checkpoint (e.g. from `pretrain`) to start from")
    # How init's weights were learned, read from its header when the run is made: "mae" or "simclr" (a
    # self-supervised encoder: the run is a "pretrained" one), "supervised" (a trained classifier fine-tuned: the
    # run stays in its model's family); "" = not recorded (runs from before this field).
    init_method: str = ""
    # train only the head; the body stays frozen in eval mode (a linear probe)
    probe: bool = setting(False, "linear probe", form=False, help="train only the head (needs --init)")
    # transfer models: the ImageNet weights file (default: torch hub's cache, or download); a path of this machine
    weights_path: str = setting(
        "", "ImageNet weights file", flag="--weights", form=False, command=False,
        help="transfer: torchvision's ImageNet weights file (default: torch hub's cache, else a download)"
    )  # fmt: skip
    # More training images after the dataset's: "class" (the class set, frozen into a snapshot file when the run is
    # submitted: vitdemo.classset.data.freeze_config) or that snapshot's path (.npz). Validation and test stay MNIST's.
    extra_data: str = setting(
        "", "extra training images", help="also train on the class set ('class': the drawings submitted so far, "
        "frozen into a snapshot when the run starts; or such a snapshot file); validation and test stay the dataset's"
    )  # fmt: skip
    resume: str = ""  # a resume file (vitdemo.training.resume): continue that run from its last saved epoch
    task: str = CLASSIFY  # what the model does (its family's task): stored so that readers live beside classifiers

    def __post_init__(self) -> None:
        """A reader's run is a "read" run without being told: the default task follows the model's family."""
        kind = getattr(self.model, "kind", None)
        if self.task == CLASSIFY and families.is_kind(kind) and families.task_of(kind) != CLASSIFY:
            object.__setattr__(self, "task", families.task_of(kind))

    def validate(self) -> None:
        self.model.validate()
        _check(self.dataset in DATASETS, f"dataset must be one of {', '.join(DATASETS)}")
        _check(1 <= self.epochs <= 500, "epochs must be between 1 and 500")
        _check(1 <= self.batch_size <= 8192, "batch_size must be between 1 and 8192")
        _check(0 < self.lr <= 1.0, "lr must be in (0, 1]")
        _check(0 <= self.weight_decay <= 1.0, "weight_decay must be in [0, 1]")
        _check(0 <= self.warmup_epochs <= self.epochs, "warmup_epochs must be in [0, epochs]")
        _check(self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}")
        _check(0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)")
        _check(self.grad_clip >= 0, "grad_clip must be >= 0 (0 disables clipping)")
        _check(0 <= self.augment <= 3, "augment must be between 0 (off) and 3")
        self._validate_handwriting()
        for name in ("seed", "split_seed"):
            value = getattr(self, name)
            ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SEED
            _check(ok, f"{name} must be a whole number from 0 to 2**64 - 1 ({MAX_SEED}), got {value!r}")
        _check(self.device in DEVICES, f"device must be one of {', '.join(DEVICES)}")
        _check(0 <= self.val_size <= 20000, "val_size must be between 0 and 20000")
        _check(self.train_subset >= 0, "train_subset must be >= 0")
        _check(self.keep in ("best", "last"), "keep must be 'best' or 'last'")
        _check(len(self.name) <= 100, "name must be at most 100 characters")
        self._validate_start()
        self._validate_extra()
        task = families.task_of(self.model.kind)
        _check(self.task == task, f"task must be {task!r} for a {self.model.kind} model, not {self.task!r}")

    def _validate_extra(self) -> None:
        """`extra_data`: nothing, the class set, or a snapshot of it; never mixed with a label budget (which would
        pick its labelled images among the class drawings too)."""
        extra = self.extra_data
        ok = isinstance(extra, str) and (extra in ("", CLASS_SET) or extra.endswith(".npz")) and len(extra) <= 1000
        _check(ok, f"extra_data must be '' (none), '{CLASS_SET}' (the class set) or a class-set snapshot (.npz)")
        _check(not extra or not self.labels, "extra_data and a label budget (labels) cannot be used together")

    def _validate_handwriting(self) -> None:
        """Pen width, elastic wobble and synthetic styles: the augmentation for drawn digits."""
        _check(0 <= self.stroke_aug <= 2, "stroke_aug must be between 0 (off) and 2")
        _check(0 <= self.elastic <= 3, "elastic must be between 0 (off) and 3")
        _check(0 <= self.styles_ratio <= 0.5, "styles_ratio must be between 0 (off) and 0.5 (half as many again)")
        _check(
            self.styles_ratio == 0 or (self.dataset == "mnist" and self.model.num_classes == 10),
            "styles_ratio is for MNIST only: the synthetic handwriting styles are digits; set it to 0",
        )

    def _validate_start(self) -> None:
        """The fields that say where the weights start: a label budget, an init checkpoint, a probe."""
        n, classes = self.labels, self.model.num_classes
        _check(
            type(n) is int and (n == 0 or n >= classes), f"labels must be 0 (all) or at least {classes}, one a class"
        )
        pretrained = self.model.kind == "transfer" and self.model.pretrained
        _check(
            not self.probe or bool(self.init) or pretrained,
            "probe needs init (or a pretrained transfer model): a frozen random body learns nothing",
        )
        _check(self.init_method in INIT_METHODS, f"init_method must be one of {', '.join(map(repr, INIT_METHODS))}")
        _check(not self.init_method or bool(self.init), "init_method describes init: it needs init")
        _check(
            not self.weights_path or (pretrained and not self.init),
            "weights_path is only for a pretrained transfer model that does not start from init",
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        model = model_config_from_dict(data.pop("model", {"kind": "vit"}))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        _check(not unknown, f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(model=model, **data)


def model_shape(model: ModelConfig) -> str:
    """A short tag of a model's shape for run names: 'p4-d64x6' (ViT), 'w16x2' (CNN), 'h256-128' (MLP)..."""
    return families.shape_tag(model)


def default_run_name(config: TrainConfig) -> str:
    """'vit-mnist-p4-d64x6-e10'; a label budget, an init checkpoint and a probe are named too."""
    m = config.model
    name = f"{m.kind}-{config.dataset}-{model_shape(m)}-e{config.epochs}"
    if config.labels:
        name += f"-l{config.labels}"
    if config.init:
        name += "-init"
    if config.extra_data:
        name += "-class"
    if getattr(m, "teacher", ""):
        name += "-teacher"  # a ViT that learned from a CNN (vitdemo.training.distill)
    return name + ("-probe" if config.probe else "")


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a model config from its dict; unknown keys are an error, missing ones take defaults."""
    return families.model_config_from_dict(data)
