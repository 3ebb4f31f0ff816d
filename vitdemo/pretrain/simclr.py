"""SimCLR (Chen et al., 2020) for the repository's CNN: two augmented views per image, NT-Xent between them.

1. make two views of the whole batch on its device: affine warp, stroke thickness, contrast, cut-out, noise;
2. encode both with the CNN's conv stages (flattened, exactly what its linear head reads);
3. project with a small MLP head, then pull each view towards its twin and away from the other 2B - 2 images.

The projection head is discarded afterwards: `simclr.encoder` is an ordinary `CNN` to fine-tune or probe.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vitdemo.config import ConfigError
from vitdemo.families.cnn import feature_count
from vitdemo.models.cnn import CNN
from vitdemo.training.augment import augment


@dataclass(frozen=True)
class SimCLRConfig:
    proj_hidden: int = 512
    proj_dim: int = 128  # the loss lives in this space; the encoder's features stay richer (1568 dims)
    temperature: float = 0.2  # lower than the paper's 0.5: with small batches, sharper contrasts learn faster
    warp: float = 2.0  # vitdemo.training.augment.augment strength: +-20 deg, +-20% scale, +-4 px
    cutout: int = 10  # side of the erased square, in pixels (0 disables)

    def validate(self) -> None:
        if not 0.01 <= self.temperature <= 2.0:
            raise ConfigError("temperature must be between 0.01 and 2")
        if not (8 <= self.proj_dim <= 2048 and 8 <= self.proj_hidden <= 4096):
            raise ConfigError("proj_dim must be 8-2048 and proj_hidden 8-4096")
        if not (0 <= self.warp <= 3 and 0 <= self.cutout <= 20):
            raise ConfigError("warp must be 0-3 and cutout 0-20 px")


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Normalised-temperature cross-entropy: z1[i] must pick z2[i] (and back) among all 2B - 1 others.

    z1, z2: (B, d) projections of two views of the same B images.
    """
    B = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2B, d), unit length: dot product = cosine similarity
    sim = z @ z.T / temperature  # (2B, 2B)
    self_pairs = torch.eye(2 * B, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_pairs, float("-inf"))  # a view is never its own positive or negative
    twin = torch.cat([torch.arange(B, 2 * B), torch.arange(0, B)]).to(z.device)  # (2B,): i <-> i + B
    return F.cross_entropy(sim, twin)


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return (low + (high - low) * torch.rand(n, generator=generator)).to(device)  # seeded on the CPU


def thicken_or_thin(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per image: dilate (3x3 max), erode (3x3 min) or keep the strokes, a third each. x: (B, 1, H, W)."""
    choice = torch.randint(0, 3, (len(x),), generator=generator).to(x.device).view(-1, 1, 1, 1)  # (B, 1, 1, 1)
    dilated = F.max_pool2d(x, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-x, 3, stride=1, padding=1)
    return torch.where(choice == 0, dilated, torch.where(choice == 1, eroded, x))


def cut_out(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Erase one size x size square per image (to the image's background value) at a random place."""
    B, _, H, W = x.shape
    top = torch.randint(0, H - size + 1, (B,), generator=generator).to(x.device).view(B, 1, 1)
    left = torch.randint(0, W - size + 1, (B,), generator=generator).to(x.device).view(B, 1, 1)
    rows = torch.arange(H, device=x.device).view(1, H, 1)
    cols = torch.arange(W, device=x.device).view(1, 1, W)
    box = ((rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)).unsqueeze(1)  # (B,1,H,W)
    background = x.amin(dim=(2, 3), keepdim=True)  # (B, 1, 1, 1)
    return torch.where(box, background, x)


def random_view(x: torch.Tensor, config: SimCLRConfig, generator: torch.Generator) -> torch.Tensor:
    """One random view of a normalised batch (B, 1, 28, 28), all images at once on x's device."""
    B = len(x)
    x = augment(x, config.warp, generator)  # rotation, scale, shift in one resample
    x = thicken_or_thin(x, generator)
    background = x.amin(dim=(2, 3), keepdim=True)  # (B, 1, 1, 1)
    contrast = _uniform(B, 0.6, 1.4, generator, x.device).view(B, 1, 1, 1)
    x = background + (x - background) * contrast
    if config.cutout:
        x = cut_out(x, config.cutout, generator)
    noise = torch.randn(x.shape, generator=generator).to(x.device)
    return x + 0.1 * noise


def two_views(x: torch.Tensor, config: SimCLRConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return random_view(x, config, generator), random_view(x, config, generator)


def cnn_features(cnn: CNN, x: torch.Tensor) -> torch.Tensor:
    """The CNN without its head: (B, 1, 28, 28) -> (B, F), what the head's Linear reads (F = c * side * side, or
    a lean CNN's hidden layer: its neck is pretrained with the stages)."""
    for stage in cnn.stages:
        x = cnn.pool(stage(x))  # (B, c_i, s_i, s_i); a lean stage pools itself
    return cnn.neck(x).flatten(1)


class SimCLR(nn.Module):
    """`encoder` is the CNN being pretrained; `projector` maps its features to the space of the loss."""

    def __init__(self, encoder: CNN, config: SimCLRConfig | None = None) -> None:
        super().__init__()
        config = config or SimCLRConfig()
        config.validate()
        self.config = config
        self.encoder = encoder
        cnn = encoder.config
        features = feature_count(cnn)  # 32 x 7 x 7 = 1568 for the default CNN
        self.projector = nn.Sequential(
            nn.Linear(features, config.proj_hidden),
            nn.BatchNorm1d(config.proj_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(config.proj_hidden, config.proj_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(cnn_features(self.encoder, x))  # (B, proj_dim)

    def loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        v1, v2 = two_views(x, self.config, generator)
        z = self(torch.cat([v1, v2]))  # (2B, proj_dim): one pass, batch norm sees both views
        z1, z2 = z.chunk(2)
        return nt_xent(z1, z2, self.config.temperature)
