"""Attention rollout, Grad-CAM and the heat-map colours: hand-made cases with known answers, real tiny
models for shapes and side effects, and a sanity check that the maps depend on what a model learned."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import torch
from explain_models import LinearOnPixels
from torch import nn

import vitdemo.training.loop
from vitdemo.config import CNNConfig, TrainConfig, ViTConfig
from vitdemo.data import load_dataset, to_input
from vitdemo.explain.maps import (
    attention_rollout,
    cam_from_gradients,
    discard_lowest,
    explain_cnn,
    fuse_heads,
    grad_cam,
    layer_maps,
    rollout,
    rollout_map,
)
from vitdemo.models import build_model

TINY_VIT = ViTConfig(patch_size=7, embed_dim=32, depth=2, num_heads=2)  # 4x4 grid, T = 17 tokens
TINY_CNN = CNNConfig(width=8)


def random_attns(
    layers: int = 3, batch: int = 4, heads: int = 3, tokens: int = 17, seed: int = 0
) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, heads, tokens, tokens, generator=gen).mul(2).softmax(-1) for _ in range(layers)]


# --------------------------------------------------------------------------------------------------
# Rollout on hand-made attention
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("discard", [0.0, 0.3, 0.9])
def test_rollout_rows_sum_to_one(fusion: str, discard: float) -> None:
    joint = rollout(random_attns(), fusion, discard)
    assert joint.shape == (4, 17, 17)
    assert torch.isfinite(joint).all() and (joint >= 0).all()
    assert torch.allclose(joint.sum(-1), torch.ones(4, 17), atol=1e-5)


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
def test_identity_attention_gives_identity(fusion: str) -> None:
    eye = torch.eye(10).expand(2, 3, 10, 10)  # every token attends only to itself, 3 heads
    joint = rollout([eye] * 4, fusion)
    assert torch.allclose(joint, torch.eye(10).expand(2, 10, 10), atol=1e-6)


def test_uniform_attention_gives_uniform_map() -> None:
    T = 1 + 4 * 4
    uniform = torch.full((2, 2, T, T), 1.0 / T)
    joint = rollout([uniform] * 3)
    patches = joint[:, 0, 1:]  # (B, 16)
    assert torch.allclose(patches, patches[:, :1].expand_as(patches), rtol=1e-5)
    heat = rollout_map(joint, grid=4, size=28)
    assert heat.shape == (2, 28, 28)
    assert not torch.isnan(heat).any()
    assert torch.equal(heat, torch.full_like(heat, 0.5))  # constant -> the middle value, not NaN
    maps = layer_maps([uniform] * 3, grid=4)
    assert maps.shape == (2, 3, 4, 4) and torch.equal(maps, torch.full_like(maps, 0.5))


def test_head_fusions_match_hand_computed_values() -> None:
    attn = torch.tensor([[[[0.9, 0.1], [0.2, 0.8]], [[0.5, 0.5], [0.6, 0.4]]]])  # (1, 2 heads, 2, 2)
    assert torch.allclose(fuse_heads(attn, "mean"), torch.tensor([[[0.7, 0.3], [0.4, 0.6]]]))
    assert torch.allclose(fuse_heads(attn, "max"), torch.tensor([[[0.9, 0.5], [0.6, 0.8]]]))
    assert torch.allclose(fuse_heads(attn, "min"), torch.tensor([[[0.5, 0.1], [0.2, 0.4]]]))
    # One layer of max fusion: 0.5 * [[.9, .5], [.6, .8]] + 0.5 * I = [[.95, .25], [.3, .9]], rows sum to 1.2.
    expected = torch.tensor([[[0.95, 0.25], [0.3, 0.9]]]) / 1.2
    assert torch.allclose(rollout([attn], "max"), expected, atol=1e-6)
    # Two layers multiply, the later one on the left: A1 @ A0 = [[.525, .475]] * 2, while A0 @ A1 = 0.5 everywhere.
    swap = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])  # (1, 1 head, 2, 2): A1 = 0.5 * swap + 0.5 * I
    expected = torch.tensor([[[0.525, 0.475], [0.525, 0.475]]])  # A0 = 0.5 * mean + 0.5 * I = [[.85, .15], [.2, .8]]
    assert torch.allclose(rollout([attn, swap], "mean"), expected, atol=1e-6)
    with pytest.raises(ValueError, match="head fusion"):
        fuse_heads(attn, "median")  # type: ignore[arg-type]


def test_discard_zeroes_the_lowest_weights_but_not_the_class_token() -> None:
    # T = 4 -> 16 weights; ratio 0.25 drops 4. Entry (0, 0) is the smallest but must survive.
    fused = torch.arange(1.0, 17.0).reshape(1, 4, 4)
    fused[0, 0, 0] = 0.5
    kept = discard_lowest(fused, 0.25)
    expected = fused.clone().flatten()
    expected[1:5] = 0.0  # the four lowest weights other than the class token's own
    assert torch.equal(kept.flatten(), expected)
    assert fused[0, 0, 1] == 2.0  # the input is not modified in place
    with pytest.raises(ValueError, match="discard_ratio"):
        discard_lowest(fused, 1.5)


def test_discard_applies_to_every_image_and_rows_stay_normalised() -> None:
    attns = random_attns(layers=2, batch=3)
    fused = fuse_heads(attns[0])  # (3, 17, 17)
    k = int(17 * 17 * 0.5)
    kept = discard_lowest(fused, 0.5).flatten(1)  # (3, 289)
    dropped = kept == 0
    assert dropped.sum(1).tolist() == [k, k, k]  # per image, not only the first one of the batch
    original = fused.flatten(1)
    assert torch.equal(kept[~dropped], original[~dropped])  # survivors keep their own values
    for b in range(3):  # and each image loses its own lowest weights
        assert original[b][dropped[b]].max() <= original[b][~dropped[b]][1:].min()
    plain, sparse = rollout(attns, discard_ratio=0.0), rollout(attns, discard_ratio=0.5)
    assert not torch.allclose(plain, sparse, atol=1e-3)
    assert torch.allclose(sparse.sum(-1), torch.ones(3, 17), atol=1e-5)


def test_rollout_map_reads_the_class_token_row_in_row_major_order() -> None:
    joint = torch.eye(5).unsqueeze(0)  # (1, T=5, 5): class token + a 2x2 grid
    joint[0, 0, 1:] = torch.tensor([0.1, 0.2, 0.3, 0.4])  # what reached the class token, patch by patch
    joint[0, 1:, 0] = torch.tensor([0.4, 0.3, 0.2, 0.1])  # the other direction must not matter
    expected = torch.tensor([[[0.0, 1 / 3], [2 / 3, 1.0]]])
    assert torch.allclose(rollout_map(joint, grid=2, size=2), expected, atol=1e-6)
    big = rollout_map(joint, grid=2, size=8)
    assert big.shape == (1, 8, 8) and big[0, 0, 0] == 0 and big[0, -1, -1] == pytest.approx(1.0)  # extremes at corners
    with pytest.raises(ValueError, match="grid"):
        rollout_map(joint, grid=3)


# --------------------------------------------------------------------------------------------------
# Rollout and per-layer maps on a real ViT
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("training", [False, True])
def test_attention_rollout_on_a_vit(training: bool) -> None:
    torch.manual_seed(0)
    model = build_model(TINY_VIT).train(training)
    x = torch.randn(3, 1, 28, 28)
    logits, heat, attns = attention_rollout(model, x, "max", 0.5)
    assert model.training is training  # the mode is restored
    assert logits.shape == (3, 10) and heat.shape == (3, 28, 28)
    assert len(attns) == 2 and all(a.shape == (3, 2, 17, 17) for a in attns)
    assert not logits.requires_grad and not heat.requires_grad
    assert heat.min() >= 0 and heat.max() <= 1 and heat.amax((1, 2)).gt(0.9).all()
    with torch.no_grad():
        assert torch.allclose(logits, model.eval()(x), atol=1e-5)  # fused attention path, same numbers
    small = attention_rollout(model, x, size=4)[1]
    assert small.shape == (3, 4, 4)


def test_layer_maps_are_each_layers_class_token_attention() -> None:
    torch.manual_seed(1)
    model = build_model(TINY_VIT).eval()
    _, _, attns = attention_rollout(model, torch.randn(2, 1, 28, 28))
    maps = layer_maps(attns, grid=4)
    assert maps.shape == (2, 2, 4, 4)
    row = attns[1][1].mean(0)[0, 1:]  # image 1, layer 1: heads averaged, class token -> 16 patches
    expected = ((row - row.min()) / (row.max() - row.min())).reshape(4, 4)
    assert torch.allclose(maps[1, 1], expected, atol=1e-5)
    assert maps.amin((2, 3)).eq(0).all() and maps.amax((2, 3)).eq(1).all()


# --------------------------------------------------------------------------------------------------
# Grad-CAM
# --------------------------------------------------------------------------------------------------


def test_grad_cam_matches_the_hand_computed_map() -> None:
    x = torch.rand(2, 1, 6, 6) + 0.1  # positive pixels: class 0 has positive evidence, class 1 none
    logits, heat = grad_cam(LinearOnPixels(), x, target=0, size=6)
    assert torch.allclose(logits[:, 0], 2 * x.sum((1, 2, 3)))
    lo, hi = x.amin((1, 2, 3), keepdim=True), x.amax((1, 2, 3), keepdim=True)
    assert torch.allclose(heat, ((x - lo) / (hi - lo))[:, 0], atol=1e-6)
    _, none = grad_cam(LinearOnPixels(), x, target=1, size=6)
    assert torch.equal(none, torch.zeros_like(none))  # all-zero cam stays zero, no NaN
    _, default = grad_cam(LinearOnPixels(), x, size=6)  # predicted class is 0
    assert torch.equal(default, heat)


@pytest.fixture
def cnn() -> nn.Module:
    torch.manual_seed(0)
    return build_model(TINY_CNN).eval()


def test_grad_cam_shapes_range_and_side_effects(cnn: nn.Module) -> None:
    x = torch.randn(3, 1, 28, 28)
    for p in cnn.stages[0].parameters():
        p.requires_grad_(False)
    requires = [p.requires_grad for p in cnn.parameters()]
    with torch.no_grad():  # the app calls it with grad disabled
        logits, heat = grad_cam(cnn, x)
    assert logits.shape == (3, 10) and heat.shape == (3, 28, 28)
    assert not logits.requires_grad and not heat.requires_grad
    assert torch.isfinite(heat).all() and heat.min() >= 0 and heat.max() <= 1
    assert torch.allclose(logits, cnn(x), atol=1e-5)
    assert not cnn.training
    assert [p.requires_grad for p in cnn.parameters()] == requires
    assert all(p.grad is None for p in cnn.parameters())
    assert all(not m._forward_hooks for m in cnn.modules())  # nothing registered on the model
    with torch.inference_mode():  # even an input made under inference mode
        assert torch.allclose(grad_cam(cnn, x.clone())[1], heat)


def test_grad_cam_restores_train_mode_and_batch_norm_statistics(cnn: nn.Module) -> None:
    cnn.train()
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    grad_cam(cnn, torch.randn(4, 1, 28, 28))
    assert cnn.training and all(m.training for m in cnn.modules())
    assert all(torch.equal(before[k], v) for k, v in cnn.state_dict().items())  # ran in eval mode


def test_grad_cam_bad_target_is_a_clear_error_and_leaves_the_model_as_it_was(cnn: nn.Module) -> None:
    cnn.train()
    with pytest.raises(ValueError, match="target class"):
        grad_cam(cnn, torch.randn(1, 1, 28, 28), target=12)
    assert cnn.training and all(not m._forward_hooks for m in cnn.modules())


def test_grad_cam_uses_the_activations_the_cnn_returns(cnn: nn.Module) -> None:
    """The map is built from `forward(x, return_features=True)`'s activations: recompute it by hand."""
    x = torch.randn(2, 1, 28, 28)
    logits, heat = grad_cam(cnn, x, target=4)
    xg = x.clone().requires_grad_(True)
    out, acts = cnn(xg, return_features=True)  # (2, 10), (2, 16, 14, 14)
    assert torch.equal(out, cnn(x)) and acts.shape == (2, 16, 14, 14)
    (grads,) = torch.autograd.grad(out[:, 4].sum(), acts)
    cam = torch.relu((grads.mean((2, 3), keepdim=True) * acts).sum(1, keepdim=True))  # (2, 1, 14, 14)
    cam = torch.nn.functional.interpolate(cam, size=(28, 28), mode="bilinear", align_corners=False)[:, 0]
    lo, hi = cam.amin((1, 2), keepdim=True), cam.amax((1, 2), keepdim=True)
    assert torch.allclose(heat, (cam - lo) / (hi - lo), atol=1e-5) and torch.allclose(logits, out.detach())


