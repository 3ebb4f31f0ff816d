"""Watch it learn: the ten watched test images (the same for every run), answering them without changing what a
run learns, the loss points a training writes (about one a second, thinned past a cap), and the figures and
HTML the Train and Present pages show."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.data import load_dataset, load_raw
from vitdemo.runs import points, queue
from vitdemo.runs.execute import EventCallback, WatchCallback
from vitdemo.runs.record import Recorder
from vitdemo.runs.store import Registry
from vitdemo.training.loop import Callback, StepInfo, train
from vitdemo.training.watch import WATCH_SEED, Watcher, WatchRow, choose_digits, predict_row
from vitdemo.views import learning

# Batch norm and dropout: a forward pass in training mode would move the running statistics and draw from the RNG.
TINY = TrainConfig(
    model=CNNConfig(width=4, depth=1, dropout=0.3), epochs=2, batch_size=50, train_subset=400, val_size=100,
    device="cpu", seed=3,
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_data(data_dir: Path):
    return load_dataset("mnist", data_dir, val_size=TINY.val_size, train_subset=TINY.train_subset)


# -- the ten images ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", ["mnist", "fashion"])
def test_the_watched_images_are_one_per_class_and_the_same_for_every_run(dataset: str, data_dir: Path) -> None:
    labels = load_raw(dataset, train=False, data_dir=data_dir).labels.numpy()
    chosen = choose_digits(labels)
    assert [int(labels[i]) for i in chosen] == list(range(10))  # one of each class, class 0 first
    assert choose_digits(labels.copy()) == chosen  # a fixed seed: every run, every process
    assert choose_digits(labels, seed=WATCH_SEED + 1) != chosen  # ... which is what picks them


def test_a_missing_class_is_skipped() -> None:
    assert choose_digits(np.array([3, 3, 1]), num_classes=5) in ([2, 0], [2, 1])  # class 1, then class 3


def test_predict_row_leaves_modes_rng_and_gradients_as_found() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(1352, 10))
    model.train()
    model[1].eval()  # a frozen part in eval mode, as a probe's body: it must stay there
    model(torch.randn(4, 1, 28, 28)).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    stats = model[1].running_mean.clone()
    images = torch.randint(0, 256, (10, 28, 28), dtype=torch.uint8)
    rng = torch.get_rng_state()
    answers = predict_row(model, images, 0.13, 0.31)
    assert [m.training for m in model.modules()] == [True, True, False, True, True, True]
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True))
    assert torch.equal(model[1].running_mean, stats)
    assert len(answers) == 10 and all(0 <= c < 10 and 0.1 <= p <= 1 for c, p in answers)
    assert predict_row(model, images, 0.13, 0.31) == answers  # eval mode: no dropout, the same answers
    sharp = predict_row(model, images, 0.13, 0.31, temperature=0.1)  # a temperature below 1 sharpens
    assert [c for c, _ in sharp] == [c for c, _ in answers] and all(
        s >= a for (_, s), (_, a) in zip(sharp, answers, strict=True)
    )


class LooksInTrainMode(Callback):
    """The mistake the watcher must not make: a forward pass in training mode every step (no gradients)."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def on_step_weights(self, info: StepInfo, model: nn.Module) -> None:
        with torch.no_grad():
            model(self.images.float().unsqueeze(1))


class CountingWatcher(Watcher):
    looks = 0

    def look(self, model: nn.Module, **kwargs) -> WatchRow:
        self.looks += 1
        return super().look(model, **kwargs)


