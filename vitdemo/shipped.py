"""The shipped models: measure them, write `checkpoints/README.md`, and read its figures back.

`python -m vitdemo.shipped` re-measures every file in checkpoints/ and rewrites the tables after the README's
`<!-- figures -->` marker, one per family: networks (`*.safetensors`: test accuracy on the real test split,
drawn-set accuracy for MNIST models, size, CPU latency), scikit-learn baselines (`*.skops`, loaded through the
allowlist and scored the same way) and pretrained encoders (no head, so no accuracy: their pretraining). The
test suite parses those tables and checks each accuracy again within 0.05 points.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vitdemo.checkpoints import CheckpointMeta, LoadedModel, load_checkpoint
from vitdemo.config import ModelConfig, TrainConfig
from vitdemo.evaluate import score_checkpoint
from vitdemo.families.vocab import command_flags
from vitdemo.paths import ENV_CHECKPOINTS, shipped_dir
from vitdemo.runconfig import PretrainConfig

# In a fine-tuned shipped network's metrics: the TrainConfig (and the training time) of the earlier version of
# the same file that the fine-tune started from, so its README entry can say how to make both.
BASE_KEY = "base_train_config"
DRAWN_PER_CLASS = 30  # 300 drawings; one drawing is 0.33 points
COLUMNS = (
    "file",
    "model",
    "dataset",
    "params",
    "val acc",
    "test acc",
    "drawn acc",
    "size",
    "latency",
    "train time",
    "device",
    "seed",
)


@dataclass(frozen=True)
class ShippedFigures:
    file: str
    model: str
    dataset: str
    params: int
    val_acc: float
    test_acc: float
    drawn_acc: float | None
    size_kb: float
    latency_ms: float
    train_time_s: float
    device: str
    seed: int
    command: str


def model_flags(m: ModelConfig) -> list[str]:
    """The `train`/`pretrain` flags that rebuild model config `m` (every setting written out)."""
    return command_flags(m, every=True)


RESUMED_RUN = "RUN"  # a resumed sitting's command names the run before it so: the id `train` printed for that run


def train_command(config: dict[str, Any], out: str) -> str:
    """The `python -m vitdemo train` command line that reproduces a stored TrainConfig: the model and its shape
    written out, the settings a reader looks for (Setting.always), then every other that differs from its
    default (so commands written before a setting existed stay as they were). A sitting that resumed the run
    before it (`resume` set) changed only its length: `--resume RUN --epochs N`."""
    c = TrainConfig.from_dict(config)
    if c.resume:
        return f"python -m vitdemo train --resume {RESUMED_RUN} --epochs {c.epochs} --out {out}"
    return " ".join(
        ["python -m vitdemo train", f"--model {c.model.kind}", *model_flags(c.model), *command_flags(c), f"--out {out}"]
    )


def classic_command(header: Any, out: str) -> str:
    """The `python -m vitdemo classic` command that refits a shipped scikit-learn file (a ClassicHeader)."""
    run = header.run()
    parts = ["python -m vitdemo classic", f"--kind {run.model.kind}", f"--dataset {run.dataset}"]
    parts += [f"--seed {run.model.seed}", f"--val-size {run.val_size}"]
    if run.split_seed:
        parts.append(f"--split-seed {run.split_seed}")
    if run.train_subset:
        parts.append(f"--train-subset {run.train_subset}")
    if run.name:
        parts.append(f"--name {shlex.quote(run.name)}")
    return " ".join([*parts, f"--out {out}"])


def pretrain_command(meta: CheckpointMeta, out: str) -> str:
    """The `python -m vitdemo pretrain` command that pretrains a shipped encoder again."""
    from vitdemo.pretrain.encoder import ENCODER_TAG

    p = PretrainConfig(**meta.metrics.get("pretrain", {}))
    parts = ["python -m vitdemo pretrain", f"--method {meta.metrics[ENCODER_TAG]}", f"--dataset {meta.dataset}"]
    parts += model_flags(meta.model_config)
    parts += [f"--epochs {p.epochs}", f"--batch-size {p.batch_size}", f"--lr {p.lr:g}", f"--seed {p.seed}"]
    if meta.name:
        parts.append(f"--name {shlex.quote(meta.name)}")
    return " ".join([*parts, f"--out {out}"])


def measure_test_accuracy(loaded: LoadedModel, data_dir: str | os.PathLike | None = None) -> float:
    """Accuracy on the checkpoint's own test split (the 10k t10k images), on the CPU."""
    return score_checkpoint(loaded, data_dir=data_dir).accuracy


