"""The readers' pieces with tiny models: teacher forcing's tokens, greedy and beam decoding, the cross-attention a
page shows, a whole (tiny) training run through the normal path, and `python -m vitdemo read`."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vitdemo.checkpoints import make_meta, save_checkpoint
from vitdemo.config import TrainConfig
from vitdemo.data import Split, load_raw
from vitdemo.families.captioner import CaptionerConfig
from vitdemo.families.detector import DetectorConfig
from vitdemo.models import build_model
from vitdemo.models.captioner import BOS, EOS, PAD, teacher_tokens
from vitdemo.numbers import CANVAS_H, CANVAS_W
from vitdemo.numbers.read import beam_search, combined_attention, cross_attention, greedy, to_input
from vitdemo.numbers.splits import NumberData
from vitdemo.numbers.synth import make_numbers

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY_CAPTIONER = CaptionerConfig(embed_dim=32, depth=1, decoder_depth=1, num_heads=2)
TINY_DETECTOR = DetectorConfig(width=8, rep_dim=32)


@pytest.fixture(scope="module")
def t10k() -> Split:
    return load_raw("mnist", train=False)


def test_teacher_forcing_shifts_the_digits_behind_bos_and_ends_with_eos() -> None:
    digits = torch.tensor([[2, 0, 2, 6, -1, -1, -1, -1], [7, -1, -1, -1, -1, -1, -1, -1]])
    inputs, targets = teacher_tokens(digits, torch.tensor([4, 1]))
    assert inputs.tolist()[0] == [BOS, 2, 0, 2, 6] + [PAD] * 4
    assert targets.tolist()[0] == [2, 0, 2, 6, EOS] + [PAD] * 4
    assert inputs.tolist()[1] == [BOS, 7] + [PAD] * 7 and targets.tolist()[1] == [7, EOS] + [PAD] * 7


def test_the_beam_ranks_its_numbers_and_finds_no_less_likely_one_than_greedy(t10k: Split) -> None:
    """An untrained captioner: greedy writes 8 digits where stopping early is likelier; the beam keeps that number
    (an end token just outside the beam still finishes a number), so its best is at least as likely."""
    torch.manual_seed(1)
    model = build_model(TINY_CAPTIONER).eval()
    x = to_input(make_numbers(t10k, 3, seed=0).images)
    texts, conf, tokens = greedy(model, x)
    for i in range(3):
        for beam in (1, 4):
            ranked = beam_search(model, x[i : i + 1], beam=beam)
            probs = [q for _, q in ranked]
            assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6 and len(ranked) <= beam
            assert probs[0] >= float(conf[i]) * (1 - 1e-4)
            assert all(set(t) <= set("0123456789") and 1 <= len(t) <= 8 for t, _ in ranked)
    assert (tokens[:, 0] == BOS).all() and ((tokens == EOS).sum(1) == 1).all()


def test_cross_attention_is_one_map_per_written_token_per_layer_and_head(t10k: Split) -> None:
    model = build_model(CaptionerConfig(embed_dim=32, depth=1, decoder_depth=2, num_heads=2)).eval()
    x = to_input(make_numbers(t10k, 1, seed=5).images)
    _, _, tokens = greedy(model, x)
    tokens = tokens[:, : int((tokens[0] != PAD).sum())]  # BOS, digits, EOS
    heads = cross_attention(model, x, tokens)
    steps = tokens.shape[1] - 1
    assert heads.shape == (2, 2, steps, 1, 40)  # whole-height strips
    assert torch.allclose(heads.sum((-2, -1)), torch.ones(2, 2, steps), atol=1e-5)  # softmax over the patches
    maps = combined_attention(heads, (CANVAS_H, CANVAS_W))
    assert maps.shape == (steps, CANVAS_H, CANVAS_W) and float(maps.min()) >= 0 and float(maps.max()) <= 1


def test_the_ctc_help_trains_the_strips_and_is_not_part_of_the_model(t10k: Split) -> None:
    from vitdemo.models.captioner import caption_loss, ctc_head

    numbers = make_numbers(Split(t10k.images[:100], t10k.labels[:100]), 6, seed=1)
    x = to_input(numbers.images)
    torch.manual_seed(0)
    model = build_model(TINY_CAPTIONER)  # ctc_weight 0.3 by default
    strips = ctc_head(TINY_CAPTIONER)
    plain = caption_loss(model, x, numbers.digits, numbers.lengths, 0.0)
    mixed = caption_loss(model, x, numbers.digits, numbers.lengths, 0.0, strips)
    assert torch.isfinite(mixed) and not torch.allclose(plain, mixed)
    mixed.backward()
    assert strips.weight.grad is not None and strips.weight.grad.abs().sum() > 0  # the strips learn digits
    assert model.patch_embed.weight.grad.abs().sum() > 0  # and teach the encoder
    assert not any("ctc" in name or name.startswith("strips") for name in model.state_dict())  # nothing ships
    assert ctc_head(CaptionerConfig(ctc_weight=0.0)) is None


@pytest.mark.parametrize("config", [TINY_CAPTIONER, TINY_DETECTOR], ids=["captioner", "detector"])
def test_a_tiny_reader_trains_through_the_normal_path(config, t10k: Split, tmp_path: Path) -> None:
    """`execute` (the worker's and the CLI's path) trains, scores and saves a reader's run."""
    from vitdemo.numbers.train import train_reader
    from vitdemo.runs.execute_readers import reader_metrics

    pool = Split(t10k.images[:200], t10k.labels[:200])
    data = NumberData(pool, make_numbers(pool, 8, 1), make_numbers(pool, 8, 2))
    config = TrainConfig(model=config, epochs=1, batch_size=8, lr=1e-3, device="cpu", warmup_epochs=0)
    seen = []

    class Watch:
        def on_train_start(self, *args) -> None: ...
        def on_step(self, info) -> None:
            seen.append(info.loss)

        def on_step_weights(self, info, model) -> None: ...
        def on_epoch(self, info) -> None:
            seen.append(info)

        def on_epoch_weights(self, info, model) -> None: ...

    result = train_reader(config, (Watch(),), data=data)
    assert len(seen) == 8 and np.isfinite(seen[:-1]).all()  # 200 digits / 4 = 50 numbers: 7 steps of 8, an epoch
    assert result.history[0].val_acc == result.val_acc and 0 <= result.val_acc <= 1
    metrics = reader_metrics(result, data, digits=Split(pool.images[:20], pool.labels[:20]))
    assert metrics["test_numbers"] == 8 and metrics["cer"] >= 0
    if config.model.kind == "detector":
        assert 0 <= metrics["map50"] <= 1 and 0 <= metrics["single_digit"]["accuracy"] <= 1