def test_grad_cam_from_several_threads_on_one_model_matches_one_thread(cnn: nn.Module, one_thread) -> None:
    """The app shares one model between every browser session. With a forward hook on it, 26 of 600 calls
    from two threads failed (and others could silently take another thread's activations)."""
    threads, calls = 4, 50
    inputs = torch.randn(threads, calls, 8, 1, 28, 28, generator=torch.Generator().manual_seed(5))  # 8 images a call
    expected = [[grad_cam(cnn, x) for x in row] for row in inputs]  # one thread
    got: list[list[tuple[torch.Tensor, torch.Tensor] | Exception]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()  # all at once
        for x in inputs[t]:
            try:
                got[t].append(grad_cam(cnn, x))
            except Exception as exc:  # counted below
                got[t].append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    errors = [r for row in got for r in row if isinstance(r, Exception)]
    assert errors == [], f"{len(errors)} of {threads * calls} calls failed, e.g. {errors[0]!r}"
    wrong = sum(
        not (torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]))
        for row_got, row_expected in zip(got, expected, strict=True)
        for a, b in zip(row_got, row_expected, strict=True)
    )
    assert wrong == 0, f"{wrong} of {threads * calls} maps differ from the single-thread ones"


def test_cam_methods_match_hand_computed_maps() -> None:
    acts = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]]]])  # (1, K=2, 1, 2)
    grads = torch.tensor([[[[1.0, 3.0]], [[-1.0, -2.0]]]])
    # Grad-CAM: weights = spatial means (2, -1.5): 2 * [1, 0] - 1.5 * [0, 2] = [2, -3] -> relu [2, 0]
    assert cam_from_gradients(acts, grads, "gradcam").flatten().tolist() == [2.0, 0.0]
    # HiResCAM: sum_k g * A = [1*1 + 0, 0 + (-2)*2] = [1, -4] -> [1, 0]
    assert cam_from_gradients(acts, grads, "hirescam").flatten().tolist() == [1.0, 0.0]
    # LayerCAM: sum_k relu(g) * A = [1, 0]
    assert cam_from_gradients(acts, grads, "layercam").flatten().tolist() == [1.0, 0.0]
    # Grad-CAM++: channel 0: sum(A g^3) = 1, alpha = g^2 / (2 g^2 + 1) = [1/3, 9/19], w0 = 1/3 * 1 + 9/19 * 3;
    # channel 1 has no positive gradient (w1 = 0): cam = w0 * [1, 0]
    assert cam_from_gradients(acts, grads, "gradcam++").flatten().tolist() == pytest.approx([1 / 3 + 27 / 19, 0.0])
    with pytest.raises(ValueError, match="CAM method"):
        cam_from_gradients(acts, grads, "cam")  # type: ignore[arg-type]