def latency_ms(loaded: LoadedModel, n: int = 50) -> float:
    x = torch.zeros(1, 1, 28, 28)
    with torch.inference_mode():
        for _ in range(5):
            loaded.model(x)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            loaded.model(x)
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def total_train_time_s(metrics: dict[str, Any]) -> float:
    """A file's training time: a fine-tune's own plus that of the version it started from (BASE_KEY's run)."""
    return float(metrics.get("train_time_s", float("nan"))) + float(metrics.get("base_train_time_s", 0.0))


def measure(path: Path, data_dir: str | None, pair: LoadedModel | None = None) -> ShippedFigures:
    from vitdemo.synth.drawn import drawn_accuracy

    loaded = load_checkpoint(path)
    meta = loaded.meta
    drawn = drawn_accuracy({"m": loaded}, DRAWN_PER_CLASS)["m"] if meta.dataset == "mnist" else None
    cfg = meta.train_config or {}
    return ShippedFigures(
        file=path.name,
        model=meta.model_config.kind,
        dataset=meta.dataset,
        params=loaded.num_params,
        val_acc=float(meta.metrics.get("val_acc", float("nan"))),
        test_acc=measure_test_accuracy(loaded, data_dir),
        drawn_acc=drawn,
        size_kb=path.stat().st_size / 1024,
        latency_ms=latency_ms(loaded),
        train_time_s=total_train_time_s(meta.metrics),
        device=str(meta.metrics.get("device", "?")),
        seed=int(cfg.get("seed", 0)),
        command=reproduce_commands(meta, f"checkpoints/{path.name}"),
    )


def table_row(f: ShippedFigures) -> str:
    drawn = f"{f.drawn_acc:.2%}" if f.drawn_acc is not None else "n/a"
    cells = [
        f"`{f.file}`",
        f.model,
        f.dataset,
        f"{f.params:,}",
        f"{f.val_acc:.2%}",
        f"{f.test_acc:.2%}",
        drawn,
        f"{f.size_kb:,.0f} KB",
        f"{f.latency_ms:.2f} ms",
        f"{f.train_time_s / 60:.1f} min",
        f.device,
        str(f.seed),
    ]
    return "| " + " | ".join(cells) + " |"


def parse_table(text: str) -> dict[str, dict[str, str]]:
    """Rows of the README's figures table, keyed by file name, each a column -> cell dict."""
    rows: dict[str, dict[str, str]] = {}
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None if not rows else header
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "file":
            header = cells
        elif header and not set(cells[0]) <= {"-", ":", " "}:
            rows[cells[0].strip("`")] = dict(zip(header, cells, strict=False))
    return rows


def percent(cell: str) -> float | None:
    match = re.fullmatch(r"([0-9.]+)%", cell.strip())
    return float(match.group(1)) / 100 if match else None


def command_block(file: str, command: str) -> str:
    """The README's entry for one checkpoint: its file name, then the command(s), one a line, that reproduce it."""
    lines = "\n".join(f"VITDEMO_DATA_DIR=../shared/data {c}" for c in command.splitlines())
    return f"`{file}`:\n\n```bash\n{lines}\n```\n"


def earlier_sittings(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The train configs of the sittings before a file's last (BASE_KEY: one config, or a list of them for a file
    trained in several sittings), the oldest first; none for a file trained in one go."""
    base = metrics.get(BASE_KEY)
    return base if isinstance(base, list) else [base] if base else []


def reproduce_commands(meta: CheckpointMeta, out: str) -> str:
    """The commands, one a line, that make a shipped network again: its training; for a fine-tune of an earlier
    version of the same file (its `init` is `out` itself) or a resumed run, first the earlier sittings'."""
    cfg = meta.train_config or {}
    bases = earlier_sittings(meta.metrics)
    return "\n".join([*(train_command(b, out) for b in bases), *([train_command(cfg, out)] if cfg else [])])