def test_watching_does_not_change_what_a_run_learns(reg: Registry, tiny_data) -> None:
    plain = train(TINY, data=tiny_data)
    run_id = queue.start_run(reg, TINY, os.getpid())
    watcher = CountingWatcher(tiny_data.test, tiny_data.mean, tiny_data.std, every_s=0.0)  # every step
    record = Recorder(reg, run_id, os.getpid())
    watched = train(TINY, (EventCallback(record), WatchCallback(record, watcher)), data=tiny_data)
    steps = 2 * (400 // 50)
    assert watcher.looks == steps + 2  # every step and every epoch's end
    before, after = plain.model.state_dict(), watched.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and batch-norm statistics
    assert [e.val_acc for e in plain.history] == [e.val_acc for e in watched.history]
    row = WatchRow.from_dict(reg.live().watches[run_id])
    assert row is not None and row.labels == tuple(range(10)) and row.step == steps and row.epoch == 2
    assert not row.calibrated and len(row.preds) == 10
    # The control: a careless look (training mode) does change the run, so the comparison above can fail.
    careless = train(TINY, (LooksInTrainMode(tiny_data.test.images[:10]),), data=tiny_data)
    assert not all(torch.equal(before[k], careless.model.state_dict()[k]) for k in before)


# -- the loss points --------------------------------------------------------------------------------------------
def _steps(n: int, every_s: float, per_epoch: int) -> list[StepInfo]:
    return [
        StepInfo(epoch=1 + (s - 1) // per_epoch, step=s, total_steps=n, loss=float(s % 7), lr=1e-3,
                 images_per_s=100.0, eta_s=0.0, elapsed_s=s * every_s)
        for s in range(1, n + 1)
    ]  # fmt: skip


def _feed(reg: Registry, run_id: int, steps: list[StepInfo], **kwargs) -> EventCallback:
    callback = EventCallback(Recorder(reg, run_id, os.getpid()), **kwargs)
    callback.on_train_start(TrainConfig(epochs=steps[-1].epoch), steps[-1].total_steps, 1000, "cpu")
    for info in steps:
        callback.on_step(info)
    return callback


def test_a_point_about_every_second_with_the_mean_loss_since_the_last(reg: Registry) -> None:
    run_id = queue.start_run(reg, TINY, os.getpid())
    steps = _steps(40, 0.3, per_epoch=20)  # 12 s of training, a step every 0.3 s
    _feed(reg, run_id, steps)
    got = points.points(reg, run_id)
    assert got[0]["step"] == 1 and got[-1]["step"] == 40  # from the first step, and the last one
    gaps = np.diff([p["elapsed_s"] for p in got[:-1]])
    assert np.all(gaps >= 1.0 - 1e-9) and np.all(gaps <= 1.2 + 1e-9)  # every ~1 s (4 steps of 0.3 s)
    second = got[1]  # steps 2..5: the mean of their losses
    assert second["step"] == 5 and second["loss"] == pytest.approx(np.mean([s % 7 for s in range(2, 6)]))
    assert [p["at_epoch"] for p in got[:2]] == [pytest.approx(1 / 20), pytest.approx(5 / 20)]
    assert got[-1]["at_epoch"] == pytest.approx(2.0) and got[-1]["epoch"] == 2
    assert reg.get_run(run_id).progress["points"] == len(got)  # a page redraws the curve when this moves


def test_a_long_run_keeps_at_most_the_cap_evenly_spaced(reg: Registry) -> None:
    run_id = queue.start_run(reg, TINY, os.getpid())
    steps = _steps(4000, 0.5, per_epoch=400)  # 2,000 s: 2,000 points at one a second without the cap
    callback = _feed(reg, run_id, steps, keep_points=50)
    got = points.points(reg, run_id)
    assert 25 <= len(got) <= 50
    assert got[0]["step"] == 1 and got[-1]["step"] == 4000
    gaps = np.diff([p["elapsed_s"] for p in got[:-1]])
    assert gaps.max() <= 2.01 * gaps.min()  # thinned and slowed down alike: the curve stays even
    assert callback.point_every_s >= 32  # it slowed down as it thinned
    assert gaps.min() >= 30  # every point covers the whole run, not the last minute of it


# -- figures and HTML -------------------------------------------------------------------------------------------
EPOCHS = [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, "train_acc": 0.6, "val_acc": 0.7}]
POINTS = [{"step": s, "epoch": 1 + (s > 10), "at_epoch": s / 10, "loss": 2.0 / s, "lr": 1e-3, "elapsed_s": s}
          for s in range(1, 16)]  # fmt: skip


