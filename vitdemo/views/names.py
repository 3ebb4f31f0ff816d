"""What the audience reads for each internal name: model kinds, families, datasets and explanations, in one place.

Pages, tables, figures and run titles all look names up here, so a renamed dataset changes everywhere at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vitdemo import families
from vitdemo.config import SUPERVISED_INIT
from vitdemo.families.transfer import ARCHS as TRANSFER_ARCHS
from vitdemo.runconfig import CLASSIC_EXPLANATIONS, CLASSIC_KINDS

KINDS = {"vit": "ViT", "cnn": "CNN"}  # the two sides of the Draw, Present and Lab pages -> the name shown
CLASSIC_NAMES = {
    "logreg": "Logistic regression",
    "knn": "k-nearest neighbours",
    "svm": "SVM",
    "forest": "Random forest",
}
ARCH_NAMES = {"resnet18": "ResNet-18", "vgg16": "VGG16", "alexnet": "AlexNet"}  # vitdemo.families.transfer.ARCHS
KIND_NAMES = {  # every model kind (and transfer architecture) -> the name shown
    **{f.kind: f.name for f in families.families()},
    **CLASSIC_NAMES,
    **ARCH_NAMES,
}
GROUP_NAMES = {"reader": "Number readers"}  # a family of several kinds (its `group`) -> the name shown
FAMILIES = {  # family -> the name shown, in the order of the ladder from pixels to pretrained encoders
    "classic": "Classic",
    **{f.family: GROUP_NAMES.get(f.family, f.name) for f in families.families()},
    "pretrained": "Pretrained",
}
FAMILY_HELP = (
    "Classic: scikit-learn on the pixels (logistic regression, k-nearest neighbours, SVM, random forest). "
    "Linear, MLP, CNN, ViT: trained from scratch. Transfer: ResNet-18, VGG16 or AlexNet started from ImageNet. "
    "Pretrained: started from a self-supervised encoder (MAE for a ViT, SimCLR for a CNN)."
)
OTHER_FAMILY = "other"  # a kind this version does not know
DATASETS = {"mnist": "MNIST digits", "fashion": "Fashion-MNIST"}  # headings and pickers
DATASETS_SHORT = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}  # table cells and run titles
EXPLANATIONS = {k: families.get(k).explanation for k in KINDS}  # how the two sides explain a prediction
KIND_EXPLANATIONS = {  # every kind that explains its predictions (kNN, SVM and forests do not)
    **{f.kind: f.explanation for f in families.families()},
    **CLASSIC_EXPLANATIONS,
}
EXPLANATION_CAPTIONS = {f.kind: f.caption for f in families.families() if f.caption}  # what it is, how to read it


def kind_name(kind: str) -> str:
    """'vit' -> 'ViT', 'logreg' -> 'Logistic regression'; an unknown kind is shown as it is."""
    return KIND_NAMES.get(kind, kind)


def _model_section(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    model = (config or {}).get("model")
    return model if isinstance(model, Mapping) else {}


def model_kind(kind: str, config: Mapping[str, Any] | None = None) -> str:
    """The precise kind of a run: a transfer run's architecture ('resnet18'), a classic run's estimator
    ('logreg', also when the run's kind is the generic 'classic'), otherwise `kind` itself."""
    config = config or {}
    model = _model_section(config)
    if kind == "transfer":
        arch = model.get("arch") or config.get("arch")
        return arch if arch in TRANSFER_ARCHS else kind
    if kind == "classic":
        inner = model.get("kind") or config.get("kind")
        return inner if inner in CLASSIC_KINDS else kind
    return kind


def family_of(kind: str, config: Mapping[str, Any] | None = None) -> str:
    """The family of a run (a key of FAMILIES, or 'other'): classic (logreg, knn, svm, forest), linear, mlp, cnn,
    vit, transfer (resnet18, vgg16, alexnet) or pretrained (a run started from a self-supervised encoder, `init`,
    or one that records a pretraining method); the config is the run's stored TrainConfig dict. A fine-tune of a
    trained classifier (init_method "supervised") stays in its model's family; a run from before init_method was
    recorded counts any init as an encoder."""
    config = config or {}
    precise = model_kind(kind, config)
    if precise in CLASSIC_KINDS or kind == "classic":
        return "classic"
    from_encoder = bool(config.get("init")) and config.get("init_method") != SUPERVISED_INIT
    if from_encoder or config.get("pretrain") or _model_section(config).get("pretrain"):
        return "pretrained"
    if precise in TRANSFER_ARCHS or kind == "transfer":
        return "transfer"
    if families.is_kind(kind):  # a kind in a family of several (the number readers)
        return families.get(kind).family
    return kind if kind in FAMILIES else OTHER_FAMILY


def is_reader(kind: str) -> bool:
    """Whether runs of `kind` read whole numbers (their metrics are not a classifier's: a table of their own)."""
    return families.is_kind(kind) and families.task_of(kind) != "classify"


def family_name(family: str) -> str:
    """'classic' -> 'Classic', 'other' -> 'Other'; an unknown family is shown as it is."""
    return FAMILIES.get(family, "Other" if family == OTHER_FAMILY else family)


def model_name(kind: str, config: Mapping[str, Any] | None = None) -> str:
    """What to call a run's model: 'ViT', 'ResNet-18', 'Logistic regression'..."""
    return kind_name(model_kind(kind, config))


def dataset_name(dataset: str, *, short: bool = False) -> str:
    """'mnist' -> 'MNIST digits' ('MNIST' when short); an unknown dataset is shown as it is."""
    return (DATASETS_SHORT if short else DATASETS).get(dataset, dataset)


def explanation_name(kind: str) -> str:
    """'vit' -> 'attention rollout', 'cnn' -> 'integrated gradients'; 'explanation' for anything else."""
    return KIND_EXPLANATIONS.get(kind, "explanation")


def explanation_of(kind: str) -> str | None:
    """How a model kind explains a prediction ('weight templates' for 'logreg'); None when it does not."""
    return KIND_EXPLANATIONS.get(kind)


def explanation_caption(kind: str) -> str:
    """One sentence saying what a kind's explanation shows and how to read it; '' for an unknown kind."""
    return EXPLANATION_CAPTIONS.get(kind, "")


def confidence_note(calibrated: bool) -> str:
    """The one line beside the probability bars saying what the percentage means."""
    if calibrated:
        return "The percentage is calibrated: answers shown at 90% are right about 9 times in 10 on test digits."
    return "This model's percentages are not calibrated: read them as a ranking of the classes, not as odds."
