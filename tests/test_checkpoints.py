"""Checkpoint files: self-describing, written atomically, never unpickled, and loud about damage."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vitdemo import checkpoints
from vitdemo.checkpoints import CheckpointError, load_checkpoint, make_meta, read_meta, save_checkpoint
from vitdemo.config import CNNConfig, TrainConfig, ViTConfig
from vitdemo.models import build_model

CONFIGS = [ViTConfig(patch_size=7, embed_dim=16, depth=2, num_heads=2), CNNConfig(width=4, depth=2)]


def _saved(path: Path, config=CONFIGS[0], seed: int = 0) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(seed)
    model = build_model(config).eval()
    meta = make_meta(
        config,
        "fashion",
        metrics={"test_acc": 0.9, "epochs": 3},
        train_config=TrainConfig(model=config, dataset="fashion", epochs=3).to_dict(),
        name="my run",
    )
    return save_checkpoint(path, model, meta), model


@pytest.mark.parametrize("config", CONFIGS, ids=["vit", "cnn"])
def test_round_trip_gives_the_same_logits(tmp_path: Path, config) -> None:
    path, model = _saved(tmp_path / "sub" / "model.safetensors", config)
    with torch.no_grad():
        for module in model.modules():  # non-trivial batch-norm statistics must survive too
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    path = save_checkpoint(path, model, read_meta(path))
    loaded = load_checkpoint(path)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    assert not loaded.model.training and loaded.path == path
    meta = loaded.meta
    assert meta.model_config == config and meta.dataset == "fashion" and meta.classes[0] == "T-shirt"
    assert meta.metrics == {"test_acc": 0.9, "epochs": 3} and meta.name == "my run"
    assert TrainConfig.from_dict(meta.train_config).model == config
    assert loaded.kind == config.kind and loaded.num_params > 0


def test_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    path, _ = _saved(tmp_path / "model.safetensors")
    _saved(path, seed=1)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, model = _saved(tmp_path / "model.safetensors")
    before = path.read_bytes()

    def disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("No space left on device")

    monkeypatch.setattr(checkpoints, "save_file", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, model, read_meta(path))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_corrupt_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(64))
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        load_checkpoint(garbage)

    path, _ = _saved(tmp_path / "truncated.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header survives, the weights do not
    with pytest.raises(CheckpointError, match="truncated.safetensors"):
        load_checkpoint(path)


def test_safetensors_without_our_header(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="no vitdemo header"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "header, message",
    [
        ({"format": "something-else"}, "not a vitdemo checkpoint"),
        ("{not json", "damaged vitdemo header"),
        ({"format": checkpoints.FORMAT, "version": 1}, "damaged vitdemo header"),  # fields missing
        ({"format": checkpoints.FORMAT, "version": 99}, "newer than this vitdemo"),
    ],
)
def test_wrong_header(tmp_path: Path, header, message: str) -> None:
    path = tmp_path / "bad.safetensors"
    raw = header if isinstance(header, str) else json.dumps(header)
    save_file({"w": torch.zeros(2)}, str(path), metadata={checkpoints.HEADER_KEY: raw})
    with pytest.raises(CheckpointError, match=message):
        read_meta(path)


def test_mismatched_weights(tmp_path: Path) -> None:
    """The header says one model, the weights belong to another."""
    path, _ = _saved(tmp_path / "model.safetensors")
    other = build_model(ViTConfig(patch_size=7, embed_dim=32, depth=2, num_heads=2))
    save_checkpoint(path, other, read_meta(path))  # embed_dim 32 weights under an embed_dim 16 header
    with pytest.raises(CheckpointError, match="do not match its model config"):
        load_checkpoint(path)

    fewer = {k: v for k, v in build_model(CONFIGS[0]).state_dict().items() if not k.startswith("head")}
    save_file(fewer, str(path), metadata={checkpoints.HEADER_KEY: json.dumps(read_meta(path).to_header())})
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(path)


class _Payload:
    """Unpickling this object creates a marker file: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_a_pickle_is_never_executed(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    payload = {"model": _Payload(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError):
        read_meta(path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not marker.exists()
    pickle.loads(pickle.dumps(_Payload(marker)))  # the payload does work when unpickled: the test can fail
    assert marker.exists()
