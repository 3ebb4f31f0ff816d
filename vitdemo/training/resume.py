"""Resume files: everything a training needs to go on from the end of an epoch, as if it had never stopped.

At every epoch end a run writes `run-<id>.resume.safetensors` next to its checkpoint (`vitdemo.training.loop.train`,
`state_path`): the model's weights, the optimizer's state (AdamW moments and step counts), the kept best weights,
and the RNG states (torch's, the trainer's shuffling/augmentation generator, CUDA's, numpy's) as tensors; the
TrainConfig, the epoch and step reached, the curves so far, the best epoch and the optimizer's settings as JSON in
the safetensors header. Nothing is pickled. The file is written atomically (a temporary, then a rename).

A run started with `TrainConfig.resume` set to such a file continues from it (`train` checks that every setting
that shapes the training is the same; the device, `compile`, `amp`, `name` and `epochs` may change). With the same
`epochs`, the result is the one the uninterrupted run would have had: the same data order, augmentation, dropout
and learning rates (tests/test_resume.py checks the weights are equal).

Extending (`epochs` larger than the run's): the learning-rate schedule becomes that of a run started with the new
number of epochs. The steps already taken keep the rates they had; the remaining ones follow the longer schedule
from the step reached. For "cosine" that means the rate jumps up to where the longer cosine is at that step
(a warm restart when the run had finished, its rate near 0) and then decays to 0 at the new last epoch; "onecycle"
likewise; "constant" is unchanged. Warm-up is not repeated.

Reading the header (`read_header`, `resume_config`) needs no torch: the queue and the CLI look at a file cheaply.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vitdemo import runfiles
from vitdemo.config import ConfigError, TrainConfig

if TYPE_CHECKING:
    import torch

    from vitdemo.training.learner import Learner

FORMAT = "vitdemo-resume"
FORMAT_VERSION = 1
HEADER_KEY = "vitdemo-resume"
SUFFIX = runfiles.RESUME
# Settings a resumed run may change: where and how fast it runs, its name, and how long it trains.
MAY_CHANGE = frozenset({"epochs", "name", "resume", "device", "compile", "amp"})
MAX_HEADER_BYTES = 64 * 1024 * 1024


class ResumeError(ValueError):
    """A resume file is missing, damaged or does not fit the run; the message says which and what to do."""


def state_path(checkpoint_dir: str | os.PathLike, run_id: int) -> Path:
    """Where run `run_id` keeps its resume state: next to its checkpoint `run-<id>.safetensors`."""
    return runfiles.path(checkpoint_dir, run_id, runfiles.RESUME)


def _tmp_prefix(path: Path) -> str:
    """`.run-<id>.safetensors.resume.`: the worker's leftover sweep (vitdemo.runs.worker) then knows whose
    temporary it is and leaves it alone while that run is running (names: vitdemo.runfiles)."""
    return runfiles.tmp_prefix(path)


@dataclass
class ResumeState:
    """One saved moment of a training: the end of epoch `epoch`, after `step` optimizer steps."""

    config: TrainConfig
    epoch: int  # epochs finished
    step: int  # optimizer steps taken
    steps_per_epoch: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]  # torch's optimizer state_dict
    rng: dict[str, torch.Tensor]  # "torch", "generator", "cuda.<i>" (uint8 states), "numpy" (int64 keys)
    numpy_rng: dict[str, Any]  # the rest of numpy's legacy RNG state: pos, has_gauss, cached_gaussian
    history: list[dict[str, float]] = field(default_factory=list)  # EpochInfo.to_dict() of every finished epoch
    best_epoch: int = 0  # KeepBest: 0 when nothing is kept
    best_acc: float = float("-inf")
    best: dict[str, torch.Tensor] | None = None
    elapsed_s: float = 0.0  # training time of the epochs so far


# --- the optimizer's state, flattened: tensors by name, the rest as JSON ------------------------------------
def flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """torch optimizer state_dict -> ({"optim.<param>.<name>": tensor}, JSON-able description)."""
    import torch

    tensors: dict[str, torch.Tensor] = {}
    state: dict[str, dict[str, Any]] = {}
    for index, entry in state_dict["state"].items():
        described = {}
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                key = f"optim.{index}.{name}"
                tensors[key] = value.detach().cpu().contiguous()
                described[name] = {"tensor": key}
            else:
                described[name] = {"value": value}
        state[str(index)] = described
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state_dict["param_groups"]]
    return tensors, {"state": state, "param_groups": groups}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], described: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `flatten_optimizer`: a state_dict for `optimizer.load_state_dict`."""
    state = {}
    for index, entry in described["state"].items():
        state[int(index)] = {name: tensors[v["tensor"]] if "tensor" in v else v["value"] for name, v in entry.items()}
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in described["param_groups"]]
    return {"state": state, "param_groups": groups}