# -- scikit-learn baselines and pretrained encoders ------------------------------------------------------
CLASSIC_COLUMNS = ("file", "algorithm", "dataset", "stored numbers", "val acc", "test acc", "size", "latency",
                   "fit time", "train images")  # fmt: skip
ENCODER_COLUMNS = ("file", "method", "model", "dataset", "params", "epochs", "images", "loss per epoch", "size",
                   "pretraining time")  # fmt: skip


@dataclass(frozen=True)
class ClassicFigures:
    file: str
    kind: str
    dataset: str
    numbers: int
    val_acc: float
    test_acc: float
    size_kb: float
    latency_ms: float
    train_time_s: float
    train_images: int
    command: str


@dataclass(frozen=True)
class EncoderFigures:
    file: str
    method: str
    model: str
    dataset: str
    params: int
    epochs: int
    images: int
    losses: list[float]
    size_kb: float
    time_s: float
    command: str


def measure_classic(path: Path, data_dir: str | None) -> ClassicFigures:
    """A shipped scikit-learn file loaded through the allowlist and scored on its test split."""
    from vitdemo.data import load_raw
    from vitdemo.models.classic import load_classic, predict_proba, read_header, score_classic

    fitted, header = load_classic(path), read_header(path)
    test = load_raw(fitted.dataset, train=False, data_dir=data_dir)
    one = test.images[:1].numpy()
    times = []
    for _ in range(20):
        t = time.perf_counter()
        predict_proba(fitted, one)
        times.append((time.perf_counter() - t) * 1e3)
    m = fitted.metrics
    return ClassicFigures(
        file=path.name,
        kind=fitted.config.kind,
        dataset=fitted.dataset,
        numbers=int(m.get("num_params", 0)),
        val_acc=float(m.get("val_acc") or float("nan")),
        test_acc=score_classic(fitted, test).accuracy,
        size_kb=path.stat().st_size / 1024,
        latency_ms=statistics.median(times),
        train_time_s=float(m.get("train_time_s", float("nan"))),
        train_images=int(m.get("train_images", 0)),
        command=classic_command(header, f"checkpoints/{path.name}"),
    )


def measure_encoder(path: Path) -> EncoderFigures:
    from vitdemo.pretrain.encoder import ENCODER_TAG

    loaded = load_checkpoint(path)
    m = loaded.meta.metrics
    return EncoderFigures(
        file=path.name,
        method=str(m[ENCODER_TAG]),
        model=loaded.kind,
        dataset=loaded.meta.dataset,
        params=loaded.num_params,
        epochs=int(m.get("pretrain", {}).get("epochs", 0)),
        images=int(m.get("pretrain_images", 0)),
        losses=[float(v) for v in m.get("pretrain_losses", [])],
        size_kb=path.stat().st_size / 1024,
        time_s=float(m.get("pretrain_time_s", float("nan"))),
        command=pretrain_command(loaded.meta, f"checkpoints/{path.name}"),
    )


def classic_row(f: ClassicFigures) -> str:
    cells = [f"`{f.file}`", f.kind, f.dataset, f"{f.numbers:,}", f"{f.val_acc:.2%}", f"{f.test_acc:.2%}",
             f"{f.size_kb:,.0f} KB", f"{f.latency_ms:.2f} ms", f"{f.train_time_s:.1f} s", f"{f.train_images:,}"]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def encoder_row(f: EncoderFigures) -> str:
    losses = ", ".join(f"{v:.3f}" for v in f.losses)
    cells = [f"`{f.file}`", f.method, f.model, f.dataset, f"{f.params:,}", str(f.epochs), f"{f.images:,}", losses,
             f"{f.size_kb:,.0f} KB", f"{f.time_s / 60:.1f} min"]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


# -- number readers ----------------------------------------------------------------------------------------
READER_COLUMNS = ("file", "reader", "params", "val acc", "test acc", "CER", "mAP@0.5", "mAP@0.5:0.95",
                  "single-digit acc", "size", "train time", "device")  # fmt: skip


@dataclass(frozen=True)
class ReaderFigures:
    """A shipped reader's figures, as its run measured them on the fixed test numbers (vitdemo.numbers.evaluate:
    2,000 numbers of 1-8 t10k digits); `python -m vitdemo evaluate FILE` measures them again."""

    file: str
    reader: str
    params: int
    metrics: dict[str, Any]
    size_kb: float
    command: str