def test_the_live_curve_draws_the_points_in_epochs_under_the_epoch_curves() -> None:
    fig = learning.live_curves_figure(EPOCHS, POINTS)
    names = [t.name for t in fig.data]
    assert names.count("training, every second") == 1
    (steps,) = [t for t in fig.data if t.name == "training, every second"]
    assert list(steps.x) == [s / 10 for s in range(1, 16)] and steps.xaxis == "x" and steps.yaxis == "y"
    assert steps.legendgroup == "train" and steps.showlegend is False  # toggled with the training curve
    assert "validation" in names  # the per-epoch validation accuracy is still there
    assert fig.layout.xaxis.range[1] >= 1.5
    early = learning.live_curves_figure([], POINTS[:3])  # before the first epoch: a curve already
    assert len([t for t in early.data if t.name == "training, every second"]) == 1
    assert early.layout.xaxis.range == (0, pytest.approx(1.02))


def test_at_most_so_many_points_are_drawn_and_the_newest_always() -> None:
    many = [{"at_epoch": i / 100, "loss": 1.0} for i in range(2000)]
    drawn = learning.drawn_points(many, most=600)
    assert len(drawn) <= 600 and drawn[0] is many[0] and drawn[-1] is many[-1]
    assert learning.drawn_points(POINTS) == POINTS and learning.drawn_points([]) == []


ROW = WatchRow(
    indices=tuple(range(10)), labels=tuple(range(10)), preds=(0, 1, 2, 3, 4, 5, 6, 7, 8, 4),
    probs=(0.9,) * 9 + (0.55,), step=120, epoch=1.5,
)  # fmt: skip


def test_the_digit_row_marks_right_and_wrong_answers() -> None:
    uris = [f"data:image/png;base64,AAA{i}" for i in range(10)]
    html = learning.digit_row_html(ROW, [str(i) for i in range(10)], uris)
    assert html.count('class="vd-watch-digit vd-right"') == 9 and html.count('class="vd-watch-digit vd-wrong"') == 1
    assert 'aria-label="a 9, read as 4 (55%)"' in html and "image-rendering:pixelated" in html
    assert all(uri in html for uri in uris)
    assert learning.RIGHT_COLOR in html and learning.WRONG_COLOR in html
    names = ["<b>T-shirt</b>"] * 10  # class names are escaped
    assert "<b>T-shirt</b>" not in learning.digit_row_html(ROW, names)
    assert learning.digit_row_html(ROW, names).count("&lt;b&gt;T-shirt&lt;/b&gt;") >= 10


def test_captions_say_when_how_many_right_and_what_the_percentages_are() -> None:
    assert learning.watch_caption(ROW).startswith("After 1.5 epochs: 9 of 10 right; raw probabilities")
    done = WatchRow(**{**ROW.__dict__, "epoch": 3.0, "calibrated": True})
    assert learning.watch_caption(done).startswith("After 3 epochs: 9 of 10 right; calibrated")
    assert WatchRow.from_dict(ROW.to_dict()) == ROW
    assert WatchRow.from_dict({"indices": [1], "labels": [1, 2], "preds": [1], "probs": [0.5]}) is None
    assert WatchRow.from_dict(None) is None and WatchRow.from_dict({"indices": "x"}) is None


def test_why_the_vit_needs_more_epochs_is_a_few_plain_sentences() -> None:
    text = learning.why_more_epochs()
    assert 2 <= len(re.findall(r"[.?!](\s|$)", text)) <= 4
    assert "convolution" in text and "position embeddings" in text and "fast demo" in text
