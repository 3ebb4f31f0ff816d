"""Frozen configs for models and training runs, with validation and (de)serialisation."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

DATASETS = ("mnist", "fashion")
DEVICES = ("auto", "cpu", "cuda")
SCHEDULES = ("cosine", "onecycle", "constant")
ARCHS = ("resnet18", "vgg16", "alexnet")  # torchvision ImageNet networks a transfer model can start from
MIN_IMAGE_PX = {"resnet18": 32, "vgg16": 32, "alexnet": 64}  # smaller inputs vanish in the downsampling
INIT_METHODS = ("", "mae", "simclr", "supervised")  # TrainConfig.init_method
SUPERVISED_INIT = "supervised"  # init is a trained classifier, not a self-supervised encoder
CLASS_SET = "class"  # TrainConfig.extra_data: the class's own drawings (vitdemo.classset.data)
MAX_SEED = 2**64 - 1  # torch.manual_seed and torch.Generator.manual_seed overflow above this (numpy gets seed % 2**32)


class ConfigError(ValueError):
    """A config value is out of range; the message says which and why."""


@dataclass(frozen=True)
class ViTConfig:
    """A small ViT for 28x28 images."""

    kind: Literal["vit"] = "vit"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    patch_size: int = 4  # 4 -> 7x7 = 49 patches: fine enough for strokes; 7 is faster, 14 is a toy
    embed_dim: int = 64
    depth: int = 6
    num_heads: int = 4
    mlp_ratio: float = 2.0  # small models train faster on CPU with a narrower MLP
    dropout: float = 0.0  # augmentation regularises enough for short runs

    def validate(self) -> None:
        _check(self.patch_size in (4, 7, 14), "patch_size must be 4, 7 or 14 (it must divide 28)")
        _check(8 <= self.embed_dim <= 1024, "embed_dim must be between 8 and 1024")
        _check(1 <= self.num_heads <= 16, "num_heads must be between 1 and 16")
        _check(
            self.embed_dim % self.num_heads == 0,
            f"embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})",
        )
        _check(1 <= self.depth <= 24, "depth must be between 1 and 24")
        _check(0.5 <= self.mlp_ratio <= 8, "mlp_ratio must be between 0.5 and 8")
        _check(0.0 <= self.dropout < 0.9, "dropout must be in [0, 0.9)")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class CNNConfig:
    """A plain CNN: `depth` stages of two 3x3 conv + BN + ReLU, then 2x2 max-pool; widths double."""

    kind: Literal["cnn"] = "cnn"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    width: int = 16  # channels of the first stage; stage i has width * 2**i (16: 99% MNIST in ~1 CPU minute)
    depth: int = 2  # 28 -> 14 -> 7 with two stages (Grad-CAM on any stage: vitdemo.explain.maps)
    dropout: float = 0.1

    def validate(self) -> None:
        _check(4 <= self.width <= 256, "width must be between 4 and 256")
        _check(1 <= self.depth <= 3, "depth must be 1, 2 or 3 (28 px halves at most 3 times)")
        _check(0.0 <= self.dropout < 0.9, "dropout must be in [0, 0.9)")


@dataclass(frozen=True)
class LinearConfig:
    """Multinomial logistic regression as a torch model: pixels -> 10 logits (7,850 parameters)."""

    kind: Literal["linear"] = "linear"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10

    def validate(self) -> None:
        _check(self.image_size == 28, "image_size must be 28")
        _check(self.in_chans == 1, "in_chans must be 1 (greyscale)")
        _check(2 <= self.num_classes <= 1000, "num_classes must be between 2 and 1000")


@dataclass(frozen=True)
class MLPConfig:
    """Fully connected layers on the flattened pixels: Linear -> ReLU -> Dropout per hidden size, then the head."""

    kind: Literal["mlp"] = "mlp"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    hidden: tuple[int, ...] = (256, 128)  # two layers reach ~98% on MNIST; wider adds parameters, not accuracy
    dropout: float = 0.1  # a little: augmentation already regularises, and MLPs overfit MNIST slowly

    def __post_init__(self) -> None:
        # JSON (run records, checkpoint headers) turns the tuple into a list; keep configs equal and hashable.
        # Only the container changes: validate() still refuses sizes that are not whole numbers.
        if isinstance(self.hidden, list):
            object.__setattr__(self, "hidden", tuple(self.hidden))

    def validate(self) -> None:
        _check(self.image_size == 28, "image_size must be 28")
        _check(self.in_chans == 1, "in_chans must be 1 (greyscale)")
        _check(2 <= self.num_classes <= 1000, "num_classes must be between 2 and 1000")
        _check(isinstance(self.hidden, tuple) and 1 <= len(self.hidden) <= 6, "hidden must list 1 to 6 layer sizes")
        whole = all(type(h) is int for h in self.hidden)
        _check(whole and all(8 <= h <= 4096 for h in self.hidden), "each hidden size must be between 8 and 4096")
        _check(0.0 <= self.dropout < 0.9, "dropout must be in [0, 0.9)")


@dataclass(frozen=True)
class TransferConfig:
    """A torchvision ImageNet network on upscaled digits, fine-tuned whole or as a frozen feature extractor.

    Building one never reads the ImageNet weights: training loads them (vitdemo.training.loop), a checkpoint has its own.
    """

    kind: Literal["transfer"] = "transfer"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    arch: str = "resnet18"  # the smallest of the three (11M parameters) and the best on digits
    image_px: int = 64  # 28 -> 64 px: ResNet-18 ends at 2x2; 112 px gives 4x4 maps at ~3x the compute
    finetune: Literal["all", "head"] = "all"  # "head": frozen backbone (weights and BN statistics), a linear probe
    pretrained: bool = True  # False: the same architecture trained from scratch (the baseline to beat)
    dropout: float = 0.0  # before the new head

    def validate(self) -> None:
        _check(self.arch in ARCHS, f"arch must be one of {', '.join(ARCHS)}")
        _check(self.image_size == 28 and self.in_chans == 1, "transfer models take 28x28 greyscale images")
        _check(2 <= self.num_classes <= 1000, "num_classes must be between 2 and 1000")
        low = MIN_IMAGE_PX.get(self.arch, 32)
        _check(low <= self.image_px <= 224, f"image_px must be between {low} and 224 for {self.arch}")
        _check(self.finetune in ("all", "head"), "finetune must be 'all' or 'head'")
        _check(
            self.pretrained or self.finetune == "all",
            "finetune='head' needs pretrained=True: a frozen random backbone learns nothing",
        )
        _check(0.0 <= self.dropout < 0.9, "dropout must be in [0, 0.9)")


ModelConfig = ViTConfig | CNNConfig | LinearConfig | MLPConfig | TransferConfig
MODEL_CONFIGS: dict[str, type[ModelConfig]] = {
    "vit": ViTConfig,
    "cnn": CNNConfig,
    "linear": LinearConfig,
    "mlp": MLPConfig,
    "transfer": TransferConfig,
}


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Every field is a plain value so a run can be stored and replayed."""

    model: ModelConfig = field(default_factory=ViTConfig)
    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3  # peak learning rate (AdamW)
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    label_smoothing: float = 0.1
    grad_clip: float = 1.0  # max global grad norm; 0 disables
    augment: float = 1.0  # 0 = off; 1 = +-10 deg, +-10% scale, +-2 px shift
    hflip: bool = False  # also mirror half the digits left-right (Fashion-MNIST is always mirrored)
    # The gap between MNIST and what people draw (vitdemo.training.augment, vitdemo.synth.styles); 0 = off, as runs before them.
    stroke_aug: float = 0.0  # pen width: 1 = up to 2 px thicker or 1 px thinner, per image
    elastic: float = 0.0  # a smooth random wobble of the strokes: 1 = up to about 1.5 px
    styles_ratio: float = 0.0  # synthetic handwriting styles MNIST lacks, added to each batch: 0.05 = 5% more images
    seed: int = 0  # initialisation, shuffling, augmentation
    split_seed: int = 0  # which images are held out for validation: the same for runs that differ only in `seed`
    device: str = "auto"
    val_size: int = 5000  # held out from the 60k training images
    train_subset: int = 0  # >0: use only this many training images (tests, quick demos)
    compile: bool = False  # torch.compile (CUDA or CPU; CPU needs a C++ compiler)
    amp: bool = True  # bf16 autocast, CUDA only
    keep: Literal["best", "last"] = "best"
    name: str = ""
    # Where the weights start (vitdemo.training.loop.prepare_model). Paths are stored as given: the CLI makes them absolute.
    labels: int = 0  # >0: train on a seeded class-balanced subset of this many labelled images; 0 = every label
    init: str = ""  # a vitdemo checkpoint (e.g. a pretrained encoder) whose matching weights start the model
    # How init's weights were learned, read from its header when the run is made: "mae" or "simclr" (a
    # self-supervised encoder: the run is a "pretrained" one), "supervised" (a trained classifier fine-tuned: the
    # run stays in its model's family); "" = not recorded (runs from before this field).
    init_method: str = ""
    probe: bool = False  # train only the head; the body stays frozen in eval mode (a linear probe)
    weights_path: str = ""  # transfer models: the ImageNet weights file (default: torch hub's cache, or download)
    # More training images after the dataset's: "class" (the class set, frozen into a snapshot file when the run is
    # submitted: vitdemo.classset.data.freeze_config) or that snapshot's path (.npz). Validation and test stay MNIST's.
    extra_data: str = ""
    resume: str = ""  # a resume file (vitdemo.training.resume): continue that run from its last saved epoch

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
    if isinstance(model, ViTConfig):
        return f"p{model.patch_size}-d{model.embed_dim}x{model.depth}"
    if isinstance(model, CNNConfig):
        return f"w{model.width}x{model.depth}"
    if isinstance(model, MLPConfig):
        return "h" + "-".join(str(h) for h in model.hidden)
    if isinstance(model, TransferConfig):
        start = "" if model.pretrained else "-scratch"
        return f"{model.arch}-{model.image_px}px{start}" + ("-head" if model.finetune == "head" else "")
    return "784"  # linear: the pixels straight to the classes


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
    return name + ("-probe" if config.probe else "")


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a model config from its dict; unknown keys are an error, missing ones take defaults."""
    kind = data.get("kind", "vit")
    cls = MODEL_CONFIGS.get(kind) if isinstance(kind, str) else None
    _check(cls is not None, f"unknown model kind {kind!r}: expected one of {', '.join(MODEL_CONFIGS)}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    _check(not unknown, f"unknown {kind} settings: {', '.join(sorted(unknown))}")
    return cls(**data)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