def test_grad_cam_on_earlier_and_several_stages(cnn: nn.Module) -> None:
    x = torch.randn(2, 1, 28, 28)
    _, last = grad_cam(cnn, x, target=1)
    _, also_last = grad_cam(cnn, x, target=1, stages=(1,))  # TINY_CNN has 2 stages: stage index 1 is the last
    assert torch.allclose(last, also_last, atol=1e-6)
    _, first = grad_cam(cnn, x, target=1, stages=(0,), method="layercam")
    xg = x.clone().requires_grad_(True)
    out, stages = cnn(xg, return_stages=True)  # (2, 10), [(2, 8, 28, 28), (2, 16, 14, 14)]
    (g,) = torch.autograd.grad(out[:, 1].sum(), stages[0])
    cam = torch.relu((torch.relu(g) * stages[0]).sum(1))  # (2, 28, 28): already the input's size
    lo, hi = cam.amin((1, 2), keepdim=True), cam.amax((1, 2), keepdim=True)
    assert torch.allclose(first, (cam - lo) / (hi - lo), atol=1e-5)
    _, both = grad_cam(cnn, x, target=1, stages=(0, 1), method="layercam")
    _, second = grad_cam(cnn, x, target=1, stages=(1,), method="layercam")
    mean = (first + second) / 2
    lo, hi = mean.amin((1, 2), keepdim=True), mean.amax((1, 2), keepdim=True)
    assert torch.allclose(both, (mean - lo) / (hi - lo), atol=1e-5)
    with pytest.raises(ValueError, match="stage"):
        grad_cam(cnn, x, stages=())


