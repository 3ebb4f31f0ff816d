"""Every shipped checkpoint loads, and reaches on the real test split what checkpoints/README.md says."""

import dataclasses
import shlex
from pathlib import Path

import pytest

from vitdemo.checkpoints import load_checkpoint
from vitdemo.cli import build_parser, config_from_args
from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.drawn import drawn_accuracy
from vitdemo.paths import shipped_dir
from vitdemo.shipped import (
    DRAWN_PER_CLASS,
    command_block,
    measure_test_accuracy,
    parse_table,
    percent,
    train_command,
)

SHIPPED_DIR = shipped_dir()  # $VITDEMO_CHECKPOINTS, else the repository's checkpoints/
SHIPPED = sorted(SHIPPED_DIR.glob("*.safetensors"))
README_TEXT = (SHIPPED_DIR / "README.md").read_text() if (SHIPPED_DIR / "README.md").exists() else ""
TABLE = parse_table(README_TEXT)


def test_mnist_models_are_shipped() -> None:
    names = {p.name for p in SHIPPED}
    assert {"vit_mnist.safetensors", "cnn_mnist.safetensors"} <= names
    assert set(TABLE) == names, "checkpoints/README.md must list every shipped checkpoint"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_checkpoint_reaches_its_documented_accuracy(path: Path, data_dir: Path) -> None:
    loaded = load_checkpoint(path)
    assert path.stat().st_size <= 5 * 1024 * 1024
    documented = percent(TABLE[path.name]["test acc"])
    assert documented is not None
    measured = measure_test_accuracy(loaded, data_dir)
    assert measured == pytest.approx(documented, abs=0.0005)  # 0.05 points


@pytest.mark.parametrize("kind", ["vit", "cnn"])
def test_mnist_models_read_drawn_digits(kind: str) -> None:
    path = SHIPPED_DIR / f"{kind}_mnist.safetensors"
    acc = drawn_accuracy({kind: load_checkpoint(path)}, DRAWN_PER_CLASS)[kind]
    documented = percent(TABLE[path.name]["drawn acc"])
    assert acc == pytest.approx(documented, abs=1 / (10 * DRAWN_PER_CLASS) + 1e-9)  # at most one drawing apart
    assert acc >= 0.90, f"{kind} reads only {acc:.1%} of drawn digits"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_documented_command_reproduces_the_stored_config(path: Path) -> None:
    """The command written under each checkpoint parses back to exactly the settings it was trained with."""
    trained_with = load_checkpoint(path).meta.train_config
    command = train_command(trained_with, f"checkpoints/{path.name}")
    assert command_block(path.name, command) in README_TEXT
    stored = TrainConfig.from_dict(trained_with)
    args = build_parser().parse_args(shlex.split(command)[3:])
    assert config_from_args(args) == dataclasses.replace(stored, device=args.device)


def test_command_round_trips_a_split_seed_and_leaves_it_out_when_default() -> None:
    config = TrainConfig(model=CNNConfig(width=12), seed=5, split_seed=3, epochs=2)
    command = train_command(config.to_dict(), "out.safetensors")
    assert "--split-seed 3" in command and "--seed 5" in command
    args = build_parser().parse_args(shlex.split(command)[3:])
    assert config_from_args(args) == config
    # shipped checkpoints were trained before split_seed existed (their split came from seed 0): unchanged commands
    assert "--split-seed" not in train_command(dataclasses.replace(config, split_seed=0).to_dict(), "o")
