"""When does each model make up its mind? A logit lens over the layers (nostalgebraist 2020, for a ViT: the class
token read through the model's own final norm and head after every block) and, for a CNN, small linear probes
after every stage (Alain & Bengio 2016): the answer each layer would give if the network stopped there.

Pure functions over tensors; the probes are fitted once per checkpoint on MNIST training images (the page caches
them), never on the test split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitdemo.explain.maps import eval_mode

PROBE_IMAGES = 3000  # training images a stage's probe is fitted on: a few seconds on a CPU, and enough for 10 classes
PROBE_STEPS = 200  # full-batch Adam steps on the pooled features: the probes converge well within them


@dataclass(frozen=True)
class Lens:
    """What each layer would answer: `probs` (L, C) softmax over the classes, one row a layer, the last row the
    model's own answer; `names` one label a row."""

    probs: np.ndarray
    names: tuple[str, ...]

    def decided_at(self) -> int:
        """The first layer from which the answer stays the model's own answer (0-based)."""
        answers = self.probs.argmax(1)
        final, first = answers[-1], len(answers) - 1
        while first > 0 and answers[first - 1] == final:
            first -= 1
        return first


@torch.no_grad()
def vit_lens(model: nn.Module, x: Tensor) -> Lens:
    """The class token after each block of a ViT, through its final norm and head. x (1, C, H, W)."""
    with eval_mode(model):
        h = model.embed(x)  # (1, T, D)
        rows = []
        for block in model.blocks:
            h, _ = block(h)
            rows.append(model.forward_head(model.norm(h)))  # (1, C): both heads averaged for a distilled ViT
    probs = F.softmax(torch.cat(rows), dim=-1).numpy()  # (L, C)
    return Lens(probs, tuple(f"after block {i + 1}" for i in range(len(rows))))


def pooled_stages(model: nn.Module, x: Tensor) -> list[Tensor]:
    """Every CNN stage's activations averaged over space: [(B, K_i)]."""
    with eval_mode(model), torch.no_grad():
        return [a.mean(dim=(2, 3)) for a in model.forward_stages(x)]


PROBE_SETTINGS = f"images={PROBE_IMAGES};steps={PROBE_STEPS};seed=0;lr=0.05"  # what fitted probes depend on


def probe_module(features: int, classes: int = 10) -> nn.Sequential:
    """A stage's probe: its pooled features (N, features) standardised, then one linear layer to the classes."""
    return nn.Sequential(nn.BatchNorm1d(features, affine=False), nn.Linear(features, classes))


def probe_tensors(probes: Sequence[nn.Module]) -> dict[str, Tensor]:
    """Fitted probes as named tensors (for a safetensors file): each stage's feature statistics and its layer."""
    found = {}
    for i, (norm, linear) in enumerate(probes):
        found |= {f"{i}.mean": norm.running_mean, f"{i}.var": norm.running_var}  # (K,), (K,)
        found |= {f"{i}.weight": linear.weight, f"{i}.bias": linear.bias}  # (C, K), (C,)
    return {k: v.detach().contiguous() for k, v in found.items()}


def probes_from_tensors(tensors: dict[str, Tensor]) -> list[nn.Module]:
    """probe_tensors back to probes in eval mode; KeyError or RuntimeError for tensors that are not probes."""
    probes = []
    for i in range(len(tensors) // 4):
        weight = tensors[f"{i}.weight"]  # (C, K)
        probe = probe_module(weight.shape[1], weight.shape[0])
        probe[0].running_mean.copy_(tensors[f"{i}.mean"])
        probe[0].running_var.copy_(tensors[f"{i}.var"])
        probe[1].load_state_dict({"weight": weight, "bias": tensors[f"{i}.bias"]})
        probes.append(probe.eval())
    if not probes or len(tensors) != 4 * len(probes):
        raise KeyError("not a set of stage probes")
    return probes


def fit_probes(
    model: nn.Module,
    x: Tensor,
    labels: Tensor,
    steps: int = PROBE_STEPS,
    progress: Callable[[float], None] | None = None,
) -> list[nn.Linear]:
    """One linear probe per stage on its pooled, standardised features (x (N, 1, 28, 28) normalised inputs,
    labels (N,)), trained full-batch with Adam: seeded, a few seconds for 3,000 images. `progress` hears the share
    of all the stages' steps done, every 20 steps."""
    torch.manual_seed(0)
    probes = []
    stages = pooled_stages(model, x)  # [(N, K_i)]
    total = max(len(stages) * steps, 1)
    for i, feats in enumerate(stages):  # (N, K)
        probe = probe_module(feats.shape[1])
        opt = torch.optim.Adam(probe.parameters(), lr=0.05)
        for step in range(steps):
            opt.zero_grad()
            F.cross_entropy(probe(feats), labels).backward()
            opt.step()
            if progress is not None and (step + 1) % 20 == 0:
                progress((i * steps + step + 1) / total)
        probes.append(probe.eval())
    return probes


@torch.no_grad()
def cnn_lens(model: nn.Module, probes: list[nn.Module], x: Tensor) -> Lens:
    """Each stage's probe on x (1, C, H, W), then the CNN's own head."""
    rows = [probe(f) for probe, f in zip(probes, pooled_stages(model, x), strict=True)]
    with eval_mode(model):
        rows.append(model(x))
    probs = F.softmax(torch.cat(rows), dim=-1).numpy()  # (S + 1, C)
    names = (*(f"after stage {i + 1} (a probe)" for i in range(len(probes))), "the CNN's answer")
    return Lens(probs, names)
