"""Datasets as uint8 tensors, seeded splits and device-resident batches.

No DataLoader and no workers: the whole dataset is one tensor on the training device, batches are
index slices of a seeded permutation, and augmentation runs on whole batches (cifar10-airbench style:
vitdemo.training.augment).

The datasets' statistics and class names (`DATASET_INFO`, `normalization`, `class_names`) are the one
source for every module; importing this module does not import torch (each function that needs it does),
so `vitdemo.preprocess.pipeline` reads them and stays numpy + Pillow.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vitdemo.paths import ENV_DATA_DIR, data_root

if TYPE_CHECKING:
    import torch

# name -> (torchvision class name, folder under the root, mean, std, class names)
DATASET_INFO: dict[str, tuple[str, str, float, float, tuple[str, ...]]] = {
    "mnist": ("MNIST", "MNIST", 0.1307, 0.3081, tuple(str(i) for i in range(10))),
    "fashion": (
        "FashionMNIST",
        "FashionMNIST",
        0.2860,
        0.3530,
        ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"),
    ),
}


class DataError(RuntimeError):
    """The dataset could not be found or downloaded; the message says where we looked and what to do."""


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # (N, 28, 28) uint8
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device | str) -> Split:
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class DatasetSplits:
    name: str
    train: Split
    val: Split
    test: Split
    mean: float
    std: float
    classes: tuple[str, ...]


def normalization(dataset: str) -> tuple[float, float]:
    _, _, mean, std, _ = DATASET_INFO[dataset]
    return mean, std


def class_names(dataset: str) -> tuple[str, ...]:
    return DATASET_INFO[dataset][4]


def load_raw(dataset: str, train: bool, data_dir: str | os.PathLike | None = None) -> Split:
    """One split as uint8 tensors, read with torchvision; downloads only when the files are missing."""
    import torch
    import torchvision.datasets as tvd  # imported here: the app's Draw page does not need it

    if dataset not in DATASET_INFO:
        raise DataError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASET_INFO)}")
    cls_name, folder, *_ = DATASET_INFO[dataset]
    root = data_root(data_dir)
    cls = getattr(tvd, cls_name)
    try:
        ds = cls(str(root), train=train, download=False)
    except RuntimeError:
        try:
            ds = cls(str(root), train=train, download=True)
        except Exception as exc:  # no network, no permission, a broken mirror...
            raise DataError(
                f"{cls_name} was not found in {root / folder / 'raw'} and could not be downloaded "
                f"({type(exc).__name__}: {exc}). Put the four *-ubyte files there, or point "
                f"--data-dir or ${ENV_DATA_DIR} at a folder that holds {folder}/raw/."
            ) from exc
    return Split(ds.data.to(torch.uint8).contiguous(), ds.targets.to(torch.int64).contiguous())


def load_dataset(
    dataset: str,
    data_dir: str | os.PathLike | None = None,
    *,
    val_size: int = 5000,
    seed: int = 0,
    train_subset: int = 0,
) -> DatasetSplits:
    """Train/validation split of the 60k training images (`seed` picks the validation images) plus the
    10k test split. A training run passes its `split_seed` here (`vitdemo.training.loop.load_data`)."""
    import torch

    full = load_raw(dataset, train=True, data_dir=data_dir)
    test = load_raw(dataset, train=False, data_dir=data_dir)
    perm = torch.randperm(len(full), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:val_size], perm[val_size:]
    if train_subset:
        train_idx = train_idx[:train_subset]
    mean, std = normalization(dataset)
    return DatasetSplits(
        name=dataset,
        train=Split(full.images[train_idx], full.labels[train_idx]),
        val=Split(full.images[val_idx], full.labels[val_idx]),
        test=test,
        mean=mean,
        std=std,
        classes=class_names(dataset),
    )


def to_input(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """(B, 28, 28) uint8 -> (B, 1, 28, 28) float32, normalised."""
    return (images.unsqueeze(1).float() / 255.0 - mean) / std


def batches(
    split: Split, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Index slices of a (seeded) permutation; the last, smaller batch is kept."""
    import torch

    n = len(split)
    if shuffle:
        order = torch.randperm(n, generator=generator).to(split.images.device)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            yield split.images[idx], split.labels[idx]
    else:
        for i in range(0, n, batch_size):
            yield split.images[i : i + batch_size], split.labels[i : i + batch_size]


def num_batches(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)
