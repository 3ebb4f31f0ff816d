"""Fit the four classic baselines on the 55k MNIST training split, score them on t10k, save and reload them.

    VITDEMO_DATA_DIR=/work/shared/data OMP_NUM_THREADS=1 python scripts/bench_classic.py --out /tmp/classic

Prints one row per kind: fit time, test accuracy, file size, load time; with --compare-storage it also writes
the arrays of the logistic regression and the kNN as safetensors, to compare size and load time with skops.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from vitdemo.data import load_dataset
from vitdemo.models.classic import KINDS, ClassicConfig, fit_classic, load_classic, predict_proba, save_classic


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def _safetensors_arrays(fitted) -> dict[str, np.ndarray]:
    est = fitted.estimator
    if fitted.config.kind == "logreg":
        return {"coef": est.coef_, "intercept": est.intercept_}
    pca, knn = est[0], est[-1]
    return {"components": pca.components_, "mean": pca.mean_, "fit_x": knn._fit_X, "fit_y": knn._y}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("/tmp/classic"))
    parser.add_argument("--kinds", nargs="*", default=list(KINDS))
    parser.add_argument("--compare-storage", action="store_true")
    args = parser.parse_args()
    data = load_dataset("mnist", val_size=5000, seed=0)
    x, y = data.train.images.numpy(), data.train.labels.numpy()
    xt, yt = data.test.images.numpy(), data.test.labels.numpy()
    print(f"train {len(x)}, test {len(xt)}")
    print(f"{'kind':8} {'fit s':>7} {'test acc':>9} {'file MB':>8} {'load s':>7}")
    for kind in args.kinds:
        fitted, fit_s = _timed(fit_classic, ClassicConfig(kind=kind), x, y)
        acc = float((predict_proba(fitted, xt).argmax(1) == yt).mean())
        path = save_classic(args.out / f"{kind}_mnist.skops", fitted)
        back, load_s = _timed(load_classic, path)
        assert np.array_equal(predict_proba(back, xt[:100]).argmax(1), predict_proba(fitted, xt[:100]).argmax(1))
        print(f"{kind:8} {fit_s:7.1f} {acc:9.4f} {path.stat().st_size / 1e6:8.2f} {load_s:7.2f}", flush=True)
        if args.compare_storage and kind in ("logreg", "knn"):
            st = args.out / f"{kind}_mnist.safetensors"
            save_file({k: np.ascontiguousarray(v) for k, v in _safetensors_arrays(fitted).items()}, str(st))
            _, st_load = _timed(load_file, str(st))
            print(f"{'':8} safetensors arrays: {st.stat().st_size / 1e6:.2f} MB, load {st_load:.3f} s")


if __name__ == "__main__":
    main()
