"""Which model reads our class best: every evaluable run (finished registry runs with a checkpoint, and the
shipped checkpoints) scored on the class set through `vitdemo.evaluate.score_checkpoint`, the one scoring path.

Scores are cached in the class set's own file, keyed by the set's version (it changes with every submission
and delete) and the checkpoint file's mtime: a page reload scores only what is new.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vitdemo import families, paths
from vitdemo.classset.data import ClassSplit, as_split
from vitdemo.classset.store import ClassSet
from vitdemo.runconfig import ENCODER_TAG
from vitdemo.runs.baselines import read_headers
from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.store import Registry


@dataclass(frozen=True)
class Candidate:
    """A checkpoint that can be scored: a finished run's or a shipped one."""

    name: str
    kind: str
    checkpoint: Path
    run_id: int | None  # None for a shipped checkpoint the registry does not list
    shipped: bool
    test_acc: float | None  # on the dataset's test split, as recorded


@dataclass(frozen=True)
class ClassScore:
    candidate: Candidate
    n: int  # class drawings scored
    correct: int
    problem: str = ""  # why it could not be scored (a damaged checkpoint, another dataset...)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n and not self.problem else None


def candidates(registry: Registry, dataset: str, shipped_dir: str | os.PathLike | None = None) -> list[Candidate]:
    """Finished runs of `dataset` with a checkpoint file, then shipped checkpoints the registry does not list.
    Classifiers only: a number reader reads a wide picture, not one 28x28 digit."""
    found: dict[Path, Candidate] = {}
    for run in registry.list_runs(status="done", dataset=dataset):
        path = Path(run.checkpoint).resolve() if run.checkpoint else None
        if path is not None and path.is_file() and _classifies(run.kind):
            found[path] = Candidate(run.name, run.kind, path, run.id, run.baseline, run.test_acc)
    for path, meta in read_headers(paths.shipped_dir(shipped_dir)):
        path = path.resolve()
        if meta.dataset != dataset or path in found or not _classifies(meta.model_config.kind):
            continue
        if not meta.metrics.get(ENCODER_TAG):  # an encoder has no head yet
            test_acc = meta.metrics.get("test_acc")
            found[path] = Candidate(meta.name or path.stem, meta.model_config.kind, path, None, True, test_acc)
    return list(found.values())


def _classifies(kind: str) -> bool:
    return families.task_of(kind) == families.CLASSIFY


def _cached(store: ClassSet, dataset: str, version: int) -> dict[str, tuple[int, int, int]]:
    """checkpoint -> (mtime_ns, n, correct) of the scores computed for this version of the set."""
    with store.reading() as db:
        rows = db.execute(
            "SELECT checkpoint, mtime_ns, n, correct FROM scores WHERE dataset = ? AND version = ?", (dataset, version)
        ).fetchall()
    return {r["checkpoint"]: (int(r["mtime_ns"]), int(r["n"]), int(r["correct"])) for r in rows}


def _remember(store: ClassSet, dataset: str, version: int, key: str, mtime_ns: int, n: int, correct: int) -> None:
    """Keep a score for next time; a cache that cannot be written (busy, read-only) only costs a recount."""
    try:
        with store.writing() as db:
            db.execute(
                "INSERT OR REPLACE INTO scores (checkpoint, dataset, mtime_ns, version, n, correct) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key, dataset, mtime_ns, version, n, correct),
            )
    except RegistryError:
        pass


def score_one(candidate: Candidate, data: ClassSplit, dataset: str, device: str = "cpu") -> ClassScore:
    """One checkpoint on the class split; a checkpoint that cannot be loaded or holds another dataset's model is
    a row with its problem, never an exception."""
    from vitdemo.checkpoints import CheckpointError, load_checkpoint
    from vitdemo.evaluate import score_checkpoint

    if candidate.checkpoint.suffix == ".skops":  # a scikit-learn baseline: the same Scores through its own path
        return _score_classic(candidate, data, dataset)
    try:
        loaded = load_checkpoint(candidate.checkpoint)
    except (CheckpointError, OSError, RuntimeError) as exc:
        return ClassScore(candidate, len(data), 0, f"could not be loaded ({type(exc).__name__})")
    if loaded.meta.dataset != dataset:
        return ClassScore(candidate, len(data), 0, f"a {loaded.meta.dataset} model")
    scores = score_checkpoint(loaded, data.split, device=device)
    return ClassScore(candidate, len(data), int((scores.preds == scores.labels).sum()))


def _score_classic(candidate: Candidate, data: ClassSplit, dataset: str) -> ClassScore:
    from vitdemo.models.classic import ClassicError, load_classic, score_classic

    try:
        fitted = load_classic(candidate.checkpoint)
    except (ClassicError, OSError) as exc:
        return ClassScore(candidate, len(data), 0, f"could not be loaded ({type(exc).__name__})")
    if fitted.dataset != dataset:
        return ClassScore(candidate, len(data), 0, f"a {fitted.dataset} model")
    scores = score_classic(fitted, data.split)
    return ClassScore(candidate, len(data), int((scores.preds == scores.labels).sum()))


def score_table(
    store: ClassSet,
    registry: Registry,
    dataset: str = "mnist",
    *,
    shipped_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    on_score: Callable[[Candidate], None] | None = None,
    progress: Callable[[float], None] | None = None,
) -> list[ClassScore]:
    """Every candidate scored on the class set, best first; cached scores are reused while the set and the
    checkpoint file are unchanged (`on_score` hears of each one that is computed, `progress` the share of the
    candidates done after each computed one). Empty set: every row has n 0."""
    version = store.version()
    found = candidates(registry, dataset, shipped_dir)
    data: ClassSplit | None = None
    cache = _cached(store, dataset, version)
    rows = []
    for i, cand in enumerate(found):
        try:
            key, mtime_ns = str(cand.checkpoint), cand.checkpoint.stat().st_mtime_ns
        except OSError:  # deleted since it was listed
            continue
        hit = cache.get(key)
        if hit is not None and hit[0] == mtime_ns:
            rows.append(ClassScore(cand, hit[1], hit[2]))
            continue
        data = data if data is not None else as_split(store, dataset)
        if on_score is not None:
            on_score(cand)
        row = score_one(cand, data, dataset, device) if len(data) else ClassScore(cand, 0, 0)
        if row.n and not row.problem:
            _remember(store, dataset, version, key, mtime_ns, row.n, row.correct)
        rows.append(row)
        if progress is not None:
            progress((i + 1) / len(found))
    return rank(rows)


def rank(rows: Sequence[ClassScore]) -> list[ClassScore]:
    """Best class-set accuracy first; unscored rows last; ties by name."""
    return sorted(rows, key=lambda r: (r.accuracy is None, -(r.accuracy or 0.0), r.candidate.name))
