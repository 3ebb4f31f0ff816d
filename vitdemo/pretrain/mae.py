"""A masked autoencoder (He et al., 2021) around the repository's ViT.

1. patchify, embed, add positions; keep a random 25% of the patches per image (the mask is random per sample);
2. the ViT's own blocks encode only the visible patches (plus the class token): 4x fewer tokens, 4x+ cheaper;
3. a light decoder gets the encoded visible tokens plus a shared mask token at every hidden position;
4. it predicts every patch's pixels; the loss is the mean squared error on the hidden patches only.

The ViT keeps its parameters and names, so after pretraining `mae.encoder` is an ordinary `ViT` to fine-tune,
save with vitdemo.checkpoints, or load into the app. The ViT module itself is not changed: the masked forward
lives here, as a function over its parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vitdemo.config import ConfigError
from vitdemo.models.vit import Block, ViT


@dataclass(frozen=True)
class MAEConfig:
    mask_ratio: float = 0.75  # the paper's ratio: hiding most patches makes the task more than interpolation
    decoder_dim: int = 64  # light: the representation must live in the encoder, not the decoder
    decoder_depth: int = 2
    decoder_heads: int = 4

    def validate(self) -> None:
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError("mask_ratio must be in (0, 1)")
        if not (1 <= self.decoder_depth <= 8 and 8 <= self.decoder_dim <= 512):
            raise ConfigError("decoder_depth must be 1-8 and decoder_dim 8-512")
        if self.decoder_dim % self.decoder_heads:
            raise ConfigError("decoder_dim must be divisible by decoder_heads")


def num_visible(num_patches: int, mask_ratio: float) -> int:
    """How many patches the encoder sees: round(N * (1 - ratio)), at least one (49 patches at 0.75 -> 12)."""
    return max(1, round(num_patches * (1.0 - mask_ratio)))


def random_masking(noise: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample random masks from uniform noise (B, N): the `keep` lowest-noise patches stay visible.

    Returns ids_keep (B, keep), ids_restore (B, N) (undoes the shuffle), mask (B, N) with 1 = hidden.
    """
    B, N = noise.shape
    ids_shuffle = noise.argsort(dim=1)  # (B, N), ascending: the first `keep` are visible
    ids_restore = ids_shuffle.argsort(dim=1)  # (B, N)
    mask = torch.ones(B, N, device=noise.device)
    mask[:, :keep] = 0
    mask = mask.gather(1, ids_restore)  # (B, N) in the original patch order
    return ids_shuffle[:, :keep], ids_restore, mask


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, p*p*C) in the ViT's row-major patch order."""
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // p, p, W // p, p)  # (B, C, g, p, g, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(B, (H // p) * (W // p), p * p * C)


def unpatchify(patches: torch.Tensor, p: int, channels: int = 1) -> torch.Tensor:
    """(B, N, p*p*C) -> (B, C, H, W); the inverse of patchify."""
    B, N, _ = patches.shape
    g = int(N**0.5)
    x = patches.reshape(B, g, g, p, p, channels)  # (B, g, g, p, p, C)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(B, channels, g * p, g * p)


