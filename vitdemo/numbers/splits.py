"""The readers' fixed splits, built on the project's own digit splits (vitdemo.data.load_dataset):

- training numbers are written afresh every epoch from the 55,000 training digits only;
- validation numbers are fixed, from the 5,000 held-out digits (the same `split_seed` holds out the same ones
  as for every digit model);
- test numbers are fixed, from t10k's digits only (`test_numbers`: the evaluation, the benchmark and the app's
  "random test number" all draw from here).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vitdemo.data import Split, load_dataset, load_raw
from vitdemo.numbers.synth import CLEAN, Numbers, NumberStyle, make_numbers

VAL_SEED = 0x5A11  # the validation numbers' own stream (never a training seed)
TEST_SEED = 0x7E57  # the test numbers' own stream
VAL_NUMBERS = 500  # read after every epoch: a detector takes about a minute for these on 2 busy cores
TEST_NUMBERS = 2000  # 250 of each length 1..8


@dataclass(frozen=True)
class NumberData:
    train: Split  # (55000, 28, 28) the digits training numbers are written with
    val: Numbers  # fixed numbers from the held-out digits
    test: Numbers  # fixed numbers from t10k's digits


def load_numbers(
    data_dir: str | os.PathLike | None = None,
    *,
    val_size: int = 5000,
    split_seed: int = 0,
    train_subset: int = 0,
    val_numbers: int = VAL_NUMBERS,
    test_numbers: int = TEST_NUMBERS,
) -> NumberData:
    """The three splits of a reader's run (MNIST only: numbers are digits)."""
    digits = load_dataset("mnist", data_dir, val_size=val_size, seed=split_seed, train_subset=train_subset)
    val = make_numbers(digits.val, val_numbers, VAL_SEED) if len(digits.val) else _none(digits.test)
    return NumberData(digits.train, val, make_numbers(digits.test, test_numbers, TEST_SEED))


def _none(pool: Split) -> Numbers:
    return make_numbers(pool, 0, 0)


def test_numbers(
    data_dir: str | os.PathLike | None = None, n: int = TEST_NUMBERS, seed: int = TEST_SEED, style: NumberStyle = CLEAN
) -> Numbers:
    """`n` numbers written with t10k's digits only (the evaluation's, with the default seed)."""
    return make_numbers(load_raw("mnist", train=False, data_dir=data_dir), n, seed, style)


DRAWN_SEED = 1  # the drawn-digit generator's held-out writers (vitdemo.synth.drawn: seed 0 is the check set)


def drawn_numbers(n: int = 500, per_class: int = 30, seed: int = DRAWN_SEED) -> Numbers:
    """`n` numbers written with the project's own drawn digits (vitdemo.synth.drawn, writers of `seed`): each
    drawing goes through the app's digit preprocessing to MNIST's 28x28 form, then into numbers like MNIST's."""
    import numpy as np
    import torch

    from vitdemo.preprocess.pipeline import preprocess
    from vitdemo.synth.drawn import drawn_digits

    images, labels = [], []
    for image, label in drawn_digits(per_class, seed):
        pre = preprocess(image)
        if pre.image is not None:
            images.append(np.round(pre.image * 255).astype(np.uint8))
            labels.append(label)
    pool = Split(torch.from_numpy(np.stack(images)), torch.tensor(labels))
    return make_numbers(pool, n, seed)
