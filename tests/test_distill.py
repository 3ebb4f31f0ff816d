"""A ViT that learns from a CNN (DeiT hard-label distillation): the network, the loss, the step, the header, the form."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from vitdemo.checkpoints import load_checkpoint, make_meta, save_checkpoint
from vitdemo.config import CNNConfig, ConfigError, TrainConfig, ViTConfig
from vitdemo.data import normalization
from vitdemo.explain.hood import grid_of, token_attention
from vitdemo.explain.maps import attention_rollout, layer_maps
from vitdemo.models import build_model
from vitdemo.training.distill import distillation_loss, load_teacher
from vitdemo.training.loop import make_learner, train, train_step
from vitdemo.views import forms, teachers

MEAN, STD = normalization("mnist")
TINY_VIT = ViTConfig(patch_size=7, embed_dim=16, depth=1, num_heads=2)


def _cnn_file(tmp_path: Path, dataset: str = "mnist", name: str = "teacher.safetensors") -> Path:
    torch.manual_seed(1)
    model = build_model(CNNConfig(width=4, depth=1)).eval()
    return save_checkpoint(tmp_path / name, model, make_meta(model.config, dataset, name="tiny cnn"))


def test_the_distilled_vit_has_a_second_token_and_averages_its_two_heads_at_test_time() -> None:
    torch.manual_seed(0)
    vit = build_model(dataclasses.replace(TINY_VIT, teacher="shipped")).eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        head, dist = vit(x, both_heads=True)  # (3, 10) each
        logits, attns = vit(x, return_attn=True)
    assert not torch.allclose(head, dist) and torch.allclose(logits, (head + dist) / 2, atol=1e-6)
    assert attns[0].shape[-1] == 1 + 16 + 1  # class token, 4x4 patches, distillation token
    plain = build_model(TINY_VIT).eval()
    with torch.no_grad():
        once, twice = plain(x, both_heads=True)
    assert torch.equal(once, twice) and attns[0].shape[-1] == plain(x, return_attn=True)[1][0].shape[-1] + 1


def test_the_maps_of_a_distilled_vit_read_the_patches_only() -> None:
    torch.manual_seed(0)
    vit = build_model(dataclasses.replace(TINY_VIT, teacher="shipped"))
    _, heat, attns = attention_rollout(vit, torch.randn(2, 1, 28, 28))
    assert heat.shape == (2, 28, 28) and torch.isfinite(heat).all()
    assert layer_maps(attns, 4).shape == (2, 1, 4, 4)
    one = torch.stack([a[0] for a in attns])  # (L, heads, T, T)
    assert grid_of(one) == 4 and token_attention(one, 0).shape == (1, 2, 4, 4)


def test_the_loss_is_deits_hard_distillation() -> None:
    torch.manual_seed(0)
    head, dist, taught = torch.randn(5, 10), torch.randn(5, 10), torch.randn(5, 10)
    labels = torch.randint(0, 10, (5,))
    expected = 0.5 * F.cross_entropy(head, labels, label_smoothing=0.1) + 0.5 * F.cross_entropy(dist, taught.argmax(1))
    assert torch.allclose(distillation_loss(head, dist, labels, taught, 0.1), expected)


def test_a_step_with_a_teacher_trains_the_student_on_the_teachers_answers(tmp_path: Path) -> None:
    teacher_file = _cnn_file(tmp_path)
    config = TrainConfig(model=dataclasses.replace(TINY_VIT, teacher=str(teacher_file)), batch_size=8, augment=0,
                         device="cpu", amp=False)  # fmt: skip
    torch.manual_seed(0)
    learner = make_learner(config, torch.device("cpu"), MEAN, STD)
    assert learner.teacher is not None and not learner.teacher.training
    assert learner.teacher_identity["file"] == teacher_file.name and len(learner.teacher_identity["sha256"]) == 16
    teacher_before = {k: v.clone() for k, v in learner.teacher.state_dict().items()}
    images = torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (8,))
    x = (images.float() / 255 - MEAN) / STD
    with torch.no_grad():
        taught = learner.teacher(x[:, None])
        head, dist = learner.model(x[:, None], both_heads=True)
    expected = distillation_loss(head, dist, labels, taught, config.label_smoothing)
    loss, logits = train_step(learner, images, labels, 1e-3)
    assert torch.allclose(loss, expected, atol=1e-5) and torch.allclose(logits, (head + dist) / 2, atol=1e-5)
    assert all(torch.equal(v, learner.teacher.state_dict()[k]) for k, v in teacher_before.items())
    assert all(p.grad is None for p in learner.teacher.parameters())


def test_on_a_cpu_the_teacher_is_the_folded_channels_last_copy_with_the_same_answers(tmp_path: Path) -> None:
    teacher_file = _cnn_file(tmp_path)
    config = TrainConfig(model=dataclasses.replace(TINY_VIT, teacher=str(teacher_file)), device="cpu")
    teacher, _ = load_teacher(config, torch.device("cpu"))
    original = load_checkpoint(teacher_file).model.eval()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in teacher.modules())  # folded into the convs
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in original.modules())
    conv = next(m for m in teacher.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not any(p.requires_grad for p in teacher.parameters())
    x = torch.randn(6, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(teacher(x), original(x), atol=1e-4)


def test_a_run_with_a_teacher_names_it_in_its_checkpoint_header(tmp_path: Path, data_dir: Path) -> None:
    teacher_file = _cnn_file(tmp_path)
    model = dataclasses.replace(TINY_VIT, teacher=str(teacher_file))
    config = TrainConfig(model=model, epochs=1, batch_size=64, train_subset=256, val_size=64, device="cpu")
    result = train(config, data_dir=str(data_dir))
    assert result.teacher is not None and result.teacher["name"] == "tiny cnn"
    meta = make_meta(model, "mnist", train_config=config.to_dict(), teacher=result.teacher)
    path = save_checkpoint(tmp_path / "student.safetensors", result.model, meta)
    loaded = load_checkpoint(path)
    assert loaded.meta.teacher == result.teacher and loaded.meta.model_config.teacher == str(teacher_file)
    assert load_checkpoint(teacher_file).meta.teacher is None  # no teacher: no header entry


def test_a_teacher_that_does_not_fit_is_refused_with_one_sentence(tmp_path: Path) -> None:
    def config(teacher: str, dataset: str = "mnist") -> TrainConfig:
        return TrainConfig(model=dataclasses.replace(TINY_VIT, teacher=teacher), dataset=dataset, device="cpu")

    vit_file = save_checkpoint(tmp_path / "vit.safetensors", build_model(TINY_VIT), make_meta(TINY_VIT, "mnist"))
    with pytest.raises(ConfigError, match="must be a CNN; vit.safetensors holds a vit model"):
        load_teacher(config(str(vit_file)), torch.device("cpu"))
    with pytest.raises(ConfigError, match="trained on fashion, this run on mnist"):
        load_teacher(config(str(_cnn_file(tmp_path, "fashion", "f.safetensors"))), torch.device("cpu"))
    with pytest.raises(ConfigError, match="missing.safetensors was not found"):
        load_teacher(config(str(tmp_path / "missing.safetensors")), torch.device("cpu"))
    with pytest.raises(ConfigError, match="teacher must be"):
        ViTConfig(teacher="7").validate()


def test_the_train_form_offers_finished_cnn_runs_and_the_shipped_cnn(tmp_path: Path) -> None:
    def run(i: int, kind: str, status: str = "done", baseline: bool = False, dataset: str = "mnist"):
        config = {"dataset": dataset, "model": {"kind": kind}}
        return SimpleNamespace(id=i, name=f"r{i}", test_acc=0.9 + i / 100, status=status, baseline=baseline,
                               checkpoint=f"/runs/{i}.safetensors", config=config, label=f"#{i} r{i}")  # fmt: skip

    runs = [run(1, "cnn"), run(2, "vit"), run(3, "cnn", "failed"), run(4, "cnn", baseline=True), run(5, "cnn"),
            run(6, "cnn", dataset="fashion")]  # fmt: skip
    choices = teachers.teacher_choices(runs, "mnist")
    assert list(choices) == ["", "shipped", "/runs/5.safetensors", "/runs/1.safetensors"]  # best first
    values = {**forms.start_values(), "model_kind": "vit", forms.TEACHER_KEY: "/runs/5.safetensors"}
    config = forms.config_from_values(values, encoders={})
    assert config.model.teacher == "/runs/5.safetensors"
    assert forms.values_from_config(config)[forms.TEACHER_KEY] == "/runs/5.safetensors"
    cnn = forms.config_from_values({**values, "model_kind": "cnn"}, encoders={})
    assert not hasattr(cnn.model, "teacher")
    assert "not on this server" in teachers.teacher_label("/gone/9.safetensors", choices)


def test_a_teacher_is_written_into_the_reproduce_command_and_parsed_back() -> None:
    import shlex

    from vitdemo.cli.main import build_parser, config_from_args
    from vitdemo.shipped import train_command

    config = TrainConfig(model=dataclasses.replace(TINY_VIT, teacher="shipped"), epochs=2, name="taught")
    command = train_command(config.to_dict(), "out.safetensors")
    assert "--teacher shipped" in command and "--teacher" not in train_command(TrainConfig().to_dict(), "x")
    args = build_parser().parse_args(shlex.split(command)[3:])
    assert dataclasses.replace(config_from_args(args), device=config.device) == config


def test_a_taught_vit_started_from_an_untaught_one_first_gives_its_answers(tmp_path: Path) -> None:
    """A fine-tune under a teacher from a shipped untaught ViT: the distillation token starts as the class token's
    input and its head as the class head, so both heads give the same answers, near the checkpoint's (the class
    token also sees its twin now); before, the init was refused, the file lacking 'dist_token'. Another dataset's
    classes: both heads start new."""
    from vitdemo.training.warmstart import init_from_checkpoint

    torch.manual_seed(0)
    untaught = build_model(TINY_VIT).eval()
    path = save_checkpoint(tmp_path / "vit.safetensors", untaught, make_meta(TINY_VIT, "mnist", name="vit"))
    taught = build_model(dataclasses.replace(TINY_VIT, teacher="shipped")).eval()
    copied = init_from_checkpoint(taught, path, dataset="mnist")
    assert {"dist_token", "head_dist.weight", "head_dist.bias"} <= set(copied)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        head, dist = taught(x, both_heads=True)  # (4, 10) each
        before, fresh = untaught(x), build_model(dataclasses.replace(TINY_VIT, teacher="shipped")).eval()(x)
    assert torch.allclose(dist, head, atol=1e-5)
    assert (head - before).abs().mean() < 0.2 * (fresh - before).abs().mean()
    other = build_model(dataclasses.replace(TINY_VIT, teacher="shipped"))
    copied = init_from_checkpoint(other, path, dataset="fashion")
    assert "dist_token" in copied and not any(k.startswith(("head.", "head_dist.")) for k in copied)


def test_a_missing_teacher_is_refused_when_the_run_is_queued_and_not_offered(tmp_path: Path, reg, monkeypatch) -> None:
    """A server without the shipped CNN of a dataset queued a taught ViT that could only fail in the worker, and
    the Train form offered that teacher."""
    from vitdemo.runs import queue
    from vitdemo.runs.people import Actor

    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(tmp_path))  # no shipped CNN here
    student = Actor("person:1", "Ana")
    taught = TrainConfig(model=dataclasses.replace(TINY_VIT, teacher="shipped"), epochs=1, device="cpu")
    with pytest.raises(ConfigError, match="teacher checkpoint cnn_mnist.safetensors was not found"):
        queue.submit(reg, taught, student)
    assert reg.list_runs() == [] and "shipped" not in teachers.teacher_choices([], "mnist", shipped=False)
    _cnn_file(tmp_path, name="cnn_mnist.safetensors")  # the file is there now: queued
    assert reg.get_run(queue.submit(reg, taught, student)).status == "queued"
