"""Can you trust this map? Two published checks of an explanation, run on a fixed set of test images.

1. Deletion and insertion (Petsiuk et al. 2018, "RISE"): blank the pixels in the order the map ranks them,
   most important first, and follow the probability of the predicted class; the area under that curve is
   small when the map found what the model needs (deletion AUC: lower is better). Insertion starts from a blank
   image and puts the pixels back in the same order (insertion AUC: higher is better). A map is only worth
   something if it beats a random map and a fixed blob in the centre of the image (where digits are anyway).
2. Model randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps"): the map of a randomly
   initialised model of the same configuration must look different from the trained model's; if it does not,
   the map shows the input (its edges), not what the model learned. Measured by the Spearman rank correlation
   of the two maps, image by image (near 0: independent; 1: the same ranking).

Everything is batched: every perturbed image of every step goes through the model in large batches.
`python -m vitdemo.explain.trust FILE...` prints the tables for checkpoints; `--cam-candidates` compares CNN maps.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vitdemo.checkpoints import LoadedModel, load_checkpoint
from vitdemo.data import Split, load_raw, to_input
from vitdemo.explain.maps import (
    IG_STEPS,
    IG_STEPS_BY_DESIGN,
    blank_value,
    explain_prediction,
    grad_cam,
    integrated_gradients,
)
from vitdemo.explain.readable import QUANTILE, SIGMA_PX, shown_maps
from vitdemo.families.cnn import stage_sides
from vitdemo.models import build_model

Progress = Callable[[float], None]  # the share of the work done, 0..1
Explainer = Callable[[nn.Module, Tensor], tuple[Tensor, Tensor]]  # (model, x (B, 1, H, W)) -> (logits, maps (B, H, W))
BASELINES = ("model", "random", "centre")  # the model's own map, then the two maps it must beat
BASELINE_NAMES = {"model": "the model's map", "random": "random map", "centre": "centre blob"}
N_IMAGES = 200  # test images per report: AUCs vary by about +-0.01 between seeds at this size
STEPS = 28  # 28 pixels (one image row's worth) per step: 29 points from the whole image to a blank one
INK_THRESHOLD = 0.1  # a raw pixel above this (of 1.0) is part of the digit or garment
CHUNK = 2048  # images per forward pass while scoring the perturbed images


# --- maps ------------------------------------------------------------------------------------------------
def fixed_indices(total: int, n: int, seed: int = 0) -> Tensor:
    """The first n of a seeded permutation of range(total): the same test images on every machine. (n,) int64."""
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[: min(n, total)]


def model_maps(model: nn.Module, loaded: LoadedModel, x: Tensor) -> tuple[Tensor, Tensor]:
    """The app's explanation of each prediction of `model` (the checkpoint's own, or a randomised copy), as the
    pages show it: (logits (B, C), maps (B, H, W) in [0, 1]). Attention rollout for a ViT, integrated gradients
    for a CNN (made readable by vitdemo.explain.readable: smoothed, scaled by a high quantile)."""
    meta = loaded.meta
    logits, heat, _ = explain_prediction(model, x, loaded.kind, mean=meta.mean, std=meta.std, size=x.shape[-1])
    return logits, shown_maps(loaded.kind, heat)


# what a stored report's map was; part of its key
MAP_VERSION = f"ig{IG_STEPS}-lean{IG_STEPS_BY_DESIGN['lean']}-readable-s{SIGMA_PX}-q{QUANTILE}"


def report_settings(n_images: int = N_IMAGES, steps: int = STEPS, seed: int = 0) -> str:
    """What a report of the app's own map depends on besides the model and the split (a stored report's key)."""
    return f"images={n_images} steps={steps} seed={seed} map={MAP_VERSION}"


def random_maps(n: int, size: int = 28, seed: int = 0) -> Tensor:
    """Uniform noise maps (n, size, size): the floor every explanation must beat."""
    return torch.rand(n, size, size, generator=torch.Generator().manual_seed(seed))


def centre_blob(n: int, size: int = 28, sigma: float | None = None) -> Tensor:
    """A Gaussian in the middle of every image (n, size, size): what "look at the middle" alone achieves
    (MNIST digits are centred by their centre of mass). sigma: size / 5 by default (about the digit's spread)."""
    sigma = sigma or size / 5
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2  # (size,)
    blob = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma**2))  # (size, size)
    return blob.expand(n, size, size).clone()


