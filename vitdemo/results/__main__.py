"""Write the shipped checkpoints' test-set scores and the Evaluate page's trust report (and a CNN's stage probes for
Under the hood) into the shipped folder's `results/` (vitdemo.results.cache), so that a fresh checkout opens
Evaluate, the Leaderboard's matrices, the trust checks and Under the hood without a wait.

    python -m vitdemo.results                       # vit_mnist and cnn_mnist, into checkpoints/results/
    python -m vitdemo.results checkpoints/cnn_fashion.safetensors --no-trust
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from vitdemo import paths
from vitdemo.checkpoints import load_checkpoint
from vitdemo.data import load_raw, to_input
from vitdemo.evaluate import score_checkpoint
from vitdemo.explain.lens import PROBE_IMAGES, fit_probes
from vitdemo.explain.trust import report_settings, trust_report
from vitdemo.results import cache

DEFAULT_FILES = ("vit_mnist.safetensors", "cnn_mnist.safetensors")  # what Evaluate and the Leaderboard open on


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitdemo.results", description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", metavar="FILE", help="checkpoints (default: the shipped MNIST ViT, CNN)")
    parser.add_argument("--out", help="folder to write (default: the shipped folder's results/)")
    parser.add_argument("--data-dir", help="dataset root (default: $VITDEMO_DATA_DIR)")
    parser.add_argument("--no-trust", action="store_true", help="no trust report")
    parser.add_argument("--no-probes", action="store_true", help="no stage probes (a CNN's, for Under the hood)")
    a = parser.parse_args(argv)
    shipped = paths.shipped_dir()
    out = Path(a.out) if a.out else shipped / cache.SHIPPED_FOLDER
    for file in a.files or [str(shipped / name) for name in DEFAULT_FILES]:
        t0 = time.perf_counter()
        loaded = load_checkpoint(file)
        split = load_raw(loaded.meta.dataset, train=False, data_dir=a.data_dir)
        scores = score_checkpoint(loaded, split)
        cache.write_scores(out, cache.scores_key(file, split.labels), scores)
        line = f"{Path(file).name}: test accuracy {scores.accuracy:.2%}"
        if not a.no_trust:
            n = cache.PAGE_TRUST_IMAGES
            report = trust_report(loaded, split, n_images=n)
            cache.write_trust(out, cache.trust_key(file, split.labels, report_settings(n_images=n)), report)
            m, r = report.scores["model"], report.scores["random"]
            line += f"; deletion AUC {m.deletion_auc:.3f} (random {r.deletion_auc:.3f})"
        if loaded.kind == "cnn" and not a.no_probes:
            train = load_raw(loaded.meta.dataset, train=True, data_dir=a.data_dir)
            images, labels = train.images[:PROBE_IMAGES], train.labels[:PROBE_IMAGES]
            probes = fit_probes(loaded.model, to_input(images, loaded.meta.mean, loaded.meta.std), labels)
            cache.write_probes(out, cache.probes_key(file, labels), probes)
            line += f"; {len(probes)} stage probes"
        print(f"{line} ({time.perf_counter() - t0:.1f} s) -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
