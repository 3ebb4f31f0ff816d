"""Self-describing checkpoint files: safetensors weights plus a JSON header that rebuilds the model.

Loading never unpickles anything: safetensors holds only raw tensors and a string->string header.
A checkpoint is checked before any model is built: the header (format, dataset, classes, model config),
then the tensor names, shapes and dtypes in the file's index against the model the header describes (built on
the meta device, which allocates nothing), then that every weight is finite.
Files are written atomically (a temporary file in the same folder, then a rename).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn
from torch.overrides import TorchFunctionMode

from vitdemo import families
from vitdemo.config import ConfigError, ModelConfig, model_config_from_dict
from vitdemo.data import DATASET_INFO, class_names, normalization
from vitdemo.families.spec import CLASSIFY, READ
from vitdemo.models import build_model, count_parameters

FORMAT = "vitdemo-checkpoint"
FORMAT_VERSION = 1
HEADER_KEY = "vitdemo"
IMAGE_SIZE = 28  # every dataset vitdemo knows is 28x28 grey
IN_CHANS = 1
TEMPERATURE_RANGE = (0.01, 100.0)
SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or does not match its model; the message says which."""


@dataclass(frozen=True)
class CheckpointMeta:
    model_config: ModelConfig
    dataset: str
    mean: float
    std: float
    classes: tuple[str, ...]
    metrics: dict[str, Any] = field(default_factory=dict)  # val_acc, test_acc, macro_f1, train_time_s, ...
    train_config: dict[str, Any] | None = None
    name: str = ""
    temperature: float = 1.0  # calibrated probabilities are softmax(logits / temperature); see vitdemo.calibration
    task: str = CLASSIFY  # what the model does (its family's task); files from before the field are classifiers
    # a distilled ViT's teacher (vitdemo.training.distill.teacher_identity): setting, file, sha256, name, test_acc
    teacher: dict[str, Any] | None = None

    def to_header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "model_config": self.model_config.__dict__,
            "dataset": self.dataset,
            "mean": self.mean,
            "std": self.std,
            "classes": list(self.classes),
            "metrics": self.metrics,
            "train_config": self.train_config,
            "name": self.name,
            "temperature": self.temperature,
            "task": self.task,
            **({"teacher": self.teacher} if self.teacher else {}),
        }

    @classmethod
    def from_header(cls, header: dict[str, Any]) -> CheckpointMeta:
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CheckpointError("not a vitdemo checkpoint (its header has no vitdemo format tag)")
        if int(header.get("version", 0)) > FORMAT_VERSION:
            raise CheckpointError(f"checkpoint format version {header['version']} is newer than this vitdemo")
        if not isinstance(header["model_config"], dict) or not isinstance(header["classes"], list):
            raise TypeError("model_config must be an object and classes a list")
        model_config = model_config_from_dict(header["model_config"])
        task = header.get("task", CLASSIFY)  # files from before tasks: every one of them is a classifier
        if task != families.task_of(model_config.kind):
            raise CheckpointError(f"its task {task!r} is not what a {model_config.kind} model does")
        return cls(
            model_config=model_config,
            dataset=header["dataset"],
            mean=float(header["mean"]),
            std=float(header["std"]),
            classes=tuple(header["classes"]),
            metrics=dict(header.get("metrics") or {}),
            train_config=header.get("train_config"),
            name=header.get("name", ""),
            temperature=float(header.get("temperature", 1.0)),  # files from before calibration: 1.0
            task=task,
            teacher=header["teacher"] if isinstance(header.get("teacher"), dict) else None,
        )


