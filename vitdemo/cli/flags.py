"""The flags of `train` and `pretrain`, derived from the settings' metadata (vitdemo.families.vocab): a model
family's settings and TrainConfig's have one spelling, shared by the CLI, the Train form and the shipped commands.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from vitdemo import families
from vitdemo.config import TrainConfig
from vitdemo.families.spec import ConfigError, ModelConfig, Setting, settings
from vitdemo.families.vocab import flag_of, format_value, parse_value, value_type


class Given(argparse.Action):
    """Stores the value like argparse's default action and notes that the flag was given: with --recipe, only
    given flags override the recipe (a flag given with TrainConfig's default value must still override it)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        namespace.given = {*getattr(namespace, "given", ()), self.dest}


def _argument(f: dataclasses.Field, s: Setting, default: Any, help_text: str) -> tuple[list[str], dict[str, Any]]:
    """argparse's (names, keyword arguments) for one setting."""
    kind = value_type(f)
    kwargs: dict[str, Any] = {"dest": f.name, "default": default, "help": help_text}
    if kind is bool:
        kwargs.update(nargs=0, const=not f.default)
    elif kind is tuple:
        kwargs["type"] = _parser(tuple, f.name)
    else:
        kwargs["type"] = kind
        if s.choices:
            kwargs["choices"] = list(s.choices)
    return [flag_of(f, s)], kwargs


def _parser(kind: type, name: str):
    def parse(text: str) -> Any:
        try:
            return parse_value(kind, text, name)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def model_flags() -> dict[str, str]:
    """argparse dest -> the flag, for every model family's settings (for messages)."""
    return {f.name: flag_of(f, s) for fam in families.families() for f, s in settings(fam.config) if s.cli}


def add_model_flags(p: argparse.ArgumentParser, kinds: tuple[str, ...] | None = None) -> None:
    """The settings of every family (or of `kinds`), one group per family; a setting several families share
    (--depth, --dropout) is one flag whose help gives each family's default. Each defaults to None: given
    flags change the chosen model's config (or the recipe's), the rest keep its defaults."""
    seen: dict[str, list[str]] = {}
    added: dict[str, tuple[argparse._ArgumentGroup, list[str], dict[str, Any]]] = {}
    for fam in families.families():
        if kinds is not None and fam.kind not in kinds:
            continue
        group = p.add_argument_group(fam.name)
        for f, s in settings(fam.config):
            if not s.cli:
                continue
            seen.setdefault(f.name, []).append(f"{format_value(f.default)} ({fam.name})")
            if f.name not in added:
                names, kwargs = _argument(f, s, None, s.help)
                added[f.name] = (group, names, kwargs)
    for name, (group, names, kwargs) in added.items():
        defaults = "default " + ", ".join(seen[name]) if len(seen[name]) > 1 else f"default {seen[name][0].split()[0]}"
        kwargs["help"] = "; ".join(x for x in (kwargs["help"], defaults) if x)
        if kwargs.get("nargs") == 0:
            kwargs["action"] = "store_const"
            kwargs.pop("nargs")
        group.add_argument(*names, **kwargs)


def model_from_args(a: argparse.Namespace, kind: str, base: ModelConfig | None = None) -> ModelConfig:
    """`kind`'s config (from `base` when it is that kind) with the model flags that were given; a flag that is
    not a setting of `kind` is a ConfigError, never silently ignored."""
    cls = families.get(kind).config
    start = base if base is not None and base.kind == kind else cls()
    flags = model_flags()
    given = {k: getattr(a, k) for k in flags if getattr(a, k, None) is not None}
    fields = {f.name for f in dataclasses.fields(cls)}
    wrong = [flags[k] for k in given if k not in fields]
    if wrong:
        raise ConfigError(f"{wrong[0]} is not a setting of a {kind} model")
    return dataclasses.replace(start, **given)


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """TrainConfig's settings that have a flag, each defaulting to TrainConfig's value and noting when given."""
    t = TrainConfig()
    group = p.add_argument_group("training")
    for f, s in settings(TrainConfig):
        if not s.cli:
            continue
        default = getattr(t, f.name)
        names, kwargs = _argument(f, s, default, f"{s.help} (default {format_value(default)})".strip())
        if f.name in ("init", "extra_data", "weights_path"):
            kwargs["metavar"] = {"extra_data": "class|FILE.npz"}.get(f.name, "FILE")
        group.add_argument(*names, action=Given, **kwargs)
