"""A run's files in its registry's checkpoint folder: the one place their names are built and read back.

A run #7 may leave `run-7.safetensors` (a network's checkpoint), `run-7.skops` (a scikit-learn baseline's),
`run-7-encoder.safetensors` (the encoder a pretrain run made), `run-7.resume.safetensors` (the end of its last
finished epoch, to go on from) and, while one of those is written, a temporary `.run-7.safetensors.<random>.tmp`
(`.run-7.safetensors.resume.<random>.tmp` for the resume file). The worker's leftover sweep reads the run id back
out of every name, so the writers and the sweep must agree: hence this module. No torch, no registry here.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

CHECKPOINT = ".safetensors"  # a network's weights and header (vitdemo.checkpoints)
CLASSIC = ".skops"  # a scikit-learn baseline (vitdemo.models.classic)
ENCODER = "-encoder.safetensors"  # the encoder a pretrain run made (vitdemo.pretrain)
RESUME = ".resume.safetensors"  # the resume state (vitdemo.training.resume)
KEPT_BESIDE = (RESUME, ENCODER)  # what a run keeps next to its checkpoint: deleted with the run
ENCODER_GLOB = f"run-*{ENCODER}"  # the encoders of a registry's pretrain runs
# The files a run's result is (not its resume state), and their temporaries while they are written.
_RESULT = re.compile(r"^run-(\d+)(-encoder)?\.(?:safetensors|skops)$")
_TMP = re.compile(r"^\.run-(\d+)(?:-encoder)?\.(?:safetensors|skops)\..*\.tmp$")


def name(run_id: int, suffix: str = CHECKPOINT) -> str:
    """'run-7' + suffix: CHECKPOINT, CLASSIC, ENCODER or RESUME."""
    if suffix not in (CHECKPOINT, CLASSIC, ENCODER, RESUME):
        raise ValueError(f"not a run file suffix: {suffix!r}")
    return f"run-{int(run_id)}{suffix}"


def path(folder: str | os.PathLike, run_id: int, suffix: str = CHECKPOINT) -> Path:
    """Where run `run_id`'s file goes in the checkpoint folder `folder`."""
    return Path(folder) / name(run_id, suffix)


def tmp_prefix(target: Path) -> str:
    """The prefix of `target`'s temporary while it is written: `.run-7.safetensors.resume.` for a resume file (so
    the sweep knows whose it is), `.<name>.` for anything else."""
    if target.name.startswith("run-") and target.name.endswith(RESUME):
        return f".{target.name[: -len(RESUME)]}{CHECKPOINT}.resume."
    return f".{target.name}."


def result_owner(file_name: str) -> tuple[int, bool] | None:
    """(run id, is an encoder) of a result file's name ('run-7.safetensors', 'run-7-encoder.safetensors',
    'run-7.skops'); None for any other name (a resume file, a temporary, a stranger)."""
    match = _RESULT.match(file_name)
    return None if match is None else (int(match.group(1)), bool(match.group(2)))


def tmp_owner(file_name: str) -> int | None:
    """The run whose temporary `file_name` is (None for a temporary no run's writer made)."""
    match = _TMP.match(file_name)
    return None if match is None else int(match.group(1))


def run_of(file_name: str) -> int | None:
    """The run a result file or a temporary belongs to (None for any other file)."""
    owner = result_owner(file_name)
    return owner[0] if owner is not None else tmp_owner(file_name)


def is_tmp(file_name: str) -> bool:
    """A writer's temporary (`.NAME.<random>.tmp`), a run's or not."""
    return file_name.startswith(".") and file_name.endswith(".tmp")


def write_atomically(target: Path, data: bytes) -> Path:
    """Write `data` to `target` through a temporary beside it (named as `tmp_prefix` says), then rename: a reader
    never sees half a file, and a writer killed mid-write leaves only a temporary the sweep knows."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=tmp_prefix(target), suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
