"""Shipped models become finished baseline runs: once each, with their curves, never deletable; scikit-learn
files too, pretrained encoders never."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from vitdemo.checkpoints import make_meta, save_checkpoint
from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.models import build_model
from vitdemo.runconfig import ClassicConfig, ClassicRun, run_config_from_dict
from vitdemo.runs.baselines import encoders, sync_baselines
from vitdemo.runs.store import Registry

HISTORY = [
    {"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.8, "val_loss": 1.1 / e, "val_acc": 0.9 + e / 100, "lr": 1e-3}
    for e in (1, 2)
]


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


def _classic_file(folder: Path, name: str) -> Path:
    import numpy as np

    from vitdemo.models.classic import fit_classic, save_classic
    from vitdemo.runconfig import ClassicConfig

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), np.arange(40) % 10
    fitted = fit_classic(ClassicConfig(kind="logreg", max_iter=20), x, y)
    metrics = {"test_acc": 0.91, "macro_f1": 0.9, "val_acc": 0.92, "train_time_s": 1.5, "num_params": 7850,
               "val_size": 3000, "split_seed": 2, "train_subset": 40}  # fmt: skip
    return save_classic(folder / f"{name}.skops", dataclasses.replace(fitted, metrics=metrics, name=name))


def _encoder(folder: Path, name: str) -> Path:
    from vitdemo.pretrain.encoder import ENCODER_TAG

    meta = make_meta(CNNConfig(width=4, depth=1), "mnist", metrics={ENCODER_TAG: "simclr", "pretrain": {"epochs": 3}},
                     name=name)  # fmt: skip
    return save_checkpoint(folder / f"{name}.safetensors", build_model(meta.model_config), meta)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 20 steps on noise: fine here
def test_classic_files_are_baselines_and_encoders_are_not(reg: Registry, tmp_path: Path) -> None:
    """A shipped .skops file is a baseline run read from its header; a pretrained encoder (no trained head) is
    never listed, only offered as the start of a fine-tune."""
    shipped = tmp_path / "shipped"
    net = _shipped(shipped, "cnn_mnist")
    skops = _classic_file(shipped, "logreg_mnist")
    enc = _encoder(shipped, "simclr_cnn_mnist")
    (shipped / "junk.skops").write_bytes(b"not a zip")  # skipped, the others still register
    assert len(sync_baselines(reg, shipped)) == 2 and sync_baselines(reg, shipped) == []
    runs = {r.name: r for r in reg.list_runs()}
    assert set(runs) == {"cnn_mnist", "logreg_mnist"}
    classic = runs["logreg_mnist"]
    assert classic.kind == "logreg" and classic.baseline and classic.test_acc == 0.91 and classic.macro_f1 == 0.9
    assert classic.checkpoint == str(skops.resolve()) and classic.num_params == 7850 and classic.device == "cpu"
    run = run_config_from_dict(classic.config)  # the stored config is the run that made the file
    assert run == ClassicRun(model=ClassicConfig(kind="logreg", max_iter=20), val_size=3000, split_seed=2,
                             train_subset=40, name="logreg_mnist")  # fmt: skip
    assert sorted(r.checkpoint for r in runs.values()) == sorted(str(p.resolve()) for p in (net, skops))
    (found,) = encoders(shipped)
    assert found.path == enc and found.method == "simclr" and found.pretrain_epochs == 3
    assert found.model == CNNConfig(width=4, depth=1) and found.name == "simclr_cnn_mnist"
