"""The detector: torchvision's Faster R-CNN, assembled (not written) around a small CNN backbone.

`FasterRCNN(backbone, rpn_anchor_generator=AnchorGenerator(...), box_roi_pool=MultiScaleRoIAlign(...), ...)` as
torchvision's references build it, with what a 32x160 number image needs instead of a photo's defaults: no
resizing (min_size/max_size are the canvas), MNIST's normalisation, anchors the size of a digit (12-22 px, from
square to a tall "1"), few proposals (a number has at most 8 digits) and a small box head (torchvision's default
TwoMLPHead of 1024 units alone would be 3 M weights). Classes: 0 is the background, 1..10 the digits 0..9.

Images come in as (B, 1, H, W) floats in [0, 1] (light ink on black); the network normalises them itself.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

from vitdemo.data import normalization
from vitdemo.families.detector import DetectorConfig

ANCHOR_SIZES = (12, 16, 22)  # sqrt(area) in px: a 20x8 "1" is about 13, a 22x18 "0" about 20
ANCHOR_RATIOS = (1.0, 1.6, 2.6)  # height / width: square, a typical digit, a thin "1"
ROI_SIZE = 7
MEAN, STD = normalization("mnist")


def _stage(c_in: int, c_out: int, convs: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)]
        layers.append(nn.ReLU(inplace=True))
    return layers


def backbone(width: int, in_chans: int = 1) -> nn.Sequential:
    """Three stages of 3x3 conv + BN + ReLU with two 2x2 max-pools: (B, C, H, W) -> (B, 2 width, H/4, W/4).
    Declares `out_channels`, which is all FasterRCNN asks of a backbone."""
    net = nn.Sequential(
        *_stage(in_chans, width, 2), nn.MaxPool2d(2), *_stage(width, 2 * width, 2), nn.MaxPool2d(2),
        *_stage(2 * width, 2 * width, 1),
    )  # fmt: skip
    net.out_channels = 2 * width
    return net


class Detector(nn.Module):
    """`forward(x)` in eval mode: (B, 1, H, W) -> torchvision's detections, a list of B dicts (boxes (n, 4) in
    pixels, labels (n,) 1..10, scores (n,)); in training mode `forward(x, targets)` -> its dict of losses."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        body = backbone(config.width, config.in_chans)
        c = body.out_channels
        self.net = FasterRCNN(
            body,
            min_size=config.image_size,
            max_size=config.canvas_width,
            image_mean=[MEAN],
            image_std=[STD],
            rpn_anchor_generator=AnchorGenerator(sizes=(ANCHOR_SIZES,), aspect_ratios=(ANCHOR_RATIOS,)),
            rpn_pre_nms_top_n_train=300,
            rpn_post_nms_top_n_train=60,
            rpn_pre_nms_top_n_test=200,
            rpn_post_nms_top_n_test=40,
            rpn_batch_size_per_image=64,
            box_roi_pool=MultiScaleRoIAlign(featmap_names=["0"], output_size=ROI_SIZE, sampling_ratio=2),
            box_head=TwoMLPHead(c * ROI_SIZE**2, config.rep_dim),
            box_predictor=FastRCNNPredictor(config.rep_dim, config.num_classes + 1),
            box_score_thresh=0.05,
            box_detections_per_img=20,
            box_batch_size_per_image=64,
        )

    def forward(self, x: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None):
        return self.net(list(x), targets)


def detection_targets(digits: torch.Tensor, lengths: torch.Tensor, boxes: torch.Tensor) -> list[dict]:
    """torchvision's targets from a batch of labels: digits (B, S), lengths (B,), boxes (B, S, 4) ->
    [{"boxes": (L, 4), "labels": (L,) digit + 1}] (label 0 is torchvision's background)."""
    return [{"boxes": b[: int(n)], "labels": d[: int(n)] + 1} for d, n, b in zip(digits, lengths, boxes, strict=True)]


def detection_loss(model: Detector, x: torch.Tensor, digits: torch.Tensor, lengths: torch.Tensor, boxes: torch.Tensor):
    """The sum of Faster R-CNN's four losses (RPN objectness and box, classifier and box) -> () tensor."""
    losses = model(x, detection_targets(digits, lengths, boxes))
    return sum(losses.values())
