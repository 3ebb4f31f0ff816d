"""bf16 autocast on a CPU is decided per family from the processor's units and the measured table, never blindly."""

from __future__ import annotations

import pytest
import torch

from vitdemo.config import CNNConfig, TrainConfig, ViTConfig
from vitdemo.training import cpu_speed
from vitdemo.training.loop import make_learner, train_step

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    ("flags", "cnn", "vit"),
    [
        (frozenset({"avx2", "fma"}), False, False),  # a laptop without bf16 units: float32 for every family
        (frozenset({"avx512f", "amx_bf16", "amx_tile"}), True, False),  # AMX: the CNN measured faster, the ViT slower
        (frozenset(), False, False),  # no /proc/cpuinfo (macOS, Windows): nothing is assumed
    ],
)
def test_cpu_autocast_follows_the_units_and_the_measured_table(monkeypatch, flags, cnn: bool, vit: bool) -> None:
    monkeypatch.setattr(cpu_speed, "cpu_flags", lambda: flags)
    assert cpu_speed.autocast_on(CPU, "cnn", True) is cnn and cpu_speed.autocast_on(CPU, "vit", True) is vit
    assert not cpu_speed.autocast_on(CPU, "cnn", False)  # --no-amp always wins
    assert cpu_speed.autocast_on(CUDA, "vit", True) and not cpu_speed.autocast_on(CUDA, "cnn", False)
    assert cpu_speed.cpu_features() == (
        {} if not flags else {"AVX-512": "avx512f" in flags, "AVX-512 BF16": False, "AMX bf16": "amx_bf16" in flags}
    )


def test_a_cpu_step_under_bf16_autocast_trains(monkeypatch) -> None:
    """Where the table turns autocast on, the step runs (any CPU emulates bf16) and its loss stays float32."""
    monkeypatch.setattr(cpu_speed, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    torch.manual_seed(0)
    for model, autocast in ((CNNConfig(width=4, depth=1), True), (ViTConfig(patch_size=14, embed_dim=8, depth=1,
                                                                            num_heads=1), False)):  # fmt: skip
        config = TrainConfig(model=model, batch_size=8, device="cpu", augment=0)
        learner = make_learner(config, CPU, 0.1307, 0.3081)
        images = torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8)
        loss, logits = train_step(learner, images, torch.arange(8), 1e-3)
        assert torch.isfinite(loss) and loss.dtype == torch.float32
        assert (logits.dtype == torch.bfloat16) is autocast  # the CNN's forward ran in bf16, the ViT's did not


def test_a_cnn_trains_channels_last_on_a_cpu_and_saves_an_ordinary_checkpoint(tmp_path) -> None:
    from vitdemo.checkpoints import load_checkpoint, make_meta, save_checkpoint

    assert cpu_speed.channels_last_on(CPU, "cnn") and not cpu_speed.channels_last_on(CPU, "vit")
    assert not cpu_speed.channels_last_on(CUDA, "cnn")  # not measured there: left as it was
    torch.manual_seed(0)
    config = TrainConfig(model=CNNConfig(width=4, depth=2), batch_size=8, device="cpu", augment=0)
    learner = make_learner(config, CPU, 0.1307, 0.3081)
    conv = learner.model.stages[1][0][0].weight  # (8, 4, 3, 3)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    loss, _ = train_step(learner, torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8), torch.arange(8), 1e-3)
    assert torch.isfinite(loss)
    path = save_checkpoint(tmp_path / "cnn.safetensors", learner.model, make_meta(config.model, "mnist"))
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(load_checkpoint(path).model(x), learner.model.eval()(x), atol=1e-5)
