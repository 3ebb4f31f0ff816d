"""The command line for every model family: the model flags of `train` and `pretrain`, and the verbs that are
not a training run (`classic`: scikit-learn baselines; `pretrain`: a self-supervised encoder for `train --init`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import replace
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


def cmd_classic(a: argparse.Namespace) -> int:
    from vitdemo.classic import ClassicConfig, fit_classic, save_classic, score_classic
    from vitdemo.data import load_dataset

    config = ClassicConfig(kind=a.kind, seed=a.seed)
    config.validate()
    data = load_dataset(a.dataset, a.data_dir, val_size=a.val_size, seed=a.split_seed, train_subset=a.train_subset)
    print(f"{a.kind} on {len(data.train):,} {a.dataset} training images...", file=sys.stderr)
    start = time.perf_counter()
    fitted = fit_classic(config, data.train.images.numpy(), data.train.labels.numpy(), dataset=a.dataset)
    fit_s = time.perf_counter() - start
    test = score_classic(fitted, data.test)
    metrics: dict[str, Any] = {
        "val_acc": score_classic(fitted, data.val).accuracy if len(data.val) else None,
        "test_acc": test.accuracy,
        "macro_f1": test.report.macro_f1,
        "test_loss": test.loss,
        "train_time_s": fit_s,
        "train_images": len(data.train),
        "split_seed": a.split_seed,
        "val_size": a.val_size,
    }
    fitted = replace(fitted, metrics=metrics)
    if a.json:
        print(json.dumps({"kind": a.kind, "dataset": a.dataset, **metrics, "out": a.out}))
    else:
        print(
            f"{a.kind} on {a.dataset}: test accuracy {test.accuracy:.4%}  macro-F1 {test.report.macro_f1:.4f}  "
            f"loss {test.loss:.4f}  fit {fit_s:.1f} s on {len(data.train):,} images"
        )
    if a.out:
        path = save_classic(a.out, fitted)
        print(f"saved {path} ({path.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
    return 0


# --- pretrain -----------------------------------------------------------------------------------------------


def cmd_pretrain(a: argparse.Namespace) -> int:
    from vitdemo.data import load_dataset
    from vitdemo.pretrain import METHODS, PretrainConfig, PretrainStep, pretrain_encoder, save_encoder
    from vitdemo.train import resolve_device

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
        help="fit a scikit-learn baseline (logistic regression, kNN, SVM, random forest) and score it on the test set",
    )
    p.add_argument("--kind", choices=["logreg", "knn", "svm", "forest"], default="logreg")
    p.add_argument("--out", metavar="FILE.skops", help="save the fitted model (a skops file, never a pickle)")
    p.add_argument("--json", action="store_true", help="one JSON object with the metrics")
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