@dataclass
class LoadedModel:
    model: nn.Module  # eval mode
    meta: CheckpointMeta
    path: Path | None = None

    @property
    def kind(self) -> str:
        return self.meta.model_config.kind

    @property
    def num_params(self) -> int:
        return count_parameters(self.model)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated class probabilities: softmax(logits / T) over the last axis. (..., C) -> (..., C) float32."""
        return torch.softmax(logits.float() / self.meta.temperature, dim=-1)


def make_meta(
    model_config: ModelConfig,
    dataset: str,
    *,
    metrics: dict[str, Any] | None = None,
    train_config: dict[str, Any] | None = None,
    name: str = "",
    temperature: float = 1.0,
    teacher: dict[str, Any] | None = None,
) -> CheckpointMeta:
    mean, std = normalization(dataset)
    classes = class_names(dataset)
    task = families.task_of(model_config.kind)
    return CheckpointMeta(
        model_config, dataset, mean, std, classes, metrics or {}, train_config, name, temperature, task, teacher
    )


# --- checks -------------------------------------------------------------------------------------------------


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise CheckpointError(message)


def _check_field_types(config: ModelConfig) -> None:
    """Every model setting has its default's type (an int is an int, not "28" or true)."""
    for f in dataclasses.fields(config):
        value, default = getattr(config, f.name), f.default
        if isinstance(default, tuple):  # MLP hidden sizes: whole numbers (validate() checks their range)
            ok = isinstance(value, tuple) and all(type(v) is int for v in value)
        elif isinstance(default, (bool, str)):
            ok = type(value) is type(default)
        elif isinstance(default, int):
            ok = type(value) is int
        else:  # float
            ok = type(value) in (int, float) and math.isfinite(value)
        _check(ok, f"its model setting {f.name} = {value!r} is not a valid {type(default).__name__}")


def check_meta(meta: CheckpointMeta) -> None:
    """Raise CheckpointError unless the header describes a model vitdemo can build for a dataset it knows."""
    _check(meta.dataset in DATASET_INFO, f"unknown dataset {meta.dataset!r}: expected one of {', '.join(DATASET_INFO)}")
    expected = class_names(meta.dataset)
    _check(
        meta.classes == expected,
        f"its class names {list(meta.classes)} are not those of {meta.dataset} ({list(expected)})",
    )
    cfg = meta.model_config
    _check_field_types(cfg)
    if meta.task == READ:  # a reader's image is a number's canvas
        from vitdemo.numbers import CANVAS_H, CANVAS_W

        size = (cfg.image_size, getattr(cfg, "canvas_width", None))
        _check(size == (CANVAS_H, CANVAS_W), f"its canvas is {size}; vitdemo readers take {CANVAS_H}x{CANVAS_W}")
    else:
        _check(
            cfg.image_size == IMAGE_SIZE,
            f"image_size is {cfg.image_size}; vitdemo models take {IMAGE_SIZE}x{IMAGE_SIZE}",
        )
    _check(cfg.in_chans == IN_CHANS, f"in_chans is {cfg.in_chans}; vitdemo images have {IN_CHANS} channel")
    _check(
        cfg.num_classes == len(meta.classes),
        f"num_classes is {cfg.num_classes} but {meta.dataset} has {len(meta.classes)} classes",
    )
    try:
        cfg.validate()
    except ConfigError as exc:
        raise CheckpointError(f"its model config is invalid: {exc}") from exc
    _check(math.isfinite(meta.mean) and math.isfinite(meta.std) and meta.std > 0, "its normalisation is invalid")
    lo, hi = TEMPERATURE_RANGE
    _check(
        math.isfinite(meta.temperature) and lo <= meta.temperature <= hi,
        f"its temperature {meta.temperature} is outside [{lo:g}, {hi:g}]",
    )


class _ShapesOnly(TorchFunctionMode):
    """While a model is built on the meta device, skip the work that only fills values.

    Meta tensors have shapes and no data, but in this torch many ops on them (random fills, `x * 0.02`,
    `empty_like`) run through Python reference kernels whose first use imports sympy and torch._dynamo: about
    1-2 s and 130 MB once per process. Random factories become `empty`, value fills return their tensor and
    scalar products a fresh meta tensor of the same shape; every other op runs normally (correct, maybe slow).
    """

    FILLS = frozenset({"normal_", "uniform_", "fill_", "zero_", "erfinv_", "mul_", "add_", "clamp_", "copy_"})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in (torch.randn, torch.rand):
            kwargs.pop("generator", None)
            return torch.empty(*args, **kwargs)
        first = args[0] if args else None
        if isinstance(first, torch.Tensor) and first.is_meta:
            name = getattr(func, "__name__", "")
            if name in self.FILLS:
                return first
            if name in ("mul", "__mul__", "__rmul__") and isinstance(args[1], (int, float)):
                return torch.empty(first.shape, dtype=first.dtype, device="meta")
        return func(*args, **kwargs)


