"""Test-set scores and trust reports of a model file, kept on disk: a page's first visit reads them (milliseconds)
instead of classifying 10,000 images (seconds) or blanking the pixels of 100 of them step by step (tens of seconds).

An entry is keyed by what it depends on: the model file's SHA-256 (not its path or mtime: a copy is the same
model, a file retrained at the same path is another), a digest of the split's labels (another dataset folder with
other files is another split), and for a trust report its settings and the map's version. Scores are stored as
safetensors (the (N, C) probabilities and the (N,) labels), trust reports as JSON; never pickle. A damaged or
foreign entry is ignored and computed again.

Two places are read: the shipped folder's `results/` (small, in the repository, made by `python -m vitdemo.results`
for the shipped checkpoints, so a fresh checkout's first Evaluate is instant) and `$VITDEMO_HOME/cache/`, where
anything computed on first use is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from vitdemo import paths
from vitdemo.checkpoints import write_atomically
from vitdemo.explain.lens import PROBE_SETTINGS, probe_tensors, probes_from_tensors
from vitdemo.explain.trust import MapScores, TrustReport
from vitdemo.metrics import Scores, evaluate_predictions

CACHE_FOLDER = "cache"  # under $VITDEMO_HOME
SHIPPED_FOLDER = "results"  # under the shipped checkpoints' folder
PAGE_TRUST_IMAGES = 100  # the Evaluate page checks 100 seeded test images (AUCs within ~0.02 of 200), half the CLI's
FORMAT = "1"  # the entries' layout: a new one ignores the old entries
_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> SHA-256, for this process


def file_digest(path: str | os.PathLike) -> str:
    """The file's SHA-256 (hex), hashed once per file version in this process (a few ms per MB)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def labels_digest(labels: np.ndarray | torch.Tensor) -> str:
    """A short digest of a split's labels (N,): which split the results belong to."""
    values = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    return hashlib.sha256(values.astype(np.int64).tobytes()).hexdigest()[:16]


