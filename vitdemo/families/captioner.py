"""The captioner family: a ViT encoder over the whole number image and a small transformer decoder that writes
its digits one by one, looking at the image through cross-attention (the model: vitdemo.models.captioner)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vitdemo.families.spec import READ, Family, check, setting
from vitdemo.numbers import CANVAS_H, CANVAS_W, MAX_DIGITS

VOCAB = 13  # the ten digits, then BOS (10), EOS (11) and PAD (12)


@dataclass(frozen=True)
class CaptionerConfig:
    """A ViT encoder + transformer decoder reading a CANVAS_H x CANVAS_W number image."""

    kind: Literal["captioner"] = "captioner"
    image_size: int = CANVAS_H  # a reader's image is its canvas: this is its height
    in_chans: int = 1
    num_classes: int = 10  # the digits it writes (plus its begin, end and padding tokens)
    canvas_width: int = CANVAS_W
    max_digits: int = MAX_DIGITS  # the longest number it writes (its decoder's positions: one more, for EOS)
    # Patches 32 px tall and 4 wide: the image as 40 strips from left to right (a digit spans 3-4 of them), so the
    # decoder's look moves along one axis, as writing does. Measured on 2 busy CPU cores: 8x8 patches (a 4x20 grid,
    # 80 tokens) were still near chance after 170 steps of 64 numbers; strips learn sooner and cost half as much.
    patch_h: int = setting(32, "patch height", choices=(8, 16, 32), help="32: whole-height strips")
    patch_px: int = setting(4, "patch width", choices=(4, 8), help="4: 40 strips of the 160 px wide image")
    embed_dim: int = setting(64, "embedding dim", minimum=16, step=16)
    depth: int = setting(4, "encoder depth", minimum=1, step=1, help="ViT blocks over the image")
    decoder_depth: int = setting(2, "decoder depth", minimum=1, step=1, help="blocks of the digit writer")
    num_heads: int = setting(4, "heads", minimum=1, step=1, help="must divide the embedding dim")
    mlp_ratio: float = setting(2.0, "MLP ratio", minimum=0.5, step=0.5)
    dropout: float = setting(0.0, "dropout", minimum=0.0, step=0.05)
    # Training only (no weights ship for it): a CTC loss on the encoder's strips, beside the decoder's, so that
    # each strip learns which digit it shows before the decoder has learned where to look (hybrid CTC/attention,
    # Watanabe et al. 2017). Measured on 2 CPU cores at equal steps (1,800 batches of 32, 400 validation numbers):
    # whole numbers read 10.7% without it, 17.5% at 0.3, 17.0% at 0.5 (the strips alone then read 31%); the
    # shipped captioner, 30 epochs with it, read 86.45% (the first, 6 short epochs without it, 8.55%); 60 more: 90.80%.
    ctc_weight: float = setting(0.3, "CTC help", minimum=0.0, step=0.1, help="0 = off; the share of the loss "
                                "that asks each strip of the image which digit it shows")  # fmt: skip

    def validate(self) -> None:
        check(self.patch_px in (4, 8) and self.patch_h in (8, 16, 32), "patch width 4 or 8, height 8, 16 or 32")
        check(self.image_size % self.patch_h == 0 and self.canvas_width % self.patch_px == 0, "bad canvas")
        check(16 <= self.embed_dim <= 512, "embed_dim must be between 16 and 512")
        check(1 <= self.num_heads <= 16, "num_heads must be between 1 and 16")
        check(self.embed_dim % self.num_heads == 0, "embed_dim must be divisible by num_heads")
        check(1 <= self.depth <= 12 and 1 <= self.decoder_depth <= 6, "depth 1-12, decoder_depth 1-6")
        check(0.5 <= self.mlp_ratio <= 8, "mlp_ratio must be between 0.5 and 8")
        check(0.0 <= self.dropout < 0.9, "dropout must be in [0, 0.9)")
        check(0.0 <= self.ctc_weight < 1.0, "ctc_weight must be in [0, 1)")
        check(self.num_classes == 10 and 1 <= self.max_digits <= MAX_DIGITS, "a captioner writes 1-8 digits")

    @property
    def grid(self) -> tuple[int, int]:
        return self.image_size // self.patch_h, self.canvas_width // self.patch_px


def forward_macs(m: CaptionerConfig) -> int:
    """One image's forward multiply-adds with teacher forcing (matrix products only)."""
    n, t, d = m.grid[0] * m.grid[1], m.max_digits + 1, m.embed_dim
    h = int(d * m.mlp_ratio)
    embed = n * m.in_chans * m.patch_h * m.patch_px * d
    enc = 4 * n * d * d + 2 * n * n * d + 2 * n * d * h
    dec = 4 * t * d * d + 2 * t * t * d + 2 * t * d * d + 2 * n * d * d + 2 * t * n * d + 2 * t * d * h
    return embed + m.depth * enc + m.decoder_depth * dec + t * d * VOCAB


FAMILY = Family(
    kind="captioner",
    config=CaptionerConfig,
    builder="vitdemo.models.captioner:Captioner",
    name="Captioner",
    order=80,
    group="reader",
    form_label="Number reader: ViT captioner",
    task=READ,
    explainer="attention",
    explanation="cross-attention",
    caption="Cross-attention: where the decoder looked while it wrote each digit (bright: looked at more), "
    "averaged over its layers and heads.",
    blurb="Reads a whole number the ViT way: a ViT encoder and a decoder that writes the digits one by one.",
    reference=CaptionerConfig(embed_dim=32, depth=1, decoder_depth=1, num_heads=2),
    shape=lambda m: f"p{m.patch_h}x{m.patch_px}-d{m.embed_dim}x{m.depth}+{m.decoder_depth}",
    macs=forward_macs,
)
