"""Transfer models: the whole path from a torchvision weights file to a training step, without any network.

The weights files are made here: state_dicts of torchvision's own architectures with random weights, saved
in half precision to stay small. A guard fails the test on any download attempt or socket connection.
"""

import socket
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision.models as tvm

from vitdemo.config import ConfigError, TrainConfig, TransferConfig
from vitdemo.data import load_dataset
from vitdemo.models import build_model
from vitdemo.models.transfer import (
    TransferError,
    TransferNet,
    backbone_state,
    hub_checkpoints_dir,
    load_pretrained,
    weights_filename,
)
from vitdemo.training.loop import train


def pretrained_net(config: TransferConfig, weights_path: str | Path | None = None) -> TransferNet:
    """The network a transfer run trains (vitdemo.training.loop.prepare_model): ImageNet weights in the backbone
    when `config.pretrained`, random otherwise."""
    model = TransferNet(config)
    return load_pretrained(model, weights_path) if config.pretrained else model


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Any download or connection fails the test; torch hub's cache is an empty temporary folder."""

    def refuse(*args, **kwargs):
        raise AssertionError("a transfer test tried to use the network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


class Payload:
    """Stands for any pickled object that is not a tensor."""


def save_half(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, path)
    return path


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    """AlexNet's torchvision backbone keys ("features.*"), random weights, fp16: 5 MB instead of 244 MB."""
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in tvm.alexnet().features.state_dict().items()}
    return save_half(state, tmp_path_factory.mktemp("w") / "alexnet.pth"), state


def train_step(model: TransferNet) -> None:
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x, y = torch.randn(4, 1, 28, 28), torch.arange(4)
    loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def test_every_arch_takes_digits_and_returns_ten_logits() -> None:
    for arch, px in (("resnet18", 32), ("vgg16", 32), ("alexnet", 64)):
        model = TransferNet(TransferConfig(arch=arch, image_px=px, pretrained=False)).eval()
        with torch.no_grad():
            assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_full_state_dict_is_adapted_rgb_summed_and_head_dropped(tmp_path: Path) -> None:
    torch.manual_seed(0)
    full = tvm.resnet18().state_dict()  # with the 1000-class fc, as torchvision ships it
    path = save_half(full, tmp_path / "resnet18.pth")
    model = load_pretrained(TransferNet(TransferConfig(arch="resnet18", image_px=32)), path)
    expected = full["conv1.weight"].half().float().sum(dim=1, keepdim=True)  # (64, 3, 7, 7) -> (64, 1, 7, 7)
    assert torch.allclose(model.backbone.conv1.weight, expected)
    assert torch.equal(model.backbone.layer3[1].bn2.running_var, full["layer3.1.bn2.running_var"].half().float())
    assert model.head[-1].weight.shape == (10, 512)
    assert "fc.weight" not in backbone_state("resnet18", full)


def test_alexnet_whole_path_fine_tunes_all(alexnet_file) -> None:
    path, state = alexnet_file
    model = pretrained_net(TransferConfig(arch="alexnet", image_px=64, finetune="all"), path)
    assert torch.equal(model.backbone[3].weight, state["features.3.weight"].half().float())
    before = model.backbone[3].weight.detach().clone()
    train_step(model)
    assert not torch.equal(model.backbone[3].weight, before)  # the backbone learns too


def test_head_only_freezes_backbone_weights_and_statistics(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = save_half(tvm.resnet18().state_dict(), tmp_path / "r.pth")
    model = pretrained_net(TransferConfig(arch="resnet18", image_px=32, finetune="head"), path)
    backbone = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head = model.head[-1].weight.detach().clone()
    train_step(model)
    assert not model.backbone.training and model.head.training
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in backbone.items())  # incl. BN stats
    assert not torch.equal(model.head[-1].weight, head)
    assert all(not p.requires_grad for p in model.backbone.parameters())


def test_offline_error_names_the_file_and_the_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args, **kwargs):
        raise OSError("no route to host")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(TransferError) as err:
        pretrained_net(TransferConfig(arch="vgg16", image_px=32))
    message = str(err.value)
    assert weights_filename("vgg16") == "vgg16-397923af.pth"
    assert "vgg16-397923af.pth" in message and str(hub_checkpoints_dir()) in message
    assert "Traceback" not in message


def test_a_file_placed_in_the_hub_cache_is_used_offline(alexnet_file) -> None:
    path, state = alexnet_file
    cache = hub_checkpoints_dir()
    cache.mkdir(parents=True)
    (cache / weights_filename("alexnet")).write_bytes(path.read_bytes())
    model = pretrained_net(TransferConfig(arch="alexnet", image_px=64))  # no weights_path: the hub cache
    assert torch.equal(model.backbone[0].bias, state["features.0.bias"].half().float())


def test_bad_files_are_refused_clearly(tmp_path: Path, alexnet_file) -> None:
    model = TransferNet(TransferConfig(arch="resnet18", image_px=32))
    with pytest.raises(TransferError, match="does not match torchvision's resnet18"):
        load_pretrained(model, alexnet_file[0])
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a zip")
    with pytest.raises(TransferError, match="not a readable torch weights file"):
        load_pretrained(model, junk)
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": Payload()}, evil)  # a pickled object of any class: weights_only refuses it
    with pytest.raises(TransferError, match="not a readable"):
        load_pretrained(model, evil)
    with pytest.raises(TransferError, match="not found"):
        load_pretrained(model, tmp_path / "missing.pth")


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"arch": "resnet50"}, "arch"),
        ({"arch": "alexnet", "image_px": 32}, "image_px"),
        ({"finetune": "head", "pretrained": False}, "pretrained"),
        ({"finetune": "some"}, "finetune"),
    ],
)
def test_bad_configs_are_refused(kwargs: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        TransferConfig(**kwargs).validate()


# --- wired into the core: build_model never loads, train() does -------------------------------------------


def test_build_model_never_reads_imagenet_weights(alexnet_file) -> None:
    """Rebuilding a checkpoint must not need the ImageNet file: the registry's builder gives random weights."""
    model = build_model(TransferConfig(arch="alexnet", image_px=64))  # pretrained=True, and no file anywhere
    assert isinstance(model, TransferNet)
    assert not torch.equal(model.backbone[3].weight, alexnet_file[1]["features.3.weight"].half().float())


def test_a_run_starts_from_the_weights_file_and_a_probe_keeps_it(alexnet_file, data_dir: Path) -> None:
    path, state = alexnet_file
    data = load_dataset("mnist", data_dir, val_size=100, seed=0, train_subset=200)
    config = TrainConfig(
        model=TransferConfig(arch="alexnet", image_px=64),
        weights_path=str(path),
        probe=True,
        epochs=1,
        batch_size=100,
        device="cpu",
    )
    result = train(config, data=data)
    backbone = result.model.backbone.state_dict()
    expected = backbone_state("alexnet", {k: v.half().float() for k, v in state.items()})  # RGB conv summed
    assert backbone.keys() == expected.keys()
    assert all(torch.equal(backbone[k], v) for k, v in expected.items())  # loaded, then frozen by the probe


def test_a_run_without_weights_offline_says_which_file_to_place(monkeypatch: pytest.MonkeyPatch, data_dir) -> None:
    def offline(*args, **kwargs):
        raise OSError("no route to host")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    data = load_dataset("mnist", data_dir, val_size=0, seed=0, train_subset=20)
    config = TrainConfig(model=TransferConfig(arch="resnet18", image_px=32), epochs=1, device="cpu")
    with pytest.raises(TransferError, match="resnet18-f37072fd.pth"):
        train(config, data=data)
