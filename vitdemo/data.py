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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

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


RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DATA_COMMAND = "python -m vitdemo data"  # downloads what is missing; with --check, says what is where


class DataError(RuntimeError):
    """The dataset could not be found or downloaded; the message says where we looked and what to do."""


class MissingData(DataError):
    """A dataset's files are not in the data folder (and could not be downloaded). The message names the folder,
    for a terminal; `dataset`, `folder` ('MNIST') and `missing` (file names) let a page say it without the server's
    path (vitdemo.views.messages.data_missing_text)."""

    def __init__(self, message: str, dataset: str, missing: tuple[str, ...]) -> None:
        super().__init__(message)
        self.dataset = dataset
        self.folder = DATASET_INFO[dataset][1]
        self.missing = missing


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


def raw_dir(dataset: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Where a dataset's four *-ubyte files go: <data root>/MNIST/raw (torchvision's layout)."""
    if dataset not in DATASET_INFO:
        raise DataError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASET_INFO)}")
    return data_root(data_dir) / DATASET_INFO[dataset][1] / "raw"


def missing_files(dataset: str, data_dir: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The dataset's *-ubyte files (RAW_FILES) not in raw_dir; () when it is all there. Reads no file."""
    folder = raw_dir(dataset, data_dir)
    return tuple(name for name in RAW_FILES if not (folder / name).is_file())


def missing_error(dataset: str, data_dir: str | os.PathLike | None = None, why: str = "") -> MissingData:
    """The error for a dataset that is not there: the folder, the files and the command (a terminal's message)."""
    folder, missing = raw_dir(dataset, data_dir), missing_files(dataset, data_dir)
    because = f" and could not be downloaded ({why})" if why else ""
    return MissingData(
        f"{DATASET_INFO[dataset][0]} was not found in {folder}{because}. Put the four *-ubyte files "
        f"({', '.join(RAW_FILES)}) there, run `{DATA_COMMAND}` where there is internet, or point --data-dir or "
        f"${ENV_DATA_DIR} at a folder that holds {DATASET_INFO[dataset][1]}/raw/.",
        dataset,
        missing or RAW_FILES,
    )


def download(dataset: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Fetch the dataset's missing files with torchvision into raw_dir (nothing when all four are there); raises
    MissingData when they cannot be fetched (no network, no permission, a broken mirror). Returns raw_dir."""
    import torchvision.datasets as tvd

    folder = raw_dir(dataset, data_dir)
    if missing_files(dataset, data_dir):
        try:
            getattr(tvd, DATASET_INFO[dataset][0])(str(data_root(data_dir)), train=True, download=True)
        except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError... per mirror and version
            raise missing_error(dataset, data_dir, _short_reason(exc)) from exc
        if missing_files(dataset, data_dir):
            raise missing_error(dataset, data_dir, "the download left files out")
    return folder


def _short_reason(exc: BaseException) -> str:
    """'RuntimeError: Error downloading train-images-idx3-ubyte.gz', cut to one short line."""
    text = " ".join(str(exc).split())
    if len(text) > 160:
        text = text[:160].rsplit(" ", 1)[0] + " …"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# (dataset, train) -> the split, for a training that was handed its data rather than a folder (a Ray task gets
# the images from the cluster's object store: vitdemo.runs.ray_exec); a context variable, so it holds only
# inside `provided_splits` and only for the code it wraps
_PROVIDED: ContextVar[Mapping[tuple[str, bool], Split] | None] = ContextVar("vitdemo_provided_splits", default=None)


@contextmanager
def provided_splits(splits: Mapping[tuple[str, bool], Split]) -> Iterator[None]:
    """While it lasts, `load_raw(dataset, train)` returns `splits[(dataset, train)]` where there is one."""
    token = _PROVIDED.set(dict(splits))
    try:
        yield
    finally:
        _PROVIDED.reset(token)


IDX_UBYTE = 0x08  # the IDX type code of unsigned bytes, MNIST's


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (0, 0, 0x08, the number of dimensions, each a big-endian int32, then the
    bytes in C order) as a uint8 array; ValueError for anything else. What torchvision's MNIST class reads, read
    here: importing torchvision costs the first page that needs a test split seconds (it pulls in torch._dynamo)."""
    data = path.read_bytes()
    if len(data) < 4 + 4 * ndim or data[:4] != bytes([0, 0, IDX_UBYTE, ndim]):
        raise ValueError(f"{path.name} is not an IDX file of unsigned bytes with {ndim} dimensions")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(shape):
        raise ValueError(f"{path.name} holds {body.size:,} values, not the {math.prod(shape):,} its header says")
    return body.reshape(shape)


def load_raw(dataset: str, train: bool, data_dir: str | os.PathLike | None = None) -> Split:
    """One split as uint8 tensors (images (N, 28, 28), labels (N,) int64), read from the *-ubyte files as
    torchvision lays them out; downloads only when the files are missing (a split handed over with
    `provided_splits` is returned as it is)."""
    import torch

    given = (_PROVIDED.get() or {}).get((dataset, train))
    if given is not None:
        return given
    folder = raw_dir(dataset, data_dir)
    if missing_files(dataset, data_dir):
        download(dataset, data_dir)
    prefix = "train" if train else "t10k"
    try:
        images = read_idx(folder / f"{prefix}-images-idx3-ubyte", 3)  # (N, 28, 28)
        labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte", 1)  # (N,)
        if len(images) != len(labels) or images.shape[1:] != (28, 28):
            raise ValueError(f"{len(images):,} images of {images.shape[1:]} pixels but {len(labels):,} labels")
    except (OSError, ValueError) as exc:  # the files are there but cannot be read
        raise DataError(f"{DATASET_INFO[dataset][0]} in {folder} cannot be read ({exc})") from exc
    return Split(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)))


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
