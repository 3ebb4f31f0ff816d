import copy
import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from vitdemo.checkpoints import CheckpointError, make_meta, save_checkpoint
from vitdemo.config import MAX_SEED, CNNConfig, ConfigError, LinearConfig, TrainConfig, TransferConfig, ViTConfig
from vitdemo.data import Split, load_dataset
from vitdemo.evaluate import predict_logits, score_model
from vitdemo.models import build_model
from vitdemo.runs.store import Registry
from vitdemo.training import loop
from vitdemo.training.loop import (
    Callback,
    EpochInfo,
    StepInfo,
    init_from_checkpoint,
    labelled_split,
    load_data,
    lr_at,
    make_learner,
    resolve_device,
    train,
    train_step,
    validate,
)

TINY_VIT = ViTConfig(patch_size=7, embed_dim=32, depth=2, num_heads=2)


@pytest.fixture(scope="module")
def small_mnist(data_dir: str):
    return load_dataset("mnist", data_dir, val_size=500, seed=0, train_subset=2000)


class Recorder(Callback):
    def __init__(self) -> None:
        self.steps: list[StepInfo] = []
        self.epochs: list[EpochInfo] = []
        self.states: list[dict[str, torch.Tensor]] = []  # the weights after each epoch

    def on_step(self, info: StepInfo) -> None:
        self.steps.append(info)

    def on_epoch(self, info: EpochInfo) -> None:
        self.epochs.append(info)

    def on_epoch_weights(self, info: EpochInfo, model: nn.Module) -> None:
        assert info.epoch == len(self.states) + 1
        self.states.append(copy.deepcopy(model.state_dict()))


def same_weights(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    mine = model.state_dict()
    return mine.keys() == state.keys() and all(torch.equal(mine[k].cpu(), state[k].cpu()) for k in state)


def test_lr_schedule_warms_up_then_decays() -> None:
    lrs = [lr_at(s, 100, 10, 1.0, "cosine") for s in range(100)]
    assert lrs[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10], strict=True))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] < 0.01
    one = [lr_at(s, 100, 10, 1.0, "onecycle") for s in range(100)]
    assert one[0] == pytest.approx(1 / 25 + (1 - 1 / 25) / 10)
    assert one[-1] < 0.02


def test_train_step_is_one_optimizer_step(small_mnist) -> None:
    torch.manual_seed(0)
    config = TrainConfig(model=CNNConfig(width=4), augment=0, device="cpu")
    learner = make_learner(config, torch.device("cpu"), small_mnist.mean, small_mnist.std)
    images, labels = small_mnist.train.images[:16], small_mnist.train.labels[:16]
    before = copy.deepcopy(learner.model.state_dict())
    loss, logits = train_step(learner, images, labels, lr=0.0)
    assert loss.shape == () and logits.shape == (16, 10) and not loss.requires_grad
    assert learner.optimizer.param_groups[0]["lr"] == 0.0
    weights = [k for k, v in before.items() if v.is_floating_point() and "running" not in k]
    assert all(torch.equal(learner.model.state_dict()[k], before[k]) for k in weights)  # lr 0: nothing moves
    train_step(learner, images, labels, lr=1e-2)
    assert not all(torch.equal(learner.model.state_dict()[k], before[k]) for k in weights)


def test_same_seed_same_losses_on_cpu(small_mnist) -> None:
    config = TrainConfig(model=TINY_VIT, epochs=1, batch_size=128, device="cpu", seed=3, augment=1.0)
    runs = []
    for _ in range(2):
        rec = Recorder()
        train(config, [rec], data=small_mnist)
        runs.append([s.loss for s in rec.steps])
    assert runs[0] == runs[1]
    rec = Recorder()
    train(TrainConfig(**{**config.__dict__, "seed": 4}), [rec], data=small_mnist)
    assert [s.loss for s in rec.steps] != runs[0]


def test_cnn_learns_and_reports_progress(small_mnist) -> None:
    config = TrainConfig(model=CNNConfig(width=8), epochs=2, batch_size=100, lr=4e-3, device="cpu", augment=0.5)
    rec = Recorder()
    result = train(config, [rec], data=small_mnist)
    assert len(rec.epochs) == 2 and len(rec.steps) == 2 * 20
    assert rec.steps[-1].step == rec.steps[-1].total_steps == 40
    assert rec.steps[-1].eta_s == pytest.approx(0.0, abs=1e-6)
    assert rec.epochs[-1].val_acc > 0.85  # 2000 images, 2 epochs: far above chance
    test = score_model(result.model, small_mnist.test, small_mnist.mean, small_mnist.std, num_classes=10)
    assert test.accuracy > 0.85 and test.preds.shape == (10000,)  # train() itself never looks at the test split
    assert result.val_acc == max(e.val_acc for e in rec.epochs) and result.kept == "best"
    assert next(result.model.parameters()).device.type == "cpu" and not result.model.training


