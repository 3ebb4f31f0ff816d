"""Tiny models with known explanations, shared by the explanation tests (no pytest here: test modules import
it, conftest puts tests/ on sys.path)."""

from __future__ import annotations

import torch
from torch import nn


class LinearOnPixels(nn.Module):
    """logit_c = w_c * sum(A) with A = the input itself, so Grad-CAM is relu(w_c * x) by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([2.0, -1.0]))

    def forward(self, x: torch.Tensor, return_features: bool = False):
        acts = x * 1.0  # (B, 1, H, W): the "last stage" is the input itself (as a node of the graph)
        logits = acts.sum((1, 2, 3))[:, None] * self.w  # (B, 2)
        return (logits, acts) if return_features else logits
