"""The CNN's CPU recipe, one speed-up at a time (issue 21, the airbench way): what each gave, what was dropped.

    python scripts/cpu_recipe_ablation.py              # steps table + time-to-99% ablation (minutes on 2 cores)
    python scripts/cpu_recipe_ablation.py --steps-only # the per-step table only (bf16, channels-last, compile)

Prints figures, asserts nothing. Run it on a quiet machine: `uptime` is printed beside every figure, and the step
table is CPU milliseconds per step (one thread), which a busy machine inflates less than wall time.
1. One training step of each family (the bench's CNN and ViT, batch 256): float32, bf16 autocast, channels-last,
   both; torch.compile's first call (the compile) and its steady step. bf16 is only a win on a CPU with bf16 units
   (vitdemo.training.cpu_speed decides per family; this table is where its numbers come from).
2. The CNN trained until its validation accuracy reaches 99% on MNIST (at most 3 epochs), the bench's recipe first,
   then each change on top of the best so far (kept when it reached 99% sooner): a larger batch with one-cycle, no label smoothing, weights averaged (EMA, read off the same run),
   test-time augmentation (mirrored digits, and 1-pixel shifts: read off the final model).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from vitdemo.threads import configure_threads  # noqa: E402
from vitdemo.training.loop import Callback, validate  # noqa: E402

EMA_DECAY = 0.99  # per step: about the last 100 steps (a quarter of an epoch at batch 128)


def load() -> str:
    try:
        return "load " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load unknown"


# --- 1. steps --------------------------------------------------------------------------------------------------
def step_ms(config, *, bf16: bool, channels_last: bool, compile_: bool = False, n: int = 6) -> tuple[float, float]:
    """(CPU ms of the first step, median CPU ms of the next n) for one AdamW step of `config.model` on a fixed batch."""
    import torch.nn.functional as F

    from vitdemo.models import build_model

    torch.manual_seed(0)
    model = build_model(config.model).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile_ else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(config.batch_size, 1, 28, 28)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    y = torch.randint(0, 10, (config.batch_size,))

    def step() -> float:
        t = time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(forward(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return (time.process_time() - t) * 1e3

    first = step()
    step()
    return first, statistics.median(step() for _ in range(n))


def steps_table(recipes: dict) -> None:
    print(f"\n== 1. one training step, CPU ms (1 thread, batch 256; lower is better)   [{load()}]")
    for kind, recipe in recipes.items():
        config = dataclasses.replace(recipe, batch_size=256)
        base = step_ms(config, bf16=False, channels_last=False)[1]
        row = [f"float32 {base:7.1f}"]
        variants = {"bf16 autocast": {"bf16": True, "channels_last": False}}
        if kind == "cnn":
            variants |= {
                "channels-last": {"bf16": False, "channels_last": True},
                "both": {"bf16": True, "channels_last": True},
            }
        for name, options in variants.items():
            ms = step_ms(config, **options)[1]
            row.append(f"{name} {ms:7.1f} ({base / ms:.2f}x)")
        print(f"{kind:4} " + " | ".join(row), flush=True)
        if kind != "cnn":
            continue  # the ViT's compile was measured before: about 1.3x after ~30 s (README)
        try:
            first, steady = step_ms(config, bf16=False, channels_last=False, compile_=True)
            pays = (first - steady) / max(base - steady, 1e-9)
            print(f"     torch.compile: first step {first / 1e3:.1f} s CPU, then {steady:.1f} ms ({base / steady:.2f}x): "
                  f"pays off after {pays:,.0f} steps" if steady < base else
                  f"     torch.compile: first step {first / 1e3:.1f} s CPU, then {steady:.1f} ms: never pays off")  # fmt: skip
        except Exception as exc:  # no C++ compiler: say so, keep going
            print(f"     torch.compile: unavailable here ({type(exc).__name__})")


# --- 2. time to 99% ------------------------------------------------------------------------------------------
class EMAWatch(Callback):
    """An exponential moving average of the weights, updated after every step and scored on the validation split
    after every epoch, beside the model's own score (the same run: the difference is the EMA's alone)."""

    def __init__(self, data, config) -> None:
        self.data, self.config, self.ema, self.acc = data, config, None, []

    def on_step_weights(self, info, model) -> None:
        with torch.no_grad():
            if self.ema is None:
                self.ema = copy.deepcopy(model)
                return
            for e, p in zip(self.ema.state_dict().values(), model.state_dict().values(), strict=True):
                if e.dtype.is_floating_point:
                    e.mul_(EMA_DECAY).add_(p, alpha=1 - EMA_DECAY)
                else:
                    e.copy_(p)

    def on_epoch_weights(self, info, model) -> None:
        _, acc = validate(self.ema, self.data.val, self.data.mean, self.data.std, self.config, torch.device("cpu"))
        self.acc.append(acc)


def tta_accuracy(model, data, *, flips: bool, shifts: bool) -> float:
    """Validation accuracy of the mean softmax over the image and its mirror and/or its 1-px shifts."""
    from vitdemo.data import to_input

    x = to_input(data.val.images, data.mean, data.std)  # (N, 1, 28, 28)
    views = [x]
    if flips:
        views.append(x.flip(-1))
    if shifts:
        views += [torch.roll(x, s, dims=d) for s in (-1, 1) for d in (-1, -2)]
    with torch.inference_mode():
        probs = sum(model.eval()(v).softmax(-1) for v in views)
    return (probs.argmax(1) == data.val.labels).float().mean().item()


def run(name: str, config, data, target: float) -> tuple:
    from vitdemo.training.loop import train

    ema = EMAWatch(data, config)
    cpu = time.process_time()
    stop = [False]

    class StopAt(Callback):
        def on_epoch(self, info) -> None:
            stop[0] = stop[0] or info.val_acc >= target

    result = train(config, [ema, StopAt()], data=data, should_stop=lambda: stop[0])
    cpu = time.process_time() - cpu
    reached = next((e.elapsed_s for e in result.history if e.val_acc >= target), None)
    epoch = next((e.epoch for e in result.history if e.val_acc >= target), None)
    curve = " ".join(f"{e.val_acc:.2%}" for e in result.history)
    ema_curve = " ".join(f"{a:.2%}" for a in ema.acc)
    plain = tta_accuracy(result.model, data, flips=False, shifts=False)
    print(
        f"{name:<34} to {target:.0%}: {'not reached' if reached is None else f'{reached:5.1f} s (epoch {epoch})'}; "
        f"{result.train_time_s:5.1f} s wall, {cpu:5.1f} s CPU; val {curve}; EMA {ema_curve}; "
        f"TTA mirror {tta_accuracy(result.model, data, flips=True, shifts=False) - plain:+.2%}, "
        f"shifts {tta_accuracy(result.model, data, flips=False, shifts=True) - plain:+.2%}   [{load()}]",
        flush=True,
    )
    return reached, result


def ablation(base, data, target: float, variants: dict) -> None:
    """The base recipe, then each change on top of the best so far: kept when it reached `target` sooner."""
    print(f"\n== 2. the CNN to {target:.0%} validation, each change on top of the best so far   [{load()}]")
    best, best_s = base, run("the bench's recipe", base, data, target)[0]
    for name, changes in variants.items():
        config = dataclasses.replace(best, **changes)
        reached = run(name, config, data, target)[0]
        kept = reached is not None and (best_s is None or reached < best_s)
        print(f"  -> {'kept' if kept else 'dropped'}")
        if kept:
            best, best_s = config, reached


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps-only", action="store_true")
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--data-dir", default=os.environ.get("VITDEMO_DATA_DIR"))
    a = p.parse_args(argv)
    threads = configure_threads()
    from vitdemo.training.bench import RECIPES, features_line
    from vitdemo.training.loop import load_data

    print(f"cpu recipe ablation: torch {torch.__version__}, {threads} threads")
    print(features_line(torch.device("cpu"), RECIPES["cnn"]))
    steps_table(RECIPES)
    if a.steps_only:
        return 0
    base = dataclasses.replace(RECIPES["cnn"], device="cpu", epochs=3)
    data = load_data(base, a.data_dir)
    variants = {
        "+ batch 512, one-cycle, lr 8e-3": {"batch_size": 512, "schedule": "onecycle", "lr": 8e-3},
        "+ no label smoothing": {"label_smoothing": 0.0},
    }
    ablation(base, data, a.target, variants)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
