"""A ViT with and without a CNN teacher (DeiT hard-label distillation), trained one after the other in this process
on MNIST: validation accuracy after each epoch against seconds of training, the accuracy of each at the same
training time, and the time each first reached the target. Prints figures, asserts nothing.

    python scripts/distill_bench.py                          # the bench's ViT recipe, no teacher vs the shipped CNN
    python scripts/distill_bench.py --epochs 4 --patch 4 --teacher shipped --teacher runs/checkpoints/run-7.safetensors

Run it on a quiet machine (one training at a time; `uptime` is printed with the figures): the two runs share the
machine's noise, so the ratio of their times means more than either time.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vitdemo.threads import configure_threads  # noqa: E402


def load_line() -> str:
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load average unknown"


def at_time(history: list, seconds: float) -> float:
    """The validation accuracy of the last epoch finished within `seconds` of training (0.0 if none)."""
    done = [e.val_acc for e in history if e.elapsed_s <= seconds + 1e-6]
    return done[-1] if done else 0.0


def first_reached(history: list, target: float) -> float | None:
    return next((e.elapsed_s for e in history if e.val_acc >= target), None)


def train_teacher(data, data_dir: str | None) -> str:
    """The bench's CNN recipe trained on the same images (its time printed: a teacher is not free), saved to a
    temporary checkpoint; returns its path."""
    import tempfile

    from vitdemo.checkpoints import make_meta, save_checkpoint
    from vitdemo.training.bench import RECIPES
    from vitdemo.training.loop import train

    config = dataclasses.replace(RECIPES["cnn"], device="cpu")
    result = train(config, data=data)
    print(f"teacher: the bench's CNN, {result.train_time_s:.1f} s, val {result.val_acc:.2%}  ({load_line()})")
    path = Path(tempfile.mkdtemp()) / "bench_cnn.safetensors"
    save_checkpoint(path, result.model, make_meta(config.model, config.dataset, name="bench cnn"))
    return str(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=None, help="default: the bench's ViT recipe")
    p.add_argument("--patch", type=int, default=None, choices=(4, 7, 14))
    p.add_argument("--depth", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--warmup", type=float, default=None, help="warm-up epochs")
    p.add_argument("--teacher", action="append", default=None, help="'shipped' or a CNN checkpoint (repeatable)")
    p.add_argument("--no-plain", action="store_true", help="skip the run without a teacher")
    p.add_argument("--train-teacher", action="store_true", help="first train the bench's CNN (timed) and teach with it")
    p.add_argument("--subset", type=int, default=0, help="training images (0: all 55,000)")
    p.add_argument("--embed-dim", type=int, default=None)
    p.add_argument("--target", type=float, default=0.985)
    p.add_argument("--data-dir", default=os.environ.get("VITDEMO_DATA_DIR"))
    a = p.parse_args(argv)
    configure_threads()
    import torch

    from vitdemo.training.bench import RECIPES, features_line
    from vitdemo.training.loop import load_data, train

    base = RECIPES["vit"]
    model = base.model
    shape = (("patch_size", a.patch), ("depth", a.depth), ("embed_dim", a.embed_dim))
    model = dataclasses.replace(model, **{k: v for k, v in shape if v})
    changes = {"epochs": a.epochs, "lr": a.lr, "batch_size": a.batch_size, "warmup_epochs": a.warmup}
    changes["train_subset"] = a.subset
    base = dataclasses.replace(base, model=model, device="cpu", **{k: v for k, v in changes.items() if v is not None})
    print(f"distill bench: {torch.get_num_threads()} threads, {load_line()}")
    print(features_line(torch.device("cpu"), base))
    print(f"student: {base.model}; {base.epochs} epochs, batch {base.batch_size}, lr {base.lr}, warm-up "
          f"{base.warmup_epochs} epochs")  # fmt: skip
    data = load_data(base, a.data_dir)
    teachers = ([] if a.no_plain else [""]) + (a.teacher or ([] if a.train_teacher else ["shipped"]))
    if a.train_teacher:
        teachers.append(train_teacher(data, a.data_dir))
    results = {}
    for teacher in teachers:
        config = dataclasses.replace(base, model=dataclasses.replace(base.model, teacher=teacher))
        result = train(config, data=data)
        name = "no teacher" if not teacher else f"teacher {Path(teacher).name}"
        results[name] = result
        curve = "  ".join(f"{e.elapsed_s:.0f}s {e.val_acc:.2%}" for e in result.history)
        print(
            f"{name:<32} {result.train_time_s:7.1f} s, val {result.val_acc:.2%}: {curve}  ({load_line()})", flush=True
        )
    same = min(r.train_time_s for r in results.values())
    print(f"\nat the same training time ({same:.0f} s), and the time to {a.target:.1%} validation:")
    for name, r in results.items():
        reached = first_reached(r.history, a.target)
        when = "not reached" if reached is None else f"{reached:.1f} s"
        print(f"  {name:<32} val {at_time(r.history, same):.2%}   to {a.target:.1%}: {when}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
