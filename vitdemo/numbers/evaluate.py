"""Scoring a reader on fixed numbers: whole-number accuracy (every digit right), character error rate, accuracy
by length, the most common mistakes and the misread numbers; for the detector also COCO mAP@0.5 and
mAP@0.5:0.95 (torchmetrics' MeanAveragePrecision on the maintained faster-coco-eval backend, not a home-made
matcher), and its score as a single-digit classifier on MNIST's t10k digits placed on the canvas."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from vitdemo.data import Split
from vitdemo.numbers.read import Reading, read_batch, to_input
from vitdemo.numbers.synth import Numbers, render_numbers

MISREAD_KEPT = 60  # misread numbers kept for the gallery


@dataclass(frozen=True)
class ReaderReport:
    n: int
    accuracy: float  # whole numbers read exactly
    cer: float  # character error rate: edit distance over the true digits
    by_length: dict[int, float]  # length -> whole-number accuracy
    mistakes: list[tuple[str, int]]  # the commonest edits: "7 -> 1", "missed 3", "extra 1", with counts
    misread: list[tuple[int, str, str]] = field(default_factory=list)  # (index, truth, read), the first ones
    map50: float | None = None  # detector only
    map: float | None = None  # mAP@0.5:0.95
    seconds: float = 0.0  # reading time of the whole set

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["by_length"] = {str(k): v for k, v in self.by_length.items()}
        return d


def edits(truth: str, read: str) -> list[str]:
    """The edits that turn `truth` into `read` (Levenshtein, with its backtrace): '7 -> 1', 'missed 3', 'extra 1'.
    Written by hand: 9 characters at most, and the names of the edits are what a teacher reads."""
    n, m = len(truth), len(read)
    d = [[i + j if i * j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (truth[i - 1] != read[j - 1]))
    out, i, j = [], n, m
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (truth[i - 1] != read[j - 1]):
            if truth[i - 1] != read[j - 1]:
                out.append(f"{truth[i - 1]} -> {read[j - 1]}")
            i, j = i - 1, j - 1
        elif i and d[i][j] == d[i - 1][j] + 1:
            out.append(f"missed {truth[i - 1]}")
            i -= 1
        else:
            out.append(f"extra {read[j - 1]}")
            j -= 1
    return out[::-1]


def score_texts(truths: list[str], reads: list[str], top: int = 10) -> ReaderReport:
    """Whole-number accuracy, CER, accuracy by length and the commonest edits of `reads` against `truths`."""
    n = len(truths)
    right = [t == r for t, r in zip(truths, reads, strict=True)]
    all_edits = [edits(t, r) for t, r in zip(truths, reads, strict=True)]
    chars = sum(len(t) for t in truths)
    by_len: dict[int, list[bool]] = {}
    for t, ok in zip(truths, right, strict=True):
        by_len.setdefault(len(t), []).append(ok)
    misread = [(i, t, r) for i, (t, r, ok) in enumerate(zip(truths, reads, right, strict=True)) if not ok]
    return ReaderReport(
        n=n,
        accuracy=sum(right) / max(n, 1),
        cer=sum(len(e) for e in all_edits) / max(chars, 1),
        by_length={k: sum(v) / len(v) for k, v in sorted(by_len.items())},
        mistakes=Counter(e for es in all_edits for e in es).most_common(top),
        misread=misread[:MISREAD_KEPT],
    )


@torch.no_grad()
def detect_and_map(
    model: nn.Module, x: torch.Tensor, numbers: Numbers, batch_size: int = 128
) -> tuple[list[Reading], float, float]:
    """One pass of the detector: its readings, and COCO mAP@0.5 and mAP@0.5:0.95 of its raw detections (every
    box torchvision keeps, scored, before the reading's threshold)."""
    from torchmetrics.detection import MeanAveragePrecision

    from vitdemo.numbers.read import box_reading, kept_boxes

    metric = MeanAveragePrecision(iou_type="bbox", backend="faster_coco_eval")
    readings: list[Reading] = []
    for i in range(0, len(x), batch_size):
        preds = [{k: v.cpu() for k, v in p.items()} for p in model(x[i : i + batch_size])]
        readings += [box_reading(kept_boxes(p, model.config.score_threshold)) for p in preds]
        part = numbers.subset(slice(i, i + batch_size))
        target = [
            {"boxes": b[: int(n)].cpu(), "labels": d[: int(n)].cpu() + 1}
            for d, n, b in zip(part.digits, part.lengths, part.boxes, strict=True)
        ]
        metric.update(preds, target)
    result = metric.compute()
    return readings, float(result["map_50"]), float(result["map"])


def evaluate_reader(model: nn.Module, numbers: Numbers, device: torch.device | str = "cpu") -> ReaderReport:
    """Read every number (greedy for the captioner) and score it; the detector's mAP too."""
    model = model.to(device).eval()
    x = to_input(numbers.images).to(device)  # (N, 1, H, W)
    start, extra = time.perf_counter(), {}
    if model.config.kind == "detector":
        readings, extra["map50"], extra["map"] = detect_and_map(model, x, numbers.to(device))
    else:
        readings = read_batch(model, x)
    extra["seconds"] = time.perf_counter() - start
    report = score_texts(numbers.texts(), [r.text for r in readings])
    return ReaderReport(**{**asdict(report), **extra})


def single_digits(split: Split, seed: int = 0) -> Numbers:
    """Every image of `split` once, alone on the canvas at MNIST's size (a 1-digit number, no slant)."""
    from vitdemo.numbers.synth import NumberStyle

    style = NumberStyle(min_digits=1, max_digits=1, scale=(1.0, 1.0), digit_scale=0.0, slant=(0.0, 0.0),
                        digit_slant=0.0, baseline_px=0.0)  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    return render_numbers(split, torch.ones(len(split), dtype=torch.long), g, style, order=torch.arange(len(split)))


@torch.no_grad()
def detector_as_classifier(model: nn.Module, split: Split, batch_size: int = 200) -> dict[str, float]:
    """The detector as a single-digit classifier on `split` (t10k): the top box's label is the answer (no box:
    wrong). Accuracy, macro F1 and a test loss: the cross-entropy of each class's best box score, normalised
    over the classes (a detector has no softmax over one image; this is the nearest honest loss)."""
    from vitdemo.metrics import evaluate_predictions

    numbers = single_digits(split)
    x = to_input(numbers.images)
    model = model.cpu().eval()
    probs, start = [], time.perf_counter()
    for i in range(0, len(x), batch_size):
        for det in model(x[i : i + batch_size]):
            best = torch.zeros(10).scatter_reduce_(0, det["labels"] - 1, det["scores"], "amax")  # (10,)
            probs.append(best)
    seconds = time.perf_counter() - start
    p = torch.stack(probs)  # (N, 10)
    answer = torch.where(p.amax(1) > 0, p.argmax(1), -1)
    labels = split.labels
    loss = -torch.log((p / p.sum(1, keepdim=True).clamp(min=1e-8)).gather(1, labels[:, None]).clamp(min=1e-6))
    report = evaluate_predictions(labels.numpy(), answer.clamp(min=0).numpy(), 10)
    acc = float((answer == labels).float().mean())
    return {"accuracy": acc, "macro_f1": float(report.macro_f1), "loss": float(loss.mean()), "seconds": seconds}
