"""The shipped checkpoints: measure them, write `checkpoints/README.md`, and read its figures back.

`python -m vitdemo.shipped` re-measures every checkpoint in checkpoints/ (test accuracy on the real
test split, drawn-set accuracy for MNIST models, size, CPU latency) and rewrites the table; the test
suite parses that table and checks each accuracy again within 0.05 points.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vitdemo.checkpoints import LoadedModel, load_checkpoint
from vitdemo.config import TrainConfig
from vitdemo.evaluate import score_checkpoint
from vitdemo.paths import ENV_CHECKPOINTS, shipped_dir

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


def train_command(config: dict[str, Any], out: str) -> str:
    """The `python -m vitdemo train` command line that reproduces a stored TrainConfig."""
    c = TrainConfig.from_dict(config)
    m = c.model
    parts = ["python -m vitdemo train", f"--model {m.kind}", f"--dataset {c.dataset}"]
    if m.kind == "vit":
        parts += [
            f"--patch-size {m.patch_size}",
            f"--embed-dim {m.embed_dim}",
            f"--depth {m.depth}",
            f"--num-heads {m.num_heads}",
            f"--mlp-ratio {m.mlp_ratio:g}",
            f"--dropout {m.dropout:g}",
        ]
    else:
        parts += [f"--width {m.width}", f"--depth {m.depth}", f"--dropout {m.dropout:g}"]
    parts += [
        f"--epochs {c.epochs}",
        f"--batch-size {c.batch_size}",
        f"--lr {c.lr:g}",
        f"--weight-decay {c.weight_decay:g}",
        f"--warmup-epochs {c.warmup_epochs:g}",
        f"--schedule {c.schedule}",
        f"--label-smoothing {c.label_smoothing:g}",
        f"--grad-clip {c.grad_clip:g}",
        f"--augment {c.augment:g}",
        f"--seed {c.seed}",
        f"--val-size {c.val_size}",
        f"--keep {c.keep}",
    ]
    if c.split_seed != TrainConfig.split_seed:  # written only when set: older commands stay as they were
        parts.append(f"--split-seed {c.split_seed}")
    if c.compile:
        parts.append("--compile")
    if c.name:
        parts.append(f"--name {c.name}")
    parts.append(f"--out {out}")
    return " ".join(parts)


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


def measure(path: Path, data_dir: str | None, pair: LoadedModel | None = None) -> ShippedFigures:
    from vitdemo.drawn import drawn_accuracy

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
        train_time_s=float(meta.metrics.get("train_time_s", float("nan"))),
        device=str(meta.metrics.get("device", "?")),
        seed=int(cfg.get("seed", 0)),
        command=train_command(cfg, f"checkpoints/{path.name}") if cfg else "",
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
    """The README's entry for one checkpoint: its file name, then the command that reproduces it."""
    return f"`{file}`:\n\n```bash\nVITDEMO_DATA_DIR=../shared/data {command}\n```\n"


def write_readme(figures: list[ShippedFigures], path: Path) -> None:
    intro = path.read_text().split("<!-- figures -->")[0] if path.exists() else "# Shipped checkpoints\n\n"
    lines = [
        intro.rstrip() + "\n",
        "<!-- figures -->",
        "Measured by `python -m vitdemo.shipped` (test split: the 10k t10k images, never used for tuning; drawn "
        f"set: {DRAWN_PER_CLASS * 10} generated mouse-style drawings through the app's preprocessing; latency: "
        "one image, CPU, median).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += [table_row(f) for f in figures]
    lines += ["", "## Commands", ""]
    lines += [command_block(f.file, f.command) for f in figures]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitdemo.shipped", description=__doc__)
    parser.add_argument("--data-dir")
    parser.add_argument("--dir", help=f"the checkpoints (default: ${ENV_CHECKPOINTS} or the repository's checkpoints/)")
    a = parser.parse_args(argv)
    folder = shipped_dir(a.dir)
    figures = [measure(p, a.data_dir) for p in sorted(folder.glob("*.safetensors"))]
    for f in figures:
        print(table_row(f))
    write_readme(figures, folder / "README.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
