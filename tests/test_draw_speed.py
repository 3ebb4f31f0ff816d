"""What keeps the Draw page instant (vitdemo.explain.inference): a CNN with its batch norms folded answers as the
CNN does, and a rerun of the page for the same drawing reuses the answers instead of running the models again."""

from __future__ import annotations

import numpy as np
import torch

from vitdemo.checkpoints import LoadedModel, make_meta
from vitdemo.config import CNNConfig, ViTConfig
from vitdemo.explain.inference import AnswerCache, analyze, inference_model
from vitdemo.explain.maps import blank_value, integrated_gradients
from vitdemo.models import build_model
from vitdemo.models.cnn import fold_batch_norm
from vitdemo.training.bench import synthetic_drawing


def _trained_looking_cnn() -> torch.nn.Module:
    """A CNN whose batch norms hold statistics and affine weights other than the identity's."""
    torch.manual_seed(0)
    cnn = build_model(CNNConfig(width=8))
    for m in cnn.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return cnn.eval()


def test_a_cnn_with_folded_batch_norms_gives_the_same_logits_and_maps() -> None:
    cnn = _trained_looking_cnn()
    folded = fold_batch_norm(cnn)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in cnn.modules())  # the original is untouched
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(folded(x), cnn(x), atol=1e-4)
    blank = blank_value(0.1307, 0.3081)
    logits, heat = integrated_gradients(cnn, x, baseline=blank)
    logits_f, heat_f = integrated_gradients(folded, x, baseline=blank)
    assert torch.allclose(logits_f, logits, atol=1e-4) and torch.allclose(
        heat_f, heat, atol=5e-3
    )  # float rounding, rescaled per map
    loaded = LoadedModel(cnn, make_meta(cnn.config, "mnist"))
    assert inference_model(loaded) is inference_model(loaded)  # folded once per loaded model
    cnn.train()
    assert inference_model(loaded) is cnn  # a model in training mode is never replaced by a stale copy


def test_a_rerun_for_the_same_drawing_reuses_the_answers() -> None:
    torch.manual_seed(0)
    models = {
        "vit": LoadedModel(build_model(ViTConfig(patch_size=7, embed_dim=16, depth=1, num_heads=2)).eval(),
                           make_meta(ViTConfig(patch_size=7, embed_dim=16, depth=1, num_heads=2), "mnist")),
        "cnn": LoadedModel(_trained_looking_cnn(), make_meta(CNNConfig(width=8), "mnist")),
    }  # fmt: skip
    cache, drawing = AnswerCache(size=2), synthetic_drawing()
    first = analyze(drawing, models, cache=cache)
    again = analyze(drawing, models, cache=cache)
    assert all(again.predictions[k] is first.predictions[k] for k in models)  # no model ran
    assert again.pre is first.pre  # nor the preprocessing
    uncached = analyze(drawing, models, cache=None)
    for k in models:
        assert np.allclose(uncached.predictions[k].probs, first.predictions[k].probs, atol=1e-6)
    other = analyze(drawing, models, cache=cache, discard_ratio=0.5)  # another setting: another answer
    assert other.predictions["vit"] is not first.predictions["vit"]
    analyze(np.zeros_like(drawing), models, cache=cache)  # an empty canvas: nothing to answer, nothing kept
    analyze(np.flipud(drawing).copy(), models, cache=cache)
    analyze(np.fliplr(drawing).copy(), models, cache=cache)  # two new drawings push the first one out (size 2)
    assert analyze(drawing, models, cache=cache).predictions["cnn"] is not first.predictions["cnn"]
