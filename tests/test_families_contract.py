"""The family contract, parametrized over the registry (timm's way): every model family builds, trains one tiny
step, saves, loads, explains, estimates, and round-trips through the CLI flags and the Train form. A family added
to vitdemo/families/ is tested here the moment it exists, with no list of kinds to keep up to date."""

from __future__ import annotations

import dataclasses
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from vitdemo import families
from vitdemo.checkpoints import HEADER_KEY, CheckpointMeta, load_checkpoint, make_meta, save_checkpoint
from vitdemo.cli.main import build_parser, config_from_args
from vitdemo.config import ConfigError, TrainConfig
from vitdemo.data import Split, normalization
from vitdemo.explain.inference import explain_one
from vitdemo.explain.maps import explain_prediction
from vitdemo.families.spec import Family, settings
from vitdemo.families.vocab import command_flags, flag_of, form_key, value_type
from vitdemo.models import build_model, count_parameters
from vitdemo.runs import admission
from vitdemo.shipped import train_command
from vitdemo.training.loop import make_learner, train_step
from vitdemo.views import forms, names

ALL = families.families()
FAMILIES = [f for f in ALL if f.task == "classify"]  # the digit classifiers; the number readers: tests/test_readers.py
READERS = [f for f in ALL if f.task == "read"]
REPO_ROOT = Path(__file__).resolve().parent.parent
MEAN, STD = normalization("mnist")


def small(fam: Family) -> object:
    """The family's reference config (a small model: the one whose speed stands in for big ones) or its default;
    a transfer network is built from scratch (its ImageNet weights are never read in a test)."""
    return fam.probe_config(fam.reference or fam.config())


@pytest.fixture(scope="module")
def built() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {fam.kind: build_model(small(fam)).eval() for fam in FAMILIES}


def test_the_registry_finds_every_family_in_the_ladder_order() -> None:
    ladder = [k for k in families.kinds() if k in ("linear", "mlp", "cnn", "vit", "transfer")]
    assert ladder == ["linear", "mlp", "cnn", "vit", "transfer"]  # a new family finds its own place among them
    for fam in FAMILIES:
        assert fam.config.kind == fam.kind and fam.task == "classify"
    assert [f.kind for f in READERS] == ["captioner", "detector"]  # the second task: a whole number, read
    for fam in ALL:
        assert names.kind_name(fam.kind) == fam.name and names.family_of(fam.kind) == fam.family


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.kind)
def test_builds_and_its_estimate_counts_the_built_network(fam: Family, built: dict) -> None:
    config = small(fam)
    net = built[fam.kind]
    logits = net(torch.zeros(2, 1, 28, 28))
    assert logits.shape == (2, config.num_classes)
    assert families.parameters(config) == count_parameters(net)
    assert families.forward_macs(config) > 0 and families.activation_floats(config) > 0
    est = admission.estimate(TrainConfig(model=config, train_subset=1000))
    assert est.num_params == count_parameters(net) and est.total_bytes > 0


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.kind)
def test_trains_one_tiny_step_saves_loads_and_explains(fam: Family, tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = TrainConfig(model=small(fam), batch_size=4, device="cpu", amp=False)
    learner = make_learner(config, torch.device("cpu"), MEAN, STD, load=False)
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)  # (B, 28, 28)
    labels = torch.arange(4)  # (B,)
    before = [p.detach().clone() for p in learner.model.parameters() if p.requires_grad]
    loss, _ = train_step(learner, images, labels, config.lr)
    assert torch.isfinite(loss)
    after = [p for p in learner.model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True)), "the step changed no weight"

    path = save_checkpoint(tmp_path / f"{fam.kind}.safetensors", learner.model, make_meta(config.model, "mnist"))
    loaded = load_checkpoint(path)
    assert loaded.meta.model_config == config.model and loaded.meta.task == fam.task
    x = torch.randn(1, 1, 28, 28)
    learner.model.eval()
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), learner.model(x), atol=1e-5)
    logits, heat, attns = explain_prediction(loaded.model, x, fam.kind, mean=MEAN, std=STD)
    assert logits.shape == (1, 10) and heat.shape == (1, 28, 28) and torch.isfinite(heat).all()
    assert (attns is not None) == (fam.explainer == "rollout")
    pred = explain_one(loaded, x)
    assert pred.heat is not None and abs(float(pred.probs.sum()) - 1) < 1e-5


