"""Every shipped checkpoint loads, and reaches on the real test split what checkpoints/README.md says."""

from pathlib import Path

import pytest

from vitdemo.checkpoints import load_checkpoint
from vitdemo.drawn import drawn_accuracy
from vitdemo.shipped import DRAWN_PER_CLASS, SHIPPED_DIR, measure_test_accuracy, parse_table, percent

SHIPPED = sorted(SHIPPED_DIR.glob("*.safetensors"))
TABLE = parse_table((SHIPPED_DIR / "README.md").read_text()) if (SHIPPED_DIR / "README.md").exists() else {}


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
