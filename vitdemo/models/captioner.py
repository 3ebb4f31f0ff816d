"""The captioner: a ViT encoder over a whole number image and a small transformer decoder that writes its digits.

The encoder is the house ViT's blocks (vitdemo.models.vit.Block) over the patches of the wide canvas, without a
class token; the decoder is nanoGPT's causal block plus a cross-attention over the encoder's tokens. Training is
teacher forcing (`forward(x, tokens)`); decoding is greedy or beam search (vitdemo.numbers.decode). Like the
ViT, every attention has a fused path (training) and an explicit one that returns its weights (`need_weights`),
so the page can show where each written digit looked.

Images come in as (B, 1, H, W) floats in [0, 1] (light ink on black); the model normalises them itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vitdemo.data import normalization
from vitdemo.families.captioner import VOCAB, CaptionerConfig
from vitdemo.models.vit import Block, _init_weights

BOS, EOS, PAD = 10, 11, 12
MEAN, STD = normalization("mnist")


class CrossAttention(nn.Module):
    """Queries from the decoder's tokens, keys and values from the image's; fused, or explicit with weights."""

    def __init__(self, *, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, C = x.shape
        N, nh = memory.shape[1], self.num_heads
        q = self.q(x).view(B, T, nh, C // nh).transpose(1, 2)  # (B, nh, T, hs)
        k, v = self.kv(memory).view(B, N, 2, nh, C // nh).permute(2, 0, 3, 1, 4)  # each (B, nh, N, hs)
        drop = self.dropout if self.training else 0.0
        if need_weights:
            weights = ((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5).softmax(-1)  # (B, nh, T, N)
            out = F.dropout(weights, drop, self.training) @ v  # (B, nh, T, hs)
        else:
            weights, out = None, F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        return self.proj(out.transpose(1, 2).reshape(B, T, C)), weights


class CausalSelfAttention(nn.Module):
    """nanoGPT's: each written token sees itself and the ones before it (always fused: nobody looks at these)."""

    def __init__(self, *, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        drop = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)  # (B, nh, T, hs)
        return self.proj(out.transpose(1, 2).reshape(B, T, C))


class DecoderBlock(nn.Module):
    """Pre-norm: x + self_attn(ln(x)), x + cross_attn(ln(x), image), x + mlp(ln(x))."""

    def __init__(self, *, dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.self_attn = CausalSelfAttention(dim=dim, num_heads=num_heads, dropout=dropout)
        self.cross_attn = CrossAttention(dim=dim, num_heads=num_heads, dropout=dropout)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = x + self.self_attn(self.norm1(x))
        looked, weights = self.cross_attn(self.norm2(x), memory, need_weights)
        x = x + looked
        return x + self.mlp(self.norm3(x)), weights


class Captioner(nn.Module):
    """`forward(x, tokens)`: (B, 1, H, W) images and (B, T) input tokens (BOS, digits...) -> (B, T, VOCAB) logits."""

    def __init__(self, config: CaptionerConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        d, (gh, gw) = config.embed_dim, config.grid
        kw = {"dim": d, "num_heads": config.num_heads, "mlp_ratio": config.mlp_ratio, "dropout": config.dropout}
        patch = (config.patch_h, config.patch_px)
        self.patch_embed = nn.Conv2d(config.in_chans, d, patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.randn(1, gh * gw, d) * 0.02)
        self.blocks = nn.ModuleList(Block(**kw) for _ in range(config.depth))
        self.norm = nn.LayerNorm(d)
        self.tok_embed = nn.Embedding(VOCAB, d)
        self.tok_pos = nn.Parameter(torch.randn(1, config.max_digits + 1, d) * 0.02)
        self.decoder = nn.ModuleList(DecoderBlock(**kw) for _ in range(config.decoder_depth))
        self.dec_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, VOCAB)
        self.apply(_init_weights)
        nn.init.normal_(self.tok_embed.weight, std=0.02)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) in [0, 1] -> the image's tokens (B, N, D), N = gh * gw in row-major order."""
        x = self.patch_embed((x - MEAN) / STD).flatten(2).transpose(1, 2)  # (B, N, D)
        x = x + self.pos_embed
        for block in self.blocks:
            x, _ = block(x)
        return self.norm(x)

    def decode(
        self, memory: torch.Tensor, tokens: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """memory (B, N, D), tokens (B, T) -> logits (B, T, VOCAB) and, with need_weights, each decoder layer's
        cross-attention (B, nh, T, N): where the token at each position looked to write the next one."""
        T = tokens.shape[1]
        x = self.tok_embed(tokens) + self.tok_pos[:, :T]  # (B, T, D)
        looks: list[torch.Tensor] = []
        for block in self.decoder:
            x, weights = block(x, memory, need_weights)
            if weights is not None:
                looks.append(weights)
        return self.head(self.dec_norm(x)), looks

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        logits, _ = self.decode(self.encode(x), tokens)
        return logits


def teacher_tokens(digits: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher forcing's input and target: digits (B, S) (-1 after the last), lengths (B,) ->
    inputs (B, S + 1) = BOS d1 .. dL PAD..., targets (B, S + 1) = d1 .. dL EOS PAD..."""
    B, S = digits.shape
    pos = torch.arange(S + 1, device=digits.device)[None, :]  # (1, S + 1)
    padded = torch.cat([digits, digits.new_full((B, 1), -1)], 1)  # (B, S + 1)
    targets = torch.where(pos < lengths[:, None], padded, PAD)
    targets = torch.where(pos == lengths[:, None], EOS, targets)
    inputs = torch.cat([digits.new_full((B, 1), BOS), targets[:, :-1]], 1)
    inputs = torch.where(inputs == EOS, PAD, inputs)
    return inputs, targets


def ctc_head(config: CaptionerConfig) -> nn.Linear | None:
    """The training-only head that reads each image token as a digit or blank (10), when the config asks for it."""
    return nn.Linear(config.embed_dim, 11) if config.ctc_weight > 0 else None


def caption_loss(
    model: Captioner,
    x: torch.Tensor,
    digits: torch.Tensor,
    lengths: torch.Tensor,
    smoothing: float,
    strips: nn.Linear | None = None,
) -> torch.Tensor:
    """Teacher-forced cross-entropy over the written tokens (digits and EOS; padding ignored), mixed with a CTC
    loss on the image tokens read by `strips` (ctc_head) when given. -> () tensor."""
    inputs, targets = teacher_tokens(digits, lengths)
    memory = model.encode(x)  # (B, N, D)
    logits, _ = model.decode(memory, inputs)  # (B, S + 1, VOCAB)
    loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=PAD, label_smoothing=smoothing)
    if strips is None:
        return loss
    log_probs = strips(memory).float().log_softmax(-1).transpose(0, 1)  # (N, B, 11), as ctc_loss takes them
    frames = torch.full_like(lengths, memory.shape[1])  # (B,)
    ctc = F.ctc_loss(log_probs, digits.clamp(min=0), frames, lengths, blank=10, zero_infinity=True)
    w = model.config.ctc_weight
    return (1 - w) * loss + w * ctc
