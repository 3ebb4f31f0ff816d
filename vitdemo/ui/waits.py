"""When the runs in the class queue should start: each run's estimated time on its device, cached for the server
(a run's estimate never changes), and the queue's expected starts from them (`vitdemo.views.estimates`)."""

from __future__ import annotations

import threading

import streamlit as st

from vitdemo.config import ConfigError, TrainConfig
from vitdemo.runconfig import run_config_from_dict
from vitdemo.runs import queue
from vitdemo.runs.store import Run
from vitdemo.training.resume import still_to_train
from vitdemo.views import estimates

_EVICT = threading.Lock()  # sessions' threads share the cache: one evicts at a time
_ESTIMATES_KEPT = 500  # run estimates the server remembers (a run's estimate never changes)


@st.cache_resource(show_spinner=False)
def _estimates() -> dict[tuple[int, str], float | None]:
    """Run id and device -> its estimated seconds, shared by every session (the live view asks every second)."""
    return {}


def run_seconds(run: Run) -> float | None:
    """A queued or running run's whole estimated time on its device (what is left of a resumed one); None when it
    cannot be estimated. The estimator's speed probes are cached: one per model and device."""
    key, cache = (run.id, run.device or "cpu"), _estimates()
    if key not in cache:
        try:
            config = run_config_from_dict(run.config or {})
            if isinstance(config, TrainConfig):
                config = still_to_train(config)
            cache[key] = queue.time_estimator().estimate(config, key[1]).seconds
        except (ConfigError, ValueError, TypeError, KeyError, RuntimeError, OSError):
            cache[key] = None
        with _EVICT:
            while len(cache) > _ESTIMATES_KEPT:
                cache.pop(next(iter(cache)), None)
    return cache.get(key)


def expected_starts(active: list[Run]) -> dict[int, float | None]:
    """Queued run id -> seconds until it should start (vitdemo.views.estimates.expected_starts)."""
    slots = {d.kind: d.runs_at_once for d in queue.offered_devices()}
    return estimates.expected_starts(active, {r.id: run_seconds(r) for r in active}, slots)
