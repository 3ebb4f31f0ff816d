"""The Train page for every family under Streamlit's AppTest: a scikit-learn baseline, fine-tuning a shipped
encoder with a label budget, an ImageNet network's weights note and the seed recipe, each queued as the run the
form shows (no worker starts: conftest's worker_starts)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from apptest import open_page
from streamlit.testing.v1 import AppTest

from vitdemo.checkpoints import make_meta, save_checkpoint
from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.models import build_model
from vitdemo.pretrain.encoder import ENCODER_TAG
from vitdemo.runconfig import ClassicRun, run_config_from_dict
from vitdemo.runs.store import Registry
from vitdemo.training.recipes import FEW_LABELS_VAL_SIZE, SEED_VIT

ENCODER = "simclr_cnn_tiny.safetensors"


@pytest.fixture
def env(tmp_home: Path, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A private registry and a shipped folder holding one tiny pretrained CNN encoder (no trained head)."""
    shipped = tmp_path / "shipped"
    meta = make_meta(CNNConfig(width=4, depth=1), "mnist", metrics={ENCODER_TAG: "simclr", "pretrain": {"epochs": 2}},
                     name="tiny SimCLR encoder")  # fmt: skip
    save_checkpoint(shipped / ENCODER, build_model(meta.model_config), meta)
    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(shipped))
    monkeypatch.setenv("VITDEMO_DATA_DIR", str(data_dir))
    return Registry(tmp_home)


def open_train() -> AppTest:
    """The Train page in the Expert view: these tests check the sizes and settings it shows."""
    return open_page("train", expert=True)


def queued(reg: Registry) -> list:
    return [r for r in reg.list_runs() if not r.baseline]


def test_a_classic_baseline_is_estimated_and_queued(env: Registry, worker_starts) -> None:
    at = open_train()
    at.radio(key="tf_model_kind").set_value("classic").run()
    at.selectbox(key="tf_classic_kind").set_value("forest").run()
    at.number_input(key="tf_n_estimators").set_value(10).run()
    assert not at.error and not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Parameters"] == "after the fit" and metrics["Time"].startswith("~")
    assert not any(n.key == "tf_epochs" for n in at.number_input)  # one fit: no epochs or rates to set
    at.button(key="start_training").click().run()
    (run,) = queued(env)
    config = run_config_from_dict(run.config)
    assert isinstance(config, ClassicRun) and config.model.kind == "forest" and config.model.n_estimators == 10
    assert run.kind == "forest" and run.device == "cpu" and [c[1] for c in worker_starts] == ["cpu"]


def test_fine_tune_a_shipped_encoder_with_100_labels(env: Registry, worker_starts) -> None:
    at = open_train()
    at.radio(key="tf_model_kind").set_value("finetune").run()
    picker = at.selectbox(key="tf_encoder")
    assert picker.options[0].startswith("tiny SimCLR encoder (SIMCLR, 2 epochs, shipped)")  # this folder's, not
    # a list cached from another shipped folder (the full suite showed the repository's here before)
    assert any(o.startswith("Pretrain a new ViT with MAE first") for o in picker.options)
    at.selectbox(key="tf_labels").set_value(100).run()
    at.button(key="preset_few_labels").click().run()
    assert at.number_input(key="tf_epochs").value == 40 and at.number_input(key="tf_batch_size").value == 10
    assert {m.label: m.value for m in at.metric}[
        "Parameters"
    ] == f"{sum(p.numel() for p in build_model(CNNConfig(width=4, depth=1)).parameters()):,}"
    at.button(key="start_training").click().run()
    assert not at.error, [e.value for e in at.error]
    (run,) = queued(env)
    config = TrainConfig.from_dict(run.config)
    assert config.model == CNNConfig(width=4, depth=1) and Path(config.init).name == ENCODER  # the encoder's
    assert config.labels == 100 and config.val_size == FEW_LABELS_VAL_SIZE and config.keep == "last"


def test_an_imagenet_network_says_which_weights_file_to_place(
    env: Registry, worker_starts, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-cache"))  # offline, nothing cached
    at = open_train()
    at.radio(key="tf_model_kind").set_value("transfer").run()
    at.selectbox(key="tf_transfer_arch").set_value("alexnet").run()
    notes = [str(c.value) for c in at.caption]
    assert any("alexnet-owt-7be5be79.pth" in n and "$TORCH_HOME/hub/checkpoints" in n for n in notes), notes
    assert not any(str(tmp_path) in n for n in notes)  # no server folder on the page


def test_the_seed_recipe_preset_picks_the_published_vit(env: Registry, worker_starts) -> None:
    at = open_train()
    at.radio(key="tf_model_kind").set_value("cnn").run()
    at.button(key="preset_seed_recipe").click().run()
    assert at.radio(key="tf_model_kind").value == "vit" and at.selectbox(key="tf_vit_patch_size").value == 7
    assert any("Seed recipe" in str(c.value) for c in at.caption)
    at.button(key="start_training").click().run()
    (run,) = queued(env)
    assert TrainConfig.from_dict(run.config) == dataclasses.replace(SEED_VIT, name="")


def test_a_vit_learns_from_the_shipped_cnn_when_asked(env: Registry) -> None:
    """The ViT's "Learn from a teacher": the shipped CNN is offered where its file is (finished CNN runs too), the
    sentence on why shows once one is picked, and the queued run's ViT names its teacher."""
    at = open_train()
    at.radio(key="tf_model_kind").set_value("vit").run()
    assert at.selectbox(key="tf_teacher").options == ["no teacher"]  # this server has no shipped MNIST CNN yet
    shipped = Path(os.environ["VITDEMO_CHECKPOINTS"])
    save_checkpoint(shipped / "cnn_mnist.safetensors", build_model(CNNConfig(width=4, depth=1)),
                    make_meta(CNNConfig(width=4, depth=1), "mnist", name="tiny CNN"))  # fmt: skip
    teacher = at.run().selectbox(key="tf_teacher")
    assert teacher.value == "" and "shipped" in teacher.options[1].lower()
    teacher.set_value("shipped").run()
    assert not at.error and not at.exception
    assert any("locality" in c.value for c in at.caption)
    at.button(key="start_training").click().run()
    (run,) = queued(env)
    assert run.config["model"]["kind"] == "vit" and run.config["model"]["teacher"] == "shipped"
