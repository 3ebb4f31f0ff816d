"""What the audience turns while a race runs (`Knobs`), what a race is set up with (`RaceConfig`), and what a
turn does (`changes`): a training knob acts on both models at the next step, an architecture knob starts the
model of its own side again. Torch-free: the page, the engine and the tests read it without a framework.

Why these defaults: a CNN of width 16 and depth 2 and a ViT with 7x7 patches, dimension 48 and 3 blocks are the
family registry's own speed references (`vitdemo.families.*.FAMILY.reference`): the smallest models that still
show the lesson on a 2-core laptop (the CNN passes 95% validation within seconds on 5,000 images; the ViT, with
none of the convolution's built-in assumptions, lags). One learning rate for both, constant, no warm-up: as in
TensorFlow Playground, a turn of the knob is what the curve answers to, not a schedule.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from vitdemo.config import DATASETS, CNNConfig, ConfigError, TrainConfig, ViTConfig
from vitdemo.families.spec import check

SIDES = ("cnn", "vit")  # the two models of a race, in the order the page lists them
LEARNING_RATES = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1)  # 1-2-5: x10 is three notches
BATCH_SIZES = (16, 32, 64, 128, 256)
WEIGHT_DECAYS = (0.0, 0.01, 0.05, 0.1, 0.3, 1.0)
TRAIN_SIZES = (500, 1000, 2000, 5000, 10000, 20000)  # the slider: 500 to 20,000 images
MAX_AUGMENT = 2.0  # TrainConfig allows 3; past 2 the digits turn into other digits
MAX_NOISE = 0.8  # 0.9 wrong labels out of 10 classes is a random labelling: nothing left to learn
VIT_PATCHES = (4, 7, 14)  # must divide 28
VIT_DEPTHS = (1, 2, 3, 4, 6)
CNN_WIDTHS = (4, 8, 16, 32)
CNN_DEPTHS = (1, 2, 3)
ARCH_KNOBS = {"vit_patch": "vit", "vit_depth": "vit", "cnn_width": "cnn", "cnn_depth": "cnn"}  # knob -> its side
RACE_VAL_SIZE = 5000  # the validation split a race draws from: TrainConfig's default, so a saved run scores the same


@dataclass(frozen=True)
class Knobs:
    """The settings a race applies while it runs. Training knobs act on both models at the next step;
    architecture knobs (`ARCH_KNOBS`) start their side's model again from scratch."""

    lr: float = 2e-3  # AdamW, constant: the house's default peak rate, fine for both small models
    batch_size: int = 64  # fewer Python round trips per image than 32, still hundreds of steps a minute
    weight_decay: float = 0.05  # TrainConfig's default
    augment: float = 0.0  # off: augmentation slows the first seconds, which are what a class watches
    label_noise: float = 0.0  # the share of training labels replaced by a wrong class (to show overfitting)
    train_size: int = 5000  # the figure: 95% for the CNN within seconds
    extra_data: str = ""  # a frozen class-set snapshot (.npz) added to the training images; "" = none
    vit_patch: int = 7  # 16 patches: a ViT step as fast as a CNN's on one core
    vit_depth: int = 3
    cnn_width: int = 16
    cnn_depth: int = 2

    def validate(self) -> None:
        check(isinstance(self.lr, float | int) and 0 < self.lr <= 1.0, "learning rate must be in (0, 1]")
        check(type(self.batch_size) is int and 1 <= self.batch_size <= 1024, "batch size must be 1 to 1024")
        check(0 <= self.weight_decay <= 1.0, "weight decay must be between 0 and 1")
        check(0 <= self.augment <= MAX_AUGMENT, f"augmentation must be between 0 and {MAX_AUGMENT}")
        check(0 <= self.label_noise <= MAX_NOISE, f"label noise must be between 0 and {MAX_NOISE:.0%}")
        lo, hi = TRAIN_SIZES[0], TRAIN_SIZES[-1]
        check(type(self.train_size) is int and lo <= self.train_size <= hi, f"training set must be {lo} to {hi}")
        check(not self.extra_data or self.extra_data.endswith(".npz"), "extra data must be a class-set snapshot")
        check(self.vit_patch in VIT_PATCHES, f"ViT patch size must be one of {VIT_PATCHES}")
        check(type(self.vit_depth) is int and 1 <= self.vit_depth <= 12, "ViT depth must be 1 to 12")
        check(type(self.cnn_width) is int and 4 <= self.cnn_width <= 64, "CNN width must be 4 to 64")
        check(self.cnn_depth in CNN_DEPTHS, f"CNN depth must be one of {CNN_DEPTHS}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RaceConfig:
    """What a race is set up with; changing it is a new race (a reset), unlike a knob."""

    dataset: str = "mnist"
    seed: int = 0  # both models' first weights, the shuffling (the same order for both) and the label noise
    val_images: int = 400  # the fixed validation subset the curve reads: ~0.15 s for the CNN on one core
    pool: int = TRAIN_SIZES[-1]  # the largest training set: the first `pool` images of the run's training split
    device: str = "cpu"  # the server's spare core; a GPU belongs to the queue's workers
    vit: ViTConfig = field(default_factory=lambda: ViTConfig(patch_size=7, embed_dim=48, depth=3, num_heads=4))
    cnn: CNNConfig = field(default_factory=lambda: CNNConfig(width=16, depth=2))

    def validate(self) -> None:
        check(self.dataset in DATASETS, f"dataset must be one of {', '.join(DATASETS)}")
        check(1 <= self.val_images <= RACE_VAL_SIZE, f"val_images must be 1 to {RACE_VAL_SIZE}")
        check(TRAIN_SIZES[0] <= self.pool <= 55000, "pool must be 500 to 55,000 images")
        check(self.device in ("cpu", "cuda", "auto"), "device must be cpu, cuda or auto")
        self.vit.validate()
        self.cnn.validate()


@dataclass(frozen=True)
class Change:
    """One knob turned: from `old` to `new`, acting on `sides`; `restart` when that side starts again."""

    knob: str
    old: Any
    new: Any
    sides: tuple[str, ...]
    restart: bool = False


def changes(old: Knobs, new: Knobs) -> list[Change]:
    """What turning the knobs from `old` to `new` does, one Change per knob that moved (declaration order)."""
    out = []
    for f in dataclasses.fields(Knobs):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a == b:
            continue
        side = ARCH_KNOBS.get(f.name)
        out.append(Change(f.name, a, b, (side,) if side else SIDES, restart=side is not None))
    return out


def model_config(config: RaceConfig, knobs: Knobs, kind: str) -> ViTConfig | CNNConfig:
    """The network of side `kind`: the race's base model with the knobs' architecture."""
    if kind == "vit":
        return dataclasses.replace(config.vit, patch_size=knobs.vit_patch, depth=knobs.vit_depth)
    if kind == "cnn":
        return dataclasses.replace(config.cnn, width=knobs.cnn_width, depth=knobs.cnn_depth)
    raise ConfigError(f"a race has a 'vit' and a 'cnn' side, not {kind!r}")


def train_config(config: RaceConfig, knobs: Knobs, kind: str, *, passes: float = 0.0, name: str = "") -> TrainConfig:
    """Side `kind` as an ordinary run's config: what `train_step` reads while it races, and what a saved race
    stores, its `passes` over the training set rounded up to whole epochs (at least one). The validation split is
    the standard one (`split_seed` = the race's seed), so a saved run scores on the images a run of the same seed
    would, and `train_subset` names the race's training images (the first of that split's training images)."""
    epochs = max(1, math.ceil(passes - 1e-9))
    return TrainConfig(
        model=model_config(config, knobs, kind),
        dataset=config.dataset,
        epochs=min(epochs, 500),
        batch_size=knobs.batch_size,
        lr=float(knobs.lr),
        weight_decay=knobs.weight_decay,
        warmup_epochs=0.0,
        schedule="constant",
        augment=knobs.augment,
        seed=config.seed,
        split_seed=config.seed,
        device=config.device,
        val_size=RACE_VAL_SIZE,
        train_subset=knobs.train_size,
        keep="last",
        name=name,
        extra_data=knobs.extra_data,
    )


def clamp_train_size(knobs: Knobs, most: int) -> Knobs:
    """`knobs` with the training set cut to `most` images (0: no cap), as a student's race under a cap."""
    if most and knobs.train_size > most:
        return dataclasses.replace(knobs, train_size=max(TRAIN_SIZES[0], most))
    return knobs
