"""What a run will cost, as the Train page says it: parameters, steps and memory (float32 training), and what a
scikit-learn run will do. Pure Python; the figures come from vitdemo.runs.admission (the queue needs them too).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from vitdemo.runconfig import ClassicRun
from vitdemo.runs.admission import Estimate, train_images
from vitdemo.runs.store import Run
from vitdemo.units import human_bytes, rough_duration
from vitdemo.views.charts import progress_of, queue_order

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


# -- when a queued run will start -----------------------------------------------------------------------------
def expected_starts(
    runs: Sequence[Run], seconds: Mapping[int, float | None], slots: Mapping[str, int] | None = None
) -> dict[int, float | None]:
    """Queued run id -> seconds until it is expected to start (0: next, as soon as a slot is free), from the
    estimates of the runs ahead of it on its device (`seconds`: run id -> its whole estimated time; a running run
    counts only what is left of it, `time_left`). `slots`: runs a device trains at once (default 1, as on a
    CPU). The same order the workers take them (`queue_order`); None when a run ahead has no estimate."""
    starts: dict[int, float | None] = {}
    free: dict[str, list[float]] = {}  # device -> a heap of the times (s from now) its slots come free
    unknown: set[str] = set()  # devices with a run ahead whose time nobody knows
    for r in queue_order(runs):
        device = r.device or "cpu"
        heap = free.setdefault(device, [0.0] * max(1, (slots or {}).get(device, 1)))
        total = seconds.get(r.id)
        if r.status == "queued" and device in unknown:
            starts[r.id] = None
            continue
        start = heapq.heappop(heap) if heap else 0.0  # a running run holds a slot from now
        if r.status == "queued":
            starts[r.id], left = start, total
        else:
            left = time_left(r, total)
        if left is None:
            unknown.add(device)
        else:
            heapq.heappush(heap, start + left)
    return starts


def time_left(run: Run, total: float | None) -> float | None:
    """Seconds a running run still needs: its trainer's own figure while it trains ('eta_s', plus the test pass
    that follows it), else the part of `total` its progress has not done."""
    eta = (run.progress or {}).get("eta_s")
    if isinstance(eta, int | float) and eta > 0:
        return float(eta)
    return None if total is None else total * (1.0 - progress_of(run)[0])


def start_text(wait: float | None) -> str:
    """'next' or 'in about 3 min' ('-' when it cannot be told)."""
    if wait is None:
        return "-"
    return "next" if wait < 1 else f"in about {rough_duration(wait)}"
