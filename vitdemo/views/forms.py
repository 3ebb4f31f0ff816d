"""The Train page's form without the page: presets, form values <-> run config, validation messages and the
size estimates shown before a run is launched. Pure Python (no Streamlit), so every rule is tested directly.

Form values are one flat dict (`FormValues`) whose keys are the widgets' keys: every family's fields are always
present, so switching the family back and forth keeps what was typed. The families (`FAMILIES`): the ViT and the
CNN, the ladder's linear model and MLP, an ImageNet network (transfer), a scikit-learn baseline (classic), and
"fine-tune an encoder" (a pretrained encoder with a label budget, or a new one pretrained first by the run).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vitdemo import families
from vitdemo.config import ARCHS, CLASS_SET, MODEL_CONFIGS, ConfigError, ModelConfig, TrainConfig
from vitdemo.families import vocab
from vitdemo.runconfig import (
    PRETRAIN_METHODS,
    ClassicConfig,
    ClassicRun,
    PretrainConfig,
    PretrainRun,
    RunConfig,
    run_config_from_dict,
)
from vitdemo.runs.admission import Estimate as Estimate
from vitdemo.runs.admission import estimate as estimate
from vitdemo.runs.admission import estimate_parameters as estimate_parameters  # sizes are counted there
from vitdemo.training.recipes import FEW_LABELS_VAL_SIZE, RECIPES, finetune_recipe
from vitdemo.views.estimates import CLASSIC_NAMES as CLASSIC_NAMES  # the form's estimates, kept importable here
from vitdemo.views.estimates import classic_lines as classic_lines
from vitdemo.views.estimates import estimate_lines as estimate_lines
from vitdemo.views.names import DATASETS_SHORT

FormValues = dict[str, Any]


def _field_type(cls: type, name: str) -> type:
    return vocab.value_type({f.name: f for f in dataclasses.fields(cls)}[name])


FIRST_KINDS = ("vit", "cnn")  # the two the app is about, first; then the other families in the ladder's order
FAMILIES: dict[str, str] = {  # the form's first choice -> what the page calls it
    **{k: families.get(k).label for k in FIRST_KINDS},
    **{f.kind: f.label for f in families.families() if f.kind not in FIRST_KINDS},
    "classic": "Classic (scikit-learn)",
    "finetune": "Fine-tune an encoder",
}
LABEL_BUDGETS = (0, 100, 600, 6000)  # 0 = every label
NEW_ENCODER = "new:"  # encoder choice "new:mae" / "new:simclr": the run pretrains its own encoder first

# form key -> (the config it belongs to, that config's field name): every family's settings under their derived
# keys (vitdemo.families.vocab.form_key: "vit_depth"), then the scikit-learn baseline's ("classic" is ClassicConfig)
MODEL_FIELDS: dict[str, tuple[str, str]] = {
    key: (fam.kind, f.name) for fam in families.families() for key, (f, _) in vocab.form_fields(fam.config, fam.kind).items()
}  # fmt: skip
CLASSIC_FIELDS = ("logreg_c", "svm_c", "pca_components", "n_neighbors", "n_estimators", "max_depth")
MODEL_FIELDS |= {"classic_kind": ("classic", "kind"), **{k: ("classic", k) for k in CLASSIC_FIELDS}}
FINETUNE_FIELDS: tuple[str, ...] = ("encoder", "probe", "pretrain_epochs")
TEACHER_KEY = "teacher"  # a ViT's teacher (vitdemo.views.teachers): '', 'shipped' or a CNN run's checkpoint
TRAIN_FIELDS: tuple[str, ...] = tuple(vocab.form_fields(TrainConfig))  # extra_data "class": frozen when queued
_CONFIGS: dict[str, type] = {**families.model_configs(), "classic": ClassicConfig}
FIELD_TYPES: dict[str, type] = {  # form key -> the type of its value (the hidden layers' text box holds a tuple)
    **{key: _field_type(_CONFIGS[kind], name) for key, (kind, name) in MODEL_FIELDS.items()},
    **{key: _field_type(TrainConfig, key) for key in TRAIN_FIELDS},
    "pretrain_epochs": int,
}
KEYS: tuple[str, ...] = ("model_kind", "recipe", *MODEL_FIELDS, *FINETUNE_FIELDS, TEACHER_KEY, *TRAIN_FIELDS)

# What a config error calls a field -> what the form calls it (the messages name the widgets the user sees): the
# form keys, the training settings' names, and per family its own settings' names (translated only in that
# family's messages: "depth" is the ViT's depth in a ViT's error).
LABELS: dict[str, str] = {
    **{key: vocab.labels(_CONFIGS[kind])[name] for key, (kind, name) in MODEL_FIELDS.items() if kind != "classic"},
    **vocab.labels(TrainConfig),
    "logreg_c": "C",
    "svm_c": "C",
    "pca_components": "PCA components",
    "n_neighbors": "neighbours",
    "n_estimators": "trees",
    "max_depth": "tree depth",
    "pretrain_epochs": "pretraining epochs",
}


def _names(labels: Mapping[str, str]) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(sorted(labels, key=len, reverse=True)) + r")\b")


_NAMES = _names(LABELS)


@dataclass(frozen=True)
class EncoderChoice:
    """A pretrained encoder the form offers (the page reads them from the shipped and run checkpoints)."""

    key: str  # the file's name: what the form stores (never a server folder)
    label: str
    path: str  # where the worker finds it
    model: ModelConfig  # the architecture a run from it has
    method: str  # "mae" or "simclr"


def server_encoders() -> dict[str, EncoderChoice]:
    """The encoders this server offers, by key: the shipped ones ($VITDEMO_CHECKPOINTS), then those the
    registry's pretrain runs made ($VITDEMO_HOME). Read from their headers (the form's default list)."""
    from vitdemo import paths
    from vitdemo.runs.baselines import RUN_ENCODERS, encoders

    found = encoders(paths.shipped_dir()) + encoders(paths.home() / "checkpoints", RUN_ENCODERS)
    choices = {}
    for enc in found:
        where = "from a run" if enc.path.name.startswith("run-") else "shipped"
        label = f"{enc.name} ({enc.method.upper()}, {enc.pretrain_epochs} epochs, {where})"
        choices[enc.path.name] = EncoderChoice(enc.path.name, label, str(enc.path.resolve()), enc.model, enc.method)
    return choices | shipped_networks(paths.shipped_dir())


SHIPPED_NETWORKS = ("vit_mnist", "cnn_mnist", "vit_fashion", "cnn_fashion")


def shipped_networks(folder: Path) -> dict[str, EncoderChoice]:
    """The shipped ViT and CNN as starting points too: fine-tune one (a new head; with the class set as extra
    training images, "fine-tune on our handwriting"). Read from their headers."""
    from vitdemo.checkpoints import CheckpointError, read_meta

    choices = {}
    for stem in SHIPPED_NETWORKS:
        path = folder / f"{stem}.safetensors"
        try:
            model = read_meta(path).model_config
        except (CheckpointError, OSError):
            continue
        kind, dataset = stem.split("_")
        label = f"the shipped {kind.upper() if kind == 'cnn' else 'ViT'} trained on {DATASETS_SHORT[dataset]}"
        choices[path.name] = EncoderChoice(path.name, label, str(path.resolve()), model, "supervised")
    return choices


# -- presets ----------------------------------------------------------------------------------------
# Presets fill in the fields of every family except the family itself, the dataset, the device and the name:
# a teacher picks "ViT on Fashion" first, then how long they can wait. Two exceptions: "seed recipe" is a ViT
# (it picks the ViT and starts from vitdemo.training.recipes.SEED_VIT), and "few labels" fills the training settings of
# the form's label budget (vitdemo.training.recipes.finetune_recipe; a budget of 100 if none is chosen).
PRESETS: dict[str, FormValues] = {
    "quick lesson": {  # the form's start: under 30 s on a 2-core CPU for the CNN (98%) and the ViT (75%), measured
        "recipe": "",  # with `python -m vitdemo train` (README, "Class defaults"): 10k images, 2 epochs, small models
        "vit_patch_size": 7,
        "vit_embed_dim": 48,
        "vit_depth": 3,
        "vit_num_heads": 4,
        "vit_mlp_ratio": 2.0,
        "vit_dropout": 0.0,
        "vit_stem": "patch",  # a pure ViT: the conv stem (90.7% where this one reads 74.7%) is the class's to try
        "cnn_width": 16,  # the lean design: 98.6% test where the double one of width 8 reached 98.2%, as fast
        "cnn_depth": 2,
        "cnn_dropout": 0.1,
        "cnn_design": "lean",
        "epochs": 2,
        "batch_size": 64,
        "lr": 2e-3,
        "weight_decay": 0.05,
        "schedule": "onecycle",
        "label_smoothing": 0.1,
        "augment": 0.0,
        "seed": 0,
        "train_subset": 10_000,
        "labels": 0,
    },
    "fast demo": {  # about a minute on a laptop CPU: 10k images, 3 epochs, a small 7x7-patch ViT (16 tokens)
        "recipe": "",
        "vit_patch_size": 7,
        "vit_embed_dim": 48,
        "vit_depth": 3,
        "vit_num_heads": 4,
        "vit_mlp_ratio": 2.0,
        "vit_dropout": 0.0,
        "vit_stem": "patch",
        "cnn_width": 16,
        "cnn_depth": 2,
        "cnn_dropout": 0.1,
        "cnn_design": "lean",
        "epochs": 3,
        "batch_size": 64,  # many small steps: a ViT from scratch needs steps more than it needs big batches
        "lr": 2e-3,
        "weight_decay": 0.05,
        "schedule": "onecycle",
        "label_smoothing": 0.1,
        "augment": 0.0,  # three short epochs do not overfit; augmentation would only slow learning down
        "seed": 0,
        "train_subset": 10_000,
        "labels": 0,
    },
    "best accuracy": {  # minutes on a GPU, much longer on a CPU: the full 55k images, 4x4 patches, 15 epochs
        "recipe": "",
        "vit_patch_size": 4,
        "vit_embed_dim": 64,
        "vit_depth": 6,
        "vit_num_heads": 4,
        "vit_mlp_ratio": 2.0,
        "vit_dropout": 0.0,
        "vit_stem": "patch",
        "cnn_width": 32,
        "cnn_depth": 2,
        "cnn_dropout": 0.1,
        "cnn_design": "double",
        "epochs": 15,
        "batch_size": 128,
        "lr": 2e-3,
        "weight_decay": 0.05,
        "schedule": "cosine",
        "label_smoothing": 0.1,
        "augment": 1.0,
        "seed": 0,
        "train_subset": 0,
        "labels": 0,
    },
    "seed recipe": {},  # filled in below from vitdemo.training.recipes.SEED_VIT
    "few labels": {},  # filled in by apply_preset from the form's label budget
}
SEED_RECIPE = "seed-vit"


def _seed_preset() -> FormValues:
    values = values_from_config(RECIPES[SEED_RECIPE])
    shown = ("model_kind", "recipe", *(k for k, (kind, _) in MODEL_FIELDS.items() if kind == "vit"), *TRAIN_FIELDS)
    return {k: values[k] for k in shown if k not in ("dataset", "device", "name")}


def default_values() -> FormValues:
    """The form as TrainConfig's defaults fill it (a ViT on MNIST, device 'auto')."""
    return values_from_config(TrainConfig())


