"""The command line for every model family: the model flags of `train` and `pretrain`, and the verbs that are
not a training run (`classic`: scikit-learn baselines; `pretrain`: a self-supervised encoder for `train --init`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from vitdemo.config import ARCHS, MODEL_CONFIGS, ConfigError, MLPConfig, ModelConfig, TransferConfig

# argparse dest -> the flag, for messages (the same word as the model config's field, except --no-pretrained)
MODEL_FLAGS: dict[str, str] = {
    name: f"--{name.replace('_', '-')}"
    for name in ("patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "dropout", "width", "hidden")
}
MODEL_FLAGS |= {"arch": "--arch", "image_px": "--image-px", "finetune": "--finetune", "pretrained": "--no-pretrained"}


def hidden_sizes(text: str) -> tuple[int, ...]:
    """'256,128' -> (256, 128); argparse turns the ValueError into a usage error."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected layer sizes like 256,128, got {text!r}") from None


def add_model_flags(p: argparse.ArgumentParser, *, all_kinds: bool = True) -> None:
    """The model kinds' settings (only the ViT's and the CNN's unless `all_kinds`); each defaults to its kind's
    own default (or the recipe's)."""
    d = {kind: cls() for kind, cls in MODEL_CONFIGS.items()}
    v, c, m, t = d["vit"], d["cnn"], d["mlp"], d["transfer"]
    g = p.add_argument_group("ViT")
    g.add_argument("--patch-size", type=int, choices=[4, 7, 14], help=f"default {v.patch_size}")
    g.add_argument("--embed-dim", type=int, help=f"default {v.embed_dim}")
    g.add_argument("--num-heads", type=int, help=f"default {v.num_heads}")
    g.add_argument("--mlp-ratio", type=float, help=f"default {v.mlp_ratio}")
    g.add_argument("--depth", type=int, help=f"blocks (ViT, default {v.depth}) or stages (CNN, default {c.depth})")
    dropouts = f"default {v.dropout} (ViT), {c.dropout} (CNN)"
    if all_kinds:
        dropouts += f", {m.dropout} (MLP), {t.dropout} (transfer)"
    g.add_argument("--dropout", type=float, help=dropouts)
    g = p.add_argument_group("CNN")
    g.add_argument("--width", type=int, help=f"channels of the first stage (default {c.width})")
    if all_kinds:
        _add_family_flags(p, m, t)


def _add_family_flags(p: argparse.ArgumentParser, m: MLPConfig, t: TransferConfig) -> None:
    g = p.add_argument_group("MLP")
    default_hidden = ",".join(map(str, m.hidden))
    g.add_argument("--hidden", type=hidden_sizes, help=f"hidden layer sizes (default {default_hidden})")
    g = p.add_argument_group("transfer (a torchvision ImageNet network on upscaled digits)")
    g.add_argument("--arch", choices=ARCHS, help=f"default {t.arch}")
    g.add_argument("--image-px", type=int, help=f"upscale the 28 px digits to this (default {t.image_px})")
    g.add_argument("--finetune", choices=["all", "head"], help="train the whole network or only the new head")
    g.add_argument(
        "--no-pretrained", dest="pretrained", action="store_const", const=False, help="random weights, no ImageNet"
    )


def model_from_args(a: argparse.Namespace, kind: str, base: ModelConfig | None = None) -> ModelConfig:
    """`kind`'s config (from `base` when it is that kind) with the model flags that were given; a flag that is
    not a setting of `kind` is a ConfigError, never silently ignored."""
    cls = MODEL_CONFIGS[kind]
    start = base if base is not None and base.kind == kind else cls()
    given = {k: getattr(a, k) for k in MODEL_FLAGS if getattr(a, k, None) is not None}
    fields = {f.name for f in dataclasses.fields(cls)}
    wrong = [MODEL_FLAGS[k] for k in given if k not in fields]
    if wrong:
        raise ConfigError(f"{wrong[0]} is not a setting of a {kind} model")
    return replace(start, **given)


# --- classic ------------------------------------------------------------------------------------------------


def classic_run_from_args(a: argparse.Namespace) -> Any:
    """The ClassicRun the `classic` flags describe (validated)."""
    from vitdemo.families import ClassicConfig, ClassicRun

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
    add_model_flags(p, all_kinds=False)
    p.set_defaults(func=cmd_pretrain)


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="dataset root (default: $VITDEMO_DATA_DIR or ~/.cache/vitdemo/data)")
    p.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=0, help="picks the held-out validation images")
    p.add_argument("--val-size", type=int, default=5000, help="held out of the 60k training images")
    p.add_argument("--train-subset", type=int, default=0, help=">0: only this many training images")
