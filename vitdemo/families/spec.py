"""What a model family is: its registry entry (`Family`) and the metadata of each of its settings (`Setting`).

Torch-free: the queue, the Train form, the CLI and the estimates read families without loading a framework. A
setting is a dataclass field whose metadata says what people call it; the CLI flag, the form's widget and the
shipped reproduce command are all derived from it (vitdemo.families.vocab), so a setting has one vocabulary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

TASKS = ("classify", "read")  # classify: one 28x28 image -> class logits; read: a wide number image -> its digits
CLASSIFY = "classify"
READ = "read"
EXPLAINERS = ("rollout", "gradients", "attention", "boxes")  # a reader shows its cross-attention or its boxes
SETTING = "vitdemo"  # the dataclass field metadata key


class ConfigError(ValueError):
    """A config value is out of range; the message says which and why."""


def check(ok: bool, message: str) -> None:
    """Raise ConfigError(message) unless `ok`."""
    if not ok:
        raise ConfigError(message)


class ModelConfig(Protocol):
    """What every family's frozen config has (vitdemo.families.*: ViTConfig, CNNConfig, ...)."""

    kind: str
    image_size: int
    in_chans: int
    num_classes: int

    def validate(self) -> None: ...


@dataclass(frozen=True)
class Setting:
    """What people call one setting. The CLI flag is `--` + the field name with dashes (a setting that defaults
    to True is switched off with `--no-NAME`) unless `flag` says otherwise; the form's widget key is the field's
    name, prefixed by the family's kind for a model setting (`vit_depth`)."""

    label: str  # what the form and the error messages call it: "patch size"
    help: str = ""  # one line for --help and the form's tooltip
    flag: str = ""  # a CLI flag other than the derived one ("--weights" for weights_path)
    choices: tuple[Any, ...] = ()  # the values allowed (a select box; argparse choices)
    shown: tuple[str, ...] = ()  # what the form shows for each choice, if not the value itself
    minimum: float | None = None  # the form's number input: its smallest value
    step: float | None = None  # and its step
    form: bool = True  # the Train form shows it
    cli: bool = True  # `python -m vitdemo train` has a flag for it
    always: bool = False  # a reproduce command writes it even at its default (the settings a reader looks for)
    command: bool = True  # a reproduce command writes it at all (not: the device, a path of this machine)


def setting(default: Any = dataclasses.MISSING, label: str = "", *, factory: Any = None, **meta: Any) -> Any:
    """A dataclass field with its Setting: `patch_size: int = setting(4, "patch size", choices=(4, 7, 14))`."""
    extra = {"default_factory": factory} if factory is not None else {"default": default}
    return dataclasses.field(metadata={SETTING: Setting(label, **meta)}, **extra)


def setting_of(f: dataclasses.Field) -> Setting | None:
    """The Setting of a dataclass field (None: a field nobody sets by hand, such as `kind`)."""
    found = f.metadata.get(SETTING)
    return found if isinstance(found, Setting) else None


def settings(cls: type) -> list[tuple[dataclasses.Field, Setting]]:
    """The fields of a config class that have a Setting, in declaration order."""
    return [(f, s) for f in dataclasses.fields(cls) if (s := setting_of(f)) is not None]


@dataclass(frozen=True)
class Family:
    """One model family's registry entry: everything the house needs to know about it except the network itself
    (its model file, built lazily from `builder`). Adding a family is one module in vitdemo/families/ holding its
    config class and this entry, plus its model file in vitdemo/models/."""

    kind: str  # the config's `kind`, the run registry's kind column, the CLI's --model
    config: type  # its frozen config class (torch-free, with Settings)
    builder: str  # "module:callable" building the untrained network from a config (imported when first built)
    name: str  # what the audience reads: "ViT"
    order: int  # where it stands in lists: the ladder from pixels to pretrained networks
    group: str = ""  # the Leaderboard's family filter (default: the kind)
    form_label: str = ""  # the Train form's first choice (default: the name)
    task: str = CLASSIFY
    explainer: str = "gradients"  # how a prediction is explained: "rollout" (attention), "gradients", ... EXPLAINERS
    explanation: str = "integrated gradients"  # what the explanation is called
    caption: str = ""  # one sentence under the explanation: what it shows and how to read it
    blurb: str = ""  # one sentence under the family's form fields
    reference: Any = None  # a small config whose measured speed stands in for a model too big to probe
    # the reference for a given config, where the family has designs of different speed per multiply-add
    reference_for: Callable[[Any], Any] | None = None
    shape: Callable[[Any], str] = lambda config: ""  # a short tag of the model's shape for run names
    params: Callable[[Any], int] | None = None  # trainable parameters from the config (None: counted on meta)
    macs: Callable[[Any], int] | None = None  # one image's forward multiply-adds (None: from macs_per_param)
    macs_per_param: Callable[[Any], float] = lambda config: 1.0  # dense layers: one multiply-add per weight
    activations: Callable[[Any], int] | None = None  # floats one image keeps for backward (None: from macs)
    probe_config: Callable[[Any], Any] = lambda config: config  # the same speed without reading a file
    # What one run asks a Ray cluster for (vitdemo.runs.ray_exec): CPU cores on a CPU node, and the share of one
    # GPU on a GPU node (a quarter: a small MNIST model leaves most of a GPU idle, so four share one)
    ray_cpus: float = 1.0
    gpu_share: float = 0.25

    def __post_init__(self) -> None:
        check(self.task in TASKS, f"family {self.kind}: task must be one of {', '.join(TASKS)}")
        check(self.explainer in EXPLAINERS, f"family {self.kind}: unknown explainer {self.explainer!r}")
        check(getattr(self.config, "kind", None) == self.kind, f"family {self.kind}: its config's kind differs")
        check(":" in self.builder, f"family {self.kind}: builder must be 'module:callable'")

    @property
    def family(self) -> str:
        return self.group or self.kind

    @property
    def label(self) -> str:
        return self.form_label or self.name
