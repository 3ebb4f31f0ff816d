"""The linear model and the MLP: shapes, validation, config round trips, and real learning through train()."""

import json
from dataclasses import asdict

import pytest
import torch

from vitdemo.config import ConfigError, LinearConfig, MLPConfig, TrainConfig, model_config_from_dict
from vitdemo.data import load_dataset
from vitdemo.evaluate import score_model
from vitdemo.models import build_model, count_parameters
from vitdemo.models.ladder import MLP, Linear
from vitdemo.training.loop import train


@pytest.fixture(scope="module")
def small_mnist(data_dir: str):
    return load_dataset("mnist", data_dir, val_size=500, seed=0, train_subset=2000)


def test_shapes_and_parameter_counts() -> None:
    x = torch.randn(5, 1, 28, 28)
    linear = Linear(LinearConfig())
    mlp = MLP(MLPConfig(hidden=(32, 16), dropout=0.0))
    assert linear(x).shape == mlp(x).shape == (5, 10)
    assert count_parameters(linear) == 784 * 10 + 10
    assert count_parameters(mlp) == (784 * 32 + 32) + (32 * 16 + 16) + (16 * 10 + 10)
    assert linear.templates().shape == (10, 28, 28)
    assert torch.equal(linear.templates()[3].flatten(), linear.head.weight[3])


@pytest.mark.parametrize(
    ("config", "word"),
    [
        (MLPConfig(hidden=()), "hidden"),
        (MLPConfig(hidden=(4,)), "8 to 4096 units"),
        (MLPConfig(dropout=0.95), "dropout"),
        (MLPConfig(hidden=(64.5,)), "8 to 4096 units"),  # not silently truncated to 64
        (MLPConfig(hidden=("64",)), "8 to 4096 units"),
        (MLPConfig(hidden=(True,)), "8 to 4096 units"),
        (LinearConfig(in_chans=3), "in_chans"),
        (LinearConfig(num_classes=1), "num_classes"),
    ],
)
def test_bad_configs_are_refused_with_a_reason(config, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        config.validate()


def test_configs_survive_json_and_refuse_unknown_keys() -> None:
    for config in (LinearConfig(), MLPConfig(hidden=(64, 32, 16), dropout=0.2)):
        back = model_config_from_dict(json.loads(json.dumps(asdict(config))))
        assert back == config and hash(back) == hash(config)
        assert TrainConfig.from_dict(json.loads(TrainConfig(model=config).to_json())).model == config
    assert MLPConfig(hidden=[64, 32]) == MLPConfig(hidden=(64, 32))  # a JSON list becomes the tuple again
    with pytest.raises(ConfigError, match="unknown mlp settings: width"):
        model_config_from_dict({"kind": "mlp", "width": 3})
    with pytest.raises(ConfigError, match="unknown model kind 'resnet'"):
        model_config_from_dict({"kind": "resnet"})


@pytest.mark.parametrize(("config", "floor"), [(LinearConfig(), 0.8), (MLPConfig(), 0.85)], ids=["linear", "mlp"])
def test_the_shared_trainer_trains_them(small_mnist, config, floor: float) -> None:
    assert isinstance(build_model(config), Linear if config.kind == "linear" else MLP)  # registered by kind
    run = TrainConfig(model=config, epochs=2, batch_size=100, lr=4e-3, device="cpu", augment=0.0, seed=0)
    result = train(run, data=small_mnist)
    assert result.history[-1].train_loss < result.history[0].train_loss
    test = score_model(result.model, small_mnist.test, small_mnist.mean, small_mnist.std, num_classes=10)
    assert test.accuracy > floor  # 2000 images, 2 epochs; chance is 0.1


@pytest.mark.parametrize("config", [LinearConfig(), MLPConfig(hidden=(32,))], ids=["linear", "mlp"])
def test_the_draw_page_explains_them_with_integrated_gradients(config) -> None:
    """Every model that is not a ViT gets the app's CNN explanation (it needs only model(x)), so a linear or MLP
    run chosen on the Draw page shows a map instead of failing."""
    from vitdemo.checkpoints import LoadedModel, make_meta
    from vitdemo.explain.inference import explain_one

    torch.manual_seed(0)
    loaded = LoadedModel(build_model(config).eval(), make_meta(config, "mnist"))
    x = torch.rand(1, 1, 28, 28)  # (1, 1, 28, 28)
    x[..., :4, :] = 0.0  # a blank band: integrated gradients from the blank image give it no weight
    pred = explain_one(loaded, torch.as_tensor((x - 0.1307) / 0.3081))
    assert pred.heat is not None and pred.heat.shape == (28, 28) and abs(pred.probs.sum() - 1) < 1e-5
    assert pred.heat[:4].max() == 0.0 and pred.heat.max() > 0.0