def expected_tensors(config: ModelConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name -> (shape, safetensors dtype) of the state dict `config` builds; built on the meta device (no memory)."""
    with torch.device("meta"), _ShapesOnly():
        model = build_model(config)
    return {k: (tuple(v.shape), SAFETENSORS_DTYPES.get(v.dtype, str(v.dtype))) for k, v in model.state_dict().items()}


def check_index(
    found: dict[str, tuple[tuple[int, ...], str]], expected: dict[str, tuple[tuple[int, ...], str]]
) -> None:
    """The file's tensors (name -> (shape, dtype)) must be exactly the expected ones; names the first mismatch."""
    for name, (shape, dtype) in expected.items():
        _check(name in found, f"the weights do not match its model config: tensor {name!r} is missing")
        got_shape, got_dtype = found[name]
        _check(
            got_shape == shape,
            f"the weights do not match its model config: tensor {name!r} has shape {list(got_shape)} "
            f"in the file but the model config needs {list(shape)}",
        )
        _check(
            got_dtype == dtype,
            f"the weights do not match its model config: tensor {name!r} is {got_dtype} in the file, not {dtype}",
        )
    extra = [k for k in found if k not in expected]
    if extra:
        raise CheckpointError(f"the weights do not match its model config: unexpected tensor {extra[0]!r}")


def check_finite(state: dict[str, torch.Tensor]) -> None:
    """Every weight must be a finite number: a NaN or inf weight makes every answer meaningless."""
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"tensor {name!r} holds {bad} NaN or infinite values: the file is damaged")


# --- reading and writing ------------------------------------------------------------------------------------


def save_checkpoint(path: str | os.PathLike, model: nn.Module, meta: CheckpointMeta) -> Path:
    """Write weights + header atomically; returns the final path."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    header = {HEADER_KEY: json.dumps(meta.to_header(), sort_keys=True)}
    return write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def write_atomically(path: Path, write: Any, tmp_prefix: str | None = None) -> Path:
    """`write(tmp)` into a temporary file next to `path`, then rename it over `path`; no temporary stays behind.
    The temporary is `.<path name>.<random>.tmp`, or `<tmp_prefix><random>.tmp` when given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=tmp_prefix or f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _read_index(path: Path) -> tuple[str | None, dict[str, tuple[tuple[int, ...], str]]]:
    """The raw vitdemo header and name -> (shape, dtype) of every tensor, from the file's index only."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path.name}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(HEADER_KEY)
            index = {}
            for k in f.keys():  # noqa: SIM118 (safe_open is not iterable)
                piece = f.get_slice(k)
                index[k] = (tuple(piece.get_shape()), piece.get_dtype())
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path.name} is not a readable safetensors checkpoint ({exc})") from exc
    if raw is None:
        raise CheckpointError(f"{path.name} has no vitdemo header: it was not written by vitdemo")
    return raw, index


def _parse_meta(path: Path, raw: str) -> CheckpointMeta:
    try:
        meta = CheckpointMeta.from_header(json.loads(raw))
        check_meta(meta)
    except CheckpointError as exc:
        raise CheckpointError(f"{path.name}: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path.name} has a damaged vitdemo header ({exc})") from exc
    return meta


def read_meta(path: str | os.PathLike) -> CheckpointMeta:
    """Only the header, checked (a dataset vitdemo knows, its classes, a buildable config): cheap, for listings."""
    path = Path(path)
    raw, _ = _read_index(path)
    return _parse_meta(path, raw)


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Check the header and the tensor index, read the weights, check they are finite, then build the model."""
    path = Path(path)
    raw, index = _read_index(path)
    meta = _parse_meta(path, raw)
    try:
        check_index(index, expected_tensors(meta.model_config))
        state = load_file(str(path), device="cpu")
        check_finite(state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path.name}: {exc}") from exc
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path.name}: the weights could not be read ({exc})") from exc
    model = build_model(meta.model_config)
    model.load_state_dict(state, strict=True)  # names and shapes were checked above
    return LoadedModel(model.to(device).eval(), meta, path)


def rewrite_header(path: str | os.PathLike, meta: CheckpointMeta) -> Path:
    """Replace only the vitdemo header of a checkpoint, atomically; the weight bytes are copied unchanged."""
    path = Path(path)
    _read_index(path)  # a readable vitdemo checkpoint, or CheckpointError
    check_meta(meta)
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    index = json.loads(data[8 : 8 + n])
    index["__metadata__"] = {
        **(index.get("__metadata__") or {}),
        HEADER_KEY: json.dumps(meta.to_header(), sort_keys=True),
    }
    head = json.dumps(index, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # safetensors pads its header to 8 bytes with spaces
    blob = struct.pack("<Q", len(head)) + head + data[8 + n :]
    return write_atomically(path, lambda tmp: Path(tmp).write_bytes(blob))
