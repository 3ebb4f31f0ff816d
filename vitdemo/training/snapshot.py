"""Frozen class-set snapshots as training data: one `.npz` of plain arrays a run adds to its training images.

Only numpy, the data module and the config: the training loop reads a snapshot without the class set's store
(which `vitdemo.classset.data.freeze` writes from). Read back with `allow_pickle=False`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitdemo.config import CLASS_SET, ConfigError
from vitdemo.data import DataError, DatasetSplits, Split

NUM_LABELS = 10  # a snapshot's labels are digits (vitdemo.classset.store.NUM_LABELS)
MAX_REPEAT = 1000
SNAPSHOT_KEYS = ("images", "labels", "ids", "repeat", "dataset")


def split_of(images: np.ndarray, labels: np.ndarray) -> Split:
    import torch

    return Split(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(np.ascontiguousarray(labels)))


# -- snapshots for training -------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare with ==
class Snapshot:
    images: np.ndarray  # (N, 28, 28) uint8
    labels: np.ndarray  # (N,) int64
    ids: np.ndarray  # (N,) int64: the submissions, for the record
    repeat: int  # each image is added this many times to the training split
    dataset: str


def snapshot_digest(snap: Snapshot) -> str:
    """16 hex digits of a hash of everything training reads from a snapshot."""
    h = hashlib.sha256()
    for part in (snap.images, snap.labels):
        h.update(np.ascontiguousarray(part).tobytes())
    h.update(f"{snap.repeat}:{snap.dataset}".encode())
    return h.hexdigest()[:16]


def check_repeat(repeat: int) -> int:
    if type(repeat) is not int or not 1 <= repeat <= MAX_REPEAT:
        raise ConfigError(f"the class set's repeat must be a whole number from 1 to {MAX_REPEAT}, got {repeat!r}")
    return repeat


def load_snapshot(path: str | os.PathLike) -> Snapshot:
    """A snapshot file back, checked (DataError saying what is wrong); never unpickles."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"the class-set snapshot {path.name} was not found (in {path.parent}): it may have been removed"
        )
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in SNAPSHOT_KEYS if k in f.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"the class-set snapshot {path.name} cannot be read ({exc})") from exc
    if set(arrays) != set(SNAPSHOT_KEYS):
        raise DataError(f"{path.name} is not a class-set snapshot: it lacks {sorted(set(SNAPSHOT_KEYS) - set(arrays))}")
    images, labels = arrays["images"], arrays["labels"]
    n = len(labels)
    ok = images.dtype == np.uint8 and images.shape == (n, 28, 28) and labels.dtype == np.int64 and labels.ndim == 1
    ok = ok and n > 0 and bool(((labels >= 0) & (labels < NUM_LABELS)).all()) and arrays["ids"].shape == (n,)
    if not ok:
        raise DataError(f"the class-set snapshot {path.name} is damaged: its images or labels are not as written")
    repeat = int(arrays["repeat"])
    check_repeat(repeat)
    return Snapshot(images, labels, arrays["ids"].astype(np.int64), repeat, str(arrays["dataset"]))


def with_class_set(data: DatasetSplits, extra_data: str) -> DatasetSplits:
    """`data` with the class-set snapshot named by `extra_data` appended (each image `repeat` times) to its
    training split (vitdemo.training.loop.load_data). The live set ("class") is frozen when the run is submitted
    (vitdemo.classset.data.freeze_config): a run never reads drawings added after it started."""
    if extra_data == CLASS_SET:
        raise DataError("the class set must be frozen into a snapshot when the run is submitted (freeze_config)")
    snap = load_snapshot(extra_data)
    if snap.dataset != data.name:
        raise DataError(f"the class-set snapshot holds {snap.dataset} drawings, but this run trains on {data.name}")
    import torch

    extra = split_of(np.repeat(snap.images, snap.repeat, axis=0), np.repeat(snap.labels, snap.repeat))
    train = Split(torch.cat([data.train.images, extra.images]), torch.cat([data.train.labels, extra.labels]))
    return dataclasses.replace(data, train=train)
