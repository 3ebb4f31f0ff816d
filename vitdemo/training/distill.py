"""A ViT that learns from a CNN: DeiT's hard-label distillation (Touvron et al. 2021, "Training data-efficient image
transformers & distillation through attention"; facebookresearch/deit `losses.py`, `DistillationLoss` with
distillation_type "hard").

The ViT has a second token and head (vitdemo.models.vit); in every training step the frozen CNN teacher reads the
same augmented batch on the same device, and the loss is

    0.5 * CE(class head, true labels, label smoothing) + 0.5 * CE(distillation head, the teacher's argmax)

At test time the two heads are averaged. Why it helps a small ViT on few images: the CNN brings the locality
(nearby pixels belong together) that a ViT must otherwise learn from data; its answers, right or wrong, are a
second, smoother target that a ViT reaches sooner. The teacher is `ViTConfig.teacher`: "shipped" (the shipped CNN
of the run's dataset) or a CNN checkpoint file; its identity goes into the student's checkpoint header.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitdemo.config import ConfigError, TrainConfig
from vitdemo.families.vit import SHIPPED_TEACHER

DISTILL_WEIGHT = 0.5  # DeiT's hard distillation: the two heads' losses weigh the same
TEACHER_KINDS = ("cnn",)  # the locality the ViT lacks; a ViT teacher would bring nothing new


def teacher_of(config: TrainConfig) -> str:
    """The run's teacher setting ('' when its model has none: every family but the ViT)."""
    return str(getattr(config.model, "teacher", "") or "")


def teacher_path(teacher: str, dataset: str) -> Path:
    """'shipped' -> the shipped CNN of `dataset` (vitdemo.paths); else the checkpoint file as given."""
    if teacher == SHIPPED_TEACHER:
        from vitdemo.paths import shipped_dir

        return shipped_dir() / f"cnn_{dataset}.safetensors"
    return Path(teacher)


def missing_teacher(config: TrainConfig) -> str | None:
    """The run's teacher file when this machine lacks it, as one sentence; None without a teacher or with its
    file here. Checked when a run is queued (a student hears it at once, not from a failed run) and again by
    the trainer."""
    teacher = teacher_of(config)
    path = teacher_path(teacher, config.dataset) if teacher else None
    return None if path is None or path.is_file() else f"the teacher checkpoint {path.name} was not found"


def load_teacher(config: TrainConfig, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """The frozen teacher network on `device`, in eval mode (on a CPU its folded, channels-last copy: a step of a
    distilled ViT reads the teacher every batch), and its identity for the checkpoint header. A teacher
    that is missing, not a CNN, of another dataset or normalised otherwise is a ConfigError (one sentence)."""
    from vitdemo.checkpoints import CheckpointError, load_checkpoint
    from vitdemo.data import normalization

    if problem := missing_teacher(config):
        raise ConfigError(problem)
    path = teacher_path(teacher_of(config), config.dataset)
    try:
        loaded = load_checkpoint(path)
    except (CheckpointError, OSError, ValueError) as exc:
        raise ConfigError(f"the teacher {path.name} cannot be used: {exc}") from None
    meta = loaded.meta
    if meta.model_config.kind not in TEACHER_KINDS:
        raise ConfigError(f"the teacher must be a CNN; {path.name} holds a {meta.model_config.kind} model")
    if meta.dataset != config.dataset or (meta.mean, meta.std) != normalization(config.dataset):
        raise ConfigError(f"the teacher {path.name} was trained on {meta.dataset}, this run on {config.dataset}")
    teacher = loaded.model.to(device).eval().requires_grad_(False)
    if device.type == "cpu":
        from vitdemo.models.cnn import fast_inference_copy

        # folded batch norm, channels-last weights: the same answers in fewer ms (vitdemo.models.cnn)
        teacher = fast_inference_copy(teacher).requires_grad_(False)
    return teacher, teacher_identity(path, meta.name, meta.metrics, config.model.teacher)  # type: ignore[attr-defined]


def teacher_identity(path: Path, name: str, metrics: dict[str, Any], setting: str) -> dict[str, Any]:
    """What the student's checkpoint header says of its teacher: the setting, the file, its content hash, the
    teacher's run name and its test accuracy."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    test = metrics.get("test_acc")
    return {"setting": setting, "file": path.name, "sha256": digest, "name": name, "test_acc": test}


def distillation_loss(
    logits: Tensor, dist_logits: Tensor, labels: Tensor, teacher_logits: Tensor, label_smoothing: float
) -> Tensor:
    """DeiT's hard distillation: (B, C) class-head and distillation-head logits, (B,) labels, (B, C) teacher
    logits -> () loss. The teacher's argmax is a hard label: no temperature to tune."""
    base = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    hard = F.cross_entropy(dist_logits.float(), teacher_logits.argmax(dim=1))  # (B,) teacher's answers
    return (1 - DISTILL_WEIGHT) * base + DISTILL_WEIGHT * hard
