"""How many threads torch uses, decided once per process at its entry (the CLI, the app, the worker).

torch's intra-op thread count is process-wide: changing it per request or per training run races with
whatever else the process is doing, so nothing below the entry point touches it.
"""

from __future__ import annotations

import os

import torch

ENV_THREADS = "VITDEMO_THREADS"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def thread_count(default: int | None = None) -> int:
    """$VITDEMO_THREADS, else `default`, else every available core; always at least 1."""
    raw = os.environ.get(ENV_THREADS, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{ENV_THREADS} must be a whole number of threads, at least 1; got {raw!r}")
        return int(raw)
    return max(1, default if default is not None else available_cores())


def configure_threads(default: int | None = None) -> int:
    """Set torch's intra-op threads for this process (see `thread_count`) and return the number.

    Call it once, at the process entry. Set VITDEMO_THREADS=1 when other busy processes share the cores:
    on a loaded 2-core machine two intra-op threads wait for each other and a training step can get
    4x slower than with one (measured).
    """
    threads = thread_count(default)
    torch.set_num_threads(threads)
    return threads
