"""Admission: what a run will cost before it starts (parameters, memory, time on the device that will train it).

Plain Python (no Streamlit; torch only inside the throughput probe), so the queue (`vitdemo.runs.queue.submit`
checks the limits of `vitdemo.runs.limits` and the device's memory) and the Train page (shows the estimate
before a run starts) share every rule. The device is the executor's (vitdemo.runs.executor.Device: its memory,
the threads a run gets there), not necessarily the web server's.

Time estimate: a run costs `train_flops_per_image` (forward + backward multiply-adds, counted from the config)
per training image and a third of that per validation and test image. The device's speed is measured, not
guessed: a few real training steps of the run's own model (when they take under PROBE_MAX_STEP_S), else of a
small reference model of the same kind, whose FLOP rate is then applied to the run's FLOPs. Measurements are
cached per model config, batch size and device for the life of the process. A scikit-learn baseline is not
probed: its time comes from measured constants (CLASSIC_FULL_S); a pretrain run adds its pretraining, at the
trainer's measured speed times PRETRAIN_SPEED. A label budget trains on its labels only, and the class's epoch
limit counts its epochs as the passes over the training set they add up to (`counted_epochs`).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vitdemo import families
from vitdemo.config import ModelConfig, TrainConfig
from vitdemo.runconfig import ClassicRun, PretrainRun, RunConfig
from vitdemo.runs.executor import Device, device_of

TRAIN_IMAGES = 60_000  # both datasets
TEST_IMAGES = 10_000
STARTUP_S = 4.0  # a run's child process: start Python, import torch, load the data (measured: 3-5 s on CPU)
PROBE_MAX_STEP_S = 0.25  # a probe step of the run's own model is predicted to take at most this
PROBE_MIN_BATCH = 8  # below this a step is all overhead: a model too big for it is scaled from the reference
PROBE_BATCH = 64  # the reference models' batch
PROBE_WARMUP, PROBE_STEPS = 2, 3
THREAD_SCALING = 0.75  # the probe runs on the web server's one thread: n training threads give n**0.75 times that
# Pretraining's speed as a multiple of the trainer's on the same model and batch size (images per second, one
# thread; pretraining at batch 256, the trainer at 64; measured on the 2-core development machine): MAE encodes a quarter of the patches (1,215
# vs 782 images/s for the default ViT), SimCLR passes two views through the CNN and a projector (913 vs 2,530).
PRETRAIN_SPEED = {"mae": 1.55, "simclr": 0.36}
# Seconds a scikit-learn baseline's run takes on the full 55,000 training images, from its start to its result:
# loading the data, the fit, scoring the 5,000 validation and 10,000 test images, saving (`python -m vitdemo
# classic`, defaults of ClassicConfig, one thread, on the 2-core development machine while other work shared it:
# load about 4). Smaller subsets are scaled linearly: SVM fits grow faster than linearly, so their estimate is on
# the safe side. The run's process start is STARTUP_S, as for a training.
CLASSIC_FULL_S = {"logreg": 12.0, "knn": 7.0, "svm": 77.0, "forest": 15.0}
CLASSIC_FULL_IMAGES = 55_000


# -- sizes -------------------------------------------------------------------------------------------------
def estimate_parameters(model: ModelConfig) -> int:
    """Trainable parameters of `build_model(model)`, from its family's count (no model is built where it has one)."""
    return families.parameters(model)


def forward_macs(model: ModelConfig) -> int:
    """Multiply-adds of one image's forward pass (matrix products and convolutions only)."""
    return families.forward_macs(model)


def train_flops_per_image(model: ModelConfig) -> float:
    """Forward and backward (about twice the forward) in FLOPs: 3 passes of 2 FLOPs per multiply-add."""
    return families.train_flops_per_image(model)


READ_NUMBERS_PER_DIGIT = 0.25  # vitdemo.numbers.train.NUMBERS_PER_DIGIT (that module imports torch)


