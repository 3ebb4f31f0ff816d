"""Shipped checkpoints become finished baseline runs: once each, with their curves, never deletable."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from vitdemo.checkpoints import make_meta, save_checkpoint
from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.models import build_model
from vitdemo.runs.baselines import sync_baselines
from vitdemo.runs.store import Registry

HISTORY = [
    {"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.8, "val_loss": 1.1 / e, "val_acc": 0.9 + e / 100, "lr": 1e-3}
    for e in (1, 2)
]


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "home")


def _shipped(folder: Path, name: str, dataset: str = "mnist") -> Path:
    meta = make_meta(
        CNNConfig(width=4, depth=1),
        dataset,
        metrics={
            "test_acc": 0.97,
            "macro_f1": 0.96,
            "num_params": 123,
            "epochs": 2,
            "device": "cuda",
            "history": HISTORY,
        },
        train_config=TrainConfig(model=CNNConfig(width=4, depth=1), dataset=dataset, epochs=2).to_dict(),
        name=name,
    )
    return save_checkpoint(folder / f"{name}.safetensors", build_model(meta.model_config), meta)


def test_baselines_sync_once_and_cannot_be_deleted(reg: Registry, tmp_path: Path) -> None:
    shipped = tmp_path / "shipped"
    a = _shipped(shipped, "cnn_mnist")
    _shipped(shipped, "cnn_fashion", "fashion")
    (shipped / "broken.safetensors").write_bytes(b"not a checkpoint")
    cut = shipped / "cut.safetensors"  # a header that fails to read: skipped, the others still register
    cut.write_bytes(a.read_bytes()[:40])
    added = sync_baselines(reg, shipped)
    assert len(added) == 2
    assert sync_baselines(reg, shipped) == []  # idempotent
    runs = {r.name: r for r in reg.list_runs()}
    assert set(runs) == {"cnn_mnist", "cnn_fashion"}
    base = runs["cnn_mnist"]
    assert base.baseline and base.status == "done" and base.test_acc == 0.97 and base.macro_f1 == 0.96
    assert base.num_params == 123 and base.epochs_done == 2 and base.device == "cuda"
    assert base.checkpoint == str(a.resolve()) and base.config["epochs"] == 2
    curves = reg.epochs(base.id)  # the training curves travel inside the shipped file
    assert [e["epoch"] for e in curves] == [1, 2] and curves[1]["val_acc"] == pytest.approx(0.92)
    with pytest.raises(ValueError, match="baseline"):
        reg.delete_run(base.id)
    assert a.exists() and reg.get_run(base.id).baseline

    _shipped(shipped, "vit_late")  # a checkpoint added later is picked up on the next sync
    assert len(sync_baselines(reg, shipped)) == 1 and len(reg.list_runs()) == 3


def test_an_up_to_date_sync_only_reads(reg: Registry, tmp_path: Path) -> None:
    shipped = tmp_path / "shipped"
    _shipped(shipped, "cnn_mnist")
    assert len(sync_baselines(reg, shipped)) == 1
    before = reg.db_path.stat().st_mtime_ns, reg.db_path.read_bytes()
    assert sync_baselines(reg, shipped) == []
    assert (reg.db_path.stat().st_mtime_ns, reg.db_path.read_bytes()) == before
    assert sync_baselines(reg, tmp_path / "nothing-here") == []


def test_concurrent_baseline_syncs_register_each_file_once(reg: Registry, tmp_path: Path) -> None:
    shipped = tmp_path / "shipped"
    for i in range(3):
        _shipped(shipped, f"cnn_{i}")
    barrier = threading.Barrier(4)
    results: list[list[int]] = []

    def sync() -> None:
        barrier.wait()
        results.append(sync_baselines(Registry(reg.home), shipped))

    threads = [threading.Thread(target=sync) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results) == [0, 0, 0, 3]
    assert len(reg.list_runs()) == 3
