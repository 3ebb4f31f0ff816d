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
from typing import TYPE_CHECKING

from vitdemo import paths
from vitdemo.cli.refs import answer_files, resolve_model_ref
from vitdemo.config import MODEL_CONFIGS, ConfigError, TrainConfig
from vitdemo.runs.dbfile import RegistryBusy, RegistryError, RegistryUnavailable
from vitdemo.runs.store import Registry
from vitdemo.training.recipes import RECIPES

if TYPE_CHECKING:
    from vitdemo.training.loop import TrainResult


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="dataset root (default: $VITDEMO_DATA_DIR or ~/.cache/vitdemo/data)")
    p.add_argument("--home", help="where runs and the registry live (default: $VITDEMO_HOME or ./runs)")


# With --resume a run keeps its settings: only these flags may be given (vitdemo.training.resume.MAY_CHANGE).
RESUME_FLAGS = ("epochs", "device", "compile", "amp", "name")


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    """`train`'s flags: the model and the recipe, every family's and TrainConfig's settings (derived from their
    metadata: vitdemo.cli.flags), where to copy the checkpoint, and --resume."""
    from vitdemo.cli.flags import add_model_flags, add_train_flags

    p.add_argument("--model", choices=list(MODEL_CONFIGS), help="default vit (or the recipe's)")
    p.add_argument("--recipe", choices=list(RECIPES), help="start from a named recipe; other flags override it")
    add_model_flags(p)
    add_train_flags(p)
    p.add_argument("--out", help="also copy the checkpoint to this path (e.g. checkpoints/vit_mnist.safetensors)")
    from vitdemo.cli.remote import add_executor_flags

    add_executor_flags(p)
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a run (a run id, or its resume file run-<id>.resume.safetensors) from its last finished "
        "epoch, with its own settings; --epochs N (more than it has done) extends it: the remaining steps follow "
        "the learning-rate schedule of an N-epoch run (for cosine, a jump up to that curve, then down to 0 at N); "
        "--device, --compile, --no-amp and --name may change too",
    )


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    """TrainConfig() or the recipe, with every flag that was given; paths are made absolute (a worker or a
    later run may start elsewhere)."""
    from vitdemo.cli.flags import model_from_args
    from vitdemo.training.recipes import recipe

    base = recipe(a.recipe) if a.recipe else TrainConfig()
    model = model_from_args(a, a.model or base.model.kind, base.model)
    given = {k: getattr(a, k) for k in getattr(a, "given", ())}
    if given.get("extra_data", "").endswith(".npz"):
        given["extra_data"] = str(Path(given["extra_data"]).expanduser().resolve())
    for key in ("init", "weights_path"):
        if given.get(key):
            given[key] = str(Path(given[key]).expanduser().resolve())
    return dataclasses.replace(base, model=model, **given)


def _check_start_files(config: TrainConfig) -> TrainConfig:
    """The files a run starts from exist and fit, before a run is recorded (the trainer checks them again).
    Returns the config with `init_method` read from the init checkpoint's header."""
    if config.weights_path and not Path(config.weights_path).is_file():
        raise ConfigError(f"weights file not found: {config.weights_path}")
    if not config.init:
        return config
    from vitdemo.checkpoints import read_meta
    from vitdemo.runconfig import init_method
    from vitdemo.training.warmstart import BORROWS

    meta = read_meta(config.init)
    borrows = (config.model.kind, meta.model_config.kind) in BORROWS  # a reader from a digit model
    if meta.model_config.kind != config.model.kind and not borrows:
        raise ConfigError(f"--init holds a {meta.model_config.kind} model but this run trains a {config.model.kind}")
    if borrows:  # what a reader can take from a digit model shows only in their layers: try it on a new model now
        from vitdemo.checkpoints import CheckpointError
        from vitdemo.models import build_model
        from vitdemo.training.warmstart import init_from_checkpoint

        try:
            init_from_checkpoint(build_model(config.model), config.init)
        except CheckpointError as exc:
            raise ConfigError(str(exc)) from None
    return dataclasses.replace(config, init_method=init_method(meta.metrics))


def _with_teacher_file(config: TrainConfig, registry: Registry) -> TrainConfig:
    """`--teacher 7` (a CNN run) or a file -> its checkpoint's absolute path; "shipped" and none stay as given."""
    teacher = getattr(config.model, "teacher", "")
    if not teacher or teacher == "shipped":
        return config
    path = resolve_model_ref(teacher, registry).expanduser().resolve()
    return dataclasses.replace(config, model=dataclasses.replace(config.model, teacher=str(path)))


