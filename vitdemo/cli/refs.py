"""What the verbs share: a model named by run id or file, and one sentence for a file that could not be answered."""

from __future__ import annotations

from pathlib import Path

from vitdemo.runs.store import Registry


def resolve_model_ref(ref: str, registry: Registry) -> Path:
    """A run id ('7' or '#7') or a checkpoint path -> checkpoint path."""
    if Path(ref).is_file():
        return Path(ref)
    key = ref.lstrip("#")
    if key.isdigit():
        run = registry.get_run(int(key))
        if not run.checkpoint:
            raise ValueError(f"run #{key} has no checkpoint (status: {run.status})")
        return Path(run.checkpoint)
    raise ValueError(f"{ref!r} is neither a checkpoint file nor a run id")


def file_error(exc: Exception) -> str:
    """One sentence for a file that could not be answered."""
    if isinstance(exc, FileNotFoundError):
        return "no such file."
    if isinstance(exc, IsADirectoryError):
        return "is a folder, not an image file."
    if isinstance(exc, OSError):
        return f"could not be read ({exc.strerror or exc})."
    if isinstance(exc, ValueError):
        return str(exc)
    return f"could not be processed ({type(exc).__name__}: {exc})."
