"""MAE and SimCLR pieces, the label budget, and few-label runs from a pretrained encoder, on tiny models and MNIST."""

import math
from dataclasses import replace

import pytest
import torch

from vitdemo.checkpoints import read_meta
from vitdemo.config import CNNConfig, ConfigError, TrainConfig, ViTConfig
from vitdemo.data import Split, load_dataset
from vitdemo.evaluate import score_model
from vitdemo.models.cnn import CNN
from vitdemo.models.vit import ViT
from vitdemo.pretrain import (
    MAE,
    MAEConfig,
    PretrainConfig,
    SimCLR,
    SimCLRConfig,
    is_pretrained_encoder,
    label_budget,
    nt_xent,
    pretrain,
    pretrain_encoder,
    reconstruct,
    save_encoder,
)
from vitdemo.pretrain.mae import encode_visible, num_visible, patchify, random_masking, unpatchify
from vitdemo.pretrain.simclr import cnn_features, two_views
from vitdemo.training.loop import train

TINY_VIT = ViTConfig(patch_size=7, embed_dim=32, depth=2, num_heads=2)  # 16 patches
TINY_CNN = CNNConfig(width=8)


@pytest.fixture(scope="module")
def mnist(data_dir: str):
    data = load_dataset("mnist", data_dir, val_size=0, seed=0, train_subset=2000)
    return replace(data, test=Split(data.test.images[:2000], data.test.labels[:2000]))  # fine-tunes score faster


