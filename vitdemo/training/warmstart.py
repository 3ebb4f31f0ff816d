"""Where a run's weights start when its config names a checkpoint (`TrainConfig.init`): a pretrained encoder's
body, or a trained classifier to fine-tune (its head too when it was trained on the same dataset)."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from vitdemo.checkpoints import CheckpointError, load_checkpoint
from vitdemo.models import is_head_key
from vitdemo.runconfig import ENCODER_TAG


def init_from_checkpoint(model: nn.Module, path: str | os.PathLike, *, dataset: str | None = None) -> list[str]:
    """Copy every tensor outside `model`'s head from the checkpoint at `path`; the head keeps its new weights,
    unless the checkpoint is a trained classifier (not a pretrained encoder) of `dataset` with a head of the
    same shape: then its head is copied too (a fine-tune of the shipped CNN on drawn digits starts from a model
    that is right 99.6% of the time, not from a random head that first has to relearn the ten classes).

    The checkpoint must hold the same kind of model, with every such tensor at the same shape (its own head may
    differ: another dataset, a pretrained encoder's untrained head). Returns the names copied.
    """
    loaded = load_checkpoint(path)
    name, kind = Path(path).name, getattr(getattr(model, "config", None), "kind", "")
    if loaded.kind != kind:
        raise CheckpointError(f"init checkpoint {name} holds a {loaded.kind} model, not a {kind}")
    source = loaded.model.state_dict()
    body = {k: v for k, v in model.state_dict().items() if not is_head_key(k)}
    if not body:
        raise CheckpointError(f"a {kind} model has no weights outside its head: init {name} has nothing to give")
    for key, tensor in body.items():
        if key not in source or source[key].shape != tensor.shape:
            there = list(source[key].shape) if key in source else "missing"
            raise CheckpointError(
                f"init checkpoint {name} does not fit this model: tensor {key!r} is {there} there, "
                f"{list(tensor.shape)} here"
            )
    keep_head = dataset is not None and loaded.meta.dataset == dataset and not loaded.meta.metrics.get(ENCODER_TAG)
    head = {k: v for k, v in model.state_dict().items() if is_head_key(k)}
    if keep_head and all(k in source and source[k].shape == v.shape for k, v in head.items()):
        body |= head
    model.load_state_dict({k: source[k] for k in body}, strict=False)
    return list(body)
