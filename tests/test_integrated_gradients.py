"""Integrated gradients, the CNN's map on the Draw page (vitdemo.explain.maps): exact on a linear model, complete
(the attributions add up to the score's change), one pass equal to the step-wise sum, no side effects on the model,
zero on blank pixels, and the number of steps by the CNN's design."""

from __future__ import annotations

import pytest
import torch
from explain_models import LinearOnPixels
from torch import nn

from vitdemo.config import CNNConfig
from vitdemo.data import to_input
from vitdemo.explain.maps import blank_value, explain_cnn, ig_attributions, ig_with_logits, integrated_gradients
from vitdemo.models import build_model


@pytest.fixture
def cnn() -> nn.Module:
    torch.manual_seed(0)
    return build_model(CNNConfig(width=8)).eval()


def test_integrated_gradients_are_exact_for_a_linear_model() -> None:
    """logit_c = w_c * sum(x): the gradient is w_c everywhere, so the attributions are w_c * (x - baseline)."""
    x = torch.rand(2, 1, 6, 6) + 0.1
    attr = ig_attributions(LinearOnPixels(), x, torch.tensor([0, 1]), baseline=0.05, steps=3)
    assert torch.allclose(attr[0], 2.0 * (x[0] - 0.05)) and torch.allclose(attr[1], -1.0 * (x[1] - 0.05))
    logits, heat = integrated_gradients(LinearOnPixels(), x, target=0, size=6, baseline=0.05)
    lo, hi = (x - 0.05).amin((1, 2, 3), keepdim=True), (x - 0.05).amax((1, 2, 3), keepdim=True)
    assert torch.allclose(heat, ((x - 0.05 - lo) / (hi - lo))[:, 0], atol=1e-6)
    assert torch.equal(integrated_gradients(LinearOnPixels(), x, target=1, size=6)[1], torch.zeros(2, 6, 6))
    with pytest.raises(ValueError, match="steps"):
        ig_attributions(LinearOnPixels(), x, torch.tensor([0, 1]), baseline=0.0, steps=0)


def test_a_lean_cnn_is_explained_with_fewer_integrated_gradients_steps(monkeypatch) -> None:
    """The lean design's map takes 4 steps (as good on the trust checks, a third of the passes); the double keeps 12."""
    from vitdemo.explain import maps

    lean, double = build_model(CNNConfig(design="lean")).eval(), build_model(CNNConfig(design="double")).eval()
    assert maps.ig_steps(lean) == maps.IG_STEPS_BY_DESIGN["lean"] == 4 and maps.ig_steps(double) == maps.IG_STEPS == 12
    assert maps.ig_steps(LinearOnPixels()) == maps.IG_STEPS  # a model without a design
    seen = []
    real = maps.ig_with_logits
    monkeypatch.setattr(maps, "ig_with_logits", lambda *a, **k: seen.append(k["steps"]) or real(*a, **k))
    for model in (lean, double):
        maps.explain_cnn(model, torch.randn(1, 1, 28, 28), mean=0.13, std=0.31)
    assert seen == [4, 12]


def test_integrated_gradients_add_up_to_the_score_difference(cnn: nn.Module) -> None:
    """Completeness (Sundararajan et al. 2017): the attributions sum to score(x) - score(blank)."""
    x = torch.randn(3, 1, 28, 28)
    blank, classes = -1.0, torch.tensor([2, 5, 7])
    with torch.enable_grad():
        attr = ig_attributions(cnn, x, classes, baseline=blank, steps=128)
    with torch.no_grad():
        gap = (
            cnn(x).gather(1, classes[:, None])[:, 0] - cnn(torch.full_like(x, blank)).gather(1, classes[:, None])[:, 0]
        )
    assert torch.allclose(attr.sum((1, 2, 3)), gap, rtol=0.05, atol=0.05), (attr.sum((1, 2, 3)), gap)


def test_one_pass_integrated_gradients_equal_the_step_wise_sum(cnn: nn.Module) -> None:
    """The app's IG (the images ride in the batch of their paths: one forward, one backward) gives the logits of a
    separate forward and the attributions of a separate pass per step, summed; completeness holds for both."""
    torch.manual_seed(0)
    cnn.eval()
    x, blank, steps = torch.randn(3, 1, 28, 28), -0.4242, 8
    with torch.no_grad():
        expected_logits = cnn(x)  # (3, 10)
    classes = expected_logits.argmax(1)
    per_step = torch.zeros_like(x)
    for k in range(steps):  # the integral, one path point at a time
        point = (blank + (k + 0.5) / steps * (x - blank)).requires_grad_(True)
        (g,) = torch.autograd.grad(cnn(point).gather(1, classes[:, None]).sum(), point)
        per_step += g / steps
    logits, attr = ig_with_logits(cnn, x, None, baseline=blank, steps=steps)
    assert torch.allclose(logits, expected_logits, atol=1e-5)
    assert torch.allclose(attr, per_step * (x - blank), atol=1e-5)
    assert torch.allclose(attr, ig_attributions(cnn, x, classes, baseline=blank, steps=steps), atol=1e-6)
    _, other = ig_with_logits(cnn, x, torch.tensor([1, 2, 3]), baseline=blank, steps=steps)  # one class per image
    assert torch.allclose(
        other, ig_attributions(cnn, x, torch.tensor([1, 2, 3]), baseline=blank, steps=steps), atol=1e-6
    )
    with torch.no_grad():
        gap = (
            expected_logits.gather(1, classes[:, None])[:, 0]
            - cnn(torch.full_like(x, blank)).gather(1, classes[:, None])[:, 0]
        )
    _, fine = ig_with_logits(cnn, x, None, baseline=blank, steps=128)
    assert torch.allclose(fine.sum((1, 2, 3)), gap, rtol=0.05, atol=0.05)  # completeness


def test_integrated_gradients_leave_the_model_as_it_was_and_chunk_like_one_pass(cnn: nn.Module, monkeypatch) -> None:
    cnn.train()
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():  # as the app calls it
        logits, heat = integrated_gradients(cnn, x, baseline=-0.5, steps=4)
    assert cnn.training and all(torch.equal(before[k], v) for k, v in cnn.state_dict().items())
    assert all(p.grad is None for p in cnn.parameters()) and not heat.requires_grad
    assert heat.shape == (5, 28, 28) and heat.min() >= 0 and heat.max() <= 1
    assert torch.allclose(logits, cnn.eval()(x), atol=1e-5)
    monkeypatch.setattr("vitdemo.explain.maps.IG_CHUNK", 4)  # one image per pass
    assert torch.allclose(integrated_gradients(cnn, x, baseline=-0.5, steps=4)[1], heat, atol=1e-5)


def test_the_cnn_explanation_is_zero_on_blank_pixels(cnn: nn.Module) -> None:
    """The issue: the map must not paint empty background. Pixels equal to the blank image get exactly 0."""
    mean, std = 0.1307, 0.3081
    image = torch.zeros(2, 28, 28, dtype=torch.uint8)
    image[:, 8:20, 12:15] = 255  # a "1"
    _, heat = explain_cnn(cnn, to_input(image, mean, std), mean=mean, std=std)
    assert heat.amax((1, 2)).eq(1).all()  # the map has evidence somewhere...
    assert heat[image == 0].abs().max() == 0  # ...and none on an empty pixel
    assert blank_value(mean, std) == pytest.approx(-mean / std)