@pytest.mark.parametrize("n", [16, 64, 196])
def test_masking_keeps_exactly_a_quarter_visible_per_image(n: int) -> None:
    keep = num_visible(n, 0.75)
    assert keep == n // 4
    ids_keep, ids_restore, mask = random_masking(torch.rand(8, n, generator=torch.Generator().manual_seed(0)), keep)
    assert ids_keep.shape == (8, n // 4)
    assert torch.all(mask.sum(1) == n - n // 4)  # 75% hidden in every image
    assert torch.all(mask.gather(1, ids_keep) == 0)  # the kept ones are the visible ones
    assert all(len(set(row.tolist())) == n // 4 for row in ids_keep)
    assert not torch.equal(mask[0], mask[1])  # a different mask per image
    assert torch.equal(ids_restore.argsort(1).sort(1).values, torch.arange(n).expand(8, n))


def test_patchify_matches_the_vits_token_order_and_inverts() -> None:
    vit = ViT(TINY_VIT)
    x = torch.randn(3, 1, 28, 28)
    patches = patchify(x, 7)  # (3, 16, 49)
    assert torch.equal(unpatchify(patches, 7), x)
    weight = vit.patch_embed.weight.permute(0, 2, 3, 1).reshape(32, -1)  # (D, p*p*C) in patchify's order
    tokens = vit.patch_embed(x).flatten(2).transpose(1, 2)  # (3, 16, D)
    assert torch.allclose(tokens, patches @ weight.T + vit.patch_embed.bias, atol=1e-5)


def test_encoder_sees_only_visible_tokens() -> None:
    vit = ViT(TINY_VIT).eval()
    x = torch.randn(2, 1, 28, 28)
    ids_keep, _, _ = random_masking(torch.rand(2, 16), 4)
    assert encode_visible(vit, x, ids_keep).shape == (2, 5, 32)  # class token + 4 visible
    everything = torch.arange(16).expand(2, 16)
    full, _ = vit.forward_features(x)  # with every patch kept, the masked path is the ViT's own forward
    assert torch.allclose(encode_visible(vit, x, everything), full, atol=1e-5)


def test_nt_xent_prefers_matching_views() -> None:
    z = torch.randn(32, 16, generator=torch.Generator().manual_seed(0))
    shuffled = z[torch.randperm(32, generator=torch.Generator().manual_seed(1))]
    assert nt_xent(z, z, 0.2) < nt_xent(z, shuffled, 0.2)
    e = torch.eye(2)  # two images, orthogonal projections: each view has its twin at cos 1, two others at cos 0
    expected = -torch.log(torch.exp(torch.tensor(1 / 0.5)) / (torch.exp(torch.tensor(1 / 0.5)) + 2))
    assert torch.allclose(nt_xent(e, e, 0.5), expected)


def test_views_differ_but_stay_digit_like(mnist) -> None:
    x = (mnist.train.images[:16].unsqueeze(1).float() / 255 - mnist.mean) / mnist.std
    v1, v2 = two_views(x, SimCLRConfig(), torch.Generator().manual_seed(0))
    assert v1.shape == v2.shape == x.shape
    assert not torch.allclose(v1, v2)
    assert (v1 - x).abs().mean() < x.abs().mean()  # changed, not destroyed


def test_label_budget_is_balanced_and_seeded(mnist) -> None:
    labels = mnist.train.labels
    idx = label_budget(labels, 100, seed=0)
    assert len(idx) == 100 == len(set(idx.tolist()))
    assert torch.bincount(labels[idx], minlength=10).tolist() == [10] * 10
    assert torch.equal(idx, label_budget(labels, 100, seed=0))
    assert set(idx.tolist()) != set(label_budget(labels, 100, seed=1).tolist())
    counts = torch.bincount(labels[label_budget(labels, 105, seed=0)], minlength=10)
    assert counts.sum() == 105 and set(counts.tolist()) == {10, 11}
    assert sorted(label_budget(labels, 0, seed=0).tolist()) == list(range(len(labels)))  # 0 = all
    with pytest.raises(ConfigError, match="fewer than"):
        label_budget(torch.tensor([0, 0, 0, 0, 1]), 4, seed=0)  # 2 of each: class 1 has one


@pytest.mark.parametrize("method", ["mae", "simclr"])
def test_a_tiny_pretraining_reduces_its_loss(mnist, method: str) -> None:
    torch.manual_seed(0)
    objective = (
        MAE(ViT(TINY_VIT), MAEConfig(decoder_dim=32, decoder_depth=1)) if method == "mae" else SimCLR(CNN(TINY_CNN))
    )
    config = PretrainConfig(epochs=4, batch_size=64, lr=2e-3, warmup_epochs=0.5)
    seen = []
    losses = pretrain(objective, mnist.train.images[:512], config, mean=mnist.mean, std=mnist.std, on_step=seen.append)
    assert len(seen) == 4 * 8 and seen[-1].step == seen[-1].total_steps == 32
    assert losses[-1] < losses[0]
    if method == "mae":
        assert losses[-1] < 0.9 * losses[0]
    else:  # guessing the twin among 2B - 1 = 127 candidates costs log(127) = 4.84
        assert losses[-1] < math.log(127) - 0.2


def test_reconstruction_images_for_display(mnist) -> None:
    mae = MAE(ViT(TINY_VIT))
    images = mnist.train.images[:4]
    rec = reconstruct(mae, images, mnist.mean, mnist.std, seed=0)
    assert rec.original.shape == rec.masked.shape == rec.predicted.shape == rec.pasted.shape == (4, 28, 28)
    assert rec.original.min() >= 0 and rec.original.max() <= 1
    assert torch.allclose(torch.from_numpy(rec.original), images.float() / 255, atol=1e-5)
    hidden = rec.masked == 0.5
    assert abs(hidden.mean() - 0.75) < 0.01  # 12 of 16 patches hidden
    assert (rec.pasted[~hidden] == rec.original[~hidden]).all()  # visible patches are the original's


def test_an_encoder_file_starts_a_few_label_run_through_the_trainer(mnist, tmp_path) -> None:
    """Pretrain -> save as a tagged checkpoint -> probe and fine-tune with 100 labels, all through train()."""
    encoder = pretrain_encoder(
        "simclr",
        TINY_CNN,
        mnist.train.images[:256],
        PretrainConfig(epochs=1, batch_size=128),
        mean=mnist.mean,
        std=mnist.std,
    )
    assert len(encoder.losses) == 1 and encoder.images == 256 and not encoder.model.training
    path = save_encoder(tmp_path / "simclr.safetensors", encoder, "mnist")
    meta = read_meta(path)
    assert is_pretrained_encoder(meta) and meta.metrics["pretrain"]["epochs"] == 1 and meta.name == "simclr cnn encoder"
    body = {k: v.clone() for k, v in encoder.model.state_dict().items() if not k.startswith("head.")}

    run = TrainConfig(model=TINY_CNN, init=str(path), labels=100, probe=True, epochs=3, batch_size=50, device="cpu")
    probe = train(run, data=mnist).model.state_dict()
    assert all(torch.equal(v, probe[k]) for k, v in body.items())  # incl. batch-norm statistics
    tuned = train(replace(run, probe=False, epochs=30, lr=3e-3), data=mnist)  # 60 steps on 100 labels
    assert not torch.equal(tuned.model.stages[0][0][0].weight, body["stages.0.0.0.weight"])
    assert tuned.history[-1].train_loss < tuned.history[0].train_loss
    test = score_model(tuned.model, mnist.test, mnist.mean, mnist.std, num_classes=10)
    assert test.accuracy > 0.4  # 100 labels; chance is 0.1


def test_each_method_pretrains_its_own_kind(mnist) -> None:
    images, config = mnist.train.images[:64], PretrainConfig(epochs=1, batch_size=64)
    with pytest.raises(ConfigError, match="mae pretrains a vit encoder, not a cnn"):
        pretrain_encoder("mae", TINY_CNN, images, config, mean=0.1, std=0.3)
    with pytest.raises(ConfigError, match="method must be one of mae, simclr"):
        pretrain_encoder("byol", TINY_VIT, images, config, mean=0.1, std=0.3)


def test_features_are_what_the_cnn_head_reads() -> None:
    cnn = CNN(TINY_CNN).eval()
    x = torch.randn(2, 1, 28, 28)
    assert torch.allclose(cnn.head(cnn_features(cnn, x)), cnn(x), atol=1e-6)
