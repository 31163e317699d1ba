"""Configs from a YAML file and the command line, in the Dundar et al. seed's precedence:

    command line  >  config file (`--config FILE`)  >  the dataclasses' defaults

Generic over any config dataclasses (a method's config, `TrainConfig`): each YAML key goes to the one
class that has a field of that name; a key no class has is an error naming the file and the key; every
value is checked against its field's type (an int is accepted where a float is asked for, nothing else is
converted silently, except that a float field takes `1e-4`, which PyYAML reads as a string). Command-line values are strings, parsed as YAML scalars (`5`, `1e-4`, `true`, `[1, 2]`)
and then checked the same way; a bare `--flag` sets a bool field to true (the seed's `--use_DDP`).

    method_cfg, train_cfg = resolve([FgBgConfig, TrainConfig], "configs/fgbg.yaml",
                                    ["--dataset_path", "data/lspet.h5", "--use_DDP", "n_landmarks=12"])
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from .params import ParameterError, convert


class ConfigError(ValueError):
    """A config file or command line that does not fit the config classes (the message says where and why)."""


# helpers

def _fields(cls) -> dict[str, Any]:
    """Field name -> resolved type annotation of a config dataclass (string annotations resolved)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def _matches(value, tp) -> bool:
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        return all(_matches(v, args[0]) for v in value) if args else True
    if origin is dict:
        return isinstance(value, dict)
    return isinstance(value, tp) if isinstance(tp, type) else True


def _coerce(value, tp):
    """The value as its field holds it: ints where a float is asked for become floats, lists become tuples
    for tuple fields (YAML has no tuples)."""
    if tp is float and isinstance(value, int):
        return float(value)
    if typing.get_origin(tp) is tuple and isinstance(value, list):
        return tuple(value)
    return value


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def check_value(cls, name: str, value, where: str):
    """`value` for field `name` of `cls`, type-checked (and int -> float); `where` names the file or flag."""
    hints = _fields(cls)
    tp = hints[name]
    if isinstance(value, str) and _matches(1.5, tp) and not _matches(value, tp):
        try:  # PyYAML reads 1e-4 (no dot) as a string: YAML 1.1's float needs one
            value = float(value)
        except ValueError:
            pass
    if not _matches(value, tp):
        raise ConfigError(f"{where}: {name} must be {_type_name(tp)} ({cls.__name__}), got {value!r} "
                          f"({type(value).__name__})")
    return _coerce(value, tp)


def _assign(classes, values: dict, where: str) -> list[dict]:
    """Split `values` by the class that owns each key; an unknown key is an error naming `where` and the key."""
    owners = [_fields(c) for c in classes]
    out: list[dict] = [{} for _ in classes]
    for key, value in values.items():
        hits = [i for i, f in enumerate(owners) if key in f]
        if not hits:
            known = sorted(set().union(*owners))
            raise ConfigError(f"{where}: unknown key {key!r}; known keys ({', '.join(c.__name__ for c in classes)}): "
                              f"{known}")
        for i in hits:  # a name two classes share (rare) sets both
            out[i][key] = check_value(classes[i], key, value, where)
    return out


# the three sources

def load_yaml(path: str | Path) -> dict:
    """The mapping in a YAML file (`yaml.safe_load`); an empty file is `{}`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    data = yaml.safe_load(path.read_text())
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file holds a mapping of option: value, got {type(data).__name__}")
    return data


def parse_overrides(argv: list[str], classes) -> dict:
    """Command-line overrides as {name: value}: `--name value`, `--name=value`, `name=value`, or a bare
    `--flag` for a bool field (true). Values are YAML scalars; string fields keep the text as given."""
    types_ = {}
    for c in classes:
        types_.update(_fields(c))
    out, i = {}, 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--"):
            name, eq, text = arg[2:].partition("=")
            if not eq:
                nxt = argv[i + 1] if i + 1 < len(argv) else None
                if types_.get(name) is bool and (nxt is None or nxt.startswith("--") or "=" in nxt
                                                 or nxt.lower() not in ("true", "false")):
                    out[name], i = True, i + 1
                    continue
                if nxt is None:
                    raise ConfigError(f"command line: --{name} needs a value")
                text, i = nxt, i + 1
        elif "=" in arg:
            name, _, text = arg.partition("=")
        else:
            raise ConfigError(f"command line: expected --name value or name=value, got {arg!r}")
        i += 1
        tp = types_.get(name)
        if tp is bool:  # true or false, any case (YAML would also take yes / no / on / off)
            try:
                out[name] = convert(f"--{name}", text, bool)
            except ParameterError as e:
                raise ConfigError(f"command line: {e}") from None
            continue
        out[name] = text if tp is str else (yaml.safe_load(text) if text != "" else "")
    return out


def resolve(classes, config: str | Path | None = None, argv: list[str] | dict | None = None, *,
            bases: list[dict] | None = None) -> list:
    """One instance per config class: defaults, updated by the class's own base (`bases`, one {name: value}
    per class, e.g. a profile's plan for it), updated by the YAML file `config` (if any), updated by the
    command line `argv` (a list of arguments, or an already parsed {name: value} dict). A name two classes
    share takes each class's own base, unless the file or the command line sets it for both."""
    classes = list(classes)
    bases = bases or [{} for _ in classes]
    if len(bases) != len(classes):
        raise ValueError(f"bases: one per config class ({len(classes)}), got {len(bases)}")
    layers = [_assign([c], dict(base), f"{c.__name__} base")[0] for c, base in zip(classes, bases)]
    if config:
        for layer, values in zip(layers, _assign(classes, load_yaml(config), str(config))):
            layer.update(values)
    cli = parse_overrides(list(argv), classes) if isinstance(argv, (list, tuple)) else dict(argv or {})
    for layer, values in zip(layers, _assign(classes, cli, "command line")):
        layer.update(values)
    return [c(**layer) for c, layer in zip(classes, layers)]


def from_yaml(config_class, path: str | Path | None = None, overrides: list[str] | dict | None = None):
    """One config dataclass from a YAML file and overrides (`resolve` for a single class)."""
    return resolve([config_class], path, overrides)[0]


def dump_yaml(*configs, path: str | Path | None = None) -> str:
    """The resolved configs as one YAML mapping (a run's `opt.yaml`, reloadable with `resolve`)."""
    merged: dict = {}
    for c in configs:
        merged.update({k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(c).items()})
    text = yaml.safe_dump(merged, sort_keys=False)
    if path:
        Path(path).write_text(text)
    return text