def pixel_ranks(maps: Tensor, seed: int = 0) -> Tensor:
    """(B, H, W) maps -> (B, H*W) int64: each pixel's place in the order of importance (0 = most important).
    Equal values (a flat part of the map) are ordered at random, seeded, so that no map gains from the
    row-major order of its ties."""
    flat = maps.flatten(1).float()  # (B, P)
    B, P = flat.shape
    shuffle = torch.rand(B, P, generator=torch.Generator().manual_seed(seed)).argsort(dim=1)  # (B, P) permutations
    order = shuffle.gather(1, flat.gather(1, shuffle).argsort(dim=1, descending=True, stable=True))  # (B, P) pixels
    return torch.empty_like(order).scatter_(1, order, torch.arange(P).expand(B, P))  # (B, P)


# --- deletion and insertion --------------------------------------------------------------------------------
def step_counts(pixels: int, steps: int) -> Tensor:
    """How many pixels are changed at each of steps + 1 points, 0 to all: (steps + 1,) int64."""
    return torch.round(torch.linspace(0, pixels, steps + 1)).long()


def perturbed(x: Tensor, ranks: Tensor, counts: Tensor, background: float, *, insert: bool) -> Tensor:
    """Every step's image: x (B, 1, H, W), ranks (B, H*W), counts (S,) -> (B, S, 1, H, W).
    Deletion sets the `count` most important pixels to the blank value; insertion starts blank and puts
    them back."""
    B, _, H, W = x.shape
    changed = ranks[:, None, :] < counts[None, :, None]  # (B, S, P): already removed (or inserted)
    flat = x.flatten(1)[:, None, :]  # (B, 1, P)
    blank = torch.full_like(flat, background)
    out = torch.where(changed, flat, blank) if insert else torch.where(changed, blank, flat)  # (B, S, P)
    return out.view(B, len(counts), 1, H, W)


@torch.no_grad()
def class_probability(model: nn.Module, x: Tensor, classes: Tensor, temperature: float = 1.0) -> Tensor:
    """softmax(logits / T)[class] for x (N, 1, H, W) and classes (N,), in chunks of CHUNK: (N,)."""
    out = [
        torch.softmax(model(x[i : i + CHUNK]).float() / temperature, dim=-1).gather(1, classes[i : i + CHUNK, None])
        for i in range(0, len(x), CHUNK)
    ]
    return torch.cat(out)[:, 0] if out else torch.zeros(0)


