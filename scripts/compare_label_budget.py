"""The honest comparison, small: with few labels, does a self-supervised encoder help the CNN or the ViT?

For each label budget (100 and 600 by default; 6000 and 0 = all as flags), four runs: the CNN from scratch, the
CNN from a SimCLR encoder, the ViT from scratch, the ViT from an MAE encoder. The encoders are pretrained on the
training split's images without their labels (or reused with --simclr-encoder / --mae-encoder).

    VITDEMO_DATA_DIR=/work/shared/data VITDEMO_THREADS=1 python scripts/compare_label_budget.py --labels 100

Fair and honest by construction:
- every run goes through the same trainer (vitdemo.training.loop.train with `labels` and `init`), the same number of
  optimiser steps, the same recipe, and the same scoring (vitdemo.evaluate.score_model);
- the labelled subset is class-balanced and picked by `split_seed`, the same images for every model;
- no run chooses its weights on the 5,000 labelled validation images (a 100-label study cannot have them):
  runs keep their last weights; the validation split is scored once, at the end, to report it;
- "train" is the labelled subset, scored without augmentation; "test" is all 10,000 test images.
Prints a markdown table: accuracy and loss on train/val/test, test macro F1, fine-tuning and pretraining time.
With `--json OUT` the rows are also merged into OUT (a row replaces the one of the same dataset, model and budget,
so MNIST and Fashion-MNIST can be run one after the other into one file); the Leaderboard page reads
checkpoints/label_budget.json:

    python scripts/compare_label_budget.py --labels 100 600 6000 0 --json checkpoints/label_budget.json
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere: `python scripts/...`

from vitdemo.checkpoints import read_meta  # noqa: E402
from vitdemo.config import CNNConfig, ModelConfig, TrainConfig, ViTConfig  # noqa: E402
from vitdemo.data import DatasetSplits, Split, load_dataset  # noqa: E402
from vitdemo.evaluate import score_model
from vitdemo.metrics import Scores
from vitdemo.pretrain import PretrainConfig, is_pretrained_encoder, pretrain_encoder, save_encoder  # noqa: E402
from vitdemo.threads import configure_threads  # noqa: E402
from vitdemo.training.loop import labelled_split, resolve_device, train  # noqa: E402
from vitdemo.views.label_budget import write_results  # noqa: E402

# name -> (model kind, pretraining method or None, linear probe); the probes run only when asked (--runs)
RUNS: dict[str, tuple[str, str | None, bool]] = {
    "CNN": ("cnn", None, False),
    "CNN + SimCLR": ("cnn", "simclr", False),
    "ViT": ("vit", None, False),
    "ViT + MAE": ("vit", "mae", False),
    "CNN + SimCLR probe": ("cnn", "simclr", True),
    "ViT + MAE probe": ("vit", "mae", True),
}
DEFAULT_RUNS = ["CNN", "CNN + SimCLR", "ViT", "ViT + MAE"]


@dataclass(frozen=True)
class Encoder:
    path: Path
    model: ModelConfig
    seconds: float  # pretraining time (0 when reused)
    epochs: int


@dataclass(frozen=True)
class Row:
    name: str
    labels: int
    encoder: Encoder | None
    scores: dict[str, Scores]  # "train" (the labelled subset), "val", "test"
    seconds: float  # the fine-tuning loop
    config: TrainConfig

    def to_json(self, dataset: str, device: str) -> dict:
        """The row as vitdemo.views.label_budget reads it."""
        s = self.scores
        return {
            "dataset": dataset,
            "model": self.name,
            "labels": self.labels,
            **{f"{split}_acc": _number(s[split].accuracy) for split in ("train", "val", "test")},
            **{f"{split}_loss": _number(s[split].loss) for split in ("train", "val", "test")},
            "test_macro_f1": s["test"].report.macro_f1,
            "finetune_s": round(self.seconds, 1),
            "pretrain_s": round(self.encoder.seconds, 1) if self.encoder else None,
            "pretrain_epochs": self.encoder.epochs if self.encoder else None,
            "epochs": self.config.epochs,
            "batch_size": self.config.batch_size,
            "device": device,
            "seed": self.config.seed,
        }


def _number(value: float) -> float | None:
    """A measure for the JSON file: None for NaN (an empty split), which JSON cannot hold."""
    return float(value) if math.isfinite(value) else None


def get_encoder(method: str, model: ModelConfig, data: DatasetSplits, args: argparse.Namespace) -> Encoder:
    """The encoder file given on the command line, else a fresh pretraining saved under --out."""
    given = args.simclr_encoder if method == "simclr" else args.mae_encoder
    if given:
        meta = read_meta(given)
        if not is_pretrained_encoder(meta):
            raise SystemExit(f"{given} is not a pretrained encoder (no pretrained_encoder tag in its metrics)")
        return Encoder(Path(given), meta.model_config, 0.0, int(meta.metrics.get("pretrain", {}).get("epochs", 0)))
    images = data.train.images[: args.pretrain_subset] if args.pretrain_subset else data.train.images
    print(f"pretraining {method} on {len(images):,} unlabelled images, {args.pretrain_epochs} epoch(s)...", flush=True)
    config = PretrainConfig(epochs=args.pretrain_epochs, seed=args.seed)
    device = resolve_device(args.device)
    enc = pretrain_encoder(method, model, images, config, mean=data.mean, std=data.std, device=device)
    path = save_encoder(args.out / f"{method}_{model.kind}_{data.name}.safetensors", enc, data.name)
    print(f"  {enc.time_s:.0f} s, loss per epoch {[round(v, 4) for v in enc.losses]} -> {path}", flush=True)
    return Encoder(path, model, enc.time_s, args.pretrain_epochs)


def run_config(model: ModelConfig, labels: int, n_train: int, args: argparse.Namespace, init: str) -> TrainConfig:
    """The same recipe for every run: `args.steps` optimiser steps whatever the budget (at least one epoch)."""
    per_epoch = math.ceil((labels or n_train) / args.batch_size)
    epochs = min(500, max(1, round(args.steps / per_epoch)))
    return TrainConfig(
        model=model,
        dataset=args.dataset,
        epochs=epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_epochs=0.1 * epochs,
        seed=args.seed,
        device=args.device,
        labels=labels,
        init=init,
        keep="last",  # no model selection on labelled validation images
    )


def fine_tune(name: str, config: TrainConfig, data: DatasetSplits, encoder: Encoder | None) -> Row:
    empty = Split(data.val.images[:0], data.val.labels[:0])
    result = train(config, data=dataclasses.replace(data, val=empty))  # the val split stays unseen until the end
    splits = {"train": labelled_split(data.train, config), "val": data.val, "test": data.test}
    device = resolve_device(config.device)
    scores = {
        k: score_model(result.model.to(device), s, data.mean, data.std, num_classes=10, device=device)
        for k, s in splits.items()
    }
    return Row(name, config.labels, encoder, scores, result.train_time_s, config)


def table(rows: list[Row]) -> str:
    head = "| model | labels | train acc | val acc | test acc | train loss | val loss | test loss | test macro F1 "
    head += "| fine-tune s | pretraining |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
    lines = [head]
    for r in rows:
        s = r.scores
        pre = f"{r.encoder.epochs} ep, {r.encoder.seconds:.0f} s" if r.encoder else "none"
        lines.append(
            f"| {r.name} | {r.labels or 'all'} | {s['train'].accuracy:.2%} | {s['val'].accuracy:.2%} "
            f"| {s['test'].accuracy:.2%} | {s['train'].loss:.3f} | {s['val'].loss:.3f} | {s['test'].loss:.3f} "
            f"| {s['test'].report.macro_f1:.4f} | {r.seconds:.0f} | {pre} |"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist")
    p.add_argument("--labels", type=int, nargs="+", default=[100, 600], help="budgets; 6000 or 0 (= all) too")
    p.add_argument("--runs", nargs="+", choices=list(RUNS), default=DEFAULT_RUNS, metavar="RUN", help=", ".join(RUNS))
    p.add_argument("--pretrain-epochs", type=int, default=1)
    p.add_argument("--pretrain-subset", type=int, default=0, help="unlabelled images to pretrain on (0 = all)")
    p.add_argument("--simclr-encoder", help="reuse this SimCLR encoder checkpoint instead of pretraining")
    p.add_argument("--mae-encoder", help="reuse this MAE encoder checkpoint instead of pretraining")
    p.add_argument("--steps", type=int, default=300, help="optimiser steps per fine-tune")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--out", type=Path, default=Path("/tmp/compare_label_budget"), help="where encoders are saved")
    p.add_argument("--json", type=Path, metavar="OUT", help="merge the rows into this results file (JSON)")
    p.add_argument("--note", default="", help="with --json: a sentence on how these rows were measured")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    configure_threads()
    data = load_dataset(args.dataset, val_size=5000, seed=0)
    models: dict[str, ModelConfig] = {"cnn": CNNConfig(), "vit": ViTConfig()}
    for kind, given in (("cnn", args.simclr_encoder), ("vit", args.mae_encoder)):
        if given:  # a reused encoder fixes the architecture, for its scratch twin too
            models[kind] = read_meta(given).model_config
    encoders: dict[str, Encoder] = {}
    rows: list[Row] = []
    for name in args.runs:
        kind, method, probe = RUNS[name]
        if method and method not in encoders:
            encoders[method] = get_encoder(method, models[kind], data, args)
        encoder = encoders[method] if method else None
        for labels in args.labels:
            config = run_config(models[kind], labels, len(data.train), args, str(encoder.path) if encoder else "")
            config = dataclasses.replace(config, probe=probe)
            start = time.perf_counter()
            row = fine_tune(name, config, data, encoder)
            print(
                f"{name:14} {labels or 'all':>5} labels, {config.epochs} epochs: "
                f"test {row.scores['test'].accuracy:.2%}  ({time.perf_counter() - start:.0f} s with scoring)",
                flush=True,
            )
            rows.append(row)
    print()
    print(table(rows))
    if args.json:
        device = str(resolve_device(args.device))
        path = write_results(args.json, [r.to_json(args.dataset, device) for r in rows], note=args.note)
        print(f"\n{len(rows)} rows merged into {path}")


if __name__ == "__main__":
    main()