def test_a_reader_starts_from_its_init_checkpoint(t10k: Split, tmp_path: Path) -> None:
    """`--init` on a reader: training goes on from that checkpoint's weights (it was recorded, but a fresh model
    trained: a captioner at 86% restarted at 5%)."""
    from vitdemo.numbers.train import train_reader

    torch.manual_seed(0)
    start = build_model(TINY_CAPTIONER).eval()
    path = save_checkpoint(tmp_path / "start.safetensors", start, make_meta(TINY_CAPTIONER, "mnist"))
    pool = Split(t10k.images[:200], t10k.labels[:200])
    data = NumberData(pool, make_numbers(pool, 8, 1), make_numbers(pool, 8, 2))
    config = TrainConfig(model=TINY_CAPTIONER, epochs=1, batch_size=8, lr=1e-12, weight_decay=0.0, device="cpu",
                         warmup_epochs=0, init=str(path), seed=5)  # fmt: skip
    trained = train_reader(config, data=data).model.state_dict()  # a learning rate of ~0: the weights it started from
    assert all(torch.allclose(trained[k], v, atol=1e-6) for k, v in start.state_dict().items())
    fresh = train_reader(dataclasses.replace(config, init=""), data=data).model.state_dict()
    assert not all(torch.allclose(fresh[k], v, atol=1e-6) for k, v in start.state_dict().items())  # without: new ones


def test_a_reader_borrows_the_layers_it_shares_with_a_digit_model(tmp_path: Path) -> None:
    """The detector's backbone from a double CNN's first two stages (its third stage is narrower: new), the
    captioner's encoder blocks from a ViT's first blocks (its patches are strips: new); a lean CNN lends nothing."""
    from vitdemo.checkpoints import CheckpointError
    from vitdemo.config import CNNConfig, ViTConfig
    from vitdemo.training.warmstart import init_from_checkpoint

    torch.manual_seed(0)
    cnn = build_model(CNNConfig(width=8, depth=3, design="double"))
    cnn_file = save_checkpoint(tmp_path / "cnn.safetensors", cnn, make_meta(cnn.config, "mnist"))
    detector = build_model(TINY_DETECTOR)
    before = {k: v.clone() for k, v in detector.state_dict().items()}
    taken = init_from_checkpoint(detector, cnn_file, dataset="mnist")
    after, theirs = detector.state_dict(), cnn.state_dict()
    assert len([k for k in taken if k.endswith("weight") and after[k].dim() == 4]) == 4  # 4 convs of 5
    assert torch.equal(after["net.backbone.10.weight"], theirs["stages.1.1.0.weight"])
    assert torch.equal(after["net.backbone.14.weight"], before["net.backbone.14.weight"])  # 16 -> 16: theirs 16 -> 32
    assert all(torch.equal(after[k], before[k]) for k in after if not k.startswith("net.backbone."))

    vit = build_model(ViTConfig(embed_dim=32, depth=3, num_heads=2))
    vit_file = save_checkpoint(tmp_path / "vit.safetensors", vit, make_meta(vit.config, "mnist"))
    captioner = build_model(TINY_CAPTIONER)
    patches = captioner.state_dict()["patch_embed.weight"].clone()
    taken = init_from_checkpoint(captioner, vit_file, dataset="mnist")
    assert taken and all(k.startswith("blocks.0.") for k in taken)  # its one block, from theirs
    assert torch.equal(captioner.state_dict()["blocks.0.mlp.3.weight"], vit.state_dict()["blocks.0.mlp.3.weight"])
    assert torch.equal(captioner.state_dict()["patch_embed.weight"], patches)

    lean = build_model(CNNConfig(width=8, depth=2, design="lean"))
    lean_file = save_checkpoint(tmp_path / "lean.safetensors", lean, make_meta(lean.config, "mnist"))
    with pytest.raises(CheckpointError, match="no layer of the shape"):
        init_from_checkpoint(build_model(TINY_DETECTOR), lean_file)
    with pytest.raises(CheckpointError, match="holds a vit model, not a detector"):
        init_from_checkpoint(build_model(TINY_DETECTOR), vit_file)


