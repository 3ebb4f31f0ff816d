"""Measure the robustness sweep of two checkpoints and print every model's accuracy at every value, and the time.

    VITDEMO_THREADS=1 python scripts/robustness_sweep.py                      # the shipped MNIST ViT and CNN
    python scripts/robustness_sweep.py --dataset fashion --n 1000 --json artifacts/sweep_fashion.json

The same `vitdemo.explain.robustness.sweep` the Robustness lab page runs (n fixed test images, one batched forward per
value per model, in batches of 100), on the CPU unless --device says otherwise. The figures are what the page would show.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vitdemo import paths  # noqa: E402
from vitdemo.checkpoints import load_checkpoint  # noqa: E402
from vitdemo.data import load_raw  # noqa: E402
from vitdemo.explain.robustness import sweep  # noqa: E402
from vitdemo.threads import configure_threads  # noqa: E402
from vitdemo.views.names import kind_name  # noqa: E402
from vitdemo.views.robustness import summary_sentence, value_text  # noqa: E402


def table(result) -> str:  # noqa: ANN001 (a SweepResult)
    """One block per change: the values, then one row of accuracies per model."""
    lines = []
    for change, values in result.values.items():
        lines.append(f"{result.labels.get(change, change)}")
        lines.append("  value  " + " ".join(f"{value_text(change, float(v)):>7}" for v in values))
        for model, by_change in result.accuracy.items():
            lines.append(f"  {kind_name(model):<6} " + " ".join(f"{a:>7.1%}" for a in by_change[change]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["mnist", "fashion"], default="mnist")
    parser.add_argument("--checkpoints", default=None, help="folder of {vit,cnn}_<dataset>.safetensors")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n", type=int, default=1000, help="test images per value")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None, help="also write the result here")
    args = parser.parse_args()

    threads = configure_threads()
    folder = paths.shipped_dir(args.checkpoints)
    models = {k: load_checkpoint(folder / f"{k}_{args.dataset}.safetensors", args.device) for k in ("vit", "cnn")}
    split = load_raw(args.dataset, train=False, data_dir=args.data_dir)
    result = sweep(models, split, n=args.n, seed=args.seed)
    print(table(result))
    print(summary_sentence(result))
    per_forward = result.seconds / max(result.forwards, 1)
    print(
        f"{result.n:,} images, {result.forwards} model passes (batches of {result.batch_size}) in "
        f"{result.seconds:.1f} s ({per_forward * 1e3:.0f} ms per pass, {threads} torch thread(s), {args.device})"
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
