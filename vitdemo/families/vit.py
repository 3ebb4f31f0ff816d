"""The ViT family: a small Vision Transformer for 28x28 images (the model: vitdemo.models.vit)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vitdemo.families.spec import Family, check, setting

STEMS = ("patch", "conv", "cnn")
# The conv stem's second conv (kernel, stride, padding), from its first conv's 14x14 map to the patch grid:
# 14 -> 7 (4x4 patches), 14 -> 4 (7x7 patches), 14 -> 2 (14x14 patches)
CONV_STEM_TO_GRID = {4: (3, 2, 1), 7: (5, 4, 2), 14: (7, 7, 0)}
# The CNN stem's last conv, from the 7x7 map its two pooled stages leave to the patch grid: 7 -> 7, 4 or 2
CNN_STEM_TO_GRID = {4: (1, 1, 0), 7: (3, 2, 1), 14: (3, 4, 1)}
SHIPPED_TEACHER = "shipped"  # ViTConfig.teacher: the shipped CNN of the run's dataset (vitdemo.paths)


@dataclass(frozen=True)
class ViTConfig:
    """A small ViT for 28x28 images."""

    kind: Literal["vit"] = "vit"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    # 4 -> 7x7 = 49 patches: fine enough for strokes; 7 is faster, 14 is a toy
    patch_size: int = setting(4, "patch size", choices=(4, 7, 14), help="4: 7x7 = 49 patches; 7: 16; 14: 4")
    embed_dim: int = setting(64, "embedding dim", minimum=8, step=8)
    depth: int = setting(6, "ViT depth", minimum=1, step=1, help="transformer blocks")
    num_heads: int = setting(4, "heads", minimum=1, step=1, help="must divide the embedding dim")
    mlp_ratio: float = setting(2.0, "MLP ratio", minimum=0.5, step=0.5)  # small models train faster on CPU narrower
    dropout: float = setting(0.0, "ViT dropout", minimum=0.0, step=0.05)  # augmentation regularises short runs
    # How pixels become tokens: "patch", one linear map of each patch (the original ViT); "conv", a small
    # convolutional stem (3x3 stride-2 conv, batch norm, ReLU, then a conv onto the patch grid; Xiao et al. 2021,
    # "Early convolutions help transformers see better"): neighbouring patches share pixels, which a short run on
    # a CPU needs (98.6% MNIST validation in 2.3 minutes on 2 cores, README "Speed")
    # "cnn": two CNN stages first (3x3 conv, 2x2 max-pool, batch norm, ReLU, twice: 28 -> 14 -> 7, pooled first as
    # in the lean CNN), then a conv onto the patch grid: the hybrid of the original ViT paper (Dosovitskiy et al.
    # 2021, a ResNet's stages before the transformer) and of compact convolutional transformers (Hassani et al.
    # 2021): the transformer reads features of strokes and textures, not pixels (Fashion-MNIST, README "Speed")
    stem: str = setting(
        "patch", "ViT stem", choices=STEMS, shown=("patches", "small conv stem", "two CNN stages"),
        help="patch: each patch mapped on its own; conv: a small conv stem first (learns faster); "
        "cnn: two CNN stages first (a hybrid)",
    )  # fmt: skip
    # DeiT's hard-label distillation (vitdemo.training.distill): a CNN checkpoint the ViT learns from through a second
    # token, "shipped" (the shipped CNN of the run's dataset) or a file; "" = none. It changes the network (one more
    # token and head), so it is a model setting; the checkpoint header names the teacher it was trained with.
    teacher: str = setting(
        "", "teacher", form=False, help="learn from a CNN (DeiT distillation): 'shipped', a CNN run id or a checkpoint"
    )

    def validate(self) -> None:
        check(self.patch_size in (4, 7, 14), "patch_size must be 4, 7 or 14 (it must divide 28)")
        check(8 <= self.embed_dim <= 1024, "embed_dim must be between 8 and 1024")
        check(1 <= self.num_heads <= 16, "num_heads must be between 1 and 16")
        check(
            self.embed_dim % self.num_heads == 0,
            f"embed_dim ({self.embed_dim}) must be divisible by num_heads ({self.num_heads})",
        )
        check(1 <= self.depth <= 24, "depth must be between 1 and 24")
        check(0.5 <= self.mlp_ratio <= 8, "mlp_ratio must be between 0.5 and 8")
        check(0.0 <= self.dropout < 0.9, "dropout must be in [0, 0.9)")
        check(self.stem in STEMS, f"stem must be one of {', '.join(STEMS)}")
        check(self.stem != "cnn" or self.embed_dim % 4 == 0, "the CNN stem needs an embedding dim divisible by 4")
        ok = isinstance(self.teacher, str) and len(self.teacher) <= 1000
        check(ok and (self.teacher in ("", SHIPPED_TEACHER) or self.teacher.endswith(".safetensors")),
              f"teacher must be '' (none), '{SHIPPED_TEACHER}' or a CNN checkpoint (.safetensors)")  # fmt: skip

    @property
    def distilled(self) -> bool:
        """A distillation token and head: the network of a ViT trained with a teacher."""
        return bool(self.teacher)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


def parameters(m: ViTConfig) -> int:
    """Trainable parameters, counted from the config."""
    d, h = m.embed_dim, int(m.embed_dim * m.mlp_ratio)
    embed = m.in_chans * m.patch_size**2 * d + d  # the patch conv, with bias
    if m.stem == "conv":  # 3x3 conv (no bias) + batch norm, then the conv onto the grid, with bias
        k = CONV_STEM_TO_GRID[m.patch_size][0]
        embed = 9 * m.in_chans * (d // 2) + 2 * (d // 2) + k * k * (d // 2) * d + d
    if m.stem == "cnn":  # two 3x3 convs (no bias) with batch norm, then the conv onto the grid, with bias
        q, k = d // 4, CNN_STEM_TO_GRID[m.patch_size][0]
        embed = 9 * m.in_chans * q + 2 * q + 9 * q * (d // 2) + 2 * (d // 2) + k * k * (d // 2) * d + d
    tokens = d + (m.grid**2 + 1) * d  # class token and learned positions
    block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (d * h + h) + (h * d + d)  # ln, qkv, proj, ln, mlp
    head = 2 * d + d * m.num_classes + m.num_classes  # final norm and linear head
    dist = d + d * m.num_classes + m.num_classes if m.teacher else 0  # the distillation token and its head
    return embed + tokens + m.depth * block + head + dist


def forward_macs(m: ViTConfig) -> int:
    """One image's forward multiply-adds (matrix products only)."""
    t, d, h = m.grid**2 + 1 + bool(m.teacher), m.embed_dim, int(m.embed_dim * m.mlp_ratio)
    embed = m.grid**2 * m.in_chans * m.patch_size**2 * d
    if m.stem == "conv":  # 3x3 stride 2 onto 14x14, then onto the grid
        embed = 14 * 14 * 9 * m.in_chans * (d // 2) + m.grid**2 * CONV_STEM_TO_GRID[m.patch_size][0] ** 2 * (d // 2) * d
    if m.stem == "cnn":  # 3x3 at 28x28, 3x3 at 14x14 (each then pooled), then onto the grid
        q, k = d // 4, CNN_STEM_TO_GRID[m.patch_size][0]
        embed = 28 * 28 * 9 * m.in_chans * q + 14 * 14 * 9 * q * (d // 2) + m.grid**2 * k * k * (d // 2) * d
    block = 4 * t * d * d + 2 * t * t * d + 2 * t * d * h  # qkv + proj, scores + weighted sum, mlp
    return embed + m.depth * block + d * m.num_classes


def activation_floats(m: ViTConfig) -> int:
    """Floats one image keeps for the backward pass (a rough count of the saved tensors)."""
    t, d, h = m.grid**2 + 1 + bool(m.teacher), m.embed_dim, int(m.embed_dim * m.mlp_ratio)
    per_block = t * (10 * d + 3 * h) + 2 * m.num_heads * t * t  # ln/qkv/proj/residuals, mlp, attention
    stem = 3 * (d // 2) * 14 * 14 + d * m.grid**2 if m.stem == "conv" else 0  # conv, norm and ReLU at 14x14; the grid
    if m.stem == "cnn":  # each stage: its conv, then pool, norm and ReLU at a quarter of the pixels; the grid
        stem = (d // 4) * (28 * 28 + 3 * 14 * 14) + (d // 2) * (14 * 14 + 3 * 7 * 7) + d * m.grid**2
    return 28 * 28 * 2 + stem + m.depth * per_block


FAMILY = Family(
    kind="vit",
    config=ViTConfig,
    builder="vitdemo.models.vit:ViT",
    name="ViT",
    order=40,
    explainer="rollout",
    explanation="attention rollout",
    caption="Attention rollout: how much each 4x4 patch reached the class token the answer is read from, "
    "through all the layers (bright: looked at more).",
    reference=ViTConfig(patch_size=7, embed_dim=48, depth=3, num_heads=4, mlp_ratio=2.0),
    shape=lambda m: f"p{m.patch_size}-d{m.embed_dim}x{m.depth}" + ("" if m.stem == "patch" else f"-{m.stem}"),
    params=parameters,
    macs=forward_macs,
    activations=activation_floats,
)
