"""The class set as data: an evaluation split any run can be scored on, and frozen snapshots a training run adds
to MNIST's training images (`TrainConfig.extra_data`).

`as_split` reads the stored 28x28 inputs (uint8, ink 255 on 0: what the models saw before normalisation), so
`vitdemo.evaluate.score_checkpoint(loaded, split)` normalises them with the checkpoint's own statistics exactly
as it does MNIST's test split.

A run that trains on the class set must be reproducible although students keep adding (and the teacher deleting)
drawings, so it never reads the live set: `freeze` copies the set into `<home>/classset/snapshots/` as one
`.npz` of plain arrays (read back with `allow_pickle=False`), named by a hash of its content, and the run's
config names that file (`freeze_config`). `with_class_set` appends the snapshot's images, each `repeat` times, to
the training split; the validation and test splits stay MNIST's.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vitdemo.classset.store import ClassSet
from vitdemo.config import CLASS_SET, ConfigError, TrainConfig
from vitdemo.data import Split
from vitdemo.training.snapshot import Snapshot, check_repeat, snapshot_digest, split_of

SNAPSHOTS = "snapshots"  # under <home>/classset/
DEFAULT_REPEAT = 20  # each class drawing is seen this often per epoch: 300 drawings -> 6,000 of ~61,000 images


class ClassSetEmpty(ConfigError):
    """A run asks for the class set but it holds no drawing of the run's dataset."""


@dataclass(frozen=True)
class ClassSplit:
    """The class set of one dataset as a split, with the submission each image came from."""

    split: Split  # images (N, 28, 28) uint8, labels (N,) int64
    ids: np.ndarray  # (N,) int64 submission ids, newest first
    missing: int = 0  # submissions whose input file could not be read (left out)

    def __len__(self) -> int:
        return len(self.split)


def _arrays(store: ClassSet, dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(images (N, 28, 28) uint8, labels (N,) int64, ids (N,) int64, how many were unreadable)."""
    images, labels, ids, missing = [], [], [], 0
    for sub in store.list(dataset):
        try:
            images.append(store.input_image(sub))
        except (OSError, ValueError):  # deleted by hand, or damaged: the rest of the set still counts
            missing += 1
            continue
        labels.append(sub.label)
        ids.append(sub.id)
    stacked = np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)
    return stacked, np.asarray(labels, np.int64), np.asarray(ids, np.int64), missing


def as_split(store: ClassSet, dataset: str = "mnist") -> ClassSplit:
    """The class set's drawings of `dataset` as an evaluation split (empty when there are none)."""
    images, labels, ids, missing = _arrays(store, dataset)
    return ClassSplit(split_of(images, labels), ids, missing)


def freeze(store: ClassSet, dataset: str = "mnist", repeat: int = DEFAULT_REPEAT) -> Path:
    """Copy the class set's `dataset` drawings as they are now into a snapshot file; returns its absolute path.
    The same content gives the same file (written once, atomically). ClassSetEmpty when there is no drawing."""
    check_repeat(repeat)
    images, labels, ids, _ = _arrays(store, dataset)
    if not len(labels):
        raise ClassSetEmpty(
            f"The class set has no {dataset} drawings yet: submit some on the Draw page before training on it."
        )
    snap = Snapshot(images, labels, ids, repeat, dataset)
    folder = store.folder / SNAPSHOTS
    path = (folder / f"class-{dataset}-{snapshot_digest(snap)}.npz").resolve()
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, images=images, labels=labels, ids=ids, repeat=np.int64(repeat), dataset=np.str_(dataset))
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return path


def freeze_config(
    config: TrainConfig, home: str | os.PathLike | None = None, repeat: int = DEFAULT_REPEAT
) -> TrainConfig:
    """`config` with `extra_data="class"` replaced by the path of a snapshot of the set as it is now (with
    `repeat`): call it when a run is submitted, so the run trains on exactly the drawings it was started with.
    Other configs come back unchanged. ClassSetEmpty when the set has no drawing of the run's dataset."""
    if config.extra_data != CLASS_SET:
        return config
    path = freeze(ClassSet(home), config.dataset, repeat)
    return dataclasses.replace(config, extra_data=str(path))
