"""The readers' speed on this machine (a benchmark that prints figures, never a test):

- training: numbers per second of a training step (writing the batch included), per reader config;
- reading: one drawn number, preprocessed, read by each reader with its explanation (the detector's boxes; the
  captioner's greedy answer, a beam of 4 and its cross-attention), median of N.

    python scripts/bench_readers.py                       # the shipped checkpoints (or the default configs)
    python scripts/bench_readers.py --train-steps 10      # training throughput too
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from vitdemo.checkpoints import LoadedModel, load_checkpoint, make_meta  # noqa: E402
from vitdemo.config import TrainConfig  # noqa: E402
from vitdemo.data import load_raw  # noqa: E402
from vitdemo.families.captioner import CaptionerConfig  # noqa: E402
from vitdemo.families.detector import DetectorConfig  # noqa: E402
from vitdemo.models import build_model  # noqa: E402
from vitdemo.numbers.analyze import read_image, shipped_path  # noqa: E402
from vitdemo.numbers.synth import HANDWRITING, balanced_lengths, make_numbers, render_numbers  # noqa: E402
from vitdemo.numbers.train import optimizer_for, reader_loss  # noqa: E402
from vitdemo.threads import configure_threads  # noqa: E402


def train_speed(config, steps: int, batch: int) -> float:
    """Numbers per second of full training steps (batch written, loss, backward, AdamW), after one warm-up."""
    pool = load_raw("mnist", train=True)
    model = build_model(config).train()
    tc = TrainConfig(model=config, batch_size=batch)
    opt = optimizer_for(model, tc)
    g = torch.Generator().manual_seed(0)
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        numbers = render_numbers(pool, balanced_lengths(batch, HANDWRITING, g), g, HANDWRITING)
        loss = reader_loss(model, numbers.images.unsqueeze(1).float() / 255, numbers)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def loaded(kind: str, config) -> LoadedModel:
    path = shipped_path(kind)
    if path.is_file():
        return load_checkpoint(path)
    return LoadedModel(build_model(config).eval(), make_meta(config, "mnist"))


def read_latency(readers: dict, repeats: int) -> dict[str, float]:
    """Median ms to read one drawn number (a 640x128 image) with each reader alone, its explanation included."""
    numbers = make_numbers(load_raw("mnist", train=False), repeats, seed=11)
    from PIL import Image

    out = {}
    for name, reader in readers.items():
        times = []
        for img in numbers.images:
            page = 255 - torch.nn.functional.interpolate(img[None, None].float(), scale_factor=4)[0, 0].byte().numpy()
            image = Image.fromarray(page)
            start = time.perf_counter()
            read_image(__import__("numpy").asarray(image), {name: reader}, beam=4, explain=True)
            times.append(time.perf_counter() - start)
        out[name] = 1000 * statistics.median(times)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-steps", type=int, default=0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=20)
    a = p.parse_args()
    configure_threads()
    print(f"torch threads {torch.get_num_threads()}")
    readers = {"captioner": loaded("captioner", CaptionerConfig()), "detector": loaded("detector", DetectorConfig())}
    for name, ms in read_latency(readers, a.repeats).items():
        print(f"read one drawn number, {name} (with its explanation): {ms:.1f} ms median of {a.repeats}")
    if a.train_steps:
        for name, r in readers.items():
            speed = train_speed(r.meta.model_config, a.train_steps, a.batch)
            print(f"train {name} {r.meta.model_config}: {speed:.1f} numbers/s (batch {a.batch})")


if __name__ == "__main__":
    main()
