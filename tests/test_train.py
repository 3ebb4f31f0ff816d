import pytest
import torch

from vitdemo.config import CNNConfig, TrainConfig, ViTConfig
from vitdemo.data import load_dataset
from vitdemo.train import Callback, EpochInfo, StepInfo, lr_at, resolve_device, train

TINY_VIT = ViTConfig(patch_size=7, embed_dim=32, depth=2, num_heads=2)


@pytest.fixture(scope="module")
def small_mnist(data_dir: str):
    return load_dataset("mnist", data_dir, val_size=500, seed=0, train_subset=2000)


class Recorder(Callback):
    def __init__(self) -> None:
        self.steps: list[StepInfo] = []
        self.epochs: list[EpochInfo] = []

    def on_step(self, info: StepInfo) -> None:
        self.steps.append(info)

    def on_epoch(self, info: EpochInfo) -> None:
        self.epochs.append(info)


def test_lr_schedule_warms_up_then_decays() -> None:
    lrs = [lr_at(s, 100, 10, 1.0, "cosine") for s in range(100)]
    assert lrs[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10], strict=True))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] < 0.01
    one = [lr_at(s, 100, 10, 1.0, "onecycle") for s in range(100)]
    assert one[0] == pytest.approx(1 / 25 + (1 - 1 / 25) / 10)
    assert one[-1] < 0.02


def test_same_seed_same_losses_on_cpu(small_mnist) -> None:
    config = TrainConfig(model=TINY_VIT, epochs=1, batch_size=128, device="cpu", seed=3, augment=1.0)
    runs = []
    for _ in range(2):
        rec = Recorder()
        train(config, [rec], data=small_mnist, evaluate_test=False)
        runs.append([s.loss for s in rec.steps])
    assert runs[0] == runs[1]
    rec = Recorder()
    train(TrainConfig(**{**config.__dict__, "seed": 4}), [rec], data=small_mnist, evaluate_test=False)
    assert [s.loss for s in rec.steps] != runs[0]


def test_cnn_learns_and_reports_progress(small_mnist) -> None:
    config = TrainConfig(model=CNNConfig(width=8), epochs=2, batch_size=100, lr=4e-3, device="cpu", augment=0.5)
    rec = Recorder()
    result = train(config, [rec], data=small_mnist)
    assert len(rec.epochs) == 2 and len(rec.steps) == 2 * 20
    assert rec.steps[-1].step == rec.steps[-1].total_steps == 40
    assert rec.steps[-1].eta_s == pytest.approx(0.0, abs=1e-6)
    assert rec.epochs[-1].val_acc > 0.85  # 2000 images, 2 epochs: far above chance
    assert result.test_acc is not None and result.test_acc > 0.85
    assert result.test_preds.shape == (10000,)
    assert result.val_acc == max(e.val_acc for e in rec.epochs)
    assert next(result.model.parameters()).device.type == "cpu" and not result.model.training


def test_stop_request_cancels_between_steps(small_mnist) -> None:
    rec = Recorder()
    config = TrainConfig(model=TINY_VIT, epochs=3, batch_size=100, device="cpu")
    result = train(config, [rec], data=small_mnist, should_stop=lambda: len(rec.steps) >= 5)
    assert result.cancelled
    assert len(rec.steps) == 5 and rec.epochs == []
    assert result.test_acc is None


def test_keep_last_vs_best(small_mnist) -> None:
    config = TrainConfig(model=TINY_VIT, epochs=2, batch_size=200, device="cpu", keep="last")
    result = train(config, data=small_mnist, evaluate_test=False)
    assert result.best_epoch == 2 and result.val_acc == result.history[-1].val_acc


def test_cuda_request_without_gpu_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="no CUDA"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"
