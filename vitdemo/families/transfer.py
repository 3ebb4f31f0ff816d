"""The transfer family: a torchvision ImageNet network on upscaled digits (the model: vitdemo.models.transfer)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from vitdemo.families.spec import Family, check, setting

ARCHS = ("resnet18", "vgg16", "alexnet")  # torchvision ImageNet networks a transfer model can start from
MIN_IMAGE_PX = {"resnet18": 32, "vgg16": 32, "alexnet": 64}  # smaller inputs vanish in the downsampling
MACS_PER_WEIGHT_224 = 155  # ResNet-18: 1.8 G multiply-adds for 11.7 M weights at 224 px (a rough figure)


@dataclass(frozen=True)
class TransferConfig:
    """A torchvision ImageNet network on upscaled digits, fine-tuned whole or as a frozen feature extractor.

    Building one never reads the ImageNet weights: training loads them (vitdemo.training.loop), a checkpoint has
    its own.
    """

    kind: Literal["transfer"] = "transfer"
    image_size: int = 28
    in_chans: int = 1
    num_classes: int = 10
    # the smallest of the three (11M parameters) and the best on digits
    arch: str = setting(
        "resnet18",
        "network",
        choices=ARCHS,
        shown=("ResNet-18", "VGG16", "AlexNet"),
        help="torchvision's ImageNet networks",
    )
    # 28 -> 64 px: ResNet-18 ends at 2x2; 112 px gives 4x4 maps at ~3x the compute
    image_px: int = setting(
        64, "input size", minimum=32, step=16, help="the 28 px digits are upscaled to this (AlexNet needs 64 or more)"
    )
    # "head": frozen backbone (weights and BN statistics), a linear probe
    finetune: Literal["all", "head"] = setting(
        "all", "what trains", choices=("all", "head"), shown=("whole network", "new head only"), help="all or head"
    )
    # False: the same architecture trained from scratch (the baseline to beat)
    pretrained: bool = setting(True, "ImageNet weights", help="untick (--no-pretrained): random weights")
    dropout: float = setting(0.0, "transfer dropout", minimum=0.0, step=0.05)  # before the new head

    def validate(self) -> None:
        check(self.arch in ARCHS, f"arch must be one of {', '.join(ARCHS)}")
        check(self.image_size == 28 and self.in_chans == 1, "transfer models take 28x28 greyscale images")
        check(2 <= self.num_classes <= 1000, "num_classes must be between 2 and 1000")
        low = MIN_IMAGE_PX.get(self.arch, 32)
        check(low <= self.image_px <= 224, f"image_px must be between {low} and 224 for {self.arch}")
        check(self.finetune in ("all", "head"), "finetune must be 'all' or 'head'")
        check(
            self.pretrained or self.finetune == "all",
            "finetune='head' needs pretrained=True: a frozen random backbone learns nothing",
        )
        check(0.0 <= self.dropout < 0.9, "dropout must be in [0, 0.9)")


def _shape(m: TransferConfig) -> str:
    start = "" if m.pretrained else "-scratch"
    return f"{m.arch}-{m.image_px}px{start}" + ("-head" if m.finetune == "head" else "")


FAMILY = Family(
    kind="transfer",
    config=TransferConfig,
    builder="vitdemo.models.transfer:TransferNet",
    name="Transfer",
    order=50,
    form_label="ImageNet CNN (transfer)",
    reference=TransferConfig(arch="alexnet", image_px=64, pretrained=False),  # random weights: never read a file
    shape=_shape,
    # parameters: counted on the meta device; multiply-adds: a rough figure per weight, scaled by the input's area
    macs_per_param=lambda m: MACS_PER_WEIGHT_224 * (m.image_px / 224) ** 2,
    probe_config=lambda m: dataclasses.replace(m, pretrained=False, finetune="all"),  # as fast, reads no file
    ray_cpus=2.0,  # its images are resized to image_px on the fly: a second core keeps the GPU fed
    gpu_share=0.5,  # an ImageNet network fills half a GPU
)