LESSON_PRESET, LESSON_KIND = "quick lesson", "cnn"  # what the Train form opens on: a run that ends within a lesson


def start_values() -> FormValues:
    """What the Train form opens on: the quick lesson preset with the CNN (default_values otherwise)."""
    return apply_preset({**default_values(), "model_kind": LESSON_KIND}, LESSON_PRESET)


def apply_preset(values: FormValues, preset: str) -> FormValues:
    """A copy of `values` with the preset's fields filled in."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}: expected one of {', '.join(PRESETS)}")
    if preset == "seed recipe":
        return {**values, **_seed_preset()}
    if preset == "few labels":
        labels = _coerce("labels", values.get("labels") or 0) or 100
        r = finetune_recipe(labels)
        few = {"epochs": r.epochs, "batch_size": r.batch_size, "lr": r.lr, "labels": labels, "train_subset": 0}
        return {**values, **few, "recipe": "", "schedule": "cosine", "weight_decay": 0.05, "augment": 1.0}
    return {**values, **PRESETS[preset]}


# -- config -> values -------------------------------------------------------------------------------
def _model_defaults() -> dict[str, Any]:
    return {**{kind: cls() for kind, cls in MODEL_CONFIGS.items()}, "classic": ClassicConfig()}


def _fill(values: FormValues, models: dict[str, Any]) -> None:
    for key, (kind, name) in MODEL_FIELDS.items():
        value = getattr(models[kind], name)
        values[key] = vocab.format_value(value) if isinstance(value, tuple) else value  # a tuple's box holds text


def _recipe_of(config: TrainConfig) -> str:
    """The recipe whose settings the form does not show (flips, warm-up, clipping...) `config` has, if any."""
    hidden = ("hflip", "warmup_epochs", "grad_clip", "val_size", "keep")
    for name, recipe in RECIPES.items():
        if recipe.model.kind == config.model.kind and all(getattr(recipe, f) == getattr(config, f) for f in hidden):
            return name
    return ""


def values_from_config(config: RunConfig | dict[str, Any]) -> FormValues:
    """Form values showing `config` (a run config or its dict, e.g. a stored run's); the other families' fields
    keep their defaults. Settings the form does not show (val_size, keep, ...) are not carried, except through
    a recipe. A fine-tune's encoder is named by its file name."""
    if isinstance(config, dict):
        config = run_config_from_dict(config)
    models = _model_defaults()
    values: FormValues = {"recipe": "", "encoder": "", "probe": False, "pretrain_epochs": PretrainConfig().epochs}
    values[TEACHER_KEY] = ""
    train = TrainConfig()
    if isinstance(config, ClassicRun):
        models["classic"] = config.model
        values["model_kind"] = "classic"
        train = dataclasses.replace(train, dataset=config.dataset, train_subset=config.train_subset, name=config.name,
                                    seed=config.model.seed)  # fmt: skip
    else:
        train = config.train if isinstance(config, PretrainRun) else config
        models[train.model.kind] = train.model
        values["model_kind"] = train.model.kind
        values[TEACHER_KEY] = getattr(train.model, "teacher", "")
        if isinstance(config, PretrainRun):
            values.update(model_kind="finetune", encoder=NEW_ENCODER + config.method)
            values["pretrain_epochs"] = config.pretrain.epochs
        elif train.init:
            values.update(model_kind="finetune", encoder=train.init.replace("\\", "/").rsplit("/", 1)[-1])
        values["probe"] = train.probe
        values["recipe"] = _recipe_of(train)
    _fill(values, models)
    for key in TRAIN_FIELDS:
        values[key] = getattr(train, key)
    values["extra_data"] = CLASS_SET if train.extra_data else ""  # a stored run names its snapshot: the set now
    return values


def coerce_values(values: FormValues) -> FormValues:
    """A copy with numbers as the form's widgets need them (int or float); values that are not numbers stay."""
    out = dict(values)
    for key, value in values.items():
        if FIELD_TYPES.get(key) in (int, float):  # the hidden layers stay text: their widget is a text box
            with contextlib.suppress(ConfigError):
                out[key] = _coerce(key, value)
    return out


# -- values -> config -------------------------------------------------------------------------------
def config_from_values(values: FormValues, encoders: Mapping[str, EncoderChoice] | None = None) -> RunConfig:
    """The run config the form describes, validated. Raises ConfigError naming the first bad field."""
    config, messages = _build(values, server_encoders() if encoders is None else encoders)
    if messages:
        raise ConfigError(messages[0])
    assert config is not None
    return config


def check_values(
    values: FormValues,
    devices: list[str] | tuple[str, ...] = ("cpu",),
    encoders: Mapping[str, EncoderChoice] | None = None,
) -> tuple[RunConfig | None, list[str]]:
    """(config, []) when the form is valid, else (None, messages): one sentence per problem found (the model's
    and the training settings' are checked separately, so both show at once). `devices`: what the server has;
    `encoders`: the pretrained encoders a fine-tune may start from, by key (default: `server_encoders()`)."""
    config, messages = _build(values, server_encoders() if encoders is None else encoders)
    if config is not None and config.device == "cuda" and "cuda" not in devices:
        messages.append("Device 'cuda' was chosen but this server has no CUDA GPU: choose auto or cpu.")
        config = None
    return (config if not messages else None), messages


def _build(values: FormValues, encoders: Mapping[str, EncoderChoice]) -> tuple[RunConfig | None, list[str]]:
    missing = [k for k in KEYS if k not in values]
    if missing:
        return None, [f"The form is missing {', '.join(missing)}."]
    family = values["model_kind"]
    if family not in FAMILIES:
        return None, [f"Model kind must be one of {', '.join(FAMILIES)}, not {family!r}."]
    messages, coerced = [], {}
    for key in KEYS:
        try:
            coerced[key] = _coerce(key, values[key])
        except ConfigError as exc:
            messages.append(_readable(str(exc)))
    if messages:
        return None, messages
    if family == "classic":
        return _checked(_classic(coerced))
    if family == "finetune":
        return _finetune(coerced, encoders)
    model = _model(coerced, family)
    if family == "vit":  # a ViT trained from scratch may learn from a CNN (never a fine-tune's encoder)
        model = dataclasses.replace(model, teacher=str(coerced[TEACHER_KEY] or ""))
    return _checked(_train(coerced, model), model)


def _model(v: FormValues, kind: str) -> ModelConfig:
    return MODEL_CONFIGS[kind](**{name: v[key] for key, (k, name) in MODEL_FIELDS.items() if k == kind})


def _train(v: FormValues, model: ModelConfig, init: str = "") -> TrainConfig:
    """The training settings of the form around `model`: from the recipe when one is chosen for this kind; a
    label budget holds out only FEW_LABELS_VAL_SIZE images and keeps its last weights (vitdemo.training.recipes)."""
    args = {k: v[k] for k in TRAIN_FIELDS}
    args["name"] = str(args["name"] or "").strip()
    recipe = RECIPES.get(v["recipe"])
    if recipe is not None and recipe.model.kind == model.kind and not init:
        return dataclasses.replace(recipe, model=model, **args)
    # The default warm-up is one epoch; short runs warm up for a third of their epochs instead of all of them.
    warmup = min(TrainConfig.warmup_epochs, max(args["epochs"], 0) / 3)
    few = {"val_size": FEW_LABELS_VAL_SIZE, "keep": "last"} if args["labels"] else {}
    return TrainConfig(model=model, warmup_epochs=warmup, init=init, probe=bool(v["probe"]) and bool(init),
                       **few, **args)  # fmt: skip


def _classic(v: FormValues) -> ClassicRun:
    fields = {name: v[key] for key, (k, name) in MODEL_FIELDS.items() if k == "classic"}
    model = ClassicConfig(**fields, seed=v["seed"])
    subset, name = v["train_subset"], str(v["name"] or "").strip()
    return ClassicRun(model=model, dataset=v["dataset"], train_subset=subset, name=name)


def _finetune(v: FormValues, encoders: Mapping[str, EncoderChoice]) -> tuple[RunConfig | None, list[str]]:
    """Fine-tune (or probe) a chosen encoder, or a new one the run pretrains first, with the form's budget."""
    key = str(v["encoder"] or "")
    if key.startswith(NEW_ENCODER) and key[len(NEW_ENCODER) :] in PRETRAIN_METHODS:
        method = key[len(NEW_ENCODER) :]
        model = _model(v, PRETRAIN_METHODS[method])
        train = dataclasses.replace(_train(v, model, init="new"), init="")
        pretrain = PretrainConfig(epochs=v["pretrain_epochs"], seed=v["seed"])
        return _checked(PretrainRun(method, pretrain, train), model)
    if key not in encoders:
        what = f"The encoder {key} is not on this server" if key else "No encoder is chosen"
        return None, [f"{what}: choose one of the encoders offered, or pretrain a new one."]
    chosen = encoders[key]
    train = dataclasses.replace(_train(v, chosen.model, init=chosen.path), init_method=chosen.method)
    return _checked(train)


def _checked(config: RunConfig, model: ModelConfig | None = None) -> tuple[RunConfig | None, list[str]]:
    """Run the model's own check (`model`: the one the form built), then the whole config's with a default model
    (so both problems show)."""
    checks: list[tuple[Any, str | None]] = [(model.validate, model.kind)] if model is not None else []
    if isinstance(config, TrainConfig):
        checks.append((dataclasses.replace(config, model=type(config.model)()).validate, None))
    elif isinstance(config, PretrainRun):
        train = dataclasses.replace(config.train, model=type(config.train.model)())
        checks.append((dataclasses.replace(config, train=train).validate, None))
    else:
        checks.append((config.validate, None))
    messages = []
    for check, kind in checks:
        try:
            check()
        except ConfigError as exc:
            messages.append(_readable(str(exc), kind))
    return (None if messages else config), messages


def _coerce(key: str, value: Any) -> Any:
    """A form value as its setting's type (vitdemo.families.vocab.parse_value); ConfigError naming the key."""
    kind = FIELD_TYPES.get(key)
    return vocab.parse_value(kind, value, key) if kind in (int, float, tuple) else value


def _readable(message: str, kind: str | None = None) -> str:
    """A config error as a sentence about the form: config names become the widgets' labels (a model's own
    settings by its family's labels, when the message is about a model of `kind`)."""
    if kind is not None and families.is_kind(kind):
        own = vocab.labels(families.get(kind).config)
        message = _names(own).sub(lambda m: own[m.group(0)], message)
    else:
        message = _NAMES.sub(lambda m: LABELS[m.group(0)], message)
    return message[0].upper() + message[1:] + ("" if message.endswith(".") else ".")


def transfer_weights_note(arch: str, cached: bool) -> str:
    """What the form says under an ImageNet network: where its weights come from, and offline, which file to
    place where (the file torchvision itself would download; the same words as vitdemo.models.transfer's
    error). No server folder is named: the place is torch hub's cache, described as torch describes it."""
    from vitdemo.models.transfer import weights_filename

    if arch not in ARCHS:
        return ""
    name = weights_filename(arch)
    if cached:
        return f"The ImageNet weights ({name}) are on this server: the run starts from them."
    return (
        f"The ImageNet weights are downloaded by the run on first use. On a server without internet, copy {name} "
        f"(from https://download.pytorch.org/models/{name}) into torch hub's cache on the server "
        "($TORCH_HOME/hub/checkpoints, by default ~/.cache/torch/hub/checkpoints), or untick 'ImageNet weights' "
        "to train the same network from scratch."
    )


def trained_config(config: RunConfig) -> TrainConfig | None:
    """The training a run config comes down to (a pretrain run's fine-tune), None for a classic baseline."""
    if isinstance(config, ClassicRun):
        return None
    return config.train if isinstance(config, PretrainRun) else config
