"""Where a run's weights start when its config names a checkpoint (`TrainConfig.init`): a pretrained encoder's
body, or a trained classifier to fine-tune (its head too when it was trained on the same dataset), or, for a number
reader, the layers it shares with a digit model of another kind (`BORROWS`)."""

from __future__ import annotations

import os
from pathlib import Path

from torch import Tensor, nn

from vitdemo.checkpoints import CheckpointError, load_checkpoint
from vitdemo.models import DIST_HEAD, HEAD, is_head_key
from vitdemo.runconfig import ENCODER_TAG

# A number reader may start from a digit model: (reader, digit model) -> (the reader's prefix, the digit model's).
# The detector's backbone is the double CNN's first stages (3x3 conv, batch norm, ReLU, twice a stage), the
# captioner's encoder is the house ViT's blocks: their tensors pair up in order, as far as their shapes agree.
BORROWS: dict[tuple[str, str], tuple[str, str]] = {
    ("detector", "cnn"): ("net.backbone.", "stages."),
    ("captioner", "vit"): ("blocks.", "blocks."),
}


def borrowed(target: dict[str, Tensor], source: dict[str, Tensor], into: str, frm: str) -> dict[str, Tensor]:
    """`target`'s tensors under the prefix `into` paired in order with `source`'s under `frm`, up to the first pair
    whose shapes differ (a wider layer, another kind of layer): {target key: source tensor}. The two state dicts
    list a stage's tensors in the same order (conv weight, then its batch norm's; a block's norms, attention,
    MLP), so the pairs are the same layers."""
    mine = [k for k in target if k.startswith(into)]
    theirs = [k for k in source if k.startswith(frm)]
    out: dict[str, Tensor] = {}
    for key, their_key in zip(mine, theirs, strict=False):
        if target[key].shape != source[their_key].shape:
            break
        out[key] = source[their_key]
    return out


def init_from_checkpoint(model: nn.Module, path: str | os.PathLike, *, dataset: str | None = None) -> list[str]:
    """Copy every tensor outside `model`'s head from the checkpoint at `path`; the head keeps its new weights,
    unless the checkpoint is a trained classifier (not a pretrained encoder) of `dataset` with a head of the
    same shape: then its head is copied too (a fine-tune of the shipped CNN on drawn digits starts from a model
    that is right 99.6% of the time, not from a random head that first has to relearn the ten classes).

    The checkpoint must hold the same kind of model, with every such tensor at the same shape (its own head may
    differ: another dataset, a pretrained encoder's untrained head); a number reader may also start from a digit
    model it shares layers with (`BORROWS`: the detector from a double CNN, the captioner from a ViT), and takes
    only those; a taught ViT may start from an untaught one (`as_taught`). Returns the names copied.
    """
    loaded = load_checkpoint(path)
    name, kind = Path(path).name, getattr(getattr(model, "config", None), "kind", "")
    if (kind, loaded.kind) in BORROWS:
        return _borrow(model, loaded.model.state_dict(), name, kind, *BORROWS[kind, loaded.kind])
    if loaded.kind != kind:
        raise CheckpointError(f"init checkpoint {name} holds a {loaded.kind} model, not a {kind}")
    mine = model.state_dict()
    source = as_taught(loaded.model.state_dict(), mine)
    body = {k: v for k, v in mine.items() if not is_head_key(k)}
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
    head = {k: v for k, v in mine.items() if is_head_key(k)}
    if keep_head and all(k in source and source[k].shape == v.shape for k, v in head.items()):
        body |= head
    model.load_state_dict({k: source[k] for k in body}, strict=False)
    return list(body)


def as_taught(source: dict[str, Tensor], target: dict[str, Tensor]) -> dict[str, Tensor]:
    """`source` ready for a taught ViT (`target` has DeiT's distillation token) when it comes from an untaught one:
    the distillation token starts as the class token's input (the class token plus its position) and the
    distillation head as the class head, so both heads first give the same answers, near the checkpoint's (the
    class token now also attends to its twin), and the teacher pulls from there. Any other pair is returned as it is."""
    if "dist_token" not in target or "dist_token" in source or "cls_token" not in source:
        return source
    out = dict(source, dist_token=source["cls_token"] + source["pos_embed"][:, :1])  # (1, 1, D)
    out.update({f"{DIST_HEAD}.{k[len(HEAD) + 1 :]}": v for k, v in source.items() if k.startswith(f"{HEAD}.")})
    return out


def _borrow(model: nn.Module, source: dict[str, Tensor], name: str, kind: str, into: str, frm: str) -> list[str]:
    """Copy what `borrowed` pairs into `model` (a `kind` reader) from checkpoint `name`; nothing at all is a
    CheckpointError (a lean CNN's 5x5 first conv, a ViT of another width)."""
    taken = borrowed(model.state_dict(), source, into, frm)
    if not taken:
        raise CheckpointError(f"init checkpoint {name} has no layer of the shape this {kind}'s first layers have")
    model.load_state_dict(taken, strict=False)
    return list(taken)