def test_grad_cam_target_selects_the_class(cnn: nn.Module) -> None:
    x = torch.randn(2, 1, 28, 28)
    _, three = grad_cam(cnn, x, target=3)
    _, five = grad_cam(cnn, x, target=torch.tensor(5))
    assert (three - five).abs().mean() > 0.05
    _, mixed = grad_cam(cnn, x, target=torch.tensor([3, 5]))  # one class per image
    assert torch.allclose(mixed[0], three[0], atol=1e-6) and torch.allclose(mixed[1], five[1], atol=1e-6)


# --------------------------------------------------------------------------------------------------
# Integrated gradients
# --------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------
# Trained versus untrained: the maps must depend on the weights (Adebayo et al. 2018 sanity check)
# --------------------------------------------------------------------------------------------------


def data_dir() -> Path:
    env = os.environ.get("VITDEMO_DATA_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def one_thread():
    """Train the tiny models on one thread: on a busy 2-core machine two OpenMP threads made one tiny
    ViT epoch take 10-15 s instead of 0.3 s (threads waiting for each other); the results are the same."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # train() itself never changes the thread count
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mnist():
    if not (data_dir() / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        pytest.skip(f"MNIST not found under {data_dir()} (set VITDEMO_DATA_DIR)")
    return load_dataset("mnist", data_dir(), val_size=500, seed=0, train_subset=3000)


def train_tiny(config: TrainConfig, data) -> tuple[nn.Module, nn.Module]:
    """(trained model, the same model at its initialisation)."""
    result = vitdemo.training.loop.train(config, data=data)
    torch.manual_seed(config.seed)  # train() seeds like this before it builds: this is its starting point
    return result.model.eval(), build_model(config.model).eval()


@pytest.fixture(scope="module")
def vit_pair(mnist, one_thread):
    # 3 epochs of 24 steps (~1 s): 43% validation accuracy; 1 epoch reaches only 27%.
    config = TrainConfig(
        model=TINY_VIT, epochs=3, warmup_epochs=0.5, lr=5e-3, train_subset=3000, val_size=500, augment=0, device="cpu"
    )
    return train_tiny(config, mnist)


@pytest.fixture(scope="module")
def cnn_pair(mnist, one_thread):
    # 1 epoch (~1 s): 85% validation accuracy.
    config = TrainConfig(model=TINY_CNN, epochs=1, lr=3e-3, train_subset=3000, val_size=500, augment=0, device="cpu")
    return train_tiny(config, mnist)


@pytest.fixture(scope="module")
def digits(mnist) -> torch.Tensor:
    return to_input(mnist.test.images[:64], mnist.mean, mnist.std)  # (64, 1, 28, 28)


def test_trained_vit_attention_differs_from_its_initialisation(vit_pair, digits) -> None:
    trained, initial = vit_pair
    heat_t = attention_rollout(trained, digits)[1]
    heat_0 = attention_rollout(initial, digits)[1]
    # Mean |difference| measured 0.16 (0.19-0.53 against 9 other seeds' inits); a weight-blind map gives 0.
    assert (heat_t - heat_0).abs().mean() > 0.05
    # Min-max hides how peaked the attention is, so check the raw class-token row too: std / mean over the
    # patches measured 0.006 at init (0.002-0.008 over 10 seeds, near-uniform attention) and 0.19 trained.
    spread = {}
    for name, model in (("trained", trained), ("initial", initial)):
        with torch.no_grad():
            row = rollout(model(digits, return_attn=True)[1])[:, 0, 1:]  # (64, 16)
        spread[name] = (row.std(1) / row.mean(1)).mean().item()
    assert spread["initial"] < 0.02 and spread["trained"] > 0.08, spread


def test_trained_cnn_grad_cam_differs_from_its_initialisation(cnn_pair, digits) -> None:
    trained, initial = cnn_pair
    heat_t = grad_cam(trained, digits)[1]
    heat_0 = grad_cam(initial, digits)[1]
    # Mean |difference| measured 0.26 (0.22-0.31 against 10 random inits); a weight-blind map gives 0.
    assert (heat_t - heat_0).abs().mean() > 0.1


def test_trained_cnn_integrated_gradients_differ_from_its_initialisation(cnn_pair, digits, mnist) -> None:
    trained, initial = cnn_pair
    heat_t = explain_cnn(trained, digits, mean=mnist.mean, std=mnist.std)[1]
    heat_0 = explain_cnn(initial, digits, mean=mnist.mean, std=mnist.std)[1]
    ink = mnist.test.images[:64] > 25  # (64, 28, 28): only ink pixels can differ (both are 0 on the blank)
    assert (heat_t - heat_0).abs()[ink].mean() > 0.1