# --- writing and reading -----------------------------------------------------------------------------------
def save_state(path: str | os.PathLike, state: ResumeState) -> Path:
    """Write the state atomically; returns the path."""
    from safetensors.torch import save_file

    from vitdemo.checkpoints import write_atomically

    path = Path(path)
    optim_tensors, optim_json = flatten_optimizer(state.optimizer)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in state.model.items()}
    tensors |= {f"best.{k}": v.detach().cpu().contiguous() for k, v in (state.best or {}).items()}
    tensors |= {f"rng.{k}": v.detach().cpu().contiguous() for k, v in state.rng.items()}
    tensors |= optim_tensors
    header = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": state.config.to_dict(),
        "epoch": state.epoch,
        "step": state.step,
        "steps_per_epoch": state.steps_per_epoch,
        "history": state.history,
        "best_epoch": state.best_epoch,
        "best_acc": state.best_acc if state.best is not None else None,
        "elapsed_s": state.elapsed_s,
        "optimizer": optim_json,
        "numpy_rng": state.numpy_rng,
    }
    metadata = {HEADER_KEY: json.dumps(header, sort_keys=True)}
    return write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=metadata), _tmp_prefix(path))


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON header of a resume file, checked for its format tag; reads no tensor and needs no torch."""
    path = Path(path)
    if not path.is_file():
        raise ResumeError(f"resume file not found: {path.name} (the run saves one at the end of each epoch)")
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > MAX_HEADER_BYTES:
                raise ValueError("header too large")
            index = json.loads(f.read(n))
        header = json.loads(index["__metadata__"][HEADER_KEY])
    except (OSError, struct.error, ValueError, KeyError, TypeError) as exc:
        raise ResumeError(f"{path.name} is not a vitdemo resume file ({type(exc).__name__})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ResumeError(f"{path.name} is not a vitdemo resume file (no resume format tag)")
    if int(header.get("version", 0)) > FORMAT_VERSION:
        raise ResumeError(f"{path.name} has resume format {header['version']}, newer than this vitdemo")
    return header


def _config_of(path: Path, header: dict[str, Any]) -> TrainConfig:
    try:
        config = TrainConfig.from_dict(header["config"])
        config.validate()
    except (ConfigError, KeyError, TypeError) as exc:
        raise ResumeError(f"{path.name} holds a training config this vitdemo cannot use ({exc})") from exc
    return config


def load_state(path: str | os.PathLike) -> ResumeState:
    """Read a resume file (tensors on the CPU). ResumeError for a missing or damaged file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    header = read_header(path)
    config = _config_of(path, header)
    try:
        tensors = load_file(str(path), device="cpu")
        optimizer = unflatten_optimizer(tensors, header["optimizer"])
    except (SafetensorError, OSError, KeyError, TypeError, ValueError) as exc:
        raise ResumeError(f"{path.name}: its tensors could not be read ({type(exc).__name__}: {exc})") from exc

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    best = part("best.")
    numpy_rng = dict(header.get("numpy_rng") or {})
    return ResumeState(
        config=config,
        epoch=int(header["epoch"]),
        step=int(header["step"]),
        steps_per_epoch=int(header["steps_per_epoch"]),
        model=part("model."),
        optimizer=optimizer,
        rng=part("rng."),
        numpy_rng=numpy_rng,
        history=list(header.get("history") or []),
        best_epoch=int(header.get("best_epoch") or 0),
        best_acc=float(header["best_acc"]) if header.get("best_acc") is not None else float("-inf"),
        best=best or None,
        elapsed_s=float(header.get("elapsed_s") or 0.0),
    )