def places(home: str | os.PathLike | None = None, shipped: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(the shipped results folder, read only; the home cache, written): where entries are looked for."""
    return paths.shipped_dir(shipped) / SHIPPED_FOLDER, paths.home(home) / CACHE_FOLDER


# --- scores ------------------------------------------------------------------------------------------------
def scores_key(path: str | os.PathLike, labels: np.ndarray | torch.Tensor) -> str:
    return f"scores-{file_digest(path)[:32]}-{labels_digest(labels)}-v{FORMAT}"


def read_scores(folders: Iterable[Path], key: str, labels: np.ndarray) -> Scores | None:
    """The stored scores of `key` whose labels are `labels` (N,), from the first folder that has them; None."""
    for folder in folders:
        file = folder / f"{key}.safetensors"
        if not file.is_file():
            continue
        try:
            tensors = load_file(str(file))
            probs = tensors["probs"].float().numpy()  # (N, C)
            stored = tensors["labels"].long().numpy()  # (N,)
            loss = float(tensors["loss"].item())
        except (SafetensorError, OSError, KeyError, RuntimeError, ValueError):
            continue  # damaged or foreign: computed again
        if probs.ndim != 2 or stored.shape != labels.shape or not np.array_equal(stored, labels):
            continue
        return Scores(stored, probs, loss, evaluate_predictions(stored, probs.argmax(1), probs.shape[1]))
    return None


def write_scores(folder: Path, key: str, scores: Scores) -> Path:
    """Store `scores` under `key` (atomically: a reader never sees half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {
        "probs": torch.from_numpy(np.ascontiguousarray(scores.probs, dtype=np.float32)),  # (N, C)
        "labels": torch.from_numpy(np.ascontiguousarray(scores.labels, dtype=np.int64)),  # (N,)
        "loss": torch.tensor([scores.loss], dtype=torch.float64),
    }
    return write_atomically(folder / f"{key}.safetensors", lambda tmp: save_file(tensors, tmp))


def cached_scores(
    path: str | os.PathLike, labels: np.ndarray, compute: Callable[[], Scores], folders: Sequence[Path]
) -> Scores:
    """The scores of the model file `path` on the split with `labels`: read from the first of `folders` that has
    them, else `compute()`d and written to the last one (a folder that cannot be written is not an error)."""
    key = scores_key(path, labels)
    found = read_scores(folders, key, labels)
    if found is None:
        found = compute()
        with contextlib.suppress(OSError):  # a read-only home: the scores are still right, only not kept
            write_scores(folders[-1], key, found)
    return found


# --- trust reports ---------------------------------------------------------------------------------------------
def trust_key(path: str | os.PathLike, labels: np.ndarray | torch.Tensor, settings: str) -> str:
    """`settings`: what else the report depends on (images, steps, seed, the map's version)."""
    tail = hashlib.sha256(settings.encode()).hexdigest()[:12]
    return f"trust-{file_digest(path)[:32]}-{labels_digest(labels)}-{tail}-v{FORMAT}"


def trust_to_json(report: TrustReport) -> dict[str, Any]:
    return {
        "kind": report.kind,
        "n_images": report.n_images,
        "fractions": report.fractions.tolist(),
        "scores": {
            name: {
                "deletion": s.deletion.tolist(),
                "insertion": s.insertion.tolist(),
                "deletion_auc": s.deletion_auc,
                "insertion_auc": s.insertion_auc,
                "background_share": s.background_share,
            }
            for name, s in report.scores.items()
        },
        "randomization": report.randomization.tolist(),
        "randomization_on_ink": report.randomization_on_ink.tolist(),
        "seconds": report.seconds,
        "timings": report.timings,
    }


def trust_from_json(data: dict[str, Any]) -> TrustReport:
    """The report `trust_to_json` wrote; KeyError, TypeError or ValueError for anything else."""
    scores = {
        str(name): MapScores(
            str(name),
            np.asarray(s["deletion"], dtype=np.float32),
            np.asarray(s["insertion"], dtype=np.float32),
            float(s["deletion_auc"]),
            float(s["insertion_auc"]),
            float(s["background_share"]),
        )
        for name, s in data["scores"].items()
    }
    return TrustReport(
        str(data["kind"]),
        int(data["n_images"]),
        np.asarray(data["fractions"], dtype=np.float64),
        scores,
        np.asarray(data["randomization"], dtype=np.float32),
        np.asarray(data["randomization_on_ink"], dtype=np.float32),
        float(data["seconds"]),
        {str(k): float(v) for k, v in dict(data.get("timings") or {}).items()},
    )


def read_trust(folders: Iterable[Path], key: str) -> TrustReport | None:
    for folder in folders:
        file = folder / f"{key}.json"
        try:
            return trust_from_json(json.loads(file.read_text(encoding="utf-8")))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # damaged or foreign: computed again
    return None


def write_trust(folder: Path, key: str, report: TrustReport) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(trust_to_json(report), separators=(",", ":"))
    return write_atomically(folder / f"{key}.json", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def cached_trust(key: str, compute: Callable[[], TrustReport], folders: Sequence[Path]) -> TrustReport:
    """read_trust, else compute() and write it to the last of `folders` (quietly kept in memory only if it
    cannot be written)."""
    found = read_trust(folders, key)
    if found is None:
        found = compute()
        with contextlib.suppress(OSError):
            write_trust(folders[-1], key, found)
    return found


# --- stage probes (Under the hood's "when does it make up its mind?" for a CNN) ---------------------------------
def probes_key(path: str | os.PathLike, labels: np.ndarray | torch.Tensor) -> str:
    """`labels`: those of the training images the probes are fitted on."""
    tail = hashlib.sha256(PROBE_SETTINGS.encode()).hexdigest()[:12]
    return f"probes-{file_digest(path)[:32]}-{labels_digest(labels)}-{tail}-v{FORMAT}"


def read_probes(folders: Iterable[Path], key: str) -> list[nn.Module] | None:
    for folder in folders:
        file = folder / f"{key}.safetensors"
        if not file.is_file():
            continue
        try:
            return probes_from_tensors(load_file(str(file)))
        except (SafetensorError, OSError, KeyError, RuntimeError, ValueError):
            continue  # damaged or foreign: fitted again
    return None


def write_probes(folder: Path, key: str, probes: Sequence[nn.Module]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tensors = probe_tensors(probes)
    return write_atomically(folder / f"{key}.safetensors", lambda tmp: save_file(tensors, tmp))
