"""User-facing parameters, checked once: a notebook's parameter cell as papermill fills it, and `name=value` fields
of the command lines, against the types they declare. Unknown names, values of the wrong type and booleans spelled
as anything but true / false (any case) are errors naming the parameter, the value and what is
allowed; ranges are checked by the configs' dataclasses (`__post_init__`), which every path goes through.

In a notebook, first thing after the parameters cell (papermill's injected cell runs before it):

    from lmkcore.params import checked
    globals().update(checked(globals()))
"""
from __future__ import annotations

import difflib
import types
import typing

# names an IPython kernel puts in the user namespace, never parameters
_KERNEL = {"In", "Out", "get_ipython", "exit", "quit", "open"}
_TRUE, _FALSE = {"true"}, {"false"}  # any case; yes / no / 1 / 0 are not booleans here (a typo as often as not)


class ParameterError(ValueError):
    """A parameter that does not exist or whose value does not fit its declared type."""


def convert(name: str, value, kind):
    """`value` as `kind` (bool, int, float, str, or a container type), or a `ParameterError` naming `name`."""
    origin = typing.get_origin(kind) or kind
    if origin is bool:
        if isinstance(value, bool):
            return value
        text = value.strip().lower() if isinstance(value, str) else None
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ParameterError(f"parameter {name}={value!r}: expected a boolean: true or false (any case)")
    if origin is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ParameterError(f"parameter {name}={value!r}: expected an integer")
    if origin is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ParameterError(f"parameter {name}={value!r}: expected a number")
    if origin is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):  # papermill reads -p name 2024 as int
            return str(value)
        raise ParameterError(f"parameter {name}={value!r}: expected a string")
    if isinstance(origin, type) and origin in (list, tuple, dict):
        if isinstance(value, (list, tuple)) and origin in (list, tuple):
            return origin(value)
        if isinstance(value, origin):
            return value
        raise ParameterError(f"parameter {name}={value!r}: expected a {origin.__name__}")
    return value  # a type this module does not know: as given


def unknown_error(names: list[str], known: list[str], where: str) -> ParameterError:
    """An error for parameters that `where` does not have, with the closest known names."""
    hints = []
    for n in names:
        close = difflib.get_close_matches(n, known, n=2)
        hints.append(f"{n!r}" + (f" (did you mean {' or '.join(close)}?)" if close else ""))
    return ParameterError(f"{where} has no parameter {', '.join(hints)}; its parameters: {', '.join(sorted(known))}")


def checked(namespace: dict) -> dict:
    """The parameters of a notebook's namespace (the names its parameters cell declares with a type,
    `name: type = default`), each converted to its type; any other plain value in the namespace (a name
    papermill injected that the cell does not declare, a misspelling) is an error listing the parameters."""
    declared = dict(namespace.get("__annotations__", {}))
    if not declared:
        raise ParameterError("this notebook's parameters cell declares no typed parameters (name: type = value)")
    extra = [n for n, v in namespace.items() if not n.startswith("_") and n not in declared and n not in _KERNEL
             and not isinstance(v, (types.ModuleType, types.FunctionType, type)) and not callable(v)]
    if extra:
        raise unknown_error(extra, list(declared), "this notebook")
    return {n: convert(n, namespace[n], kind) for n, kind in declared.items() if n in namespace}


def field_value(config_class, name: str, text: str):
    """A `name=value` field of a command line, as the type of `config_class`'s field `name`."""
    import dataclasses
    import json

    fields = {f.name: f for f in dataclasses.fields(config_class)}
    if name not in fields:
        raise unknown_error([name], list(fields), config_class.__name__)
    default = getattr(config_class(), name)
    kind = type(default)
    if isinstance(default, (list, tuple, dict)):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ParameterError(f"parameter {name}={text!r}: expected a JSON {kind.__name__}") from None
        return convert(name, value, kind)
    return convert(name, text, kind)