def test_read_answers_each_image_and_reader_and_refuses_a_bad_file(t10k: Split, tmp_path: Path) -> None:
    torch.manual_seed(0)
    files = {}
    for kind, config in (("captioner", TINY_CAPTIONER), ("detector", TINY_DETECTOR)):
        model = build_model(config).eval()
        files[kind] = save_checkpoint(tmp_path / f"{kind}.safetensors", model, make_meta(config, "mnist"))
    number = make_numbers(t10k, 1, seed=3)
    good = tmp_path / "number.png"
    Image.fromarray(255 - number.images[0].numpy()).resize((CANVAS_W * 4, CANVAS_H * 4)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    cmd = [sys.executable, "-m", "vitdemo", "read", str(good), str(bad), "--json", "--beam", "2"]
    cmd += ["--captioner", str(files["captioner"]), "--detector", str(files["detector"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"{bad}: The file is not an image (or not a format Pillow can read)."]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["file"], r.get("reader")) for r in rows] == [(str(good), "captioner"), (str(good), "detector"),
                                                           (str(bad), None)]  # fmt: skip
    cap, det = rows[0], rows[1]
    assert set(cap["text"]) <= set("0123456789") and 0 <= cap["confidence"] <= 1
    assert len(cap["alternatives"]) <= 2 and isinstance(det["boxes"], list)
    for x0, y0, x1, y1, digit, score in det["boxes"]:
        assert 0 <= x0 <= x1 <= CANVAS_W * 4 and 0 <= y0 <= y1 <= CANVAS_H * 4
        assert 0 <= digit <= 9 and 0 <= score <= 1


def test_the_gallery_lists_each_misread_number_least_sure_first(t10k: Split) -> None:
    from vitdemo.numbers.gallery import GALLERY_BATCH, misreads

    numbers = make_numbers(Split(t10k.images[:300], t10k.labels[:300]), 20, seed=5)
    torch.manual_seed(0)
    parts: list[tuple[int, int]] = []
    wrong = misreads(build_model(TINY_CAPTIONER), numbers, lambda done, total: parts.append((done, total)))
    assert parts == [(min(i + GALLERY_BATCH, 20), 20) for i in range(0, 20, GALLERY_BATCH)]
    assert wrong and [m.confidence for m in wrong] == sorted(m.confidence for m in wrong)
    texts = numbers.texts()
    assert all(m.truth == texts[m.index] and m.wrote != m.truth for m in wrong)  # untrained: wrong, and says so


def test_test_numbers_are_read_as_they_are_not_refused_as_drawings(t10k: Split) -> None:
    # The Read page's random test number and the misread gallery sent test numbers through the drawings'
    # checks, which refused 3 of the first 5 as "not handwriting".
    from vitdemo.checkpoints import LoadedModel
    from vitdemo.numbers.analyze import read_image
    from vitdemo.preprocess.number import preprocess_number

    numbers = make_numbers(t10k, 10, seed=0x7E57)
    reader = {"captioner": LoadedModel(build_model(TINY_CAPTIONER).eval(), make_meta(TINY_CAPTIONER, "mnist"))}
    images = [img.numpy() for img in numbers.images]
    assert any(preprocess_number(img).image is None for img in images)  # what happened to them
    answers = [read_image(img, reader, beam=0, prepared=True) for img in images]
    assert all("captioner" in a.readings and a.pre.image.shape == (CANVAS_H, CANVAS_W) for a in answers)
    assert np.allclose(answers[0].pre.image * 255, images[0])  # as it is
