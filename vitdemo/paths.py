"""Every folder vitdemo reads or writes, in one place, each with the environment variable that moves it.

A command-line flag beats the variable, and the variable beats the default. Nothing here creates a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_DATA_DIR = "VITDEMO_DATA_DIR"  # MNIST/ and FashionMNIST/ in torchvision's layout
ENV_HOME = "VITDEMO_HOME"  # the run registry, run checkpoints, worker logs
ENV_CHECKPOINTS = "VITDEMO_CHECKPOINTS"  # the shipped checkpoints

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = Path.home() / ".cache" / "vitdemo" / "data"  # where torchvision downloads on a user's machine
DEFAULT_HOME = Path("runs")  # relative: the app and the CLI run from the project root
DEFAULT_SHIPPED_DIR = REPO_ROOT / "checkpoints"


def _pick(flag: str | os.PathLike | None, env: str, default: Path) -> Path:
    if flag:
        return Path(flag).expanduser()
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    return default


def data_root(flag: str | os.PathLike | None = None) -> Path:
    """The dataset root: the flag, else $VITDEMO_DATA_DIR, else a per-user cache folder."""
    return _pick(flag, ENV_DATA_DIR, DEFAULT_DATA_DIR)


def home(flag: str | os.PathLike | None = None) -> Path:
    """Where runs live: the flag, else $VITDEMO_HOME, else ./runs."""
    return _pick(flag, ENV_HOME, DEFAULT_HOME)


def shipped_dir(flag: str | os.PathLike | None = None) -> Path:
    """The shipped checkpoints: the flag, else $VITDEMO_CHECKPOINTS, else the repository's checkpoints/ folder."""
    return _pick(flag, ENV_CHECKPOINTS, DEFAULT_SHIPPED_DIR)