def test_stop_request_cancels_between_steps(small_mnist) -> None:
    rec = Recorder()
    config = TrainConfig(model=TINY_VIT, epochs=3, batch_size=100, device="cpu")
    result = train(config, [rec], data=small_mnist, should_stop=lambda: len(rec.steps) >= 5)
    assert result.cancelled
    assert len(rec.steps) == 5 and rec.epochs == []
    assert result.kept == "last" and result.best_epoch == 0  # keep="best", but no epoch finished


# Validation accuracy scripted to peak in the middle, so "best" can be told apart from both the first and the last
# epoch. (A recipe that overshot on purpose, lr 0.2 without clipping, peaked in the middle on one machine and not
# on another: chaotic training is no fixture.) The weights are real: each epoch trains and is snapshotted.
SCRIPTED_VAL_ACC = (0.5, 0.9, 0.7)


@pytest.mark.parametrize("keep", ["best", "last"])
def test_keep_last_vs_best(small_mnist, keep: str, monkeypatch: pytest.MonkeyPatch) -> None:
    scores = iter(SCRIPTED_VAL_ACC)
    monkeypatch.setattr(loop, "validate", lambda *args: (1.0, next(scores)))
    rec = Recorder()
    config = TrainConfig(model=TINY_VIT, epochs=3, batch_size=200, augment=0, device="cpu", keep=keep)
    result = train(config, [rec], data=small_mnist)
    assert [e.val_acc for e in rec.epochs] == list(SCRIPTED_VAL_ACC)
    kept, other = (2, 3) if keep == "best" else (3, 2)
    assert result.kept == keep and result.best_epoch == kept and result.val_acc == SCRIPTED_VAL_ACC[kept - 1]
    assert same_weights(result.model, rec.states[kept - 1])
    assert not same_weights(result.model, rec.states[other - 1])  # the other candidate's weights differ


def test_keep_best_without_validation_images_keeps_the_last_weights(small_mnist) -> None:
    """val_size 0 used to keep epoch 1's weights (every epoch scored 0.0, never better than the first)."""
    empty = Split(small_mnist.val.images[:0], small_mnist.val.labels[:0])
    data = dataclasses.replace(small_mnist, val=empty)
    rec = Recorder()
    config = TrainConfig(model=CNNConfig(width=4), epochs=2, batch_size=200, val_size=0, keep="best", device="cpu")
    result = train(config, [rec], data=data)
    assert result.kept == "last" and result.best_epoch == 2
    assert same_weights(result.model, rec.states[-1]) and not same_weights(result.model, rec.states[0])
    assert all(math.isnan(e.val_loss) for e in result.history)  # nothing to measure, said as NaN, not 0


def test_validation_split_follows_split_seed_not_seed(data_dir) -> None:
    """Runs that differ only in `seed` pick their best epoch on the same validation images."""
    base = TrainConfig(model=CNNConfig(width=4), epochs=1, val_size=500, train_subset=300, device="cpu", keep="last")
    a, b = (load_data(dataclasses.replace(base, seed=s), data_dir) for s in (1, 2))
    assert torch.equal(a.val.images, b.val.images) and torch.equal(a.val.labels, b.val.labels)
    c = load_data(dataclasses.replace(base, split_seed=1), data_dir)
    assert not torch.equal(a.val.labels, c.val.labels)
    # train() without `data` loads by split_seed too: its validation loss is the one on split_seed 0's images
    result = train(dataclasses.replace(base, seed=7), data_dir=str(data_dir))

    def loss_on(split_seed: int) -> float:
        val = load_dataset("mnist", data_dir, val_size=500, seed=split_seed).val
        return score_model(result.model, val, a.mean, a.std, num_classes=10).loss

    assert result.history[-1].val_loss == pytest.approx(loss_on(0), abs=1e-6)
    assert result.history[-1].val_loss != pytest.approx(loss_on(7), abs=1e-6)  # not the seed's images


def test_validation_of_an_empty_split_has_the_models_classes() -> None:
    model = build_model(CNNConfig(width=4, num_classes=7))
    empty = Split(torch.zeros(0, 28, 28, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64))
    assert predict_logits(model, empty, 0.1, 0.3, num_classes=7).shape == (0, 7)
    config = TrainConfig(model=CNNConfig(width=4, num_classes=7), device="cpu")
    loss, acc = validate(model, empty, 0.1, 0.3, config, torch.device("cpu"))
    assert math.isnan(loss) and acc == 0.0


