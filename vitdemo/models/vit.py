"""A small Vision Transformer written out in PyTorch (pre-norm blocks, class token, learned positions).

With a teacher (`ViTConfig.teacher`), DeiT's distillation token (Touvron et al. 2021, facebookresearch/deit
`models.py`): a second learned token after the patches, read by a second head that is trained on a CNN teacher's
answers (vitdemo.training.distill); in eval both heads are averaged, in training `both_heads=True` returns both.
The token sits last, so the patches stay at positions 1..N for every reader of the attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitdemo.families.vit import CNN_STEM_TO_GRID, CONV_STEM_TO_GRID, ViTConfig


def patch_embedding(config: ViTConfig) -> nn.Module:
    """(B, C, 28, 28) -> (B, D, g, g): one linear map of each patch ("patch"), a small conv stem ("conv": a 3x3
    stride-2 conv onto 14x14 with batch norm and ReLU, then a conv onto the patch grid), or two CNN stages ("cnn":
    3x3 conv, max-pool, batch norm, ReLU, twice, then a conv onto the grid; vitdemo.families.vit)."""
    dim, p = config.embed_dim, config.patch_size
    if config.stem == "patch":
        return nn.Conv2d(config.in_chans, dim, p, stride=p)
    if config.stem == "cnn":
        q, h = dim // 4, dim // 2
        k, stride, pad = CNN_STEM_TO_GRID[p]
        return nn.Sequential(
            nn.Conv2d(config.in_chans, q, 3, padding=1, bias=False),  # (B, D/4, 28, 28)
            nn.MaxPool2d(2), nn.BatchNorm2d(q), nn.ReLU(inplace=True),  # (B, D/4, 14, 14): pooled first, as lean CNNs
            nn.Conv2d(q, h, 3, padding=1, bias=False),  # (B, D/2, 14, 14)
            nn.MaxPool2d(2), nn.BatchNorm2d(h), nn.ReLU(inplace=True),  # (B, D/2, 7, 7)
            nn.Conv2d(h, dim, k, stride=stride, padding=pad),  # (B, D, g, g)
        )  # fmt: skip
    k, stride, pad = CONV_STEM_TO_GRID[p]
    return nn.Sequential(
        nn.Conv2d(config.in_chans, dim // 2, 3, stride=2, padding=1, bias=False),  # (B, D/2, 14, 14)
        nn.BatchNorm2d(dim // 2),
        nn.ReLU(inplace=True),
        nn.Conv2d(dim // 2, dim, k, stride=stride, padding=pad),  # (B, D, g, g)
    )


def _dropout(p: float) -> nn.Module:
    """Dropout, or nothing at all when p is 0 (the shipped ViTs): the Draw page's forward pass is a few hundred
    microseconds of module calls, and a dropout of 0 is one per block that does nothing. No weights either way."""
    return nn.Dropout(p) if p > 0 else nn.Identity()


class Attention(nn.Module):
    """Multi-head self-attention with two paths: fused (fast, no weights) and explicit (returns weights)."""

    def __init__(self, *, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, C = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, nh, T, hs)
        drop = self.dropout if self.training else 0.0
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)  # (B, nh, T, T)
            weights = scores.softmax(dim=-1)
            out = (F.dropout(weights, drop, self.training) if drop > 0 else weights) @ v  # (B, nh, T, hs)
        else:
            weights = None
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        out = out.transpose(1, 2).reshape(B, T, C)
        out = self.proj(out)
        return (F.dropout(out, drop, self.training) if drop > 0 else out), weights


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, *, dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim=dim, num_heads=num_heads, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), _dropout(dropout), nn.Linear(hidden, dim), _dropout(dropout)
        )

    def forward(self, x: torch.Tensor, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        attn_out, weights = self.attn(self.norm1(x), need_weights)
        x = x + attn_out
        x = x + self.mlp(self.norm2(x))
        return x, weights


class ViT(nn.Module):
    """ViT for (B, C, 28, 28) inputs. `forward(x, return_attn=True)` also returns per-layer attention."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        dim, n_patches = config.embed_dim, config.grid**2
        self.patch_embed = patch_embedding(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, n_patches + 1, dim) * 0.02)
        self.pos_drop = _dropout(config.dropout)
        self.blocks = nn.ModuleList(
            Block(dim=dim, num_heads=config.num_heads, mlp_ratio=config.mlp_ratio, dropout=config.dropout)
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, config.num_classes)
        # DeiT: a distillation token (its place is fixed, so it needs no position of its own) and its head
        self.dist_token = nn.Parameter(torch.zeros(1, 1, dim)) if config.teacher else None
        self.head_dist = nn.Linear(dim, config.num_classes) if config.teacher else None
        self.apply(_init_weights)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        if self.dist_token is not None:
            nn.init.trunc_normal_(self.dist_token, std=0.02)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the tokens the first block reads: (B, T, D), T = 1 + N (+ 1 distillation token)."""
        x = self.patch_embed(x)  # (B, D, g, g)
        x = x.flatten(2).transpose(1, 2)  # (B, N, D), patches in row-major order
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = self.pos_drop(torch.cat([cls, x], dim=1) + self.pos_embed)  # (B, N+1, D)
        if self.dist_token is not None:
            x = torch.cat([x, self.dist_token.expand(x.shape[0], -1, -1)], dim=1)  # (B, N+2, D)
        return x

    def forward_features(self, x: torch.Tensor, return_attn: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.embed(x)  # (B, T, D)
        attns: list[torch.Tensor] = []
        for block in self.blocks:
            x, weights = block(x, return_attn)
            if weights is not None:
                attns.append(weights)  # (B, nh, T, T)
        return self.norm(x), attns

    def forward_head(
        self, x: torch.Tensor, both_heads: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Normed tokens (B, T, D) -> logits (B, num_classes) from the class token; with a distillation token, the
        mean of both heads, or both (class head, distillation head) with `both_heads` (training)."""
        logits = self.head(x[:, 0])  # (B, num_classes)
        if self.head_dist is None:
            return (logits, logits) if both_heads else logits
        dist = self.head_dist(x[:, -1])  # (B, num_classes), from the distillation token
        return (logits, dist) if both_heads else (logits + dist) / 2

    def forward(
        self, x: torch.Tensor, return_attn: bool = False, both_heads: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """(B, C, H, W) -> logits (B, num_classes); `return_attn`: (logits, per-layer attention); `both_heads`:
        (class head's logits, distillation head's logits), the same tensor twice without a teacher."""
        features, attns = self.forward_features(x, return_attn)
        if both_heads:
            return self.forward_head(features, both_heads=True)
        logits = self.forward_head(features)
        return (logits, attns) if return_attn else logits


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
