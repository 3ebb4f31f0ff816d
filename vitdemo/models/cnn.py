"""A plain configurable CNN with batch norm. `forward(x, return_features=True)` also returns the last conv
stage's activations and `forward(x, return_stages=True)` every stage's, in the autograd graph (no hooks):
what Grad-CAM and the Under the hood page read."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from vitdemo.families.cnn import LEAN_HIDDEN, LEAN_KERNELS, LEAN_PADDINGS, CNNConfig, map_inputs


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True))


def lean_stage(c_in: int, c_out: int, kernel: int, padding: int) -> nn.Sequential:
    """A conv, a 2x2 max-pool, then batch norm and ReLU on the pooled quarter of the pixels."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=padding, bias=False),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(c_out),
        nn.ReLU(True),
    )


def double_stages(config: CNNConfig) -> list[nn.Module]:
    stages: list[nn.Module] = []
    c_in = config.in_chans
    for i in range(config.depth):
        c_out = config.width * 2**i
        stages.append(nn.Sequential(conv_bn_relu(c_in, c_out), conv_bn_relu(c_out, c_out)))
        c_in = c_out
    return stages


def lean_stages(config: CNNConfig) -> list[nn.Module]:
    widths = [config.in_chans] + [config.width * 2**i for i in range(config.depth)]
    return [lean_stage(widths[i], widths[i + 1], LEAN_KERNELS[i], LEAN_PADDINGS[i]) for i in range(config.depth)]


class CNN(nn.Module):
    """`depth` stages, widths doubling; "double": [conv-bn-relu x2, maxpool 2] and a flatten + linear head;
    "lean": [conv, maxpool 2, bn, relu], a neck (flatten + a hidden layer) and a linear head (vitdemo.families.cnn).
    The head is the final linear layer alone in both, so a linear probe and a warm start treat them alike."""

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        lean = config.design == "lean"
        self.stages = nn.ModuleList(lean_stages(config) if lean else double_stages(config))
        self.pool = nn.Identity() if lean else nn.MaxPool2d(2)  # between stages, before the head; lean pools itself
        # Flatten rather than global-average-pool: position matters for digits and it trains much faster.
        n, classes = map_inputs(config), config.num_classes  # 32 x 7 x 7 for the default; 32 x 5 x 5 lean
        # (B, C, h, w) -> (B, LEAN_HIDDEN) for lean; nothing for double (its head flattens)
        self.neck = nn.Sequential(nn.Flatten(), nn.Linear(n, LEAN_HIDDEN), nn.ReLU(True)) if lean else nn.Identity()
        self.head = nn.Sequential(  # its keys are the same as before the lean design: old checkpoints load
            nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(LEAN_HIDDEN if lean else n, classes)
        )

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's activations: a double stage's before its pooling, (B, width * 2**i, 28 / 2**i, 28 / 2**i),
        so 28x28, 14x14 and 7x7 for three stages on 28x28 inputs; a lean stage's after it, 12x12, 5x5 and 2x2
        (vitdemo.families.cnn.stage_sides)."""
        acts = [self.stages[0](x)]  # (B, width, s_0, s_0)
        for stage in self.stages[1:]:
            acts.append(stage(self.pool(acts[-1])))  # (B, width * 2**i, s_i, s_i)
        return acts

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's activations (B, width * 2**(depth-1), h, w), as `forward_stages` gives them."""
        return self.forward_stages(x)[-1]

    def forward(
        self, x: torch.Tensor, return_features: bool = False, return_stages: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, C, H, W) -> logits (B, num_classes). With `return_features`, also the last stage's activations
        (B, K, h, w); with `return_stages`, the list of every stage's (see `forward_stages`). Both stay in the
        autograd graph (as the ViT returns its attention with `return_attn`)."""
        stages = self.forward_stages(x)
        logits = self.head(self.neck(self.pool(stages[-1])))  # (B, num_classes)
        if return_stages:
            return logits, stages
        return (logits, stages[-1]) if return_features else logits


def fold_batch_norm(cnn: CNN) -> CNN:
    """A copy of `cnn` for inference with each batch norm folded into the conv before it (torch's own
    `fuse_conv_bn_eval`): the same function as `cnn` in eval mode, in fewer passes over the activations (integrated
    gradients on the Draw page runs a batch of path images through it forward and backward). `cnn` is unchanged.
    A lean CNN is copied as it is."""
    folded = copy.deepcopy(cnn).eval()
    if cnn.config.design == "lean":  # its norms follow a max-pool, which a negative scale would not commute with
        return folded
    for stage in folded.stages:
        for block in stage:  # conv_bn_relu: Sequential(conv, bn, relu)
            block[0] = fuse_conv_bn_eval(block[0], block[1])
            block[1] = nn.Identity()
    return folded


def fast_inference_copy(cnn: CNN) -> CNN:
    """`fold_batch_norm` (a lean CNN: a copy as it is) with channels-last weights: on a CPU (AVX2, one thread) the
    shipped CNN reads the test set 1.7x faster (3.1 s -> 1.75 s for 2,000 images) and the Draw page's integrated
    gradients take 15% less time."""
    return fold_batch_norm(cnn).to(memory_format=torch.channels_last)