@pytest.mark.parametrize("fam", READERS, ids=lambda f: f.kind)
def test_a_reader_trains_one_tiny_step_saves_loads_and_reads(fam: Family, tmp_path: Path) -> None:
    """The second task's contract: a reader learns from written numbers, saves a self-describing checkpoint of
    task "read", loads it to the same answers, reads every image and explains its reading."""
    from vitdemo.numbers import CANVAS_H, CANVAS_W
    from vitdemo.numbers.read import read_batch, to_input
    from vitdemo.numbers.synth import make_numbers
    from vitdemo.numbers.train import optimizer_for, reader_loss

    torch.manual_seed(0)
    config = TrainConfig(model=small(fam), batch_size=4, device="cpu")
    assert config.task == "read" and families.task_of(fam.kind) == "read"
    config.validate()
    pool = Split(torch.randint(0, 256, (16, 28, 28), dtype=torch.uint8), torch.arange(16) % 10)
    batch = make_numbers(pool, 4, seed=0)
    x = to_input(batch.images)  # (4, 1, 32, 160)
    assert x.shape == (4, 1, CANVAS_H, CANVAS_W)
    model = build_model(config.model)
    assert families.parameters(config.model) == count_parameters(model) and families.forward_macs(config.model) > 0
    assert admission.train_images(config) == 55000 // 4  # the Train page's estimate counts a reader's numbers
    optimizer = optimizer_for(model, config)
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    loss = reader_loss(model, x, batch)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)), "no weight changed"

    path = save_checkpoint(tmp_path / f"{fam.kind}.safetensors", model, make_meta(config.model, "mnist"))
    loaded = load_checkpoint(path)
    assert loaded.meta.model_config == config.model and loaded.meta.task == "read"
    model.eval()
    readings = read_batch(loaded.model, x)
    assert [r.text for r in readings] == [r.text for r in read_batch(model, x)]
    assert len(readings) == 4 and all(0.0 <= r.confidence <= 1.0 for r in readings)
    assert all(set(r.text) <= set("0123456789") and len(r.text) <= 8 for r in readings)


@pytest.mark.parametrize("fam", ALL, ids=lambda f: f.kind)
def test_round_trips_through_the_cli_flags_and_the_shipped_command(fam: Family) -> None:
    config = TrainConfig(model=small(fam), epochs=2, lr=3e-3, seed=5, train_subset=500, name="a run")
    command = train_command(config.to_dict(), "out.safetensors")
    args = build_parser().parse_args(shlex.split(command)[3:])
    assert dataclasses.replace(config_from_args(args), device=config.device) == config
    # the command writes the model's shape out: every setting's flag (a switch only when it is flipped, an optional
    # text setting such as a ViT's teacher only when it is set)
    flags = {flag.split()[0] for flag in command_flags(config.model, every=True)}
    shown = [(f, s) for f, s in settings(fam.config) if s.cli and getattr(config.model, f.name) != f.default or
             (s.cli and value_type(f) is not bool and f.default != "")]  # fmt: skip
    assert flags == {flag_of(f, s) for f, s in shown}


@pytest.mark.parametrize("fam", ALL, ids=lambda f: f.kind)
def test_round_trips_through_the_train_form(fam: Family) -> None:
    config = TrainConfig(model=small(fam), epochs=3, batch_size=64)
    values = forms.values_from_config(config)
    assert values["model_kind"] == fam.kind and fam.kind in forms.FAMILIES
    for f, s in settings(fam.config):
        if s.form:
            assert form_key(fam.kind, f.name) in values
    back = forms.config_from_values(values, encoders={})
    assert isinstance(back, TrainConfig) and back.model == config.model and back.epochs == 3


def test_the_registry_forms_and_flags_load_no_torch() -> None:
    """The queue, the Train form and the CLI read every family without loading a framework; listing the registry
    imports each family's module but none of its model files."""
    code = (
        "import sys; from vitdemo import families; from vitdemo.views import forms; from vitdemo.cli import flags; "
        "fams = families.families(); print('torch' in sys.modules, len(fams), families.parameters(fams[0].config()))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    torch_loaded, count, _ = proc.stdout.split()
    assert torch_loaded == "False" and int(count) == len(ALL)


def test_an_unknown_kind_is_refused_with_a_sentence_never_read_as_a_vit() -> None:
    with pytest.raises(
        ConfigError, match=f"unknown model kind 'boosting': expected one of {', '.join(families.kinds())}"
    ):
        families.get("boosting")
    with pytest.raises(ConfigError, match="unknown model kind 'boosting'"):
        TrainConfig.from_dict({"model": {"kind": "boosting"}})
    with pytest.raises(ConfigError, match="unknown model kind 'boosting'"):
        explain_prediction(torch.nn.Identity(), torch.zeros(1, 1, 28, 28), "boosting", mean=MEAN, std=STD)
    values = {**forms.default_values(), "model_kind": "boosting"}
    assert forms.check_values(values, encoders={})[1][0].startswith("Model kind must be one of vit, cnn, ")


def test_old_checkpoints_without_a_task_read_as_classifiers(tmp_path: Path) -> None:
    net = build_model(families.get("cnn").config(width=4, depth=1))
    path = save_checkpoint(tmp_path / "old.safetensors", net, make_meta(net.config, "mnist"))
    with safe_open(str(path), "pt") as f:
        header = json.loads(f.metadata()[HEADER_KEY])
    assert header["task"] == "classify"
    del header["task"]
    assert CheckpointMeta.from_header(header).task == "classify"
    with pytest.raises(Exception, match="not what a cnn model does"):
        CheckpointMeta.from_header({**header, "task": "read"})
    assert TrainConfig.from_dict({k: v for k, v in TrainConfig().to_dict().items() if k != "task"}).task == "classify"
    with pytest.raises(ConfigError, match="task must be 'classify'"):
        dataclasses.replace(TrainConfig(), task="read").validate()
