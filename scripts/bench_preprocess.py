"""Preprocessing on real handwriting: accuracy of the shipped MNIST models per paper case, and speed.

    python scripts/bench_preprocess.py [--n 300] [--repeat 30]

Prints, for every case of `vitdemo.synth.paper` (MNIST test digits as scans, photos and canvas drawings),
both models' accuracy through the app's own preprocessing; then the median time of `preprocess` on a
280x280 canvas drawing and on a 1000x1000 phone photo, and of the whole Draw-page analysis (both
models with their explanations) on the canvas drawing. Numbers to read, not to assert.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vitdemo.checkpoints import load_checkpoint
from vitdemo.data import load_raw
from vitdemo.explain.inference import analyze
from vitdemo.paths import shipped_dir
from vitdemo.preprocess.pipeline import preprocess
from vitdemo.synth.drawn import drawn_digits
from vitdemo.synth.paper import case_accuracy, photo


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="digits per case (0: timings only)")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per measurement")
    parser.add_argument("--data-dir", help="dataset root (default: $VITDEMO_DATA_DIR)")
    a = parser.parse_args()
    torch.set_num_threads(1)
    models = {kind: load_checkpoint(shipped_dir() / f"{kind}_mnist.safetensors") for kind in ("vit", "cnn")}
    test = load_raw("mnist", train=False, data_dir=a.data_dir)
    images, labels = test.images.numpy(), test.labels.numpy()
    if a.n:
        print(f"{'case':12} {'ViT':>7} {'CNN':>7}   ({a.n} MNIST test digits per case)")
        for case, accs in case_accuracy(models, images, labels, n=a.n).items():
            print(f"{case:12} {accs['vit']:7.1%} {accs['cnn']:7.1%}")
    canvas = next(drawn_digits(1))[0]
    big = photo(images[0], np.random.default_rng(0))
    print(f"preprocess, 280x280 canvas:   {median_ms(lambda: preprocess(canvas), a.repeat):6.2f} ms")
    print(f"preprocess, 1000x1000 photo:  {median_ms(lambda: preprocess(big), a.repeat):6.2f} ms")
    print(f"Draw page analysis (canvas):  {median_ms(lambda: analyze(canvas, models), a.repeat):6.2f} ms")
    print(f"Draw page analysis (photo):   {median_ms(lambda: analyze(big, models), a.repeat):6.2f} ms")


if __name__ == "__main__":
    main()
