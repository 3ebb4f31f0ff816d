"""The command line for every model family: the model flags of `train` and `pretrain`, and the verbs that are
not a training run (`classic`: scikit-learn baselines; `pretrain`: a self-supervised encoder for `train --init`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from vitdemo.cli.flags import add_model_flags, model_from_args
from vitdemo.runconfig import PRETRAIN_METHODS

# --- classic ------------------------------------------------------------------------------------------------


def classic_run_from_args(a: argparse.Namespace) -> Any:
    """The ClassicRun the `classic` flags describe (validated)."""
    from vitdemo.runconfig import ClassicConfig, ClassicRun

    run = ClassicRun(
        model=ClassicConfig(kind=a.kind, seed=a.seed),
        dataset=a.dataset,
        val_size=a.val_size,
        split_seed=a.split_seed,
        train_subset=a.train_subset,
        name=a.name,
    )
    run.validate()
    return run


def cmd_classic(a: argparse.Namespace) -> int:
    """Fit a scikit-learn baseline as a recorded run (like `train`): it is listed, evaluated and compared like
    every other run; its file is the run's `run-<id>.skops` (copied to --out if given)."""
    from vitdemo.models.classic import read_header
    from vitdemo.runs.admission import train_images
    from vitdemo.runs.execute import execute_run
    from vitdemo.runs.queue import start_run
    from vitdemo.runs.store import Registry

    config = classic_run_from_args(a)
    registry = Registry(a.home)
    run_id = start_run(registry, config, os.getpid())  # created running and ours: no worker can claim it
    print(f"run #{run_id}: {a.kind} on {train_images(config):,} {a.dataset} training images...", file=sys.stderr)
    try:
        execute_run(registry, registry.get_run(run_id), data_dir=a.data_dir)
    except KeyboardInterrupt:
        registry.transition(run_id, "cancelled", only_from=("running",), finished_at=time.time())
        print(f"\nrun #{run_id} cancelled", file=sys.stderr)
        return 130
    run = registry.get_run(run_id)
    if run.status != "done" or not run.checkpoint:
        print(f"run #{run_id} {run.status}: {run.error or ''}", file=sys.stderr)
        return 1
    metrics = read_header(run.checkpoint).metrics
    if a.json:
        print(json.dumps({"run": run_id, "kind": a.kind, "dataset": a.dataset, **metrics, "out": a.out}))
    else:
        print(
            f"run #{run_id} {a.kind} on {a.dataset}: test accuracy {metrics['test_acc']:.4%}  "
            f"macro-F1 {metrics['macro_f1']:.4f}  loss {metrics['test_loss']:.4f}  "
            f"fit {metrics['train_time_s']:.1f} s on {metrics['train_images']:,} images  checkpoint {run.checkpoint}"
        )
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.checkpoint, a.out)
        print(f"saved {a.out} ({Path(a.out).stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
    return 0


def evaluate_classic(path: Path, a: argparse.Namespace) -> int:
    """`evaluate` for a scikit-learn file: test accuracy, macro F1 and the confusion matrix, scored by
    vitdemo.models.classic.score_classic on the test split (the same Scores a network gets)."""
    from vitdemo.data import class_names, load_raw
    from vitdemo.metrics import format_confusion
    from vitdemo.models.classic import load_classic, score_classic

    fitted = load_classic(path)
    report = score_classic(fitted, load_raw(fitted.dataset, train=False, data_dir=a.data_dir)).report
    if a.json:
        print(json.dumps({"checkpoint": str(path), **report.to_dict()}))
        return 0
    print(f"{path}  ({fitted.config.kind}, {fitted.dataset}, scikit-learn)")
    print(f"test accuracy {report.accuracy:.4%}   macro F1 {report.macro_f1:.4f}   errors {len(report.misclassified)}")
    print(format_confusion(report.confusion, list(class_names(fitted.dataset))))
    return 0


# --- pretrain -----------------------------------------------------------------------------------------------


def cmd_pretrain(a: argparse.Namespace) -> int:
    from vitdemo.data import load_dataset
    from vitdemo.pretrain import METHODS, PretrainConfig, PretrainStep, pretrain_encoder, save_encoder
    from vitdemo.training.loop import resolve_device

    model = model_from_args(a, METHODS[a.method])
    model.validate()
    given = {k: getattr(a, k) for k in ("epochs", "batch_size", "lr") if getattr(a, k) is not None}
    config = PretrainConfig(seed=a.seed, **given)
    config.validate()
    device = resolve_device(a.device)
    data = load_dataset(a.dataset, a.data_dir, val_size=a.val_size, seed=a.split_seed, train_subset=a.train_subset)
    print(f"{a.method}: a {model.kind} encoder on {len(data.train):,} unlabelled images, on {device}", file=sys.stderr)

    def on_step(info: PretrainStep) -> None:
        if info.step * config.epochs % info.total_steps == 0:  # the last step of an epoch
            print(
                f"epoch {info.epoch}/{config.epochs}: last batch loss {info.loss:.4f}  {info.elapsed_s:.1f}s",
                file=sys.stderr,
            )

    encoder = pretrain_encoder(
        a.method, model, data.train.images, config, mean=data.mean, std=data.std, device=device, on_step=on_step
    )
    path = save_encoder(a.out, encoder, a.dataset, a.name)
    losses = ", ".join(f"{v:.4f}" for v in encoder.losses)
    print(
        f"{a.method} {model.kind} encoder: loss per epoch [{losses}]  {encoder.time_s:.1f} s  saved {path} "
        f"(start a run from it: train --model {model.kind} --init {path} --labels 100)"
    )
    return 0


def add_parsers(sub: Any) -> None:
    """The `classic` and `pretrain` verbs."""
    p = sub.add_parser(
        "classic",
        help="fit a scikit-learn baseline (logistic regression, kNN, SVM, random forest) as a run, scored on the test set",
    )
    p.add_argument("--kind", choices=["logreg", "knn", "svm", "forest"], default="logreg")
    p.add_argument("--out", metavar="FILE.skops", help="also copy the fitted model here (a skops file, never a pickle)")
    p.add_argument("--json", action="store_true", help="one JSON object with the metrics")
    p.add_argument("--name", default="", help="the run's name (default: derived from the settings)")
    p.add_argument("--home", help="where runs and the registry live (default: $VITDEMO_HOME or ./runs)")
    _add_data_flags(p)
    p.set_defaults(func=cmd_classic)

    p = sub.add_parser("pretrain", help="pretrain an encoder without labels (MAE: ViT, SimCLR: CNN) for train --init")
    p.add_argument("--method", choices=["mae", "simclr"], required=True)
    p.add_argument("--out", metavar="FILE.safetensors", required=True, help="the encoder's checkpoint")
    p.add_argument("--epochs", type=int, help="passes over the unlabelled images (default 2)")
    p.add_argument("--batch-size", type=int, help="default 256 (SimCLR's negatives come from the batch)")
    p.add_argument("--lr", type=float, help="AdamW peak, cosine decay (default 1.5e-3)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--name", default="", help="the checkpoint's name (default: '<method> <kind> encoder')")
    _add_data_flags(p)
    add_model_flags(p, kinds=tuple(PRETRAIN_METHODS.values()))  # the families pretraining makes encoders for
    p.set_defaults(func=cmd_pretrain)


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="dataset root (default: $VITDEMO_DATA_DIR or ~/.cache/vitdemo/data)")
    p.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=0, help="picks the held-out validation images")
    p.add_argument("--val-size", type=int, default=5000, help="held out of the 60k training images")
    p.add_argument("--train-subset", type=int, default=0, help=">0: only this many training images")
