"""One module per method; `METHODS` maps a checkpoint's method name to its class."""
import importlib

from .base import Method

METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    METHODS[cls.name] = cls
    return cls


def build(name: str, **config) -> Method:
    """A fresh (untrained) method from its name and config fields."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    cls = METHODS[name]
    return cls(cls.config_class(**config))


def resolve(name: str) -> type[Method]:
    """A method class from its registered name or an import path `package.module:Class`; a class named by its
    path is registered under its `name` on first use, so that its checkpoints load by name in this process."""
    if ":" not in name:
        if name not in METHODS:
            raise KeyError(f"unknown method {name!r}; known: {sorted(METHODS)} (or an import path "
                           "package.module:Class)")
        return METHODS[name]
    module, _, attr = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr, None)
    except ImportError as e:
        raise KeyError(f"method {name!r}: cannot import {module!r} ({e})") from None
    if not (isinstance(cls, type) and issubclass(cls, Method)):
        raise KeyError(f"method {name!r}: {module} has no Method subclass {attr!r}")
    if METHODS.setdefault(cls.name, cls) is not cls:
        raise KeyError(f"method {name!r}: its name {cls.name!r} is registered to {METHODS[cls.name].__module__}")
    return cls


from . import autolink  # noqa: E402,F401  (registers itself)

__all__ = ["Method", "METHODS", "build", "register", "resolve"]