class AutocastProbe(nn.Module):
    """Records, at every forward, whether CUDA autocast is on."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(28 * 28, 10)
        self.seen: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(torch.is_autocast_enabled("cuda"))
        return self.lin(x.flatten(1))  # (B, 10)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_validation_passes_the_runs_amp_flag(device: str) -> None:
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    split = Split(torch.zeros(3, 28, 28, dtype=torch.uint8, device=device), torch.zeros(3, dtype=torch.int64))
    for amp in (True, False):
        probe = AutocastProbe().to(device)
        validate(probe, split, 0.1, 0.3, TrainConfig(amp=amp, device=device), torch.device(device))
        assert probe.seen == [amp and device == "cuda"]  # bf16 autocast only where asked, and only on CUDA


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 10**23, 1.5])
def test_seeds_torch_cannot_take_are_refused(seed) -> None:
    for name in ("seed", "split_seed"):
        with pytest.raises(ConfigError, match=f"{name} must be a whole number from 0 to 2\\*\\*64 - 1"):
            TrainConfig(**{name: seed}).validate()
    TrainConfig(seed=MAX_SEED, split_seed=MAX_SEED).validate()  # the largest seed torch accepts is fine
    torch.Generator().manual_seed(MAX_SEED)


def test_cli_refuses_a_huge_seed_before_queueing_it(tmp_path: Path, data_dir) -> None:
    cmd = [sys.executable, "-m", "vitdemo", "train", "--seed", str(10**23), "--home", str(tmp_path)]
    proc = subprocess.run(cmd + ["--data-dir", str(data_dir)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: seed must be a whole number from 0 to 2**64 - 1 ({MAX_SEED}), got {10**23}"
    assert Registry(tmp_path).list_runs() == []  # nothing was queued


def test_cuda_request_without_gpu_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="no CUDA"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


# --- where a run starts: a label budget, an init checkpoint, a probe ----------------------------------------


class Start(Callback):
    def __init__(self) -> None:
        self.total_steps = 0

    def on_train_start(self, config: TrainConfig, total_steps: int, num_params: int, device: str) -> None:
        self.total_steps = total_steps


def _encoder_file(path: Path, config, seed: int = 1) -> tuple[Path, dict[str, torch.Tensor]]:
    """A checkpoint of a randomly initialised model (standing for a pretrained encoder) and its weights."""
    torch.manual_seed(seed)
    model = build_model(config)
    with torch.no_grad():  # non-trivial batch-norm statistics, so that a copy is told from a fresh model
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    return save_checkpoint(path, model, make_meta(config, "mnist")), state


def test_constant_schedule_holds_the_peak_after_warm_up() -> None:
    lrs = [lr_at(s, 100, 10, 1.0, "constant") for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9:] == [1.0] * 91


def test_a_label_budget_trains_on_a_balanced_seeded_subset(small_mnist) -> None:
    config = TrainConfig(model=CNNConfig(width=4), labels=100, epochs=3, batch_size=30, device="cpu", split_seed=2)
    split = labelled_split(small_mnist.train, config)
    assert len(split) == 100 and torch.bincount(split.labels, minlength=10).tolist() == [10] * 10
    again = labelled_split(small_mnist.train, dataclasses.replace(config, seed=9))  # seed: not which labels
    assert torch.equal(again.images, split.images)
    other = labelled_split(small_mnist.train, dataclasses.replace(config, split_seed=3))
    assert not torch.equal(other.labels, split.labels)
    assert labelled_split(small_mnist.train, dataclasses.replace(config, labels=0)) is small_mnist.train
    start = Start()
    train(config, [start], data=small_mnist)
    assert start.total_steps == 3 * 4  # ceil(100 / 30) batches per epoch: the trainer saw 100 images, not 2000


def test_init_copies_everything_but_the_head(tmp_path: Path) -> None:
    config = CNNConfig(width=4)
    path, encoder = _encoder_file(tmp_path / "enc.safetensors", config)
    torch.manual_seed(0)
    fresh = build_model(config)
    head = {k: v.clone() for k, v in fresh.state_dict().items() if k.startswith("head.")}
    copied = init_from_checkpoint(fresh, path)
    state = fresh.state_dict()
    assert copied and all(not k.startswith("head.") for k in copied)
    assert all(torch.equal(state[k], encoder[k]) for k in copied)  # running statistics included
    assert all(torch.equal(state[k], v) and not torch.equal(v, encoder[k]) for k, v in head.items())


@pytest.mark.parametrize(
    "model, message",
    [
        (CNNConfig(width=8), r"tensor 'stages.0.0.0.weight' is \[4, 1, 3, 3\] there, \[8, 1, 3, 3\] here"),
        (TINY_VIT, "holds a cnn model, not a vit"),
        (LinearConfig(), "has no weights outside its head"),
    ],
)
def test_an_init_that_does_not_fit_is_refused_naming_why(tmp_path: Path, model, message: str) -> None:
    path, _ = _encoder_file(tmp_path / "enc.safetensors", CNNConfig(width=4))
    if model.kind == "linear":
        path, _ = _encoder_file(tmp_path / "lin.safetensors", model)
    with pytest.raises(CheckpointError, match=message):
        init_from_checkpoint(build_model(model), path)


def test_a_probe_trains_only_the_head_from_its_init(small_mnist, tmp_path: Path) -> None:
    config = CNNConfig(width=4)
    path, encoder = _encoder_file(tmp_path / "enc.safetensors", config)
    run = TrainConfig(model=config, init=str(path), probe=True, labels=100, epochs=2, batch_size=50, device="cpu")
    result = train(run, data=small_mnist)
    state = result.model.state_dict()
    body = [k for k in state if not k.startswith("head.")]
    assert all(torch.equal(state[k], encoder[k]) for k in body)  # weights and batch-norm statistics
    assert not torch.equal(state["head.2.weight"], encoder["head.2.weight"])
    assert all(p.requires_grad == n.startswith("head.") for n, p in result.model.named_parameters())
    tuned = train(dataclasses.replace(run, probe=False), data=small_mnist)  # a fine-tune moves the body
    assert not torch.equal(tuned.model.state_dict()["stages.0.0.0.weight"], encoder["stages.0.0.0.weight"])


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"probe": True}, "probe needs init"),
        ({"labels": 5}, "labels must be 0 .all. or at least 10"),
        ({"labels": -1}, "labels must be"),
        ({"weights_path": "/w.pth"}, "weights_path is only for a pretrained transfer model"),
        ({"model": TransferConfig(), "weights_path": "/w.pth", "init": "/c.safetensors"}, "does not start from init"),
        ({"init": "/c.safetensors", "init_method": "imagenet"}, "init_method must be one of"),
        ({"init_method": "supervised"}, "init_method describes init: it needs init"),
    ],
)
def test_bad_starts_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(TrainConfig(), **changes).validate()
    TrainConfig(model=TransferConfig(), probe=True, weights_path="/w.pth").validate()  # ImageNet is a start


def test_hflip_mirrors_digits_only_when_asked(small_mnist, monkeypatch: pytest.MonkeyPatch) -> None:
    import vitdemo.training.loop as train_module

    seen: list[bool] = []
    real = train_module.augment

    def spy(x, strength, generator=None, hflip=False, elastic=0.0):
        seen.append(hflip)
        return real(x, strength, generator, hflip, elastic)

    monkeypatch.setattr(train_module, "augment", spy)
    images, labels = small_mnist.train.images[:8], small_mnist.train.labels[:8]
    for hflip in (False, True):
        config = TrainConfig(model=CNNConfig(width=4), hflip=hflip, device="cpu")
        train_step(make_learner(config, torch.device("cpu"), 0.0, 1.0), images, labels, lr=0.0)
    assert seen == [False, True]


def test_styles_join_each_batch_but_not_its_train_accuracy(small_mnist, monkeypatch) -> None:
    import vitdemo.synth.styles

    monkeypatch.setattr(vitdemo.synth.styles, "POOL_SIZE", 100)
    torch.manual_seed(0)
    config = TrainConfig(model=CNNConfig(width=4), augment=0, device="cpu", styles_ratio=0.25, stroke_aug=1, elastic=1)
    learner = make_learner(config, torch.device("cpu"), small_mnist.mean, small_mnist.std)
    assert learner.styles is not None and len(learner.styles) == 100
    seen = []
    model = learner.model
    learner = dataclasses.replace(learner, forward=lambda x: seen.append(x.shape[0]) or model(x))
    images, labels = small_mnist.train.images[:16], small_mnist.train.labels[:16]
    loss, logits = train_step(learner, images, labels, lr=1e-3)
    assert seen == [20] and logits.shape == (16, 10)  # 16 + 25% styles forward; logits of the batch's own images
    assert make_learner(TrainConfig(model=CNNConfig(width=4)), torch.device("cpu"), 0.0, 1.0).styles is None


def test_a_classifier_of_the_same_dataset_gives_its_head_too(tmp_path: Path) -> None:
    """A fine-tune of a trained MNIST model on MNIST (drawn digits, the class set) keeps its head: before, every
    --init started a random head and the shipped ViT lost 0.3 points of validation accuracy in one epoch."""
    config = CNNConfig(width=4)
    path, trained = _encoder_file(tmp_path / "cnn.safetensors", config)  # saved as a plain MNIST classifier
    copied = init_from_checkpoint(build_model(config), path, dataset="mnist")
    assert {k for k in trained if k.startswith("head.")} <= set(copied)
    fresh = build_model(config)
    copied = init_from_checkpoint(fresh, path, dataset="fashion")  # another dataset's classes: a new head
    assert not any(k.startswith("head.") for k in copied)
    heads = [k for k in trained if k.startswith("head.") and k.endswith("weight")]
    assert heads and not any(torch.equal(fresh.state_dict()[k], trained[k]) for k in heads)
