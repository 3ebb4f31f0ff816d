"""ImageNet networks from torchvision (ResNet-18, VGG16, AlexNet) adapted to 28x28 greyscale digits.

The adaptation, inside the model so that every caller feeds the usual (B, 1, 28, 28) input:
1. upscale to `image_px` (bilinear): the ImageNet stems downsample 4-32x and would leave nothing of 28 px;
2. one input channel: the first conv's RGB kernels are summed (a grey image replicated to RGB gives the same
   output, up to the ImageNet normalisation offsets), so no pretrained filter is thrown away;
3. a new head: global average pooling + one linear layer to 10 classes. The ImageNet classifiers (VGG16: 124M
   parameters, AlexNet: 59M) are dropped; they know 1000 ImageNet classes and nothing of digits.

Building a `TransferNet` never touches the network or the disk: it has random weights, which is what rebuilding
a trained checkpoint needs. `load_pretrained(model)` fills the backbone with the ImageNet weights: from
`weights_path` (read with `torch.load(weights_only=True)`), else from torch hub's cache, else downloaded by
torch hub; offline, the error names the file to place and the folder to place it in.
"""

from __future__ import annotations

import os
import urllib.error
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torch import nn
from torchvision.models.vgg import cfgs as vgg_cfgs
from torchvision.models.vgg import make_layers as vgg_layers

from vitdemo.families.spec import ConfigError
from vitdemo.families.transfer import ARCHS, TransferConfig

# arch -> (torchvision weights, key prefix of the backbone in torchvision's state_dict, head keys to drop,
#          backbone channels)
_ARCH_INFO: dict[str, tuple[tvm.WeightsEnum, str, tuple[str, ...], int]] = {
    "resnet18": (tvm.ResNet18_Weights.IMAGENET1K_V1, "", ("fc.",), 512),
    "vgg16": (tvm.VGG16_Weights.IMAGENET1K_V1, "features.", ("classifier.",), 512),
    "alexnet": (tvm.AlexNet_Weights.IMAGENET1K_V1, "features.", ("classifier.",), 256),
}
_FIRST_CONV = {"resnet18": "conv1.weight", "vgg16": "0.weight", "alexnet": "0.weight"}  # backbone keys


class TransferError(RuntimeError):
    """Pretrained weights are missing or do not fit; the message says which file and what to do."""


def make_backbone(arch: str, in_chans: int = 1) -> nn.Sequential:
    """The torchvision network without its classifier, with `in_chans` input channels; random weights.

    Its state_dict keys are torchvision's with the arch's backbone prefix removed ("features." for VGG and AlexNet).
    """
    if arch == "resnet18":
        net = tvm.resnet18()
        net.conv1 = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
        names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        return nn.Sequential(OrderedDict((name, getattr(net, name)) for name in names))
    if arch == "vgg16":
        features = vgg_layers(vgg_cfgs["D"], batch_norm=False)  # not tvm.vgg16(): skips a 124M-parameter head
    elif arch == "alexnet":
        features = tvm.alexnet().features
    else:
        raise ConfigError(f"arch must be one of {', '.join(ARCHS)}")
    first = features[0]
    features[0] = nn.Conv2d(in_chans, first.out_channels, first.kernel_size, first.stride, first.padding)
    return features


class TransferNet(nn.Module):
    """(B, 1, 28, 28) -> upscale to image_px -> ImageNet backbone -> global average pool -> linear head."""

    def __init__(self, config: TransferConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.backbone = make_backbone(config.arch, config.in_chans)
        self.pool = nn.AdaptiveAvgPool2d(1)
        width = _ARCH_INFO[config.arch][3]
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(config.dropout), nn.Linear(width, config.num_classes))
        if config.finetune == "head":
            self.backbone.requires_grad_(False)

    @property
    def cam_layer(self) -> nn.Module:
        """The last feature maps, for Grad-CAM."""
        return self.backbone.layer4 if self.config.arch == "resnet18" else self.backbone

    def train(self, mode: bool = True) -> TransferNet:
        """As nn.Module.train, but a frozen backbone stays in eval mode so its BN statistics stay ImageNet's."""
        super().train(mode)
        if self.config.finetune == "head":
            self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        px = self.config.image_px
        x = F.interpolate(x, size=(px, px), mode="bilinear", align_corners=False)  # (B, 1, px, px)
        x = self.backbone(x)  # (B, C, px/32, px/32) for ResNet-18 and VGG16; C = 512 (256 for AlexNet)
        return self.head(self.pool(x))  # (B, C, 1, 1) -> (B, num_classes)


def weights_filename(arch: str) -> str:
    """The file torch hub caches the ImageNet weights as, e.g. 'resnet18-f37072fd.pth'."""
    return os.path.basename(_ARCH_INFO[arch][0].url)


def hub_checkpoints_dir() -> Path:
    """torch hub's cache of downloaded weights: $TORCH_HOME/hub/checkpoints (default ~/.cache/torch/...)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def backbone_state(arch: str, state: dict[str, torch.Tensor], in_chans: int = 1) -> dict[str, torch.Tensor]:
    """torchvision's state_dict -> our backbone's: classifier keys dropped, prefix removed, first conv summed.

    The first conv goes from (out, 3, k, k) to (out, 1, k, k) by summing over RGB: a grey image fed as three
    equal channels gives the same response. Files holding only the backbone (no classifier) are accepted too.
    """
    _, prefix, drop, _ = _ARCH_INFO[arch]
    out = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and not k.startswith(drop)}
    first = _FIRST_CONV[arch]
    weight = out.get(first)
    if weight is not None and weight.ndim == 4 and weight.shape[1] == 3 and in_chans == 1:
        out[first] = weight.float().sum(dim=1, keepdim=True)  # (out, 3, k, k) -> (out, 1, k, k)
    return out


def read_weights_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state_dict from a .pth file, never unpickling arbitrary objects (torch.load with weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise TransferError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for forbidden objects, RuntimeError/EOFError for damaged files
        raise TransferError(f"{path.name} is not a readable torch weights file ({type(exc).__name__})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TransferError(f"{path.name} does not hold a state_dict (a mapping of names to tensors)")
    return state


def pretrained_state(arch: str, weights_path: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet state_dict for `arch`: from `weights_path`, else the hub cache, else a download."""
    if arch not in ARCHS:
        raise ConfigError(f"arch must be one of {', '.join(ARCHS)}")
    if weights_path:
        return read_weights_file(weights_path)
    cached = hub_checkpoints_dir() / weights_filename(arch)
    if cached.is_file():
        return read_weights_file(cached)
    url = _ARCH_INFO[arch][0].url
    try:
        return torch.hub.load_state_dict_from_url(  # attribute lookup, so tests can forbid it
            url, map_location="cpu", progress=False, check_hash=True, weights_only=True
        )
    except (urllib.error.URLError, OSError, RuntimeError) as exc:
        raise TransferError(
            f"the ImageNet weights for {arch} could not be downloaded ({type(exc).__name__}); on a machine "
            f"without internet, copy {weights_filename(arch)} (from {url}) into {hub_checkpoints_dir()}, "
            "or pass weights_path"
        ) from exc


def load_pretrained(model: TransferNet, weights_path: str | os.PathLike | None = None) -> TransferNet:
    """Fill the backbone with the ImageNet weights (strictly: every backbone tensor must be in the file)."""
    config = model.config
    state = backbone_state(config.arch, pretrained_state(config.arch, weights_path), config.in_chans)
    try:
        model.backbone.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise TransferError(f"the weights file does not match torchvision's {config.arch} ({first})") from exc
    return model