def is_reader_file(path: Path) -> bool:
    from vitdemo.checkpoints import read_meta

    return read_meta(path).task == "read"


def measure_reader(path: Path) -> ReaderFigures:
    loaded = load_checkpoint(path)
    return ReaderFigures(path.name, loaded.kind, loaded.num_params, dict(loaded.meta.metrics),
                         path.stat().st_size / 1024, reproduce_commands(loaded.meta, f"checkpoints/{path.name}"))  # fmt: skip


def reader_row(f: ReaderFigures) -> str:
    m = f.metrics

    def pct(v: Any) -> str:
        return "-" if v is None else f"{float(v):.2%}"

    def num(v: Any) -> str:
        return "-" if v is None else f"{float(v):.4f}"

    single = (m.get("single_digit") or {}).get("accuracy")
    cells = [f"`{f.file}`", f.reader, f"{f.params:,}", pct(m.get("val_acc")), pct(m.get("test_acc")), pct(m.get("cer")),
             num(m.get("map50")), num(m.get("map")), pct(single), f"{f.size_kb:,.0f} KB",
             f"{total_train_time_s(m) / 60:.1f} min", str(m.get("device", ""))]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def _table(columns: tuple[str, ...], rows: list[str]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *rows]


def write_readme(
    figures: list[ShippedFigures],
    path: Path,
    classic: Sequence[ClassicFigures] = (),
    encoders: Sequence[EncoderFigures] = (),
    readers: Sequence[ReaderFigures] = (),
) -> None:
    """Everything after the README's `<!-- figures -->` marker: one table and the commands per family."""
    intro = path.read_text().split("<!-- figures -->")[0] if path.exists() else "# Shipped checkpoints\n\n"
    lines = [
        intro.rstrip() + "\n",
        "<!-- figures -->",
        "Measured by `python -m vitdemo.shipped` (test split: the 10k t10k images, never used for tuning; drawn "
        f"set: {DRAWN_PER_CLASS * 10} generated mouse-style drawings through the app's preprocessing; latency: "
        "one image, CPU, median).",
        "",
        "## Networks",
        "",
        *_table(COLUMNS, [table_row(f) for f in figures]),
    ]
    if classic:
        lines += ["", "## Classic baselines (scikit-learn)", ""]
        lines += _table(CLASSIC_COLUMNS, [classic_row(f) for f in classic])
    if encoders:
        lines += ["", "## Pretrained encoders (no head: not listed as runs, offered as the start of a fine-tune)", ""]
        lines += _table(ENCODER_COLUMNS, [encoder_row(f) for f in encoders])
    if readers:
        lines += ["", "## Number readers (test acc: whole numbers read exactly, 2,000 numbers of 1-8 t10k digits)", ""]
        lines += _table(READER_COLUMNS, [reader_row(f) for f in readers])
    lines += ["", "## Commands", ""]
    lines += [command_block(f.file, f.command) for f in [*figures, *classic, *encoders, *readers]]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    from vitdemo.runs.baselines import encoders

    parser = argparse.ArgumentParser(prog="python -m vitdemo.shipped", description=__doc__)
    parser.add_argument("--data-dir")
    parser.add_argument("--dir", help=f"the checkpoints (default: ${ENV_CHECKPOINTS} or the repository's checkpoints/)")
    a = parser.parse_args(argv)
    folder = shipped_dir(a.dir)
    encoder_files = {e.path for e in encoders(folder)}
    networks = [p for p in sorted(folder.glob("*.safetensors")) if p not in encoder_files]
    readers = [measure_reader(p) for p in networks if is_reader_file(p)]
    figures = [measure(p, a.data_dir) for p in networks if not is_reader_file(p)]
    classic = [measure_classic(p, a.data_dir) for p in sorted(folder.glob("*.skops"))]
    pretrained = [measure_encoder(p) for p in sorted(encoder_files)]
    for row in [*map(table_row, figures), *map(classic_row, classic), *map(encoder_row, pretrained)]:
        print(row)
    write_readme(figures, folder / "README.md", classic, pretrained, readers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
