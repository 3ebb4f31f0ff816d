"""Reading numbers with either reader: small functions over a model and a batch of images.

- captioner: `greedy` (batched, the evaluation's), `beam_search` (one image: the page's alternatives), and
  `cross_attention` (where each written digit looked, per layer and head and combined);
- detector: `detect` (boxes above a score threshold after non-maximum suppression, left to right).
`read_batch` answers both the same way (`Reading`), for the evaluation, the CLI and the app.

Images are (B, 1, H, W) floats in [0, 1], light ink on black, at the readers' canvas size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from vitdemo.models.captioner import BOS, EOS, PAD

Box = tuple[float, float, float, float, int, float]  # x0, y0, x1, y1 (pixels), digit, score
OVERLAP_IOU = 0.6  # two boxes of different digits overlapping more than this are one digit: the higher score wins


@dataclass(frozen=True)
class Reading:
    text: str  # the digits read, left to right ('' when nothing was found)
    confidence: float  # 0..1: the captioner's sequence probability, the product of the detector's box scores
    boxes: tuple[Box, ...] = ()  # the detector's, left to right
    alternatives: tuple[tuple[str, float], ...] = field(default=())  # the captioner's beam: (text, probability)


def _mask(logp: torch.Tensor, step: int, last: int) -> torch.Tensor:
    """Only what may be written at `step`: never BOS or PAD, no EOS before the first digit, only EOS at `last`."""
    logp = logp.clone()
    logp[:, [BOS, PAD]] = -torch.inf
    if step == 0:
        logp[:, EOS] = -torch.inf
    if step == last:
        logp[:, :EOS] = -torch.inf
    return logp


def _text(tokens: list[int]) -> str:
    out = []
    for t in tokens:
        if t == EOS:
            break
        if t < 10:
            out.append(str(t))
    return "".join(out)


@torch.no_grad()
def greedy(model: nn.Module, x: torch.Tensor) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """The most likely token at each step. x (B, 1, H, W) -> texts, confidences (B,) and the tokens written
    (B, T): BOS, the digits, EOS, then PAD."""
    memory = model.encode(x)  # (B, N, D)
    B, last = x.shape[0], model.config.max_digits
    tokens = torch.full((B, 1), BOS, dtype=torch.long, device=x.device)
    total = torch.zeros(B, device=x.device)
    done = torch.zeros(B, dtype=torch.bool, device=x.device)
    for step in range(last + 1):
        logits, _ = model.decode(memory, tokens)
        logp = _mask(logits[:, -1].float().log_softmax(-1), step, last)  # (B, V)
        best, nxt = logp.max(-1)
        total += torch.where(done, 0.0, best)
        tokens = torch.cat([tokens, torch.where(done, PAD, nxt)[:, None]], 1)
        done |= nxt == EOS
        if bool(done.all()):
            break
    texts = [_text(row[1:].tolist()) for row in tokens]
    return texts, total.exp(), tokens


@torch.no_grad()
def beam_search(model: nn.Module, x: torch.Tensor, beam: int = 4) -> list[tuple[str, float]]:
    """The `beam` most likely numbers for one image x (1, 1, H, W), best first, each with its probability.

    Keeps the `beam` best unfinished prefixes; a prefix that writes EOS is finished. Stops when the best finished
    number is likelier than every unfinished prefix (a longer one can only be less likely)."""
    memory = model.encode(x)  # (1, N, D)
    last = model.config.max_digits
    alive = torch.full((1, 1), BOS, dtype=torch.long, device=x.device)  # (k, t)
    scores = torch.zeros(1, device=x.device)  # (k,)
    finished: list[tuple[str, float]] = []
    for step in range(last + 1):
        logits, _ = model.decode(memory.expand(len(alive), -1, -1), alive)
        logp = _mask(logits[:, -1].float().log_softmax(-1), step, last)  # (k, V)
        total = (scores[:, None] + logp).flatten()  # (k * V,)
        top = total.topk(min(beam * 2, int(torch.isfinite(total).sum())))
        keep_rows, keep_scores = [], []
        for score, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            row, token = divmod(flat, logp.shape[1])
            if token == EOS:
                finished.append((_text(alive[row, 1:].tolist()), score))
            elif len(keep_rows) < beam:
                keep_rows.append(torch.cat([alive[row], alive.new_tensor([token])]))
                keep_scores.append(score)
        finished.sort(key=lambda f: -f[1])
        if not keep_rows or (len(finished) >= beam and finished[beam - 1][1] >= max(keep_scores)):
            break
        alive, scores = torch.stack(keep_rows), torch.tensor(keep_scores, device=x.device)
    return [(text, float(torch.tensor(s).exp())) for text, s in finished[:beam]]


@torch.no_grad()
def cross_attention(model: nn.Module, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Where the decoder looked to write each token of `tokens` (1, T) (BOS, digits..., EOS) for image x (1, 1, H, W).
    Returns (layers, heads, T - 1, gh, gw): step t's weights over the image's patch grid while it wrote token t+1."""
    memory = model.encode(x)
    _, looks = model.decode(memory, tokens[:, :-1], need_weights=True)  # each (1, nh, T - 1, N)
    gh, gw = model.config.grid
    return torch.stack([w[0] for w in looks]).unflatten(-1, (gh, gw))


