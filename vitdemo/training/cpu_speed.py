"""What a CPU training step uses, decided per model family from what this processor has and what was measured.

bf16 autocast is a per-model, measured decision, never a flag to flip: on a processor with AMX bf16 units a CNN's
training step was 1.47x faster under bf16 autocast and a ViT's 3x slower (issue 21, measured on the development
machines of that time); on a processor without bf16 units (AVX2 only, as most laptops) autocast emulates bf16 and
every step is slower (`python scripts/cpu_recipe_ablation.py` prints this machine's table). So autocast is on for a
family only where both hold: the processor has bf16 matrix units (probed from /proc/cpuinfo, none elsewhere) and
BF16_STEP_SPEEDUP says the family's step is faster with them. CUDA keeps its own rule (`TrainConfig.amp`).
Channels-last memory is the same kind of decision (`channels_last_on`), measured on any CPU, so not probed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch

# A training step's speed under bf16 autocast relative to float32, on a CPU with AMX bf16 units (issue 21's figures;
# a family not listed is not sped up, so it trains in float32).
BF16_STEP_SPEEDUP: dict[str, float] = {"cnn": 1.47, "vit": 0.33}
WORTH_IT = 1.1  # a speed-up below this is within the noise of these machines: float32 stays
# A training step with channels-last weights and inputs relative to contiguous ones, on a CPU (oneDNN's convolutions
# prefer NHWC): 1.57x for the bench's CNN on the 2-core AVX2 development machine (scripts/cpu_recipe_ablation.py).
# Only convolutional families gain; a ViT has one conv (its patch embedding) and was not measured faster.
CHANNELS_LAST_STEP_SPEEDUP: dict[str, float] = {"cnn": 1.57}


@cache
def cpu_flags() -> frozenset[str]:
    """The processor's feature flags (Linux's /proc/cpuinfo); empty where there is no such file."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((ln for ln in text.splitlines() if ln.startswith(("flags", "Features"))), "")
    return frozenset(line.partition(":")[2].split())


def cpu_features() -> dict[str, bool]:
    """The processor's units that bf16 can use, as the bench reports them (empty when unknown)."""
    flags = cpu_flags()
    if not flags:
        return {}
    return {"AVX-512": "avx512f" in flags, "AVX-512 BF16": "avx512_bf16" in flags, "AMX bf16": "amx_bf16" in flags}


def has_bf16_units() -> bool:
    """True when the CPU computes bf16 in hardware (AMX or AVX-512 BF16) and torch's oneDNN backend can use it."""
    flags = cpu_flags()
    return bool({"amx_bf16", "avx512_bf16"} & flags) and torch.backends.mkldnn.is_available()


def cpu_autocast(kind: str) -> bool:
    """bf16 autocast for a CPU training step of a `kind` model: only where it measured faster and the units exist."""
    return has_bf16_units() and BF16_STEP_SPEEDUP.get(kind, 0.0) >= WORTH_IT


def autocast_on(device: torch.device, kind: str, amp: bool) -> bool:
    """Whether a training step autocasts to bf16: on CUDA when `amp`; on a CPU when `amp` and `cpu_autocast(kind)`."""
    if device.type == "cuda":
        return amp
    return amp and device.type == "cpu" and cpu_autocast(kind)


def channels_last_on(device: torch.device, kind: str) -> bool:
    """Whether a `kind` model trains with channels-last weights and inputs: on a CPU where it measured faster."""
    return device.type == "cpu" and CHANNELS_LAST_STEP_SPEEDUP.get(kind, 0.0) >= WORTH_IT