def resume_file(ref: str, registry: Registry) -> Path:
    """A run id ('7' or '#7') or a resume file path -> the resume file (it must exist)."""
    from vitdemo.training.resume import ResumeError, state_path

    key = ref.lstrip("#")
    if key.isdigit() and not Path(ref).is_file():
        run = registry.get_run(int(key))  # RunNotFound for an unknown run
        path = state_path(registry.checkpoint_dir, run.id)
        if not path.is_file():
            raise ResumeError(f"run #{run.id} has no saved epoch to resume from (it saves one at each epoch's end)")
        return path
    if not Path(ref).is_file():
        raise ResumeError(f"{ref!r} is neither a run id nor a resume file")
    return Path(ref)


def resume_config_from_args(a: argparse.Namespace, registry: Registry) -> TrainConfig:
    """The config of a run that continues `--resume`: its own settings, with --epochs, --device, --compile,
    --no-amp and --name if given; any other training flag is an error (a resumed run keeps its settings)."""
    from vitdemo.training.resume import resume_config

    given = set(getattr(a, "given", ()))
    from vitdemo.cli.flags import model_flags

    flags = model_flags()
    others = sorted(given - set(RESUME_FLAGS)) + [k for k in ("model", "recipe") if getattr(a, k, None)]
    others += [k for k in flags if getattr(a, k, None) is not None]
    if others:
        flag = flags.get(others[0], "--" + others[0].replace("_", "-"))
        raise ConfigError(
            f"{flag} cannot be given with --resume: a resumed run keeps its settings "
            "(only --epochs, --device, --compile, --no-amp and --name may change)"
        )
    changes = {k: getattr(a, k) for k in given if k != "epochs"}
    return resume_config(resume_file(a.resume, registry), a.epochs if "epochs" in given else None, **changes)


def _train_recorded(registry: Registry, run_id: int, config: TrainConfig, data_dir: str | None) -> TrainResult | None:
    """Train run `run_id` in this process, which records it and keeps its heartbeat from a thread for as long
    as it works on it (its epochs copied from a resumed run, the training, the scoring, the saving)."""
    from vitdemo.runs.execute import execute_run
    from vitdemo.runs.record import Heartbeat
    from vitdemo.training.progress import ProgressBar

    with Heartbeat(registry, [run_id]):
        if config.resume:
            from vitdemo.training.resume import saved_history

            for row in saved_history(config.resume):  # the resumed run's curves start with the epochs it continues
                registry.add_epoch(run_id, row)
        run = registry.get_run(run_id)
        print(f"run #{run_id} {run.name}: {json.dumps(config.to_dict(), sort_keys=True)}", file=sys.stderr)
        return execute_run(registry, run, data_dir=data_dir, extra_callbacks=(ProgressBar(),), heartbeat=False)


def cmd_train(a: argparse.Namespace) -> int:
    from vitdemo.runs.queue import start_run

    registry = Registry(a.home)
    remote = None
    if (a.executor or "local") == "ray":  # before the run is made: its device is checked against the cluster's
        from vitdemo.cli.remote import ray_executor

        remote = ray_executor(registry, a.ray_address, a.data_dir)
    config = resume_config_from_args(a, registry) if a.resume else _with_teacher_file(config_from_args(a), registry)
    config.validate()
    if not config.resume:  # a resumed run's weights come from its resume file, not from --init or --weights
        config = _check_start_files(config)
        from vitdemo.classset.data import freeze_config

        config = freeze_config(config, a.home)  # the class set as it is now: the run is reproducible
    run_id = start_run(registry, config, os.getpid())  # created running and ours: no worker can claim it
    try:
        if remote is not None:
            from vitdemo.runs.ray_exec import execute_remote
            from vitdemo.training.resume import saved_history

            for row in saved_history(config.resume) if config.resume else ():
                registry.add_epoch(run_id, row)  # its curves start with the epochs it continues
            result = execute_remote(registry, registry.get_run(run_id), remote)  # recorded here, trained there
        else:
            result = _train_recorded(registry, run_id, config, a.data_dir)
    except KeyboardInterrupt:
        registry.transition(run_id, "cancelled", only_from=("running",), finished_at=time.time())
        print(f"\nrun #{run_id} cancelled", file=sys.stderr)
        return 130
    run = registry.get_run(run_id)
    if run.status != "done" or result is None:
        print(f"run #{run_id} {run.status}: {run.error or ''}", file=sys.stderr)
        return 1
    f1 = f"{run.macro_f1:.4f}" if run.macro_f1 is not None else "-"  # a captioner has none
    print(
        f"run #{run_id} done: val {run.val_acc:.4%}  test {run.test_acc:.4%}  macro-F1 {f1}  "
        f"{run.train_time_s:.1f} s on {run.device}  checkpoint {run.checkpoint}"
    )
    if a.out:
        import shutil

        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.checkpoint, a.out)
        print(f"copied to {a.out}")
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from vitdemo.checkpoints import load_checkpoint
    from vitdemo.evaluate import score_checkpoint
    from vitdemo.metrics import format_confusion
    from vitdemo.training.loop import resolve_device

    registry = Registry(a.home)
    path = resolve_model_ref(a.ref, registry)
    if path.suffix == ".skops":  # a scikit-learn baseline
        from vitdemo.cli.families import evaluate_classic

        return evaluate_classic(path, a)
    loaded = load_checkpoint(path)
    if loaded.meta.task == "read":  # a number reader: its own test numbers and metrics
        from vitdemo.cli.read import evaluate_reader_cli

        return evaluate_reader_cli(loaded, a)
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
    return answer_files(a.images, lambda file: _predict_file(file, models, as_json=a.json), as_json=a.json)


