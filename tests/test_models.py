import pytest
import torch

from vitdemo.config import CNNConfig, ConfigError, TrainConfig, ViTConfig, model_config_from_dict
from vitdemo.models import build_model, count_parameters


@pytest.mark.parametrize("patch", [4, 7, 14])
def test_vit_attention_paths_give_identical_logits(patch: int) -> None:
    torch.manual_seed(0)
    config = ViTConfig(patch_size=patch, embed_dim=32, depth=3, num_heads=4)
    model = build_model(config).eval()
    x = torch.randn(5, 1, 28, 28)
    fused = model(x)
    explicit, attns = model(x, return_attn=True)
    tokens = 1 + (28 // patch) ** 2
    assert fused.shape == (5, 10)
    assert torch.allclose(fused, explicit, atol=1e-5)
    assert len(attns) == 3
    for a in attns:
        assert a.shape == (5, 4, tokens, tokens)
        assert torch.allclose(a.sum(-1), torch.ones(5, 4, tokens), atol=1e-5)


def test_vit_default_size_is_small() -> None:
    n = count_parameters(build_model(ViTConfig()))
    assert 150_000 < n < 300_000  # the ~210k-parameter class of the published from-scratch ViTs


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_cnn_sizes_are_derived(depth: int) -> None:
    model = build_model(CNNConfig(width=8, depth=depth)).eval()
    x = torch.randn(2, 1, 28, 28)
    assert model(x).shape == (2, 10)
    logits, acts = model(x, return_features=True)  # the last stage, before its pooling: Grad-CAM's input
    side = 28 // 2 ** (depth - 1)
    assert acts.shape == (2, 8 * 2 ** (depth - 1), side, side)
    assert torch.equal(logits, model(x))


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_cnn_returns_every_stage_in_the_graph(depth: int) -> None:
    torch.manual_seed(0)
    model = build_model(CNNConfig(width=4, depth=depth)).eval()
    x = torch.randn(2, 1, 28, 28, requires_grad=True)
    logits, stages = model(x, return_stages=True)
    assert [tuple(a.shape) for a in stages] == [(2, 4 * 2**i, 28 // 2**i, 28 // 2**i) for i in range(depth)]
    assert torch.equal(logits, model(x))
    assert torch.equal(stages[-1], model(x, return_features=True)[1])  # the old call: the last stage
    assert all(a.requires_grad for a in stages)  # Grad-CAM on any stage, no hooks
    assert torch.equal(torch.stack([a.sum() for a in model.forward_stages(x)]), torch.stack([a.sum() for a in stages]))


def hooked_macs(model: torch.nn.Module) -> int:
    """Multiply-adds of one 28x28 image through every conv and linear layer, counted from their outputs."""
    total = 0

    def count(module: torch.nn.Module, _: object, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += out[0].numel() * k
        elif isinstance(module, torch.nn.Linear):
            total += out[0].numel() * module.in_features

    hooks = [
        m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 1, 28, 28))
    for h in hooks:
        h.remove()
    return total


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_lean_cnn_pools_each_stage_and_counts_itself(depth: int) -> None:
    """A lean stage is a conv, a pool, then norm and ReLU: 28 -> 12 -> 5 -> 2 pixels a side; the family's counts
    (parameters, multiply-adds) are what the network has; it trains on a batch of one image (a 1x1 last stage
    would not: batch norm needs two values a channel)."""
    from vitdemo.families.cnn import forward_macs, parameters, stage_sides

    torch.manual_seed(0)
    config = CNNConfig(width=8, depth=depth, design="lean")
    model = build_model(config).eval()
    x = torch.randn(3, 1, 28, 28)
    logits, stages = model(x, return_stages=True)
    assert [tuple(a.shape) for a in stages] == [(3, 8 * 2**i, s, s) for i, s in enumerate(stage_sides(config))]
    assert stage_sides(config) == [12, 5, 2][:depth]
    assert logits.shape == (3, 10) and torch.equal(logits, model(x))
    assert count_parameters(model) == parameters(config)
    assert forward_macs(config) == hooked_macs(model)
    assert forward_macs(config) < forward_macs(CNNConfig(width=8, depth=depth))  # why it exists
    model.train()(torch.randn(1, 1, 28, 28)).sum().backward()  # the last batch of an epoch can hold one image


@pytest.mark.parametrize("config", [CNNConfig(width=8, depth=d) for d in (1, 2, 3)] + [
    ViTConfig(patch_size=p, depth=2, stem=s) for p in (4, 7, 14) for s in ("patch", "conv", "cnn")])  # fmt: skip
def test_the_families_count_the_multiply_adds_their_networks_do(config) -> None:
    from vitdemo.families import get as family

    counted = hooked_macs(build_model(config))
    if config.kind == "cnn":
        assert family("cnn").macs(config) == counted
    else:  # attention's two matrix products (scores, weighted sum) have no layer for a hook to see
        t, d = config.grid**2 + 1, config.embed_dim
        assert family("vit").macs(config) == counted + config.depth * 2 * t * t * d


def test_an_old_cnn_header_without_a_design_is_the_double_design() -> None:
    config = model_config_from_dict({"kind": "cnn", "width": 16, "depth": 2, "dropout": 0.1})
    assert config == CNNConfig(width=16, depth=2) and config.design == "double"
    with pytest.raises(ConfigError, match="design"):
        build_model(CNNConfig(design="deep"))


@pytest.mark.parametrize("stem", ["conv", "cnn"])
@pytest.mark.parametrize("patch", [4, 7, 14])
def test_a_conv_stem_puts_the_tokens_on_the_patch_grid(patch: int, stem: str) -> None:
    from vitdemo.families.vit import parameters

    torch.manual_seed(0)
    config = ViTConfig(patch_size=patch, depth=2, stem=stem)
    model = build_model(config).eval()
    logits, attns = model(torch.randn(2, 1, 28, 28), return_attn=True)
    tokens = (28 // patch) ** 2 + 1
    assert logits.shape == (2, 10) and attns[0].shape == (2, 4, tokens, tokens)  # rollout reads the same grid
    assert count_parameters(model) == parameters(config)
    assert model_config_from_dict({"kind": "vit", "patch_size": patch}).stem == "patch"  # an old header


def test_mae_refuses_a_conv_stem_before_a_run_is_queued() -> None:
    from vitdemo.pretrain.mae import MAE
    from vitdemo.runconfig import PretrainRun

    with pytest.raises(ConfigError, match="stem"):
        MAE(build_model(ViTConfig(depth=1, stem="conv")))
    with pytest.raises(ConfigError, match="stem"):  # what the Train form and the queue check
        PretrainRun(method="mae", train=TrainConfig(model=ViTConfig(depth=1, stem="conv"))).validate()
    PretrainRun(method="mae", train=TrainConfig(model=ViTConfig(depth=1))).validate()


def test_wider_cnn_has_more_parameters() -> None:
    assert count_parameters(build_model(CNNConfig(width=32))) > count_parameters(build_model(CNNConfig(width=16)))


@pytest.mark.parametrize(
    "config, message",
    [
        (ViTConfig(patch_size=5), "patch_size"),
        (ViTConfig(embed_dim=30, num_heads=4), "divisible"),
        (CNNConfig(depth=4), "depth"),
        (TrainConfig(epochs=0), "epochs"),
        (TrainConfig(lr=-1), "lr"),
        (TrainConfig(dataset="cifar"), "dataset"),
    ],
)
def test_invalid_configs_say_what_is_wrong(config, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.validate() if isinstance(config, TrainConfig) else build_model(config)


def test_train_config_round_trips_through_json() -> None:
    import json

    config = TrainConfig(model=CNNConfig(width=24), epochs=3, name="x", split_seed=3, seed=2**64 - 1)
    again = TrainConfig.from_dict(json.loads(config.to_json()))
    assert again == config
    assert isinstance(again.model, CNNConfig)


def test_unknown_settings_are_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown"):
        model_config_from_dict({"kind": "vit", "patches": 3})
    with pytest.raises(ConfigError, match="kind"):
        model_config_from_dict({"kind": "resnet"})
