"""What the audience reads for each internal name: model kinds, datasets and explanations, in one place.

Pages, tables, figures and run titles all look names up here, so a renamed dataset changes everywhere at once.
"""

from __future__ import annotations

KINDS = {"vit": "ViT", "cnn": "CNN"}  # model kind -> the name the audience sees
DATASETS = {"mnist": "MNIST digits", "fashion": "Fashion-MNIST"}  # headings and pickers
DATASETS_SHORT = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}  # table cells and run titles
EXPLANATIONS = {"vit": "attention rollout", "cnn": "Grad-CAM"}  # how each kind explains a prediction


def kind_name(kind: str) -> str:
    """'vit' -> 'ViT'; an unknown kind is shown as it is."""
    return KINDS.get(kind, kind)


def dataset_name(dataset: str, *, short: bool = False) -> str:
    """'mnist' -> 'MNIST digits' ('MNIST' when short); an unknown dataset is shown as it is."""
    return (DATASETS_SHORT if short else DATASETS).get(dataset, dataset)


def explanation_name(kind: str) -> str:
    """'vit' -> 'attention rollout', 'cnn' -> 'Grad-CAM'; 'explanation' for anything else."""
    return EXPLANATIONS.get(kind, "explanation")
