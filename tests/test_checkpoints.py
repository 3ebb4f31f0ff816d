"""Checkpoint files: self-describing, written atomically, never unpickled, and loud about damage."""

from __future__ import annotations

import json
import os
import pickle
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vitdemo import checkpoints
from vitdemo.checkpoints import CheckpointError, load_checkpoint, make_meta, read_meta, save_checkpoint
from vitdemo.config import CNNConfig, LinearConfig, MLPConfig, TrainConfig, TransferConfig, ViTConfig
from vitdemo.models import build_model

REPO_ROOT = Path(__file__).resolve().parent.parent
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
    """The header says one model, the weights belong to another: the message names the tensor and both shapes."""
    path, _ = _saved(tmp_path / "model.safetensors")
    other = build_model(ViTConfig(patch_size=7, embed_dim=32, depth=2, num_heads=2))
    save_checkpoint(path, other, read_meta(path))  # embed_dim 32 weights under an embed_dim 16 header
    with pytest.raises(CheckpointError, match=r"tensor 'cls_token' has shape \[1, 1, 32\] .* needs \[1, 1, 16\]"):
        load_checkpoint(path)

    fewer = {k: v for k, v in build_model(CONFIGS[0]).state_dict().items() if not k.startswith("head")}
    save_file(fewer, str(path), metadata={checkpoints.HEADER_KEY: json.dumps(read_meta(path).to_header())})
    with pytest.raises(CheckpointError, match="do not match its model config: tensor 'head.weight' is missing"):
        load_checkpoint(path)

    more = {**build_model(CONFIGS[0]).state_dict(), "extra.weight": torch.zeros(3)}
    save_file(more, str(path), metadata={checkpoints.HEADER_KEY: json.dumps(read_meta(path).to_header())})
    with pytest.raises(CheckpointError, match="unexpected tensor 'extra.weight'"):
        load_checkpoint(path)

    halves = {k: v.half() for k, v in build_model(CONFIGS[0]).state_dict().items()}
    save_file(halves, str(path), metadata={checkpoints.HEADER_KEY: json.dumps(read_meta(path).to_header())})
    with pytest.raises(CheckpointError, match="tensor 'cls_token' is F16 in the file, not F32"):
        load_checkpoint(path)


# --- hand-made files: every header field and every weight is checked before a model is built ----------------


def _handmade(
    path: Path, config=CONFIGS[0], state: dict | None = None, drop: tuple[str, ...] = (), **header_changes
) -> Path:
    """A safetensors file written by hand: a tiny model's weights (or `state`) under an edited vitdemo header."""
    torch.manual_seed(0)
    state = state if state is not None else build_model(config).state_dict()
    header = {**make_meta(config, "mnist").to_header(), **header_changes}
    header = {k: v for k, v in header.items() if k not in drop}
    save_file(
        {k: v.contiguous() for k, v in state.items()}, str(path), metadata={checkpoints.HEADER_KEY: json.dumps(header)}
    )
    return path


@pytest.fixture
def real_builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The devices `build_model` was called on by the checkpoint loader (meta builds allocate nothing)."""
    devices: list[str] = []
    build = checkpoints.build_model

    def spy(config):
        devices.append(str(torch.get_default_device()))
        return build(config)

    monkeypatch.setattr(checkpoints, "build_model", spy)
    return devices


def _with_config(**changes) -> dict:
    return {**CONFIGS[0].__dict__, **changes}


@pytest.mark.parametrize(
    "model_config, message",
    [
        (_with_config(num_classes=10**6), "num_classes is 1000000 but mnist has 10 classes"),
        (_with_config(image_size=32), "image_size is 32; vitdemo models take 28x28"),
        (_with_config(in_chans=0), "in_chans is 0"),
        (_with_config(in_chans=3), "in_chans is 3"),
        (_with_config(patch_size=5), "its model config is invalid: patch_size must be 4, 7 or 14"),
        (_with_config(embed_dim=16, num_heads=3), "must be divisible by num_heads"),
        (_with_config(image_size="28"), "image_size = '28' is not a valid int"),
        (_with_config(depth=2.0), "depth = 2.0 is not a valid int"),
        ({**CNNConfig(width=4).__dict__, "num_classes": 10**6}, "num_classes is 1000000"),
    ],
    ids=[
        "10^6 classes",
        "image 32",
        "0 channels",
        "3 channels",
        "patch 5",
        "heads",
        "str size",
        "float depth",
        "cnn 10^6",
    ],
)
def test_a_header_that_no_vitdemo_model_fits_is_refused_before_building(
    tmp_path: Path, real_builds: list[str], model_config: dict, message: str
) -> None:
    path = _handmade(tmp_path / "bad.safetensors", model_config=model_config)
    with pytest.raises(CheckpointError, match=message):
        read_meta(path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)
    assert real_builds == []  # not even on the meta device


def test_the_largest_allowed_vit_is_not_built_for_small_weights(tmp_path: Path, real_builds: list[str]) -> None:
    """A valid header for a 2.5 GB ViT over a tiny model's weights: refused from the index, nothing allocated."""
    huge = ViTConfig(patch_size=4, embed_dim=1024, depth=24, num_heads=16, mlp_ratio=8)
    path = _handmade(tmp_path / "huge.safetensors", model_config=huge.__dict__)
    assert read_meta(path).model_config == huge  # the header alone is fine
    with pytest.raises(
        CheckpointError, match=r"tensor 'cls_token' has shape \[1, 1, 16\] in the file .*\[1, 1, 1024\]"
    ):
        load_checkpoint(path)
    assert real_builds == ["meta"]


