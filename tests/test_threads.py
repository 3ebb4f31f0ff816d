"""One thread count per process, decided at its entry."""

import pytest
import torch

from vitdemo.threads import ENV_THREADS, available_cores, configure_threads, thread_count


def test_environment_beats_the_default_and_the_default_beats_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_THREADS, raising=False)
    assert thread_count() == available_cores() >= 1
    assert thread_count(default=1) == 1
    monkeypatch.setenv(ENV_THREADS, "3")
    assert thread_count(default=1) == 3


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_thread_count_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(ENV_THREADS, value)
    with pytest.raises(ValueError, match=f"{ENV_THREADS} must be a whole number of threads, at least 1"):
        thread_count()


def test_configure_threads_sets_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv(ENV_THREADS, "1")
    try:
        assert configure_threads() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
