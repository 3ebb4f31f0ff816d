"""The Train form's rules (presets, validation messages, estimates) and the pages' tables and figures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vitdemo import units
from vitdemo.config import CNNConfig, ConfigError, LinearConfig, MLPConfig, TrainConfig, TransferConfig, ViTConfig
from vitdemo.metrics import evaluate_predictions
from vitdemo.models import build_model, count_parameters
from vitdemo.runconfig import CLASSIC_KINDS, ClassicConfig, ClassicRun, PretrainConfig, PretrainRun
from vitdemo.runs.store import Registry
from vitdemo.training.recipes import FEW_LABELS_VAL_SIZE, SEED_VIT
from vitdemo.views import charts, forms

# -- forms ---------------------------------------------------------------------------------------------
FIXED_PRESETS = ["fast demo", "best accuracy"]  # "seed recipe" picks the ViT; "few labels" follows the budget


@pytest.mark.parametrize("preset", list(forms.PRESETS))
@pytest.mark.parametrize("kind", ["vit", "cnn"])
@pytest.mark.parametrize("dataset", ["mnist", "fashion"])
def test_presets_validate(preset: str, kind: str, dataset: str) -> None:
    values = forms.apply_preset({**forms.default_values(), "model_kind": kind, "dataset": dataset}, preset)
    config, messages = forms.check_values(values, encoders={})
    assert messages == []
    expected_kind = "vit" if preset == "seed recipe" else kind
    assert config is not None and config.model.kind == expected_kind and config.dataset == dataset
    if preset in FIXED_PRESETS:
        assert config.epochs == forms.PRESETS[preset]["epochs"]
    assert config.warmup_epochs <= config.epochs


def test_preset_keeps_kind_dataset_device_and_name() -> None:
    values = {**forms.default_values(), "model_kind": "cnn", "dataset": "fashion", "device": "cpu", "name": "mine"}
    filled = forms.apply_preset(values, "fast demo")
    assert {k: filled[k] for k in ("model_kind", "dataset", "device", "name")} == {
        "model_kind": "cnn",
        "dataset": "fashion",
        "device": "cpu",
        "name": "mine",
    }
    assert filled["train_subset"] == forms.PRESETS["fast demo"]["train_subset"] > 0
    with pytest.raises(KeyError, match="unknown preset"):
        forms.apply_preset(values, "warp speed")


@pytest.mark.parametrize(
    "model",
    [
        ViTConfig(),
        ViTConfig(patch_size=7, embed_dim=36, depth=2, num_heads=3, mlp_ratio=1.5),  # int(36 * 1.5) = 54 hidden
        ViTConfig(patch_size=14, embed_dim=20, depth=1, num_heads=5, mlp_ratio=0.7),  # int(14.0) hidden
        CNNConfig(),
        CNNConfig(width=4, depth=1),
        CNNConfig(width=12, depth=3),
    ],
    ids=lambda m: repr(m)[:60],
)
def test_parameter_estimate_equals_the_built_model(model) -> None:
    assert forms.estimate_parameters(model) == count_parameters(build_model(model))


@pytest.mark.parametrize("preset", list(forms.PRESETS))
def test_estimate_of_presets_counts_the_built_model(preset: str) -> None:
    for kind in ("vit", "cnn"):
        values = forms.apply_preset({**forms.default_values(), "model_kind": kind}, preset)
        config = forms.config_from_values(values, encoders={})
        est = forms.estimate(config)
        assert est.num_params == count_parameters(build_model(config.model))
        expected = config.labels or config.train_subset or 60_000 - config.val_size  # a budget trains on its labels
        assert est.train_images == expected
        assert est.steps_per_epoch == -(-est.train_images // config.batch_size)
        assert est.total_steps == est.steps_per_epoch * config.epochs
        assert est.total_bytes == est.weights_bytes + est.activations_bytes + est.data_bytes > 0


def test_memory_estimate_grows_with_batch_and_model() -> None:
    small = forms.estimate(TrainConfig(model=ViTConfig(embed_dim=32, num_heads=2), batch_size=64))
    bigger_batch = forms.estimate(TrainConfig(model=ViTConfig(embed_dim=32, num_heads=2), batch_size=256))
    bigger_model = forms.estimate(TrainConfig(model=ViTConfig(embed_dim=128, num_heads=2), batch_size=64))
    assert bigger_batch.activations_bytes == pytest.approx(4 * small.activations_bytes)
    assert bigger_model.weights_bytes > small.weights_bytes
    assert units.human_bytes(1536) == "1.5 KB" and units.human_bytes(200 * 1024**2) == "200 MB"
    lines = forms.estimate_lines(small)
    assert lines[0] == f"{small.num_params:,} parameters" and "memory" in lines[2]


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"vit_num_heads": 5}, ["Embedding dim (64) must be divisible by heads (5)."]),
        ({"lr": 0.0}, ["Learning rate must be in (0, 1]."]),
        ({"epochs": 0}, ["Epochs must be between 1 and 500."]),
        ({"epochs": "ten"}, ["Epochs must be a whole number, not 'ten'."]),
        ({"batch_size": 2.5}, ["Batch size must be a whole number, not 2.5."]),
        ({"model_kind": "cnn", "cnn_width": 2}, ["CNN width must be between 4 and 256."]),
        ({"model_kind": "cnn", "cnn_depth": 4}, ["CNN depth must be 1, 2 or 3 (28 px halves at most 3 times)."]),
        ({"name": "x" * 101}, ["Run name must be at most 100 characters."]),
        (
            {"model_kind": "boosting"},
            ["Model kind must be one of vit, cnn, linear, mlp, transfer, captioner, detector, classic,"],
        ),
        ({"model_kind": "mlp", "mlp_hidden": "256,x"}, ["Hidden layers must be layer sizes like 256,128, not"]),
        ({"model_kind": "mlp", "mlp_hidden": "4"}, ["Every layer in hidden layers must have 8 to 4096 units."]),
        (
            {"model_kind": "transfer", "transfer_arch": "alexnet", "transfer_image_px": 32},
            ["Input size must be between 64 and 224"],
        ),
        ({"model_kind": "classic", "classic_kind": "knn", "n_neighbors": 0}, ["Neighbours must be between 1 and 50."]),
        ({"model_kind": "vit", "labels": 5}, ["Label budget must be 0 (all) or at least 10, one a class."]),
        # the model's and the training settings' problems are reported together
        ({"vit_num_heads": 3, "weight_decay": 2.0}, ["Embedding dim (64) must be", "Weight decay must be in [0, 1]."]),
    ],
)
def test_invalid_values_give_clear_messages(change: dict, expected: list[str]) -> None:
    config, messages = forms.check_values({**forms.default_values(), **change})
    assert config is None
    assert len(messages) == len(expected)
    for message, start in zip(messages, expected, strict=True):
        assert message.startswith(start)
    with pytest.raises(ConfigError):
        forms.config_from_values({**forms.default_values(), **change})


def test_settings_of_the_other_kind_do_not_block() -> None:
    """A bad ViT value does not matter while the CNN is chosen (its widgets are not even shown)."""
    config, messages = forms.check_values({**forms.default_values(), "model_kind": "cnn", "vit_num_heads": 5})
    assert messages == [] and isinstance(config.model, CNNConfig)


def test_cuda_needs_a_gpu_on_the_server() -> None:
    values = {**forms.default_values(), "device": "cuda"}
    config, messages = forms.check_values(values, devices=["cpu"])
    assert config is None and messages == [
        "Device 'cuda' was chosen but this server has no CUDA GPU: choose auto or cpu."
    ]
    config, messages = forms.check_values(values, devices=["cpu", "cuda"])
    assert messages == [] and config.device == "cuda"


def test_values_round_trip_through_a_config() -> None:
    config = TrainConfig(
        model=CNNConfig(width=24, depth=3, dropout=0.2),
        dataset="fashion",
        epochs=4,
        batch_size=64,
        lr=1e-3,
        schedule="onecycle",
        augment=0.5,
        seed=7,
        device="cpu",
        train_subset=3000,
        name="my run",
    )
    values = forms.values_from_config(config.to_dict())  # as a stored run holds it
    assert values["model_kind"] == "cnn" and values["cnn_width"] == 24 and values["vit_embed_dim"] == 64
    again = forms.config_from_values(values)
    assert again == TrainConfig(**{**config.__dict__, "warmup_epochs": 1.0})
    assert forms.config_from_values(forms.default_values()).warmup_epochs == 1.0
    one_epoch = forms.config_from_values({**forms.default_values(), "epochs": 1})
    assert one_epoch.warmup_epochs == pytest.approx(1 / 3)  # not the whole (only) epoch


def test_coerce_values_gives_widget_types() -> None:
    values = forms.coerce_values({**forms.default_values(), "epochs": 3.0, "vit_mlp_ratio": 2, "lr": "x"})
    assert values["epochs"] == 3 and isinstance(values["epochs"], int)
    assert isinstance(values["vit_mlp_ratio"], float) and values["lr"] == "x"


# -- the families -------------------------------------------------------------------------------------
ENCODERS = {
    "mae_vit_mnist.safetensors": forms.EncoderChoice(
        "mae_vit_mnist.safetensors", "MAE ViT", "/srv/ckpt/mae_vit_mnist.safetensors", ViTConfig(depth=2), "mae"
    )
}


@pytest.mark.parametrize(
    "config",
    [
        TrainConfig(model=LinearConfig(), epochs=3, seed=2),
        TrainConfig(
            model=MLPConfig(hidden=(64, 32), dropout=0.2),
            dataset="fashion",
            labels=600,
            val_size=FEW_LABELS_VAL_SIZE,
            keep="last",
        ),  # fmt: skip
        TrainConfig(model=TransferConfig(arch="alexnet", image_px=96, finetune="head"), batch_size=32),
        TrainConfig(model=TransferConfig(arch="vgg16", pretrained=False), epochs=2),
        *(ClassicRun(model=ClassicConfig(kind=k, seed=3), dataset="fashion", train_subset=2000) for k in CLASSIC_KINDS),
        ClassicRun(model=ClassicConfig(kind="svm", svm_c=3.0, pca_components=40), name="svm here"),
        TrainConfig(
            model=ViTConfig(depth=2),
            init="/srv/ckpt/mae_vit_mnist.safetensors",
            init_method="mae",  # the form reads it off the chosen encoder
            labels=100,
            probe=True,
            val_size=FEW_LABELS_VAL_SIZE,
            keep="last",
        ),  # fmt: skip
        PretrainRun(
            "simclr",
            PretrainConfig(epochs=3, seed=4),
            TrainConfig(model=CNNConfig(width=8), labels=100, seed=4, val_size=FEW_LABELS_VAL_SIZE, keep="last"),
        ),  # fmt: skip
    ],
    ids=lambda c: type(c).__name__ + "-" + (c.model.kind if hasattr(c, "model") else c.method),
)
def test_every_family_round_trips_through_the_form(config) -> None:
    """A stored run of any family (the Leaderboard's "use these settings") fills the form, and the form gives the
    same run back (warm-up aside: the form computes it)."""
    values = forms.values_from_config(config.to_dict())
    again = forms.config_from_values(forms.coerce_values(values), encoders=ENCODERS)
    if isinstance(config, TrainConfig):
        config = dataclasses.replace(config, warmup_epochs=again.warmup_epochs)
    elif isinstance(config, PretrainRun):
        config = dataclasses.replace(config, train=dataclasses.replace(config.train, warmup_epochs=1.0))
    assert again == config
    assert values["model_kind"] in forms.FAMILIES


def test_the_seed_recipe_preset_is_the_published_recipe() -> None:
    values = forms.apply_preset({**forms.default_values(), "model_kind": "cnn", "name": "mine"}, "seed recipe")
    assert values["model_kind"] == "vit" and values["recipe"] == "seed-vit" and values["name"] == "mine"
    config = forms.config_from_values(values, encoders={})
    assert config == dataclasses.replace(SEED_VIT, name="mine")  # flips, no warm-up, no clipping: all kept
    assert forms.values_from_config(SEED_VIT)["recipe"] == "seed-vit"
    other = forms.apply_preset(values, "fast demo")  # another preset leaves the recipe
    assert forms.config_from_values(other, encoders={}).hflip is False


def test_fine_tuning_an_encoder_takes_its_architecture_and_the_label_budget() -> None:
    values = {**forms.default_values(), "model_kind": "finetune", "encoder": "mae_vit_mnist.safetensors"}
    values = forms.apply_preset({**values, "labels": 100}, "few labels")
    config, messages = forms.check_values(values, encoders=ENCODERS)
    assert messages == [] and config.model == ViTConfig(depth=2)  # the encoder's, not the form's ViT fields
    assert config.init == "/srv/ckpt/mae_vit_mnist.safetensors" and config.labels == 100
    assert (config.epochs, config.batch_size, config.lr) == (40, 10, 1e-3)
    assert config.val_size == FEW_LABELS_VAL_SIZE and config.keep == "last"
    assert forms.estimate(config).train_images == 100 and forms.estimate(config).steps_per_epoch == 10
    gone = forms.check_values({**values, "encoder": "old.safetensors"}, encoders=ENCODERS)
    assert gone == (None, ["The encoder old.safetensors is not on this server: choose one of the encoders offered, "
                           "or pretrain a new one."])  # fmt: skip
    new, messages = forms.check_values({**values, "encoder": "new:simclr", "pretrain_epochs": 2}, encoders={})
    assert isinstance(new, PretrainRun) and new.method == "simclr" and new.pretrain.epochs == 2
    assert new.train.model.kind == "cnn" and new.train.init == "" and new.train.labels == 100


def test_a_classic_form_ignores_the_training_fields() -> None:
    values = {**forms.default_values(), "model_kind": "classic", "classic_kind": "forest", "epochs": 0, "lr": -1}
    config, messages = forms.check_values(values, encoders={})
    assert messages == [] and isinstance(config, ClassicRun) and config.model.kind == "forest"
    lines = forms.classic_lines(config)
    assert "Random forest fitted once on 55,000 training images" in lines[0]


@pytest.mark.parametrize("cached", [True, False])
def test_the_transfer_note_names_the_weights_file_and_where_it_goes(cached: bool) -> None:
    note = forms.transfer_weights_note("resnet18", cached)
    assert "resnet18-f37072fd.pth" in note
    if not cached:
        assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in note
        assert "$TORCH_HOME/hub/checkpoints" in note and "/root" not in note  # no server folder


# -- charts --------------------------------------------------------------------------------------------
@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "home")


def _done(reg: Registry, name: str, acc: float | None, f1: float | None = None, **fields) -> int:
    return reg.create_run(
        name=name, kind="vit", dataset="mnist", config=TrainConfig().to_dict(), status="done", test_acc=acc,
        macro_f1=f1 if f1 is not None else acc, **fields,
    )  # fmt: skip


def test_leaderboard_frame_orders_and_filters(registry: Registry) -> None:
    low = _done(registry, "low", 0.90, num_params=1000, train_time_s=12.34, device="cpu", epochs_done=3)
    high = _done(registry, "high", 0.99)
    tie_better_f1 = _done(registry, "tie", 0.90, f1=0.95)
    queued = registry.create_run(
        name="waiting", kind="cnn", dataset="fashion", config={"model": {"kind": "cnn"}}, status="queued"
    )
    frame = charts.leaderboard_frame(registry.list_runs())
    assert list(frame.columns) == list(charts.LEADERBOARD_COLUMNS)
    assert list(frame["id"]) == [high, tie_better_f1, low, queued]  # unfinished runs last
    row = frame.set_index("id").loc[low]
    assert row["kind"] == "ViT" and row["dataset"] == "MNIST" and row["parameters"] == 1000
    assert row["training time (s)"] == 12.3 and row["epochs"] == 3 and row["status"] == "done"
    assert pd.isna(frame.set_index("id").loc[queued, "test accuracy"])

    assert list(charts.filter_leaderboard(frame, kinds=["CNN"])["id"]) == [queued]
    assert list(charts.filter_leaderboard(frame, statuses=["done"], text="TI")["id"]) == [tie_better_f1]
    assert len(charts.filter_leaderboard(frame, datasets=["Fashion-MNIST"], kinds=["ViT"])) == 0
    assert len(charts.filter_leaderboard(frame)) == 4

    csv = charts.leaderboard_csv(frame).decode()
    lines = csv.strip().splitlines()
    assert lines[0].startswith("id,name,shipped,by,kind") and len(lines) == 5 and ",high," in lines[1]


def test_queue_frame_and_progress_text(registry: Registry) -> None:
    a = registry.create_run(name="a", kind="vit", dataset="mnist", config={"epochs": 5}, status="queued")
    b = registry.create_run(name="b", kind="vit", dataset="mnist", config={"epochs": 5}, status="queued")
    registry.update_run(
        b,
        status="running",
        progress={"epoch": 2, "step": 30, "total_steps": 120, "images_per_s": 2345.6, "eta_s": 75.0},
    )
    runs = registry.list_runs()
    frame = charts.queue_frame(runs)
    assert list(frame["id"]) == [b, a] and list(frame["progress"]) == [25, 0]
    assert list(frame["place"]) == ["training", "1"] and list(frame["by"]) == ["earlier", "earlier"]
    fraction, text = charts.progress_of(registry.get_run(b))
    assert fraction == 0.25
    assert text == "epoch 2/5 · step 30/120 · 2,346 images/s · about 1 min 15 s left"
    assert charts.progress_of(registry.get_run(a)) == (0.0, "waiting for the worker")
    registry.update_run(a, status="running")
    assert "loading the data" in charts.progress_of(registry.get_run(a))[1]
    # the other families say what they do, not the fine-tune's epochs
    registry.update_run(a, progress={"phase": "fitting"})
    assert charts.progress_of(registry.get_run(a)) == (0.0, "fitting the scikit-learn model")
    progress = {"phase": "pretraining (mae)", "epoch": 1, "step": 60, "total_steps": 120, "eta_s": 5.0}
    registry.update_run(a, progress=progress)
    assert charts.progress_of(registry.get_run(a))[1].startswith("pretraining (mae) · step 60/120")


def test_format_duration() -> None:
    assert units.format_duration(46 * 86400 + 100) == "46 days"
    assert [units.rough_duration(s) for s in (44.6, 1990, 9000, 4e6)] == ["45 s", "33 min", "2.5 h", "46 days"]
    assert [units.format_duration(s) for s in (None, 4.25, 42, 75, 3725)] == [
        "-",
        "4.2 s",
        "42 s",
        "1 min 15 s",
        "1 h 02 min",
    ]


def test_curves_figure_has_train_and_val_lines() -> None:
    epochs = [
        {"epoch": 1, "train_loss": 1.0, "val_loss": 0.8, "train_acc": 0.7, "val_acc": 0.75},
        {"epoch": 2, "train_loss": 0.5, "val_loss": 0.4, "train_acc": 0.9, "val_acc": 0.92},
    ]
    fig = charts.curves_figure(epochs)
    by_axis = {(t.name, t.yaxis): list(t.y) for t in fig.data}
    assert by_axis[("training", "y")] == [1.0, 0.5] and by_axis[("validation", "y")] == [0.8, 0.4]
    assert by_axis[("training", "y2")] == [0.7, 0.9] and by_axis[("validation", "y2")] == [0.75, 0.92]
    assert len(charts.curves_figure([]).data) == 4  # an empty chart before the first epoch, not an error

    overlay = charts.overlay_figure({"run a": epochs, "run b": epochs[:1]}, "val_loss")
    assert [t.name for t in overlay.data] == ["run a", "run b"] and list(overlay.data[1].y) == [0.8]
    with pytest.raises(ValueError, match="unknown metric"):
        charts.overlay_figure({}, "f1")


def test_per_class_frame_and_cell_examples() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2])
    probs = np.array(
        [
            [0.9, 0.1, 0.0],
            [0.2, 0.7, 0.1],  # true 0, predicted 1 at 0.7
            [0.1, 0.8, 0.1],  # true 0, predicted 1 at 0.8
            [0.0, 1.0, 0.0],
            [0.6, 0.4, 0.0],  # true 1, predicted 0
            [0.0, 0.0, 1.0],
        ],
        dtype=np.float32,
    )
    report = evaluate_predictions(labels, probs.argmax(1), 3)
    frame = charts.per_class_frame(report, ["zero", "one", "two"])
    assert list(frame["class"]) == ["zero", "one", "two"]
    assert list(frame["support"]) == [3, 2, 1] and list(frame["errors"]) == [2, 1, 0]
    assert frame.loc[0, "recall"] == pytest.approx(1 / 3)
    assert list(charts.cell_examples(labels, probs, 0, 1)) == [2, 1]  # most confident mistake first
    assert list(charts.cell_examples(labels, probs, 0, 1, limit=1)) == [2]
    assert list(charts.cell_examples(labels, probs, 2, 0)) == []
    assert charts.image_caption("7", "1", 0.873) == "true 7 · predicted 1 (87%)"


def test_disagreements() -> None:
    labels = np.array([0, 1, 2, 3])
    a = np.array([0, 1, 0, 0])  # right on 0, 1
    b = np.array([0, 0, 2, 0])  # right on 0, 2
    a_only, b_only = charts.disagreements(labels, a, b)
    assert list(a_only) == [1] and list(b_only) == [2]


def test_run_title_names_kind_and_dataset(registry: Registry) -> None:
    run = registry.get_run(_done(registry, "best", 0.9))
    assert charts.run_title(run) == f"#{run.id} best (ViT, MNIST)"


def test_the_shipped_networks_are_starting_points_for_a_class_set_fine_tune(checkpoints_dir: Path) -> None:
    """ "Fine-tune on our handwriting": the shipped CNN (its own architecture: the lean design, width 32, depth 2,
    not the form's defaults) with the class set as extra training images; a stored run's snapshot shows as "the class set"."""
    offered = forms.shipped_networks(checkpoints_dir)
    assert {"cnn_mnist.safetensors", "vit_mnist.safetensors"} <= set(offered)
    values = {**forms.default_values(), "model_kind": "finetune", "encoder": "cnn_mnist.safetensors"}
    config, messages = forms.check_values({**values, "extra_data": "class", "epochs": 2}, encoders=offered)
    assert messages == [] and config.extra_data == "class" and config.init == offered["cnn_mnist.safetensors"].path
    assert (config.model.width, config.model.depth, config.model.design) == (32, 2, "lean")
    stored = dataclasses.replace(config, extra_data="/srv/home/classset/snapshots/ab12.npz")
    assert forms.values_from_config(stored)["extra_data"] == "class"
    _, messages = forms.check_values({**values, "extra_data": "class", "labels": 100}, encoders=offered)
    assert messages and "label budget" in messages[0]
