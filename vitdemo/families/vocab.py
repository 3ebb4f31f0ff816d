"""One vocabulary per setting: CLI flags, form keys, labels and reproduce commands, derived from the Settings.

A setting's flag is `--` + its field name with dashes (`batch_size` -> `--batch-size`; a setting that defaults to
True is switched off with `--no-NAME`), unless its Setting names another. A model setting's form key is the
family's kind + "_" + its field name (`vit_depth`); a training setting's is its field name. Values are written
and read back by the same two functions (`format_value`, `parse_value`), so a command parses back to its config.
"""

from __future__ import annotations

import dataclasses
import shlex
from typing import Any

from vitdemo.families.spec import ConfigError, Setting, settings


def flag_of(f: dataclasses.Field, s: Setting) -> str:
    """The CLI flag of a setting: `--patch-size`, `--no-pretrained`, or the Setting's own."""
    if s.flag:
        return s.flag
    name = f.name.replace("_", "-")
    return f"--no-{name}" if f.default is True else f"--{name}"


def value_type(f: dataclasses.Field) -> type:
    """bool, int, float, str or tuple, from the field's default (annotations are strings here)."""
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    return type(default)


def format_value(value: Any) -> str:
    """A value as a command line or the form's text box writes it: 0.002 -> '0.002', (256, 128) -> '256,128'."""
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def parse_value(kind: type, text: Any, name: str = "value") -> Any:
    """`text` (from a flag or a form) as a setting of type `kind`; ConfigError saying what was expected."""
    try:
        if kind is tuple:
            if isinstance(text, tuple | list):
                return tuple(int(v) for v in text)
            parts = [p.strip() for p in str(text).split(",") if p.strip()]
            if not parts or not all(p.isdigit() for p in parts):
                raise ValueError
            return tuple(int(p) for p in parts)
        if kind is int:
            if isinstance(text, bool) or (isinstance(text, float) and not text.is_integer()):
                raise ValueError
            return int(text)
        if kind is float:
            if isinstance(text, bool):
                raise ValueError
            return float(text)
    except (TypeError, ValueError):
        what = {tuple: "layer sizes like 256,128", int: "a whole number", float: "a number"}[kind]
        raise ConfigError(f"{name} must be {what}, not {text!r}") from None
    return text


def command_flags(config: Any, *, every: bool = False) -> list[str]:
    """The flags that rebuild `config` (a model config or a TrainConfig) from its class's defaults: every
    setting when `every` (a model's shape written out), else the `always` ones and those that differ."""
    out = []
    for f, s in settings(type(config)):
        value, default = getattr(config, f.name), _default(f)
        if not (s.cli and s.command) or (not every and not s.always and value == default):
            continue
        if value == default == "":  # an optional setting left empty (a ViT without a teacher) is no part of a shape
            continue
        if isinstance(value, bool):
            if value != default:
                out.append(flag_of(f, s))
            continue
        text = format_value(value)
        out.append(f"{flag_of(f, s)} {shlex.quote(text) if isinstance(value, str) else text}")
    return out


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]


def form_key(kind: str, name: str) -> str:
    """A model setting's form key: 'vit_depth'."""
    return f"{kind}_{name}"


def form_fields(cls: type, kind: str | None = None) -> dict[str, tuple[dataclasses.Field, Setting]]:
    """The form's keys of a config class's settings that the form shows (prefixed by `kind` for a model)."""
    return {(form_key(kind, f.name) if kind else f.name): (f, s) for f, s in settings(cls) if s.form}


def labels(cls: type) -> dict[str, str]:
    """field name -> what the form calls it, for turning a config error into a sentence about the form."""
    return {f.name: s.label for f, s in settings(cls)}