def encode_visible(vit: ViT, x: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
    """The ViT on a subset of patches: (B, C, 28, 28), ids_keep (B, K) -> (B, 1 + K, D) after the final norm."""
    tokens = vit.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
    tokens = tokens + vit.pos_embed[:, 1:]  # positions before the gather: each patch keeps its own
    D = tokens.shape[-1]
    tokens = tokens.gather(1, ids_keep.unsqueeze(-1).expand(-1, -1, D))  # (B, K, D)
    cls = (vit.cls_token + vit.pos_embed[:, :1]).expand(len(x), -1, -1)  # (B, 1, D)
    tokens = vit.pos_drop(torch.cat([cls, tokens], dim=1))  # (B, 1 + K, D)
    for block in vit.blocks:
        tokens, _ = block(tokens)
    return vit.norm(tokens)


class MAE(nn.Module):
    """Masked autoencoder: `encoder` is the ViT being pretrained; the decoder is thrown away afterwards."""

    def __init__(self, encoder: ViT, config: MAEConfig | None = None) -> None:
        super().__init__()
        config = config or MAEConfig()
        config.validate()
        self.config = config
        self.encoder = encoder
        vit = encoder.config
        if vit.stem != "patch":  # a conv stem lets a visible token see into its hidden neighbours
            raise ConfigError("MAE pretraining needs a ViT whose patches are embedded on their own (stem 'patch')")
        dim, n = config.decoder_dim, vit.grid**2
        self.decoder_embed = nn.Linear(vit.embed_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.decoder_pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.decoder_blocks = nn.ModuleList(
            Block(dim=dim, num_heads=config.decoder_heads, mlp_ratio=2.0, dropout=0.0)
            for _ in range(config.decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(dim)
        self.decoder_pred = nn.Linear(dim, vit.patch_size**2 * vit.in_chans)
        nn.init.normal_(self.mask_token, std=0.02)

    @property
    def num_patches(self) -> int:
        return self.encoder.config.grid**2

    def decode(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """(B, 1 + K, D) visible tokens -> (B, N, p*p*C) predicted pixels for every patch."""
        x = self.decoder_embed(latent)  # (B, 1 + K, Dd)
        B, N = ids_restore.shape
        fill = self.mask_token.expand(B, N - (x.shape[1] - 1), -1)  # (B, N - K, Dd)
        patches = torch.cat([x[:, 1:], fill], dim=1)  # (B, N, Dd), shuffled order
        patches = patches.gather(1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[-1]))  # original order
        x = torch.cat([x[:, :1], patches], dim=1) + self.decoder_pos  # (B, 1 + N, Dd)
        for block in self.decoder_blocks:
            x, _ = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]  # (B, N, p*p*C)

    def forward(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, C, 28, 28) normalised, noise (B, N) uniform -> loss, prediction (B, N, p*p*C), mask (B, N)."""
        keep = num_visible(self.num_patches, self.config.mask_ratio)
        ids_keep, ids_restore, mask = random_masking(noise, keep)
        pred = self.decode(encode_visible(self.encoder, x, ids_keep), ids_restore)
        target = patchify(x, self.encoder.config.patch_size)  # (B, N, p*p*C)
        return pixel_loss(pred, target, mask), pred, mask

    def loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noise = torch.rand(len(x), self.num_patches, generator=generator).to(x.device)  # seeded on the CPU
        return self(x, noise)[0]


@dataclass(frozen=True, eq=False)
class Reconstruction:
    """Images in [0, 1] for display, each (B, 28, 28)."""

    original: np.ndarray
    masked: np.ndarray  # hidden patches shown as mid-grey
    predicted: np.ndarray  # the decoder's output everywhere
    pasted: np.ndarray  # visible patches from the original, hidden ones from the decoder (the MAE paper's figure)


@torch.no_grad()
def reconstruct(mae: MAE, images: torch.Tensor, mean: float, std: float, seed: int = 0) -> Reconstruction:
    """(B, 28, 28) uint8 -> what the MAE saw and what it filled in, as images for display."""
    mae.eval()
    device = next(mae.parameters()).device
    x = (images.to(device).unsqueeze(1).float() / 255.0 - mean) / std  # (B, 1, 28, 28)
    noise = torch.rand(len(x), mae.num_patches, generator=torch.Generator().manual_seed(seed)).to(device)
    _, pred, mask = mae(x, noise)
    p = mae.encoder.config.patch_size
    hidden = unpatchify(mask.unsqueeze(-1).expand(-1, -1, p * p), p).bool()  # (B, 1, 28, 28)
    predicted = unpatchify(pred, p)
    pasted = torch.where(hidden, predicted, x)

    def to_image(t: torch.Tensor) -> np.ndarray:
        return (t[:, 0] * std + mean).clamp(0, 1).cpu().numpy()

    masked = to_image(x)
    masked[hidden[:, 0].cpu().numpy()] = 0.5
    return Reconstruction(to_image(x), masked, to_image(predicted), to_image(pasted))


def pixel_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over hidden patches: pred, target (B, N, P), mask (B, N) with 1 = hidden."""
    return (F.mse_loss(pred, target, reduction="none").mean(-1) * mask).sum() / mask.sum()