@pytest.mark.parametrize("config", CONFIGS, ids=["vit", "cnn"])
def test_a_good_file_is_built_once_for_real(tmp_path: Path, real_builds: list[str], config) -> None:
    load_checkpoint(_saved(tmp_path / "m.safetensors", config)[0])
    assert real_builds == ["meta", "cpu"]


@pytest.mark.parametrize(
    "config",
    [
        *CONFIGS,
        ViTConfig(),
        ViTConfig(patch_size=14, depth=1, mlp_ratio=0.5),
        CNNConfig(width=32, depth=3),
        CNNConfig(depth=1),
    ],
)
def test_expected_tensors_match_a_real_model(config) -> None:
    real = {
        k: (tuple(v.shape), checkpoints.SAFETENSORS_DTYPES[v.dtype])
        for k, v in build_model(config).state_dict().items()
    }
    assert checkpoints.expected_tensors(config) == real


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"dataset": "cifar10"}, "unknown dataset 'cifar10'"),
        ({"classes": []}, r"its class names \[\] are not those of mnist"),
        ({"classes": list("abcdefghij")}, "are not those of mnist"),
        ({"classes": "0123456789"}, "damaged vitdemo header"),
        ({"model_config": 5}, "damaged vitdemo header"),
        ({"std": 0.0}, "normalisation is invalid"),
        ({"temperature": 0.0}, "temperature 0.0 is outside"),
        ({"temperature": "hot"}, "damaged vitdemo header"),
    ],
)
def test_a_header_for_data_vitdemo_does_not_know_is_refused(tmp_path: Path, changes: dict, message: str) -> None:
    path = _handmade(tmp_path / "bad.safetensors", **changes)
    with pytest.raises(CheckpointError, match=message):
        read_meta(path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_unknown_dataset_is_not_listed_as_a_shipped_baseline(tmp_path: Path) -> None:
    from vitdemo.runs.baselines import sync_baselines
    from vitdemo.runs.store import Registry

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    _saved(shipped / "good.safetensors")
    _handmade(shipped / "cifar.safetensors", dataset="cifar10")
    _handmade(shipped / "noclasses.safetensors", classes=[])
    registry = Registry(tmp_path / "home")
    assert len(sync_baselines(registry, shipped)) == 1
    assert [Path(r.checkpoint).name for r in registry.list_runs()] == ["good.safetensors"]


def test_predict_with_an_unknown_dataset_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It used to crash with an IndexError; now the CLI prints one line and exits 2."""
    import numpy as np
    from PIL import Image

    from vitdemo.cli import main as cli

    image = tmp_path / "one.png"
    pixels = np.zeros((28, 28), np.uint8)
    pixels[4:24, 13:15] = 255
    Image.fromarray(pixels).save(image)
    vit = _handmade(tmp_path / "vit.safetensors", dataset="cifar10")
    cnn = _handmade(tmp_path / "cnn.safetensors", CNNConfig(width=4, depth=2), dataset="cifar10")
    status = cli.main(["predict", str(image), "--vit", str(vit), "--cnn", str(cnn), "--json", "--home", str(tmp_path)])
    assert status == 2
    assert "unknown dataset 'cifar10'" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("config", CONFIGS, ids=["vit", "cnn"])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path: Path, config, bad: float) -> None:
    torch.manual_seed(0)
    state = build_model(config).state_dict()
    name = "head.weight" if config.kind == "vit" else "stages.1.0.0.weight"
    state[name].view(-1)[3] = bad
    path = _handmade(tmp_path / "bad.safetensors", config, state=state)
    with pytest.raises(CheckpointError, match=f"tensor '{re.escape(name)}' holds 1 NaN or infinite values"):
        load_checkpoint(path)


def test_old_files_without_a_temperature_load_with_one(tmp_path: Path) -> None:
    path = _handmade(tmp_path / "old.safetensors", drop=("temperature",))
    assert "temperature" not in json.loads(_metadata(path))
    assert load_checkpoint(path).meta.temperature == 1.0


def _metadata(path: Path) -> str:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata()[checkpoints.HEADER_KEY]


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


def test_checking_a_file_imports_no_compiler_machinery(tmp_path: Path) -> None:
    """The meta-device build must stay cheap: in this torch, meta arithmetic would import sympy and torch._dynamo
    (1-2 s and 130 MB on the first load of every process). Checked in a fresh interpreter."""
    vit, _ = _saved(tmp_path / "vit.safetensors", ViTConfig())
    cnn, _ = _saved(tmp_path / "cnn.safetensors", CNNConfig(width=32, depth=3))
    code = (
        "import sys\nfrom vitdemo.checkpoints import load_checkpoint\n"
        f"load_checkpoint({str(vit)!r}); load_checkpoint({str(cnn)!r})\n"
        "print(sorted(m for m in ('sympy', 'torch._dynamo') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.strip() == "[]"


# --- the other model families -------------------------------------------------------------------------------

FAMILY_CONFIGS = [LinearConfig(), MLPConfig(hidden=(32, 16), dropout=0.2)]


@pytest.mark.parametrize("config", FAMILY_CONFIGS, ids=["linear", "mlp"])
def test_linear_and_mlp_checkpoints_round_trip(tmp_path: Path, real_builds: list[str], config) -> None:
    """Fails before the wiring: the loader knew only 'vit' and 'cnn', and refused the MLP's tuple of sizes."""
    path, model = _saved(tmp_path / f"{config.kind}.safetensors", config)
    loaded = load_checkpoint(path)
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    assert loaded.meta.model_config == config and loaded.kind == config.kind
    assert TrainConfig.from_dict(loaded.meta.train_config).model == config
    assert real_builds == ["meta", "cpu"]


@pytest.mark.parametrize(
    "hidden, message",
    [(["64"], "hidden = \\('64',\\) is not a valid tuple"), ([64.0], "is not a valid tuple"), ([], "hidden must list")],
)
def test_an_mlp_header_with_bad_sizes_is_refused(tmp_path: Path, hidden: list, message: str) -> None:
    path = _handmade(tmp_path / "mlp.safetensors", model_config={**MLPConfig().__dict__, "hidden": hidden})
    with pytest.raises(CheckpointError, match=message):
        read_meta(path)


@pytest.mark.parametrize("config", [*FAMILY_CONFIGS, TransferConfig(arch="alexnet", image_px=64)])
def test_expected_tensors_match_a_real_family_model(config) -> None:
    real = {
        k: (tuple(v.shape), checkpoints.SAFETENSORS_DTYPES[v.dtype])
        for k, v in build_model(config).state_dict().items()
    }
    assert checkpoints.expected_tensors(config) == real


def test_a_transfer_checkpoint_loads_without_imagenet_weights_or_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_builds: list[str]
) -> None:
    """Rebuilding a trained transfer model reads its own file only: no torch hub file, no download, no socket."""
    from vitdemo.models import transfer

    def refuse(*args, **kwargs):
        raise AssertionError("loading a checkpoint reached for the ImageNet weights")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    for name in ("load_pretrained", "pretrained_state", "read_weights_file"):
        monkeypatch.setattr(transfer, name, refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    config = TransferConfig(arch="alexnet", image_px=64, finetune="head")  # pretrained=True: trained from ImageNet
    path, model = _saved(tmp_path / "transfer.safetensors", config)
    loaded = load_checkpoint(path)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    assert loaded.meta.model_config == config
    assert real_builds == ["meta", "cpu"]
    assert not (tmp_path / "empty-torch-home").exists()