# --- the loop's state, in and out ------------------------------------------------------------------------
def rng_states(generator: torch.Generator | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every random stream a training reads: torch's (dropout, CPU), CUDA's, the run's generator (shuffling,
    augmentation, styles) and numpy's. Returns the tensors and numpy's scalar parts."""
    import numpy as np
    import torch

    states = {"torch": torch.get_rng_state()}
    if generator is not None:
        states["generator"] = generator.get_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states |= {f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states["numpy"] = torch.from_numpy(keys.astype(np.int64))
    return states, {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def restore_rng(state: ResumeState, generator: torch.Generator | None) -> None:
    import numpy as np
    import torch

    rng = state.rng
    torch.set_rng_state(rng["torch"])
    if generator is not None and "generator" in rng:
        generator.set_state(rng["generator"])
    cuda = [rng[k] for k in sorted((k for k in rng if k.startswith("cuda.")), key=lambda k: int(k[5:]))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)  # on another machine, its GPUs draw their own streams
    if "numpy" in rng and state.numpy_rng:
        n = state.numpy_rng
        keys = rng["numpy"].numpy().astype(np.uint32)
        np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))


def capture_state(
    learner: Learner,
    history: list[dict[str, float]],
    steps_per_epoch: int,
    elapsed_s: float,
    best: tuple[int, float, dict[str, torch.Tensor]] | None = None,
) -> ResumeState:
    """A training's state right after the last epoch in `history` (best: KeepBest's epoch, accuracy, weights)."""
    rng, numpy_rng = rng_states(learner.generator)
    epoch = int(history[-1]["epoch"]) if history else 0
    return ResumeState(
        config=learner.config,
        epoch=epoch,
        step=epoch * steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
        model=learner.model.state_dict(),
        optimizer=learner.optimizer.state_dict(),
        rng=rng,
        numpy_rng=numpy_rng,
        history=history,
        best_epoch=best[0] if best else 0,
        best_acc=best[1] if best else float("-inf"),
        best=best[2] if best else None,
        elapsed_s=elapsed_s,
    )


def apply_state(state: ResumeState, learner: Learner, steps_per_epoch: int) -> None:
    """Load a state's weights, optimizer and RNG streams into a freshly built learner. ResumeError when the
    state does not fit (another model, other training images)."""
    if state.steps_per_epoch != steps_per_epoch:
        raise ResumeError(
            f"the run to resume took {state.steps_per_epoch} steps per epoch and this one would take "
            f"{steps_per_epoch}: its training images are not the same (another data folder or train_subset?)"
        )
    try:
        learner.model.load_state_dict(state.model)
        learner.optimizer.load_state_dict(state.optimizer)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ResumeError(f"the resume file does not fit this model ({' '.join(str(exc).split())[:300]})") from exc
    restore_rng(state, learner.generator)


# --- what a resumed run trains -----------------------------------------------------------------------------
def check_fits(state_config: TrainConfig, config: TrainConfig, epochs_done: int) -> None:
    """A run may continue a state only with the same settings (but MAY_CHANGE) and epochs left to train."""
    saved, wanted = state_config.to_dict(), config.to_dict()
    for key in sorted(set(saved) | set(wanted)):
        if key not in MAY_CHANGE and saved.get(key) != wanted.get(key):
            raise ResumeError(
                f"the run to resume was trained with {key} = {saved.get(key)!r}, not {wanted.get(key)!r}: "
                "a resumed run keeps its settings (only epochs, device, compile, amp and name may change)"
            )
    if config.epochs <= epochs_done:
        raise ResumeError(
            f"the run to resume has already trained {epochs_done} epochs: to train it further, "
            f"ask for more epochs than that (--epochs {epochs_done + 1} or more)"
        )


def resume_config(path: str | os.PathLike, epochs: int | None = None, **changes: Any) -> TrainConfig:
    """The TrainConfig of a run that continues the resume file at `path` (its own settings, `resume` set to the
    file's absolute path), to `epochs` (default: the run's own) with `changes` among MAY_CHANGE. ResumeError when
    there is nothing left to train or a change is not allowed."""
    path = Path(path).expanduser().resolve()
    header = read_header(path)
    saved = _config_of(path, header)
    not_allowed = sorted(set(changes) - MAY_CHANGE)
    if not_allowed:
        raise ResumeError(f"a resumed run keeps its settings: {', '.join(not_allowed)} cannot change")
    config = dataclasses.replace(saved, resume=str(path), epochs=epochs or saved.epochs, **changes)
    check_fits(saved, config, int(header["epoch"]))
    return config


def saved_history(path: str | os.PathLike) -> list[dict[str, float]]:
    """The per-epoch curves a resume file holds (torch-free): a resumed run's record starts with them."""
    return list(read_header(path).get("history") or [])


def still_to_train(config: TrainConfig) -> TrainConfig:
    """What a run has left to train, for its time estimate and the class limits: a resumed run only the epochs
    after the one its resume file saved (its own config names all of them: it goes on from that file). Torch-free;
    a config that resumes nothing, or whose file cannot be read (the run fails with the reason), is all left."""
    if not config.resume:
        return config
    try:
        done = int(read_header(config.resume)["epoch"])
    except (ResumeError, KeyError, TypeError, ValueError):
        return config
    return dataclasses.replace(config, epochs=max(1, config.epochs - done))


def saved_epoch(checkpoint_dir: str | os.PathLike, run_id: int) -> int | None:
    """How many epochs run `run_id` has saved to resume from; None without a readable resume file (torch-free:
    a page can ask it for every finished run to offer "Resume")."""
    try:
        return int(read_header(state_path(checkpoint_dir, run_id))["epoch"])
    except (ResumeError, KeyError, TypeError, ValueError):
        return None