def perturbation_curves(
    model: nn.Module,
    x: Tensor,
    maps: Tensor,
    classes: Tensor,
    *,
    background: float,
    steps: int = STEPS,
    temperature: float = 1.0,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """(deletion, insertion) probabilities of `classes` (B,), each (B, steps + 1), for x (B, 1, H, W) perturbed
    in the order of maps (B, H, W)."""
    B = x.shape[0]
    ranks = pixel_ranks(maps, seed)  # (B, P)
    counts = step_counts(ranks.shape[1], steps)  # (S,)
    repeat = classes.repeat_interleave(len(counts))  # (B * S,)
    curves = []
    for insert in (False, True):
        images = perturbed(x, ranks, counts, background, insert=insert).flatten(0, 1)  # (B * S, 1, H, W)
        curves.append(class_probability(model, images, repeat, temperature).view(B, len(counts)))
    return curves[0], curves[1]


def area_under(curves: Tensor) -> Tensor:
    """Area under each curve (B, S) over fractions 0..1 (trapezoid rule): (B,), in [0, 1] for probabilities."""
    return torch.trapezoid(curves, dx=1.0 / (curves.shape[-1] - 1), dim=-1)


# --- where the map points ----------------------------------------------------------------------------------
def near_ink(images: Tensor, threshold: float = INK_THRESHOLD) -> Tensor:
    """Raw images (B, H, W) uint8 -> (B, H, W) bool: ink, or within one pixel of it (the digit or garment)."""
    ink = (images.float() / 255.0 > threshold).float()[:, None]  # (B, 1, H, W)
    return F.max_pool2d(ink, 3, stride=1, padding=1)[:, 0] > 0  # ink dilated by one pixel


def background_share(maps: Tensor, images: Tensor, threshold: float = INK_THRESHOLD) -> Tensor:
    """The share of each map's weight on empty background: maps (B, H, W) >= 0, raw images (B, H, W) uint8 -> (B,).
    "Empty" is more than one pixel away from any ink, so a map that hugs the strokes scores near 0 and a
    map spread evenly scores the image's share of empty pixels (about 0.7 for a digit)."""
    empty = (~near_ink(images, threshold)).flatten(1).float()  # (B, P)
    mass = maps.clamp_min(0).flatten(1)  # (B, P)
    total = mass.sum(1)
    off = (mass * empty).sum(1)
    return torch.where(total > 0, off / total.clamp_min(1e-12), torch.zeros_like(total))


# --- model randomisation --------------------------------------------------------------------------------------
def randomized_model(loaded: LoadedModel, seed: int = 0) -> nn.Module:
    """A freshly initialised model of the checkpoint's configuration (eval mode); the global RNG is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(loaded.meta.model_config).eval()


def average_ranks(values: Tensor) -> Tensor:
    """Rank of every entry of each row (B, P), ties sharing their average rank (as scipy's rankdata): (B, P)."""
    values = values.float().contiguous()
    ordered = values.sort(dim=1).values
    lo = torch.searchsorted(ordered, values, right=False)  # entries below
    hi = torch.searchsorted(ordered, values, right=True)  # entries below or equal
    return (lo + hi - 1).float() / 2


def spearman(a: Tensor, b: Tensor, mask: Tensor | None = None) -> Tensor:
    """Spearman rank correlation of each pair of maps a, b (B, ...) -> (B,), over the entries where `mask`
    (B, ...) is True (all by default); 0 where a map is constant there."""
    a, b = a.flatten(1).float(), b.flatten(1).float()  # (B, P)
    keep = torch.ones_like(a, dtype=torch.bool) if mask is None else mask.flatten(1)
    # Entries left out tie below all others: the kept ones' ranks only shift by a constant per row.
    ra = average_ranks(torch.where(keep, a, -torch.inf))
    rb = average_ranks(torch.where(keep, b, -torch.inf))
    w = keep.float()
    n = w.sum(1, keepdim=True).clamp_min(1)
    ra, rb = (ra - (ra * w).sum(1, keepdim=True) / n) * w, (rb - (rb * w).sum(1, keepdim=True) / n) * w
    denom = ra.norm(dim=1) * rb.norm(dim=1)
    return torch.where(denom > 1e-9, (ra * rb).sum(1) / denom.clamp_min(1e-9), torch.zeros_like(denom))


# --- the report -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare with ==
class MapScores:
    """One kind of map (the model's, random or the centre blob) on the report's images."""

    name: str  # one of BASELINES
    deletion: np.ndarray  # (S,) mean probability of the predicted class after blanking a fraction of the pixels
    insertion: np.ndarray  # (S,) the same, starting blank and putting the pixels back
    deletion_auc: float  # lower is better
    insertion_auc: float  # higher is better
    background_share: float  # mean share of the map's weight on empty background


@dataclass(frozen=True, eq=False)
class TrustReport:
    """Both checks for one model and its explanation."""

    kind: str  # "vit" or "cnn"
    n_images: int
    fractions: np.ndarray  # (S,) fraction of the pixels blanked (deletion) or put back (insertion)
    scores: dict[str, MapScores]  # keyed by BASELINES
    randomization: np.ndarray  # (n_images,) Spearman of the trained and a randomised model's map, per image
    randomization_on_ink: np.ndarray  # (n_images,) the same over the ink pixels only
    seconds: float  # the whole report, on this machine
    timings: dict[str, float] = field(default_factory=dict)  # seconds per part

    @property
    def rank_correlation(self) -> float:
        """Mean Spearman correlation between the trained and the randomised model's maps (low: passes)."""
        return float(self.randomization.mean()) if len(self.randomization) else float("nan")

    @property
    def rank_correlation_on_ink(self) -> float:
        """The same on the digit (or garment) only: a map that is 0 on every blank pixel by construction (as
        integrated gradients from the blank image is) shares that zero background with any model's map."""
        return float(self.randomization_on_ink.mean()) if len(self.randomization_on_ink) else float("nan")

    def rows(self) -> list[dict[str, float | str]]:
        """One row per kind of map: its name and AUCs, for a table."""
        return [
            {
                "map": BASELINE_NAMES[s.name],
                "deletion AUC": s.deletion_auc,
                "insertion AUC": s.insertion_auc,
                "background share": s.background_share,
            }
            for s in self.scores.values()
        ]


def _scores(name: str, deletion: Tensor, insertion: Tensor, share: Tensor) -> MapScores:
    return MapScores(
        name,
        deletion.mean(0).numpy(),
        insertion.mean(0).numpy(),
        float(area_under(deletion).mean()),
        float(area_under(insertion).mean()),
        float(share.mean()),
    )


def trust_report(
    loaded: LoadedModel,
    split: Split,
    *,
    n_images: int = N_IMAGES,
    steps: int = STEPS,
    seed: int = 0,
    explain: Explainer | None = None,
    baselines: Sequence[str] = BASELINES,
    progress: Progress | None = None,
) -> TrustReport:
    """Deletion and insertion curves (the model's map, a random map, the centre blob) and the randomisation
    check for `loaded` on n_images seeded test images of `split`. `explain`: another map to check
    (model, x) -> (logits, maps (B, H, W)); the app's own explanation by default. `baselines`: which maps
    get curves ("model" alone skips the random map and the blob). `progress` hears the share done after each
    part (the maps, each map's curves, the randomised model)."""
    t0 = time.perf_counter()
    parts, done = len(baselines) + 2, 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done / parts)

    explain = explain or (lambda model, x: model_maps(model, loaded, x))
    meta, model = loaded.meta, loaded.model.eval()
    idx = fixed_indices(len(split), n_images, seed)
    raw = split.images[idx]  # (B, H, W) uint8
    x = to_input(raw, meta.mean, meta.std)  # (B, 1, H, W)
    B, size = len(x), x.shape[-1]
    background = (0.0 - meta.mean) / meta.std  # a blank (black) pixel after normalisation
    logits, maps = explain(model, x)  # (B, C), (B, H, W)
    classes = logits.argmax(1)  # each image's prediction: the class its map explains
    timings = {"maps": time.perf_counter() - t0}
    tick()
    candidates = {"model": maps, "random": random_maps(B, size, seed + 1), "centre": centre_blob(B, size)}
    scores = {}
    for name in baselines:
        m = candidates[name]
        t = time.perf_counter()
        deletion, insertion = perturbation_curves(
            model, x, m, classes, background=background, steps=steps, temperature=meta.temperature, seed=seed
        )
        scores[name] = _scores(name, deletion, insertion, background_share(m, raw))
        timings[name] = time.perf_counter() - t
        tick()
    t = time.perf_counter()
    _, random_model_maps = explain(randomized_model(loaded, seed), x)
    randomization = spearman(maps, random_model_maps).numpy()
    on_ink = spearman(maps, random_model_maps, raw.float() / 255.0 > INK_THRESHOLD).numpy()
    timings["randomization"] = time.perf_counter() - t
    tick()
    fractions = step_counts(size * size, steps).double().numpy() / (size * size)
    seconds = time.perf_counter() - t0
    return TrustReport(loaded.kind, B, fractions, scores, randomization, on_ink, seconds, timings)


# --- CNN map candidates (how the app's CNN explanation was chosen) ------------------------------------------
def cnn_candidates(loaded: LoadedModel) -> dict[str, Explainer]:
    """Explanations a CNN checkpoint could show, by label: Grad-CAM and its variants on each stage, and
    integrated gradients from the blank image with a few numbers of steps (the app uses explain_cnn)."""
    depth, blank = loaded.meta.model_config.depth, blank_value(loaded.meta.mean, loaded.meta.std)
    sides = stage_sides(loaded.meta.model_config)
    found: dict[str, Explainer] = {}
    for method in ("gradcam", "gradcam++", "hirescam", "layercam"):
        for stage in range(depth):
            side = sides[stage]
            label = f"{method}, stage {stage + 1} ({side}x{side})"
            found[label] = partial(_cam, stages=(stage,), method=method)
    found[f"layercam, stages 1-{depth} averaged"] = partial(_cam, stages=tuple(range(depth)), method="layercam")
    for steps in (4, 8, 12, 16, 32):
        found[f"integrated gradients, {steps} steps"] = partial(_ig, baseline=blank, steps=steps)
    return found


def _cam(model: nn.Module, x: Tensor, **options) -> tuple[Tensor, Tensor]:
    return grad_cam(model, x, size=x.shape[-1], **options)


def _ig(model: nn.Module, x: Tensor, **options) -> tuple[Tensor, Tensor]:
    return integrated_gradients(model, x, size=x.shape[-1], **options)


def compare_maps(
    loaded: LoadedModel, split: Split, candidates: Mapping[str, Explainer], **kwargs
) -> dict[str, TrustReport]:
    """A trust report (the candidate's own curves only) for each candidate map, on the same images."""
    return {
        label: trust_report(loaded, split, explain=explain, baselines=("model",), **kwargs)
        for label, explain in candidates.items()
    }


# --- command line ------------------------------------------------------------------------------------------------
def format_report(name: str, report: TrustReport) -> str:
    """The AUC table of one report as aligned text."""
    lines = [
        f"{name}: {report.n_images} test images, {report.seconds:.1f} s "
        f"(maps {report.timings.get('maps', 0):.2f} s, randomisation {report.timings.get('randomization', 0):.2f} s)",
        f"  {'map':<16} {'deletion AUC':>13} {'insertion AUC':>14} {'background':>11}",
    ]
    for row in report.rows():
        lines.append(
            f"  {row['map']:<16} {row['deletion AUC']:>13.4f} {row['insertion AUC']:>14.4f} "
            f"{row['background share']:>11.3f}"
        )
    lines.append(
        f"  randomised model's map vs trained (Spearman, mean): {report.rank_correlation:+.3f} "
        f"(on the ink: {report.rank_correlation_on_ink:+.3f})"
    )
    return "\n".join(lines)


def format_candidates(reports: Mapping[str, TrustReport]) -> str:
    header = (
        f"  {'candidate':<34} {'deletion':>9} {'insertion':>10} {'backgr.':>8} {'rho all':>8} {'rho ink':>8} "
        f"{'maps s':>7}"
    )
    lines = [header]
    for label, r in reports.items():
        m = r.scores["model"]
        lines.append(
            f"  {label:<34} {m.deletion_auc:>9.4f} {m.insertion_auc:>10.4f} {m.background_share:>8.3f} "
            f"{r.rank_correlation:>+8.3f} {r.rank_correlation_on_ink:>+8.3f} {r.timings['maps']:>7.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitdemo.explain.trust", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", metavar="FILE", help="checkpoints to check")
    parser.add_argument("--images", type=int, default=N_IMAGES, help="seeded test images (default %(default)s)")
    parser.add_argument("--steps", type=int, default=STEPS, help="points on each curve - 1 (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", help="dataset root (default: $VITDEMO_DATA_DIR)")
    parser.add_argument("--cam-candidates", action="store_true", help="compare CNN maps (Grad-CAM variants, IG)")
    a = parser.parse_args(argv)
    for file in a.files:
        loaded = load_checkpoint(file)
        split = load_raw(loaded.meta.dataset, train=False, data_dir=a.data_dir)
        kwargs = {"n_images": a.images, "steps": a.steps, "seed": a.seed}
        print(format_report(Path(file).name, trust_report(loaded, split, **kwargs)), flush=True)
        if a.cam_candidates and loaded.kind == "cnn":
            print(format_candidates(compare_maps(loaded, split, cnn_candidates(loaded), **kwargs)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