def train_images(config: TrainConfig | ClassicRun) -> int:
    """The labelled images a run trains on per epoch: the training split (or its quick subset), or the run's
    label budget when it has one."""
    available = max(TRAIN_IMAGES - config.val_size, 0)
    images = min(config.train_subset, available) if config.train_subset else available
    labels = getattr(config, "labels", 0)
    if getattr(config, "task", "classify") == "read":  # a reader's epoch: numbers written from its digits
        return max(1, int(images * READ_NUMBERS_PER_DIGIT))
    return min(labels, images) if labels else images


# -- time -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TimeEstimate:
    seconds: float
    images_per_s: float  # training throughput on the device
    device: str
    how: str  # "measured" (the run's own model was timed), "scaled" (from the reference model's FLOP rate) or
    # "constant" (a classic baseline: from the measured times in CLASSIC_FULL_S)

    @property
    def minutes(self) -> float:
        return self.seconds / 60


def classic_seconds(config: ClassicRun) -> float:
    """A scikit-learn baseline's time on the CPU, from the measured full-data times (CLASSIC_FULL_S)."""
    return STARTUP_S + CLASSIC_FULL_S[config.model.kind] * train_images(config) / CLASSIC_FULL_IMAGES


def pretrain_seconds(config: PretrainRun, train_images_per_s: float) -> float:
    """The pretraining phase of a PretrainRun: every unlabelled training image, every pretraining epoch, at the
    trainer's speed on the same model times PRETRAIN_SPEED."""
    images = train_images(dataclasses.replace(config.train, labels=0))
    return images * config.pretrain.epochs / (train_images_per_s * PRETRAIN_SPEED[config.method])


def run_seconds(config: TrainConfig, images_per_s: float) -> float:
    """Start-up, every epoch's training and validation, then the test set and the calibration pass."""
    evaluated = config.val_size * (config.epochs + 1) + TEST_IMAGES
    return STARTUP_S + train_images(config) * config.epochs / images_per_s + evaluated / (3 * images_per_s)


Probe = Callable[[ModelConfig, int, str], float]  # (model, batch size, device) -> training images per second


def probe_throughput(model: ModelConfig, batch_size: int, device: str) -> float:
    """Training images per second of `model` on `device`: PROBE_WARMUP steps, then PROBE_STEPS timed ones,
    through the trainer's own step (`vitdemo.training.loop.train_step`) on random images. Threads: this process's."""
    import torch

    from vitdemo.data import normalization
    from vitdemo.training.loop import make_learner, train_step

    model = families.get(model.kind).probe_config(model)  # e.g. a transfer net with random weights: reads no file
    config = TrainConfig(model=model, batch_size=batch_size, device=device)
    dev = torch.device(device)
    generator = torch.Generator(device="cpu").manual_seed(0)
    mean, std = normalization(config.dataset)
    learner = make_learner(config, dev, mean, std)
    images = torch.randint(0, 256, (batch_size, 28, 28), dtype=torch.uint8, generator=generator).to(dev)  # (B, 28, 28)
    labels = torch.randint(0, model.num_classes, (batch_size,), generator=generator).to(dev)  # (B,)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(PROBE_WARMUP):  # the first steps allocate and pick kernels
        train_step(learner, images, labels, config.lr)
    sync()
    t0 = time.perf_counter()
    for _ in range(PROBE_STEPS):
        train_step(learner, images, labels, config.lr)
    sync()
    return PROBE_STEPS * batch_size / max(time.perf_counter() - t0, 1e-9)


