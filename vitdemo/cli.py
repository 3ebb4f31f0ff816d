"""The command line. Every command works in a terminal without Streamlit."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sqlite3
import sys
import time
from pathlib import Path

from vitdemo import paths
from vitdemo.config import CNNConfig, ConfigError, TrainConfig, ViTConfig
from vitdemo.runs.dbfile import RegistryBusy, RegistryError, RegistryUnavailable
from vitdemo.runs.store import Registry


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="dataset root (default: $VITDEMO_DATA_DIR or ~/.cache/vitdemo/data)")
    p.add_argument("--home", help="where runs and the registry live (default: $VITDEMO_HOME or ./runs)")


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    t, v, c = TrainConfig(), ViTConfig(), CNNConfig()
    p.add_argument("--model", choices=["vit", "cnn"], default="vit")
    p.add_argument("--dataset", choices=["mnist", "fashion"], default=t.dataset)
    g = p.add_argument_group("ViT")
    g.add_argument("--patch-size", type=int, default=v.patch_size, choices=[4, 7, 14])
    g.add_argument("--embed-dim", type=int, default=v.embed_dim)
    g.add_argument("--depth", type=int, help=f"blocks (ViT, default {v.depth}) or stages (CNN, default {c.depth})")
    g.add_argument("--num-heads", type=int, default=v.num_heads)
    g.add_argument("--mlp-ratio", type=float, default=v.mlp_ratio)
    g.add_argument("--dropout", type=float, help=f"default {v.dropout} (ViT), {c.dropout} (CNN)")
    g = p.add_argument_group("CNN")
    g.add_argument("--width", type=int, default=c.width, help="channels of the first stage")
    g = p.add_argument_group("training")
    for name in ("epochs", "batch_size", "seed", "val_size", "train_subset"):
        g.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(t, name))
    g.add_argument(
        "--split-seed",
        type=int,
        default=t.split_seed,
        help="picks the validation images (--seed drives initialisation, shuffling and augmentation)",
    )
    for name in ("lr", "weight_decay", "warmup_epochs", "label_smoothing", "grad_clip", "augment"):
        g.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(t, name))
    g.add_argument("--schedule", choices=["cosine", "onecycle"], default=t.schedule)
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], default=t.device)
    g.add_argument("--keep", choices=["best", "last"], default=t.keep)
    g.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the model (CUDA or CPU: ~1.3x faster steps after a ~30 s compile)",
    )
    g.add_argument("--no-amp", action="store_true", help="disable bf16 autocast on CUDA")
    g.add_argument("--name", default="", help="run name (default: derived from the settings)")
    g.add_argument("--out", help="also copy the checkpoint to this path (e.g. checkpoints/vit_mnist.safetensors)")


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    if a.model == "vit":
        model = ViTConfig(
            patch_size=a.patch_size,
            embed_dim=a.embed_dim,
            depth=a.depth if a.depth is not None else ViTConfig.depth,
            num_heads=a.num_heads,
            mlp_ratio=a.mlp_ratio,
            dropout=a.dropout if a.dropout is not None else ViTConfig.dropout,
        )
    else:
        model = CNNConfig(
            width=a.width,
            depth=a.depth if a.depth is not None else CNNConfig.depth,
            dropout=a.dropout if a.dropout is not None else CNNConfig.dropout,
        )
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"model", "compile", "amp"}
    return TrainConfig(model=model, compile=a.compile, amp=not a.no_amp, **{k: getattr(a, k) for k in fields})


def cmd_train(a: argparse.Namespace) -> int:
    from vitdemo.progress import ProgressBar
    from vitdemo.runs.execute import execute_run
    from vitdemo.runs.queue import start_run

    config = config_from_args(a)
    registry = Registry(a.home)
    run_id = start_run(registry, config, os.getpid())  # created running and ours: no worker can claim it
    run = registry.get_run(run_id)
    print(f"run #{run_id} {run.name}: {json.dumps(config.to_dict(), sort_keys=True)}", file=sys.stderr)
    try:
        result = execute_run(registry, run, data_dir=a.data_dir, extra_callbacks=(ProgressBar(),))
    except KeyboardInterrupt:
        registry.transition(run_id, "cancelled", only_from=("running",), finished_at=time.time())
        print(f"\nrun #{run_id} cancelled", file=sys.stderr)
        return 130
    run = registry.get_run(run_id)
    if run.status != "done" or result is None:
        print(f"run #{run_id} {run.status}: {run.error or ''}", file=sys.stderr)
        return 1
    print(
        f"run #{run_id} done: val {run.val_acc:.4%}  test {run.test_acc:.4%}  macro-F1 {run.macro_f1:.4f}  "
        f"{run.train_time_s:.1f} s on {run.device}  checkpoint {run.checkpoint}"
    )
    if a.out:
        import shutil

        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.checkpoint, a.out)
        print(f"copied to {a.out}")
    return 0


def resolve_model_ref(ref: str, registry: Registry) -> Path:
    """A run id ('7' or '#7') or a checkpoint path -> checkpoint path."""
    if Path(ref).is_file():
        return Path(ref)
    key = ref.lstrip("#")
    if key.isdigit():
        run = registry.get_run(int(key))
        if not run.checkpoint:
            raise ValueError(f"run #{key} has no checkpoint (status: {run.status})")
        return Path(run.checkpoint)
    raise ValueError(f"{ref!r} is neither a checkpoint file nor a run id")


def cmd_evaluate(a: argparse.Namespace) -> int:
    from vitdemo.checkpoints import load_checkpoint
    from vitdemo.evaluate import score_checkpoint
    from vitdemo.metrics import format_confusion
    from vitdemo.train import resolve_device

    registry = Registry(a.home)
    loaded = load_checkpoint(resolve_model_ref(a.ref, registry))
    report = score_checkpoint(loaded, data_dir=a.data_dir, device=resolve_device(a.device)).report
    if a.json:
        print(json.dumps({"checkpoint": str(loaded.path), **report.to_dict()}))
        return 0
    print(f"{loaded.path}  ({loaded.kind}, {loaded.meta.dataset}, {loaded.num_params:,} parameters)")
    print(f"test accuracy {report.accuracy:.4%}   macro F1 {report.macro_f1:.4f}   errors {len(report.misclassified)}")
    print(format_confusion(report.confusion, list(loaded.meta.classes)))
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    """Answer every image file; a file that cannot be read or decoded gets one line on stderr (and,
    with --json, an object with an "error") and the exit status is 2, after all files are done."""
    from vitdemo.checkpoints import load_checkpoint

    registry = Registry(a.home)
    models = {}
    for kind, ref in {"vit": a.vit, "cnn": a.cnn}.items():
        path = resolve_model_ref(ref, registry) if ref else paths.shipped_dir() / f"{kind}_{a.dataset}.safetensors"
        models[kind] = load_checkpoint(path)
    failed = 0
    for file in a.images:
        try:
            lines = _predict_file(file, models, as_json=a.json)
        except Exception as exc:  # one bad file must not stop the others; never a traceback
            failed += 1
            message = _file_error(exc)
            print(f"{file}: {message}", file=sys.stderr)
            if a.json:
                print(json.dumps({"file": file, "error": message}))
            continue
        for line in lines:
            print(line)
    return 2 if failed else 0


def _file_error(exc: Exception) -> str:
    """One sentence for a file that could not be answered."""
    if isinstance(exc, FileNotFoundError):
        return "no such file."
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not an image file."
    if isinstance(exc, OSError):
        return f"could not be read ({exc.strerror or exc})."
    if isinstance(exc, ValueError):
        return str(exc)
    return f"could not be processed ({type(exc).__name__}: {exc})."


def _predict_file(file: str, models: dict, *, as_json: bool) -> list[str]:
    """The output lines for one image file (one per model). Raises for an unreadable or bad file."""
    import numpy as np

    from vitdemo.inference import analyze
    from vitdemo.preprocess import load_image

    result = analyze(load_image(Path(file).read_bytes()), models, explain=False)
    lines = []
    for name, loaded in models.items():
        pred = result.predictions.get(name)
        if pred is not None and not np.isfinite(pred.probs).all():
            raise ValueError(f"the {name} model gave no valid probabilities for it (NaN or infinity).")
        if as_json:
            row = {
                "file": file,
                "model": name,
                "checkpoint": str(loaded.path),
                "prediction": None if pred is None else loaded.meta.classes[pred.label],
                "probabilities": None if pred is None else [round(float(p), 6) for p in pred.probs],
                "empty": result.pre.empty,
                "not_digit": result.pre.not_digit,
                "message": result.pre.message,
            }
            lines.append(json.dumps(row, allow_nan=False))
        elif pred is None:
            lines.append(f"{file}  {name}: no digit ({result.pre.message})")
        else:
            top = "  ".join(f"{loaded.meta.classes[i]} {p:.1%}" for i, p in pred.top(3))
            lines.append(f"{file}  {name}: {top}")
    return lines


def cmd_leaderboard(a: argparse.Namespace) -> int:
    registry = Registry(a.home, write_timeout_s=3.0)
    runs = registry.leaderboard(a.dataset)  # a registry that cannot be read fails here, in one line
    from vitdemo.runs.baselines import sync_baselines  # reads checkpoint headers: loads torch

    try:
        if sync_baselines(registry, paths.shipped_dir()):
            runs = registry.leaderboard(a.dataset)
    except (RegistryBusy, RegistryUnavailable) as exc:  # locked for writing, read-only, full: show what there is
        print(f"note: the shipped baselines were not registered: {exc}", file=sys.stderr)
    if a.json:
        print(json.dumps([dataclasses.asdict(r) for r in runs]))
        return 0
    print(
        f"{'id':>4} {'name':32} {'kind':4} {'dataset':8} {'params':>9} {'test acc':>9} {'F1':>7} {'time s':>8} device"
    )
    for r in runs:
        acc = f"{r.test_acc:.2%}" if r.test_acc is not None else "-"
        f1 = f"{r.macro_f1:.4f}" if r.macro_f1 is not None else "-"
        t = f"{r.train_time_s:.0f}" if r.train_time_s is not None else "-"
        print(
            f"{r.id:>4} {r.name[:32]:32} {r.kind:4} {r.dataset:8} {r.num_params or 0:>9,} {acc:>9} {f1:>7} {t:>8} {r.device}"
        )
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from vitdemo.bench import run_bench

    run_bench(data_dir=a.data_dir, device=a.device, quick=a.quick, target=a.target, max_epochs=a.max_epochs)
    return 0


def cmd_worker(a: argparse.Namespace) -> int:
    registry = Registry(a.home)
    if a.execute is not None:  # the worker's child process: train this one claimed run
        from vitdemo.runs.execute import execute_claimed

        return execute_claimed(registry, a.execute, data_dir=a.data_dir)
    from vitdemo.runs.worker import run_worker

    n = run_worker(registry, a.device, data_dir=a.data_dir, idle_exit_s=a.idle_exit)
    print(f"worker done: {n} runs")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vitdemo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model and record the run", description="Train one model.")
    _add_common(p)
    _add_train_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test accuracy, macro F1 and confusion matrix of a run or checkpoint")
    p.add_argument("ref", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--json", action="store_true")
    _add_common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify image files with the ViT and the CNN")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--vit", help="run id or checkpoint (default: the shipped one)")
    p.add_argument("--cnn", help="run id or checkpoint (default: the shipped one)")
    p.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist", help="which shipped models")
    p.add_argument("--json", action="store_true", help="one JSON object per image and model")
    _add_common(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("leaderboard", help="finished runs, best first")
    p.add_argument("--dataset", choices=["mnist", "fashion"])
    p.add_argument("--json", action="store_true")
    _add_common(p)
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("bench", help="throughput, time to 99%% and latency on this machine")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--quick", action="store_true", help="latency and throughput only, no time-to-accuracy")
    p.add_argument(
        "--target", type=float, default=None, help="validation accuracy to time (default: 0.99 CNN, 0.985 ViT)"
    )
    p.add_argument("--max-epochs", type=int, default=10)
    _add_common(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("worker", help="run queued training runs (started by the app)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--idle-exit", type=float, default=300.0, help="exit after this many idle seconds")
    p.add_argument("--execute", type=int, metavar="RUN_ID", help=argparse.SUPPRESS)  # the worker's child
    _add_common(p)
    p.set_defaults(func=cmd_worker)
    return parser


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean "this cannot be done", told in one line; anything else is a bug and keeps its traceback.
    CheckpointError is looked up only if its module was loaded (importing it here would load torch into every
    command, the worker included); it is a ValueError anyway."""
    errors: list[type[BaseException]] = [ConfigError, RegistryError, sqlite3.Error, OSError]
    errors += [ValueError, KeyError, RuntimeError]
    checkpoints = sys.modules.get("vitdemo.checkpoints")
    if checkpoints is not None:
        errors.append(checkpoints.CheckpointError)
    return tuple(errors)


def one_line(exc: BaseException) -> str:
    text = exc.args[0] if type(exc) is KeyError and exc.args else exc  # KeyError's str() adds quotes
    return " ".join(str(text).split()) or type(exc).__name__


def _uses_torch(args: argparse.Namespace) -> bool:
    """The supervising worker and the listing stay torch-free: a fast start and a small idle process."""
    return not (args.command == "leaderboard" or (args.command == "worker" and args.execute is None))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if _uses_torch(args):
            from vitdemo.threads import configure_threads

            configure_threads()  # once per process, here at its entry: train, evaluate, predict, bench, a run's child
        return args.func(args)
    except Exception as exc:
        if not isinstance(exc, _expected_errors()):
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
