"""Few labels: a seeded, class-balanced label budget.

A run with `TrainConfig.labels` trains on such a subset (vitdemo.training.loop.labelled_split), starting from a pretrained
encoder with `TrainConfig.init` and, for a linear probe, `TrainConfig.probe`: pretrained and from-scratch models
go through the same trainer and the same scoring, which keeps the comparison fair.
"""

from __future__ import annotations

import torch

from vitdemo.config import ConfigError

LABEL_BUDGETS = (100, 600, 6000, 0)  # 0 = every label


def label_budget(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of `n` labelled examples, as equal per class as possible; seeded. n <= 0 or >= len: all of them.

    labels: (N,) int64. Returns (n,) int64 indices in a seeded random order. With n = 100 and 10 classes:
    10 of each; a remainder goes to randomly chosen classes, one extra each.
    """
    labels = labels.cpu()
    if n <= 0 or n >= len(labels):
        return torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(seed)
    classes = labels.unique()  # sorted
    quota = torch.full((len(classes),), n // len(classes), dtype=torch.int64)
    quota[torch.randperm(len(classes), generator=gen)[: n % len(classes)]] += 1
    picked = []
    for c, k in zip(classes.tolist(), quota.tolist(), strict=True):
        members = (labels == c).nonzero().squeeze(1)  # (N_c,)
        if k > len(members):
            raise ConfigError(f"class {c} has only {len(members)} examples, fewer than the {k} asked for")
        picked.append(members[torch.randperm(len(members), generator=gen)[:k]])
    chosen = torch.cat(picked)
    return chosen[torch.randperm(len(chosen), generator=gen)]