class Estimator:
    """Training-time estimates for one process, from probes cached per (model, batch, device)."""

    def __init__(self, probe: Probe = probe_throughput, *, threads: int | None = None) -> None:
        self.probe = probe
        self.threads = threads if threads is not None else _training_threads()
        self._rates: dict[tuple[ModelConfig, int, str], float] = {}
        self._lock = threading.Lock()  # one probe at a time: sessions asking at once wait for the first answer

    def _measured(self, model: ModelConfig, batch: int, device: str) -> float:
        key = (model, batch, device)
        with self._lock:
            if key not in self._rates:
                self._rates[key] = self.probe(model, batch, device)
            return self._rates[key]

    def images_per_s(self, config: TrainConfig, device: str) -> tuple[float, str]:
        """(training images/s of `config` on `device`, "measured" or "scaled")."""
        family = families.get(config.model.kind)
        reference = family.reference_for(config.model) if family.reference_for else family.reference
        flop_rate = self._measured(reference, PROBE_BATCH, device) * train_flops_per_image(reference)
        flops = train_flops_per_image(config.model)
        batch = max(1, min(config.batch_size, train_images(config) or 1))
        affordable = int(PROBE_MAX_STEP_S * flop_rate / flops)  # the largest batch whose probe step is quick
        if affordable >= min(batch, PROBE_MIN_BATCH):
            rate, how = self._measured(config.model, min(batch, affordable), device), "measured"
        else:
            rate, how = flop_rate / flops, "scaled"
        if device == "cpu":
            rate *= self.threads**THREAD_SCALING
        return rate, how

    def estimate(self, config: RunConfig, device: str) -> TimeEstimate:
        """The run's time on `device`: a training from its measured (or scaled) speed; a classic baseline from
        the measured constants (no probe); a pretrain run's pretraining phase, then its fine-tune."""
        if isinstance(config, ClassicRun):
            return TimeEstimate(classic_seconds(config), 0.0, "cpu", "constant")
        train = config.train if isinstance(config, PretrainRun) else config
        rate, how = self.images_per_s(train, device)
        seconds = run_seconds(train, rate)
        if isinstance(config, PretrainRun):  # at the pretraining's batch size, over every training image
            batch = dataclasses.replace(train, batch_size=config.pretrain.batch_size, labels=0)
            seconds += pretrain_seconds(config, self.images_per_s(batch, device)[0])
        return TimeEstimate(seconds, rate, device, how)


def _training_threads() -> int:
    """The torch threads a training child on this machine will use ($VITDEMO_THREADS, else every core)."""
    from vitdemo.threads import thread_count  # imports torch: only when an estimate is first asked for

    return thread_count()


_default: dict[int | None, Estimator] = {}


def default_estimator(threads: int | None = None) -> Estimator:
    """The process's estimator for a training that gets `threads` CPU threads (the executor's device says how
    many; None: this machine's), created on first use, so importing this module loads no torch."""
    if threads not in _default:
        _default[threads] = Estimator(threads=threads)
    return _default[threads]


def device_memory_bytes(device: str, offered: Sequence[Device]) -> int | None:
    """Memory a run on `device` ('cpu', 'cuda') may use, as the executor describes its devices: the machine's
    RAM for the CPU, a GPU's own (the smallest, when several may take the run); None when unknown."""
    chosen = device_of(offered, device.split(":", 1)[0])
    return None if chosen is None else chosen.memory_bytes


@dataclass(frozen=True)
class Estimate:
    """What a run will cost, before it starts. Memory is a rough upper bound for float32 training."""

    num_params: int
    train_images: int
    steps_per_epoch: int
    total_steps: int
    weights_bytes: int  # parameters + gradients + AdamW's two moments
    activations_bytes: int  # what one training batch keeps for the backward pass
    data_bytes: int  # the uint8 images on the training device

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.activations_bytes + self.data_bytes

    def to_dict(self) -> dict[str, int]:
        return {**dataclasses.asdict(self), "total_bytes": self.total_bytes}


def estimate(config: TrainConfig) -> Estimate:
    """Parameters, steps and memory of `config` (validated first); a label budget trains on its labels only."""
    config.validate()
    n_params = estimate_parameters(config.model)
    images = train_images(config)
    steps = -(-images // config.batch_size)  # ceil
    batch = min(config.batch_size, max(images, 1))
    return Estimate(
        num_params=n_params,
        train_images=images,
        steps_per_epoch=steps,
        total_steps=steps * config.epochs,
        weights_bytes=4 * 4 * n_params,
        activations_bytes=4 * batch * families.activation_floats(config.model),
        data_bytes=(60_000 + 10_000) * 28 * 28,
    )
