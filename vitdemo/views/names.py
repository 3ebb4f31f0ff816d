"""What the audience reads for each internal name: model kinds, datasets and explanations, in one place.

Pages, tables, figures and run titles all look names up here, so a renamed dataset changes everywhere at once.
"""

from __future__ import annotations

KINDS = {"vit": "ViT", "cnn": "CNN"}  # model kind -> the name the audience sees
DATASETS = {"mnist": "MNIST digits", "fashion": "Fashion-MNIST"}  # headings and pickers
DATASETS_SHORT = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}  # table cells and run titles
EXPLANATIONS = {"vit": "attention rollout", "cnn": "integrated gradients"}  # how each kind explains a prediction
EXPLANATION_CAPTIONS = {  # one plain sentence under each explanation: what it is and how to read it
    "vit": "Attention rollout: how much each 4x4 patch reached the class token the answer is read from, "
    "through all the layers (bright: looked at more).",
    "cnn": "Integrated gradients: how much each pixel of ink adds to the predicted class, measured from a blank "
    "image (bright: adds more); chosen over Grad-CAM, whose coarse 7x7 map also painted the empty background.",
}


def kind_name(kind: str) -> str:
    """'vit' -> 'ViT'; an unknown kind is shown as it is."""
    return KINDS.get(kind, kind)


def dataset_name(dataset: str, *, short: bool = False) -> str:
    """'mnist' -> 'MNIST digits' ('MNIST' when short); an unknown dataset is shown as it is."""
    return (DATASETS_SHORT if short else DATASETS).get(dataset, dataset)


def explanation_name(kind: str) -> str:
    """'vit' -> 'attention rollout', 'cnn' -> 'integrated gradients'; 'explanation' for anything else."""
    return EXPLANATIONS.get(kind, "explanation")


def explanation_caption(kind: str) -> str:
    """One sentence saying what a kind's explanation shows and how to read it; '' for an unknown kind."""
    return EXPLANATION_CAPTIONS.get(kind, "")


def confidence_note(calibrated: bool) -> str:
    """The one line beside the probability bars saying what the percentage means."""
    if calibrated:
        return "The percentage is calibrated: answers shown at 90% are right about 9 times in 10 on test digits."
    return "This model's percentages are not calibrated: read them as a ranking of the classes, not as odds."