def _predict_file(file: str, models: dict, *, as_json: bool) -> list[str]:
    """The output lines for one image file (one per model). Raises for an unreadable or bad file."""
    import numpy as np

    from vitdemo.explain.inference import analyze
    from vitdemo.preprocess.pipeline import load_image

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
        f"{'id':>4} {'name':40} {'kind':8} {'dataset':8} {'params':>9} {'test acc':>9} {'F1':>7} {'time s':>8} device"
    )
    for r in runs:
        acc = f"{r.test_acc:.2%}" if r.test_acc is not None else "-"
        f1 = f"{r.macro_f1:.4f}" if r.macro_f1 is not None else "-"
        t = f"{r.train_time_s:.0f}" if r.train_time_s is not None else "-"
        print(
            f"{r.id:>4} {r.name[:40]:40} {r.kind:8} {r.dataset:8} {r.num_params or 0:>9,} {acc:>9} {f1:>7} {t:>8} {r.device}"
        )
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from vitdemo.training.bench import run_bench

    run_bench(
        data_dir=a.data_dir,
        device=a.device,
        quick=a.quick,
        target=a.target,
        max_epochs=a.max_epochs,
        vs_reference=a.vs_reference,
        reference_batches=a.reference_batches,
    )
    return 0


def cmd_worker(a: argparse.Namespace) -> int:
    registry = Registry(a.home)
    if a.execute is not None:  # the worker's child process: train this one claimed run
        from vitdemo.runs.execute import execute_claimed

        return execute_claimed(registry, a.execute, data_dir=a.data_dir)
    from vitdemo.runs.queue import executor_name

    if executor_name() == "ray":  # VITDEMO_EXECUTOR=ray: the runs train on the cluster at $VITDEMO_RAY_ADDRESS
        from vitdemo.cli.remote import ray_worker

        n = ray_worker(registry, a.device, data_dir=a.data_dir, idle_exit_s=a.idle_exit)
        print(f"worker done: {n} runs")
        return 0
    from vitdemo.runs.local import run_worker

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
    p.add_argument("--drawn", action="store_true", help="a number reader: also 500 numbers of drawn digits")
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
    p.add_argument(
        "--vs-reference", action="store_true", help="time pytorch/examples' MNIST recipe too; print ratios to it"
    )
    p.add_argument("--reference-batches", type=int, default=None, help=argparse.SUPPRESS)  # tests: a few batches
    _add_common(p)
    p.set_defaults(func=cmd_bench)

    from vitdemo.cli.classset import add_parsers as add_classset_parsers
    from vitdemo.cli.data import add_parsers as add_data_parsers
    from vitdemo.cli.families import add_parsers
    from vitdemo.cli.read import add_parsers as add_read_parsers

    add_parsers(sub)
    add_read_parsers(sub)
    from vitdemo.cli.sweep import add_parser as add_sweep_parser

    def sweep_flags(p: argparse.ArgumentParser) -> None:
        _add_common(p)
        _add_train_flags(p)

    add_sweep_parser(sub, sweep_flags, config_from_args)
    add_classset_parsers(sub)
    add_data_parsers(sub)

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
    quiet = args.command in ("leaderboard", "data")
    return not (quiet or (args.command == "worker" and args.execute is None))


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