def combined_attention(weights: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The mean over layers and heads, each step's map scaled to [0, 1] and upsampled to the image:
    (layers, heads, S, gh, gw) -> (S, H, W)."""
    mean = weights.mean((0, 1))  # (S, gh, gw)
    up = F.interpolate(mean[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]  # (S, H, W)
    lo, hi = up.amin((1, 2), keepdim=True), up.amax((1, 2), keepdim=True)
    return (up - lo) / (hi - lo).clamp(min=1e-8)


def iou_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    from torchvision.ops import box_iou

    return box_iou(a, b)


@torch.no_grad()
def detect(model: nn.Module, x: torch.Tensor, threshold: float | None = None) -> list[tuple[Box, ...]]:
    """Each image's digits (B of them): torchvision's detections (already suppressed per class) above the score
    `threshold` (default: the model's), then across classes (two labels on one digit: the surer one), left to
    right by the box's centre."""
    threshold = model.config.score_threshold if threshold is None else threshold
    return [kept_boxes(det, threshold) for det in model(x)]


def kept_boxes(det: dict[str, torch.Tensor], threshold: float) -> tuple[Box, ...]:
    """One image's torchvision detections -> its digits: above `threshold`, one box per place, left to right."""
    from torchvision.ops import nms

    keep = det["scores"] >= threshold
    boxes, labels, scores = det["boxes"][keep], det["labels"][keep], det["scores"][keep]
    kept = nms(boxes, scores, OVERLAP_IOU)
    boxes, labels, scores = boxes[kept], labels[kept], scores[kept]
    order = ((boxes[:, 0] + boxes[:, 2]) / 2).argsort()
    return tuple(
        (*(round(float(v), 1) for v in boxes[i]), int(labels[i]) - 1, round(float(scores[i]), 4))
        for i in order.tolist()
    )


def box_reading(boxes: tuple[Box, ...]) -> Reading:
    confidence = float(torch.tensor([b[5] for b in boxes]).prod()) if boxes else 0.0
    return Reading("".join(str(b[4]) for b in boxes), confidence, boxes)


def read_batch(model: nn.Module, x: torch.Tensor, *, beam: int = 0, batch_size: int = 256) -> list[Reading]:
    """Read every image of x (B, 1, H, W) with a reader (eval mode). beam > 0: the captioner also gives its beam's
    alternatives (one image at a time: for the page and the CLI, not for a whole test set)."""
    kind = model.config.kind
    readings: list[Reading] = []
    for i in range(0, len(x), batch_size):
        part = x[i : i + batch_size]
        if kind == "detector":
            readings += [box_reading(b) for b in detect(model, part)]
            continue
        texts, conf, _ = greedy(model, part)
        for j, (text, c) in enumerate(zip(texts, conf.tolist(), strict=True)):
            alts = tuple(beam_search(model, part[j : j + 1], beam)) if beam else ()
            readings.append(Reading(text, float(c), alternatives=alts))
    return readings


def to_input(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W) uint8 number images -> the readers' (B, 1, H, W) float in [0, 1]."""
    return images.unsqueeze(1).float() / 255.0
