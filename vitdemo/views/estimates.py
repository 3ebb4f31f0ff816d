"""What a run will cost, as the Train page says it: parameters, steps and memory (float32 training), and what a
scikit-learn run will do. Pure Python; the figures come from vitdemo.runs.admission (the queue needs them too).
"""

from __future__ import annotations

from vitdemo.runconfig import ClassicRun
from vitdemo.runs.admission import Estimate, train_images
from vitdemo.units import human_bytes

CLASSIC_NAMES = {"logreg": "Logistic regression", "knn": "k nearest neighbours", "svm": "SVM (on PCA features)",
                 "forest": "Random forest"}  # fmt: skip


def estimate_lines(est: Estimate) -> list[str]:
    """The estimate as short lines for the page."""
    return [
        f"{est.num_params:,} parameters",
        f"{est.train_images:,} training images · {est.steps_per_epoch:,} steps per epoch · {est.total_steps:,} in all",
        f"about {human_bytes(est.total_bytes)} of memory while training "
        f"(weights and optimizer {human_bytes(est.weights_bytes)}, one batch's activations "
        f"{human_bytes(est.activations_bytes)}, the dataset {human_bytes(est.data_bytes)})",
    ]


def classic_lines(config: ClassicRun) -> list[str]:
    """What a scikit-learn run will do, for the page (it has no steps or epochs)."""
    images = train_images(config)
    return [
        f"{CLASSIC_NAMES[config.model.kind]} fitted once on {images:,} training images, on the CPU",
        "then scored on the 10,000 test images like every other run",
    ]
