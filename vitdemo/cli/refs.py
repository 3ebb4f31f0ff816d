"""What the verbs share: a model named by run id or file, one sentence for a file that could not be answered, and
the loop of the verbs that answer a list of files (`predict`, `read`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
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


def answer_files(files: Sequence[str], lines_for: Callable[[str], list[str]], *, as_json: bool) -> int:
    """Print `lines_for(file)` for each file; a file that cannot be answered is one line on stderr (and an error
    object with --json) and does not stop the others. Exit status: 2 if any failed, else 0."""
    failed = 0
    for file in files:
        try:
            lines = lines_for(file)
        except Exception as exc:  # one bad file must not stop the others; never a traceback
            failed += 1
            message = file_error(exc)
            print(f"{file}: {message}", file=sys.stderr)
            if as_json:
                print(json.dumps({"file": file, "error": message}))
            continue
        for line in lines:
            print(line)
    return 2 if failed else 0
